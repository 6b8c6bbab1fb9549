"""``agentcore import`` on real files: exact round trips, refusals reported, hostile files.

* export → import into an empty database → export gives the same bytes, with
  an emptied conversation that kept its metadata and one stored under legacy
  ids (inserted with SQL, as an older version could);
* a conversation the repository refuses is reported on its own line, the
  others imported, and the command exits 1;
* a file that cannot be read (not UTF-8, nested 5,000 deep, cut short) gives
  one error line naming the line, no traceback, the conversations before it
  stored.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentcore import Message, PostgresHistoryRepository
from agentcore.cli import main
from tests.contract.legacy_rows import store_legacy_conversation
from tests.integration.storage_checks import stored_rows
from tests.integration.test_cli import ROOT, Run
from tests.support import PgServer, fresh_database

HEADER = b'{"format":"agentcore-history","version":1}\n'


def in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    code = main(list(argv))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def conversation(session: str, *contents: str) -> bytes:
    key = f'"agent_name":"a","session_id":"{session}"'
    head = f'{{"type":"session",{key},"message_count":{len(contents)}}}\n'
    return head.encode() + b"".join(
        f'{{"type":"message",{key},"message":{{"role":"user","content":{c}}}}}\n'.encode()
        for c in contents
    )


def test_export_import_export_through_the_cli_is_byte_identical(
    database_dsn: str, pg_server: PgServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def fill() -> None:
        async with PostgresHistoryRepository.from_dsn(database_dsn) as repo:
            await repo.append_messages("a", "emptied", [{"role": "user", "content": "gone"}])
            await repo.set_session_metadata("a", "emptied", {"owner": "ann", "title": "T"})
            await repo.pop_message("a", "emptied")
            await repo.append_messages("a", "kept", [{"role": "user", "content": "here"}])
            old = Message(role="user", content="old", id="q\t1")
            await store_legacy_conversation(repo, "bot\x01", "line\nbreak", [old])

    asyncio.run(fill())
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    assert in_process(capsys, "export", "--out", str(first), "--dsn", database_dsn).code == 0
    with fresh_database(pg_server) as copy_dsn:
        imported = in_process(capsys, "import", str(first), "--dsn", copy_dsn)
        assert imported == Run(
            0,
            "imported 3 conversations (2 messages, 1 of them empty); "
            "skipped 0 already present; refused 0\n",
            "",
        )
        assert in_process(capsys, "export", "--out", str(second), "--dsn", copy_dsn).code == 0
    assert second.read_bytes() == first.read_bytes()


def test_a_refused_conversation_is_reported_and_the_others_imported(
    database_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(
        HEADER
        + conversation("first", '"ok"')
        + conversation("nul", '"a\\u0000b"')  # lines 4-5
        + conversation("last", '"ok"', '"ok"')
    )
    run = in_process(capsys, "import", str(path), "--dsn", database_dsn)

    assert run.code == 1
    assert run.out == (
        "imported 2 conversations (3 messages); skipped 0 already present; refused 1\n"
    )
    assert run.err.splitlines() == [
        "agentcore: error: line 5: session 'nul' of agent 'a' refused: "
        "messages[0].content must not contain a NUL byte",
        "agentcore: error: 1 conversation refused (see above); the others were imported",
    ]
    assert sorted(stored_rows(database_dsn)) == [("a", "first"), ("a", "last")]


HOSTILE = {
    "header not UTF-8": (b'{"format":"agentcore-history\xff","version":1}\n', 1, "not UTF-8"),
    "a line not UTF-8": (
        HEADER + conversation("first", '"ok"') + b'{"type":"session\xc3"}\n',
        4,
        "not UTF-8 (byte 17 of the line)",
    ),
    "nested 5,000 deep": (
        HEADER + conversation("first", '"ok"') + b"[" * 5000 + b"]" * 5000 + b"\n",
        4,
        "JSON nested more than 512 levels deep",
    ),
    "cut short": (
        HEADER + conversation("first", '"ok"') + b'{"type":"session","agent_n',
        4,
        "not JSON",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_file_gives_one_error_line_naming_the_line(
    database_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    data, line, problem = HOSTILE[case]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(data + conversation("after", '"ok"'))

    run = in_process(capsys, "import", str(path), "--dsn", database_dsn)

    assert (run.code, run.out) == (1, "")
    [only] = run.err.splitlines()
    assert only.startswith(f"agentcore: error: line {line}: {problem}"), run.err
    assert sorted(stored_rows(database_dsn)) == ([("a", "first")] if line > 1 else [])


def test_a_file_nested_5000_deep_gives_no_traceback_from_the_installed_command(
    database_dsn: str, tmp_path: Path
) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_bytes(HOSTILE["nested 5,000 deep"][0])
    done = subprocess.run(
        [sys.executable, "-m", "agentcore", "import", str(path), "--dsn", database_dsn],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "AGENTCORE_DATABASE_URL"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "agentcore: error: line 4: JSON nested more than 512 levels deep (no export line is)\n"
    )
    assert sorted(stored_rows(database_dsn)) == [("a", "first")]
