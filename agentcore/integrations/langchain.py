"""agentcore as a LangChain chat history: :class:`AgentcoreChatMessageHistory`.

Needs the ``langchain-core`` package: ``pip install 'agentcore-history[langchain]'``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from agentcore import (
    ChatMessageStore,
    InvalidMessageError,
    Message,
    MessageInput,
    MissingDependencyError,
    Role,
    SyncHistoryRepository,
)

try:
    from langchain_core.chat_history import BaseChatMessageHistory
    from langchain_core.messages import (
        BaseMessage,
        convert_to_messages,
        message_to_dict,
        messages_from_dict,
    )
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError(
        "agentcore.integrations.langchain needs the langchain-core package: "
        "pip install 'agentcore-history[langchain]'"
    ) from exc

_T = TypeVar("_T")
_ROLES: dict[str, Role] = {
    "human": "user",
    "ai": "assistant",
    "AIMessageChunk": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
}


class AgentcoreChatMessageHistory(BaseChatMessageHistory):
    """A LangChain chat message history kept in an agentcore repository.

    Every message is stored with its whole LangChain form
    (:func:`langchain_core.messages.message_to_dict`) as the message's exact
    item, so it reads back equal to what was added: tool calls, usage and
    response metadata, artifacts and ids included, and any text, U+0000 and
    lone surrogates too. As LangChain's in-memory
    history does, a message added twice is kept twice (LangChain ids are not
    agentcore's deduplicating ids).

    Over a :class:`~agentcore.SyncHistoryRepository` the sync methods
    (``messages``, ``add_messages``, ``clear``) call it directly and the async
    ones run those calls in a worker thread: use it where LangChain runs sync
    code (``invoke``), from any thread. Over an async repository the async
    methods call it directly and the sync ones run the call on an event loop
    of their own: fine for the in-memory fake, while a PostgreSQL pool, which
    belongs to the loop that opened it, serves only the async methods.

    Args:
        session_id: The conversation's session id.
        repository: Any agentcore repository, sync or async, or any async
            :class:`~agentcore.ChatMessageStore`, owned by the caller.
        agent_name: The agentcore agent name the messages are stored under.

    Every method raises agentcore's errors: ``InvalidIdentifierError`` for a
    bad ``session_id`` or ``agent_name``, ``InvalidMessageError`` for
    something that is not a LangChain message, or one holding a value that is
    not JSON anywhere (a ``datetime.date`` in an ``artifact``, say; nothing of
    the batch is stored), or a stored message LangChain cannot read back;
    ``StorageError`` when the store fails.
    """

    def __init__(
        self,
        session_id: str,
        repository: ChatMessageStore | SyncHistoryRepository,
        *,
        agent_name: str = "langchain",
    ) -> None:
        self.session_id = session_id
        self.agent_name = agent_name
        self._repository = repository

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """Every message of the conversation, oldest first."""
        repo = self._repository
        if isinstance(repo, SyncHistoryRepository):
            stored = repo.load_history(self.agent_name, self.session_id)
        else:
            stored = _wait(repo.load_history(self.agent_name, self.session_id))
        return _as_langchain_messages(stored)

    async def aget_messages(self) -> list[BaseMessage]:
        """Every message of the conversation, oldest first."""
        repo = self._repository
        if isinstance(repo, SyncHistoryRepository):
            return await asyncio.to_thread(lambda: self.messages)
        stored = await repo.load_history(self.agent_name, self.session_id)
        return _as_langchain_messages(stored)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append ``messages`` in one atomic write."""
        batch = _as_batch(messages)
        repo = self._repository
        if not batch:
            return
        if isinstance(repo, SyncHistoryRepository):
            repo.append_messages(self.agent_name, self.session_id, batch)
        else:
            _wait(repo.append_messages(self.agent_name, self.session_id, batch))

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append ``messages`` in one atomic write."""
        repo = self._repository
        if isinstance(repo, SyncHistoryRepository):
            await asyncio.to_thread(self.add_messages, messages)
            return
        batch = _as_batch(messages)
        if batch:
            await repo.append_messages(self.agent_name, self.session_id, batch)

    def clear(self) -> None:
        """Delete the conversation."""
        repo = self._repository
        if isinstance(repo, SyncHistoryRepository):
            repo.clear_session(self.agent_name, self.session_id)
        else:
            _wait(repo.clear_session(self.agent_name, self.session_id))

    async def aclear(self) -> None:
        """Delete the conversation."""
        repo = self._repository
        if isinstance(repo, SyncHistoryRepository):
            await asyncio.to_thread(self.clear)
        else:
            await repo.clear_session(self.agent_name, self.session_id)


def _as_batch(messages: Sequence[BaseMessage]) -> list[MessageInput]:
    """LangChain messages as agentcore messages that carry them whole.

    Plain dicts: the repository validates them (JSON values only, anywhere)
    and raises its own errors, for the whole batch before storing any.
    """
    return [_as_message(i, m) for i, m in enumerate(messages)]


def _as_message(index: int, message: BaseMessage) -> MessageInput:
    if not isinstance(message, BaseMessage):
        raise InvalidMessageError(
            f"messages[{index}] is a {type(message).__name__}, not a LangChain message"
        )
    record = message_to_dict(message)
    role = getattr(message, "role", None) if message.type == "chat" else None
    if role not in ("system", "user", "assistant"):
        role = _ROLES.get(message.type, "user")
    return {"role": role, "item": record}


def _as_langchain_messages(stored: Sequence[Message]) -> list[BaseMessage]:
    converted = []
    for index, message in enumerate(stored):
        try:
            converted.append(_as_langchain(message))
        except (ValueError, KeyError, TypeError) as exc:  # an item another writer stored
            raise InvalidMessageError(
                f"stored message {index} (oldest first) is not one LangChain can read: {exc!r}"
            ) from exc
    return converted


def _as_langchain(message: Message) -> BaseMessage:
    if message.item is not None:
        return messages_from_dict([message.item])[0]
    # A message stored by agentcore itself (an Agent's turn): its chat form.
    return convert_to_messages([message.to_chat_dict()])[0]


def _wait(call: Coroutine[Any, Any, _T]) -> _T:
    """Run ``call`` to completion from sync code, inside a running event loop or not."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(call)
    # A sync method called from async code: its loop is busy running the caller.
    with concurrent.futures.ThreadPoolExecutor(1) as worker:
        return worker.submit(asyncio.run, call).result()
