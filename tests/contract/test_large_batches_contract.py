"""Large batches and the per-message size limits: both repositories agree.

PostgreSQL's jsonb holds at most 268,435,455 bytes and an append sends its
batch as jsonb: 270 messages of 1,000,000 characters were stored by the fake
and failed on PostgreSQL after ~25 s. PostgreSQL now splits such a batch into
parts stored in one transaction (tested here with a lowered part size, so it
stays fast); and the limits that keep one message storable are validated
before any I/O, by both repositories.
"""

from __future__ import annotations

from typing import Any

import pytest

from agentcore import (
    HistoryRepository,
    InMemoryHistoryRepository,
    InvalidInputError,
    InvalidMessageError,
    PostgresHistoryRepository,
    postgres,
)
from agentcore.repository import HistoryEditing, SessionLifecycle, TurnStore
from agentcore.validation import (
    MAX_CONTENT_CHARS_LIMIT,
    MAX_JSON_FIELD_BYTES,
    MAX_TEXT_FIELD_CHARS,
)

pytestmark = pytest.mark.port.with_args(TurnStore, uses=(HistoryEditing, SessionLifecycle))

A = "support-bot"


def rebuilt(
    repo: HistoryRepository, max_content_chars: Any
) -> PostgresHistoryRepository | InMemoryHistoryRepository:
    if isinstance(repo, PostgresHistoryRepository):
        return PostgresHistoryRepository(repo._pool, max_content_chars=max_content_chars)
    return InMemoryHistoryRepository(max_content_chars=max_content_chars)


@pytest.mark.parametrize(
    "value", [0, -1, MAX_CONTENT_CHARS_LIMIT + 1, 10**12, None, "1000", 1.5, True]
)
async def test_max_content_chars_outside_what_postgres_can_store_is_refused(
    repo: HistoryRepository, value: Any
) -> None:
    with pytest.raises(InvalidInputError, match="max_content_chars"):
        rebuilt(repo, value)


async def test_the_documented_max_content_chars_limit_is_accepted(repo: HistoryRepository) -> None:
    assert rebuilt(repo, MAX_CONTENT_CHARS_LIMIT).max_content_chars == MAX_CONTENT_CHARS_LIMIT
    assert rebuilt(repo, 1).max_content_chars == 1


def _json_of_bytes(size: int) -> dict[str, Any]:
    return {"blob": "x" * (size - len('{"blob":""}'))}


@pytest.mark.parametrize(
    ("field", "value", "what"),
    [
        ("metadata", _json_of_bytes(MAX_JSON_FIELD_BYTES + 1), "bytes as JSON"),
        (
            "tool_calls",
            [{"id": "c", "blob": "é" * (MAX_JSON_FIELD_BYTES // 2)}],
            "bytes as JSON",
        ),
        ("name", "n" * (MAX_TEXT_FIELD_CHARS + 1), "characters"),
        ("tool_call_id", "t" * (MAX_TEXT_FIELD_CHARS + 1), "characters"),
    ],
)
async def test_a_message_over_a_size_limit_is_refused_before_anything_is_written(
    repo: HistoryRepository, field: str, value: Any, what: str
) -> None:
    role = "tool" if field == "tool_call_id" else "assistant"
    message: dict[str, Any] = {"role": role, "content": "c", field: value}
    if role == "tool" and field != "tool_call_id":
        message["tool_call_id"] = "t"
    batch = [{"role": "user", "content": "first"}, message]
    for call in (repo.append_messages, repo.save_full_history):
        with pytest.raises(InvalidMessageError, match=rf"messages\[1\]\.{field} is .*{what}"):
            await call(A, "s", batch)
    assert await repo.load_history(A, "s") == []


async def test_fields_at_the_size_limits_are_stored(repo: HistoryRepository) -> None:
    metadata = _json_of_bytes(MAX_JSON_FIELD_BYTES)
    message = {"role": "assistant", "content": "c", "name": "n" * MAX_TEXT_FIELD_CHARS}
    assert await repo.append_messages(A, "s", [{**message, "metadata": metadata}]) == 1
    (stored,) = await repo.load_history(A, "s")
    assert stored.metadata == metadata


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL splits any batch over ~10 messages of this test (no effect on the fake)."""
    monkeypatch.setattr(postgres, "APPEND_CHUNK_JSONB_BYTES", 8_000)


def _numbered(start: int, stop: int, with_ids: bool) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": f"m{i} " + "é" * 150,
            "metadata": {"n": list(range(i % 7))},
            **({"id": f"id-{i}"} if with_ids else {}),
        }
        for i in range(start, stop)
    ]


@pytest.mark.usefixtures("small_parts")
@pytest.mark.parametrize("with_ids", [True, False], ids=["with-ids", "without-ids"])
async def test_a_batch_larger_than_one_statement_is_stored_whole_and_in_order(
    repo: HistoryRepository, with_ids: bool
) -> None:
    await repo.append_messages(A, "s", [{"role": "system", "content": "start"}])
    batch = _numbered(0, 120, with_ids)
    assert await repo.append_messages(A, "s", batch) == 120
    stored = await repo.load_history(A, "s")
    assert [m.content for m in stored] == ["start", *(m["content"] for m in batch)]
    assert [m.metadata for m in stored[1:]] == [m["metadata"] for m in batch]


@pytest.mark.usefixtures("small_parts")
async def test_a_split_batch_skips_ids_already_stored_in_any_part(
    repo: HistoryRepository,
) -> None:
    # Stored ids scattered over what become different parts of the next batch.
    assert await repo.append_messages(A, "s", _numbered(0, 100, True)[::9]) == 12
    batch = _numbered(0, 100, True)
    assert await repo.append_messages(A, "s", batch) == 88
    assert await repo.append_messages(A, "s", batch) == 0  # a retry stores nothing
    stored = await repo.load_history(A, "s")
    expected = [m["id"] for m in batch[::9]] + [m["id"] for i, m in enumerate(batch) if i % 9]
    assert [m.id for m in stored] == expected
    sessions = await repo.list_sessions(A)
    assert [(s.session_id, s.message_count) for s in sessions] == [("s", 100)]
