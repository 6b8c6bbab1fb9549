"""agentcore as an OpenAI Agents SDK session store: :class:`AgentcoreSession`.

Needs the ``openai-agents`` package: ``pip install 'agentcore-history[openai-agents]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from agentcore import (
    HistoryRepository,
    Message,
    MissingDependencyError,
    Role,
)

try:
    from agents.memory import SessionSettings
    from agents.memory.session_settings import coerce_session_settings
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError(
        "agentcore.integrations.openai_agents needs the openai-agents package: "
        "pip install 'agentcore-history[openai-agents]'"
    ) from exc

if TYPE_CHECKING:
    from agents import TResponseInputItem

_CHAT_ROLES: dict[object, Role] = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "developer": "system",
}


class AgentcoreSession:
    """An OpenAI Agents SDK ``Session`` whose items live in an agentcore repository.

    Each item is stored as one message that carries the item verbatim
    (:attr:`agentcore.Message.item`), so ``get_items`` returns what
    ``add_items`` was given, equal as Python objects. Items are never
    deduplicated (the SDK reuses item ids within a session). ``pop_item`` is
    one atomic statement (:meth:`~agentcore.HistoryRepository.pop_message`).

    Args:
        session_id: The session, as the SDK names it; with ``agent_name`` it
            keys the conversation in agentcore.
        repository: Any agentcore repository (PostgreSQL, or the in-memory
            fake in tests), owned by the caller.
        agent_name: The agentcore agent name the items are stored under.
        session_settings: The SDK's settings (``limit``: how many of the
            latest items ``get_items`` returns by default).

    Every method raises agentcore's errors: ``InvalidIdentifierError`` for a
    bad ``session_id`` or ``agent_name``, ``InvalidMessageError`` for an item
    that is not JSON, ``StorageError`` when the store fails.
    """

    def __init__(
        self,
        session_id: str,
        repository: HistoryRepository,
        *,
        agent_name: str = "openai-agents",
        session_settings: SessionSettings | dict[str, Any] | None = None,
    ) -> None:
        self.session_id = session_id
        self.agent_name = agent_name
        settings = SessionSettings() if session_settings is None else session_settings
        self.session_settings = coerce_session_settings(settings)
        self._repository = repository

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The latest ``limit`` items (default: ``session_settings.limit``; all when None).

        A negative limit means all items, as the SDK's SQLite session reads it.
        """
        if limit is None:
            limit = self.session_settings.limit
        if limit is not None and limit < 0:
            limit = None
        messages = await self._repository.load_history(self.agent_name, self.session_id, limit)
        return [_as_item(m) for m in messages]

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` in one atomic write (all or nothing)."""
        if not items:
            return
        # Plain dicts: the repository validates them and raises its own errors.
        messages = [{"role": _role(cast(dict[str, Any], i)), "item": i} for i in items]
        await self._repository.append_messages(self.agent_name, self.session_id, messages)

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the latest item, atomically (``None`` when empty)."""
        message = await self._repository.pop_message(self.agent_name, self.session_id)
        return None if message is None else _as_item(message)

    async def clear_session(self) -> None:
        """Delete every item of the session."""
        await self._repository.clear_session(self.agent_name, self.session_id)


def _role(item: dict[str, Any]) -> Role:
    """agentcore's role for an item: its own chat role, else what kind of item it is.

    The item keeps its own role (or none): this one only tells agentcore's
    window logic that a tool's output is not where a conversation starts.
    """
    role = _CHAT_ROLES.get(item.get("role"))
    if role is not None:
        return role
    kind = item.get("type")
    if isinstance(kind, str) and kind.endswith("_output"):
        return "tool"
    return "assistant"


def _as_item(message: Message) -> TResponseInputItem:
    if message.item is not None:
        return cast("TResponseInputItem", message.item)
    # A message stored by agentcore itself (an Agent's turn): its chat form.
    return cast("TResponseInputItem", message.to_chat_dict())
