"""Every entry point that opens connections, through a real PgBouncer (tests/pgbouncer.py).

In transaction mode PgBouncer runs each transaction of a client on whichever
server connection is free, and keeps its server connections from one client to
the next: a statement psycopg prepared is missing on the next transaction's
connection, or already there for the next client (``prepared statement
"_pg3_0" does not exist`` / ``already exists``). Each test here opens several
clients one after another, as a service restarting or a nightly backup does.
The contract suite runs through PgBouncer too (the ``postgres-pgbouncer``
variant of its ``repo`` fixture).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from langchain_core.messages import AIMessage, HumanMessage

from agentcore import PostgresHistoryRepository, SyncHistoryRepository, migrations
from agentcore.integrations.langchain import AgentcoreChatMessageHistory
from agentcore.postgres import check_connection
from tests.conftest import BehindPgBouncer
from tests.integration.test_cli import ROOT, Run
from tests.pgbouncer import PGBOUNCER_ENV, Bouncer, pgbouncer_binary, running_pgbouncer
from tests.support import fresh_database, scratch_dir

CALLS = 12
"""More than psycopg's prepare_threshold (5): a statement run this often is prepared."""

OLD = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def bounced(behind_pgbouncer: BehindPgBouncer) -> Iterator[tuple[str, str]]:
    """A migrated database of its own: (its direct DSN, its DSN through PgBouncer)."""
    with fresh_database(behind_pgbouncer.pg) as dsn:
        yield dsn, behind_pgbouncer.bouncer.through(dsn)


@pytest.fixture
def session_mode(behind_pgbouncer: BehindPgBouncer) -> Iterator[Bouncer]:
    """A second PgBouncer, in session mode, in front of the same server."""
    binary = pgbouncer_binary()
    assert binary is not None  # behind_pgbouncer found it
    with running_pgbouncer(binary, behind_pgbouncer.server, pool_mode="session") as bouncer:
        yield bouncer


@pytest.fixture
def one_server_connection(behind_pgbouncer: BehindPgBouncer) -> Iterator[Bouncer]:
    """A PgBouncer in transaction mode with one server connection per database."""
    binary = pgbouncer_binary()
    assert binary is not None
    with running_pgbouncer(binary, behind_pgbouncer.server, pool_size=1) as bouncer:
        yield bouncer


async def some_turns(dsn: str, session: str) -> None:
    async with PostgresHistoryRepository.from_dsn(dsn, max_size=2) as repo:
        for n in range(CALLS):
            await repo.append_messages("a", session, [{"role": "user", "content": f"m{n}"}])
            assert len(await repo.load_history("a", session, 3)) == min(n + 1, 3)
            assert await repo.get_session("a", session) is not None


async def prepare_threshold_of(dsn: str) -> int | None:
    async with PostgresHistoryRepository.from_dsn(dsn, min_size=1, max_size=1) as repo:
        async with repo._pool.connection() as conn:
            threshold: int | None = conn.prepare_threshold
            return threshold


async def test_repository_pools_prepare_statements_only_when_not_behind_a_pooler(
    bounced: tuple[str, str],
) -> None:
    direct, through = bounced
    assert await prepare_threshold_of(direct) == 5  # psycopg's default: plans are kept
    assert await prepare_threshold_of(through) is None


async def test_repositories_opened_one_after_another_through_pgbouncer_all_work(
    bounced: tuple[str, str],
) -> None:
    _, through = bounced
    for n in range(3):
        await some_turns(through, f"s{n}")
    async with PostgresHistoryRepository.from_dsn(through) as repo:
        assert len(await repo.load_history("a", "s2")) == CALLS


async def test_repositories_through_pgbouncer_in_session_mode_work(
    bounced: tuple[str, str], session_mode: Bouncer
) -> None:
    through = session_mode.through(bounced[0])
    assert await prepare_threshold_of(through) is None  # PgBouncer's own process ids here too
    for n in range(3):
        await some_turns(through, f"s{n}")


def test_sync_repository_and_langchain_sync_history_through_pgbouncer_work_again_and_again(
    bounced: tuple[str, str],
) -> None:
    _, through = bounced
    for run in range(3):
        with SyncHistoryRepository.from_dsn(through, max_size=2) as sync:
            history = AgentcoreChatMessageHistory("s", sync)
            for n in range(CALLS // 2):
                history.add_messages([HumanMessage(f"q{run}.{n}"), AIMessage(f"a{run}.{n}")])
                assert history.messages[-1].content == f"a{run}.{n}"
            assert len(sync.load_history("langchain", "s")) == (run + 1) * CALLS


async def test_migrations_and_check_connection_through_pgbouncer_leave_nothing_prepared(
    behind_pgbouncer: BehindPgBouncer, one_server_connection: Bouncer
) -> None:
    """Every client shares PgBouncer's one server connection: what one leaves, the next meets."""
    with fresh_database(behind_pgbouncer.pg, migrated=False) as direct:
        through = one_server_connection.through(direct)
        await check_connection(through)
        for _ in range(2):
            assert migrations.apply(through)
            assert all(state.applied for state in migrations.status(through))
            assert migrations.newest_operation(through) == "apply"
            assert migrations.rollback(through, steps=None)
        assert migrations.apply(through)
        with psycopg.connect(through, autocommit=True) as conn:
            left = conn.execute("SELECT name FROM pg_prepared_statements").fetchall()
        assert left == []
        await some_turns(through, "s")


def cli(dsn: str, *argv: str) -> Run:
    """``agentcore`` in a process of its own, as cron runs it, on ``dsn`` from the environment."""
    done = subprocess.run(
        [sys.executable, "-m", "agentcore", *argv],
        cwd=ROOT,
        env={**os.environ, "AGENTCORE_DATABASE_URL": dsn},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(done.returncode, done.stdout, done.stderr)


async def fill(dsn: str) -> None:
    async with PostgresHistoryRepository.from_dsn(dsn) as repo:
        for i in range(CALLS):
            await repo.append_messages("a", f"s{i}", [{"role": "user", "content": f"q{i}"}])
        await repo.set_session_metadata("a", "s0", {"owner": "alice", "title": "T"})
        await repo.import_session("a", "idle", [{"role": "user", "content": "x"}], updated_at=OLD)


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_cli_exports_twice_imports_and_purges_through_pgbouncer(
    behind_pgbouncer: BehindPgBouncer, request: pytest.FixtureRequest, mode: str
) -> None:
    bouncer: Bouncer = behind_pgbouncer.bouncer
    if mode == "session":
        bouncer = request.getfixturevalue("session_mode")
    with (
        fresh_database(behind_pgbouncer.pg) as source,
        fresh_database(behind_pgbouncer.pg, migrated=False) as target,
        scratch_dir("agentcore-bounced-export-") as folder,
    ):
        source, target = bouncer.through(source), bouncer.through(target)
        asyncio.run(fill(source))
        exports = [folder / f"export{n}.jsonl" for n in range(3)]
        for path in exports[:2]:  # the nightly backup, and the next night's
            run = cli(source, "export", "--out", str(path))
            assert run.code == 0, run
        assert exports[0].read_bytes() == exports[1].read_bytes()
        assert cli(target, "migrate", "up").code == 0
        run = cli(target, "import", str(exports[0]))
        assert run.code == 0, run
        run = cli(target, "export", "--out", str(exports[2]))
        assert run.code == 0, run
        assert exports[2].read_bytes() == exports[0].read_bytes()
        run = cli(target, "sessions", "purge", "--idle-for", "30d", "--yes")
        assert run.code == 0, run
        assert "1 conversation" in run.out, run
        run = cli(target, "sessions", "--agent", "a", "--json")
        assert run.code == 0, run
        assert '"idle"' not in run.out and '"s0"' in run.out


@pytest.mark.parametrize("ci", [False, True])
def test_without_pgbouncer_its_tests_are_reported_loudly_and_fail_in_ci(ci: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env[PGBOUNCER_ENV] = "/nonexistent/pgbouncer"
    if ci:
        env["CI"] = "true"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            f"{__file__}::test_repositories_opened_one_after_another_through_pgbouncer_all_work",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ci:
        assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout
        assert "pgbouncer is not installed, and CI must test through it" in done.stdout
    else:
        assert done.returncode == pytest.ExitCode.OK, done.stdout
        assert "PGBOUNCER NOT TESTED: 1 tests skipped" in done.stdout
