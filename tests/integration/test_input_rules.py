"""Blank input and ids with control characters, through the library and the CLI.

Blank (empty or whitespace-only) user input is not a turn: the Agent refuses it
and the CLI prints one error line. Ids with control characters are refused for
new data, but conversations stored with them earlier (inserted here with SQL,
as an older version could) stay reachable: read, listed and deleted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from agentcore import PostgresHistoryRepository
from agentcore.cli import main
from tests.integration.storage_checks import stored_rows

ROOT = Path(__file__).resolve().parents[2]


class Run(NamedTuple):
    code: int
    out: str
    err: str


def run_cli(*argv: str, tmp_path: Path) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "agentcore", *argv],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k != "AGENTCORE_DATABASE_URL"},
            "AGENTCORE_DATA_DIR": str(tmp_path),  # never the user's embedded database
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    code = main(list(argv))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def assert_one_line_error(run: Run, fragment: str) -> None:
    assert run.code == 1, run
    assert run.out == ""
    [line] = run.err.splitlines()
    assert line.startswith("agentcore: error: ") and fragment in line, run.err


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_chat_refuses_blank_input_with_one_error_line(
    database_dsn: str, tmp_path: Path, text: str
) -> None:
    run = run_cli("chat", "--agent", "a", "--session", "s", text, "--dsn", database_dsn,
                  tmp_path=tmp_path)  # fmt: skip

    assert_one_line_error(run, "input must not be empty or only whitespace")
    assert stored_rows(database_dsn) == {}


def test_chat_refuses_a_session_id_with_a_newline(database_dsn: str, tmp_path: Path) -> None:
    run = run_cli("chat", "--agent", "a", "--session", "a\nb", "hi", "--dsn", database_dsn,
                  tmp_path=tmp_path)  # fmt: skip

    assert_one_line_error(run, "--session must not contain control characters")
    assert "U+000A at index 1" in run.err
    assert stored_rows(database_dsn) == {}


LEGACY_AGENT = "bot\x01"
LEGACY_SESSION = "line\nbreak"


def insert_legacy_conversation(dsn: str) -> None:
    """Two rows and their counter, as a version before the rule could store them."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO conversation_sessions (agent_name, session_id, next_seq)"
            " VALUES (%(a)s, %(s)s, 2)",
            {"a": LEGACY_AGENT, "s": LEGACY_SESSION},
        )
        for seq, (role, content, message_id) in enumerate(
            [("user", "old question", "q\t1"), ("assistant", "old answer", None)]
        ):
            conn.execute(
                "INSERT INTO conversation_history"
                " (agent_name, session_id, seq, role, content, message_id)"
                " VALUES (%(a)s, %(s)s, %(seq)s, %(role)s, %(content)s, %(id)s)",
                {"a": LEGACY_AGENT, "s": LEGACY_SESSION, "seq": seq, "role": role,
                 "content": content, "id": message_id},
            )  # fmt: skip


async def test_legacy_ids_with_control_characters_stay_reachable_through_the_library(
    database_dsn: str, pg_pool: AsyncConnectionPool[Any]
) -> None:
    insert_legacy_conversation(database_dsn)
    repo = PostgresHistoryRepository(pg_pool)

    history = await repo.load_history(LEGACY_AGENT, LEGACY_SESSION)
    assert [m.content for m in history] == ["old question", "old answer"]
    [info] = await repo.list_sessions(LEGACY_AGENT)
    assert (info.session_id, info.message_count) == (LEGACY_SESSION, 2)
    found = await repo.get_message(LEGACY_AGENT, LEGACY_SESSION, "q\t1")
    assert found is not None and found.content == "old question"

    assert await repo.clear_session(LEGACY_AGENT, LEGACY_SESSION) == 2
    assert stored_rows(database_dsn) == {}


def test_legacy_ids_with_control_characters_stay_reachable_through_the_cli(
    database_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    insert_legacy_conversation(database_dsn)
    conversation = ["--agent", LEGACY_AGENT, "--session", LEGACY_SESSION, "--dsn", database_dsn]

    shown = in_process(capsys, "history", *conversation, "--json")
    assert shown.code == 0, shown
    assert [m["content"] for m in json.loads(shown.out)] == ["old question", "old answer"]
    listed = in_process(capsys, "sessions", "--agent", LEGACY_AGENT, "--json", "--dsn",
                        database_dsn)  # fmt: skip
    assert [s["session_id"] for s in json.loads(listed.out)["sessions"]] == [LEGACY_SESSION]
    # New turns under such an id are refused; the stored ones can be deleted.
    refused = in_process(capsys, "chat", *conversation, "more")
    assert_one_line_error(refused, "--agent must not contain control characters")
    forgot = in_process(capsys, "forget", *conversation)
    assert forgot.code == 0, forgot
    assert stored_rows(database_dsn) == {}
