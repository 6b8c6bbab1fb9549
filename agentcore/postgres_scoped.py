"""PostgreSQL's :class:`~agentcore.scoped_state.ScopedStateStore` (migration 0007).

Its statements are in sql/scoped_state.sql.

A mixin of :class:`agentcore.postgres.PostgresHistoryRepository`, which gives
it its statements, its reads and its transactions.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from agentcore.errors import AgentcoreError, StaleStateError, session_exists, session_not_found
from agentcore.models import Message
from agentcore.rows import messages_from_rows_newest_first, messages_to_json_chunks
from agentcore.scoped_state import ScopedSession
from agentcore.validation import (
    MAX_LIMIT,
    MessageInput,
    ScopedWrite,
    check_limit,
    check_owner,
    check_scoped_append,
    check_scoped_create,
    check_session_time,
    check_stored_identifier,
    prepare_messages,
)

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

    from agentcore.postgres import _WriteCheckout
    from agentcore.sql import Queries, Query

_T = TypeVar("_T")

_APPEND_CHUNK_BYTES = 200_000_000
"""A batch larger than this as JSON is appended in parts, in the same transaction."""

_NEVER = datetime.min.replace(tzinfo=UTC)


def _state(text: str) -> dict[str, Any]:
    return {} if text == "{}" else dict(json.loads(text))


class PostgresScopedState:
    """Scoped state in PostgreSQL: see :class:`~agentcore.scoped_state.ScopedStateStore`."""

    if TYPE_CHECKING:
        _sql: Queries
        _max_content_chars: int
        _pool: AsyncConnectionPool[Any]

        def _write_connection(self) -> _WriteCheckout: ...

        async def _read(self, query: Query, params: dict[str, Any]) -> list[Any]: ...

        async def _in_transaction(
            self, write: Callable[[AsyncConnection[Any]], Awaitable[_T]]
        ) -> _T: ...

    async def create_scoped_session(
        self,
        agent_name: str,
        session_id: str,
        *,
        owner: str,
        update_time: float,
        state: Mapping[str, Any] | None = None,
        owner_state: Mapping[str, Any] | None = None,
        agent_state: Mapping[str, Any] | None = None,
    ) -> ScopedSession:
        """See :meth:`ScopedStateStore.create_scoped_session`."""
        request = check_scoped_create(
            agent_name, session_id, owner, update_time, state, owner_state, agent_state
        )
        agent, session, _, _, _, user, shared = request
        params = _write_params(request)

        async def write(conn: AsyncConnection[Any]) -> ScopedSession:
            await conn.execute(self._sql["lock_session"].text, params)
            cur = await conn.execute(self._sql["create_scoped_conversation"].text, params)
            row = await cur.fetchone()
            if row is None:
                raise session_exists(agent, session)
            params["created_at"] = row[0]
            await conn.execute(self._sql["create_session_state"].text, params)
            return await self._merge_shared_and_read(conn, params, bool(user), bool(shared))

        return await self._in_transaction(write)

    async def _merge_shared_and_read(
        self,
        conn: AsyncConnection[Any],
        params: dict[str, Any],
        user: bool,
        shared: bool,
    ) -> ScopedSession:
        """Merge the owner's and agent's deltas (when not empty); read the conversation back."""
        if user:
            await conn.execute(self._sql["merge_owner_state"].text, params)
        if shared:
            await conn.execute(self._sql["merge_agent_state"].text, params)
        cur = await conn.execute(self._sql["get_scoped_session"].text, params, binary=True)
        row = await cur.fetchone()
        assert row is not None
        return _scoped(params["agent_name"], params["session_id"], params["owner"], row)

    async def get_scoped_session(
        self,
        agent_name: str,
        session_id: str,
        *,
        owner: str,
        limit: int | None = None,
        since: datetime | None = None,
    ) -> tuple[ScopedSession, list[Message]] | None:
        """See :meth:`ScopedStateStore.get_scoped_session`."""
        agent = check_stored_identifier(agent_name, "agent_name")
        session = check_stored_identifier(session_id, "session_id")
        who = check_owner(owner)
        limit = check_limit(limit)
        after = _check_since(since)
        params: dict[str, Any] = {"agent_name": agent, "session_id": session, "owner": who}
        rows = await self._read(self._sql["get_scoped_session"], params)
        if not rows:
            return None
        scoped = _scoped(agent, session, who, rows[0])
        if limit == 0:
            return scoped, []
        params["limit"] = MAX_LIMIT if limit is None else limit
        if after is None:
            found = await self._read(self._sql["load_last_messages"], params)
        else:
            params["since"] = after
            found = await self._read(self._sql["load_last_messages_since"], params)
        return scoped, messages_from_rows_newest_first(found)

    async def list_scoped_sessions(
        self, agent_name: str, *, owner: str | None = None
    ) -> list[ScopedSession]:
        """See :meth:`ScopedStateStore.list_scoped_sessions`."""
        agent = check_stored_identifier(agent_name, "agent_name")
        params: dict[str, Any] = {"agent_name": agent}
        if owner is None:
            rows = await self._read(self._sql["list_scoped_sessions"], params)
        else:
            params["owner"] = check_owner(owner)
            rows = await self._read(self._sql["list_owner_scoped_sessions"], params)
        return [_scoped(agent, row[0], row[1], row[2:]) for row in rows]

    async def append_with_state(
        self,
        agent_name: str,
        session_id: str,
        messages: Sequence[MessageInput],
        *,
        owner: str,
        update_time: float,
        expected_revision: int | None = None,
        state: Mapping[str, Any] | None = None,
        owner_state: Mapping[str, Any] | None = None,
        agent_state: Mapping[str, Any] | None = None,
    ) -> ScopedSession:
        """See :meth:`ScopedStateStore.append_with_state`."""
        request, expected = check_scoped_append(
            agent_name,
            session_id,
            owner,
            update_time,
            expected_revision,
            state,
            owner_state,
            agent_state,
        )
        agent, session, who, _, _, user, shared = request
        batch = prepare_messages(messages, max_content_chars=self._max_content_chars)
        params = _write_params(request)
        with_ids = any(m.id is not None for m in batch)
        insert = self._sql["append_messages" if with_ids else "append_new_messages"]
        parts = [
            params | {"messages": text, "message_count": n}
            for text, n in (messages_to_json_chunks(batch, _APPEND_CHUNK_BYTES) if batch else [])
        ]
        # One round trip sends the whole write (the checks' reads, the
        # message, the states, the read back), its transaction left open; a
        # second commits it, or rolls it back when a check failed. The
        # conversation's lock comes first, so the checks see every earlier
        # writer and no later one slips in between.
        statements = [
            self._sql["begin_read_committed"],
            self._sql["lock_session"],
            self._sql["lock_session_state"],
            *[insert] * len(parts),
            self._sql["update_session_state"],
            *([self._sql["merge_owner_state"]] if user else []),
            *([self._sql["merge_agent_state"]] if shared else []),
            self._sql["get_scoped_session"],
        ]
        arguments = [params, params, params, *parts, params]
        arguments += [params] * (len(statements) - len(arguments))
        from agentcore import postgres

        with postgres._db_errors(self._pool):
            async with self._write_connection() as conn, postgres._autocommit_kept(conn):
                cursors = await postgres._run_in_one_round_trip(conn, statements, arguments)
                checked = await cursors[2].fetchone()
                written = await cursors[-1].fetchone()
                problem = _refusal(agent, session, who, expected, checked)
                end = self._sql["rollback_scoped_write"] if problem else self._sql["commit"]
                await postgres._run_in_one_round_trip(conn, [end], [params])
        if problem is not None:
            raise problem
        assert written is not None
        return _scoped(agent, session, who, written)

    async def delete_scoped_session(self, agent_name: str, session_id: str, *, owner: str) -> bool:
        """See :meth:`ScopedStateStore.delete_scoped_session`."""
        params: dict[str, Any] = {
            "agent_name": check_stored_identifier(agent_name, "agent_name"),
            "session_id": check_stored_identifier(session_id, "session_id"),
            "owner": check_owner(owner),
        }

        async def delete(conn: AsyncConnection[Any]) -> bool:
            await conn.execute(self._sql["lock_session"].text, params)
            cur = await conn.execute(self._sql["delete_session_state"].text, params)
            if cur.rowcount == 0:
                return False
            await conn.execute(self._sql["delete_session"].text, params)
            await conn.execute(self._sql["delete_messages"].text, params)
            return True

        return await self._in_transaction(delete)

    async def get_owner_state(self, agent_name: str, owner: str) -> dict[str, Any]:
        """See :meth:`ScopedStateStore.get_owner_state`."""
        params = {
            "agent_name": check_stored_identifier(agent_name, "agent_name"),
            "owner": check_owner(owner),
        }
        rows = await self._read(self._sql["get_owner_state"], params)
        return _state(rows[0][0]) if rows else {}

    async def get_agent_state(self, agent_name: str) -> dict[str, Any]:
        """See :meth:`ScopedStateStore.get_agent_state`."""
        params = {"agent_name": check_stored_identifier(agent_name, "agent_name")}
        rows = await self._read(self._sql["get_agent_state"], params)
        return _state(rows[0][0]) if rows else {}


def _refusal(
    agent: str, session: str, owner: str, expected: int | None, row: Sequence[Any] | None
) -> AgentcoreError | None:
    """Why a write to the conversation whose state row is ``row`` is refused, if it is."""
    if row is None or row[0] != owner:
        return session_not_found(agent, session)
    if expected is not None and row[1] != expected:
        return StaleStateError(
            f"conversation {session!r} of agent {agent!r} is at revision {row[1]}, "
            f"not {expected}: it was written since it was read; read it again"
        )
    return None


def _write_params(checked: ScopedWrite) -> dict[str, Any]:
    """The parameters of a checked write's statements (sql/scoped_state.sql)."""
    return {
        "agent_name": checked.agent_name,
        "session_id": checked.session_id,
        "owner": checked.owner,
        "state": json.dumps(checked.state),
        "update_time": checked.update_time,
        "user_state": json.dumps(checked.owner_state),
        "app_state": json.dumps(checked.agent_state),
    }


def _scoped(agent: str, session: str, owner: str, row: Sequence[Any]) -> ScopedSession:
    """A :class:`ScopedSession` from get_scoped_session's columns (a listing's, from its third)."""
    state, revision, update_time, created_at, owner_state, agent_state = row
    return ScopedSession(
        agent_name=agent,
        session_id=session,
        owner=owner,
        state=_state(state),
        owner_state=_state(owner_state),
        agent_state=_state(agent_state),
        revision=revision,
        update_time=update_time,
        created_at=created_at.astimezone(UTC),
    )


def _check_since(value: object) -> datetime | None:
    return check_session_time(value, "since")
