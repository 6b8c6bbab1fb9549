"""The reads that run again and again settle on one generic plan once psycopg prepares them.

psycopg prepares a statement on its fifth execution on a connection; the
server then plans it afresh for five executions and afterwards keeps a generic
plan if that plan does not look dearer than the fresh ones. With ``LIMIT
%(limit)s`` the generic plan cannot see the limit and always looked dearer
(a tenth of the conversation's estimated rows against 20), so every load was
planned again, for as long as the connection lived: a third of a load's
server instructions (``python -m bench.server_count --statements 100``). The
limit is now a subquery, which every plan estimates alike.

The loads read a conversation long enough for the difference to show (the
planner's estimate of its rows comes from ANALYZE), on each kind of pool a
caller passes.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from agentcore import Message, PostgresHistoryRepository

CALLS = 20  # psycopg prepares on the 5th; the server plans the next 5 afresh, then decides
STORED = 2000


async def _seed(dsn: str) -> None:
    async with AsyncConnectionPool(dsn, min_size=1, max_size=1, open=False) as pool:
        repo = PostgresHistoryRepository(pool)
        await repo.save_full_history(
            "agent", "long", [Message(role="user", content=f"m{n}") for n in range(STORED)]
        )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE conversation_history")


async def _plans(pool: AsyncConnectionPool[Any], marker: str) -> tuple[int, int]:
    """(generic, custom) plans of the connection's prepared statement containing ``marker``."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE %s",
            [f"%{marker}%"],
        )
        rows = await cur.fetchall()
    assert len(rows) == 1, f"expected one prepared statement with {marker!r}, got {rows}"
    return int(rows[0][0]), int(rows[0][1])


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit-pool", "default-pool"])
async def test_loads_run_on_a_generic_plan_once_prepared(
    database_dsn: str, autocommit: bool
) -> None:
    await _seed(database_dsn)
    kwargs = {"autocommit": True} if autocommit else {}
    async with AsyncConnectionPool(
        database_dsn, min_size=1, max_size=1, kwargs=kwargs, open=False
    ) as pool:  # one connection: every call below runs on it
        repo = PostgresHistoryRepository(pool)
        for _ in range(CALLS):
            assert len(await repo.load_history("agent", "long", limit=20)) == 20
        generic, custom = await _plans(pool, "ORDER BY seq DESC\nLIMIT (SELECT")
        # Before: 0 generic, every execution custom.
        assert generic > 0 and custom <= 5, (generic, custom)

        page = await repo.load_history_page("agent", "long", limit=20)
        for _ in range(CALLS):
            assert page.next_cursor is not None
            page = await repo.load_history_page("agent", "long", limit=20, before=page.next_cursor)
            assert len(page.messages) == 20
        generic, custom = await _plans(pool, "AND seq < $3")
        assert generic > 0 and custom <= 5, (generic, custom)

        for _ in range(CALLS):  # an export's batches
            batch = [m async for m in repo.iter_history("agent", "long", batch_size=1000)]
            assert len(batch) == STORED
        generic, custom = await _plans(pool, "AND seq >= $3")
        assert generic > 0 and custom <= 5, (generic, custom)
