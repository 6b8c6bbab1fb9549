"""The PostgreSQL :class:`~agentcore.repository.HistoryRepository` (psycopg 3).

Every statement comes from ``sql/*.sql`` and is executed with bound, named
parameters. The caller owns the connection pool; :meth:`PostgresHistoryRepository.from_dsn`
is a convenience that opens and closes one.
"""

from __future__ import annotations

import functools
import select
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncCursor
from psycopg.pq import ConnStatus
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from agentcore.errors import (
    AgentcoreError,
    DatabaseUnavailableError,
    SchemaNotReadyError,
    StorageError,
)
from agentcore.models import Message, SessionInfo
from agentcore.rows import (
    message_from_row,
    message_to_copy_row,
    messages_from_rows_newest_first,
    messages_to_json,
    session_from_row,
)
from agentcore.sql import Queries, Query, load_queries
from agentcore.validation import (
    DEFAULT_MAX_CONTENT_CHARS,
    MessageInput,
    check_identifier,
    check_limit,
    conversation_key,
    prepare_messages,
)


@functools.cache
def _queries() -> Queries:
    return load_queries()


class PostgresHistoryRepository:
    """Conversation history in PostgreSQL.

    Reads are one statement. An append is one round trip (a pipeline holding
    the conversation's lock and one insert); its cost does not depend on how
    long the conversation already is.

    Args:
        pool: An open ``psycopg_pool.AsyncConnectionPool``, owned by the caller.
            Its connections may be in autocommit mode or not.
        max_content_chars: The largest accepted message ``content``.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS,
    ) -> None:
        self._pool = pool
        self._max_content_chars = max_content_chars
        self._sql = _queries()

    @classmethod
    @asynccontextmanager
    async def from_dsn(
        cls,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 10.0,
        max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS,
    ) -> AsyncIterator[PostgresHistoryRepository]:
        """Open a pool on ``dsn``, yield a repository over it, close the pool.

        Args:
            dsn: A libpq connection string or ``postgresql://`` URL.
            min_size: Connections kept open.
            max_size: Most connections at once; size it to your concurrency.
            timeout: Seconds to connect, and for a call to wait for a free
                connection before it fails with ``DatabaseUnavailableError``.
            max_content_chars: The largest accepted message ``content``.

        Raises:
            DatabaseUnavailableError: the database cannot be reached or refuses
                the credentials.
        """
        await check_connection(dsn, timeout=timeout)
        pool = AsyncConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(timeout))},
            open=False,
        )
        with _db_errors(pool):
            await pool.open(wait=True, timeout=timeout)
        try:
            yield cls(pool, max_content_chars=max_content_chars)
        finally:
            await pool.close()

    @property
    def max_content_chars(self) -> int:
        """The largest message ``content`` this repository accepts, in characters."""
        return self._max_content_chars

    async def load_history(
        self, agent_name: str, session_id: str | None, limit: int | None = None
    ) -> list[Message]:
        """See :meth:`HistoryRepository.load_history`."""
        limit = check_limit(limit)
        key = conversation_key(agent_name, session_id, "load_history")
        if key is None or limit == 0:
            return []
        params = {"agent_name": key[0], "session_id": key[1], "limit": limit}
        rows = await self._read(self._sql["load_last_messages"], params)
        return messages_from_rows_newest_first(rows)

    async def append_messages(
        self, agent_name: str, session_id: str | None, messages: Sequence[MessageInput]
    ) -> int:
        """See :meth:`HistoryRepository.append_messages`."""
        batch = prepare_messages(messages, max_content_chars=self._max_content_chars)
        key = conversation_key(agent_name, session_id, "append_messages")
        if key is None or not batch:
            return 0
        params = {
            "agent_name": key[0],
            "session_id": key[1],
            "messages": messages_to_json(batch),
            "message_count": len(batch),
        }
        # Without message ids there is nothing to deduplicate: one statement,
        # whose counter upsert locks the conversation's row against other
        # writers. With ids, the "already stored?" check must see every
        # earlier writer: the conversation's lock comes first, in the same
        # implicit transaction and the same round trip.
        if any(m.id is not None for m in batch):
            queries = [self._sql["lock_session"], self._sql["append_messages"]]
        else:
            queries = [self._sql["append_new_messages"]]
        with _db_errors(self._pool):
            async with self._connection() as conn:
                cur = await _run_in_one_round_trip(conn, queries, params)
                return int(cur.rowcount)

    async def save_full_history(
        self, agent_name: str, session_id: str | None, history: Sequence[MessageInput]
    ) -> None:
        """See :meth:`HistoryRepository.save_full_history`."""
        batch = prepare_messages(history, max_content_chars=self._max_content_chars)
        key = conversation_key(agent_name, session_id, "save_full_history")
        if key is None:
            return
        if not batch:
            await self.clear_session(*key)
            return
        agent, session = key
        params = {"agent_name": agent, "session_id": session, "message_count": len(batch)}
        with _db_errors(self._pool):
            async with self._connection() as conn, conn.transaction():
                await self._replace(conn, params, batch)

    async def _replace(
        self, conn: AsyncConnection[Any], params: dict[str, Any], batch: list[Message]
    ) -> None:
        # Order matters: the counter row's lock (reset_session) comes before the
        # delete, whose snapshot must include appends that were in flight.
        async with conn.pipeline():
            await conn.execute(self._sql["lock_session"].text, params)
            cur = await conn.execute(self._sql["reset_session"].text, params)
            await conn.execute(self._sql["delete_messages"].text, params)
        row = await cur.fetchone()
        assert row is not None
        now = row[0]
        agent, session = params["agent_name"], params["session_id"]
        async with cur.copy(self._sql["copy_messages"].text) as copy:
            for seq, message in enumerate(batch):
                await copy.write_row(message_to_copy_row(agent, session, seq, message, now))

    async def clear_session(self, agent_name: str, session_id: str) -> int:
        """See :meth:`HistoryRepository.clear_session`."""
        params = {
            "agent_name": check_identifier(agent_name, "agent_name"),
            "session_id": check_identifier(session_id, "session_id"),
        }
        queries = [
            self._sql["lock_session"],
            self._sql["delete_session"],  # waits for in-flight appends
            self._sql["delete_messages"],
        ]
        with _db_errors(self._pool):
            async with self._connection() as conn:
                cur = await _run_in_one_round_trip(conn, queries, params)
                return int(cur.rowcount)

    async def pop_message(self, agent_name: str, session_id: str) -> Message | None:
        """See :meth:`HistoryRepository.pop_message`."""
        params = {
            "agent_name": check_identifier(agent_name, "agent_name"),
            "session_id": check_identifier(session_id, "session_id"),
        }
        queries = [
            self._sql["lock_session"],
            self._sql["pop_counter"],  # waits for in-flight appends
            self._sql["pop_last_message"],
        ]
        with _db_errors(self._pool):
            async with self._connection() as conn:
                cur = await _run_in_one_round_trip(conn, queries, params)
                row = await cur.fetchone()
        return None if row is None else message_from_row(row)

    async def list_sessions(self, agent_name: str, limit: int = 100) -> list[SessionInfo]:
        """See :meth:`HistoryRepository.list_sessions`."""
        agent = check_identifier(agent_name, "agent_name")
        params = {"agent_name": agent, "limit": check_limit(limit)}
        rows = await self._read(self._sql["list_sessions"], params)
        return [session_from_row(agent, row) for row in rows]

    async def _read(self, query: Query, params: dict[str, Any]) -> list[Any]:
        """Run one read-only statement; once more on a new connection if the first broke.

        The server can end an idle connection so that the socket shows nothing
        yet (its goodbye arrived with the previous reply): the first statement
        sent on it fails. A read is safe to repeat; a write is not, and is not
        repeated.
        """
        with _db_errors(self._pool):
            for attempt in (1, 2):
                async with self._connection() as conn:
                    try:
                        cur = await conn.execute(query.text, params)
                        return await cur.fetchall()
                    except psycopg.OperationalError:
                        # Only a lost connection is worth a second try: a
                        # statement_timeout (QueryCanceled) would just repeat.
                        if attempt == 2 or not conn.broken:
                            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self) -> _Checkout:
        """A connection from the pool that the server has not already ended.

        After a server restart, a failover or ``pg_terminate_backend``, the
        pool's idle connections are dead, and each would fail one call before
        the pool notices. The server announces the end (an error message, then
        end of file) on the idle socket, so a look at the socket, which costs
        no round trip, finds them: they are closed, which makes the pool
        replace them, and the next one is taken.
        """
        return _Checkout(self._pool)


class _Checkout:
    """``async with``: ``pool.connection()``, skipping connections the server ended.

    A class rather than an ``asynccontextmanager`` generator around the pool's
    own: every call checks out a connection, and the extra generator layer cost
    about 10 µs per checkout, 8% of a turn's client CPU (docs/performance.md).
    """

    __slots__ = ("_checkout", "_pool")

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        self._checkout: AbstractAsyncContextManager[AsyncConnection[Any]] | None = None

    async def __aenter__(self) -> AsyncConnection[Any]:
        for _ in range(self._pool.max_size + 1):
            checkout = self._pool.connection()
            conn: AsyncConnection[Any] = await checkout.__aenter__()
            if _still_open(conn):
                self._checkout = checkout
                return conn
            try:
                await conn.close()
            finally:
                await checkout.__aexit__(None, None, None)  # the pool replaces it
        raise DatabaseUnavailableError(
            f"every connection of pool {self._pool.name!r} was closed by the server"
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        checkout, self._checkout = self._checkout, None
        assert checkout is not None
        await checkout.__aexit__(exc_type, exc, tb)


def _still_open(conn: AsyncConnection[Any]) -> bool:
    """Whether an idle connection is still usable, judged without a round trip.

    An idle connection receives nothing unless the server is ending it (or a
    notification or notice arrives, which nothing in agentcore asks for): any
    pending input means the connection is not trusted with the next statement.
    """
    if conn.closed or conn.pgconn.status != ConnStatus.OK:
        return False
    try:
        fd = conn.pgconn.socket
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            return not poller.poll(0)
        readable, _, _ = select.select([fd], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not readable


async def _run_in_one_round_trip(
    conn: AsyncConnection[Any], queries: Sequence[Query], params: dict[str, Any]
) -> AsyncCursor[Any]:
    """Run ``queries`` atomically in one network round trip; return the last cursor.

    In pipeline mode the statements before one Sync form a single implicit
    transaction: all of them commit together, or an error rolls all back. An
    explicit BEGIN/COMMIT would cost a round trip each.
    """
    autocommit = conn.autocommit
    if not autocommit:  # a caller's pool may hand out non-autocommit connections
        await conn.set_autocommit(True)
    try:
        if len(queries) == 1:  # a lone statement is one round trip without a pipeline
            return await conn.execute(queries[0].text, params)
        async with conn.pipeline():
            cursors = [await conn.execute(query.text, params) for query in queries]
        return cursors[-1]
    finally:
        if not autocommit and not conn.closed:
            await conn.set_autocommit(False)


async def check_connection(dsn: str, *, timeout: float = 10.0) -> None:
    """Connect once to ``dsn`` and disconnect, to fail early with a clear reason.

    Raises:
        DatabaseUnavailableError: the DSN is malformed, the server cannot be
            reached, or it refuses the credentials.
    """
    try:
        conn = await AsyncConnection.connect(dsn, connect_timeout=max(1, round(timeout)))
    except psycopg.Error as exc:
        raise DatabaseUnavailableError(f"cannot connect to the database: {exc}") from exc
    await conn.close()


class _db_errors:
    """Translate psycopg and pool errors into agentcore's, keeping the cause."""

    __slots__ = ("_pool",)

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, AgentcoreError) or not isinstance(exc, Exception):
            return
        raise _translate(exc, self._pool) from exc


def _translate(exc: Exception, pool: AsyncConnectionPool[Any]) -> AgentcoreError:
    if isinstance(exc, PoolTimeout):
        return DatabaseUnavailableError(
            f"no database connection became available within {pool.timeout:g}s "
            f"(pool {pool.name!r}, max_size={pool.max_size}): the database is down "
            "or every connection is busy"
        )
    if isinstance(exc, PoolClosed):
        return DatabaseUnavailableError(f"the connection pool {pool.name!r} is closed")
    if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedColumn):
        # A missing column means an older schema (0001 without 0002): same cure.
        return SchemaNotReadyError(
            "agentcore's tables are missing or out of date in this database: apply the "
            "migrations "
            "(agentcore.migrations.apply(dsn), or `agentcore migrate up`)"
        )
    if isinstance(exc, psycopg.OperationalError) and _lost_connection(exc):
        return DatabaseUnavailableError(f"database connection failed: {exc}")
    if isinstance(exc, psycopg.Error):
        return StorageError(f"database error: {exc}")
    return StorageError(f"unexpected error while talking to the database: {exc!r}")


def _lost_connection(exc: psycopg.OperationalError) -> bool:
    # psycopg's OperationalError also covers errors the server raised on a live
    # connection (statement_timeout, lock_timeout): those are StorageError. A
    # client-side failure has no SQLSTATE; the server reports connection
    # trouble as class 08 and shutdowns as 57P.
    state = exc.sqlstate
    return state is None or state.startswith(("08", "57P"))
