"""The lifecycle commands, run as the installed command would be (a subprocess)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from agentcore import PostgresHistoryRepository
from agentcore.cli.lifecycle import parse_duration
from agentcore.cli.progress import ProgressBar
from agentcore.errors import InvalidInputError
from tests.integration.test_cli import ROOT, Run, assert_one_line_error

OLD = datetime(2024, 1, 1, tzinfo=UTC)
AFTER_IS_NOT_A_CURSOR = (
    "agentcore: error: --after is not a cursor agentcore printed: pass the CURSOR of a "
    "`more: --after CURSOR` line (or the next_cursor of --json), as it is"
)


def cli(dsn: str, *argv: str, stdin: str | None = None) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "agentcore", *argv, "--dsn", dsn],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "AGENTCORE_DATABASE_URL"},
        input=stdin or "",
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def store(database_dsn: str) -> Iterator[str]:
    """Agent "a": sessions s0..s4 (s0 oldest), s4 owned by alice; two idle conversations."""

    async def fill() -> None:
        async with PostgresHistoryRepository.from_dsn(database_dsn) as repo:
            for i in range(5):
                await repo.append_messages(
                    "a",
                    f"s{i}",
                    [{"role": "user", "content": f"q{i}.{n}", "id": f"m{n}"} for n in range(3)],
                )
            await repo.set_session_metadata("a", "s4", {"owner": "alice", "title": "T"})
            await repo.import_session(
                "a", "idle1", [{"role": "user", "content": "x"}], updated_at=OLD
            )
            await repo.import_session(
                "b", "idle2", [{"role": "user", "content": "y"}], updated_at=OLD
            )

    asyncio.run(fill())
    yield database_dsn


def test_sessions_pages_through_a_cursor(store: str) -> None:
    first = cli(store, "sessions", "--agent", "a", "--limit", "2", "--json")
    assert first.code == 0, first.err
    page = json.loads(first.out)
    assert [s["session_id"] for s in page["sessions"]] == ["s4", "s3"]
    seen = [s["session_id"] for s in page["sessions"]]
    while page["next_cursor"]:
        run = cli(
            store,
            "sessions",
            "--agent",
            "a",
            "--limit",
            "2",
            "--json",
            "--after",
            page["next_cursor"],
        )
        page = json.loads(run.out)
        seen += [s["session_id"] for s in page["sessions"]]
    assert seen == ["s4", "s3", "s2", "s1", "s0", "idle1"]
    text = cli(store, "sessions", "--agent", "a", "--limit", "2")
    assert text.out.splitlines()[-1].startswith("more: --after ")
    owned = json.loads(cli(store, "sessions", "--agent", "a", "--owner", "alice", "--json").out)
    assert owned["sessions"][0]["metadata"] == {"owner": "alice", "title": "T"}
    assert owned["next_cursor"] is None
    bad = cli(store, "sessions", "--agent", "a", "--after", "garbage")
    assert_one_line_error(bad, AFTER_IS_NOT_A_CURSOR)


def test_sessions_after_walks_past_a_legacy_id_and_refuses_a_forged_time(
    database_dsn: str,
) -> None:
    with psycopg.connect(database_dsn, autocommit=True) as conn:
        for n, session in enumerate(["b\x1bz", "a\nz", "c"]):  # a\nz, then b\x1bz, then c
            conn.execute(
                "INSERT INTO conversation_sessions (agent_name, session_id, next_seq, updated_at)"
                " VALUES ('a', %s, 0, '2026-05-09T12:00:00Z'::timestamptz - %s * interval '1s')",
                (session, 0 if n < 2 else 1),
            )
    seen: list[str] = []
    after: list[str] = []
    while True:
        run = cli(database_dsn, "sessions", "--agent", "a", "--limit", "1", "--json", *after)
        assert run.code == 0, run.err
        page = json.loads(run.out)
        seen += [s["session_id"] for s in page["sessions"]]
        if not page["next_cursor"]:
            break
        after = ["--after", page["next_cursor"]]
    assert seen == ["a\nz", "b\x1bz", "c"]
    forged = base64.urlsafe_b64encode(b'[1,"s","0001-01-01T00:00:00+14:00","s"]').decode()
    bad = cli(database_dsn, "sessions", "--agent", "a", "--after", forged)
    assert_one_line_error(bad, AFTER_IS_NOT_A_CURSOR)


def test_history_reads_backwards_page_by_page(store: str) -> None:
    run = cli(
        store, "history", "--agent", "a", "--session", "s1", "--limit", "2", "--page", "--json"
    )
    page = json.loads(run.out)
    assert [m["content"] for m in page["messages"]] == ["q1.1", "q1.2"]
    older = json.loads(
        cli(
            store,
            "history",
            "--agent",
            "a",
            "--session",
            "s1",
            "--limit",
            "2",
            "--before",
            page["next_cursor"],
            "--json",
        ).out
    )
    assert [(m["content"], m["id"]) for m in older["messages"]] == [("q1.0", "m0")]
    assert older["next_cursor"] is None
    text = cli(store, "history", "--agent", "a", "--session", "s1", "--limit", "1", "--page")
    assert text.out.splitlines()[-1].startswith("older: --before ")
    bad = cli(store, "history", "--agent", "a", "--session", "s1", "--before", "garbage")
    assert_one_line_error(
        bad,
        "agentcore: error: --before is not a cursor agentcore printed: pass the CURSOR of an "
        "`older: --before CURSOR` line (or the next_cursor of --json), as it is",
    )
    # A sessions cursor is not a history cursor.
    wrong = json.loads(cli(store, "sessions", "--agent", "a", "--limit", "1", "--json").out)
    bad = cli(store, "history", "--agent", "a", "--session", "s1", "--before", wrong["next_cursor"])
    assert_one_line_error(bad, "--before is not a cursor agentcore printed")


def test_sessions_copy_branches_a_conversation(store: str) -> None:
    run = cli(
        store, "sessions", "copy", "--agent", "a", "--from", "s1", "--to", "branch", "--up-to", "m1"
    )
    assert run.code == 0, run.err
    assert run.out.strip() == "copied session 's1' to 'branch' of agent 'a' (2 messages)"
    again = cli(store, "sessions", "copy", "--agent", "a", "--from", "s1", "--to", "branch")
    assert_one_line_error(again, "already has a session 'branch'")
    assert_one_line_error(
        cli(store, "sessions", "copy", "--agent", "a", "--from", "nope", "--to", "x"),
        "has no session 'nope'",
    )
    assert_usage_error(
        cli(store, "sessions", "copy", "--agent", "a", "--from", "s1"),
        "sessions copy",
        "the following arguments are required: --to",
    )
    two = cli(
        store, "sessions", "copy", "--agent", "a", "--from", "s1", "--to", "two", "--up-to", "2"
    )
    assert "(2 messages)" in two.out
    past = cli(
        store, "sessions", "copy", "--agent", "a", "--from", "s1", "--to", "far", "--up-to", "99"
    )
    assert_one_line_error(
        past,
        "agentcore: error: --up-to 99 is past the end of session 's1', which holds 3 messages; "
        "nothing was copied",
    )
    assert_one_line_error(
        cli(store, "sessions", "metadata", "--agent", "a", "--session", "far"), "has no session"
    )
    whole = cli(
        store, "sessions", "copy", "--agent", "a", "--from", "s1", "--to", "all", "--up-to", "3"
    )
    assert whole.out.endswith("(3 messages)\n"), whole.err


def test_sessions_metadata_shows_merges_and_replaces(store: str) -> None:
    run = cli(
        store,
        "sessions",
        "metadata",
        "--agent",
        "a",
        "--session",
        "s4",
        "--set",
        '{"title": "New"}',
    )
    assert json.loads(run.out) == {"owner": "alice", "title": "New"}
    run = cli(
        store,
        "sessions",
        "metadata",
        "--agent",
        "a",
        "--session",
        "s4",
        "--set",
        '{"x": 1}',
        "--replace",
    )
    assert json.loads(run.out) == {"x": 1}
    assert json.loads(
        cli(store, "sessions", "metadata", "--agent", "a", "--session", "s4").out
    ) == {"x": 1}
    assert_one_line_error(
        cli(store, "sessions", "metadata", "--agent", "a", "--session", "s4", "--set", "[1]"),
        "metadata must be a dict",
    )


def test_sessions_purge_counts_asks_then_deletes(store: str) -> None:
    dry = cli(store, "sessions", "purge", "--idle-for", "30d", "--dry-run")
    assert dry.code == 0, dry.err
    assert dry.out.strip() == (
        "would purge 2 conversations (2 messages) of every agent idle for more than 30d"
    )
    # Not a terminal and no --yes: nothing is deleted.
    refused = cli(store, "sessions", "purge", "--idle-for", "30d", stdin="y\n")
    assert_one_line_error(
        refused, "nothing deleted: pass --yes to confirm (standard input is not a terminal)"
    )
    one = cli(store, "sessions", "purge", "--idle-for", "30d", "--agent", "b", "--yes")
    assert (
        one.out.strip() == "purged 1 conversation (1 message) of agent 'b' idle for more than 30d"
    )
    rest = cli(
        store,
        "sessions",
        "purge",
        "--idle-for",
        "30d",
        "--yes",
        "--batch-size",
        "1",
        "--pause",
        "0",
        "--max-impact",
        "1",
    )
    assert rest.out.startswith("purged 1 conversation (1 message)")
    assert rest.err == ""  # no progress bar when stderr is not a terminal
    assert cli(store, "sessions", "purge", "--idle-for", "30d", "--yes").out.startswith(
        "purged 0 conversations"
    )
    assert_one_line_error(cli(store, "sessions", "purge", "--idle-for", "30 days"), "--idle-for")


@pytest.mark.parametrize("share", ["0", "1.01", "nan"])
def test_sessions_purge_refuses_a_max_impact_out_of_range(store: str, share: str) -> None:
    refused = cli(store, "sessions", "purge", "--idle-for", "30d", "--yes", "--max-impact", share)
    assert_one_line_error(refused, f"--max-impact must be above 0 and at most 1, got {share}")
    dry = cli(store, "sessions", "purge", "--idle-for", "30d", "--dry-run")
    assert dry.out.startswith("would purge 2 conversations")  # nothing was deleted


def _purge_on_a_terminal(dsn: str, answer: str) -> Run:
    """``sessions purge`` with a terminal as standard input, ``answer`` typed in advance."""
    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer.encode())  # waits in the terminal until read
        done = subprocess.run(
            [sys.executable, "-m", "agentcore", "sessions", "purge", "--idle-for", "30d"],
            cwd=ROOT,
            env={**os.environ, "AGENTCORE_DATABASE_URL": dsn},
            stdin=terminal,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        os.close(controller)
        os.close(terminal)
    return Run(done.returncode, done.stdout, done.stderr)


def test_declining_the_purge_on_a_terminal_says_it_was_cancelled(store: str) -> None:
    question = "delete 2 conversations (2 messages) of every agent, idle for more than 30d? [y/N] "
    for answer in ("n\n", "\x04"):  # no, and Ctrl-D
        run = _purge_on_a_terminal(store, answer)
        assert (run.code, run.out) == (1, ""), run
        assert run.err == f"{question}agentcore: error: purge cancelled: nothing was deleted\n"
    assert (
        "would purge 2 conversations"
        in cli(store, "sessions", "purge", "--idle-for", "30d", "--dry-run").out
    )
    run = _purge_on_a_terminal(store, "y\n")
    assert run.code == 0, run
    assert run.out.startswith("purged 2 conversations (2 messages) of every agent")


def assert_usage_error(run: Run, command: str, message: str) -> None:
    """Exit 2, the usage line of ``agentcore COMMAND``, and ``message`` as its error."""
    assert (run.code, run.out) == (2, ""), run
    assert run.err.startswith(f"usage: python -m agentcore {command} "), run.err
    assert run.err.splitlines()[-1] == f"python -m agentcore {command}: error: {message}"


USAGE_ERRORS = [
    (
        ["--agent", "a", "--idle-for", "3d"],
        "sessions list",
        "unrecognized arguments: --idle-for 3d",
    ),
    ([], "sessions list", "the following arguments are required: --agent"),
    (
        ["list", "--agent", "a", "--from", "s1"],
        "sessions list",
        "unrecognized arguments: --from s1",
    ),
    (
        ["copy", "--agent", "a", "--to", "t"],
        "sessions copy",
        "the following arguments are required: --from",
    ),
    (
        ["copy", "--agent", "a", "--from", "s1", "--to", "t", "--json"],
        "sessions copy",
        "unrecognized arguments: --json",
    ),
    (
        ["purge", "--agent", "a"],
        "sessions purge",
        "the following arguments are required: --idle-for",
    ),
    (
        ["purge", "--idle-for", "3d", "--set", "{}"],
        "sessions purge",
        "unrecognized arguments: --set {}",
    ),
    (
        ["metadata", "--agent", "a"],
        "sessions metadata",
        "the following arguments are required: --session",
    ),
    (
        ["metadata", "--agent", "a", "--session", "s1", "--dry-run"],
        "sessions metadata",
        "unrecognized arguments: --dry-run",
    ),
    (
        ["--agent", "b", "purge", "--idle-for", "30d"],
        "sessions",
        "--agent before the action 'purge': an action's options follow its name "
        "(see `python -m agentcore sessions purge --help`)",
    ),
]


@pytest.mark.parametrize(
    ("argv", "command", "message"),
    USAGE_ERRORS,
    ids=[" ".join(argv) or "(nothing)" for argv, _, _ in USAGE_ERRORS],
)
def test_each_sessions_action_takes_only_its_own_options(
    store: str, argv: list[str], command: str, message: str
) -> None:
    assert_usage_error(cli(store, "sessions", *argv), command, message)
    # Nothing was done: both idle conversations are still there.
    dry = cli(store, "sessions", "purge", "--idle-for", "30d", "--dry-run")
    assert dry.out.startswith("would purge 2 conversations")


def test_each_sessions_action_lists_only_its_own_options_in_its_help(store: str) -> None:
    purge = cli(store, "sessions", "purge", "--help")
    assert purge.code == 0
    for option in (
        "--idle-for",
        "--dry-run",
        "--batch-size",
        "--pause",
        "--max-impact",
        "--yes",
        "--agent",
    ):
        assert option in purge.out
    for option in ("--from", "--to", "--up-to", "--set", "--replace", "--owner", "--json"):
        assert option not in purge.out
    copy = cli(store, "sessions", "copy", "--help").out
    assert "--up-to" in copy and "--idle-for" not in copy and "--set" not in copy
    # Today's command lines keep working: `sessions --agent A` lists.
    listed = cli(store, "sessions", "--agent", "a", "--json")
    assert listed.code == 0, listed.err
    assert cli(store, "sessions", "list", "--agent", "a", "--json").out == listed.out


def test_export_is_utf8_whatever_the_locale(store: str) -> None:
    asyncio.run(_append(store, "a", "u", "grüße ☃"))
    done = subprocess.run(
        [sys.executable, "-m", "agentcore", "export", "--agent", "a", "--session", "u"],
        cwd=ROOT,
        env={**os.environ, "PYTHONIOENCODING": "latin-1", "LC_ALL": "C", "PYTHONUTF8": "0"}
        | {"AGENTCORE_DATABASE_URL": store},
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "grüße ☃" in done.stdout.decode("utf-8")


async def _append(dsn: str, agent: str, session: str, text: str) -> None:
    async with PostgresHistoryRepository.from_dsn(dsn) as repo:
        await repo.append_messages(agent, session, [{"role": "user", "content": text}])


def test_export_then_import_through_a_file_and_stdin(
    store: str, tmp_path: Path, empty_database_dsn: str
) -> None:
    out = tmp_path / "all.jsonl"
    run = cli(store, "export", "--out", str(out))
    assert run.code == 0, run.err
    assert run.err.strip() == f"exported 7 conversations (17 messages) to {out}"
    assert cli(empty_database_dsn, "migrate", "up").code == 0
    first = cli(empty_database_dsn, "import", str(out))
    assert first.code == 0, first.err
    assert first.out.strip() == (
        "imported 7 conversations (17 messages); skipped 0 already present; refused 0"
    )
    second = cli(empty_database_dsn, "import", "-", stdin=out.read_text(encoding="utf-8"))
    assert second.out.strip() == (
        "imported 0 conversations (0 messages); skipped 7 already present; refused 0"
    )
    # The copy exports to the same text.
    assert cli(empty_database_dsn, "export").out == out.read_text(encoding="utf-8")
    one = cli(store, "export", "--agent", "a", "--session", "s4")
    assert len(one.out.splitlines()) == 1 + 1 + 3
    assert_one_line_error(cli(store, "import", str(tmp_path / "missing.jsonl")), "cannot read")
    assert_one_line_error(cli(store, "export", "--session", "s4"), "--session needs --agent")


def test_durations() -> None:
    assert parse_duration("30d").days == 30
    assert parse_duration("12h").total_seconds() == 12 * 3600
    assert parse_duration("2w").days == 14
    for bad in ("", "30", "d", "-1d", "1y", "99999999999999d"):
        with pytest.raises(InvalidInputError, match="--idle-for"):
            parse_duration(bad)


class Terminal:
    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


def test_progress_bar_draws_on_a_terminal_only() -> None:
    terminal = Terminal()
    bar = ProgressBar(terminal, "conversation", total=200)  # type: ignore[arg-type]
    bar.update(50, "1,000 messages", force=True)
    bar.update(200, force=True)
    bar.close()
    assert terminal.text.startswith(
        "\r[########----------------------]  25% 50/200 conversations, 1,000 messages"
    )
    assert "\r[##############################] 100% 200/200 conversations" in terminal.text
    assert terminal.text.endswith("\n")
    plain = io.StringIO()
    quiet = ProgressBar(plain, "conversation", total=10)
    quiet.update(5, force=True)
    quiet.close()
    assert plain.getvalue() == ""
    one = Terminal()
    counting = ProgressBar(one, "conversation")  # type: ignore[arg-type]
    counting.update(1, "1 message", force=True)
    assert one.text == "\r1 conversation, 1 message"
    of_one = Terminal()
    ProgressBar(of_one, "conversation", total=1).update(1, force=True)  # type: ignore[arg-type]
    assert of_one.text.endswith("100% 1/1 conversation")
