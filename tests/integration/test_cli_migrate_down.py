"""``migrate down`` says what it drops and asks; nothing silently undoes an explicit down."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from agentcore import embedded, migrations
from tests.support import CITUS_MIGRATION, LANGGRAPH_MIGRATION, scratch_dir
from tests.support import run_cli as run

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = sorted(
    p.name.removesuffix(".sql")
    for p in (ROOT / "migrations").glob("*.sql")
    if not p.name.endswith(".rollback.sql")
)
NEWEST_FIRST = ", ".join(reversed(MIGRATIONS))
# Rolling back down to 0002 undoes 0003, which drops session metadata: it asks.
THROUGH_0003 = MIGRATIONS[MIGRATIONS.index("0003_session_metadata") :][::-1]
AGENTCORE = [sys.executable, "-m", "agentcore"]
PENDING = [word for migration in MIGRATIONS for word in ("pending", migration)]


@pytest.fixture(autouse=True)
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENTCORE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AGENTCORE_DATABASE_URL", raising=False)


def store_two_conversations(capsys: pytest.CaptureFixture[str], *dsn: str) -> None:
    for session in ("s1", "s2"):
        assert run(capsys, "chat", "--agent", "a", "--session", session, "hi", *dsn)[0] == 0


def test_down_without_a_terminal_refuses_and_says_what_it_would_drop(
    capsys: pytest.CaptureFixture[str], database_dsn: str
) -> None:
    dsn = ("--dsn", database_dsn)
    store_two_conversations(capsys, *dsn)

    code, out, err = run(capsys, "migrate", "down", "--all", *dsn)
    assert (code, out) == (1, "")
    assert err.strip() == (
        f"agentcore: error: rolling back {NEWEST_FIRST} "
        "on the database given by --dsn deletes every stored conversation: 2 conversations, "
        "4 messages; not done: pass --yes to confirm (standard input is not a terminal)"
    )
    steps_to_0001 = str(len(MIGRATIONS) - 1)
    code, out, err = run(capsys, "migrate", "down", "--steps", steps_to_0001, *dsn)
    assert code == 1
    assert "merges the stored conversations (2 conversations, 4 messages)" in err
    code, out, err = run(capsys, "migrate", "down", "--steps", str(len(THROUGH_0003)), *dsn)
    assert code == 1
    assert "drops the metadata of the stored conversations" in err
    assert "(2 conversations, 4 messages)" in err
    applied = ["applied"] * len(MIGRATIONS)
    assert run(capsys, "migrate", "status", *dsn)[1].split()[::2] == applied

    # Rolling back the Citus distribution asks nothing (without Citus it does
    # nothing; on a cluster it copies the rows back onto the coordinator)...
    code, out, _ = run(capsys, "migrate", "down", *dsn)
    assert (code, out) == (0, f"rolled back {CITUS_MIGRATION}\n")
    # ...rolling back LangGraph's tables asks (they may hold checkpoints)...
    code, _, err = run(capsys, "migrate", "down", *dsn)
    assert code == 1 and f"rolling back {LANGGRAPH_MIGRATION} " in err
    assert run(capsys, "migrate", "down", "--yes", *dsn)[0] == 0
    # ...so does rolling back 0007, which drops the scoped state.
    code, out, err = run(capsys, "migrate", "down", "--steps", "1", *dsn)
    assert code == 1
    assert "drops the scoped state (Google ADK's session, user: and app: state)" in err
    code, out, _ = run(capsys, "migrate", "down", "--steps", "1", "--yes", *dsn)
    assert code == 0 and out.endswith("rolled back 0007_scoped_state\n")
    # Rolling back only what loses nothing (0006 moves the role's check back
    # to the table, 0005 resets a fillfactor) asks nothing.
    code, out, _ = run(capsys, "migrate", "down", "--steps", "2", *dsn)
    assert (code, out) == (
        0,
        "rolled back 0006_cached_role_check\nrolled back 0005_hot_session_updates\n",
    )
    assert run(capsys, "migrate", "up", *dsn)[0] == 0

    code, out, _ = run(capsys, "migrate", "down", "--all", "--yes", *dsn)
    assert code == 0
    assert out.splitlines() == [
        f"Rolling back {NEWEST_FIRST} on the database "
        "given by --dsn deletes every stored conversation: 2 conversations, 4 messages.",
        *(f"rolled back {m}" for m in reversed(MIGRATIONS)),
    ]


def test_down_with_nothing_stored_needs_no_confirmation(
    capsys: pytest.CaptureFixture[str], database_dsn: str
) -> None:
    code, out, _ = run(capsys, "migrate", "down", "--all", "--dsn", database_dsn)
    assert code == 0 and len(out.splitlines()) == len(MIGRATIONS)


def _down_on_a_terminal(dsn: str, answer: str) -> tuple[int, str]:
    """``migrate down`` with a terminal as standard input, typed ``answer`` in advance."""
    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer.encode())  # waits in the terminal until read
        done = subprocess.run(
            [*AGENTCORE, "migrate", "down", "--steps", str(len(THROUGH_0003)), "--dsn", dsn],
            cwd=ROOT,
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
        )
    finally:
        os.close(controller)
        os.close(terminal)
    return done.returncode, done.stdout


def test_down_on_a_terminal_asks_and_no_keeps_everything(
    capsys: pytest.CaptureFixture[str], database_dsn: str
) -> None:
    store_two_conversations(capsys, "--dsn", database_dsn)

    code, out = _down_on_a_terminal(database_dsn, "n\n")
    assert code == 1
    assert f"Rolling back {', '.join(THROUGH_0003)} on the database given by --dsn" in out
    assert "Roll back? [y/N] " in out and "rollback cancelled: nothing was changed" in out
    status = run(capsys, "migrate", "status", "--dsn", database_dsn)[1].split()
    assert status[::2] == ["applied"] * len(MIGRATIONS)

    code, out = _down_on_a_terminal(database_dsn, "\x04")  # Ctrl-D: end of input
    assert code == 1 and "Traceback" not in out
    assert out.endswith("agentcore: error: rollback cancelled: nothing was changed\n")

    code, out = _down_on_a_terminal(database_dsn, "y\n")
    assert code == 0, out
    rolled_back = "".join(f"rolled back {m}\n" for m in THROUGH_0003)
    assert out.endswith(f"Roll back? [y/N] {rolled_back}")


def test_demo_does_not_reapply_migrations_rolled_back_on_purpose(
    capsys: pytest.CaptureFixture[str], database_dsn: str
) -> None:
    dsn = ("--dsn", database_dsn)
    assert run(capsys, "migrate", "down", "--all", "--yes", *dsn)[0] == 0
    code, _, err = run(capsys, "demo", *dsn)
    assert code == 1
    assert "rolled back with `migrate down`" in err and "agentcore migrate up" in err
    assert run(capsys, "migrate", "status", *dsn)[1].split() == PENDING


@pytest.fixture(scope="module")
def embedded_home() -> Iterator[Path]:
    """An AGENTCORE_DATA_DIR of this module's own (its embedded server stopped at the end)."""
    with scratch_dir("agentcore-down-") as parent:
        try:
            yield parent
        finally:
            embedded.stop(parent / "pgdata")


@pytest.mark.slow
def test_after_an_explicit_down_the_embedded_database_waits_for_migrate_up(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, embedded_home: Path
) -> None:
    monkeypatch.setenv("AGENTCORE_DATA_DIR", str(embedded_home))
    store_two_conversations(capsys)

    code, out, err = run(capsys, "migrate", "down", "--all")
    assert code == 1 and "2 conversations, 4 messages" in err
    assert f"on the embedded database in {embedded_home.resolve()}" in err

    code, out, _ = run(capsys, "migrate", "down", "--all", "--yes")
    assert code == 0
    assert out.splitlines()[-1] == "Commands now refuse this database until `agentcore migrate up`."
    assert run(capsys, "migrate", "status")[1].split() == PENDING

    for command in (["sessions", "--agent", "a"], ["chat", "--agent", "a", "--session", "s", "x"]):
        code, out, err = run(capsys, *command)
        assert (code, out) == (1, "")
        assert err.strip().endswith(
            "they were rolled back with `migrate down` on the embedded database in "
            f"{embedded_home.resolve() / 'pgdata'}, and commands do not re-apply them on their "
            "own; run `agentcore migrate up` (for the embedded database)"
        )
    assert run(capsys, "migrate", "status")[1].split() == PENDING

    code, out, _ = run(capsys, "migrate", "up")
    assert out.splitlines() == [f"applied {m}" for m in MIGRATIONS]
    assert run(capsys, "chat", "--agent", "a", "--session", "s", "back")[0] == 0


@pytest.mark.slow
def test_db_dsn_prints_only_the_embedded_databases_dsn(
    monkeypatch: pytest.MonkeyPatch, embedded_home: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTCORE_")}
    env["AGENTCORE_DATA_DIR"] = str(embedded_home)
    script = (
        'export AGENTCORE_DATABASE_URL="$(python -m agentcore db dsn)"\n'
        "python -m agentcore chat --agent docs --session s1 hello >/dev/null\n"
        'printf "%s\\n" "$AGENTCORE_DATABASE_URL"\n'
    )
    done = subprocess.run(
        ["bash", "-ec", script],
        cwd=ROOT,
        env={**env, "PATH": f"{Path(sys.executable).parent}:{env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (dsn,) = done.stdout.splitlines()
    # Applications get the least-privilege role; the owner's DSN only on request.
    owner = embedded.status(embedded_home / "pgdata").dsn
    assert owner is not None
    assert dsn == psycopg.conninfo.make_conninfo(owner, user="agentcore_app")
    owner_run = subprocess.run(
        [sys.executable, "-m", "agentcore", "db", "dsn", "--owner"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert owner_run.stdout.splitlines() == [owner]
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM conversation_history WHERE agent_name = 'docs'"
        ).fetchone()
        assert row == (2,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DROP TABLE conversation_history")
    assert [m.applied for m in migrations.status(dsn)] == [True] * len(MIGRATIONS)
