"""The model port: what the agent needs from a chat model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from agentcore.models import AgentConfig, Message


@runtime_checkable
class ModelClient(Protocol):
    """Something that answers a conversation with one assistant message.

    Implementations should raise :class:`~agentcore.errors.ModelError` when they
    cannot answer; the agent wraps any other exception in one.
    """

    async def complete(self, messages: Sequence[Message], *, config: AgentConfig) -> Message:
        """Reply to ``messages``.

        Args:
            messages: The conversation the model sees, oldest first: the
                agent's instructions (a ``system`` message), the loaded history
                and the new input.
            config: The calling agent's configuration (its ``model`` name...).

        Returns:
            The reply, an ``assistant`` message.

        Raises:
            ModelError: no reply could be produced.
        """
        ...
