"""The PostgreSQL :class:`~agentcore.repository.HistoryRepository` (psycopg 3).

Every statement comes from ``sql/*.sql`` and is executed with bound, named
parameters. The caller owns the connection pool; :meth:`PostgresHistoryRepository.from_dsn`
is a convenience that opens and closes one.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import select
import weakref
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from time import monotonic
from types import TracebackType
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, AsyncCursor, IsolationLevel
from psycopg.conninfo import make_conninfo
from psycopg.pq import ConnStatus, TransactionStatus
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolClosed, PoolTimeout

from agentcore.dsn import SECRET_KEYWORDS, parse_dsn, redact
from agentcore.encoding import SUPPORTED_ENCODING, check_server_encoding
from agentcore.errors import (
    AgentcoreError,
    DatabaseUnavailableError,
    InvalidInputError,
    InvalidMessageError,
    PoolNotOpenError,
    SchemaNotReadyError,
    StorageError,
    TransientStorageError,
    copy_refusal,
    session_exists,
    session_not_found,
)
from agentcore.models import HistoryPage, Message, PurgeReport, SessionInfo, SessionPage
from agentcore.paging import (
    decode_history_cursor,
    decode_session_cursor,
    history_cursor,
    session_page,
)
from agentcore.postgres_scoped import PostgresScopedState
from agentcore.rows import (
    message_from_row,
    message_to_copy_row,
    messages_from_rows_newest_first,
    messages_to_json_chunks,
    metadata_to_json,
    plain_batch_params,
    session_from_row,
)
from agentcore.sql import Queries, Query, load_queries
from agentcore.streams import each
from agentcore.validation import (
    DEFAULT_MAX_CONTENT_CHARS,
    DEFAULT_PURGE_BATCH_SIZE,
    DEFAULT_PURGE_MAX_IMPACT,
    DEFAULT_PURGE_PAUSE,
    MAX_LIMIT,
    REPEATED_IMPORT_ID,
    MessageInput,
    MessageStream,
    check_copy_bound,
    check_expected_tail,
    check_identifier,
    check_idle_for,
    check_limit,
    check_max_content_chars,
    check_max_impact,
    check_owner,
    check_owner_fits,
    check_page_size,
    check_pause,
    check_restored_identifier,
    check_session_metadata,
    check_session_time,
    check_stored_identifier,
    conversation_key,
    merge_session_metadata,
    prepare_messages,
)

_T = TypeVar("_T")

PURGE_HEAP_PAGES = 1024
"""Heap pages of conversation_history a purge batch looks at for first messages.

Its walk in physical order (purge_idle_in_heap_order) goes on from where a full
batch stopped, or after this many pages: each batch reads at most 8 MiB.
"""

APPEND_CHUNK_JSONB_BYTES = 64 * 2**20
"""The most an append sends as one jsonb value, by a safe upper estimate (bytes).

PostgreSQL's jsonb holds at most 268,435,455 bytes; a larger batch is split
into parts of at most this estimate (one message per part at least, which
the per-message limits of :mod:`agentcore.validation` keep below the
maximum), stored in one transaction. Ordinary batches are one part.
"""


_DISTRIBUTED: weakref.WeakKeyDictionary[AsyncConnectionPool[Any], bool] = (
    weakref.WeakKeyDictionary()
)
"""Per pool: whether its database has the citus extension (PostgresHistoryRepository._on_citus)."""


@functools.cache
def _queries() -> Queries:
    return load_queries()


class PostgresHistoryRepository(PostgresScopedState):
    """Conversation history in PostgreSQL.

    Reads are one statement. An append is one round trip (a pipeline holding
    the conversation's lock and one insert); its cost does not depend on how
    long the conversation already is.

    Args:
        pool: An open ``psycopg_pool.AsyncConnectionPool``, owned by the caller.
            Its connections may be in autocommit mode or not.
        max_content_chars: The largest accepted message ``content``, from 1 to
            ``agentcore.validation.MAX_CONTENT_CHARS_LIMIT`` (25,000,000).

    Raises:
        InvalidInputError: ``pool`` is not an ``AsyncConnectionPool`` (a
            synchronous pool or a connection, say), or ``max_content_chars``
            is out of that range.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS,
    ) -> None:
        self._pool = _check_pool(pool)
        self._max_content_chars = check_max_content_chars(max_content_chars)
        self._sql = _queries()
        self._citus: bool | None = None  # whether the citus extension is there; asked once per pool

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

        ``dsn`` may lead to PgBouncer (transaction or session mode) or another
        connection pooler: its connections then prepare no statement
        (:func:`prepare_unless_pooled`); there is nothing to set.

        Args:
            dsn: A libpq connection string or ``postgresql://`` URL.
            min_size: Connections kept open.
            max_size: Most connections at once; size it to your concurrency.
            timeout: Seconds to connect, and for a call to wait for a free
                connection before it fails with ``DatabaseUnavailableError``.
            max_content_chars: The largest accepted message ``content``.

        Raises:
            InvalidDsnError: ``dsn`` is malformed (nothing is connected).
            DatabaseUnavailableError: the database cannot be reached or refuses
                the credentials.
        """
        check_max_content_chars(max_content_chars)  # before connecting
        await check_connection(dsn, timeout=timeout)
        pool = AsyncConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs={
                "autocommit": True,
                "connect_timeout": max(1, round(timeout)),
                "client_encoding": SUPPORTED_ENCODING,
            },
            configure=prepare_unless_pooled,
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
        citus = self._citus if self._citus is not None else await self._on_citus()
        query = (
            self._sql["load_last_messages_distributed"]
            if citus
            else self._sql["load_last_messages"]
        )
        rows = await self._read(query, params)
        return messages_from_rows_newest_first(rows)

    async def append_messages(
        self, agent_name: str, session_id: str | None, messages: Sequence[MessageInput]
    ) -> int:
        """See :meth:`HistoryRepository.append_messages`."""
        batch = prepare_messages(messages, max_content_chars=self._max_content_chars)
        key = conversation_key(agent_name, session_id, "append_messages")
        if key is None or not batch:
            return 0
        agent, session = key
        if self._citus if self._citus is not None else await self._on_citus():
            with _db_errors(self._pool):
                async with self._write_connection() as conn, _autocommit_kept(conn):
                    return await self._append_distributed(conn, agent, session, batch)
        plain = plain_batch_params(batch)
        if plain is not None:
            # The commonest case (a turn's input and reply): no JSON array.
            params = {"agent_name": agent, "session_id": session, **plain}
            with _db_errors(self._pool):
                async with self._write_connection() as conn:
                    return await self._append_new(conn, self._sql["append_plain_messages"], params)
        with_ids = any(m.id is not None for m in batch)
        chunks = messages_to_json_chunks(batch, APPEND_CHUNK_JSONB_BYTES)
        if len(chunks) == 1 and not with_ids:
            # The common case (a turn): nothing to deduplicate, one statement,
            # whose counter upsert locks the conversation's row against other
            # writers. No transaction block, no pipeline: the cheapest write.
            params = {
                "agent_name": agent,
                "session_id": session,
                "messages": chunks[0][0],
                "message_count": chunks[0][1],
            }
            with _db_errors(self._pool):
                async with self._write_connection() as conn:
                    return await self._append_new(conn, self._sql["append_new_messages"], params)
        # With ids, the "already stored?" check must see every earlier writer;
        # a batch too large for one jsonb value is split, and its parts must
        # commit together and see each other: the conversation's lock comes
        # first, then one statement per part, in one READ COMMITTED
        # transaction sent in one round trip.
        lock: dict[str, Any] = {"agent_name": agent, "session_id": session}
        inserts, parts = self._append_parts(chunks, with_ids, lock)
        queries = self._locked(*inserts)
        params_list = [lock, lock, *parts, lock]
        with _db_errors(self._pool):
            async with self._write_connection() as conn:
                cursors = await _run_in_one_round_trip(conn, queries, params_list)
                return sum(int(cur.rowcount) for cur in cursors[2:-1])

    def _locked(self, *statements: Query) -> list[Query]:
        """``statements`` as one write: READ COMMITTED, holding the conversation's lock.

        begin_read_committed, lock_session, the statements, commit: sent in one
        round trip by :func:`_run_in_one_round_trip`, the statements' cursors
        are the list's ``[2:-1]``. Every multi-statement write that must see
        every earlier writer of the conversation, and commit whole, is built so.
        """
        sql = self._sql
        return [sql["begin_read_committed"], sql["lock_session"], *statements, sql["commit"]]

    def _append_parts(
        self, chunks: list[tuple[str, int]], with_ids: bool, key: dict[str, Any]
    ) -> tuple[list[Query], list[dict[str, Any]]]:
        """The statements appending ``chunks`` in a transaction that holds the conversation's lock.

        One statement per part of the batch (see :data:`APPEND_CHUNK_JSONB_BYTES`),
        with its parameters; with ids, the statement that skips stored ones.
        """
        insert = self._sql["append_messages"] if with_ids else self._sql["append_new_messages"]
        params = [key | {"messages": text, "message_count": n} for text, n in chunks]
        return [insert] * len(chunks), params

    async def _append_new(
        self, conn: AsyncConnection[Any], query: Query, params: dict[str, Any]
    ) -> int:
        """Run an append ``query`` alone; under a stricter default isolation, at READ COMMITTED.

        Alone, the statement is atomic and correct at any isolation level, but
        at REPEATABLE READ or SERIALIZABLE (a DBA's default_transaction_isolation)
        it fails with a serialization error when a concurrent writer of the
        conversation committed after it started. The failed attempt changed
        nothing, so it is repeated inside an explicit READ COMMITTED
        transaction, which waits for the row instead. Under the default READ
        COMMITTED this costs nothing: one statement, one round trip.
        """
        try:
            cursors = await _run_in_one_round_trip(conn, [query], [params])
        except psycopg.errors.SerializationFailure:
            queries = [self._sql["begin_read_committed"], query, self._sql["commit"]]
            cursors = await _run_in_one_round_trip(conn, queries, [params] * 3)
            return int(cursors[1].rowcount)
        return int(cursors[0].rowcount)

    async def _append_distributed(
        self, conn: AsyncConnection[Any], agent: str, session: str, batch: list[Message]
    ) -> int:
        """Append ``batch`` on a Citus cluster: one transaction, two round trips, one shard.

        Every statement is a router query on the conversation's shard
        (sql/distributed.sql tells why the single-server appends are not):
        the first round trip claims the positions (claim_counter_distributed,
        which locks the counter row until commit) after, for a batch with
        ids, the conversation's lock and the ids already stored; the second
        stores the rows (an INSERT ... VALUES for one or two plain messages,
        else COPY) and commits. Returns how many messages were stored.
        """
        key: dict[str, Any] = {"agent_name": agent, "session_id": session}
        ids = [m.id for m in batch if m.id is not None]
        plain = None if ids else plain_batch_params(batch)
        first = [self._sql["begin_read_committed"]]
        params = [key]
        if ids:
            first += [self._sql["lock_session"], self._sql["stored_message_ids_distributed"]]
            params += [key, key | {"message_ids": ids}]
        if plain is None:
            first.append(self._sql["transaction_time"])
            params.append(key)
        first.append(self._sql["claim_counter_distributed"])
        params.append(key | {"message_count": 0 if ids else len(batch)})
        cursors = await _run_in_one_round_trip(conn, first, params)
        stored = {row[0] for row in await cursors[2].fetchall()} if ids else set()
        claimed = await cursors[-1].fetchone()
        assert claimed is not None
        start = int(claimed[0])
        fresh = [m for m in batch if m.id is None or m.id not in stored]
        last: list[Query] = []
        last_params: list[dict[str, Any]] = []
        if ids and fresh:  # the claim counted none: count those stored now
            last.append(self._sql["set_counter_distributed"])
            last_params.append(key | {"next_seq": start + len(fresh)})
        if plain is not None:
            insert = (
                self._sql["insert_plain_messages_distributed"]
                if len(batch) == 2
                else self._sql["insert_plain_message_distributed"]
            )
            last.append(insert)
            last_params.append(key | plain | {"seq": start})
        elif fresh:
            moment = await cursors[-2].fetchone()
            assert moment is not None
            await _copy_messages(
                cursors[-1], self._sql["copy_messages"], key, start, fresh, moment[0]
            )
        await _run_in_one_round_trip(conn, [*last, self._sql["commit"]], [*last_params, key])
        return len(fresh)

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
        await self._in_transaction(lambda conn: self._replace(conn, params, batch))

    async def _replace(
        self, conn: AsyncConnection[Any], params: dict[str, Any], batch: list[Message]
    ) -> None:
        # Order matters: the counter row's lock (reset_session) comes before the
        # delete, whose snapshot must include appends that were in flight.
        async with _pipeline(conn):
            await conn.execute(self._sql["lock_session"].text, params)
            await conn.execute(self._sql["reset_session"].text, params)
            cur = await conn.execute(self._sql["transaction_time"].text, binary=True)
            await conn.execute(self._sql["delete_messages"].text, params)
        row = await cur.fetchone()
        assert row is not None
        now = row[0]
        await _copy_messages(cur, self._sql["copy_messages"], params, 0, batch, now)

    async def get_message(
        self, agent_name: str, session_id: str, message_id: str
    ) -> Message | None:
        """See :meth:`HistoryRepository.get_message`."""
        params = {
            "agent_name": check_stored_identifier(agent_name, "agent_name"),
            "session_id": check_stored_identifier(session_id, "session_id"),
            "message_id": check_stored_identifier(message_id, "message_id"),
        }
        rows = await self._read(self._sql["get_message"], params)
        return message_from_row(rows[0]) if rows else None

    async def clear_session(self, agent_name: str, session_id: str) -> int:
        """See :meth:`HistoryRepository.clear_session`."""
        params = {
            "agent_name": check_stored_identifier(agent_name, "agent_name"),
            "session_id": check_stored_identifier(session_id, "session_id"),
        }
        queries = self._locked(
            self._sql["delete_session"],  # waits for in-flight appends
            self._sql["delete_messages"],
        )
        with _db_errors(self._pool):
            async with self._write_connection() as conn:
                cursors = await _run_in_one_round_trip(conn, queries, [params] * len(queries))
                return int(cursors[3].rowcount)

    async def pop_message(self, agent_name: str, session_id: str) -> Message | None:
        """See :meth:`HistoryRepository.pop_message`."""
        params = {
            "agent_name": check_stored_identifier(agent_name, "agent_name"),
            "session_id": check_stored_identifier(session_id, "session_id"),
        }
        if self._citus if self._citus is not None else await self._on_citus():
            return await self._pop_distributed(params)
        # READ COMMITTED: pop_last_message must take a snapshot newer than
        # the appends that pop_counter waited for (sql/pop.sql).
        queries = self._locked(
            self._sql["pop_counter"],  # waits for in-flight appends
            self._sql["pop_last_message"],
        )
        with _db_errors(self._pool):
            async with self._write_connection() as conn:
                cursors = await _run_in_one_round_trip(conn, queries, [params] * len(queries))
                row = await cursors[3].fetchone()
        return None if row is None else message_from_row(row)

    async def _pop_distributed(self, params: dict[str, Any]) -> Message | None:
        """pop_message on a Citus cluster: two round trips of router queries.

        The counter's new value (pop_counter_distributed, which locks the
        row) comes back in the first, and the message at that position is
        deleted in the second, which commits; the single-server
        pop_last_message reads the counter in a subquery, which Citus plans
        anew at every execution.
        """
        with _db_errors(self._pool):
            async with self._write_connection() as conn, _autocommit_kept(conn):
                queries = self._locked(self._sql["pop_counter_distributed"])[:-1]
                cursors = await _run_in_one_round_trip(conn, queries, [params] * len(queries))
                counter = await cursors[2].fetchone()
                if counter is None:  # no message: nothing was changed
                    await _run_in_one_round_trip(conn, [self._sql["commit"]], [params])
                    return None
                last = [self._sql["pop_message_at_distributed"], self._sql["commit"]]
                at = params | {"seq": counter[0]}
                cursors = await _run_in_one_round_trip(conn, last, [at, params])
                row = await cursors[0].fetchone()
        return None if row is None else message_from_row(row)

    async def replace_last_messages(
        self,
        agent_name: str,
        session_id: str,
        expected: Sequence[Message],
        messages: Sequence[MessageInput],
    ) -> bool:
        """See :meth:`HistoryRepository.replace_last_messages`."""
        agent = check_identifier(agent_name, "agent_name")
        session = check_identifier(session_id, "session_id")
        tail = check_expected_tail(expected)
        batch = prepare_messages(messages, max_content_chars=self._max_content_chars)
        if not tail:  # the empty tail is always there
            await self.append_messages(agent, session, batch)
            return True
        key: dict[str, Any] = {"agent_name": agent, "session_id": session}
        # The stored tail is compared in Python, as Messages, while the
        # transaction holds the conversation: a second round trip then writes
        # (or just commits). sql/replace.sql tells why the statements come in
        # this order.
        citus = self._citus if self._citus is not None else await self._on_citus()
        read = [
            self._sql["begin_read_committed"],
            self._sql["lock_session"],
            self._sql["lock_counter"],
            self._sql["load_last_messages_distributed"]
            if citus
            else self._sql["load_last_messages"],
        ]
        read_params = [key, key, key, key | {"limit": len(tail)}]
        if citus:  # what _replace_tail_distributed needs, in the same round trip
            read.append(self._sql["transaction_time"])
            read_params.append(key)
            ids = [m.id for m in batch if m.id is not None]
            if ids:
                read.append(self._sql["stored_message_ids_distributed"])
                read_params.append(key | {"message_ids": ids})
        with _db_errors(self._pool):
            async with self._write_connection() as conn, _autocommit_kept(conn):
                cursors = await _run_in_one_round_trip(conn, read, read_params)
                stored = messages_from_rows_newest_first(await cursors[3].fetchall())
                if stored != tail:
                    await _run_in_one_round_trip(conn, [self._sql["commit"]], [key])
                    return False
                if citus:
                    await self._replace_tail_distributed(conn, key, len(tail), batch, cursors)
                    return True
                chunks = messages_to_json_chunks(batch, APPEND_CHUNK_JSONB_BYTES) if batch else []
                inserts, parts = self._append_parts(
                    chunks, any(m.id is not None for m in batch), key
                )
                write = [self._sql["cut_last_messages"], *inserts, self._sql["commit"]]
                params = [key | {"message_count": len(tail)}, *parts, key]
                await _run_in_one_round_trip(conn, write, params)
        return True

    async def _replace_tail_distributed(
        self,
        conn: AsyncConnection[Any],
        key: dict[str, Any],
        cut: int,
        batch: list[Message],
        cursors: list[AsyncCursor[Any]],
    ) -> None:
        """The write of replace_last_messages on a Citus cluster, after its read.

        ``cursors`` are the read's: lock_counter's (the counter, locked),
        transaction_time's and, when the batch has ids,
        stored_message_ids_distributed's. The counter
        is set once to the replaced tail's start plus the messages stored,
        the tail is deleted and the new messages written at its place, and
        the transaction commits: router queries only, in one round trip
        (two with a COPY). A message whose id is stored before the tail is
        skipped, as append_messages skips it; one whose id is in the cut
        tail is stored again.
        """
        counter, moment = await cursors[2].fetchone(), await cursors[4].fetchone()
        assert counter is not None and moment is not None
        start = int(counter[0]) - cut
        stored = await cursors[5].fetchall() if len(cursors) > 5 else []
        before = {row[0] for row in stored if row[1] < start}
        fresh = [m for m in batch if m.id is None or m.id not in before]
        queries = [
            self._sql["set_counter_distributed"],
            self._sql["delete_messages_from_distributed"],
        ]
        params = [key | {"next_seq": start + len(fresh)}, key | {"start": start}]
        plain = plain_batch_params(fresh)
        if plain is not None:
            queries.append(
                self._sql["insert_plain_messages_distributed"]
                if len(fresh) == 2
                else self._sql["insert_plain_message_distributed"]
            )
            params.append(key | plain | {"seq": start})
        elif fresh:
            await _run_in_one_round_trip(conn, queries, params)
            await _copy_messages(
                cursors[0], self._sql["copy_messages"], key, start, fresh, moment[0]
            )
            queries, params = [], []
        await _run_in_one_round_trip(conn, [*queries, self._sql["commit"]], [*params, key])

    async def list_sessions(self, agent_name: str, limit: int | None = 100) -> list[SessionInfo]:
        """See :meth:`HistoryRepository.list_sessions`."""
        agent = check_stored_identifier(agent_name, "agent_name")
        params = {"agent_name": agent, "limit": check_limit(limit)}
        rows = await self._read(self._sql["list_sessions"], params)
        return [session_from_row(agent, row) for row in rows]

    async def list_sessions_page(
        self,
        agent_name: str,
        *,
        owner: str | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> SessionPage:
        """See :meth:`HistoryRepository.list_sessions_page`."""
        agent = check_stored_identifier(agent_name, "agent_name")
        size = check_page_size(limit)
        params: dict[str, Any] = {"agent_name": agent, "limit": size + 1}
        if owner is not None:
            params["owner"] = check_owner(owner)
        if after is not None:
            params["after_time"], params["after_session"] = decode_session_cursor(after)
        # One statement per shape: a generic plan of "$owner IS NULL OR ..."
        # could not use the owner index, nor a cursor's range.
        query = {
            (False, False): self._sql["list_sessions"],
            (False, True): self._sql["list_sessions_after"],
            (True, False): self._sql["list_owner_sessions"],
            (True, True): self._sql["list_owner_sessions_after"],
        }[owner is not None, after is not None]
        rows = await self._read(query, params)
        return session_page([session_from_row(agent, row) for row in rows], size)

    async def get_session(self, agent_name: str, session_id: str) -> SessionInfo | None:
        """See :meth:`HistoryRepository.get_session`."""
        agent = check_stored_identifier(agent_name, "agent_name")
        session = check_stored_identifier(session_id, "session_id")
        params = {"agent_name": agent, "session_id": session}
        rows = await self._read(self._sql["get_session"], params)
        return session_from_row(agent, rows[0]) if rows else None

    async def set_session_metadata(
        self,
        agent_name: str,
        session_id: str,
        metadata: Mapping[str, Any],
        *,
        merge: bool = True,
    ) -> dict[str, Any]:
        """See :meth:`HistoryRepository.set_session_metadata`."""
        params: dict[str, Any] = {
            "agent_name": check_stored_identifier(agent_name, "agent_name"),
            "session_id": check_stored_identifier(session_id, "session_id"),
        }
        update = check_session_metadata(metadata)
        check_owner_fits(params["agent_name"], params["session_id"], update)

        async def write(conn: AsyncConnection[Any]) -> dict[str, Any]:
            cur = await conn.execute(self._sql["lock_session_metadata"].text, params)
            row = await cur.fetchone()
            if row is None:
                raise session_not_found(params["agent_name"], params["session_id"])
            stored = merge_session_metadata(json.loads(row[0]), update, merge=merge)
            params["metadata"] = metadata_to_json(stored)
            await conn.execute(self._sql["set_session_metadata"].text, params)
            return stored

        return await self._in_transaction(write)

    async def load_history_page(
        self,
        agent_name: str,
        session_id: str,
        *,
        limit: int = 100,
        before: str | None = None,
    ) -> HistoryPage:
        """See :meth:`HistoryRepository.load_history_page`."""
        params: dict[str, Any] = {
            "agent_name": check_stored_identifier(agent_name, "agent_name"),
            "session_id": check_stored_identifier(session_id, "session_id"),
        }
        size = check_page_size(limit)
        params["before"] = MAX_LIMIT if before is None else decode_history_cursor(before)
        params["limit"] = size + 1
        citus = self._citus if self._citus is not None else await self._on_citus()
        query = (
            self._sql["load_messages_before_distributed"]
            if citus
            else self._sql["load_messages_before"]
        )
        rows = await self._read(query, params)
        first = rows[min(len(rows), size) - 1][-1] if rows else 0
        messages = messages_from_rows_newest_first([row[:-1] for row in rows[:size]])
        return HistoryPage(
            messages=messages, next_cursor=history_cursor(first) if len(rows) > size else None
        )

    async def copy_session(
        self,
        agent_name: str,
        source_session_id: str,
        target_session_id: str,
        *,
        up_to: int | str | None = None,
    ) -> int:
        """See :meth:`HistoryRepository.copy_session`."""
        params: dict[str, Any] = {
            "agent_name": check_identifier(agent_name, "agent_name"),
            "source_session_id": check_stored_identifier(source_session_id, "source_session_id"),
            "session_id": check_identifier(target_session_id, "target_session_id"),
        }
        bound = check_copy_bound(up_to)
        params["up_to_count"] = bound if isinstance(bound, int) else None
        params["up_to_id"] = bound if isinstance(bound, str) else None
        queries = self._locked(self._sql["copy_session"])
        with _db_errors(self._pool):
            async with self._write_connection() as conn:
                cursors = await _run_in_one_round_trip(conn, queries, [params] * len(queries))
                row = await cursors[2].fetchone()
        assert row is not None
        source_found, cut_found, created, copied = row
        refusal = copy_refusal(
            params["agent_name"],
            params["source_session_id"],
            params["session_id"],
            bound,
            source_found=source_found,
            cut_found=cut_found,
            created=created,
        )
        if refusal is not None:
            raise refusal
        return int(copied)

    async def purge_idle_sessions(
        self,
        idle_for: timedelta,
        *,
        agent_name: str | None = None,
        batch_size: int = DEFAULT_PURGE_BATCH_SIZE,
        pause: float = DEFAULT_PURGE_PAUSE,
        max_impact: float = DEFAULT_PURGE_MAX_IMPACT,
        dry_run: bool = False,
        on_progress: Callable[[PurgeReport], None] | None = None,
    ) -> PurgeReport:
        """See :meth:`HistoryRepository.purge_idle_sessions`.

        Two walks: the first takes the idle conversations in the order of
        their first message on the heap (sql/lifecycle.sql,
        purge_idle_in_heap_order), so that a page's rows go in one or two
        consecutive batches; the second, in ``updated_at`` order, takes what
        the first did not find.
        """
        idle = check_idle_for(idle_for)
        agent = None if agent_name is None else check_stored_identifier(agent_name, "agent_name")
        size = check_page_size(batch_size, "batch_size")
        wait = check_pause(pause)
        impact = check_max_impact(max_impact)
        [(cutoff,)] = await self._read(self._sql["idle_cutoff"], {"idle_for": idle})
        agents = [agent] if agent is not None else await self._agents()
        report = PurgeReport()
        if dry_run:
            for name in agents:
                [(sessions, messages)] = await self._read(
                    self._sql["count_idle_sessions"], {"agent_name": name, "cutoff": cutoff}
                )
                report = report.plus(int(sessions), int(messages))
            return report

        async def paced(batch: Awaitable[tuple[int, int, Any]]) -> Any:
            # One batch, then its report and the pause that keeps the purge
            # busy for at most max_impact of the time.
            nonlocal report
            started = monotonic()
            deleted, messages, reached = await batch
            spent = monotonic() - started
            if deleted:
                report = report.plus(deleted, messages)
                if on_progress is not None:
                    on_progress(report)
                rest = max(wait, spent * (1 - impact) / impact)
                if rest:
                    await asyncio.sleep(rest)
            return reached

        await self._purge_in_heap_order(agent, cutoff, size, paced)
        for name in agents:
            params: dict[str, Any] = {
                "agent_name": name,
                "cutoff": cutoff,
                "batch_size": size,
                "after_time": datetime(1, 1, 1, tzinfo=UTC),
                "after_session": "",
            }
            while True:
                position = await paced(self._purge_batch(params))
                if position is None:
                    break
                params["after_time"], params["after_session"] = position
        return report

    async def _on_citus(self) -> bool:
        """Whether the database has the citus extension (its tables distributed).

        Asked once per pool (every connection of a pool reaches the same
        database), on the first call of any repository over it that needs to
        know: a repository made per request asks nothing more.
        """
        found = _DISTRIBUTED.get(self._pool)
        if found is None:
            [(answer,)] = await self._read(self._sql["citus_installed"], {})
            found = _DISTRIBUTED.setdefault(self._pool, bool(answer))
        self._citus = found
        return found

    async def _agents(self) -> list[str]:
        """Every agent that has a conversation, in name order."""
        distributed = await self._on_citus()
        query = self._sql["list_agents_distributed"] if distributed else self._sql["list_agents"]
        return [r[0] for r in await self._read(query, {})]

    async def _purge_in_heap_order(
        self,
        agent: str | None,
        cutoff: datetime,
        size: int,
        paced: Callable[[Awaitable[tuple[int, int, Any]]], Awaitable[Any]],
    ) -> None:
        """The first walk: batches in the order of the conversations' first messages."""
        if await self._on_citus():
            # Citus runs no TID range scan over a distributed table: the walk
            # in updated_at order (_purge_batch) takes every idle conversation.
            return
        [(blocks,)] = await self._read(self._sql["purge_heap_blocks"], {})
        heap: dict[str, Any] = {
            "agent_name": agent,
            "cutoff": cutoff,
            "batch_size": size,
            "after": "(0,0)",
        }
        block = 0
        while block < blocks:
            heap["before"] = min(blocks, block + PURGE_HEAP_PAGES)
            reached = await paced(self._purge_heap_batch(heap))
            if reached is None:
                block = heap["before"]
                heap["after"] = f"({block},0)"
            else:
                heap["after"] = reached
                block = int(reached.strip("()").split(",")[0])

    async def _purge_in_transaction(
        self,
        pick: Query,
        params: dict[str, Any],
        delete: Query,
        targets: Callable[[tuple[Any, ...]], dict[str, Any]],
        *,
        flush: bool = False,
    ) -> tuple[Any, ...]:
        """One purge batch's transaction: ``pick`` deletes the idle conversations' rows
        and returns them (first column empty or NULL when there is none), then
        ``delete`` removes their messages (its parameters from ``targets(row)``).

        READ COMMITTED whatever the default (_in_transaction): a row written
        since the scan's snapshot is re-read under its lock and kept. Without
        ``flush`` the commit does not wait for its WAL (sql/lifecycle.sql,
        purge_without_flush).
        """
        return await self._in_transaction(
            functools.partial(
                self._purge_rows, pick=pick, params=params, delete=delete, targets=targets,
                flush=flush,
            )
        )  # fmt: skip

    async def _purge_rows(
        self,
        conn: AsyncConnection[Any],
        *,
        pick: Query,
        params: dict[str, Any],
        delete: Query,
        targets: Callable[[tuple[Any, ...]], dict[str, Any]],
        flush: bool,
    ) -> tuple[Any, ...]:
        if not flush:
            await conn.execute(self._sql["purge_without_flush"].text)
        cur = await conn.execute(pick.text, params, binary=True)
        row = await cur.fetchone()
        assert row is not None
        if row[0]:
            await conn.execute(delete.text, targets(tuple(row)))
        return tuple(row)

    async def _purge_heap_batch(self, params: dict[str, Any]) -> tuple[int, int, str | None]:
        _, session_ids, counted, reached = await self._purge_in_transaction(
            self._sql["purge_idle_in_heap_order"],
            params,
            self._sql["purge_messages_in_heap_order"],
            lambda row: {"agent_names": row[0], "session_ids": row[1]},
        )
        return len(session_ids or ()), int(counted), reached

    async def _purge_batch(
        self, params: dict[str, Any]
    ) -> tuple[int, int, tuple[datetime, str] | None]:
        if await self._on_citus():
            return await self._purge_batch_distributed(params)
        session_ids, counted, reached_time, reached_session = await self._purge_in_transaction(
            self._sql["purge_idle_sessions"],
            params,
            self._sql["purge_session_messages"],
            lambda row: {"agent_name": params["agent_name"], "session_ids": row[0]},
        )
        position = None if reached_time is None else (reached_time, reached_session)
        return len(session_ids or ()), int(counted), position

    async def _purge_batch_distributed(
        self, params: dict[str, Any]
    ) -> tuple[int, int, tuple[datetime, str] | None]:
        """One purge batch on a Citus cluster: candidates from every shard, then one delete.

        Citus runs no FOR UPDATE SKIP LOCKED over several shards: the candidates
        are read without a lock, and the delete re-checks each one's cutoff
        under its row lock (sql/lifecycle.sql, purge_listed_sessions_distributed).
        """
        candidates = await self._read(self._sql["purge_candidates_distributed"], params)
        if not candidates:
            return 0, 0, None
        # The last candidate in the statement's order (the database's collation).
        reached_session, reached_time = candidates[-1]
        listed = {**params, "session_ids": [row[0] for row in candidates]}
        session_ids, counted = await self._purge_in_transaction(
            self._sql["purge_listed_sessions_distributed"],
            listed,
            self._sql["purge_session_messages"],
            lambda row: {"agent_name": params["agent_name"], "session_ids": row[0]},
            flush=True,
        )
        return len(session_ids or ()), int(counted), (reached_time, reached_session)

    async def iter_sessions(
        self, agent_name: str | None = None, *, batch_size: int = 1000
    ) -> AsyncIterator[SessionInfo]:
        """See :meth:`HistoryRepository.iter_sessions`."""
        agent = None if agent_name is None else check_stored_identifier(agent_name, "agent_name")
        size = check_page_size(batch_size, "batch_size")
        agents = [agent] if agent is not None else await self._agents()
        for name in agents:
            params: dict[str, Any] = {"agent_name": name, "after_session": "", "limit": size}
            while True:
                rows = await self._read(self._sql["list_sessions_by_key"], params)
                for row in rows:
                    yield session_from_row(name, row)
                if len(rows) < size:
                    break
                params["after_session"] = rows[-1][0]

    async def iter_history(
        self, agent_name: str, session_id: str, *, batch_size: int = 1000
    ) -> AsyncIterator[Message]:
        """See :meth:`HistoryRepository.iter_history`."""
        params: dict[str, Any] = {
            "agent_name": check_stored_identifier(agent_name, "agent_name"),
            "session_id": check_stored_identifier(session_id, "session_id"),
            "start": 0,
            "limit": check_page_size(batch_size, "batch_size"),
        }
        citus = await self._on_citus()
        query = (
            self._sql["load_messages_from_distributed"]
            if citus
            else self._sql["load_messages_from"]
        )
        while True:
            rows = await self._read(query, params)
            for row in rows:
                yield message_from_row(row)
            if len(rows) < params["limit"]:
                return
            params["start"] += len(rows)

    async def import_session(
        self,
        agent_name: str,
        session_id: str,
        messages: AsyncIterable[MessageInput] | Iterable[MessageInput],
        *,
        metadata: Mapping[str, Any] | None = None,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
    ) -> int:
        """See :meth:`HistoryRepository.import_session`."""
        agent = check_restored_identifier(agent_name, "agent_name")
        session = check_restored_identifier(session_id, "session_id")
        params: dict[str, Any] = {
            "agent_name": agent,
            "session_id": session,
            "metadata": metadata_to_json(check_session_metadata(metadata or {})),
            "created_at": check_session_time(created_at, "created_at"),
            "updated_at": check_session_time(updated_at, "updated_at"),
        }
        stream = MessageStream(max_content_chars=self._max_content_chars)
        with _db_errors(self._pool):
            async with (
                self._write_connection() as conn,
                _read_committed(conn),
                conn.transaction(),
            ):
                async with _pipeline(conn):
                    await conn.execute(self._sql["lock_session"].text, params)
                    clock = await conn.execute(self._sql["transaction_time"].text, binary=True)
                    cur = await conn.execute(
                        self._sql["create_imported_session"].text, params, binary=True
                    )
                if await cur.fetchone() is None:
                    raise session_exists(agent, session)
                moment = await clock.fetchone()
                assert moment is not None
                now = moment[0]
                try:
                    async with cur.copy(self._sql["copy_messages"].text) as copy:
                        async for item in each(messages):
                            message = stream.check(item)
                            await copy.write_row(
                                message_to_copy_row(agent, session, stream.count - 1, message, now)
                            )
                except psycopg.Error as exc:
                    # The only unique key a fresh conversation's rows can
                    # break is the message id's (seq comes from the count).
                    if not _repeated_message_id(exc):
                        raise
                    raise InvalidMessageError(REPEATED_IMPORT_ID) from exc
                if stream.count:  # an empty conversation keeps the counter at 0
                    params["message_count"] = stream.count
                    await conn.execute(self._sql["finish_imported_session"].text, params)
        return stream.count

    async def _read(self, query: Query, params: dict[str, Any]) -> list[Any]:
        """Run one read-only statement; once more on a new connection if the first broke.

        Results come in binary: a timestamptz or a bigint in binary does not
        depend on the session's DateStyle, IntervalStyle or extra_float_digits
        (psycopg parses text timestamps in the ISO style only), and costs less
        to decode. Every statement that returns values asks for binary too.

        The server can end an idle connection so that the socket shows nothing
        yet (its goodbye arrived with the previous reply): the first statement
        sent on it fails. A read is safe to repeat; a write is not, and is not
        repeated. A read whose prepared plan a migration made stale is
        repeated too, on the same connection, once its prepared statements
        are forgotten (see :func:`_stale_plan`).

        On a connection not in autocommit (a caller's default pool), the
        statement alone would open a transaction that the pool then rolls
        back: two more statements and round trips per read. The connection
        is switched to autocommit for the statement instead, which psycopg
        does locally when the connection is idle (no round trip), and given
        its mode back afterwards.
        """
        with _db_errors(self._pool):
            for attempt in (1, 2):
                async with self._connection() as conn:
                    autocommit = conn.autocommit
                    if not autocommit:
                        await conn.set_autocommit(True)
                    try:
                        cur = await conn.execute(query.text, params, binary=True)
                        return await cur.fetchall()
                    except psycopg.errors.FeatureNotSupported as exc:
                        if not _stale_plan(exc):
                            raise
                        # On this connection: the pool's others may be stale too.
                        await _forget_prepared(conn)
                        cur = await conn.execute(query.text, params, binary=True)
                        return await cur.fetchall()
                    except psycopg.OperationalError:
                        # Only a lost connection is worth a second try: a
                        # statement_timeout (QueryCanceled) would just repeat.
                        if attempt == 2 or not conn.broken:
                            raise
                    finally:
                        # Any other status: the pool closes the connection.
                        if not autocommit and conn.info.transaction_status == _IDLE:
                            await conn.set_autocommit(False)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _in_transaction(self, write: Callable[[AsyncConnection[Any]], Awaitable[_T]]) -> _T:
        """Run ``write`` on a pooled connection in one READ COMMITTED transaction.

        When a statement of it fails on a prepared plan that a migration made
        stale (:func:`_stale_plan`), the transaction was rolled back (psycopg
        then deallocates the connection's prepared statements), nothing took
        effect, and ``write`` runs once more, on the same connection. Any
        other failure closes the connection (:class:`_WriteCheckout`).
        """
        with _db_errors(self._pool):
            async with self._write_connection() as conn, _read_committed(conn):
                try:
                    async with conn.transaction():
                        return await write(conn)
                except psycopg.errors.FeatureNotSupported as exc:
                    if not _stale_plan(exc):
                        raise
                    await _forget_prepared(conn)
                async with conn.transaction():
                    return await write(conn)

    def _connection(self) -> _Checkout:
        """A connection from the pool that the server has not already ended.

        After a server restart, a failover or ``pg_terminate_backend``, the
        pool's idle connections are dead, and each would fail one call before
        the pool notices. The server announces the end (an error message, then
        end of file) on the idle socket, so a look at the socket, which costs
        no round trip, finds them: they are closed, which makes the pool
        replace them, and the next one is taken. The connection's encodings are
        checked too (see :func:`_use_utf8`).
        """
        return _Checkout(self._pool)

    def _write_connection(self) -> _WriteCheckout:
        """Like :meth:`_connection`, but a write that fails closes the connection.

        See :class:`_WriteCheckout`.
        """
        return _WriteCheckout(self._pool)


class _Checkout:
    """``async with``: a pooled connection the server has not ended; given back on exit.

    It does what ``pool.connection()`` does (the pool's ``getconn`` and
    ``putconn``; on exit a commit, or a rollback after an error, as
    ``async with conn`` does; the pool's ``usage_ms``), without its two
    layers: a class, not an ``asynccontextmanager`` generator, and no
    ``async with conn`` when the connection is idle and nothing failed, where
    its commit is a no-op that still takes the connection's lock. Together
    they were about 43,000 of a checkout's 88,000 instructions, and a
    repository turn checks out twice (bench/NOTES.md).
    """

    __slots__ = ("_conn", "_pool", "_since")

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        self._conn: AsyncConnection[Any] | None = None
        self._since = 0.0

    async def __aenter__(self) -> AsyncConnection[Any]:
        pool = self._pool
        _check_event_loop(pool)
        for _ in range(pool.max_size + 1):
            conn: AsyncConnection[Any] = await pool.getconn()
            if _still_open(conn):
                self._conn = conn
                self._since = monotonic()
                status = conn.pgconn.parameter_status
                if status(b"client_encoding") != _UTF8 or status(b"server_encoding") != _UTF8:
                    try:
                        await _use_utf8(conn)
                    except BaseException as exc:
                        # Given back as a read's would be, whatever the subclass.
                        await _Checkout.__aexit__(self, type(exc), exc, exc.__traceback__)
                        raise
                return conn
            try:
                await conn.close()
            finally:
                await pool.putconn(conn)  # the pool replaces it
        raise DatabaseUnavailableError(
            f"every connection of pool {pool.name!r} was closed by the server"
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        assert conn is not None
        try:
            if exc is not None or conn.info.transaction_status != _IDLE:
                await conn.__aexit__(exc_type, exc, tb)
        finally:
            await self._pool.putconn(conn)
            _count_usage(self._pool, self._since)


_USAGE_MS: str | None = getattr(AsyncConnectionPool, "_USAGE_MS", None)


def _count_usage(pool: AsyncConnectionPool[Any], since: float) -> None:
    """Add a checkout's duration to the pool's ``usage_ms``, as ``pool.connection()`` does.

    psycopg_pool keeps that statistic only in ``connection()``; its names are
    private, so a version without them is left alone.
    """
    stats = getattr(pool, "_stats", None)
    if _USAGE_MS is not None and stats is not None:
        stats[_USAGE_MS] += int(1000.0 * (monotonic() - since))


def _check_event_loop(pool: AsyncConnectionPool[Any]) -> None:
    """Fail at once when ``pool`` is used from an event loop other than its own.

    An asyncio pool's workers, locks and queues belong to the loop that opened
    it; a call from another loop (another thread's ``asyncio.run``) waited on
    them forever or broke in psycopg's internals. psycopg_pool exposes no
    loop, so its scheduler task tells which one it is (when there is none,
    nothing is checked).
    """
    get_loop = getattr(getattr(pool, "_sched_runner", None), "get_loop", None)
    if get_loop is not None and get_loop() is not asyncio.get_running_loop():
        raise StorageError(
            f"pool {pool.name!r} belongs to another event loop (the one that opened it): "
            "a PostgresHistoryRepository serves one event loop; open a pool per loop, "
            "or use SyncHistoryRepository from threads"
        )


class _WriteCheckout(_Checkout):
    """A write's checkout: on any failure, the connection is closed, not reused.

    A write interrupted mid-way (its task cancelled, statement_timeout,
    lock_timeout, a lost connection, any error) can leave the connection in a
    state the next caller must not inherit. The one met in practice: psycopg
    (3.3.9, ``_cursor_base._maybe_prepare_gen``) records a statement as
    prepared when it sends the Parse inside a pipeline, and validates that
    only for statements it had never seen. If the pipeline fails before the
    server reaches that Parse, the server never prepared it, psycopg still
    thinks so, and every later execution of that statement on this connection
    fails with ``prepared statement "_pg3_N" does not exist``. A failed
    explicit transaction (begin_read_committed) leaves it in error as well.

    Closing costs nothing on the happy path (no extra statement, no check), and
    on the failure path one new connection, which the pool opens in the
    background; it also ends the server's session, so nothing it held or
    prepared survives. The alternatives were worse: a ``DEALLOCATE ALL`` after
    each failure costs a round trip and relies on psycopg noticing it
    (``PrepareManager._should_discard``); clearing psycopg's cache touches
    private state; never preparing pipelined statements costs parse and plan
    time on every write.
    """

    __slots__ = ()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self._conn
        if exc is not None and conn is not None and not _refused_cleanly(exc, conn):
            # Cancellation included: psycopg has already asked the server to
            # cancel the statement and waited for it (AsyncConnection.wait).
            _closed_on_purpose().connections.add(conn)
            await conn.close()
        await super().__aexit__(exc_type, exc, tb)


_DISCARDING = "discarding closed connection: %s"
"""psycopg_pool's warning (logger ``psycopg.pool``) for a closed connection given back."""


class _QuietDiscards(logging.Filter):
    """Drops psycopg_pool's warning about a closed connection that agentcore closed itself.

    A failed write's connection is closed on purpose (:class:`_WriteCheckout`)
    and given back for the pool to replace, which the pool reports as a
    warning, printed before the caller's own error (the CLI's one line) by
    Python's last-resort handler. psycopg_pool has no public way to give back
    a connection to be discarded quietly; the warning of a connection the
    server closed is kept.
    """

    def __init__(self) -> None:
        super().__init__()
        self.connections: weakref.WeakSet[AsyncConnection[Any]] = weakref.WeakSet()

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (
            record.msg == _DISCARDING
            and isinstance(args, tuple)
            and len(args) == 1
            and args[0] in self.connections
        )


@functools.cache
def _closed_on_purpose() -> _QuietDiscards:
    """The filter, installed on psycopg_pool's logger the first time it is needed."""
    quiet = _QuietDiscards()
    logging.getLogger("psycopg.pool").addFilter(quiet)
    return quiet


def _refused_cleanly(exc: BaseException, conn: AsyncConnection[Any]) -> bool:
    """Whether a write's error is agentcore's own refusal on a connection left as new.

    An import of a conversation that exists, a metadata change of one that
    does not, a message refused mid-import: agentcore raises these itself,
    after its statements completed (a pipeline's Sync was answered, so
    psycopg's statement cache is right) and after the transaction was rolled
    back. Closing the connection would cost a new one per refusal: an import
    run a second time refuses every conversation of the file.
    """
    return (
        isinstance(exc, AgentcoreError)
        and not conn.closed
        and conn.info.transaction_status == TransactionStatus.IDLE
        and conn.info.pipeline_status == psycopg.pq.PipelineStatus.OFF
    )


@asynccontextmanager
async def _read_committed(conn: AsyncConnection[Any]) -> AsyncIterator[None]:
    """The transactions psycopg begins on ``conn`` start at READ COMMITTED, for the block.

    A write's statements must see every writer that committed before it took
    the conversation's lock, whatever default_transaction_isolation a DBA or
    the caller's connection set (see begin_read_committed in sql/history.sql).
    Setting the level is local to psycopg (it changes the BEGIN it sends), so
    this costs no round trip; the caller's level comes back afterwards.
    """
    level = conn.isolation_level
    await conn.set_isolation_level(IsolationLevel.READ_COMMITTED)
    try:
        yield
    finally:
        if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
            await conn.set_isolation_level(level)


@asynccontextmanager
async def _autocommit_kept(conn: AsyncConnection[Any]) -> AsyncIterator[None]:
    """``conn`` in autocommit mode for a transaction that spans several round trips.

    :func:`_run_in_one_round_trip` switches a caller's non-autocommit
    connection to autocommit for a transaction it brackets itself
    (begin_read_committed ... commit), and gives the mode back when the
    transaction is over; when the transaction spans several calls, the first
    leaves it open, and the mode must come back after the last. Switching is
    local to psycopg (no round trip). After a failure the connection is
    closed (:class:`_WriteCheckout`), not given its mode back.
    """
    autocommit = conn.autocommit
    if not autocommit:
        await conn.set_autocommit(True)
    try:
        yield
    finally:
        if not autocommit and not conn.closed and conn.info.transaction_status == _IDLE:
            await conn.set_autocommit(False)


_UTF8 = SUPPORTED_ENCODING.encode()
_IDLE = TransactionStatus.IDLE


async def _use_utf8(conn: AsyncConnection[Any]) -> None:
    """Refuse a database not in UTF-8; switch a connection's client encoding to UTF-8.

    Both encodings arrive with the connection (the server reports them when it
    starts and when they change), so the caller's check costs no round trip.
    A client_encoding chosen by the DSN, ``PGCLIENTENCODING``, the role or the
    database would make psycopg encode text in it (an emoji in LATIN1 fails):
    the connection is switched to UTF-8 once, and stays so.
    """
    check_server_encoding(conn.info.parameter_status("server_encoding"), conn.info.dbname)
    await conn.execute(_queries()["use_utf8_client_encoding"].text)
    if not conn.autocommit:
        await conn.commit()


async def prepare_unless_pooled(conn: AsyncConnection[Any]) -> None:
    """Turn off psycopg's prepared statements on ``conn`` if it reaches the server through a pooler.

    A pooler in transaction mode (PgBouncer's usual one) runs each transaction
    of a client on whichever server connection is free: a statement psycopg
    prepared on one is missing on the next (``prepared statement "_pg3_0" does
    not exist``), and one another client prepared under the same name is
    already there (``... already exists``), for every later client of that
    server connection. A pooler that moves clients between server backends must
    give each client a process id of its own (the server's cannot stay true),
    so the process id the connection announced differs from the backend's
    ``pg_backend_pid()``; straight to PostgreSQL they are equal, and psycopg
    keeps preparing (a generic plan saves a load's planning).

    It is the pool's ``configure`` hook of :meth:`PostgresHistoryRepository.from_dsn`:
    one statement per new connection, none per call. Behind a pooler every
    statement is then planned at each execution, in session mode too, and on
    PgBouncer 1.21+ with ``max_prepared_statements``, which could keep them;
    a pool of your own decides otherwise (docs/operations.md, "Behind a
    connection pooler").

    Args:
        conn: A new, idle connection (in autocommit mode or not).
    """
    autocommit = conn.autocommit
    if not autocommit:  # one statement, not a transaction left open for the pool
        await conn.set_autocommit(True)
    try:
        cur = await conn.execute(_queries()["server_backend_pid"].text, prepare=False)
        row = await cur.fetchone()
    finally:
        if not autocommit:
            await conn.set_autocommit(False)
    if row is None or row[0] != conn.info.backend_pid:
        conn.prepare_threshold = None


async def _copy_messages(
    cur: AsyncCursor[Any],
    query: Query,
    key: dict[str, Any],
    start: int,
    messages: Sequence[Message],
    now: datetime,
) -> None:
    """COPY ``messages`` into the conversation ``key`` at positions from ``start`` on.

    ``now`` is the transaction's time, the ``created_at`` of a message that
    carries none. On a Citus cluster the coordinator sends every row to the
    shard of its session_id: one shard for one conversation.
    """
    agent, session = key["agent_name"], key["session_id"]
    async with cur.copy(query.text) as copy:
        for seq, message in enumerate(messages, start):
            await copy.write_row(message_to_copy_row(agent, session, seq, message, now))


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


@asynccontextmanager
async def _pipeline(conn: AsyncConnection[Any]) -> AsyncIterator[None]:
    """``conn.pipeline()``, raising a failed statement's error without psycopg's warning.

    When a statement fails inside a pipeline, leaving the pipeline may fail as
    well ("pipeline aborted"); psycopg logs that second error as a warning
    when the block is left by the first (printed before the CLI's own error
    line). Here the first is caught inside the block, the pipeline is left
    normally, and the first is raised: the same error, one report. The
    connection is closed afterwards anyway (:class:`_WriteCheckout`).
    """
    failure: psycopg.Error | None = None
    try:
        async with conn.pipeline():
            try:
                yield
            except psycopg.Error as exc:
                failure = exc
    except psycopg.Error:
        if failure is None:
            raise
    if failure is not None:
        raise failure


async def _run_in_one_round_trip(
    conn: AsyncConnection[Any], queries: Sequence[Query], params: Sequence[dict[str, Any]]
) -> list[AsyncCursor[Any]]:
    """Run ``queries[i]`` with ``params[i]``, in one network round trip; return their cursors.

    In pipeline mode the statements before one Sync are sent together; a
    write of several statements brackets them with begin_read_committed and
    commit, so they commit together (or an error rolls all back) at READ
    COMMITTED whatever the server's default isolation. A failure leaves the
    connection unusable: the caller closes it (:class:`_WriteCheckout`).

    One failure is repaired instead: a prepared plan that a migration made
    stale (:func:`_stale_plan`), when the statements began on an idle
    connection. The server refused the statement before running it, and
    everything before it since the connection was idle was one transaction,
    now rolled back: nothing took effect, so the statements are sent again,
    once, after the connection's prepared statements are forgotten. A
    transaction an earlier round trip began (replace_last_messages' write) is
    not repeated in part.
    """
    autocommit = conn.autocommit
    began_idle = conn.pgconn.transaction_status == _IDLE
    if not autocommit:  # a caller's pool may hand out non-autocommit connections
        await conn.set_autocommit(True)
    try:
        try:
            return await _send_in_one_round_trip(conn, queries, params)
        except psycopg.errors.FeatureNotSupported as exc:
            if not (began_idle and _stale_plan(exc)):
                raise
            await _forget_prepared(conn)
            return await _send_in_one_round_trip(conn, queries, params)
    finally:
        # After a failure the transaction may be left in error: the connection
        # is then closed by the caller, not given its mode back.
        if not autocommit and conn.info.transaction_status == _IDLE:
            await conn.set_autocommit(False)


async def _send_in_one_round_trip(
    conn: AsyncConnection[Any], queries: Sequence[Query], params: Sequence[dict[str, Any]]
) -> list[AsyncCursor[Any]]:
    """The statements of :func:`_run_in_one_round_trip`, on an autocommit connection."""
    # binary=True: see _read (results independent of the session's settings).
    if len(queries) == 1:  # a lone statement is one round trip without a pipeline
        return [await conn.execute(queries[0].text, params[0], binary=True)]
    async with _pipeline(conn):
        return [
            await conn.execute(queries[i].text, params[i], binary=True) for i in range(len(queries))
        ]


_REVALIDATE_CACHED_QUERY = "RevalidateCachedQuery"


def _stale_plan(exc: psycopg.errors.FeatureNotSupported) -> bool:
    """Whether ``exc`` is the server refusing a prepared statement a schema change made stale.

    psycopg prepares a statement on its fifth execution on a connection
    (``prepare_threshold``). When a migration then changes the type of a
    column the statement returns (0006 turns ``role`` into a domain; its
    rollback turns it back), the server plans the statement again and
    refuses it, at Bind, before running anything: "cached plan must not
    change result type", SQLSTATE 0A000, raised by the server's
    ``RevalidateCachedQuery``. The statement stays broken on that
    connection, at every execution, until it is deallocated. It is the one
    error a schema change causes on a prepared statement that the same
    statement unprepared would not meet: a dropped table or column fails
    both ways (``SchemaNotReadyError``), and any other change is planned
    again silently.

    The message is translated under ``lc_messages``, and 0A000 covers every
    unsupported feature: the routine that raised it tells (as pgjdbc checks);
    a server that reports none is given the benefit of the doubt, since
    forgetting prepared statements and trying once more costs only a
    repeated failure.
    """
    return exc.diag.source_function in (_REVALIDATE_CACHED_QUERY, None)


async def _forget_prepared(conn: AsyncConnection[Any]) -> None:
    """Roll back a failed transaction on ``conn``, then deallocate all its prepared statements.

    psycopg recognizes ``DEALLOCATE ALL`` (and its own rollback) and forgets
    its record of them, so that each statement runs unprepared again and is
    prepared afresh from the current schema on its fifth execution. The
    connection is kept: every connection of the pool prepared the same
    statements, and closing this one would only move the failure to the next
    call that takes another. Behind a pooler agentcore's pools prepare nothing
    (:func:`prepare_unless_pooled`), so this never runs there.
    """
    if conn.pgconn.transaction_status != _IDLE:
        await conn.rollback()
    autocommit = conn.autocommit
    if not autocommit:  # alone, not the start of a transaction
        await conn.set_autocommit(True)
    try:
        await conn.execute(_queries()["discard_prepared_statements"].text)
    finally:
        if not autocommit and conn.pgconn.transaction_status == _IDLE:
            await conn.set_autocommit(False)


def _check_pool(pool: object) -> AsyncConnectionPool[Any]:
    """Return ``pool`` if it is a ``psycopg_pool.AsyncConnectionPool``, else raise.

    Raises:
        InvalidInputError: anything else, named, with what to pass instead.
    """
    if isinstance(pool, AsyncConnectionPool):
        return pool
    kind = f"{type(pool).__module__}.{type(pool).__qualname__}"
    if isinstance(pool, ConnectionPool):
        hint = " (a synchronous pool: agentcore is async, open a psycopg_pool.AsyncConnectionPool)"
    elif isinstance(pool, psycopg.AsyncConnection | psycopg.Connection):
        hint = " (a single connection: pass a pool, e.g. psycopg_pool.AsyncConnectionPool(dsn))"
    elif isinstance(pool, str):
        hint = " (a DSN: use PostgresHistoryRepository.from_dsn(dsn))"
    else:
        hint = ""
    raise InvalidInputError(f"pool must be a psycopg_pool.AsyncConnectionPool, got {kind}{hint}")


async def check_connection(dsn: str, *, timeout: float = 10.0) -> None:
    """Connect once to ``dsn`` and disconnect, to fail early with a clear reason.

    Raises:
        InvalidDsnError: the DSN is malformed (checked before connecting; the
            message never holds the password, which libpq's may).
        DatabaseUnavailableError: the server cannot be reached, or it refuses
            the credentials.
    """
    parse_dsn(dsn)
    try:
        conn = await AsyncConnection.connect(dsn, connect_timeout=max(1, round(timeout)))
    except psycopg.Error as exc:
        # libpq's text may quote a piece of the password (an unencoded "@" in a
        # URL makes its tail part of the host name).
        message = redact(f"cannot connect to the database: {exc}", dsn)
        raise DatabaseUnavailableError(message) from exc
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


def _redacted(message: str, pool: AsyncConnectionPool[Any]) -> str:
    """``message`` without the passwords of the pool's DSN or connection arguments."""
    conninfo = getattr(pool, "conninfo", "")
    kwargs = getattr(pool, "kwargs", None) or {}
    message = redact(message, conninfo if isinstance(conninfo, str) else "")
    for keyword in SECRET_KEYWORDS:
        secret = kwargs.get(keyword)
        if secret:
            message = redact(message, make_conninfo(**{keyword: str(secret)}))
    return message


_TRANSIENT_STATES = frozenset({"55P03", "57014", "40001", "40P01"})
"""Lock timeout, statement timeout (or a cancel), serialization failure, deadlock."""


def _translate(exc: Exception, pool: AsyncConnectionPool[Any]) -> AgentcoreError:
    if isinstance(exc, PoolTimeout):
        return DatabaseUnavailableError(
            f"no database connection became available within {pool.timeout:g}s "
            f"(pool {pool.name!r}, max_size={pool.max_size}): the database is down "
            "or every connection is busy"
        )
    if isinstance(exc, PoolClosed):
        return _pool_not_open(pool)
    if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedColumn):
        # A missing column means an older schema (0001 without 0002): same cure.
        return SchemaNotReadyError(
            "agentcore's tables are missing or out of date in this database: apply the "
            "migrations "
            "(agentcore.migrations.apply(dsn), or `agentcore migrate up`)"
        )
    text = _redacted(str(exc), pool)  # libpq's text may quote a piece of the password
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return StorageError(
            f"the database refuses writes ({text}): default_transaction_read_only is on "
            "for this database or role, or the server is a read-only standby"
        )
    if isinstance(exc, psycopg.OperationalError) and _lost_connection(exc):
        return DatabaseUnavailableError(f"database connection failed: {text}")
    if isinstance(exc, psycopg.Error) and (exc.sqlstate in _TRANSIENT_STATES or _shard_gone(exc)):
        return TransientStorageError(f"database error, nothing written, worth retrying: {text}")
    if isinstance(exc, psycopg.Error):
        return StorageError(f"database error: {text}")
    return StorageError(
        f"unexpected error while talking to the database: {type(exc).__name__}({text!r})"
    )


_OPEN_THE_POOL = "open the pool: `await pool.open()` or `async with pool`"


def _pool_not_open(pool: AsyncConnectionPool[Any]) -> PoolNotOpenError:
    """The error of a call on a pool never opened, or closed, with what to do about it.

    psycopg_pool tells the two apart only by a private flag (its own message
    does so too); a version without it gets the words that fit both.
    """
    opened = getattr(pool, "_opened", None)
    if opened is False:
        return PoolNotOpenError(
            f"the connection pool {pool.name!r} is not open yet: {_OPEN_THE_POOL}, "
            "before the repository's first call"
        )
    state = "is closed" if opened else "is not open (never opened, or closed)"
    return PoolNotOpenError(
        f"the connection pool {pool.name!r} {state}: a closed pool cannot be opened again; "
        f"make a new one and {_OPEN_THE_POOL}, and close it after the repository's last call"
    )


def _repeated_message_id(exc: psycopg.Error) -> bool:
    """Whether ``exc`` is a COPY refused for a message id stored twice in one conversation.

    PostgreSQL reports it as a unique violation; a Citus coordinator passes a
    worker's refusal of a COPY on as an internal error (XX000) with the same
    text, naming the shard's index (ux_conversation_history_message_id_<shard>).
    """
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return True
    return isinstance(exc, psycopg.errors.InternalError_) and str(exc).startswith(
        'duplicate key value violates unique constraint "ux_conversation_history_message_id'
    )


def _shard_gone(exc: psycopg.Error) -> bool:
    """Whether ``exc`` is a Citus coordinator finding that the shard it planned for is gone.

    A statement that waited for a shard split (``isolate_tenant_to_new_shard``)
    resumes with the old shard's id once the split commits, and Citus refuses
    it before it writes anything: an internal error (XX000), "could not find
    valid entry for shard <id>" (Citus' messages are not translated). Made
    again, the statement is planned for the new shards.
    """
    return isinstance(exc, psycopg.errors.InternalError_) and str(exc).startswith(
        "could not find valid entry for shard "
    )


def _lost_connection(exc: psycopg.OperationalError) -> bool:
    # psycopg's OperationalError also covers errors the server raised on a live
    # connection (statement_timeout, lock_timeout): those are StorageError. A
    # client-side failure has no SQLSTATE; the server reports connection
    # trouble as class 08 and shutdowns as 57P.
    state = exc.sqlstate
    return state is None or state.startswith(("08", "57P"))
