"""Which database a CLI invocation uses, and getting its schema ready."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from agentcore import embedded, migrations
from agentcore.dsn import parse_dsn
from agentcore.errors import (
    InvalidDsnError,
    MissingDependencyError,
    SchemaNotReadyError,
)
from agentcore.postgres import PostgresHistoryRepository

DSN_ENV = "AGENTCORE_DATABASE_URL"
"""The environment variable read when ``--dsn`` is not given."""

POOL_TIMEOUT_SECONDS = 10.0
"""How long the CLI waits to connect before it gives up."""

APP_ROLE = embedded.APP_ROLE
"""The embedded database's least-privilege role, which ``agentcore db dsn`` hands out."""

FROM_FLAG = "--dsn"
FROM_ENV = DSN_ENV
FROM_EMBEDDED = "embedded"


@dataclass(frozen=True)
class Database:
    """The database of one invocation.

    Attributes:
        dsn: Where to connect.
        source: Where the DSN came from: ``"--dsn"``, ``"AGENTCORE_DATABASE_URL"``
            or ``"embedded"`` (the embedded default).
        prog: How the user runs the command (``agentcore``...), for hints.
    """

    dsn: str
    source: str
    prog: str = "agentcore"

    @property
    def embedded(self) -> bool:
        """It is the embedded default (no ``--dsn``, no ``$AGENTCORE_DATABASE_URL``)."""
        return self.source == FROM_EMBEDDED

    def migrate_up_hint(self) -> str:
        """How to apply the migrations to this very database."""
        command = f"`{self.prog} migrate up`"
        if self.source == FROM_FLAG:
            return f"run {command} with the same --dsn"
        if self.source == FROM_ENV:
            return f"run {command} (it uses the same ${DSN_ENV})"
        return f"run {command} (for the embedded database)"


def explicit_dsn(flag: str | None) -> str | None:
    """``--dsn``, else ``$AGENTCORE_DATABASE_URL``, else ``None`` (the embedded default)."""
    return flag or os.environ.get(DSN_ENV) or None


def resolve(flag: str | None, *, prog: str = "agentcore") -> Database:
    """The database for this invocation, starting the embedded default if needed.

    A DSN given by ``--dsn`` or ``$AGENTCORE_DATABASE_URL`` is checked here,
    once, without connecting.

    Raises:
        InvalidDsnError: the DSN is malformed or empty (the message names where
            it came from): an empty one never means the embedded default.
        MissingDependencyError: no DSN, and the ``embedded`` extra is not installed.
        DatabaseUnavailableError: the embedded server failed to start.
    """
    if flag is not None:
        _refuse_empty(flag, FROM_FLAG, "leave --dsn out")
        parse_dsn(flag, source=FROM_FLAG)
        return Database(dsn=flag, source=FROM_FLAG, prog=prog)
    from_env = os.environ.get(DSN_ENV)
    if from_env is not None:
        # Exported but empty (`AGENTCORE_DATABASE_URL=$UNSET`) is the same
        # mistake as `--dsn ""`: not a request for the embedded database.
        _refuse_empty(from_env, f"${DSN_ENV}", f"unset {DSN_ENV}")
        parse_dsn(from_env, source=f"${DSN_ENV}")
        return Database(dsn=from_env, source=FROM_ENV, prog=prog)
    try:
        server = embedded.start(embedded.default_data_dir())
    except MissingDependencyError as exc:
        raise MissingDependencyError(
            f"{exc}; or use another database with --dsn or ${DSN_ENV}"
        ) from exc
    return Database(dsn=server.dsn, source=FROM_EMBEDDED, prog=prog)


def _refuse_empty(dsn: str, source: str, instead: str) -> None:
    if not dsn.strip():
        raise InvalidDsnError(
            f"invalid database DSN (from {source}): it is empty; give a DSN, or {instead} "
            "to use the embedded database"
        )


def prepare(database: Database, *, apply_migrations: bool) -> list[str]:
    """Apply pending migrations when asked to; returns the ids applied.

    The embedded default is always brought up to date: it belongs to the CLI.
    A database given by DSN belongs to someone else, so only ``demo`` (and
    ``migrate up``) change its schema; other commands fail with
    ``SchemaNotReadyError`` when it is behind. Neither ever undoes an explicit
    ``migrate down``: after one, they fail until ``migrate up`` is run.
    """
    if not (database.embedded or apply_migrations):
        return []
    if migrations.newest_operation(database.dsn) == "rollback":
        raise SchemaNotReadyError(
            "migrations not applied: they were rolled back with `migrate down` on "
            f"{describe_source(database)}, and commands do not re-apply them on their own; "
            + database.migrate_up_hint()
        )
    return migrations.apply(database.dsn)


def same_database(database: Database) -> str:
    """What a hint adds to a command so that it uses this database too: ``" with the
    same --dsn"`` (never the DSN itself, which may hold a password), else nothing (the
    environment or the embedded default is found again as it was)."""
    return " with the same --dsn" if database.source == FROM_FLAG else ""


def describe_source(database: Database) -> str:
    """The database in words, for messages: ``the database given by --dsn``..."""
    if database.source == FROM_FLAG:
        return "the database given by --dsn"
    if database.source == FROM_ENV:
        return f"the database in ${DSN_ENV}"
    return f"the embedded database in {embedded.default_data_dir()}"


@asynccontextmanager
async def open_repository(database: Database) -> AsyncIterator[PostgresHistoryRepository]:
    """A repository over a small pool (the CLI is one user), closed afterwards.

    A missing or outdated schema is reported with how to fix it for this
    very database.
    """
    try:
        async with PostgresHistoryRepository.from_dsn(
            database.dsn, min_size=1, max_size=4, timeout=POOL_TIMEOUT_SECONDS
        ) as repository:
            yield repository
    except SchemaNotReadyError as exc:
        raise SchemaNotReadyError(
            "migrations not applied: agentcore's tables are missing or out of date in "
            f"{describe_source(database)}; {database.migrate_up_hint()}"
        ) from exc
