"""The import's line limit admits the longest line a valid export can hold.

A message with every field at its limit, each filled with the characters that
take the most bytes in an export's JSON (control characters, escaped in six),
is stored, exported, and imported back; its line fits in
:func:`agentcore.transfer.max_line_bytes`, with little to spare. The in-memory
repository stores what PostgreSQL stores (the contract suite holds both to it);
the limit's own behaviour at and over the bound is in
tests/contract/test_transfer_contract.py.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from agentcore import InMemoryHistoryRepository, Message
from agentcore.transfer import (
    JSON_BYTES_PER_CHAR,
    export_jsonl,
    import_jsonl,
    max_line_bytes,
)
from agentcore.validation import (
    MAX_ID_LENGTH,
    MAX_JSON_FIELD_BYTES,
    MAX_SESSION_METADATA_CHARS,
    MAX_TEXT_FIELD_CHARS,
)
from tests.contract.legacy_rows import store_legacy_conversation

WIDE_ID = "\x01" * MAX_ID_LENGTH  # written as 6-byte escapes: the widest id an export holds


def json_of_exactly(size: int) -> dict[str, str]:
    """An object whose compact JSON text is ``size`` bytes, mostly six-byte escapes."""
    room = size - len('{"k":""}')
    return {"k": "\x01" * (room // 6) + "x" * (room % 6)}


def largest_message() -> Message:
    tool_call = json_of_exactly(MAX_JSON_FIELD_BYTES - 2)  # the list's brackets
    return Message(
        role="assistant",
        content="\x01" * 1_000_000,
        name="\x01" * MAX_TEXT_FIELD_CHARS,
        tool_calls=[tool_call],
        tool_call_id="\x01" * MAX_TEXT_FIELD_CHARS,
        metadata=json_of_exactly(MAX_JSON_FIELD_BYTES),
        id=WIDE_ID,
        created_at=datetime(9999, 12, 23, 23, 59, 59, 999999, tzinfo=UTC),
        item=json_of_exactly(MAX_JSON_FIELD_BYTES),
    )


async def test_the_longest_valid_export_line_is_within_the_limit_and_imports() -> None:
    # Ids of control characters: an older version stored them, exports carry
    # them, and no write of today's API stores one.
    source = InMemoryHistoryRepository()
    metadata = json_of_exactly(MAX_SESSION_METADATA_CHARS - 8)
    await store_legacy_conversation(
        source, WIDE_ID, WIDE_ID, [largest_message()], metadata=metadata
    )
    out = io.StringIO()
    await export_jsonl(source, out)
    data = out.getvalue().encode("utf-8")
    limit = max_line_bytes(source.max_content_chars)
    longest = max(len(line) for line in data.splitlines())
    assert longest <= limit
    # The bound is tight: what it allows beyond this line is the ids' and the
    # key words' slack, not megabytes.
    slack = (JSON_BYTES_PER_CHAR - 4) * 3 * MAX_ID_LENGTH + 1024
    assert limit - longest < slack, (limit, longest)

    target = InMemoryHistoryRepository()
    report = await import_jsonl(target, io.BytesIO(data))
    assert (report.sessions, report.messages) == (1, 1)
    assert await target.load_history(WIDE_ID, WIDE_ID) == await source.load_history(
        WIDE_ID, WIDE_ID
    )


def test_the_limit_follows_max_content_chars() -> None:
    assert max_line_bytes(1_000_000) == 43_754_350
    assert max_line_bytes(25_000_000) == 187_754_350
    assert max_line_bytes(2) - max_line_bytes(1) == JSON_BYTES_PER_CHAR
    header = json.dumps({"format": "agentcore-history", "version": 1})
    assert len(header) < max_line_bytes(1)
