"""The ``agentcore`` command, run in-process through ``main(argv)`` and as a subprocess."""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Protocol

import psycopg
import pytest

from agentcore import embedded, migrations
from agentcore.cli import main
from tests.support import CITUS_MIGRATION, LANGGRAPH_MIGRATION, scratch_dir

ROOT = Path(__file__).resolve().parents[2]


class Run(NamedTuple):
    code: int
    out: str
    err: str


class Cli(Protocol):
    """The ``cli`` fixture: ``main(argv)`` run in-process, its output captured."""

    def __call__(self, *argv: str) -> Run: ...


@pytest.fixture(scope="module")
def cli_data_dir() -> Iterator[Path]:
    """AGENTCORE_DATA_DIR for this module: never the user's real data directory."""
    with scratch_dir("agentcore-cli-") as parent:
        try:
            yield parent
        finally:
            embedded.stop(parent / "pgdata")


@pytest.fixture(autouse=True)
def cli_env(cli_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTCORE_DATA_DIR", str(cli_data_dir))
    monkeypatch.delenv("AGENTCORE_DATABASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*argv: str) -> Run:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def subprocess_cli(*argv: str, env: dict[str, str] | None = None) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "agentcore", *argv],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def assert_one_line_error(run: Run, *fragments: str) -> None:
    assert run.code == 1, run
    assert run.out == ""
    lines = run.err.splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("agentcore: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


# --- demo, history, sessions, forget, chat against the test server -------------------------


def test_demo_run_twice_resumes_both_sessions(cli: Cli, database_dsn: str) -> None:
    first = cli("demo", "--dsn", database_dsn)
    assert first.code == 0, first.err
    assert "Run 1:" in first.out
    assert "(I remember no earlier messages)" in first.out
    assert "Isolation check: neither session" in first.out
    assert "Bob" not in _lines_of(first.out, "demo-alice")
    assert "Alice" not in _lines_of(first.out, "demo-bob")

    second = cli("demo", "--dsn", database_dsn)
    assert second.code == 0, second.err
    assert "Run 2:" in second.out
    assert (
        'echo: "Alice again. Do you remember me?" (I remember 4 earlier messages; '
        'you first said "Hi, I\'m Alice. My favourite colour is green.")'
    ) in second.out
    assert "session demo-bob (8 messages, the last 4 shown)" in second.out


def _lines_of(output: str, session: str) -> str:
    return "\n".join(line for line in output.splitlines() if line.strip().startswith(session))


def test_history_json_is_the_stored_conversation_oldest_first(cli: Cli, database_dsn: str) -> None:
    cli("demo", "--dsn", database_dsn)

    run = cli(
        "history",
        "--agent",
        "demo-assistant",
        "--session",
        "demo-bob",
        "--json",
        "--dsn",
        database_dsn,
    )
    assert run.code == 0, run.err
    messages = json.loads(run.out)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == "Hello, Bob here. I collect stamps."
    assert all(m["created_at"] for m in messages)

    last = cli(
        "history",
        "--agent",
        "demo-assistant",
        "--session",
        "demo-bob",
        "--limit",
        "1",
        "--json",
        "--dsn",
        database_dsn,
    )
    assert json.loads(last.out) == messages[-1:]


def test_history_text_shows_one_line_per_message(cli: Cli, database_dsn: str) -> None:
    cli("chat", "--agent", "a", "--session", "s", "first line\nsecond line", "--dsn", database_dsn)
    run = cli("history", "--agent", "a", "--session", "s", "--dsn", database_dsn)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].endswith("     user: first line")
    assert lines[1].strip() == "second line"
    assert "assistant: echo:" in lines[2]


def test_sessions_json_lists_each_session_with_its_count(cli: Cli, database_dsn: str) -> None:
    cli("demo", "--dsn", database_dsn)
    run = cli("sessions", "--agent", "demo-assistant", "--json", "--dsn", database_dsn)
    assert run.code == 0, run.err
    sessions = json.loads(run.out)["sessions"]
    assert sorted((s["session_id"], s["message_count"]) for s in sessions) == [
        ("demo-alice", 4),
        ("demo-bob", 4),
    ]
    text = cli("sessions", "--agent", "demo-assistant", "--dsn", database_dsn).out
    assert text.splitlines()[0].split() == ["SESSION", "MESSAGES", "LAST", "WRITTEN", "(UTC)"]


def test_forget_deletes_one_session_only(cli: Cli, database_dsn: str) -> None:
    cli("demo", "--dsn", database_dsn)
    run = cli(
        "forget", "--agent", "demo-assistant", "--session", "demo-alice", "--dsn", database_dsn
    )
    assert run.code == 0, run.err
    assert "(4 messages)" in run.out

    gone = cli(
        "history", "--agent", "demo-assistant", "--session", "demo-alice", "--dsn", database_dsn
    )
    assert_one_line_error(gone, "has no session 'demo-alice'")
    left = json.loads(
        cli("sessions", "--agent", "demo-assistant", "--json", "--dsn", database_dsn).out
    )
    assert [s["session_id"] for s in left["sessions"]] == ["demo-bob"]
    again = cli(
        "forget", "--agent", "demo-assistant", "--session", "demo-alice", "--dsn", database_dsn
    )
    assert_one_line_error(again, "has no session 'demo-alice'")


def test_chat_one_turn_then_a_loop_over_stdin_keep_one_conversation(
    cli: Cli, database_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = cli("chat", "--agent", "helper", "--session", "u1", "hello", "--dsn", database_dsn)
    assert one.code == 0, one.err
    assert one.out.strip() == 'echo: "hello" (I remember no earlier messages)'

    monkeypatch.setattr(sys, "stdin", io.StringIO("again\n\n/exit\nnever sent\n"))
    loop = cli("chat", "--agent", "helper", "--session", "u1", "--dsn", database_dsn)
    assert loop.code == 0, loop.err
    assert loop.out.splitlines() == [
        'echo: "again" (I remember 2 earlier messages; you first said "hello")'
    ]
    stored = json.loads(
        cli("history", "--agent", "helper", "--session", "u1", "--json", "--dsn", database_dsn).out
    )
    assert [m["content"] for m in stored if m["role"] == "user"] == ["hello", "again"]


def test_chat_loop_reports_a_failing_line_and_goes_on(
    cli: Cli, database_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("first\nbad\x00line\nthird\n"))
    run = cli("chat", "--agent", "loop", "--session", "s9", "--dsn", database_dsn)
    assert run.code == 1
    assert run.out.splitlines() == [
        'echo: "first" (I remember no earlier messages)',
        'echo: "third" (I remember 2 earlier messages; you first said "first")',
    ]
    errors = run.err.splitlines()
    assert len(errors) == 2 and "NUL byte" in errors[0]
    assert errors[1] == "agentcore: error: 1 input line failed (see above); the others were sent"
    assert all(line.startswith("agentcore: error: ") for line in errors)


# --- migrate ----------------------------------------------------------------------------


def test_migrate_status_up_down_on_an_empty_database(cli: Cli, empty_database_dsn: str) -> None:
    dsn = ["--dsn", empty_database_dsn]
    assert cli("migrate", "status", *dsn).out.split() == [
        "pending",
        "0001_conversation_history",
        "pending",
        "0002_session_scoped_history",
        "pending",
        "0003_session_metadata",
        "pending",
        "0004_exact_items",
        "pending",
        "0005_hot_session_updates",
        "pending",
        "0006_cached_role_check",
        "pending",
        "0007_scoped_state",
        "pending",
        LANGGRAPH_MIGRATION,
        "pending",
        CITUS_MIGRATION,
    ]
    up = cli("migrate", "up", *dsn)
    assert up.out.splitlines() == [
        "applied 0001_conversation_history",
        "applied 0002_session_scoped_history",
        "applied 0003_session_metadata",
        "applied 0004_exact_items",
        "applied 0005_hot_session_updates",
        "applied 0006_cached_role_check",
        "applied 0007_scoped_state",
        f"applied {LANGGRAPH_MIGRATION}",
        f"applied {CITUS_MIGRATION}",
    ]
    assert cli("migrate", "up", *dsn).out.strip() == "already up to date"
    assert cli("migrate", *dsn).out.split()[::2] == ["applied"] * 9

    down = cli("migrate", "down", *dsn)
    assert down.out.strip() == f"rolled back {CITUS_MIGRATION}"
    down = cli("migrate", "down", *dsn)
    assert down.out.strip() == f"rolled back {LANGGRAPH_MIGRATION}"
    down = cli("migrate", "down", *dsn)
    assert down.out.strip() == "rolled back 0007_scoped_state"
    down = cli("migrate", "down", *dsn)
    assert down.out.strip() == "rolled back 0006_cached_role_check"
    down = cli("migrate", "down", *dsn)
    assert down.out.strip() == "rolled back 0005_hot_session_updates"
    down = cli("migrate", "down", *dsn)
    assert down.out.strip() == "rolled back 0004_exact_items"
    statuses = ["applied"] * 3 + ["pending"] * 6
    assert cli("migrate", "status", *dsn).out.split()[::2] == statuses
    assert cli("migrate", "down", "--all", *dsn).out.splitlines() == [
        "rolled back 0003_session_metadata",
        "rolled back 0002_session_scoped_history",
        "rolled back 0001_conversation_history",
    ]
    assert cli("migrate", "down", *dsn).out.strip() == "nothing to roll back"


# --- errors a user can cause: one line on stderr, exit 1, no traceback -------------------


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--dsn", "nonsense=="], "invalid database DSN (from --dsn): unknown keyword"),
        (["--dsn", "host=127.0.0.1 port=1 connect_timeout=2"], "Connection refused"),
        (["--dsn", "postgresql://nobody@/nowhere?host=/nonexistent-dir"], "cannot connect"),
    ],
    ids=["malformed-dsn", "unreachable-server", "missing-socket"],
)
def test_a_bad_or_unreachable_database_is_one_line(
    cli: Cli, argv: list[str], fragment: str
) -> None:
    run = cli("sessions", "--agent", "a", *argv)
    assert_one_line_error(run, fragment)


def test_a_bad_database_from_the_environment_is_one_line(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTCORE_DATABASE_URL", "host=127.0.0.1 port=1")
    assert_one_line_error(cli("migrate", "status"), "cannot connect")


def test_unknown_agent_is_one_line(cli: Cli, database_dsn: str) -> None:
    for argv in (["sessions"], ["history", "--session", "s"], ["forget", "--session", "s"]):
        run = cli(*argv, "--agent", "nobody", "--dsn", database_dsn)
        assert_one_line_error(run, "unknown agent 'nobody'")


@pytest.mark.parametrize("session", ["", "   ", "x" * 256, "a\x00b"])
def test_an_invalid_session_id_is_one_line_before_any_connection(cli: Cli, session: str) -> None:
    # The DSN points nowhere: validation must come first.
    run = cli("history", "--agent", "a", "--session", session, "--dsn", "host=127.0.0.1 port=1")
    assert_one_line_error(run, "--session")


def test_migrations_not_applied_is_one_line(cli: Cli, empty_database_dsn: str) -> None:
    for argv in (
        ["sessions", "--agent", "a"],
        ["history", "--agent", "a", "--session", "s"],
        ["chat", "--agent", "a", "--session", "s", "hi"],
    ):
        run = cli(*argv, "--dsn", empty_database_dsn)
        assert_one_line_error(run, "migrations not applied", "agentcore migrate up")


def test_a_half_migrated_database_also_says_migrations_not_applied(
    cli: Cli, empty_database_dsn: str
) -> None:
    cli("migrate", "up", "--dsn", empty_database_dsn)
    # Back to 0002: the metadata column of 0003 is missing.
    later = [s.id for s in migrations.status(empty_database_dsn) if s.id > "0002_session_scoped"]
    cli("migrate", "down", "--steps", str(len(later)), "--dsn", empty_database_dsn)
    run = cli("history", "--agent", "a", "--session", "s", "--dsn", empty_database_dsn)
    assert_one_line_error(run, "migrations not applied")


def test_openai_without_an_api_key_is_one_line(cli: Cli, database_dsn: str) -> None:
    run = cli(
        "chat", "--agent", "a", "--session", "s", "hi", "--model", "openai", "--dsn", database_dsn
    )
    assert_one_line_error(run, "OPENAI_API_KEY")


def test_debug_adds_the_traceback(cli: Cli) -> None:
    run = cli("--debug", "sessions", "--agent", "a", "--dsn", "host=127.0.0.1 port=1")
    assert run.code == 1
    assert "Traceback (most recent call last)" in run.err
    assert run.err.splitlines()[-1].startswith("agentcore: error: cannot connect")


def test_a_usage_error_exits_2(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exc:
        cli("history", "--agent", "a")
    assert exc.value.code == 2


def test_as_a_subprocess_an_error_is_one_line_without_traceback() -> None:
    run = subprocess_cli("history", "--agent", "a", "--session", "s", "--dsn", "nonsense==")
    assert_one_line_error(run, "invalid database DSN (from --dsn): unknown keyword")


# --- the embedded default database -----------------------------------------------------


@pytest.mark.slow
def test_the_embedded_default_is_created_reused_and_stopped(cli: Cli, cli_data_dir: Path) -> None:
    before = cli("db", "info")
    assert f"data directory: {(cli_data_dir / 'pgdata').resolve()}" in before.out
    assert "not created yet" in before.out or "stopped" in before.out

    # Two invocations at once: one starts the server, both use it.
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agentcore",
                "chat",
                "--agent",
                "a",
                "--session",
                f"s{i}",
                f"hello {i}",
            ],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = [p.communicate(timeout=120) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], results

    info = cli("db", "info")
    assert "status:         running (pid " in info.out
    listed = json.loads(cli("sessions", "--agent", "a", "--json").out)
    assert sorted(s["session_id"] for s in listed["sessions"]) == ["s0", "s1"]

    stopped = cli("db", "stop")
    assert stopped.out.startswith("stopped: ")
    assert "stopped (starts on the next command" in cli("db", "info").out
    assert cli("db", "stop").out.startswith("not running: ")

    # The next command starts it again, with the data kept.
    again = cli("history", "--agent", "a", "--session", "s1", "--json")
    assert json.loads(again.out)[0]["content"] == "hello 1"


@pytest.mark.slow
def test_a_wrong_password_is_one_line(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    server = embedded.start(embedded.default_data_dir())
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS pw_user")
        conn.execute("CREATE ROLE pw_user LOGIN PASSWORD 'right'")
        row = conn.execute("SHOW hba_file").fetchone()
        assert row is not None
        hba = Path(row[0])
        hba.write_text("local all pw_user scram-sha-256\n" + hba.read_text())
        conn.execute("SELECT pg_reload_conf()")
    dsn = psycopg.conninfo.make_conninfo(server.dsn, user="pw_user", password="wrong")
    monkeypatch.setenv("AGENTCORE_DATABASE_URL", dsn)  # a password stays out of argv
    run = cli("sessions", "--agent", "a")
    assert_one_line_error(run, 'password authentication failed for user "pw_user"')
    # Given with --dsn, the same error comes after the warning that argv shows it.
    warning, error = cli("sessions", "--agent", "a", "--dsn", dsn).err.splitlines()
    assert warning.startswith("agentcore: warning: --dsn holds a password")
    assert error == run.err.strip()


def test_migrate_up_keeps_a_predecessor_databases_rows_under_the_legacy_session(
    cli: Cli, empty_database_dsn: str
) -> None:
    with psycopg.connect(empty_database_dsn) as conn:  # made by the predecessor, not by yoyo
        conn.execute(
            "CREATE TABLE conversation_history (id serial PRIMARY KEY,"
            " agent_name varchar(255) NOT NULL, role varchar(50) NOT NULL,"
            " content text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(
            "INSERT INTO conversation_history (agent_name, role, content)"
            " VALUES ('support', 'user', 'old question'), ('support', 'assistant', 'old answer')"
        )
    up = cli("migrate", "up", "--dsn", empty_database_dsn)
    assert up.code == 0, up.err
    run = cli(
        "history",
        "--agent",
        "support",
        "--session",
        "__legacy__",
        "--json",
        "--dsn",
        empty_database_dsn,
    )
    assert [m["content"] for m in json.loads(run.out)] == ["old question", "old answer"]


class _ChatCompletions(BaseHTTPRequestHandler):
    """A loopback OpenAI-compatible server: records each request, answers with one reply."""

    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {"path": self.path, "auth": self.headers["Authorization"], "body": body}
        )
        said = body["messages"][-1]["content"]
        reply = json.dumps(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": f"served: {said}"},
                    }
                ],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest's output clean
        return


def test_chat_with_openai_talks_to_an_openai_compatible_server(
    cli: Cli, database_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatCompletions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{server.server_port}/v1")
        args = [
            "--agent",
            "a",
            "--session",
            "s",
            "--model",
            "openai",
            "--model-name",
            "tiny",
            "--dsn",
            database_dsn,
        ]
        first = cli("chat", *args, "hello")
        second = cli("chat", *args, "again")
    finally:
        server.shutdown()
        server.server_close()
    assert (first.code, first.out.strip()) == (0, "served: hello"), first.err
    assert second.out.strip() == "served: again"
    last = _ChatCompletions.requests[-1]
    assert last["path"] == "/v1/chat/completions" and last["auth"] == "Bearer sk-local"
    assert last["body"]["model"] == "tiny"
    assert [(m["role"], m["content"]) for m in last["body"]["messages"]] == [
        ("user", "hello"),
        ("assistant", "served: hello"),
        ("user", "again"),
    ]


# --- the command itself, and what its output says ---------------------------------------


def test_version_prints_the_installed_version(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exited:
        cli("--version")
    assert exited.value.code == 0
    run = subprocess_cli("--version")
    assert (run.code, run.err) == (0, "")
    assert (
        run.out
        == f"agentcore (agentcore-history) {importlib.metadata.version('agentcore-history')}\n"
    )


def test_a_bare_command_prints_the_help_and_succeeds() -> None:
    run = subprocess_cli()
    assert (run.code, run.err) == (0, "")
    assert run.out.startswith("usage: python -m agentcore [-h] [--version]")
    assert run.out == subprocess_cli("--help").out


def test_counts_are_singular_for_one(cli: Cli, database_dsn: str) -> None:
    dsn = ("--dsn", database_dsn)
    assert cli("chat", "--agent", "a", "--session", "s", "hi", *dsn).code == 0
    copied = cli(
        "sessions", "copy", "--agent", "a", "--from", "s", "--to", "t", "--up-to", "1", *dsn
    )
    assert copied.out == "copied session 's' to 't' of agent 'a' (1 message)\n", copied.err
    forgot = cli("forget", "--agent", "a", "--session", "t", *dsn)
    assert forgot.out == "forgot session 't' of agent 'a' (1 message)\n"
    both = cli("sessions", "copy", "--agent", "a", "--from", "s", "--to", "u", *dsn)
    assert both.out.endswith("(2 messages)\n")


def test_a_missing_session_hints_at_a_command_that_lists_the_agents_sessions(
    cli: Cli, database_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        cli("chat", "--agent", "my agent", "--session", "s", "hi", "--dsn", database_dsn).code == 0
    )
    run = cli("history", "--agent", "my agent", "--session", "nope", "--dsn", database_dsn)
    assert_one_line_error(
        run,
        "agent 'my agent' has no session 'nope' "
        "(see `agentcore sessions --agent 'my agent'` with the same --dsn)",
    )
    monkeypatch.setenv("AGENTCORE_DATABASE_URL", database_dsn)
    run = cli("forget", "--agent", "my agent", "--session", "nope")
    assert run.err.endswith("(see `agentcore sessions --agent 'my agent'`)\n")
    # The hint works as written.
    hint = run.err.split("`")[1]
    listed = cli(*shlex.split(hint)[1:])
    assert listed.code == 0 and "s " in listed.out.splitlines()[1]


def test_sessions_shows_the_last_write_to_the_minute(cli: Cli, database_dsn: str) -> None:
    cli("chat", "--agent", "a", "--session", "s", "hi", "--dsn", database_dsn)
    header, row = cli("sessions", "--agent", "a", "--dsn", database_dsn).out.splitlines()
    assert header == "SESSION  MESSAGES  LAST WRITTEN (UTC)"
    assert re.fullmatch(r"s               2  \d{4}-\d\d-\d\d \d\d:\d\d", row), row
