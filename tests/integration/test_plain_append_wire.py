"""A turn's plain messages go to PostgreSQL as plain parameters, not as one JSON array.

Encoding the texts into a JSON array cost the client about a twentieth of a
turn's instructions, and the server a JSON parse per message
(bench/NOTES.md, "The hot path"). Read from libpq's protocol trace of the
one pooled connection (bench/wire.py).
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from agentcore import Message, PostgresHistoryRepository
from bench.wire import traced
from tests.conftest import pool_for

A, S = "support-bot", "s"


def binds(trace: str) -> list[str]:
    return [line for line in trace.splitlines() if "\tBind\t" in line]


async def _pgconn_of(pool: AsyncConnectionPool[Any]) -> Any:
    async with pool.connection() as conn:
        return conn.pgconn


async def test_a_turn_sends_each_text_as_its_own_parameter(database_dsn: str) -> None:
    async with pool_for(database_dsn, max_size=1) as pool:
        repo = PostgresHistoryRepository(pool)
        await repo.load_history(A, "other")  # the pool's one question (is Citus there?)
        turn = [
            Message(role="user", content="the question"),
            Message(role="assistant", content="the answer"),
        ]
        with traced(await _pgconn_of(pool)) as wire:
            assert await repo.append_messages(A, S, turn) == 2
    [bind] = binds(wire.text)
    assert "'the question'" in bind and "'the answer'" in bind
    assert '"content"' not in bind  # no JSON array


async def test_a_batch_with_more_than_plain_texts_still_goes_as_a_json_array(
    database_dsn: str,
) -> None:
    async with pool_for(database_dsn, max_size=1) as pool:
        repo = PostgresHistoryRepository(pool)
        await repo.load_history(A, "other")  # the pool's one question (is Citus there?)
        batch = [{"role": "user", "content": "tagged", "metadata": {"k": 1}}]
        with traced(await _pgconn_of(pool)) as wire:
            assert await repo.append_messages(A, S, batch) == 1
    [bind] = binds(wire.text)
    assert '"content": "tagged"' in bind
