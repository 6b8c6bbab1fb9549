from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from agentcore import (
    HistoryRepository,
    InMemoryHistoryRepository,
    Message,
    PostgresHistoryRepository,
    SyncHistoryRepository,
)
from agentcore.memory import _Conversation
from agentcore.repository import PORTS
from tests.conftest import BehindPgBouncer, pool_for
from tests.support import AppRoleServer, PgServer, reused_database


class ThreadedSyncRepository:
    """The async contract, served by a SyncHistoryRepository called from worker threads.

    Every call runs in a thread of its own (``asyncio.to_thread``), so the
    contract's concurrency tests drive the sync face from many threads at once.
    """

    def __init__(self, sync: SyncHistoryRepository) -> None:
        self._sync = sync

    @property
    def max_content_chars(self) -> int:
        return self._sync.max_content_chars

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._sync, name)
        if name.startswith("iter_"):  # an async iterator over the sync one, pulled in threads

            async def iterate(*args: Any, **kwargs: Any) -> Any:
                items = await asyncio.to_thread(method, *args, **kwargs)
                done = object()
                while (item := await asyncio.to_thread(next, items, done)) is not done:
                    yield item

            return iterate

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        return call


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``--port NAME``, keep only the contract tests whose ``port`` mark names that port.

    Every contract module declares the ports it checks
    (``pytestmark = pytest.mark.port(TurnStore, ...)``, the classes of
    :mod:`agentcore.repository`; tests/unit/test_ports.py keeps that true).
    """
    wanted = set(config.getoption("--port"))
    if not wanted:
        return
    known = {port.__name__ for port in PORTS}
    if wanted - known:
        raise pytest.UsageError(
            f"--port {', '.join(sorted(wanted - known))}: the ports are {', '.join(sorted(known))}"
        )
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        ports = {port.__name__ for mark in item.iter_markers("port") for port in mark.args}
        (keep if ports & wanted else drop).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep


StoreLegacy = Callable[[str, str, datetime], Awaitable[None]]
"""Store a one-message conversation ``(agent, session)`` written at a given time,
bypassing agentcore's rules for new data, as an older version (or another
program) may have stored it: with SQL on PostgreSQL, in the fake's dict."""

_STORE_LEGACY = pytest.StashKey[StoreLegacy]()


def _legacy_in_memory(memory: InMemoryHistoryRepository) -> StoreLegacy:
    async def store(agent: str, session: str, updated_at: datetime) -> None:
        message = Message(role="user", content="legacy", created_at=updated_at)
        memory._conversations[agent, session] = _Conversation(
            created_at=updated_at, updated_at=updated_at, messages=[message]
        )

    return store


def _legacy_with_sql(dsn: str) -> StoreLegacy:
    async def store(agent: str, session: str, updated_at: datetime) -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute(
                "INSERT INTO conversation_sessions"
                " (agent_name, session_id, next_seq, created_at, updated_at)"
                " VALUES (%(a)s, %(s)s, 1, %(t)s, %(t)s)",
                {"a": agent, "s": session, "t": updated_at},
            )
            await conn.execute(
                "INSERT INTO conversation_history"
                " (agent_name, session_id, seq, role, content, created_at)"
                " VALUES (%(a)s, %(s)s, 0, 'user', 'legacy', %(t)s)",
                {"a": agent, "s": session, "t": updated_at},
            )

    return store


async def make_idle(repo: Any, agent: str, session: str, days: int = 2) -> None:
    """Move the stored conversation's last write ``days`` back, so that a purge
    with a shorter ``idle_for`` deletes it: with SQL on PostgreSQL (through the
    repository's own pool), in the fake's dict."""
    then = datetime.now(UTC) - timedelta(days=days)
    if isinstance(repo, InMemoryHistoryRepository):
        repo._conversations[agent, session].updated_at = then
        return
    async with repo._pool.connection() as conn:
        cur = await conn.execute(
            "UPDATE conversation_sessions SET updated_at = %(t)s"
            " WHERE agent_name = %(a)s AND session_id = %(s)s",
            {"t": then, "a": agent, "s": session},
        )
        assert cur.rowcount == 1


@pytest.fixture
def store_legacy(repo: HistoryRepository, request: pytest.FixtureRequest) -> StoreLegacy:
    """How to store a legacy row in the repository the test runs against."""
    store: StoreLegacy = request.node.stash[_STORE_LEGACY]
    return store


@pytest.fixture(
    params=[
        "memory",
        "postgres",
        "postgres-app-role",
        "memory-sync",
        "postgres-sync",
        "postgres-pgbouncer",
        "postgres-citus",
    ]
)
async def repo(
    request: pytest.FixtureRequest, pg_server: PgServer
) -> AsyncIterator[HistoryRepository]:
    """Every contract test runs against each repository, async and sync.

    ``postgres-app-role`` connects as a role holding only the grants that
    docs/operations.md documents (no DDL), as a production app should. The
    ``-sync`` ones are :class:`SyncHistoryRepository` faces, called from threads.
    ``postgres-pgbouncer`` is ``PostgresHistoryRepository.from_dsn`` with its
    defaults, through a PgBouncer in transaction mode, on a server of its own
    (tests/pgbouncer.py): every contract test there is a new client of the same
    PgBouncer, whose server connections the earlier tests' clients used.
    ``postgres-citus`` is a pool on the coordinator of a Citus cluster (a
    coordinator and two workers, tests/citus.py) whose tables the migrations
    distributed; skipped, loudly, where Citus is not installed.
    """
    if request.param == "postgres-citus":
        dsn: str = request.getfixturevalue("citus_dsn")
        request.node.stash[_STORE_LEGACY] = _legacy_with_sql(dsn)
        async with pool_for(dsn) as pool:
            yield PostgresHistoryRepository(pool)
        return
    if request.param == "postgres-pgbouncer":
        behind: BehindPgBouncer = request.getfixturevalue("behind_pgbouncer")
        with reused_database(behind.pg, pooled=True) as dsn:
            request.node.stash[_STORE_LEGACY] = _legacy_with_sql(dsn)
            async with PostgresHistoryRepository.from_dsn(behind.bouncer.through(dsn)) as bounced:
                yield bounced
        return
    if request.param.startswith("memory"):
        memory = InMemoryHistoryRepository()
        request.node.stash[_STORE_LEGACY] = _legacy_in_memory(memory)
        if request.param == "memory":
            yield memory
            return
        with SyncHistoryRepository.over(memory) as sync:
            yield ThreadedSyncRepository(sync)
        return
    if request.param == "postgres-app-role":
        app: AppRoleServer = request.getfixturevalue("app_role_server")
        with app.database() as app_dsn:
            request.node.stash[_STORE_LEGACY] = _legacy_with_sql(app_dsn)
            async with pool_for(app_dsn) as pool:
                yield PostgresHistoryRepository(pool)
        return
    with reused_database(pg_server) as dsn:
        request.node.stash[_STORE_LEGACY] = _legacy_with_sql(dsn)
        if request.param == "postgres":
            async with pool_for(dsn) as pool:
                yield PostgresHistoryRepository(pool)
            return
        sync = await asyncio.to_thread(SyncHistoryRepository.from_dsn, dsn, max_size=10)
        try:
            yield ThreadedSyncRepository(sync)
        finally:
            await asyncio.to_thread(sync.close)
