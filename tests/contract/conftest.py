from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agentcore import (
    HistoryRepository,
    InMemoryHistoryRepository,
    PostgresHistoryRepository,
    SyncHistoryRepository,
)
from tests.conftest import pool_for
from tests.support import PgServer, app_role, fresh_database


class ThreadedSyncRepository:
    """The async contract, served by a SyncHistoryRepository called from worker threads.

    Every call runs in a thread of its own (``asyncio.to_thread``), so the
    contract's concurrency tests drive the sync face from many threads at once.
    """

    def __init__(self, sync: SyncHistoryRepository) -> None:
        self._sync = sync

    @property
    def max_content_chars(self) -> int:
        return self._sync.max_content_chars

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._sync, name)
        if name.startswith("iter_"):  # an async iterator over the sync one, pulled in threads

            async def iterate(*args: Any, **kwargs: Any) -> Any:
                items = await asyncio.to_thread(method, *args, **kwargs)
                done = object()
                while (item := await asyncio.to_thread(next, items, done)) is not done:
                    yield item

            return iterate

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        return call


@pytest.fixture(
    params=["memory", "postgres", "postgres-app-role", "memory-sync", "postgres-sync"]
)
async def repo(
    request: pytest.FixtureRequest, pg_server: PgServer
) -> AsyncIterator[HistoryRepository]:
    """Every contract test runs against each repository, async and sync.

    ``postgres-app-role`` connects as a role holding only the grants that
    docs/operations.md documents (no DDL), as a production app should. The
    ``-sync`` ones are :class:`SyncHistoryRepository` faces, called from threads.
    """
    if request.param == "memory":
        yield InMemoryHistoryRepository()
        return
    if request.param == "memory-sync":
        with SyncHistoryRepository.over(InMemoryHistoryRepository()) as sync:
            yield ThreadedSyncRepository(sync)
        return
    with fresh_database(pg_server) as dsn:
        if request.param == "postgres":
            async with pool_for(dsn) as pool:
                yield PostgresHistoryRepository(pool)
            return
        if request.param == "postgres-sync":
            sync = await asyncio.to_thread(SyncHistoryRepository.from_dsn, dsn, max_size=10)
            try:
                yield ThreadedSyncRepository(sync)
            finally:
                await asyncio.to_thread(sync.close)
            return
        with app_role(dsn) as app_dsn:
            async with pool_for(app_dsn) as pool:
                yield PostgresHistoryRepository(pool)
