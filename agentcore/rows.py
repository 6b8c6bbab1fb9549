"""Pure conversions between database rows and agentcore models (no I/O)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from psycopg.types.json import Jsonb
from pydantic import BaseModel

from agentcore.exact_json import exact_json, needs_text_carrier
from agentcore.models import Message, Role, SessionInfo
from agentcore.validation import is_plain_message

MessageRow = tuple[
    str, str | None, str | None, str | None, str | None, str, str | None, datetime, str | None
]
"""The columns of ``load_last_messages``, in order (the JSON columns as text)."""

_JSON_FIELDS = ("role", "content", "name", "tool_calls", "tool_call_id", "metadata", "id")
# One stateless encoder: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


_MESSAGE_FIELDS = frozenset(Message.model_fields)
_new_message = Message.__new__
# The slots of a pydantic model, set through their descriptors: cheaper than
# object.__setattr__, which looks each one up on the type first.
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def message_from_row(row: MessageRow) -> Message:
    """Build a :class:`Message` from a stored row (already validated on the way in)."""
    role, content, name, tool_calls, tool_call_id, metadata, message_id, created_at, item = row
    if created_at.tzinfo is not UTC:  # _utc, inline: it runs for every row of a load
        created_at = created_at.astimezone(UTC)
    # Every stored row passed prepare_messages, so it is not validated again.
    # This is what Message.model_construct does, minus its per-field loop: a
    # load builds up to `limit` messages per call, and model_construct alone was
    # a third of a turn's client CPU (bench/NOTES.md). The result is equal
    # to model_construct's (tests/unit/test_rows.py checks it).
    message = _new_message(Message)
    _set_dict(
        message,
        {
            "role": cast(Role, role),
            "content": content,
            "name": name,
            "tool_calls": None if tool_calls is None else json.loads(tool_calls),
            "tool_call_id": tool_call_id,
            # Most messages carry no metadata; a fresh dict per message, never shared.
            "metadata": {} if metadata == "{}" else json.loads(metadata),
            "id": message_id,
            "created_at": created_at,
            # json, not jsonb: the text as it was written, so floats stay floats.
            "item": None if item is None else json.loads(item),
        },
    )
    _set_fields_set(message, set(_MESSAGE_FIELDS))
    _set_extra(message, None)
    _set_private(message, None)
    return message


def messages_from_rows_newest_first(rows: Sequence[MessageRow]) -> list[Message]:
    """Rows fetched newest first, as messages oldest first."""
    return [message_from_row(row) for row in reversed(rows)]


JSONB_BYTES_PER_JSON_CHAR = 8
"""An upper bound of the bytes PostgreSQL's jsonb takes per character of JSON text.

The worst case is small numbers: ``1,`` (2 characters) becomes a 4-byte
entry, up to 3 bytes of alignment and a 5-byte numeric, 6 bytes per
character; strings take their UTF-8 size (at most 4 bytes per character),
containers and literals less. tests/integration/test_large_batches.py checks
the bound on the server.
"""


def _json_item(message: Message) -> dict[str, Any]:
    fields = message.__dict__  # one dict lookup per field instead of an attribute lookup
    item = {f: fields[f] for f in _JSON_FIELDS if fields[f] is not None}
    if not item.get("metadata", True):
        del item["metadata"]  # empty (most messages): the statements store {} for none
    created_at = fields["created_at"]
    if created_at is not None:
        item["created_at"] = created_at.isoformat()
    return item


def _message_json(message: Message) -> str:
    """One message as the JSON object an append statement reads.

    Its ``item`` is spliced in as its exact JSON text (:func:`item_to_json`),
    encoded once: under ``"item"`` when the statements can read it from there,
    else as a string under ``"item_json"``
    (:func:`agentcore.exact_json.needs_text_carrier`).
    """
    text = _ENCODER.encode(_json_item(message))
    item = message.__dict__["item"]
    if item is None:
        return text
    item_text = item_to_json(item)
    if needs_text_carrier(item_text):
        return f'{text[:-1]},"item_json":{_ENCODER.encode(item_text)}}}'
    return f'{text[:-1]},"item":{item_text}}}'


def item_to_json(item: dict[str, Any]) -> str:
    """An exact item as the text of its ``json`` column (:mod:`agentcore.exact_json`)."""
    return exact_json(item)


def messages_to_json(messages: Sequence[Message]) -> str:
    """A batch as the JSON array ``append_messages`` reads (``None`` fields left out)."""
    if all(m.__dict__["item"] is None for m in messages):
        return _ENCODER.encode([_json_item(m) for m in messages])
    return "[" + ",".join(map(_message_json, messages)) + "]"


PLAIN_BATCH_MAX = 2
"""The most messages ``append_plain_messages`` takes in one statement."""


def plain_batch_params(messages: Sequence[Message]) -> dict[str, Any] | None:
    """``append_plain_messages``' parameters for ``messages``, or ``None`` if it cannot take them.

    It takes one or two messages that are all plain (a role and a text, see
    :func:`agentcore.validation.is_plain_message`).
    """
    if not 0 < len(messages) <= PLAIN_BATCH_MAX or not all(map(is_plain_message, messages)):
        return None
    first, second = messages[0], messages[-1] if len(messages) == 2 else None
    return {
        "message_count": len(messages),
        "role_0": first.role,
        "content_0": first.content,
        "role_1": None if second is None else second.role,
        "content_1": None if second is None else second.content,
    }


def messages_to_json_chunks(messages: Sequence[Message], max_bytes: int) -> list[tuple[str, int]]:
    """A batch as JSON arrays of at most ``max_bytes`` of jsonb each (estimated from above).

    Returns ``(json_text, message_count)`` per part, in order: one part for
    any ordinary batch; a message whose estimate alone exceeds ``max_bytes``
    is a part of its own.
    """
    text = messages_to_json(messages)
    if len(text) * JSONB_BYTES_PER_JSON_CHAR <= max_bytes:
        return [(text, len(messages))]
    brackets = 2 * JSONB_BYTES_PER_JSON_CHAR
    chunks: list[tuple[str, int]] = []
    part: list[str] = []
    size = brackets
    for message in messages:
        item = _message_json(message)
        # The content is stored as its UTF-8 bytes (at most 4 per character);
        # the rest of the JSON text (escapes of the content included, and the
        # comma before the item) at most JSONB_BYTES_PER_JSON_CHAR per character.
        content = len(message.content or "")
        estimate = JSONB_BYTES_PER_JSON_CHAR * (len(item) + 1 - content) + 4 * content
        if part and size + estimate > max_bytes:
            chunks.append(("[" + ",".join(part) + "]", len(part)))
            part, size = [], brackets
        part.append(item)
        size += estimate
    chunks.append(("[" + ",".join(part) + "]", len(part)))
    return chunks


def message_to_copy_row(
    agent_name: str, session_id: str, seq: int, message: Message, now: datetime
) -> tuple[Any, ...]:
    """One row for ``copy_messages``, in its column order."""
    return (
        agent_name,
        session_id,
        seq,
        message.role,
        message.content,
        message.name,
        None if message.tool_calls is None else Jsonb(message.tool_calls),
        message.tool_call_id,
        Jsonb(message.metadata),
        message.id,
        message.created_at or now,
        None if message.item is None else item_to_json(message.item),
    )


SessionRow = tuple[str, int, datetime, datetime, str]
"""The columns of ``list_sessions`` and its kin, in order (metadata as text)."""


def session_from_row(agent_name: str, row: SessionRow) -> SessionInfo:
    """Build a :class:`SessionInfo` from a ``list_sessions`` row."""
    session_id, message_count, created_at, updated_at, metadata = row
    return SessionInfo(
        agent_name=agent_name,
        session_id=session_id,
        message_count=message_count,
        created_at=_utc(created_at),
        updated_at=_utc(updated_at),
        metadata={} if metadata == "{}" else json.loads(metadata),
    )


def metadata_to_json(metadata: dict[str, Any]) -> str:
    """A conversation's metadata as the JSON text its jsonb column reads."""
    return _ENCODER.encode(metadata)


def _utc(when: datetime) -> datetime:
    # psycopg returns timestamptz in the server's TimeZone (a ZoneInfo, even
    # for UTC); the fake and validated input use datetime.UTC. Converting every
    # value keeps them equal: Python never calls a datetime in a DST zone with
    # fold=1 equal to one in another zone (PEP 495).
    return when if when.tzinfo is UTC else when.astimezone(UTC)
