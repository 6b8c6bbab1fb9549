"""Apply and roll back agentcore's schema migrations (yoyo, plain SQL files).

Migrations run as the database owner, never on a request path: call
:func:`apply` at deploy time (or ``agentcore migrate up``). Concurrent callers
are safe: yoyo holds a lock row while it works, so a second process waits and
then finds nothing left to do.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from psycopg.conninfo import make_conninfo
from yoyo import get_backend, read_migrations

from agentcore.dsn import parse_dsn, redact
from agentcore.encoding import SUPPORTED_ENCODING, check_server_encoding
from agentcore.errors import DatabaseUnavailableError, MigrationError, UnsupportedDatabaseError
from agentcore.resources import data_dir
from agentcore.sql import Queries, load_queries

LOCK_TIMEOUT_SECONDS = 60
"""How long a migration run waits for another process's run to finish."""


@dataclass(frozen=True, slots=True)
class MigrationState:
    """One migration and whether the database has it."""

    id: str
    applied: bool


def apply(dsn: str, *, migrations_dir: Path | None = None) -> list[str]:
    """Bring the database up to the newest schema.

    Args:
        dsn: A libpq connection string or ``postgresql://`` URL.
        migrations_dir: Another migrations folder (default: agentcore's own).

    Returns:
        The ids of the migrations applied by this call, oldest first; ``[]``
        when the schema was already current.

    A current schema is found by reading yoyo's tables, without its lock: a
    role that may only read them (the application's least-privilege role of
    docs/operations.md) can call this at start-up, and it fails only when
    something is left to apply.

    Raises:
        DatabaseUnavailableError: the database cannot be reached.
        MigrationError: a migration failed (its transaction was rolled back), or
            the role may not run migrations and some are pending.
    """
    migrations = read_migrations(str(migrations_dir or data_dir("migrations")))
    with _backend(dsn, "apply") as backend:
        if _may_read_state(backend) and not backend.to_apply(migrations):
            return []
        with _lock(backend):
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
            return [m.id for m in pending]


def rollback(dsn: str, *, steps: int | None = 1, migrations_dir: Path | None = None) -> list[str]:
    """Undo the newest applied migrations.

    Args:
        dsn: A libpq connection string or ``postgresql://`` URL.
        steps: How many migrations to undo, newest first; ``None`` undoes all.
        migrations_dir: Another migrations folder (default: agentcore's own).

    Returns:
        The ids of the migrations rolled back, newest first.

    Raises:
        DatabaseUnavailableError: the database cannot be reached.
        MigrationError: ``steps`` is negative, or a rollback failed.
    """
    if steps is not None and steps < 0:
        raise MigrationError(f"steps must be >= 0 or None, got {steps}")
    migrations = read_migrations(str(migrations_dir or data_dir("migrations")))
    with _backend(dsn, "roll back") as backend, _lock(backend):
        applied = list(backend.to_rollback(migrations))
        chosen = applied if steps is None else applied[:steps]
        backend.rollback_migrations(migrations.__class__(chosen, migrations.post_apply))
        return [m.id for m in chosen]


def status(dsn: str, *, migrations_dir: Path | None = None) -> list[MigrationState]:
    """Every known migration, oldest first, and whether it is applied."""
    migrations = read_migrations(str(migrations_dir or data_dir("migrations")))
    with _backend(dsn, "read the status of") as backend:
        _require_readable_state(backend)
        pending = {m.id for m in backend.to_apply(migrations)}
        return [MigrationState(m.id, m.id not in pending) for m in migrations]


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    """What a rollback would undo, and how much stored data is at stake.

    Attributes:
        ids: The migrations it would roll back, newest first.
        conversations: Conversations stored now (on the pre-session schema,
            one per agent).
        messages: Messages stored now.
    """

    ids: list[str]
    conversations: int
    messages: int


def plan_rollback(
    dsn: str, *, steps: int | None = 1, migrations_dir: Path | None = None
) -> RollbackPlan:
    """What :func:`rollback` with the same arguments would undo, without changing anything.

    Raises:
        DatabaseUnavailableError: the database cannot be reached.
        MigrationError: ``steps`` is negative, or the database cannot be read.
    """
    if steps is not None and steps < 0:
        raise MigrationError(f"steps must be >= 0 or None, got {steps}")
    migrations = read_migrations(str(migrations_dir or data_dir("migrations")))
    with _backend(dsn, "plan the rollback of") as backend:
        _require_readable_state(backend)
        applied = [m.id for m in backend.to_rollback(migrations)]
        chosen = applied if steps is None else applied[:steps]
        cursor = backend.connection.cursor()
        if not chosen:
            return RollbackPlan([], 0, 0)
        if "0002_session_scoped_history" in applied:
            cursor.execute(_queries()["count_session_conversations"].text)
        elif "0001_conversation_history" in applied:
            cursor.execute(_queries()["count_legacy_conversations"].text)
        else:
            return RollbackPlan(chosen, 0, 0)
        conversations, messages = cursor.fetchone()
        return RollbackPlan(chosen, int(conversations), int(messages))


def newest_operation(dsn: str) -> str | None:
    """The newest operation in yoyo's log of this database, ``None`` before any.

    ``"rollback"`` means the schema was last changed by an explicit rollback:
    an automatic upgrade (the CLI's embedded database) must not undo it.

    Raises:
        DatabaseUnavailableError: the database cannot be reached.
        MigrationError: the log cannot be read.
    """
    with _backend(dsn, "read the log of") as backend:
        cursor = backend.connection.cursor()
        cursor.execute(_queries()["migration_log_exists"].text, {"log_table": backend.log_table})
        row = cursor.fetchone()
        if row is None or not row[0]:
            return None
        cursor.execute(_queries()["newest_migration_operation"].text)
        newest = cursor.fetchone()
        return None if newest is None else str(newest[0])


def yoyo_url(dsn: str) -> str:
    """Turn any libpq DSN into the ``postgresql+psycopg://`` URL yoyo expects.

    Every connection parameter (unix-socket hosts and passwords included)
    travels in the query string, so nothing is lost to URL parsing. The
    connection talks UTF-8 whatever client encoding the DSN, the role or the
    database would choose.

    Raises:
        InvalidDsnError: ``dsn`` is malformed.
    """
    return "postgresql+psycopg:///?" + urlencode(_connection_params(dsn))


def _connection_params(dsn: str) -> dict[str, str]:
    return parse_dsn(dsn) | {"client_encoding": SUPPORTED_ENCODING}


@functools.cache
def _queries() -> Queries:
    return load_queries()


def _may_read_state(backend: Any) -> bool:
    """Whether this role may read what is applied (yoyo's tables exist and are readable)."""
    tables = [backend.version_table, backend.migration_table, backend.log_table]
    cursor = backend.connection.cursor()
    cursor.execute(_queries()["can_read_migration_state"].text, {"tables": tables})
    row = cursor.fetchone()
    return bool(row and row[0])


def _require_readable_state(backend: Any) -> None:
    """Fail clearly where yoyo would try to take its lock to "upgrade" tables it cannot see.

    yoyo finds its tables through ``information_schema``, which hides the
    tables a role has no right on: to such a role a migrated database looks
    new, and yoyo then tries to write its lock table.
    """
    if _may_read_state(backend):
        return
    cursor = backend.connection.cursor()
    cursor.execute(_queries()["migration_log_exists"].text, {"log_table": backend.log_table})
    row = cursor.fetchone()
    if row is not None and row[0]:
        raise MigrationError(
            "the database role may not read yoyo's tables "
            f"({backend.version_table}, {backend.migration_table}, {backend.log_table}): "
            "let it read them (the grants of docs/operations.md, least-privilege role) or use "
            "the role that owns agentcore's tables"
        )


@contextmanager
def _lock(backend: Any) -> Iterator[None]:
    """yoyo's migration lock, refused at once to a role that may not take it."""
    cursor = backend.connection.cursor()
    cursor.execute(_queries()["can_take_migration_lock"].text, {"lock_table": backend.lock_table})
    row = cursor.fetchone()
    if row is not None and row[0] is False:
        raise MigrationError(
            f"the database role may not write yoyo's lock table {backend.lock_table!r}: "
            "run the migrations as the role that owns agentcore's tables"
        )
    with backend.lock(LOCK_TIMEOUT_SECONDS):
        yield


@contextmanager
def _backend(dsn: str, action: str) -> Iterator[Any]:
    """yoyo's backend for ``dsn``, closed afterwards, its errors translated.

    The database's encoding is checked first: yoyo creates its own tables as
    soon as it connects.
    """
    url = yoyo_url(dsn)
    try:
        with psycopg.connect(make_conninfo("", **_connection_params(dsn))) as conn:
            check_server_encoding(conn.info.parameter_status("server_encoding"), conn.info.dbname)
        backend = get_backend(url)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(
            f"cannot connect to the database: {redact(str(exc), dsn)}"
        ) from exc
    # Behind a pooler in transaction mode (PgBouncer) a prepared statement would
    # be missing on the next transaction's server connection, or left for the
    # next client. yoyo runs a few statements per migration, once a run: nothing
    # to gain from preparing them. The statements yoyo ran so far ran once each.
    backend.connection.prepare_threshold = None
    try:
        yield backend
    except (MigrationError, DatabaseUnavailableError, UnsupportedDatabaseError):
        raise
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(
            f"lost the database connection: {redact(str(exc), dsn)}"
        ) from exc
    except Exception as exc:
        raise MigrationError(f"could not {action} migrations: {redact(str(exc), dsn)}") from exc
    finally:
        backend.connection.close()
