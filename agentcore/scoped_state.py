"""Scoped state: a port that both repositories implement, beside :class:`HistoryRepository`.

A conversation may carry key/value state at three scopes: its own, its
owner's (shared by every conversation of one owner of an agent) and its
agent's (shared by all its conversations). A write of messages and of the
state changes that go with them is one transaction: both or neither. This is
what Google ADK's sessions need (``agentcore.integrations.google_adk``), kept
in agentcore's schema (migration 0007) and checked by one contract suite
(tests/contract/test_scoped_state_contract.py) on both repositories.

A conversation's own state lives as long as the conversation: deleting the
conversation by any path (``delete_scoped_session``, ``clear_session``, an
empty ``save_full_history``, ``purge_idle_sessions``) deletes it too (in
PostgreSQL a foreign key, ON DELETE CASCADE); the owner's and the agent's
states are shared and stay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from agentcore.models import Message
from agentcore.validation import MessageInput


class ScopedSession(BaseModel):
    """A conversation with scoped state, without its messages.

    Attributes:
        agent_name: The agent.
        session_id: The conversation.
        owner: Whose conversation it is (also its metadata ``owner``).
        state: The conversation's own state.
        owner_state: Its owner's state, as it was read.
        agent_state: Its agent's state, as it was read.
        revision: How many state writes the conversation has had; a write
            that names an older one is refused (:class:`~agentcore.StaleStateError`).
        update_time: The time the last write gave (seconds since the epoch,
            as the caller keeps it; stored exactly).
        created_at: When the conversation was created.
    """

    model_config = ConfigDict(frozen=True)

    agent_name: str
    session_id: str
    owner: str
    state: dict[str, Any] = Field(default_factory=dict)
    owner_state: dict[str, Any] = Field(default_factory=dict)
    agent_state: dict[str, Any] = Field(default_factory=dict)
    revision: int
    update_time: float
    created_at: datetime


@runtime_checkable
class ScopedStateStore(Protocol):
    """Conversations with scoped state (see the module's docstring).

    Identifiers are checked as :class:`~agentcore.HistoryRepository` checks
    them (``InvalidIdentifierError``); states must be JSON objects that jsonb
    can hold (``InvalidInputError``); messages as ``append_messages`` takes
    them (``InvalidMessageError``). Nothing is written when anything is refused.
    """

    async def create_scoped_session(
        self,
        agent_name: str,
        session_id: str,
        *,
        owner: str,
        update_time: float,
        state: Mapping[str, Any] | None = None,
        owner_state: Mapping[str, Any] | None = None,
        agent_state: Mapping[str, Any] | None = None,
    ) -> ScopedSession:
        """Create an empty conversation owned by ``owner``, with its state.

        ``owner_state`` and ``agent_state`` are merged into the owner's and
        the agent's state, in the same transaction.

        Raises:
            SessionExistsError: the conversation exists (scoped or not).
        """
        ...

    async def get_scoped_session(
        self,
        agent_name: str,
        session_id: str,
        *,
        owner: str,
        limit: int | None = None,
        since: datetime | None = None,
    ) -> tuple[ScopedSession, list[Message]] | None:
        """The conversation, with its latest ``limit`` messages written at or after ``since``.

        ``None`` when there is no such scoped conversation, or ``owner`` does
        not own it. ``limit`` 0 reads no message; ``None`` all of them.
        """
        ...

    async def list_scoped_sessions(
        self, agent_name: str, *, owner: str | None = None
    ) -> list[ScopedSession]:
        """The agent's scoped conversations (``owner``'s only, if given), with their states.

        Least recently updated first; ties by owner, then session id, in code
        point order. No message is read.
        """
        ...

    async def append_with_state(
        self,
        agent_name: str,
        session_id: str,
        messages: Sequence[MessageInput],
        *,
        owner: str,
        update_time: float,
        expected_revision: int | None = None,
        state: Mapping[str, Any] | None = None,
        owner_state: Mapping[str, Any] | None = None,
        agent_state: Mapping[str, Any] | None = None,
    ) -> ScopedSession:
        """Append ``messages`` and merge the three state deltas, in one transaction.

        The conversation's revision moves by one and its update time becomes
        ``update_time``. Returns the conversation as written (its owner's and
        agent's state as they are after the write).

        Raises:
            NotFoundError: no such scoped conversation, or not ``owner``'s.
            StaleStateError: ``expected_revision`` is given and is not the
                conversation's revision.
        """
        ...

    async def delete_scoped_session(self, agent_name: str, session_id: str, *, owner: str) -> bool:
        """Delete the conversation, its messages and its own state, if ``owner``'s.

        The owner's and the agent's state stay. ``False`` when there was none.
        """
        ...

    async def get_owner_state(self, agent_name: str, owner: str) -> dict[str, Any]:
        """An owner's state (empty when none is stored)."""
        ...

    async def get_agent_state(self, agent_name: str) -> dict[str, Any]:
        """An agent's state (empty when none is stored)."""
        ...
