"""How the CLI prints messages and sessions (pure functions, no I/O)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agentcore.errors import AgentcoreError, SchemaNotReadyError
from agentcore.models import Message, SessionInfo


def message_line(message: Message, *, indent: str = "") -> str:
    """One message as ``role: text``, continuation lines indented under the text."""
    text = message.content if message.content is not None else ""
    if message.tool_calls:
        names = ", ".join(str(call.get("function", call)) for call in message.tool_calls)
        text = f"{text} [tool calls: {names}]".strip()
    if message.role == "tool":
        text = f"[result of {message.tool_call_id}] {text}"
    head = f"{indent}{message.role:>9}: "
    lines = text.splitlines() or [""]
    pad = "\n" + " " * len(head)
    return head + pad.join(lines)


def messages_text(messages: Sequence[Message]) -> str:
    """A conversation, one message per line, with the time each was stored."""
    rows = []
    for message in messages:
        stamp = message.created_at.strftime("%Y-%m-%d %H:%M:%S") if message.created_at else ""
        rows.append(message_line(message, indent=f"{stamp}  "))
    return "\n".join(rows)


def messages_json(messages: Sequence[Message]) -> str:
    """A conversation as a JSON array of message objects."""
    return _dumps([m.model_dump(mode="json") for m in messages])


def sessions_text(sessions: Sequence[SessionInfo]) -> str:
    """An aligned table: session id, message count, last write (UTC)."""
    width = max([len("SESSION"), *(len(s.session_id) for s in sessions)])
    rows = [f"{'SESSION':<{width}}  {'MESSAGES':>8}  LAST WRITTEN (UTC)"]
    for s in sessions:
        when = s.updated_at.strftime("%Y-%m-%d %H:%M:%S")
        rows.append(f"{s.session_id:<{width}}  {s.message_count:>8}  {when}")
    return "\n".join(rows)


def sessions_json(sessions: Sequence[SessionInfo]) -> str:
    """Sessions as a JSON array of objects."""
    return _dumps([s.model_dump(mode="json") for s in sessions])


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def describe(exc: AgentcoreError) -> str:
    """The error as one line (driver messages often span several)."""
    if isinstance(exc, SchemaNotReadyError):
        return (
            "migrations not applied: agentcore's tables are missing or out of date "
            "in this database; run `agentcore migrate up` with the same --dsn"
        )
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__
