from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agentcore import HistoryRepository, InMemoryHistoryRepository, PostgresHistoryRepository
from tests.conftest import pool_for
from tests.support import PgServer, app_role, fresh_database


@pytest.fixture(params=["memory", "postgres", "postgres-app-role"])
async def repo(
    request: pytest.FixtureRequest, pg_server: PgServer
) -> AsyncIterator[HistoryRepository]:
    """Every contract test runs against each repository.

    ``postgres-app-role`` connects as a role holding only the grants that
    docs/operations.md documents (no DDL), as a production app should.
    """
    if request.param == "memory":
        yield InMemoryHistoryRepository()
        return
    with fresh_database(pg_server) as dsn:
        if request.param == "postgres":
            async with pool_for(dsn) as pool:
                yield PostgresHistoryRepository(pool)
            return
        with app_role(dsn) as app_dsn:
            async with pool_for(app_dsn) as pool:
                yield PostgresHistoryRepository(pool)
