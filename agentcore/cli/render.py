"""How the CLI prints messages and sessions (pure functions, no I/O).

Everything shown as text passes through :func:`escape` first: stored content,
ids, model replies, paths and error messages may hold terminal control
characters (ESC sequences that retitle or clear the terminal, write the
clipboard through OSC 52, move the cursor to forge a table row...), and a
terminal must never receive them raw. ``--json`` output is exact instead:
JSON escapes every control character itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from agentcore.dsn import redact
from agentcore.errors import AgentcoreError
from agentcore.models import Message, SessionInfo

_UNSAFE = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f"  # C0, DEL, C1 (CSI is \x9b on its own)
    "\u2028\u2029"  # line and paragraph separators
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks, embeddings, overrides, isolates
    "]"
)
_UNSAFE_EXCEPT_NEWLINE = re.compile(_UNSAFE.pattern.replace("\x00-\x1f", "\x00-\x09\x0b-\x1f"))
_CRLF = re.compile("\r\n")
_UNSAFE_IN_JSON = re.compile(_UNSAFE.pattern.replace("\x00-\x1f", "\ud800-\udfff"))
"""What ``json.dumps`` leaves raw (it escapes only C0), and surrogates (which
only an exact item holds): written as ``\\uXXXX``, still exact."""


def escape(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` made safe to write to a terminal.

    Control characters (C0, DEL, C1), Unicode line and paragraph separators
    and the bidirectional-text controls (which can make a line read
    differently from what it holds) are written as Python escapes:
    ``"\\x1b"``, ``"\\r"``, ``"\\u202e"``. Everything else is kept as is.

    Args:
        text: What to show.
        keep_newlines: Keep ``"\\n"`` (and ``"\\r\\n"``, as ``"\\n"``) as line
            breaks, for multi-line message content; otherwise they are
            escaped too, for one-line fields such as ids.
    """
    if keep_newlines:
        return _UNSAFE_EXCEPT_NEWLINE.sub(_escaped, _CRLF.sub("\n", text))
    return _UNSAFE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    return repr(match.group())[1:-1]


def counted(count: int, noun: str, *, grouped: bool = False) -> str:
    """``1 message``, ``0 messages``, ``2 messages``: ``noun`` is singular, its plural adds s.

    Args:
        count: How many.
        noun: What is counted, in the singular.
        grouped: Write thousands with commas (``1,000``), as progress lines do.
    """
    number = f"{count:,}" if grouped else str(count)
    return f"{number} {noun}" if count == 1 else f"{number} {noun}s"


def message_line(message: Message, *, indent: str = "") -> str:
    """One message as ``role: text``, continuation lines indented under the text."""
    text = message.content if message.content is not None else ""
    if message.tool_calls:
        names = ", ".join(str(call.get("function", call)) for call in message.tool_calls)
        text = f"{text} [tool calls: {names}]".strip()
    if message.role == "tool":
        text = f"[result of {message.tool_call_id}] {text}"
    head = f"{indent}{escape(message.role):>9}: "
    lines = escape(text, keep_newlines=True).split("\n")
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
    return json_text([message_fields(m) for m in messages])


def message_fields(message: Message) -> dict[str, Any]:
    """A message as a JSON object, its exact item as stored.

    pydantic's JSON mode would replace a lone surrogate in an item's key;
    :func:`json_text` writes it as an escape instead.
    """
    fields = message.model_dump(mode="json")
    if message.item is not None:
        fields["item"] = message.item
    return fields


def sessions_text(sessions: Sequence[SessionInfo]) -> str:
    """An aligned table: session id, message count, last write (UTC)."""
    ids = [escape(s.session_id) for s in sessions]
    width = max([len("SESSION"), *map(len, ids)])
    rows = [f"{'SESSION':<{width}}  {'MESSAGES':>8}  LAST WRITTEN (UTC)"]
    for shown, s in zip(ids, sessions, strict=True):
        # Minutes: the stored time is coarse (a write refreshes it at most
        # once a minute, see migration 0005), so seconds would be noise.
        when = s.updated_at.strftime("%Y-%m-%d %H:%M")
        rows.append(f"{shown:<{width}}  {s.message_count:>8}  {when}")
    return "\n".join(rows)


def sessions_json(sessions: Sequence[SessionInfo]) -> str:
    """Sessions as a JSON array of objects."""
    return json_text([s.model_dump(mode="json") for s in sessions])


def json_text(value: Any) -> str:
    """``value`` as indented JSON, safe for a terminal, and exact.

    What could mislead a terminal (:func:`escape`'s characters) and lone
    surrogates (which UTF-8 cannot encode; an exact item may hold them) are
    written as ``\\uXXXX`` escapes.
    """
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def describe(exc: AgentcoreError, *, dsns: Sequence[str] = ()) -> str:
    """The error as one safe line (driver messages often span several).

    The passwords of ``dsns`` are hidden, wherever a driver's text quotes them.
    """
    lines = [line.strip() for line in redacted(str(exc), dsns).splitlines() if line.strip()]
    return escape("; ".join(lines)) or type(exc).__name__


def redacted(text: str, dsns: Sequence[str]) -> str:
    """``text`` without any part of the passwords of ``dsns`` (:func:`agentcore.dsn.redact`)."""
    for dsn in dsns:
        text = redact(text, dsn)
    return text
