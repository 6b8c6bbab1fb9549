"""The CLI never writes a stored or given control character raw to the terminal.

Stored content and ids can hold ESC sequences (retitle or clear the terminal,
OSC 52 clipboard writes), CR (overwrite a line: forged table rows), C1 codes,
Unicode line separators and bidi overrides. Text output shows them escaped;
``--json`` output stays exact. Each check runs the real command in a
subprocess and reads the bytes it printed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]

HOSTILE = (
    "title\x1b]0;pwned\x07 clip\x1b]52;c;ZXZpbA==\x07 clear\x1b[2J\x1bc cr\rforged"
    " bidi\u202eevil del\x7f c1\x9b31m sep\u2028x bell\x07"
)
CONTENT = HOSTILE + "\nsecond line\r\nthird line"
FORGED_ID = "x\x1b[2K\rforged-row         999  2026-01-01 00:00:00"

RAW_BYTES = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]")
"""Control bytes a terminal would act on; a newline is the one allowed."""
RAW_CHARS = re.compile("[\x80-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def agentcore(*argv: str, dsn: str | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTCORE_")}
    return subprocess.run(
        [sys.executable, "-m", "agentcore", *argv, *(["--dsn", dsn] if dsn else [])],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )


def assert_terminal_safe(output: bytes) -> str:
    """``output`` holds no raw control character; returns it decoded."""
    assert RAW_BYTES.search(output) is None, output
    text = output.decode()
    assert RAW_CHARS.search(text) is None, text
    return text


def store_with_raw_sql(dsn: str, agent: str, session: str, content: str) -> None:
    """A row as an older version (or another program) may have written it."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO conversation_sessions (agent_name, session_id, next_seq)"
            " VALUES (%s, %s, 1)",
            (agent, session),
        )
        conn.execute(
            "INSERT INTO conversation_history (agent_name, session_id, seq, role, content)"
            " VALUES (%s, %s, 0, 'user', %s)",
            (agent, session, content),
        )


def test_history_escapes_stored_control_characters_and_keeps_real_newlines(
    database_dsn: str,
) -> None:
    store_with_raw_sql(database_dsn, "a", "s", CONTENT)
    run = agentcore("history", "--agent", "a", "--session", "s", dsn=database_dsn)
    assert run.returncode == 0, run.stderr
    lines = assert_terminal_safe(run.stdout).splitlines()
    assert len(lines) == 3
    assert lines[0].endswith(
        "user: title\\x1b]0;pwned\\x07 clip\\x1b]52;c;ZXZpbA==\\x07 clear\\x1b[2J\\x1bc"
        " cr\\rforged bidi\\u202eevil del\\x7f c1\\x9b31m sep\\u2028x bell\\x07"
    )
    indent = len(lines[0]) - len(lines[0].split("user: ", 1)[1])
    assert lines[1:] == [" " * indent + "second line", " " * indent + "third line"]


def test_history_json_stays_exact(database_dsn: str) -> None:
    store_with_raw_sql(database_dsn, "a", "s", CONTENT)
    run = agentcore("history", "--agent", "a", "--session", "s", "--json", dsn=database_dsn)
    assert run.returncode == 0, run.stderr
    assert_terminal_safe(run.stdout)
    assert [m["content"] for m in json.loads(run.stdout)] == [CONTENT]


def test_sessions_table_cannot_be_forged_by_a_stored_session_id(database_dsn: str) -> None:
    store_with_raw_sql(database_dsn, "a", "real", "hello")
    store_with_raw_sql(database_dsn, "a", FORGED_ID, "hello")
    run = agentcore("sessions", "--agent", "a", dsn=database_dsn)
    assert run.returncode == 0, run.stderr
    lines = assert_terminal_safe(run.stdout).splitlines()
    assert len(lines) == 3  # the header and two rows, nothing forged
    assert any(line.startswith("x\\x1b[2K\\rforged-row") for line in lines)
    shown = agentcore("sessions", "--agent", "a", "--json", dsn=database_dsn)
    listed = json.loads(shown.stdout)["sessions"]
    assert sorted(s["session_id"] for s in listed) == sorted(["real", FORGED_ID])


def test_chat_reply_and_demo_escape_what_they_quote(database_dsn: str) -> None:
    chat = agentcore("chat", "--agent", "a", "--session", "s", HOSTILE, dsn=database_dsn)
    assert chat.returncode == 0, chat.stderr
    assert "\\x1b]52;c;" in assert_terminal_safe(chat.stdout)

    # The demo's replies quote what its sessions' users said first.
    store_with_raw_sql(database_dsn, "demo-assistant", "demo-alice", HOSTILE)
    demo = agentcore("demo", dsn=database_dsn)
    assert demo.returncode == 0, demo.stderr
    assert "you first said \"title\\x1b]0;pwned" in assert_terminal_safe(demo.stdout)


@pytest.mark.parametrize(
    "argv",
    [
        ["sessions", "--agent", "nobody\x1b]0;pwned\x07"],
        ["history", "--agent", "a", "--session", "gone\x1b[2J\r"],
        ["demo", "extra\x1b]52;c;ZXZpbA==\x07"],
        ["sessions", "--agent", "a", "--limit", "\x1b[2J"],
    ],
    ids=["unknown-agent", "unknown-session", "unrecognized-argument", "bad-integer"],
)
def test_error_messages_escape_what_the_user_gave(database_dsn: str, argv: list[str]) -> None:
    store_with_raw_sql(database_dsn, "a", "s", "hello")
    run = agentcore(*argv, dsn=database_dsn)
    assert run.returncode in (1, 2)
    assert "\\x1b" in assert_terminal_safe(run.stderr)
    assert_terminal_safe(run.stdout)
