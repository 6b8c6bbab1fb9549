"""One agent turn: load the session's history, call the model, append the turn."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from agentcore.errors import AgentcoreError, InvalidInputError, ModelError
from agentcore.model_client import ModelClient
from agentcore.models import AgentConfig, AgentResult, Message
from agentcore.repository import HistoryRepository
from agentcore.validation import DEFAULT_MAX_CONTENT_CHARS, check_identifier, prepare_messages

logger = logging.getLogger("agentcore.agent")

_INPUT_ROLES = ("user", "tool")


class Agent:
    """Runs turns of one configured agent against a model, with optional history.

    Args:
        config: The agent's configuration.
        model: The model client that produces replies.
        history: Where the agent's conversations are kept. Without it (or
            without ``config.include_history``) turns are neither loaded nor stored.
            When it has a ``max_content_chars`` attribute (both agentcore
            repositories do), the input is checked against that limit before
            the model is called.

    Raises:
        InvalidIdentifierError: ``config.name`` is not a usable agent name.
    """

    def __init__(
        self,
        config: AgentConfig,
        model: ModelClient,
        history: HistoryRepository | None = None,
    ) -> None:
        check_identifier(config.name, "AgentConfig.name")
        self.config = config
        self._model = model
        self._history = history
        # Checked before the model is called, against the store's own limit, so
        # a turn the store would refuse costs no model call.
        self._max_content_chars: int = getattr(
            history, "max_content_chars", DEFAULT_MAX_CONTENT_CHARS
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

        Args:
            input: The user's text, or a ``user`` or ``tool`` :class:`Message`.
            session_id: The conversation this turn belongs to.

        Returns:
            The reply's text and the two messages of the turn.

        Raises:
            InvalidInputError: ``input`` is not a string or a user/tool message.
            InvalidIdentifierError: ``session_id`` is not a usable id.
            ModelError: the model failed; nothing was stored.
            StorageError: loading or storing failed; nothing was stored.
        """
        message = _input_message(input, self._max_content_chars)
        if session_id is not None:
            check_identifier(session_id, "session_id")
        history = self._history_for(session_id)

        window: list[Message] = []
        if history is not None:
            stored = await history.load_history(
                self.config.name, session_id, limit=self.config.history_limit
            )
            window = without_orphaned_tool_results(stored)

        instructions = (
            [Message(role="system", content=self.config.instructions)]
            if self.config.instructions
            else []
        )
        reply = await self._complete([*instructions, *window, message])

        if history is not None:
            await history.append_messages(self.config.name, session_id, [message, reply])
        return AgentResult(
            agent_name=self.config.name,
            output=reply.content or "",
            messages=[message, reply],
            session_id=session_id,
        )

    def _history_for(self, session_id: str | None) -> HistoryRepository | None:
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
    return prepare_messages([message], max_content_chars=max_content_chars)[0]
