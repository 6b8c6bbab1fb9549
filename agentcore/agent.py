"""One agent turn: load the session's history, call the model, append the turn."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from agentcore.errors import AgentcoreError, InvalidInputError, ModelError
from agentcore.model_client import ModelClient
from agentcore.models import AgentConfig, AgentResult, Message
from agentcore.repository import TurnStore
from agentcore.validation import (
    DEFAULT_MAX_CONTENT_CHARS,
    MAX_ID_BYTES,
    MAX_ID_LENGTH,
    check_identifier,
    check_limit,
    check_max_content_chars,
    id_bytes,
    prepare_messages,
)

logger = logging.getLogger("agentcore.agent")

_INPUT_ROLES = ("user", "tool")


class Agent:
    """Runs turns of one configured agent against a model, with optional history.

    Args:
        config: The agent's configuration.
        model: The model client that produces replies.
        history: Where the agent's conversations are kept: any
            :class:`~agentcore.TurnStore` (``load_history``, ``append_messages``,
            ``get_message``), such as either agentcore repository. Without it
            (or without ``config.include_history``) turns are neither loaded
            nor stored. When it has a ``max_content_chars`` attribute (both
            agentcore repositories do), the input is checked against that
            limit before the model is called.

    Raises:
        InvalidIdentifierError: ``config.name`` is not a usable agent name.
        InvalidInputError: ``config`` is not a valid ``AgentConfig`` (one built
            with ``model_construct`` is checked too), ``model`` has no
            ``complete`` method, or ``history`` is not a ``TurnStore``.
    """

    def __init__(
        self,
        config: AgentConfig,
        model: ModelClient,
        history: TurnStore | None = None,
    ) -> None:
        self.config = _checked_config(config)
        if not isinstance(model, ModelClient):
            raise InvalidInputError(
                "model must be a ModelClient (an object with an async "
                f"complete(messages, *, config) method), got {type(model).__name__}"
            )
        if history is not None and not isinstance(history, TurnStore):
            missing = [m for m in _TURN_STORE_METHODS if not hasattr(history, m)]
            raise InvalidInputError(
                f"history must be a TurnStore, got {type(history).__name__} "
                f"(it lacks {', '.join(missing)})"
            )
        self._model = model
        self._history = history
        # Checked before the model is called, against the store's own limit, so
        # a turn the store would refuse costs no model call.
        self._max_content_chars: int = check_max_content_chars(
            getattr(history, "max_content_chars", DEFAULT_MAX_CONTENT_CHARS)
        )

    async def execute_agent(
        self, input: str | Message, session_id: str | None = None
    ) -> AgentResult:
        """Run one turn.

        With ``config.include_history``, a repository and a ``session_id``: the
        model sees the instructions, the last ``config.history_limit`` stored
        messages of ``(config.name, session_id)`` and ``input``; then the input
        and the reply are appended in one atomic write, so a failed or cancelled
        turn stores both or neither. With ``session_id=None`` a warning is
        logged and nothing is loaded or stored (there is no shared fallback
        conversation).

        A turn is exactly-once per input id: when ``input`` is a
        :class:`Message` with an ``id``, the reply gets the id
        :func:`reply_id_for` derives from it. Running the turn again (a retry
        after a timeout or a lost connection) finds that reply stored and
        returns it without calling the model; a retry racing the original
        stores nothing more and returns the reply the first one stored.

        Args:
            input: The user's text, or a ``user`` or ``tool`` :class:`Message`.
                User input must hold some non-whitespace text.
            session_id: The conversation this turn belongs to.

        Returns:
            The reply's text and the two messages of the turn.

        Raises:
            InvalidInputError: ``input`` is not a string or a user/tool message,
                or it is an empty or blank user text.
            InvalidIdentifierError: ``session_id`` is not a usable id.
            ModelError: the model failed; nothing was stored.
            StorageError: loading or storing failed; nothing was stored.
        """
        message = _input_message(input, self._max_content_chars)
        if session_id is not None:
            check_identifier(session_id, "session_id")
        history = self._history_for(session_id)
        reply_id = None if message.id is None else reply_id_for(message.id)

        window: list[Message] = []
        if history is not None:
            assert session_id is not None
            limit = self.config.history_limit
            stored = await history.load_history(self.config.name, session_id, limit=limit)
            if reply_id is not None:
                earlier = _find(stored, reply_id)
                if earlier is None and limit is not None and len(stored) >= limit:
                    # The window may have cut the earlier turn off: look it up.
                    earlier = await history.get_message(self.config.name, session_id, reply_id)
                if earlier is not None:
                    return self._result(message, _stored_reply(earlier, message), session_id)
            window = without_orphaned_tool_results(stored)

        instructions = (
            [Message(role="system", content=self.config.instructions)]
            if self.config.instructions
            else []
        )
        reply = await self._complete([*instructions, *window, message])
        if reply_id is not None:
            reply = _with_id(reply, reply_id)

        if history is None:
            prepare_messages([message, reply], max_content_chars=self._max_content_chars)
        else:
            assert session_id is not None
            stored_count = await history.append_messages(
                self.config.name, session_id, [message, reply]
            )
            if reply_id is not None and stored_count < 2:
                # Part of the turn was there already: a racing run of the same
                # input stored its reply first. Every run returns that one.
                earlier = await history.get_message(self.config.name, session_id, reply_id)
                if earlier is not None:
                    reply = _stored_reply(earlier, message)
        return self._result(message, reply, session_id)

    def _result(self, message: Message, reply: Message, session_id: str | None) -> AgentResult:
        return AgentResult(
            agent_name=self.config.name,
            output=reply.content or "",
            messages=[message, reply],
            session_id=session_id,
        )

    def _history_for(self, session_id: str | None) -> TurnStore | None:
        if not self.config.include_history or self._history is None:
            return None
        if session_id is None:
            logger.warning(
                "agent %r has include_history set but was run without a session_id: "
                "no history is loaded and this turn is not stored",
                self.config.name,
            )
            return None
        return self._history

    async def _complete(self, messages: list[Message]) -> Message:
        try:
            reply = await self._model.complete(messages, config=self.config)
        except AgentcoreError:
            raise
        except Exception as exc:
            raise ModelError(
                f"model client {type(self._model).__name__} failed for agent "
                f"{self.config.name!r}: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(reply, Message) or reply.role != "assistant":
            raise ModelError(
                f"model client {type(self._model).__name__} must return an assistant Message, "
                f"got {reply!r}"
            )
        return reply


REPLY_ID_SUFFIX = "#reply"
"""Appended to an input message's id to name its turn's reply (see :func:`reply_id_for`)."""

MODEL_REPLY_ID_KEY = "model_reply_id"
"""The reply's ``metadata`` key that keeps the id the model gave its reply, if any."""


def reply_id_for(input_id: str) -> str:
    """The id of the reply to the input message whose id is ``input_id``.

    ``input_id + "#reply"`` when that fits the id limits (255 characters, 768
    bytes of UTF-8); for longer input ids, ``"reply-sha256:"`` and the SHA-256 of the input id in
    hex (77 characters). The same input id always gives the same reply id,
    which is what makes a turn exactly-once per input id.

    Args:
        input_id: A valid message id.

    Returns:
        A valid message id.
    """
    readable = input_id + REPLY_ID_SUFFIX
    if len(readable) <= MAX_ID_LENGTH and id_bytes(readable) <= MAX_ID_BYTES:
        return readable
    return "reply-sha256:" + hashlib.sha256(input_id.encode("utf-8")).hexdigest()


def _with_id(reply: Message, reply_id: str) -> Message:
    if reply.id is None:
        return reply.model_copy(update={"id": reply_id})
    if not isinstance(reply.metadata, dict):
        return reply  # malformed: the store says what is wrong with it
    metadata = {**reply.metadata, MODEL_REPLY_ID_KEY: reply.id}
    return reply.model_copy(update={"id": reply_id, "metadata": metadata})


def _find(messages: Sequence[Message], message_id: str) -> Message | None:
    for message in reversed(messages):
        if message.id == message_id:
            return message
    return None


def _stored_reply(stored: Message, message: Message) -> Message:
    if stored.role != "assistant":
        raise InvalidInputError(
            f"the reply id {stored.id!r} derived from input id {message.id!r} is taken by a "
            f"stored {stored.role} message of this session; use another input id"
        )
    return stored


_TURN_STORE_METHODS = ("load_history", "append_messages", "get_message")
"""The methods of :class:`~agentcore.TurnStore`, named when a ``history`` lacks some."""


def _checked_config(config: object) -> AgentConfig:
    """``config`` if every field holds the type it declares (it may skip validation)."""
    if not isinstance(config, AgentConfig):
        raise InvalidInputError(f"config must be an AgentConfig, got {type(config).__name__}")
    check_identifier(config.name, "AgentConfig.name")
    for field in ("instructions", "model"):
        value = getattr(config, field)
        if value is not None and not isinstance(value, str):
            raise InvalidInputError(
                f"AgentConfig.{field} must be a string or None, got {type(value).__name__}"
            )
    if not isinstance(config.include_history, bool):
        raise InvalidInputError(
            "AgentConfig.include_history must be a bool, "
            f"got {type(config.include_history).__name__}"
        )
    check_limit(config.history_limit, "AgentConfig.history_limit")
    return config


def without_orphaned_tool_results(window: Sequence[Message]) -> list[Message]:
    """Drop the ``tool`` messages a window starts with.

    A history window cut by a limit can begin just after an assistant message
    with ``tool_calls``, leaving its ``tool`` results without their call;
    OpenAI-style servers reject such a conversation.

    Args:
        window: Stored messages, oldest first.

    Returns:
        The window from its first non-``tool`` message on.
    """
    start = 0
    while start < len(window) and window[start].role == "tool":
        start += 1
    return list(window[start:])


def _input_message(input: object, max_content_chars: int) -> Message:
    if isinstance(input, str):
        message = Message(role="user", content=input)
    elif isinstance(input, Message):
        if input.role not in _INPUT_ROLES:
            raise InvalidInputError(
                f"an agent's input must be a user or tool message, got role {input.role!r}"
            )
        message = input
    else:
        raise InvalidInputError(
            f"an agent's input must be a str or a Message, got {type(input).__name__}"
        )
    message = prepare_messages([message], max_content_chars=max_content_chars)[0]
    # A tool result may be empty (a tool that printed nothing); a user turn may not.
    if message.role == "user" and not (message.content or "").strip():
        raise InvalidInputError("an agent's input must not be empty or only whitespace")
    return message
