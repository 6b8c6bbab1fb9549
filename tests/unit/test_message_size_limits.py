"""The arithmetic that keeps every message, and every part of a split batch, within jsonb.

A real batch just over PostgreSQL's jsonb limit takes tens of seconds and
gigabytes on the server, so the limit is checked by arithmetic here, and the
per-character bound it relies on is checked on the server in
tests/integration/test_large_batches.py.
"""

from __future__ import annotations

import json

from agentcore.models import Message
from agentcore.rows import JSONB_BYTES_PER_JSON_CHAR, messages_to_json, messages_to_json_chunks
from agentcore.validation import (
    MAX_CONTENT_CHARS_LIMIT,
    MAX_ID_LENGTH,
    MAX_JSON_FIELD_BYTES,
    MAX_TEXT_FIELD_CHARS,
)

JSONB_MAX_BYTES = 268_435_455  # PostgreSQL: JENTRY_OFFLENMASK, the largest jsonb
# Keys, quotes, role and a created_at: far more than a message's JSON has besides its fields.
OVERHEAD_CHARS = 1_000


def test_the_largest_valid_message_fits_in_one_jsonb_value() -> None:
    worst = (
        4 * MAX_CONTENT_CHARS_LIMIT  # content: its UTF-8 bytes
        + JSONB_BYTES_PER_JSON_CHAR * 2 * MAX_JSON_FIELD_BYTES  # metadata, tool_calls
        + JSONB_BYTES_PER_JSON_CHAR * (2 * MAX_TEXT_FIELD_CHARS + MAX_ID_LENGTH + OVERHEAD_CHARS)
    )
    assert worst < JSONB_MAX_BYTES, (worst, JSONB_MAX_BYTES)


def _messages(n: int) -> list[Message]:
    return [
        Message(role="user", content=f"m{i} " + "\x1b\U0001f600" * (i % 40), id=f"id-{i}")
        for i in range(n)
    ]


def test_an_ordinary_batch_is_one_part() -> None:
    batch = _messages(50)
    assert messages_to_json_chunks(batch, 64 * 2**20) == [(messages_to_json(batch), 50)]


def test_parts_keep_the_order_and_stay_within_the_bound() -> None:
    batch = _messages(200)
    limit = 3_000
    parts = messages_to_json_chunks(batch, limit)
    assert len(parts) > 10
    decoded = [item for text, n in parts for item in _checked(text, n)]
    assert decoded == json.loads(messages_to_json(batch))
    for text, n in parts:
        content = sum(len(m["content"]) for m in json.loads(text))
        estimate = JSONB_BYTES_PER_JSON_CHAR * (len(text) - content) + 4 * content
        assert n == 1 or estimate <= limit


def test_a_message_larger_than_a_part_is_a_part_of_its_own() -> None:
    big = Message(role="user", content="x" * 10_000)
    parts = messages_to_json_chunks([*_messages(3), big, *_messages(2)], 2_000)
    alone = [json.loads(text) for text, n in parts if n == 1]
    assert [m["content"] for (m,) in alone if m["content"] == big.content] == [big.content]
    assert sum(n for _, n in parts) == 6


def _checked(text: str, n: int) -> list[object]:
    items = json.loads(text)
    assert len(items) == n
    return list(items)
