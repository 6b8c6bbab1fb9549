"""An in-memory :class:`~agentcore.repository.HistoryRepository` for tests.

It keeps the same contract as the PostgreSQL repository, checked by the same
contract suite: the same validation and errors, the same ordering, ids stored
at most once, whole batches validated before anything changes. Safe to share
between asyncio tasks (and threads).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from agentcore.models import Message, SessionInfo
from agentcore.validation import (
    DEFAULT_MAX_CONTENT_CHARS,
    MessageInput,
    check_limit,
    check_max_content_chars,
    check_stored_identifier,
    conversation_key,
    prepare_messages,
)


@dataclass
class _Conversation:
    created_at: datetime
    updated_at: datetime
    messages: list[Message] = field(default_factory=list)
    # The message ids stored, with each one's position in messages, so that an
    # append's "already stored?" check and get_message do not cost more as the
    # conversation grows.
    ids: dict[str, int] = field(default_factory=dict)


class InMemoryHistoryRepository:
    """Conversation history in a dict; a faithful fake of the PostgreSQL store.

    Args:
        max_content_chars: The largest accepted message ``content``, from 1 to
            ``agentcore.validation.MAX_CONTENT_CHARS_LIMIT`` (25,000,000).

    Raises:
        InvalidInputError: ``max_content_chars`` is out of that range.
    """

    def __init__(self, *, max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS) -> None:
        self._max_content_chars = check_max_content_chars(max_content_chars)
        self._conversations: dict[tuple[str, str], _Conversation] = {}
        self._lock = threading.Lock()
        self._last_time = datetime.min.replace(tzinfo=UTC)

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
        with self._lock:
            conversation = self._conversations.get(key)
            if conversation is None:
                return []
            window = conversation.messages if limit is None else conversation.messages[-limit:]
            return [m.model_copy(deep=True) for m in window]

    async def append_messages(
        self, agent_name: str, session_id: str | None, messages: Sequence[MessageInput]
    ) -> int:
        """See :meth:`HistoryRepository.append_messages`."""
        batch = prepare_messages(messages, max_content_chars=self._max_content_chars)
        key = conversation_key(agent_name, session_id, "append_messages")
        if key is None:
            return 0
        with self._lock:
            conversation = self._conversations.get(key)
            stored_ids = conversation.ids if conversation else {}
            fresh = [m for m in batch if m.id is None or m.id not in stored_ids]
            if not fresh:
                return 0
            now = self._tick()
            if conversation is None:
                conversation = self._conversations[key] = _Conversation(now, now)
            conversation.updated_at = now
            first = len(conversation.messages)
            conversation.messages.extend(_stamped(m, now) for m in fresh)
            conversation.ids.update(
                (m.id, first + n) for n, m in enumerate(fresh) if m.id is not None
            )
            return len(fresh)

    async def save_full_history(
        self, agent_name: str, session_id: str | None, history: Sequence[MessageInput]
    ) -> None:
        """See :meth:`HistoryRepository.save_full_history`."""
        batch = prepare_messages(history, max_content_chars=self._max_content_chars)
        key = conversation_key(agent_name, session_id, "save_full_history")
        if key is None:
            return
        with self._lock:
            if not batch:
                self._conversations.pop(key, None)
                return
            now = self._tick()
            conversation = self._conversations.setdefault(key, _Conversation(now, now))
            conversation.updated_at = now
            conversation.messages = [_stamped(m, now) for m in batch]
            conversation.ids = {m.id: n for n, m in enumerate(batch) if m.id is not None}

    async def get_message(
        self, agent_name: str, session_id: str, message_id: str
    ) -> Message | None:
        """See :meth:`HistoryRepository.get_message`."""
        key = (
            check_stored_identifier(agent_name, "agent_name"),
            check_stored_identifier(session_id, "session_id"),
        )
        check_stored_identifier(message_id, "message_id")
        with self._lock:
            conversation = self._conversations.get(key)
            if conversation is None or message_id not in conversation.ids:
                return None
            return conversation.messages[conversation.ids[message_id]].model_copy(deep=True)

    async def clear_session(self, agent_name: str, session_id: str) -> int:
        """See :meth:`HistoryRepository.clear_session`."""
        check_stored_identifier(agent_name, "agent_name")
        check_stored_identifier(session_id, "session_id")
        with self._lock:
            conversation = self._conversations.pop((agent_name, session_id), None)
            return 0 if conversation is None else len(conversation.messages)

    async def pop_message(self, agent_name: str, session_id: str) -> Message | None:
        """See :meth:`HistoryRepository.pop_message`."""
        check_stored_identifier(agent_name, "agent_name")
        check_stored_identifier(session_id, "session_id")
        with self._lock:
            conversation = self._conversations.get((agent_name, session_id))
            if conversation is None or not conversation.messages:
                return None
            conversation.updated_at = self._tick()
            message = conversation.messages.pop()
            if message.id is not None:
                del conversation.ids[message.id]
            return message

    async def list_sessions(self, agent_name: str, limit: int | None = 100) -> list[SessionInfo]:
        """See :meth:`HistoryRepository.list_sessions`."""
        check_stored_identifier(agent_name, "agent_name")
        checked = check_limit(limit)
        with self._lock:
            sessions = [
                SessionInfo(
                    agent_name=agent,
                    session_id=session,
                    message_count=len(c.messages),
                    created_at=c.created_at,
                    updated_at=c.updated_at,
                )
                for (agent, session), c in self._conversations.items()
                if agent == agent_name
            ]
        sessions.sort(key=lambda s: s.session_id)
        sessions.sort(key=lambda s: s.updated_at, reverse=True)
        return sessions if checked is None else sessions[:checked]

    def _tick(self) -> datetime:
        # Like PostgreSQL's now(): one time per write, and strictly increasing
        # so that "most recently written first" is never a tie.
        now = datetime.now(UTC)
        self._last_time = max(now, self._last_time + timedelta(microseconds=1))
        return self._last_time


def _stamped(message: Message, now: datetime) -> Message:
    update = {} if message.created_at is not None else {"created_at": now}
    return message.model_copy(update=update, deep=True)
