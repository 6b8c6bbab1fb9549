"""Faults: killed backends, a server restart, an exhausted pool.

Each operation either fully happens or not at all, the caller gets a typed
agentcore error, nothing hangs, and the same repository (and pool) works
again afterwards without restarting anything.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from agentcore import (
    AgentcoreError,
    DatabaseUnavailableError,
    PostgresHistoryRepository,
    StorageError,
    embedded,
    migrations,
)
from agentcore.embedded import EmbeddedServer
from tests.integration.conftest import FIGURES

A = "support-bot"
KILLS = 100


async def admin_connection(dsn: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(dsn, autocommit=True)


async def contents(admin: psycopg.AsyncConnection[Any], session: str) -> list[str | None]:
    cur = await admin.execute(
        "SELECT content FROM conversation_history"
        " WHERE agent_name = %s AND session_id = %s ORDER BY seq",
        (A, session),
    )
    return [row[0] for row in await cur.fetchall()]


async def wait_until(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.002)


async def backend_gone(admin: psycopg.AsyncConnection[Any], pid: int) -> bool:
    cur = await admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
    row = await cur.fetchone()
    return row is not None and row[0] == 0


async def backend_waits_for_lock(admin: psycopg.AsyncConnection[Any], pid: int) -> bool:
    cur = await admin.execute(
        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)
    )
    row = await cur.fetchone()
    return bool(row and row[0])


# --- (a) pg_terminate_backend at random points ------------------------------


async def test_killed_backends_leave_whole_operations_and_a_working_pool(
    database_dsn: str,
) -> None:
    rng = random.Random(2024)
    errors: Counter[str] = Counter()
    interrupted = 0
    async with (
        await admin_connection(database_dsn) as admin,
        PostgresHistoryRepository.from_dsn(
            database_dsn, min_size=1, max_size=1, timeout=10
        ) as repo,
    ):
        for i in range(KILLS):
            session = f"victim-{i % 4}"
            before = await contents(admin, session)
            replace = rng.random() < 0.4
            size = rng.randrange(50, 400) if replace else rng.randrange(20, 200)
            batch = [
                {"role": "user", "content": f"k{i}-{j}", "id": f"k{i}-{j}"} for j in range(size)
            ]
            after = (
                [m["content"] for m in batch] if replace else before + [m["content"] for m in batch]
            )
            call = repo.save_full_history if replace else repo.append_messages
            async with repo._pool.connection() as conn:  # the pool's only backend
                pid = conn.info.backend_pid

            while_blocked = rng.random() < 0.3
            if while_blocked:
                # Kill it while it waits for the conversation's lock (held here).
                await admin.execute("BEGIN")
                await admin.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (A, session)
                )
                task = asyncio.ensure_future(call(A, session, batch))
                await wait_until(partial(backend_waits_for_lock, admin, pid), "blocked")
            else:
                task = asyncio.ensure_future(call(A, session, batch))
                await asyncio.sleep(rng.uniform(0, 0.012))
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            if while_blocked:
                await admin.execute("COMMIT")
            try:
                await asyncio.wait_for(task, 30)
            except AgentcoreError as exc:
                assert isinstance(exc, StorageError), repr(exc)
                errors[type(exc).__name__] += 1
                interrupted += 1
            await wait_until(partial(backend_gone, admin, pid), "the backend is gone")

            stored = await contents(admin, session)
            assert stored in (before, after), f"kill {i}: a partial write is visible"
            # The pool serves the next call at once, on a fresh connection.
            loaded = await repo.load_history(A, session)
            assert [m.content for m in loaded] == stored
            if stored == before:  # retrying is safe: ids make it exactly once
                await call(A, session, batch)
                assert await contents(admin, session) == after
    # Enough of the kills must have hit an operation in flight, or this proves nothing.
    assert interrupted >= KILLS // 4, (interrupted, errors)
    FIGURES["faults: backends killed (pg_terminate_backend)"] += KILLS
    FIGURES["faults: operations interrupted by a kill"] += interrupted
    for name, count in errors.items():
        FIGURES[f"faults: interrupted callers got {name}"] += count


# --- (b) the server stops and comes back -------------------------------------


class Outage:
    """Stop and start the private embedded server (its data is kept)."""

    def __init__(self, server: EmbeddedServer) -> None:
        self.server = server

    def stop(self) -> None:
        assert embedded.stop(self.server.data_dir)

    def start(self) -> None:
        assert embedded.start(self.server.data_dir).dsn == self.server.dsn


@pytest.fixture
async def outage_dsn(private_server: EmbeddedServer) -> AsyncIterator[str]:
    name = f"outage_{random.randrange(10**9)}"
    async with await admin_connection(private_server.dsn) as admin:
        await admin.execute(f"CREATE DATABASE {name}")
    dsn = make_conninfo(private_server.dsn, dbname=name)
    migrations.apply(dsn)
    yield dsn


async def every_operation(repo: PostgresHistoryRepository, tag: str) -> list[Any]:
    return [
        repo.load_history(A, "kept"),
        repo.append_messages(A, "kept", [{"role": "user", "content": tag}]),
        repo.save_full_history(A, f"other-{tag}", [{"role": "user", "content": tag}]),
        repo.clear_session(A, "kept"),
        repo.list_sessions(A),
    ]


async def test_calls_fail_fast_during_an_outage_and_work_after_a_restart(
    private_server: EmbeddedServer, outage_dsn: str
) -> None:
    outage = Outage(private_server)
    timeout = 0.5
    async with PostgresHistoryRepository.from_dsn(outage_dsn, max_size=4, timeout=timeout) as repo:
        await repo.append_messages(A, "kept", [{"role": "user", "content": "before"}])
        # Several idle connections in the pool, all to be made stale.
        await asyncio.gather(*(repo.load_history(A, "kept") for _ in range(8)))

        outage.stop()
        try:
            failed = 0
            for round_ in range(2):
                for call in await every_operation(repo, f"during-{round_}"):
                    started = time.monotonic()
                    with pytest.raises(DatabaseUnavailableError):
                        await asyncio.wait_for(call, timeout + 10)  # never a hang
                    # Fails within the configured timeout (plus scheduling slack).
                    assert time.monotonic() - started < timeout + 3
                    failed += 1
        finally:
            outage.start()

        # Back without restarting the app: the pool reconnects by itself.
        deadline = time.monotonic() + 60
        while True:
            try:
                loaded = await repo.load_history(A, "kept")
                break
            except DatabaseUnavailableError:
                assert time.monotonic() < deadline, "the repository never recovered"
                await asyncio.sleep(0.1)
        assert [m.content for m in loaded] == ["before"]  # nothing from the outage
        for call in await every_operation(repo, "after"):
            await call
        assert [i.session_id for i in await repo.list_sessions(A)] == ["other-after"]
    FIGURES["faults: server restarts"] += 1
    FIGURES["faults: calls during the outage (all DatabaseUnavailableError)"] += failed


async def test_stale_pooled_connections_after_a_restart_fail_no_call(
    private_server: EmbeddedServer, outage_dsn: str
) -> None:
    outage = Outage(private_server)
    async with PostgresHistoryRepository.from_dsn(outage_dsn, min_size=4, max_size=4) as repo:
        await asyncio.gather(*(repo.load_history(A, "s") for _ in range(8)))
        outage.stop()
        outage.start()
        # Every pooled connection is dead; none of these calls may fail.
        for n in range(6):
            await repo.append_messages(A, "s", [{"role": "user", "content": f"m{n}"}])
        await asyncio.gather(*(repo.load_history(A, "s") for _ in range(8)))
        assert len(await repo.load_history(A, "s")) == 6
    FIGURES["faults: server restarts"] += 1


async def test_a_wrong_password_is_a_database_unavailable_error(
    private_server: EmbeddedServer, outage_dsn: str
) -> None:
    role = f"pw_user_{random.randrange(10**9)}"
    async with await admin_connection(private_server.dsn) as admin:
        row = await (await admin.execute("SHOW hba_file")).fetchone()
        assert row is not None
        hba = Path(row[0])
        original = hba.read_text()
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'right-password'")
        hba.write_text(f"local all {role} scram-sha-256\n" + original)
        await admin.execute("SELECT pg_reload_conf()")
    try:
        wrong = make_conninfo(outage_dsn, user=role, password="wrong-password")
        with pytest.raises(DatabaseUnavailableError, match="password"):
            async with PostgresHistoryRepository.from_dsn(wrong, timeout=5):
                pass
        # The same role with the right password gets in: the refusal was the password.
        right = make_conninfo(outage_dsn, user=role, password="right-password")
        async with PostgresHistoryRepository.from_dsn(right, timeout=5):
            pass
    finally:
        hba.write_text(original)
        async with await admin_connection(private_server.dsn) as admin:
            await admin.execute("SELECT pg_reload_conf()")


# --- (c) more callers than connections ---------------------------------------


async def test_an_exhausted_pool_makes_callers_wait_then_fail_with_a_typed_error(
    database_dsn: str,
) -> None:
    timeout = 0.5
    async with (
        await admin_connection(database_dsn) as admin,
        PostgresHistoryRepository.from_dsn(
            database_dsn, min_size=2, max_size=2, timeout=timeout
        ) as repo,
    ):
        # Two callers hold both connections, blocked on the conversation lock.
        await admin.execute("BEGIN")
        await admin.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (A, "busy"))
        holders = [
            asyncio.ensure_future(
                repo.append_messages(
                    A, "busy", [{"role": "user", "content": f"h{n}", "id": f"h{n}"}]
                )
            )
            for n in range(2)
        ]
        await asyncio.sleep(0.2)

        async def timed_load() -> float:
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailableError, match="no database connection"):
                await asyncio.wait_for(repo.load_history(A, "other"), timeout + 10)
            return time.monotonic() - started

        waits = await asyncio.gather(*(timed_load() for _ in range(8)))
        assert all(w >= timeout * 0.9 for w in waits), waits  # they waited, then failed

        # A caller that arrives while busy gets a connection freed within the timeout.
        waiter = asyncio.ensure_future(repo.load_history(A, "busy"))
        await asyncio.sleep(timeout / 4)
        await admin.execute("COMMIT")
        assert await asyncio.wait_for(asyncio.gather(*holders), 10) == [1, 1]
        assert len(await asyncio.wait_for(waiter, 10)) in (1, 2)
        assert len(await repo.load_history(A, "busy")) == 2
    FIGURES["faults: callers refused by an exhausted pool"] += len(waits)
