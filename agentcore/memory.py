"""An in-memory :class:`~agentcore.repository.HistoryRepository` for tests.

It keeps the same contract as the PostgreSQL repository, checked by the same
contract suite: the same validation and errors, the same ordering, ids stored
at most once, whole batches validated before anything changes. Safe to share
between asyncio tasks (and threads).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agentcore.errors import (
    InvalidMessageError,
    copy_refusal,
    session_exists,
    session_not_found,
)
from agentcore.memory_scoped import InMemoryScopedState
from agentcore.models import HistoryPage, Message, PurgeReport, SessionInfo, SessionPage
from agentcore.paging import (
    decode_history_cursor,
    decode_session_cursor,
    history_cursor,
    session_page,
)
from agentcore.streams import each
from agentcore.validation import (
    DEFAULT_MAX_CONTENT_CHARS,
    DEFAULT_PURGE_BATCH_SIZE,
    DEFAULT_PURGE_MAX_IMPACT,
    DEFAULT_PURGE_PAUSE,
    MAX_LIMIT,
    OWNER_KEY,
    REPEATED_IMPORT_ID,
    UPDATED_AT_STEP,
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


@dataclass
class _Conversation:
    created_at: datetime
    updated_at: datetime
    messages: list[Message] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    # The message ids stored, with each one's position in messages, so that an
    # append's "already stored?" check and get_message do not cost more as the
    # conversation grows.
    ids: dict[str, int] = field(default_factory=dict)

    def touch(self, now: datetime) -> None:
        """A write at ``now``: updated_at moves only when more than a minute old (as in SQL)."""
        if self.updated_at < now - UPDATED_AT_STEP:
            self.updated_at = now


class InMemoryHistoryRepository(InMemoryScopedState):
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
            return self._append_locked(key, batch, None)

    def _append_locked(
        self, key: tuple[str, str], batch: list[Message], now: datetime | None
    ) -> int:
        """Append ``batch``'s messages whose ids are not stored; the caller holds the lock.

        ``now``: the write's time when the caller already took one.
        """
        conversation = self._conversations.get(key)
        stored_ids = conversation.ids if conversation else {}
        fresh = [m for m in batch if m.id is None or m.id not in stored_ids]
        if not fresh:
            return 0
        now = now or self._tick()
        if conversation is None:
            conversation = self._conversations[key] = _Conversation(now, now)
        conversation.touch(now)
        first = len(conversation.messages)
        conversation.messages.extend(_stamped(m, now) for m in fresh)
        conversation.ids.update((m.id, first + n) for n, m in enumerate(fresh) if m.id is not None)
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
                self._drop_scoped_locked(key)
                return
            now = self._tick()
            conversation = self._conversations.setdefault(key, _Conversation(now, now))
            conversation.touch(now)
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
            self._drop_scoped_locked((agent_name, session_id))
            return 0 if conversation is None else len(conversation.messages)

    async def pop_message(self, agent_name: str, session_id: str) -> Message | None:
        """See :meth:`HistoryRepository.pop_message`."""
        check_stored_identifier(agent_name, "agent_name")
        check_stored_identifier(session_id, "session_id")
        with self._lock:
            conversation = self._conversations.get((agent_name, session_id))
            if conversation is None or not conversation.messages:
                return None
            conversation.touch(self._tick())
            message = conversation.messages.pop()
            if message.id is not None:
                del conversation.ids[message.id]
            return message

    async def replace_last_messages(
        self,
        agent_name: str,
        session_id: str,
        expected: Sequence[Message],
        messages: Sequence[MessageInput],
    ) -> bool:
        """See :meth:`HistoryRepository.replace_last_messages`."""
        key = (
            check_identifier(agent_name, "agent_name"),
            check_identifier(session_id, "session_id"),
        )
        tail = check_expected_tail(expected)
        batch = prepare_messages(messages, max_content_chars=self._max_content_chars)
        with self._lock:
            if not tail:  # the empty tail is always there
                self._append_locked(key, batch, None)
                return True
            conversation = self._conversations.get(key)
            stored = conversation.messages if conversation else []
            if len(stored) < len(tail) or stored[-len(tail) :] != tail:
                return False
            assert conversation is not None
            now = self._tick()
            conversation.touch(now)
            for message in stored[-len(tail) :]:
                if message.id is not None:
                    del conversation.ids[message.id]
            del stored[-len(tail) :]
            self._append_locked(key, batch, now)
            return True

    async def list_sessions(self, agent_name: str, limit: int | None = 100) -> list[SessionInfo]:
        """See :meth:`HistoryRepository.list_sessions`."""
        check_stored_identifier(agent_name, "agent_name")
        checked = check_limit(limit)
        sessions = self._sessions_in_page_order(agent_name)
        return sessions if checked is None else sessions[:checked]

    async def list_sessions_page(
        self,
        agent_name: str,
        *,
        owner: str | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> SessionPage:
        """See :meth:`HistoryRepository.list_sessions_page`."""
        check_stored_identifier(agent_name, "agent_name")
        size = check_page_size(limit)
        if owner is not None:
            check_owner(owner)
        position = None if after is None else decode_session_cursor(after)
        rows = [
            s
            for s in self._sessions_in_page_order(agent_name)
            if (owner is None or s.metadata.get(OWNER_KEY) == owner)
            and (
                position is None
                or s.updated_at < position[0]
                or (s.updated_at == position[0] and s.session_id > position[1])
            )
        ]
        return session_page(rows[: size + 1], size)

    def _sessions_in_page_order(self, agent_name: str) -> list[SessionInfo]:
        with self._lock:
            sessions = [
                _info(agent, session, c)
                for (agent, session), c in self._conversations.items()
                if agent == agent_name
            ]
        # Code point order, as PostgreSQL's COLLATE "C" orders UTF-8 text.
        sessions.sort(key=lambda s: s.session_id)
        sessions.sort(key=lambda s: s.updated_at, reverse=True)
        return sessions

    async def get_session(self, agent_name: str, session_id: str) -> SessionInfo | None:
        """See :meth:`HistoryRepository.get_session`."""
        check_stored_identifier(agent_name, "agent_name")
        check_stored_identifier(session_id, "session_id")
        with self._lock:
            conversation = self._conversations.get((agent_name, session_id))
            return None if conversation is None else _info(agent_name, session_id, conversation)

    async def set_session_metadata(
        self,
        agent_name: str,
        session_id: str,
        metadata: Mapping[str, Any],
        *,
        merge: bool = True,
    ) -> dict[str, Any]:
        """See :meth:`HistoryRepository.set_session_metadata`."""
        check_stored_identifier(agent_name, "agent_name")
        check_stored_identifier(session_id, "session_id")
        update = check_session_metadata(metadata)
        check_owner_fits(agent_name, session_id, update)
        with self._lock:
            conversation = self._conversations.get((agent_name, session_id))
            if conversation is None:
                raise session_not_found(agent_name, session_id)
            stored = merge_session_metadata(conversation.metadata, update, merge=merge)
            conversation.metadata = copy.deepcopy(stored)
        return stored

    async def load_history_page(
        self,
        agent_name: str,
        session_id: str,
        *,
        limit: int = 100,
        before: str | None = None,
    ) -> HistoryPage:
        """See :meth:`HistoryRepository.load_history_page`."""
        check_stored_identifier(agent_name, "agent_name")
        check_stored_identifier(session_id, "session_id")
        size = check_page_size(limit)
        end = MAX_LIMIT if before is None else decode_history_cursor(before)
        with self._lock:
            conversation = self._conversations.get((agent_name, session_id))
            messages = conversation.messages if conversation else []
            end = min(end, len(messages))
            start = max(0, end - size)
            page = [m.model_copy(deep=True) for m in messages[start:end]]
        return HistoryPage(messages=page, next_cursor=history_cursor(start) if start > 0 else None)

    async def copy_session(
        self,
        agent_name: str,
        source_session_id: str,
        target_session_id: str,
        *,
        up_to: int | str | None = None,
    ) -> int:
        """See :meth:`HistoryRepository.copy_session`."""
        check_identifier(agent_name, "agent_name")
        check_stored_identifier(source_session_id, "source_session_id")
        check_identifier(target_session_id, "target_session_id")
        bound = check_copy_bound(up_to)
        with self._lock:
            source = self._conversations.get((agent_name, source_session_id))
            messages = source.messages if source else []
            count = len(messages)
            if isinstance(bound, int):
                count = min(bound, count)
            elif isinstance(bound, str):
                ids = [m.id for m in messages]
                count = ids.index(bound) + 1 if bound in ids else -1
            refusal = copy_refusal(
                agent_name,
                source_session_id,
                target_session_id,
                bound,
                source_found=source is not None,
                cut_found=count >= 0,
                created=(agent_name, target_session_id) not in self._conversations,
            )
            if refusal is not None:
                raise refusal
            assert source is not None
            now = self._tick()
            copied = [m.model_copy(deep=True) for m in messages[:count]]
            self._conversations[agent_name, target_session_id] = _Conversation(
                created_at=now,
                updated_at=now,
                messages=copied,
                metadata=copy.deepcopy(source.metadata),
                ids={m.id: n for n, m in enumerate(copied) if m.id is not None},
            )
            return count

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
        """See :meth:`HistoryRepository.purge_idle_sessions`."""
        idle = check_idle_for(idle_for)
        if agent_name is not None:
            check_stored_identifier(agent_name, "agent_name")
        size = check_page_size(batch_size, "batch_size")
        check_pause(pause)
        check_max_impact(max_impact)
        cutoff = datetime.now(UTC) - idle - UPDATED_AT_STEP
        report = PurgeReport()
        with self._lock:
            idle_keys = sorted(
                (
                    key
                    for key, c in self._conversations.items()
                    if c.updated_at < cutoff and (agent_name is None or key[0] == agent_name)
                ),
                key=lambda key: (key[0], self._conversations[key].updated_at, key[1]),
            )
            for start in range(0, len(idle_keys), size):
                batch = idle_keys[start : start + size]
                messages = sum(len(self._conversations[key].messages) for key in batch)
                if not dry_run:
                    for key in batch:
                        del self._conversations[key]
                        self._drop_scoped_locked(key)
                report = report.plus(len(batch), messages)
                if on_progress is not None and not dry_run:
                    on_progress(report)
        return report

    async def iter_sessions(
        self, agent_name: str | None = None, *, batch_size: int = 1000
    ) -> AsyncIterator[SessionInfo]:
        """See :meth:`HistoryRepository.iter_sessions`."""
        if agent_name is not None:
            check_stored_identifier(agent_name, "agent_name")
        check_page_size(batch_size, "batch_size")
        with self._lock:
            keys = sorted(k for k in self._conversations if agent_name in (None, k[0]))
        for agent, session in keys:
            with self._lock:
                conversation = self._conversations.get((agent, session))
                info = None if conversation is None else _info(agent, session, conversation)
            if info is not None:
                yield info

    async def iter_history(
        self, agent_name: str, session_id: str, *, batch_size: int = 1000
    ) -> AsyncIterator[Message]:
        """See :meth:`HistoryRepository.iter_history`."""
        check_stored_identifier(agent_name, "agent_name")
        check_stored_identifier(session_id, "session_id")
        size = check_page_size(batch_size, "batch_size")
        start = 0
        while True:
            with self._lock:
                conversation = self._conversations.get((agent_name, session_id))
                batch = conversation.messages[start : start + size] if conversation else []
                batch = [m.model_copy(deep=True) for m in batch]
            for message in batch:
                yield message
            if len(batch) < size:
                return
            start += size

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
        key = (
            check_restored_identifier(agent_name, "agent_name"),
            check_restored_identifier(session_id, "session_id"),
        )
        stored_metadata = check_session_metadata(metadata or {})
        created = check_session_time(created_at, "created_at")
        updated = check_session_time(updated_at, "updated_at")
        with self._lock:
            if key in self._conversations:
                raise session_exists(*key)
        stream = MessageStream(max_content_chars=self._max_content_chars)
        batch = [stream.check(item) async for item in each(messages)]
        ids = [m.id for m in batch if m.id is not None]
        if len(set(ids)) != len(ids):
            raise InvalidMessageError(REPEATED_IMPORT_ID)
        with self._lock:
            if key in self._conversations:
                raise session_exists(*key)
            now = self._tick()
            self._conversations[key] = _Conversation(
                created_at=created or now,
                updated_at=updated or now,
                messages=[_stamped(m, now) for m in batch],
                metadata=stored_metadata,
                ids={m.id: n for n, m in enumerate(batch) if m.id is not None},
            )
        return len(batch)

    def _tick(self) -> datetime:
        # Like PostgreSQL's now(): one time per write, and strictly increasing
        # so that "most recently written first" is never a tie.
        now = datetime.now(UTC)
        self._last_time = max(now, self._last_time + timedelta(microseconds=1))
        return self._last_time


def _info(agent_name: str, session_id: str, conversation: _Conversation) -> SessionInfo:
    return SessionInfo(
        agent_name=agent_name,
        session_id=session_id,
        message_count=len(conversation.messages),
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        metadata=copy.deepcopy(conversation.metadata),
    )


def _stamped(message: Message, now: datetime) -> Message:
    update = {} if message.created_at is not None else {"created_at": now}
    return message.model_copy(update=update, deep=True)
