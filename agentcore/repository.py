"""The storage port: what any history store must do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from agentcore.models import Message, SessionInfo
from agentcore.validation import MessageInput


@runtime_checkable
class HistoryRepository(Protocol):
    """Conversation history keyed by ``(agent_name, session_id)``.

    Identifiers are non-empty strings of at most 255 characters with no NUL
    byte (anything else raises :class:`~agentcore.errors.InvalidIdentifierError`
    before any I/O). Writes also refuse control characters and line separators
    in ids; reads, ``get_message``, ``list_sessions`` and ``clear_session``
    accept them, so that conversations stored before that rule stay reachable.
    A whole batch is validated before anything is written, and every write is
    atomic. ``session_id=None`` never falls back to a shared
    conversation: reads return ``[]`` and writes store nothing, with a warning.
    """

    async def load_history(
        self, agent_name: str, session_id: str | None, limit: int | None = None
    ) -> list[Message]:
        """Return the last ``limit`` messages (all when ``None``), oldest first.

        ``limit=None`` reads the whole conversation: its time and memory grow
        with the conversation's length (an agent reads a bounded window, its
        ``history_limit``, by default).

        Raises:
            InvalidIdentifierError: a bad ``agent_name`` or ``session_id``.
            InvalidInputError: ``limit`` is negative or not an int.
            StorageError: the store failed.
        """
        ...

    async def save_full_history(
        self, agent_name: str, session_id: str | None, history: Sequence[MessageInput]
    ) -> None:
        """Atomically replace the conversation with ``history``.

        Raises:
            InvalidIdentifierError: a bad ``agent_name`` or ``session_id``.
            InvalidMessageError: any message is invalid (nothing is replaced).
            StorageError: the store failed (the old conversation is intact).
        """
        ...

    async def append_messages(
        self, agent_name: str, session_id: str | None, messages: Sequence[MessageInput]
    ) -> int:
        """Add ``messages`` after the last stored one, all or nothing.

        A message whose ``id`` is already stored in this conversation is
        skipped, so retrying an append after an ambiguous failure is safe.

        Returns:
            How many messages were stored (skipped ids do not count).

        Raises:
            InvalidIdentifierError: a bad ``agent_name`` or ``session_id``.
            InvalidMessageError: any message is invalid (nothing is stored).
            StorageError: the store failed (nothing is stored).
        """
        ...

    async def get_message(
        self, agent_name: str, session_id: str, message_id: str
    ) -> Message | None:
        """The stored message with this ``id`` in the conversation, or ``None``.

        A point lookup, whatever the length of the conversation: it finds a
        message beyond any read window (an agent uses it to find a retried
        turn's stored reply).

        Raises:
            InvalidIdentifierError: a bad ``agent_name``, ``session_id`` or
                ``message_id``.
            StorageError: the store failed.
        """
        ...

    async def clear_session(self, agent_name: str, session_id: str) -> int:
        """Delete the conversation. Returns how many messages it had."""
        ...

    async def pop_message(self, agent_name: str, session_id: str) -> Message | None:
        """Remove the conversation's last message and return it (``None`` if it is empty).

        One atomic step whose cost does not grow with the conversation:
        concurrent pops return distinct messages, and an append racing a pop
        is never lost. The popped message's id may be stored again.

        Raises:
            InvalidIdentifierError: a bad ``agent_name`` or ``session_id``.
            StorageError: the store failed (nothing is removed).
        """
        ...

    async def list_sessions(self, agent_name: str, limit: int | None = 100) -> list[SessionInfo]:
        """The agent's conversations, most recently written first (at most ``limit``).

        ``limit=None`` lists them all: its cost grows with the number of the
        agent's conversations.
        """
        ...
