from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from agentcore.models import Message
from agentcore.rows import MessageRow, message_from_row

NOW = datetime(2025, 5, 5, 12, 0, tzinfo=UTC)
ROWS: list[MessageRow] = [
    ("user", "hello", None, None, None, "{}", None, NOW, None),
    (
        "assistant",
        None,
        "bot",
        '[{"id": "c1", "type": "function"}]',
        None,
        '{"k": [1, 2]}',
        "m1",
        NOW,
        None,
    ),
    ("tool", "42", None, None, "c1", "{}", None, NOW, None),
    ("tool", None, None, None, None, "{}", None, NOW, '{"type": "x", "b": 1e+16, "a": [-0.0]}'),
]


@pytest.mark.parametrize("row", ROWS)
def test_message_from_row_equals_a_validated_message(row: MessageRow) -> None:
    role, content, name, tool_calls, tool_call_id, metadata, message_id, created_at, item = row
    validated = Message(
        role=role,
        content=content,
        name=name,
        tool_calls=None if tool_calls is None else json.loads(tool_calls),
        tool_call_id=tool_call_id,
        metadata=json.loads(metadata),
        id=message_id,
        created_at=created_at,
        item=None if item is None else json.loads(item),
    )
    built = message_from_row(row)
    assert built == validated
    assert built.model_dump() == validated.model_dump()
    assert built.model_fields_set == set(Message.model_fields)
    assert built.model_dump_json() == validated.model_dump_json()


def test_message_from_row_is_frozen_and_copies_independently() -> None:
    built = message_from_row(ROWS[0])
    with pytest.raises(Exception, match="frozen"):
        built.content = "changed"  # type: ignore[misc]
    copy = built.model_copy(update={"content": "other"})
    assert (built.content, copy.content) == ("hello", "other")
    assert built.model_fields_set == set(Message.model_fields)
    other = message_from_row(ROWS[0])
    assert other.model_fields_set is not built.model_fields_set


def test_rows_never_share_a_metadata_dict() -> None:
    first, second = message_from_row(ROWS[0]), message_from_row(ROWS[0])
    assert first.metadata == second.metadata == {}
    assert first.metadata is not second.metadata
