"""The in-memory :class:`~agentcore.scoped_state.ScopedStateStore`, as PostgreSQL keeps it.

A mixin of :class:`agentcore.memory.InMemoryHistoryRepository`: the same
checks, the same stored forms (states as jsonb gives them back), the same
order, and each write whole or not at all, under the repository's lock.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agentcore.errors import StaleStateError, session_exists, session_not_found
from agentcore.models import Message
from agentcore.scoped_state import ScopedSession
from agentcore.validation import (
    MessageInput,
    check_limit,
    check_owner,
    check_scoped_append,
    check_scoped_create,
    check_session_time,
    check_stored_identifier,
    merge_state,
    prepare_messages,
)

if TYPE_CHECKING:
    from agentcore.memory import _Conversation


@dataclass
class _SessionState:
    owner: str
    update_time: float
    created_at: datetime
    state: dict[str, Any] = field(default_factory=dict)
    revision: int = 0


class InMemoryScopedState:
    """Scoped state in dicts: see :class:`~agentcore.scoped_state.ScopedStateStore`."""

    if TYPE_CHECKING:
        _lock: threading.Lock
        _max_content_chars: int
        _conversations: dict[tuple[str, str], _Conversation]

        def _tick(self) -> datetime: ...

        def _append_locked(
            self, key: tuple[str, str], batch: list[Message], now: datetime | None
        ) -> int: ...

    @property
    def _scoped(self) -> dict[tuple[str, str], _SessionState]:
        found: dict[tuple[str, str], _SessionState] | None = self.__dict__.get("_scoped_rows")
        if found is None:
            found = self.__dict__["_scoped_rows"] = {}
        return found

    def _drop_scoped_locked(self, key: tuple[str, str]) -> None:
        """The conversation ``key`` was deleted: its own state goes with it.

        As PostgreSQL's foreign key (ON DELETE CASCADE, migration 0007) does;
        the owner's and the agent's states are shared and stay.
        """
        self._scoped.pop(key, None)

    @property
    def _owner_states(self) -> dict[tuple[str, str], dict[str, Any]]:
        return self.__dict__.setdefault("_owner_rows", {})  # type: ignore[no-any-return]

    @property
    def _agent_states(self) -> dict[str, dict[str, Any]]:
        return self.__dict__.setdefault("_agent_rows", {})  # type: ignore[no-any-return]

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
        from agentcore.memory import _Conversation

        request = check_scoped_create(
            agent_name, session_id, owner, update_time, state, owner_state, agent_state
        )
        agent, session, who, when, own, user, shared = request
        key = (agent, session)
        with self._lock:
            if key in self._conversations:
                raise session_exists(agent, session)
            now = self._tick()
            self._conversations[key] = _Conversation(now, now, metadata={"owner": who})
            self._scoped[key] = _SessionState(who, when, now, own)
            self._merge_shared(agent, who, user, shared)
            return self._read_locked(key)

    def _merge_shared(
        self, agent: str, owner: str, user: dict[str, Any], shared: dict[str, Any]
    ) -> None:
        if user:
            stored = self._owner_states.get((agent, owner), {})
            self._owner_states[agent, owner] = merge_state(stored, user)
        if shared:
            self._agent_states[agent] = merge_state(self._agent_states.get(agent, {}), shared)

    def _read_locked(self, key: tuple[str, str]) -> ScopedSession:
        row = self._scoped[key]
        return ScopedSession(
            agent_name=key[0],
            session_id=key[1],
            owner=row.owner,
            state=copy.deepcopy(row.state),
            owner_state=copy.deepcopy(self._owner_states.get((key[0], row.owner), {})),
            agent_state=copy.deepcopy(self._agent_states.get(key[0], {})),
            revision=row.revision,
            update_time=row.update_time,
            created_at=row.created_at,
        )

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
        key = (
            check_stored_identifier(agent_name, "agent_name"),
            check_stored_identifier(session_id, "session_id"),
        )
        who = check_owner(owner)
        limit = check_limit(limit)
        after = check_session_time(since, "since")
        with self._lock:
            row = self._scoped.get(key)
            if row is None or row.owner != who:
                return None
            conversation = self._conversations.get(key)
            messages = [] if conversation is None or limit == 0 else conversation.messages
            if after is not None:
                messages = [m for m in messages if m.created_at and m.created_at >= after]
            if limit is not None:
                messages = messages[-limit:] if limit else []
            return self._read_locked(key), [m.model_copy(deep=True) for m in messages]

    async def list_scoped_sessions(
        self, agent_name: str, *, owner: str | None = None
    ) -> list[ScopedSession]:
        """See :meth:`ScopedStateStore.list_scoped_sessions`."""
        agent = check_stored_identifier(agent_name, "agent_name")
        who = None if owner is None else check_owner(owner)
        with self._lock:
            keys = [
                key
                for key, row in self._scoped.items()
                if key[0] == agent and who in (None, row.owner)
            ]
            keys.sort(key=lambda k: (self._scoped[k].update_time, self._scoped[k].owner, k[1]))
            return [self._read_locked(key) for key in keys]

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
        agent, session, who, when, own, user, shared = request
        batch = prepare_messages(messages, max_content_chars=self._max_content_chars)
        key = (agent, session)
        with self._lock:
            row = self._scoped.get(key)
            if row is None or row.owner != who:
                raise session_not_found(agent, session)
            if expected is not None and row.revision != expected:
                raise StaleStateError(
                    f"conversation {session!r} of agent {agent!r} is at revision "
                    f"{row.revision}, not {expected}: it was written since it was read; "
                    "read it again"
                )
            if batch:
                self._append_locked(key, batch, None)
            row.state = merge_state(row.state, own)
            row.revision += 1
            row.update_time = when
            self._merge_shared(agent, who, user, shared)
            return self._read_locked(key)

    async def delete_scoped_session(self, agent_name: str, session_id: str, *, owner: str) -> bool:
        """See :meth:`ScopedStateStore.delete_scoped_session`."""
        key = (
            check_stored_identifier(agent_name, "agent_name"),
            check_stored_identifier(session_id, "session_id"),
        )
        who = check_owner(owner)
        with self._lock:
            row = self._scoped.get(key)
            if row is None or row.owner != who:
                return False
            del self._scoped[key]
            self._conversations.pop(key, None)
            return True

    async def get_owner_state(self, agent_name: str, owner: str) -> dict[str, Any]:
        """See :meth:`ScopedStateStore.get_owner_state`."""
        key = (check_stored_identifier(agent_name, "agent_name"), check_owner(owner))
        with self._lock:
            return copy.deepcopy(self._owner_states.get(key, {}))

    async def get_agent_state(self, agent_name: str) -> dict[str, Any]:
        """See :meth:`ScopedStateStore.get_agent_state`."""
        agent = check_stored_identifier(agent_name, "agent_name")
        with self._lock:
            return copy.deepcopy(self._agent_states.get(agent, {}))
