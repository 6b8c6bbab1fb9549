"""The statements and network round trips of a turn, counted on the wire.

Not a timing test: it fails when a change adds a statement or a round trip to
the access path (load the window, append the turn), which is what a turn's
latency is made of. Counted from libpq's protocol trace of the one pooled
connection (see bench/wire.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import pytest
from psycopg import pq
from psycopg_pool import AsyncConnectionPool

from agentcore import Message, PostgresHistoryRepository
from bench.wire import WireCount, traced
from tests.conftest import pool_for

AGENT, SESSION = "bench-agent", "session-1"
# psycopg prepares a statement server-side on its 5th execution on a connection.
WARM_UP_TURNS = 6


@pytest.fixture
async def one_connection(database_dsn: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    async with pool_for(database_dsn, max_size=1) as pool:
        yield pool


async def _pgconn(pool: AsyncConnectionPool[Any]) -> pq.abc.PGconn:
    async with pool.connection() as conn:
        pgconn: pq.abc.PGconn = conn.pgconn
        return pgconn


def _turn_messages(n: int) -> list[Message]:
    return [
        Message(role="user", content=f"question {n} " * 20),
        Message(role="assistant", content=f"answer {n} " * 60),
    ]


async def _turn(repo: PostgresHistoryRepository, n: int) -> None:
    await repo.load_history(AGENT, SESSION, limit=20)
    await repo.append_messages(AGENT, SESSION, _turn_messages(n))


async def _asked_whether_distributed(pool: AsyncConnectionPool[Any]) -> None:
    """Make the pool's one question, whether Citus is there, outside the counts below.

    Asked once per pool, on the first call that needs to know
    (test_a_pool_asks_once_whether_it_is_distributed counts it); a read of
    another conversation.
    """
    await PostgresHistoryRepository(pool).load_history(AGENT, "not-counted", limit=1)


async def test_a_pool_asks_once_whether_it_is_distributed(
    one_connection: AsyncConnectionPool[Any],
) -> None:
    pgconn = await _pgconn(one_connection)
    with traced(pgconn) as first:
        await PostgresHistoryRepository(one_connection).load_history(AGENT, SESSION, limit=20)
    with traced(pgconn) as second:  # another repository over the same pool
        await PostgresHistoryRepository(one_connection).load_history(AGENT, SESSION, limit=20)
    assert (first.statements, first.round_trips) == (2, 2)  # the question, then the read
    assert "pg_extension" in first.text
    assert (second.statements, second.round_trips) == (1, 1)
    assert "pg_extension" not in second.text


async def test_first_turn_is_two_statements_in_two_round_trips(
    one_connection: AsyncConnectionPool[Any],
) -> None:
    await _asked_whether_distributed(one_connection)
    repo = PostgresHistoryRepository(one_connection)
    with traced(await _pgconn(one_connection)) as wire:
        await _turn(repo, 0)
    assert (wire.statements, wire.round_trips) == (2, 2)


async def test_steady_state_turn_is_two_prepared_statements_in_two_round_trips(
    one_connection: AsyncConnectionPool[Any],
) -> None:
    repo = PostgresHistoryRepository(one_connection)
    for n in range(WARM_UP_TURNS):
        await _turn(repo, n)
    pgconn = await _pgconn(one_connection)
    with traced(pgconn) as load:
        window = await repo.load_history(AGENT, SESSION, limit=20)
    with traced(pgconn) as append:
        stored = await repo.append_messages(AGENT, SESSION, _turn_messages(99))
    assert len(window) == 2 * WARM_UP_TURNS
    assert stored == 2
    assert (load.statements, load.round_trips) == (1, 1)
    assert (append.statements, append.round_trips) == (1, 1)
    # Prepared: no statement is parsed again once warm.
    assert load.frontend["Parse"] == append.frontend["Parse"] == 0


async def test_append_with_message_ids_locks_and_inserts_in_one_round_trip(
    one_connection: AsyncConnectionPool[Any],
) -> None:
    await _asked_whether_distributed(one_connection)
    repo = PostgresHistoryRepository(one_connection)
    batch = [
        Message(role="user", content="hi", id="m-1"),
        Message(role="assistant", content="hello", id="m-2"),
    ]
    with traced(await _pgconn(one_connection)) as wire:
        assert await repo.append_messages(AGENT, SESSION, batch) == 2
    # BEGIN ISOLATION LEVEL READ COMMITTED, lock, insert, COMMIT: the explicit
    # transaction (two more statements, no more round trips) keeps the
    # "already stored?" check right under a DBA's REPEATABLE READ or
    # SERIALIZABLE default (tests/integration/test_write_isolation.py).
    assert (wire.statements, wire.round_trips, wire.syncs) == (4, 1, 1)


@pytest.mark.parametrize("size", [10, 1000])
async def test_save_full_history_round_trips_do_not_grow_with_the_history(
    one_connection: AsyncConnectionPool[Any], size: int
) -> None:
    await _asked_whether_distributed(one_connection)
    repo = PostgresHistoryRepository(one_connection)
    history = [Message(role="user", content=f"m{i}") for i in range(size)]
    with traced(await _pgconn(one_connection)) as wire:
        await repo.save_full_history(AGENT, SESSION, history)
    # BEGIN; one pipeline (lock, reset counter, the transaction's time, delete);
    # COPY; COMMIT.
    assert (wire.statements, wire.round_trips) == (7, 4)
    assert wire.frontend["CopyData"] >= 1


def test_wire_count_reads_libpq_trace_lines() -> None:
    from bench.wire import parse_trace

    count: WireCount = parse_trace(
        'F\t10\tParse\t "" "SELECT 1" 0\nF\t4\tSync\nB\t5\tReadyForQuery\t I\n'
        'F\t12\tQuery\t "BEGIN"\nB\t5\tReadyForQuery\t T\n'
    )
    assert (count.statements, count.round_trips, count.syncs) == (1, 2, 1)


POOL_CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "autocommit": {"autocommit": True},
    "default": {},
    "prepare_threshold=None": {"autocommit": True, "prepare_threshold": None},
    "default+prepare_threshold=None": {"prepare_threshold": None},
}


@pytest.fixture(params=sorted(POOL_CONFIGURATIONS))
async def any_pool(
    request: pytest.FixtureRequest, database_dsn: str
) -> AsyncIterator[AsyncConnectionPool[Any]]:
    """One connection, configured as callers configure their pools (PgBouncer: no prepare)."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        database_dsn,
        min_size=1,
        max_size=1,
        kwargs=POOL_CONFIGURATIONS[request.param],
        open=False,
    )
    await pool.open(wait=True, timeout=30)
    try:
        yield pool
    finally:
        await pool.close()


async def test_turn_is_two_statements_in_two_round_trips_on_any_pool(
    any_pool: AsyncConnectionPool[Any],
) -> None:
    await _asked_whether_distributed(any_pool)
    repo = PostgresHistoryRepository(any_pool)
    pgconn = await _pgconn(any_pool)
    with traced(pgconn) as first:
        await _turn(repo, 0)
    for n in range(1, WARM_UP_TURNS):  # the turn on which psycopg prepares is not counted
        await _turn(repo, n)
    with traced(pgconn) as warm:
        await _turn(repo, WARM_UP_TURNS)
    # No BEGIN before the read, no ROLLBACK when the pool takes it back.
    assert (first.statements, first.round_trips, first.frontend["Query"]) == (2, 2, 0)
    assert (warm.statements, warm.round_trips, warm.frontend["Query"]) == (2, 2, 0)
    async with any_pool.connection() as conn:
        # The caller's mode is given back.
        assert conn.autocommit is bool(cast(dict[str, Any], any_pool.kwargs).get("autocommit"))


async def test_every_read_is_one_statement_in_one_round_trip_on_any_pool(
    any_pool: AsyncConnectionPool[Any],
) -> None:
    repo = PostgresHistoryRepository(any_pool)
    await repo.append_messages(AGENT, SESSION, [Message(role="user", content="hi", id="m-1")])
    reads: dict[str, Callable[[], Awaitable[object]]] = {
        "load_history": lambda: repo.load_history(AGENT, SESSION, limit=20),
        "get_message": lambda: repo.get_message(AGENT, SESSION, "m-1"),
        "get_session": lambda: repo.get_session(AGENT, SESSION),
        "list_sessions": lambda: repo.list_sessions(AGENT),
        "list_sessions_page": lambda: repo.list_sessions_page(AGENT, limit=10),
        "list_sessions_page owner": lambda: repo.list_sessions_page(AGENT, owner="o", limit=10),
        "load_history_page": lambda: repo.load_history_page(AGENT, SESSION, limit=10),
        "iter_history": lambda: _drain(repo.iter_history(AGENT, SESSION, batch_size=10)),
        "iter_sessions": lambda: _drain(repo.iter_sessions(AGENT, batch_size=10)),
    }
    pgconn = await _pgconn(any_pool)
    for name, read in reads.items():
        with traced(pgconn) as wire:
            await read()
        assert (wire.statements, wire.round_trips, wire.frontend["Query"]) == (1, 1, 0), name


async def _drain(items: AsyncIterator[object]) -> list[object]:
    return [item async for item in items]
