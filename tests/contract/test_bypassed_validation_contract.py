"""Messages built with ``model_construct`` (no pydantic validation) and bad constructor
arguments: every repository refuses them alike, with the field and what was wrong.

Constructor arguments are checked in tests/integration/test_repository_arguments.py."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import IntEnum
from typing import Any

import pytest

from agentcore import (
    HistoryRepository,
    InvalidMessageError,
    Message,
)
from agentcore.repository import HistoryEditing, SessionLifecycle, TurnStore

pytestmark = pytest.mark.port.with_args(TurnStore, HistoryEditing, uses=(SessionLifecycle,))

A = "support-bot"

# (name, Message.model_construct arguments, the error message expected)
BYPASSED: list[tuple[str, dict[str, Any], str]] = [
    ("int content", {"role": "user", "content": 42}, "content must be a string or None, got int"),
    (
        "bytes content",
        {"role": "user", "content": b"hi"},
        "content must be a string or None, got bytes",
    ),
    ("int role", {"role": 1, "content": "x"}, "role must be a string, got int"),
    ("unknown role", {"role": "robot", "content": "x"}, "role must be one of"),
    ("int name", {"role": "user", "content": "x", "name": 7}, "name must be a string or None"),
    (
        "int tool_call_id",
        {"role": "tool", "content": "x", "tool_call_id": 7},
        "tool_call_id must be a string or None, got int",
    ),
    ("int id", {"role": "user", "content": "x", "id": 7}, "id must be a string, got int"),
    (
        "non-string metadata key",
        {"role": "user", "content": "x", "metadata": {1: "a"}},
        "metadata has a key 1 of type int; keys must be strings",
    ),
    (
        "nested non-string key",
        {"role": "user", "content": "x", "metadata": {"a": [{None: 1}]}},
        "metadata['a'][0] has a key None of type NoneType",
    ),
    (
        "bytes in metadata",
        {"role": "user", "content": "x", "metadata": {"k": b"raw"}},
        "metadata['k'] holds a value of type bytes, which is not JSON",
    ),
    (
        "set in metadata",
        {"role": "user", "content": "x", "metadata": {"k": [1, {2, 3}]}},
        "metadata['k'][1] holds a value of type set",
    ),
    (
        "tuple in metadata",
        {"role": "user", "content": "x", "metadata": {"k": (1, 2)}},
        "metadata['k'] holds a value of type tuple",
    ),
    (
        "Decimal in metadata",
        {"role": "user", "content": "x", "metadata": {"k": Decimal("1.5")}},
        "holds a value of type Decimal",
    ),
    (
        "datetime in metadata",
        {"role": "user", "content": "x", "metadata": {"k": datetime.now(UTC)}},
        "holds a value of type datetime",
    ),
    (
        "object in metadata",
        {"role": "user", "content": "x", "metadata": {"k": object()}},
        "holds a value of type object",
    ),
    (
        "metadata None",
        {"role": "user", "content": "x", "metadata": None},
        "metadata must be a dict",
    ),
    (
        "metadata a list",
        {"role": "user", "content": "x", "metadata": [1]},
        "metadata must be a dict, got list",
    ),
    (
        "tool_calls a dict",
        {"role": "assistant", "content": None, "tool_calls": {"id": "c1"}},
        "tool_calls must be a list of objects or None, got dict",
    ),
    (
        "tool_calls holding a string",
        {"role": "assistant", "content": None, "tool_calls": ["c1"]},
        "tool_calls[0] must be an object, got str",
    ),
    (
        "bytes in tool_calls",
        {"role": "assistant", "content": None, "tool_calls": [{"id": b"c1"}]},
        "tool_calls[0]['id'] holds a value of type bytes",
    ),
    (
        "string created_at",
        {"role": "user", "content": "x", "created_at": "2024-01-01T00:00:00+00:00"},
        "created_at must be a datetime or None, got str",
    ),
    (
        "date created_at",
        {"role": "user", "content": "x", "created_at": date(2024, 1, 1)},
        "created_at must be a datetime or None, got date",
    ),
    (
        "naive created_at",
        {"role": "user", "content": "x", "created_at": datetime(2024, 1, 1)},
        "created_at must be timezone-aware",
    ),
    (
        "control character in id",
        {"role": "user", "content": "x", "id": "a\nb"},
        "id must not contain control characters or line separators (found U+000A at index 1)",
    ),
]


@pytest.mark.parametrize("operation", ["append_messages", "save_full_history"])
async def test_a_message_that_skipped_validation_is_refused_and_nothing_is_written(
    repo: HistoryRepository, operation: str
) -> None:
    # One conversation for every case (a database per case would cost more than the case).
    await repo.append_messages(A, "s", [{"role": "user", "content": "kept", "id": "k"}])
    for name, fields, says in BYPASSED:
        batch = [Message(role="user", content="ok"), Message.model_construct(**fields)]

        with pytest.raises(InvalidMessageError) as raised:
            await getattr(repo, operation)(A, "s", batch)

        assert str(raised.value).startswith("messages[1]"), (name, str(raised.value))
        assert says in str(raised.value), (name, str(raised.value))
    assert [m.content for m in await repo.load_history(A, "s")] == ["kept"]
    assert [s.message_count for s in await repo.list_sessions(A)] == [1]


class Level(IntEnum):
    HIGH = 3


class Tag(str):
    pass


async def test_subclasses_of_json_types_are_stored_as_the_plain_types(
    repo: HistoryRepository,
) -> None:
    message = Message.model_construct(
        role="user", content="x", metadata={Tag("tag"): [Level.HIGH, Tag("v")]}
    )
    await repo.append_messages(A, "s", [message])

    [stored] = await repo.load_history(A, "s")
    assert stored.metadata == {"tag": [3, "v"]}
    metadata: dict[str, Any] = stored.metadata
    [(key, [level, value])] = metadata.items()
    assert (type(key), type(level), type(value)) == (str, int, str)
