"""Which database a CLI invocation uses, and getting its schema ready."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from agentcore import embedded, migrations
from agentcore.postgres import PostgresHistoryRepository

DSN_ENV = "AGENTCORE_DATABASE_URL"
"""The environment variable read when ``--dsn`` is not given."""

POOL_TIMEOUT_SECONDS = 10.0
"""How long the CLI waits to connect before it gives up."""


@dataclass(frozen=True)
class Database:
    """The database of one invocation.

    Attributes:
        dsn: Where to connect.
        embedded: It is the embedded default (no ``--dsn``, no ``$AGENTCORE_DATABASE_URL``).
    """

    dsn: str
    embedded: bool


def explicit_dsn(flag: str | None) -> str | None:
    """``--dsn``, else ``$AGENTCORE_DATABASE_URL``, else ``None`` (the embedded default)."""
    return flag or os.environ.get(DSN_ENV) or None


def resolve(flag: str | None) -> Database:
    """The database for this invocation, starting the embedded default if needed.

    Raises:
        DatabaseUnavailableError: the embedded server is not installed or failed to start.
    """
    dsn = explicit_dsn(flag)
    if dsn is not None:
        return Database(dsn=dsn, embedded=False)
    server = embedded.start(embedded.default_data_dir())
    return Database(dsn=server.dsn, embedded=True)


def prepare(database: Database, *, apply_migrations: bool) -> list[str]:
    """Apply pending migrations when asked to; returns the ids applied.

    The embedded default is always brought up to date: it belongs to the CLI.
    A database given by DSN belongs to someone else, so only ``demo`` (and
    ``migrate up``) change its schema; other commands fail with
    ``SchemaNotReadyError`` when it is behind.
    """
    if database.embedded or apply_migrations:
        return migrations.apply(database.dsn)
    return []


@asynccontextmanager
async def open_repository(dsn: str) -> AsyncIterator[PostgresHistoryRepository]:
    """A repository over a small pool (the CLI is one user), closed afterwards."""
    async with PostgresHistoryRepository.from_dsn(
        dsn, min_size=1, max_size=4, timeout=POOL_TIMEOUT_SECONDS
    ) as repository:
        yield repository
