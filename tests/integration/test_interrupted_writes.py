"""A write interrupted while it waits for the conversation's lock leaves a working pool.

Every write (the plain append, the append with ids, a split large append,
``clear_session``, ``save_full_history``, ``replace_last_messages``) is
interrupted in each way a deployment meets: its asyncio task cancelled (a web
server does this when the client goes away), ``statement_timeout``,
``lock_timeout``. The interruption falls on the first execution on the
connection, on the execution where psycopg prepares the statements (the 6th,
with its default ``prepare_threshold=5``) and on a later one. The pool has
one connection, so the next calls get the connection the interrupted write
used (or its replacement). Afterwards:
nothing of the interrupted write is stored, no server backend still waits for
the lock, a retry stores the batch exactly once, and 50 calls of every
operation succeed.

On psycopg 3.3.9 the interruption at the preparing execution left the
connection's statement cache naming a statement the server never prepared
(``prepared statement "_pg3_N" does not exist`` on every later call).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from agentcore import PostgresHistoryRepository, StorageError, postgres

pytestmark = pytest.mark.slow  # 90 cases of about a second each

A = "support-bot"
S = "interrupted"
ROUNDS = 50
PREPARING = 5  # uses before the one on which psycopg prepares (prepare_threshold=5)

WRITES = [
    "append",
    "append_with_ids",
    "append_split",
    "clear_session",
    "save_full_history",
    "replace_last_messages",
]
INTERRUPTS = ["cancelled", "statement_timeout", "lock_timeout"]

_ids = itertools.count()


def _batch(tag: str, size: int = 3) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": f"{tag}-{j}", "id": f"{tag}-{j}-{next(_ids)}"}
        for j in range(size)
    ]


def _write(repo: PostgresHistoryRepository, kind: str, tag: str) -> Callable[[], Awaitable[Any]]:
    """One call of the write ``kind``, repeatable (a retry sends the same batch)."""
    batch = _batch(tag)
    if kind == "append":
        plain = [{"role": "user", "content": m["content"]} for m in batch]
        return lambda: repo.append_messages(A, S, plain)
    if kind in ("append_with_ids", "append_split"):
        return lambda: repo.append_messages(A, S, batch)
    if kind == "clear_session":
        return lambda: repo.clear_session(A, S)
    if kind == "replace_last_messages":
        return lambda: _replace_last(repo, batch)
    return lambda: repo.save_full_history(A, S, batch)


async def _replace_last(repo: PostgresHistoryRepository, batch: list[dict[str, Any]]) -> bool:
    """Replace the conversation's last message (if any) with ``batch``.

    Repeated, it replaces the batch's last message with the batch again: the
    other two ids are stored, and skipped, so the result is the same.
    """
    tail = await repo.load_history(A, S, limit=1)
    return await repo.replace_last_messages(A, S, tail, batch)


@asynccontextmanager
async def one_connection_pool(
    dsn: str, pool_kind: str, interrupt: str
) -> AsyncIterator[AsyncConnectionPool[Any]]:
    kwargs: dict[str, Any] = {"autocommit": pool_kind != "not-autocommit"}
    if pool_kind == "unprepared":
        kwargs["prepare_threshold"] = None
    if interrupt != "cancelled":
        kwargs["options"] = f"-c {interrupt}=300"
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, min_size=1, max_size=1, kwargs=kwargs, open=False
    )
    await pool.open(wait=True, timeout=30)
    try:
        yield pool
    finally:
        await pool.close()


async def _scalar(admin: psycopg.AsyncConnection[Any], query: str, *args: Any) -> Any:
    cur = await admin.execute(query.encode(), args)
    row = await cur.fetchone()
    assert row is not None
    return row[0]


async def _contents(admin: psycopg.AsyncConnection[Any]) -> list[str]:
    cur = await admin.execute(
        b"SELECT content FROM conversation_history"
        b" WHERE agent_name = %s AND session_id = %s ORDER BY seq",
        (A, S),
    )
    return [row[0] for row in await cur.fetchall()]


async def _wait_until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + 15
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.005)


async def _lock_waiters(checker: psycopg.AsyncConnection[Any]) -> int:
    return int(
        await _scalar(
            checker,
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE NOT l.granted AND a.datname = current_database()",
        )
    )


@asynccontextmanager
async def conversation_locked(admin: psycopg.AsyncConnection[Any]) -> AsyncIterator[None]:
    """Hold what every write of the conversation waits for, until the block ends.

    The conversation's advisory lock (the append with ids, the split append,
    clear and replace take it first) and its counter row (the plain append
    upserts it).
    """
    await admin.execute(
        b"INSERT INTO conversation_sessions (agent_name, session_id, next_seq)"
        b" VALUES (%s, %s, 0) ON CONFLICT DO NOTHING",
        (A, S),
    )
    await admin.execute(b"BEGIN")
    await admin.execute(b"SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (A, S))
    await admin.execute(
        b"SELECT 1 FROM conversation_sessions WHERE agent_name = %s AND session_id = %s FOR UPDATE",
        (A, S),
    )
    try:
        yield
    finally:
        await admin.execute(b"COMMIT")


async def every_operation_works(repo: PostgresHistoryRepository, tag: str) -> None:
    """``ROUNDS`` calls of each repository operation, each checked."""
    for i in range(ROUNDS):
        other = f"{tag}-other-{i % 3}"
        assert await repo.append_messages(A, other, [{"role": "user", "content": "x"}]) == 1
        batch = _batch(f"{tag}-{i}", 2)
        assert await repo.append_messages(A, other, batch) == 2
        assert await repo.append_messages(A, other, batch) == 0
        await repo.save_full_history(A, f"{tag}-saved", batch)
        assert [m.content for m in await repo.load_history(A, f"{tag}-saved")] == [
            m["content"] for m in batch
        ]
        tail = await repo.load_history(A, f"{tag}-saved", limit=1)
        summary = [{"role": "user", "content": "summary"}]
        assert await repo.replace_last_messages(A, f"{tag}-saved", tail, summary)
        assert not await repo.replace_last_messages(A, f"{tag}-saved", tail, summary)
        assert await repo.clear_session(A, f"{tag}-saved") == 2
        assert len(await repo.load_history(A, other, limit=3)) == 3
        assert any(s.session_id == other for s in await repo.list_sessions(A))


CASES = [
    ("autocommit", write, interrupt, uses)
    for write in WRITES
    for interrupt in INTERRUPTS
    for uses in (0, PREPARING, PREPARING + 2)
] + [
    (pool_kind, write, interrupt, PREPARING)
    for pool_kind in ("not-autocommit", "unprepared")
    for write in WRITES
    for interrupt in INTERRUPTS
]


@pytest.mark.parametrize(("pool_kind", "write", "interrupt", "uses"), CASES)
async def test_an_interrupted_write_leaves_a_pool_whose_every_call_works(
    database_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    pool_kind: str,
    write: str,
    interrupt: str,
    uses: int,
) -> None:
    if write == "append_split":  # each message a statement of its own
        monkeypatch.setattr(postgres, "APPEND_CHUNK_JSONB_BYTES", 1)
    async with (
        await psycopg.AsyncConnection.connect(database_dsn, autocommit=True) as admin,
        await psycopg.AsyncConnection.connect(database_dsn, autocommit=True) as checker,
        one_connection_pool(database_dsn, pool_kind, interrupt) as pool,
    ):
        repo = PostgresHistoryRepository(pool)
        for n in range(uses):  # the statements' executions so far on this connection
            await _write(repo, write, f"warm-{n}")()
        before = await _contents(admin)
        interrupted = _write(repo, write, "interrupted")

        async with conversation_locked(admin):
            await interrupt_while_it_waits(interrupted, interrupt, checker)
        assert await _contents(admin) == before, "the interrupted write left something"

        # A retry does the write, once: the batch with ids is stored once.
        await interrupted()
        await interrupted()
        after = await _contents(admin)
        if write in ("append_with_ids", "append_split"):
            assert after == [*before, *(f"interrupted-{j}" for j in range(3))]
        elif write == "append":
            assert after == [*before, *2 * [f"interrupted-{j}" for j in range(3)]]
        elif write == "clear_session":
            assert after == []
        elif write == "replace_last_messages":
            assert after == [*before[:-1], *(f"interrupted-{j}" for j in range(3))]
        else:
            assert after == [f"interrupted-{j}" for j in range(3)]

        await every_operation_works(repo, f"{write}-{interrupt}")


async def interrupt_while_it_waits(
    call: Callable[[], Awaitable[Any]], interrupt: str, checker: psycopg.AsyncConnection[Any]
) -> None:
    """Start ``call``; once it waits for a lock, interrupt it (or let its timeout fire)."""
    task = asyncio.ensure_future(call())
    await _wait_until(lambda: _is_positive(_lock_waiters(checker)), "the write waits")
    if interrupt == "cancelled":
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)
    else:
        with pytest.raises(StorageError, match="timeout"):
            await asyncio.wait_for(task, 15)
    # The server does not go on waiting for the lock (the statement was
    # cancelled, or its session ended) while the lock is held.
    await _wait_until(lambda: _is_zero(_lock_waiters(checker)), "nothing waits for the lock")


async def _is_positive(count: Awaitable[int]) -> bool:
    return await count > 0


async def _is_zero(count: Awaitable[int]) -> bool:
    return await count == 0
