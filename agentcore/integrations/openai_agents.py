"""agentcore as an OpenAI Agents SDK session store: :class:`AgentcoreSession`.

Needs the ``openai-agents`` package: ``pip install 'agentcore-history[openai-agents]'``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from agentcore import (
    InvalidMessageError,
    Message,
    MessageInput,
    MissingDependencyError,
    Role,
    SessionItemStore,
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
    from agents.memory.session import _CompactionSnapshot

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
    ``add_items`` was given, equal as Python objects, as the SDK's
    ``SQLiteSession`` returns it: any text, U+0000 and lone surrogates
    included (a tool returning a binary file's header). Items are never
    deduplicated (the SDK reuses item ids within a session). ``pop_item`` is
    one atomic statement (:meth:`~agentcore.HistoryRepository.pop_message`).
    Compaction (``OpenAIResponsesCompactionSession`` over this session) is
    atomic too: the SDK's compaction hooks replace the compacted items in one
    transaction, and only if nobody wrote to the session meanwhile
    (:meth:`~agentcore.HistoryRepository.replace_last_messages`), so a crash
    or a concurrent write never loses history.

    Args:
        session_id: The session, as the SDK names it; with ``agent_name`` it
            keys the conversation in agentcore.
        repository: Any agentcore repository (PostgreSQL, or the in-memory
            fake in tests), or any :class:`~agentcore.SessionItemStore`, owned
            by the caller.
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
        repository: SessionItemStore,
        *,
        agent_name: str = "openai-agents",
        session_settings: SessionSettings | dict[str, Any] | None = None,
    ) -> None:
        self.session_id = session_id
        self.agent_name = agent_name
        settings = SessionSettings() if session_settings is None else session_settings
        # Typed as the SDK's Session protocol declares it, so that a type
        # checker accepts this class wherever the SDK takes a Session.
        self.session_settings: SessionSettings | None = coerce_session_settings(settings)
        self._repository = repository

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The latest ``limit`` items (default: ``session_settings.limit``; all when None).

        A negative limit means all items, as the SDK's SQLite session reads it.
        """
        if limit is None and self.session_settings is not None:
            limit = self.session_settings.limit
        if limit is not None and limit < 0:
            limit = None
        messages = await self._repository.load_history(self.agent_name, self.session_id, limit)
        return [_as_item(m) for m in messages]

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` in one atomic write (all or nothing).

        The SDK's ``Runner`` stores a run's input in a call of its own, before
        the model runs, then each step's items: a run that fails later keeps
        its input, as with ``SQLiteSession`` (docs/integrations.md, "No turn
        stored in part").
        """
        if not items:
            return
        await self._repository.append_messages(self.agent_name, self.session_id, _messages(items))

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the latest item, atomically (``None`` when empty)."""
        message = await self._repository.pop_message(self.agent_name, self.session_id)
        return None if message is None else _as_item(message)

    async def clear_session(self) -> None:
        """Delete every item of the session."""
        await self._repository.clear_session(self.agent_name, self.session_id)

    async def _get_compaction_snapshot(
        self,
        limit: int,
        *,
        prune_prefix: Callable[[TResponseInputItem], bool] | None = None,
    ) -> _CompactionSnapshot | None:
        """The SDK's compaction hook: the latest ``limit`` items, and a way to replace a suffix.

        ``replace_suffix(start, output)`` replaces the snapshot's items from
        ``start`` on with ``output``, in one transaction, if they are still
        the session's last items (else it changes nothing and returns
        ``False``). With ``prune_prefix`` (``EncryptedSession`` passes it), the
        session's oldest items for which it is true, up to the first for
        which it is not, are deleted in the same transaction: the replacement
        then covers the whole session (it is compared and rewritten whole),
        which costs a read of it; without expired items at the start, only the
        oldest item is read to find that out. ``None`` when a subclass
        overrides how items are stored or read.
        """
        from agents.memory.session import _CompactionSnapshot

        if not _stores_items_as_given(self):
            return None
        stored = await self._repository.load_history(self.agent_name, self.session_id, limit + 1)
        snapshot = stored[max(0, len(stored) - limit) :]

        async def replace_suffix(start: int, output: list[TResponseInputItem]) -> bool:
            expected = snapshot[start:]
            if not expected:
                return False
            if prune_prefix is not None and await self._oldest_item_is(prune_prefix):
                return await self._replace_pruning(expected, _messages(output), prune_prefix)
            return await self._repository.replace_last_messages(
                self.agent_name, self.session_id, expected, _messages(output)
            )

        return _CompactionSnapshot(
            [_as_item(m) for m in snapshot], len(stored) <= limit, replace_suffix
        )

    async def _oldest_item_is(self, test: Callable[[TResponseInputItem], bool]) -> bool:
        oldest = self._repository.iter_history(self.agent_name, self.session_id, batch_size=1)
        try:
            first = await anext(oldest, None)
        finally:
            close = getattr(oldest, "aclose", None)
            if close is not None:
                await close()
        return first is not None and test(_as_item(first))

    async def _replace_pruning(
        self,
        expected: list[Message],
        replacement: list[dict[str, Any]],
        prune_prefix: Callable[[TResponseInputItem], bool],
    ) -> bool:
        """Replace ``expected`` and delete the expired items at the start, in one transaction."""
        everything = await self._repository.load_history(self.agent_name, self.session_id)
        kept = len(everything) - len(expected)
        if kept < 0 or everything[kept:] != expected:
            return False
        expired = 0
        while expired < kept and prune_prefix(_as_item(everything[expired])):
            expired += 1
        kept_and_new: list[MessageInput] = [*everything[expired:kept], *replacement]
        return await self._repository.replace_last_messages(
            self.agent_name, self.session_id, everything, kept_and_new
        )

    async def _atomic_replace_items(self, items: list[TResponseInputItem]) -> bool:
        """The SDK's whole-history replacement hook: ``items`` become the session, atomically.

        Unconditional, as the SDK asks (:meth:`~agentcore.HistoryRepository.save_full_history`).
        ``False`` (the SDK then clears and adds) when a subclass overrides how
        items are stored or read.
        """
        if not _stores_items_as_given(self):
            return False
        await self._repository.save_full_history(self.agent_name, self.session_id, _messages(items))
        return True


def _stores_items_as_given(session: AgentcoreSession) -> bool:
    """Whether ``session``'s class reads and writes items as :class:`AgentcoreSession` does.

    The compaction hooks write the repository directly; a subclass that
    transforms items in ``add_items`` or ``get_items`` would be bypassed.
    """
    kind = type(session)
    return all(
        getattr(kind, name) is getattr(AgentcoreSession, name)
        for name in ("get_items", "add_items", "pop_item", "clear_session")
    )


def _messages(items: list[TResponseInputItem]) -> list[dict[str, Any]]:
    """Items as agentcore messages that carry them verbatim.

    Plain dicts: the repository validates them (JSON values only, anywhere)
    and raises its own errors, for the whole batch before storing any.
    """
    return [{"role": _role(i, item), "item": item} for i, item in enumerate(items)]


def _role(index: int, item: object) -> Role:
    """agentcore's role for an item: its own chat role, else what kind of item it is.

    The item keeps its own role (or none): this one only tells agentcore's
    window logic that a tool's output is not where a conversation starts.
    """
    if not isinstance(item, Mapping):
        raise InvalidMessageError(
            f"items[{index}] is a {type(item).__name__}, not an item (a JSON object)"
        )
    own = item.get("role")
    role = _CHAT_ROLES.get(own) if isinstance(own, str) else None
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
