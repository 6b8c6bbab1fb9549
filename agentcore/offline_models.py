"""Model clients that need no network: a demo echo and a scripted test double."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from agentcore.errors import ModelError
from agentcore.models import AgentConfig, Message

_QUOTE_CHARS = 80


class EchoModel:
    """A deterministic model that shows what it remembers.

    It quotes the latest message and counts the earlier messages it was shown
    (the system prompt does not count), so history at work is visible::

        echo: "and now?" (I remember 2 earlier messages; you first said "hello")
    """

    async def complete(self, messages: Sequence[Message], *, config: AgentConfig) -> Message:
        """Reply with an echo of the last message; see the class docstring."""
        conversation = [m for m in messages if m.role != "system"]
        if not conversation:
            return Message(role="assistant", content="echo: (nothing to echo)")
        *earlier, latest = conversation
        said = _quote(latest.content or "")
        prefix = "echo tool result" if latest.role == "tool" else "echo"
        if not earlier:
            memory = "I remember no earlier messages"
        else:
            plural = "" if len(earlier) == 1 else "s"
            memory = f"I remember {len(earlier)} earlier message{plural}"
            first_user = next((m for m in earlier if m.role == "user"), None)
            if first_user is not None:
                memory += f"; you first said {_quote(first_user.content or '')}"
        return Message(role="assistant", content=f"{prefix}: {said} ({memory})")


def _quote(text: str) -> str:
    if len(text) > _QUOTE_CHARS:
        text = text[: _QUOTE_CHARS - 1] + "…"
    return f'"{text}"'


class ScriptedModel:
    """A test double: returns the given replies in order and records every call.

    Args:
        replies: Each item is the next reply: a string (an assistant message
            with that content), a :class:`Message`, or an exception to raise.

    Attributes:
        calls: The message list of every call, in call order.
        configs: The ``config`` of every call, in call order.
    """

    def __init__(self, replies: Iterable[str | Message | BaseException]) -> None:
        self._replies = list(replies)
        self._next = 0
        self.calls: list[list[Message]] = []
        self.configs: list[AgentConfig] = []

    async def complete(self, messages: Sequence[Message], *, config: AgentConfig) -> Message:
        """Record the call and return (or raise) the next scripted reply.

        Raises:
            ModelError: every scripted reply has been used.
        """
        self.calls.append(list(messages))
        self.configs.append(config)
        if self._next >= len(self._replies):
            raise ModelError(
                f"ScriptedModel has no reply left: it was given {len(self._replies)} "
                f"and this is call {len(self.calls)}"
            )
        reply = self._replies[self._next]
        self._next += 1
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, str):
            return Message(role="assistant", content=reply)
        return reply
