"""A repository over a pool that is not open says so, and how to open it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool, PoolClosed

from agentcore import DatabaseUnavailableError, PoolNotOpenError, PostgresHistoryRepository

Call = Callable[[PostgresHistoryRepository], Awaitable[object]]


async def _first_page(repo: PostgresHistoryRepository) -> object:
    async for message in repo.iter_history("bot", "s1"):
        return message
    return None


CALLS: dict[str, Call] = {
    "load_history": lambda repo: repo.load_history("bot", "s1", limit=20),
    "append_messages": lambda repo: repo.append_messages(
        "bot", "s1", [{"role": "user", "content": "hello"}]
    ),
    "list_sessions": lambda repo: repo.list_sessions("bot"),
    "list_sessions_page": lambda repo: repo.list_sessions_page("bot"),
    "clear_session": lambda repo: repo.clear_session("bot", "s1"),
    "iter_history": _first_page,
}


def _never_opened(dsn: str) -> AsyncConnectionPool[Any]:
    return AsyncConnectionPool(dsn, open=False)


async def _closed(dsn: str) -> AsyncConnectionPool[Any]:
    async with AsyncConnectionPool(dsn, min_size=1, open=False) as pool:
        pass
    return pool


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
@pytest.mark.parametrize("state", ["never_opened", "closed"])
async def test_a_call_on_a_pool_that_is_not_open_says_how_to_open_it(
    call: Call, state: str, database_dsn: str
) -> None:
    pool = _never_opened(database_dsn) if state == "never_opened" else await _closed(database_dsn)
    repo = PostgresHistoryRepository(pool)
    with pytest.raises(PoolNotOpenError) as raised:
        await call(repo)
    message = str(raised.value)
    assert f"the connection pool {pool.name!r} is " in message
    assert "open the pool: `await pool.open()` or `async with pool`" in message
    assert isinstance(raised.value.__cause__, PoolClosed)
    # Code that caught the closed pool's error before it had a class still does.
    assert isinstance(raised.value, DatabaseUnavailableError)


async def test_a_never_opened_pool_and_a_closed_one_are_told_apart(database_dsn: str) -> None:
    never_opened, closed = _never_opened(database_dsn), await _closed(database_dsn)
    with pytest.raises(PoolNotOpenError) as not_yet:
        await PostgresHistoryRepository(never_opened).load_history("bot", "s1")
    assert str(not_yet.value).startswith(
        f"the connection pool {never_opened.name!r} is not open yet: "
    )
    with pytest.raises(PoolNotOpenError) as gone:
        await PostgresHistoryRepository(closed).load_history("bot", "s1")
    assert str(gone.value).startswith(f"the connection pool {closed.name!r} is closed: ")
    assert "a closed pool cannot be opened again" in str(gone.value)
