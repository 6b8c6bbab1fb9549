"""A user's own history store for agent turns: three methods over a dict, nothing else.

It is not an agentcore class and implements no other port: it shows that
:class:`agentcore.TurnStore` is all an :class:`~agentcore.Agent` and an
:class:`~agentcore.ExecutionFacade` need. mypy checks this module (and
tests/unit/test_own_turn_store.py passes it to both), so the port's
signatures are proven to be implementable as written.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentcore import Message, MessageInput


class DictTurnStore:
    """Conversations in a dict keyed by ``(agent_name, session_id)``."""

    def __init__(self) -> None:
        self.conversations: dict[tuple[str, str], list[Message]] = {}

    async def load_history(
        self, agent_name: str, session_id: str | None, limit: int | None = None
    ) -> list[Message]:
        if session_id is None:
            return []
        stored = self.conversations.get((agent_name, session_id), [])
        return list(stored if limit is None else stored[len(stored) - limit :] if limit else [])

    async def append_messages(
        self, agent_name: str, session_id: str | None, messages: Sequence[MessageInput]
    ) -> int:
        if session_id is None:
            return 0
        stored = self.conversations.setdefault((agent_name, session_id), [])
        ids = {m.id for m in stored if m.id is not None}
        added = 0
        for given in messages:
            message = given if isinstance(given, Message) else Message.model_validate(given)
            if message.id is not None and message.id in ids:
                continue  # a retried append: stored already
            stored.append(message)
            if message.id is not None:
                ids.add(message.id)
            added += 1
        return added

    async def get_message(
        self, agent_name: str, session_id: str, message_id: str
    ) -> Message | None:
        stored = self.conversations.get((agent_name, session_id), [])
        return next((m for m in stored if m.id == message_id), None)
