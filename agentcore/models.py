"""The pydantic models that cross agentcore's boundary."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, model_validator

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant", "tool")

DEFAULT_HISTORY_LIMIT = 50
"""How many of the latest stored messages an agent sees by default (its ``history_limit``)."""


class Message(BaseModel):
    """One chat message, in the shape of an OpenAI-style chat message.

    Attributes:
        role: ``system``, ``user``, ``assistant`` or ``tool``. For a message that
            carries an ``item``, the role classifies the item for agentcore
            (an agent's window starts after leading ``tool`` messages); the
            item itself keeps whatever role it has, or none.
        content: The text. May be ``None`` only for an assistant message that
            carries ``tool_calls``, or for any message that carries an ``item``.
        name: Optional participant name.
        tool_calls: The tool calls of an assistant message, stored verbatim.
        tool_call_id: The call a ``tool`` message answers (required for ``tool``).
        metadata: Free-form JSON kept with the message; never sent to a model.
            ``metadata`` and ``tool_calls`` are stored as PostgreSQL's jsonb
            keeps them, by both repositories alike: equal to what was given,
            but object keys come back shortest first, and a float written in
            exponent form (``1e+16``) comes back as an int.
        id: Optional client-chosen id. Within one conversation an id is stored at
            most once, so re-appending a message with a stored id is a no-op.
        created_at: When the message was stored. Set by the repository when
            absent; a timezone-aware value given by the caller is kept as the
            same instant, in UTC (from 0001-01-08 to 9999-12-24 UTC: a week
            inside Python's range, so that it reads back in any server time zone).
        item: A framework's own record of the message (an OpenAI Agents SDK
            session item, a serialized LangChain message...), stored verbatim:
            it comes back equal to what was given, with its keys in the same
            order and floats still floats (PostgreSQL ``json``, not ``jsonb``).
            Its strings may hold any text, U+0000 and lone surrogates included
            (kept as JSON escapes; a high surrogate followed by a low one comes
            back as the character they encode, as JSON reads it), where
            ``content``, ``name`` and ``tool_call_id`` refuse those two.
            A message with an item needs no ``content`` or ``tool_call_id``:
            the item holds them, and nothing is stored twice.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    content: str | None = None
    name: str | None = None
    tool_calls: list[dict[str, JsonValue]] | None = None
    tool_call_id: str | None = None
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    id: str | None = None
    created_at: AwareDatetime | None = None
    item: dict[str, JsonValue] | None = None

    @model_validator(mode="after")
    def _check_role_fields(self) -> Message:
        problem = self.role_problem()
        if problem:
            raise ValueError(problem)
        return self

    def role_problem(self) -> str | None:
        """What is wrong with this message's role and role-dependent fields, if anything.

        Validation runs it; it is public so that a message built without
        validation (``model_construct``) can be checked too.
        """
        if self.role not in ROLES:
            return f"role must be one of {', '.join(ROLES)}, got {self.role!r}"
        # A message carrying an item keeps its text and call id in the item.
        if self.item is None and self.content is None:
            if not (self.role == "assistant" and self.tool_calls):
                return (
                    "content is required (it may be None only for an assistant message with "
                    "tool_calls or a message with an item)"
                )
        if self.item is None and self.role == "tool" and not self.tool_call_id:
            return "a tool message needs the tool_call_id of the call it answers"
        if self.tool_calls is not None and self.role != "assistant":
            return "only an assistant message can carry tool_calls"
        return None

    def to_chat_dict(self) -> dict[str, Any]:
        """The message as an OpenAI chat-completions message (no id, metadata or time)."""
        return self.model_dump(
            include={"role", "content", "name", "tool_calls", "tool_call_id"},
            exclude_none=True,
        ) | ({"content": None} if self.content is None else {})


class SessionInfo(BaseModel):
    """A summary of one stored conversation, as returned by ``list_sessions``.

    Attributes:
        agent_name: The agent the conversation belongs to.
        session_id: The conversation's session id.
        message_count: How many messages it holds.
        created_at: When its first message was stored.
        updated_at: When a message was last written to it (setting its
            metadata does not count).
        metadata: The conversation's own JSON object, set with
            ``set_session_metadata`` (``{}`` until then). Its ``owner`` key,
            when present, is what ``list_sessions_page(owner=...)`` selects by.
    """

    model_config = ConfigDict(frozen=True)

    agent_name: str
    session_id: str
    message_count: int
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, JsonValue] = Field(default_factory=dict)


class SessionPage(BaseModel):
    """One page of ``list_sessions_page``.

    Attributes:
        sessions: Most recently written first; ties by session id in code point order.
        next_cursor: Pass it as ``after=`` to get the next page; ``None`` on the last page.
    """

    model_config = ConfigDict(frozen=True)

    sessions: list[SessionInfo]
    next_cursor: str | None


class HistoryPage(BaseModel):
    """One page of ``load_history_page``: a conversation read backwards.

    Attributes:
        messages: Up to ``limit`` messages, oldest first, all older than the
            ``before`` cursor the page was asked with.
        next_cursor: Pass it as ``before=`` to get the page of older
            messages; ``None`` when this page starts at the first message.
    """

    model_config = ConfigDict(frozen=True)

    messages: list[Message]
    next_cursor: str | None


class PurgeReport(BaseModel):
    """What ``purge_idle_sessions`` deleted (or, with ``dry_run``, would delete).

    Attributes:
        sessions: Conversations deleted.
        messages: Messages they held.
    """

    model_config = ConfigDict(frozen=True)

    sessions: int = 0
    messages: int = 0

    def plus(self, sessions: int, messages: int) -> PurgeReport:
        """This report with ``sessions`` and ``messages`` more."""
        return PurgeReport(sessions=self.sessions + sessions, messages=self.messages + messages)


class AgentConfig(BaseModel):
    """What an agent is: its name, its instructions and how much history it sees.

    Attributes:
        name: The agent's name; with a session id it keys the stored conversation.
        instructions: The system prompt, sent first on every call (never stored).
        include_history: Load the session's history before calling the model and
            append the turn after. Without it, nothing is read or stored.
        history_limit: How many of the latest stored messages the model sees
            (default 50). Stored history is never truncated by it. ``None``
            reads the whole conversation on every turn: a turn's time and
            memory then grow with the conversation's length, so choose it
            only where conversations stay short.
        model: The model name passed to the model client (clients may have a default).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    instructions: str | None = None
    include_history: bool = False
    history_limit: int | None = Field(default=DEFAULT_HISTORY_LIMIT, ge=0)
    model: str | None = None


class AgentResult(BaseModel):
    """The outcome of one agent turn.

    Attributes:
        agent_name: The agent that ran.
        output: The reply's text (``""`` when the reply holds only tool calls).
        messages: The messages this turn added: the input, then the reply.
        session_id: The session the turn was run under, as given (``None``: none).
    """

    model_config = ConfigDict(frozen=True)

    agent_name: str
    output: str
    messages: list[Message]
    session_id: str | None
