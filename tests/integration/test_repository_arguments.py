"""Constructor arguments of both repositories are checked when they are built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from agentcore import InMemoryHistoryRepository, InvalidInputError, PostgresHistoryRepository

BAD_MAX_CONTENT_CHARS = [
    (None, "max_content_chars must be an int, got NoneType"),
    ("100", "max_content_chars must be an int, got str"),
    (1.5, "max_content_chars must be an int, got float"),
    (True, "max_content_chars must be an int, got bool"),
    (0, "max_content_chars must be between 1 and 25000000, got 0"),
    (-5, "max_content_chars must be between 1 and 25000000, got -5"),
]


@pytest.mark.parametrize(("value", "says"), BAD_MAX_CONTENT_CHARS)
async def test_a_bad_max_content_chars_is_refused_by_both_repositories_alike(
    pg_pool: AsyncConnectionPool[Any], value: Any, says: str
) -> None:
    builders: list[Callable[[], object]] = [
        lambda: InMemoryHistoryRepository(max_content_chars=value),
        lambda: PostgresHistoryRepository(pg_pool, max_content_chars=value),
    ]
    for build in builders:
        with pytest.raises(InvalidInputError) as raised:
            build()
        assert str(raised.value) == says


async def test_a_bad_max_content_chars_is_refused_by_from_dsn_before_connecting() -> None:
    with pytest.raises(InvalidInputError, match="max_content_chars must be an int, got NoneType"):
        async with PostgresHistoryRepository.from_dsn(
            "host=/nonexistent-dir",
            max_content_chars=None,  # type: ignore[arg-type]
        ):
            pass


async def test_an_accepted_max_content_chars_is_the_limit(
    pg_pool: AsyncConnectionPool[Any],
) -> None:
    assert PostgresHistoryRepository(pg_pool, max_content_chars=1).max_content_chars == 1
    assert InMemoryHistoryRepository(max_content_chars=1).max_content_chars == 1


def test_a_synchronous_pool_is_refused_naming_what_to_pass(database_dsn: str) -> None:
    pool: ConnectionPool[Any] = ConnectionPool(database_dsn, min_size=1, open=False)
    with pytest.raises(InvalidInputError) as raised:
        PostgresHistoryRepository(pool)  # type: ignore[arg-type]
    assert str(raised.value) == (
        "pool must be a psycopg_pool.AsyncConnectionPool, got psycopg_pool.pool.ConnectionPool "
        "(a synchronous pool: agentcore is async, open a psycopg_pool.AsyncConnectionPool)"
    )


async def test_a_connection_is_refused_naming_what_to_pass(database_dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_dsn) as conn:
        with pytest.raises(InvalidInputError, match=r"got psycopg\.AsyncConnection \(a single"):
            PostgresHistoryRepository(conn)  # type: ignore[arg-type]
    with psycopg.connect(database_dsn) as sync_conn:
        with pytest.raises(InvalidInputError, match=r"got psycopg\.Connection \(a single"):
            PostgresHistoryRepository(sync_conn)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pool", "says"),
    [
        ("postgresql://localhost/app", "got builtins.str (a DSN: use PostgresHistoryRepository"),
        (None, "got builtins.NoneType"),
    ],
)
def test_other_values_are_refused_as_the_pool(pool: Any, says: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        PostgresHistoryRepository(pool)
    assert str(raised.value).startswith("pool must be a psycopg_pool.AsyncConnectionPool, ")
    assert says in str(raised.value)
