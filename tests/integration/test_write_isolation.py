"""Writes stay correct whatever default isolation level or read-only default a DBA sets.

``ALTER DATABASE … SET default_transaction_isolation`` to ``repeatable read``
or ``serializable`` used to make concurrent appends on one session fail with
serialization errors, let an append with ids miss a concurrent writer's row
(its snapshot predated the lock it waited for: the id was stored twice), and
let a clear miss rows appended while it waited. ``default_transaction_read_only``
must give a clear error at once.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from agentcore import PostgresHistoryRepository, StorageError
from tests.conftest import pool_for
from tests.integration.storage_checks import assert_counters_match_rows, stored_rows

A = "support-bot"
S = "shared"
WRITERS = 8
CALLS = 15


def _set_database_default(dsn: str, setting: str, value: str) -> None:
    dbname = str(conninfo_to_dict(dsn)["dbname"])
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                psycopg.sql.Identifier(dbname),
                psycopg.sql.Identifier(setting),
                psycopg.sql.Literal(value),
            )
        )


@asynccontextmanager
async def repository_at(
    dsn: str, isolation: str, autocommit: bool, max_size: int
) -> AsyncIterator[PostgresHistoryRepository]:
    """A repository whose database defaults to ``isolation``, on a pool of that mode."""
    _set_database_default(dsn, "default_transaction_isolation", isolation)
    async with AsyncConnectionPool(
        dsn, max_size=max_size, kwargs={"autocommit": autocommit}, open=False
    ) as pool:
        async with pool.connection() as conn:
            cur = await conn.execute(b"SHOW default_transaction_isolation")
            assert await cur.fetchone() == (isolation,)
            assert conn.autocommit is autocommit
        yield PostgresHistoryRepository(pool)


@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "not-autocommit"])
async def test_concurrent_writes_of_one_session_under_a_stricter_default_isolation(
    database_dsn: str, isolation: str, autocommit: bool
) -> None:
    async with repository_at(database_dsn, isolation, autocommit, WRITERS + 2) as repo:

        async def writer(w: int) -> Counter[str]:
            rng = random.Random(w)
            done: Counter[str] = Counter()
            for c in range(CALLS):
                if rng.random() < 0.5:
                    await repo.append_messages(A, S, [{"role": "user", "content": f"p{w}-{c}"}])
                    done["plain"] += 1
                else:
                    # Two writers race with the same ids (a retry racing the original).
                    tags = [f"i{w // 2}-{c}-{j}" for j in range(2)]
                    batch = [{"role": "user", "content": t, "id": t} for t in tags]
                    await repo.append_messages(A, S, batch)
                    done["ids"] += 1
            return done

        await asyncio.wait_for(asyncio.gather(*(writer(w) for w in range(WRITERS))), 120)
        rows = stored_rows(database_dsn)[(A, S)]
        contents = [content for _, content, _ in rows]
        ids = [message_id for _, _, message_id in rows if message_id is not None]
        assert len(ids) == len(set(ids)), "an id was stored twice"
        plain = [c for c in contents if c is not None and c.startswith("p")]
        assert len(plain) == len(set(plain))
        assert_counters_match_rows(database_dsn)

        # A clear and a replace racing appends leave no row behind them.
        async def appender(w: int) -> None:
            for c in range(CALLS):
                batch = [{"role": "user", "content": f"r{w}-{c}", "id": f"r{w}-{c}"}]
                await repo.append_messages(A, S, batch)
                await repo.append_messages(A, S, [{"role": "user", "content": f"q{w}-{c}"}])

        async def resetter() -> None:
            for c in range(CALLS):
                await repo.clear_session(A, S)
                await repo.save_full_history(A, S, [{"role": "user", "content": f"base-{c}"}])

        await asyncio.wait_for(
            asyncio.gather(*(appender(w) for w in range(WRITERS - 1)), resetter()), 120
        )
        assert_counters_match_rows(database_dsn)
        final = [content for _, content, _ in stored_rows(database_dsn)[(A, S)]]
        assert final[0] == f"base-{CALLS - 1}", final[:3]


@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "not-autocommit"])
async def test_replaces_racing_appends_under_a_stricter_default_isolation(
    database_dsn: str, isolation: str, autocommit: bool
) -> None:
    """Every appended message is still stored, or was in a tail that a replace saw."""
    async with repository_at(database_dsn, isolation, autocommit, WRITERS + 2) as repo:
        await repo.append_messages(A, S, [{"role": "user", "content": f"s{i}"} for i in range(4)])
        appended: list[str] = []
        summarised: list[str | None] = []

        async def appender(w: int) -> None:
            for c in range(CALLS):
                plain, with_id = f"p{w}-{c}", f"i{w}-{c}"
                await repo.append_messages(A, S, [{"role": "user", "content": plain}])
                batch = [{"role": "user", "content": with_id, "id": with_id}]
                await repo.append_messages(A, S, batch)
                appended.extend([plain, with_id])

        async def compactor(k: int) -> None:
            for c in range(CALLS):
                tail = await repo.load_history(A, S, limit=2)
                summary = [{"role": "user", "content": f"sum{k}-{c}"}]
                if await repo.replace_last_messages(A, S, tail, summary):
                    summarised.extend(m.content for m in tail)

        await asyncio.wait_for(
            asyncio.gather(*(appender(w) for w in range(WRITERS - 2)), compactor(0), compactor(1)),
            120,
        )
        final = assert_counters_match_rows(database_dsn)[(A, S)]
        for text in appended:
            assert (text in final) != (text in summarised), text


@pytest.mark.parametrize(
    "call",
    ["append", "append_with_ids", "save_full_history", "clear_session", "replace_last_messages"],
)
async def test_a_read_only_default_gives_a_clear_storage_error(
    database_dsn: str, call: str
) -> None:
    async with pool_for(database_dsn, max_size=2) as pool:
        repo = PostgresHistoryRepository(pool)
        await repo.append_messages(A, S, [{"role": "user", "content": "before"}])
        tail = await repo.load_history(A, S)
    _set_database_default(database_dsn, "default_transaction_read_only", "on")
    async with pool_for(database_dsn, max_size=1) as pool:
        repo = PostgresHistoryRepository(pool)
        calls: dict[str, Any] = {
            "append": lambda: repo.append_messages(A, S, [{"role": "user", "content": "x"}]),
            "append_with_ids": lambda: repo.append_messages(
                A, S, [{"role": "user", "content": "x", "id": "x"}]
            ),
            "save_full_history": lambda: repo.save_full_history(
                A, S, [{"role": "user", "content": "x"}]
            ),
            "clear_session": lambda: repo.clear_session(A, S),
            "replace_last_messages": lambda: repo.replace_last_messages(A, S, tail, []),
        }
        for _ in range(7):  # across the execution where psycopg prepares
            with pytest.raises(StorageError, match=r"refuses writes.*read-only"):
                await asyncio.wait_for(calls[call](), 30)
        # Reads still work, on the same pool.
        assert [m.content for m in await repo.load_history(A, S)] == ["before"]
