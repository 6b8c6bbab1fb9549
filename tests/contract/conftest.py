from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agentcore import HistoryRepository, InMemoryHistoryRepository, PostgresHistoryRepository
from tests.conftest import open_pool
from tests.support import PgServer, fresh_database


@pytest.fixture(params=["memory", "postgres"])
async def repo(
    request: pytest.FixtureRequest, pg_server: PgServer
) -> AsyncIterator[HistoryRepository]:
    """Every contract test runs once against each repository."""
    if request.param == "memory":
        yield InMemoryHistoryRepository()
        return
    with fresh_database(pg_server) as dsn:
        pool = await open_pool(dsn)
        try:
            yield PostgresHistoryRepository(pool)
        finally:
            await pool.close()
