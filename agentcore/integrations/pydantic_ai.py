"""agentcore as a Pydantic AI message history: :class:`AgentcoreMessageHistory`.

Pydantic AI keeps no history itself: a run returns ``result.new_messages()``
and the next run takes ``message_history=``. These classes store those
messages in an agentcore repository and give them back.

Needs the ``pydantic-ai-slim`` package: ``pip install 'agentcore-history[pydantic-ai]'``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

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
    from pydantic_ai.messages import (
        ModelMessage,
        ModelMessagesTypeAdapter,
        ModelRequest,
        ModelRequestPart,
        ModelResponse,
        ModelResponsePart,
        SystemPromptPart,
        TextPart,
        ToolCallPart,
        ToolReturnPart,
        UserPromptPart,
    )
    from pydantic_core import PydanticSerializationError, ValidationError
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise MissingDependencyError(
        "agentcore.integrations.pydantic_ai needs the pydantic-ai-slim package: "
        "pip install 'agentcore-history[pydantic-ai]'"
    ) from exc

DEFAULT_AGENT_NAME = "pydantic-ai"


class AgentcoreMessageHistory:
    """A Pydantic AI conversation kept in an agentcore repository (async).

    Each ``ModelMessage`` is stored as one agentcore message whose exact item
    is the message's own JSON form (``ModelMessagesTypeAdapter``, JSON mode),
    so it reads back with the same JSON: every part kind, usage, model and
    provider details, timestamps, and any text, U+0000 and lone surrogates
    included. The agentcore role only classifies the message for agentcore's
    own tools (CLI ``history``, export): a ``ModelResponse`` is ``assistant``;
    a ``ModelRequest`` is ``user`` when it holds a user prompt, ``tool`` when
    it holds tool results and no user prompt, ``system`` when it holds only
    system prompts or instructions.

    Use it around any ``Agent`` run::

        history = AgentcoreMessageHistory("user-42", repo)
        result = await agent.run("Hi", message_history=await history.load())
        await history.append(result.new_messages())

    Args:
        conversation_id: The conversation (agentcore's session id).
        repository: Any agentcore repository (PostgreSQL, or the in-memory
            fake in tests), owned by the caller.
        agent_name: The agentcore agent name the messages are stored under.

    Every method raises agentcore's errors: ``InvalidIdentifierError`` for a
    bad ``conversation_id`` or ``agent_name``, ``InvalidInputError`` for a bad
    ``limit``, ``InvalidMessageError`` for something that is not a
    ``ModelMessage`` or holds a value Pydantic AI cannot write as JSON (nothing
    of the batch is stored), or a stored message Pydantic AI cannot read back;
    ``StorageError`` when the store fails.
    """

    def __init__(
        self,
        conversation_id: str,
        repository: ChatMessageStore,
        *,
        agent_name: str = DEFAULT_AGENT_NAME,
    ) -> None:
        self.conversation_id = conversation_id
        self.agent_name = agent_name
        self._repository = repository

    async def load(self, limit: int | None = None) -> list[ModelMessage]:
        """The latest ``limit`` messages (all when ``None``), oldest first, as a valid window.

        See :func:`valid_window`: when ``limit`` cuts the conversation, the
        window starts at a request, without tool results whose call was cut,
        so it may hold fewer than ``limit`` messages.
        """
        stored = await self._repository.load_history(self.agent_name, self.conversation_id, limit)
        return _loaded(stored, limit)

    async def append(self, messages: Sequence[ModelMessage]) -> None:
        """Append ``messages`` after the stored ones, in one atomic write (all or nothing)."""
        batch = as_batch(messages)
        if batch:
            await self._repository.append_messages(self.agent_name, self.conversation_id, batch)

    async def clear(self) -> None:
        """Delete the conversation."""
        await self._repository.clear_session(self.agent_name, self.conversation_id)


class SyncAgentcoreMessageHistory:
    """:class:`AgentcoreMessageHistory` with blocking methods, for ``agent.run_sync`` code.

    Over a :class:`~agentcore.SyncHistoryRepository` (``from_dsn`` for
    PostgreSQL, ``over`` for the in-memory fake), usable from any thread::

        history = SyncAgentcoreMessageHistory("user-42", sync_repo)
        result = agent.run_sync("Hi", message_history=history.load())
        history.append(result.new_messages())

    Same storage, window and errors as the async class: both read and write
    the same conversations.
    """

    def __init__(
        self,
        conversation_id: str,
        repository: SyncHistoryRepository,
        *,
        agent_name: str = DEFAULT_AGENT_NAME,
    ) -> None:
        self.conversation_id = conversation_id
        self.agent_name = agent_name
        self._repository = repository

    def load(self, limit: int | None = None) -> list[ModelMessage]:
        """The latest ``limit`` messages (all when ``None``), oldest first, as a valid window."""
        stored = self._repository.load_history(self.agent_name, self.conversation_id, limit)
        return _loaded(stored, limit)

    def append(self, messages: Sequence[ModelMessage]) -> None:
        """Append ``messages`` after the stored ones, in one atomic write (all or nothing)."""
        batch = as_batch(messages)
        if batch:
            self._repository.append_messages(self.agent_name, self.conversation_id, batch)

    def clear(self) -> None:
        """Delete the conversation."""
        self._repository.clear_session(self.agent_name, self.conversation_id)


def valid_window(messages: Sequence[ModelMessage]) -> list[ModelMessage]:
    """``messages`` (the tail of a conversation) cut to a window a provider accepts.

    A window starts with a ``ModelRequest``: leading ``ModelResponse`` s are
    dropped (Anthropic's and Gemini's APIs refuse a conversation that starts
    with the model's turn, and a response's tool calls would have their
    results in the next request anyway). The first request's parts that answer
    a tool call (``ToolReturnPart``, ``RetryPromptPart``, any part with a
    ``tool_call_id``) answer one that was cut, so they are removed; a request
    left with no parts is dropped too. Every other message is returned as it
    was stored.
    """
    window = list(messages)
    while window:
        first = window[0]
        if isinstance(first, ModelResponse):
            del window[0]
            continue
        kept = [part for part in first.parts if getattr(part, "tool_call_id", None) is None]
        if not kept:
            del window[0]
            continue
        if len(kept) != len(first.parts):
            window[0] = dataclasses.replace(first, parts=kept)
        break
    return window


def as_batch(messages: Sequence[ModelMessage]) -> list[MessageInput]:
    """Pydantic AI messages as agentcore messages that carry their JSON form exactly.

    Plain dicts: the repository validates them (JSON values only, size) and
    raises its own errors, for the whole batch before storing any.
    """
    return [_as_message(index, message) for index, message in enumerate(messages)]


def _as_message(index: int, message: object) -> MessageInput:
    if not isinstance(message, ModelRequest | ModelResponse):
        raise InvalidMessageError(
            f"messages[{index}] is a {type(message).__name__}, not a Pydantic AI ModelMessage "
            "(ModelRequest or ModelResponse)"
        )
    try:
        (item,) = ModelMessagesTypeAdapter.dump_python([message], mode="json")
    except (PydanticSerializationError, ValueError, TypeError) as exc:
        raise InvalidMessageError(
            f"messages[{index}] holds a value Pydantic AI cannot write as JSON: {exc}"
        ) from exc
    return {"role": _role(message), "item": item}


def _role(message: ModelMessage) -> Role:
    if isinstance(message, ModelResponse):
        return "assistant"
    parts = message.parts
    if any(isinstance(part, UserPromptPart) for part in parts):
        return "user"
    if any(getattr(part, "tool_call_id", None) is not None for part in parts):
        return "tool"
    if parts and all(isinstance(part, SystemPromptPart) for part in parts):
        return "system"
    return "user"


def _loaded(stored: Sequence[Message], limit: int | None) -> list[ModelMessage]:
    messages = [_as_model_message(index, message) for index, message in enumerate(stored)]
    return messages if limit is None else valid_window(messages)


def _as_model_message(index: int, message: Message) -> ModelMessage:
    if message.item is None:
        # A message stored by agentcore itself (an Agent's turn): its chat form.
        return _from_chat(message)
    try:
        (loaded,) = ModelMessagesTypeAdapter.validate_python([message.item])
    except ValidationError as exc:
        raise InvalidMessageError(
            f"stored message {index} of the window (oldest first) is not one Pydantic AI "
            f"can read: {exc}"
        ) from exc
    return loaded


def _from_chat(message: Message) -> ModelMessage:
    text = message.content or ""
    stamp: dict[str, Any] = {} if message.created_at is None else {"timestamp": message.created_at}
    if message.role == "assistant":
        parts: list[ModelResponsePart] = [TextPart(text)] if text else []
        for call in message.tool_calls or []:
            function = call.get("function")
            function = function if isinstance(function, dict) else {}
            parts.append(
                ToolCallPart(
                    str(function.get("name", "")),
                    function.get("arguments"),  # type: ignore[arg-type]
                    tool_call_id=str(call.get("id", "")),
                )
            )
        return ModelResponse(parts=parts, **stamp)
    request_part: ModelRequestPart
    if message.role == "system":
        request_part = SystemPromptPart(text, **stamp)
    elif message.role == "tool":
        request_part = ToolReturnPart(
            message.name or "", text, tool_call_id=message.tool_call_id or "", **stamp
        )
    else:
        request_part = UserPromptPart(text, **stamp)
    return ModelRequest(parts=[request_part])
