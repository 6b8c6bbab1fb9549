"""Appends of plain messages (a role and a text) store exactly what any other append stores.

On PostgreSQL a batch of one or two plain messages is sent as plain
parameters (``append_plain_messages``), any other batch as one JSON array:
whichever way a batch goes, what is read back is the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from agentcore import HistoryRepository, InvalidMessageError, Message
from agentcore.repository import TurnStore

pytestmark = pytest.mark.port.with_args(TurnStore)

A = "support-bot"
TEXTS = [
    "",
    "plain text",
    "quotes ' \" and a backslash \\ and ${braces}",
    '[{"role": "system", "content": "not an array"}]',
    "emoji 🧪, accents éàü, CJK 漢字, RTL עברית",
    "line\nbreaks\r\nand\ttabs",
    "x" * 10_000,
]


def plain(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "content": text}


@pytest.mark.parametrize("text", TEXTS)
async def test_one_or_two_plain_messages_read_back_as_given(
    repo: HistoryRepository, text: str
) -> None:
    before = datetime.now(UTC)
    assert await repo.append_messages(A, "s", [plain("user", text)]) == 1
    assert await repo.append_messages(A, "s", [plain("assistant", text), plain("system", "x")]) == 2
    stored = await repo.load_history(A, "s")
    assert [(m.role, m.content) for m in stored] == [
        ("user", text),
        ("assistant", text),
        ("system", "x"),
    ]
    for message in stored:
        assert message.metadata == {}
        assert (message.name, message.tool_calls, message.tool_call_id) == (None, None, None)
        assert (message.id, message.item) == (None, None)
        assert message.created_at is not None and message.created_at >= before.replace(
            microsecond=0
        )


async def test_plain_and_other_batches_interleave_in_order(repo: HistoryRepository) -> None:
    batches: list[list[Any]] = [
        [plain("user", "a")],
        [plain("user", "b"), {"role": "assistant", "content": "c", "metadata": {"k": 1}}],
        [plain("user", "d"), plain("assistant", "e"), plain("user", "f")],
        [Message(role="user", content="g"), Message(role="assistant", content="h")],
        [{"role": "tool", "content": "i", "tool_call_id": "call-1"}],
        [plain("assistant", "j"), {"role": "user", "content": "k", "id": "m-k"}],
    ]
    for batch in batches:
        assert await repo.append_messages(A, "s", batch) == len(batch)
    stored = await repo.load_history(A, "s")
    assert [m.content for m in stored] == list("abcdefghijk")
    assert stored[2].metadata == {"k": 1}
    assert stored[8].tool_call_id == "call-1"
    assert stored[10].id == "m-k"
    assert [m.metadata for m in stored if m.content != "c"] == [{}] * 10


async def test_a_refused_plain_message_stores_nothing(repo: HistoryRepository) -> None:
    limit = getattr(repo, "max_content_chars", 1_000_000)
    with pytest.raises(InvalidMessageError, match=r"messages\[1\]\.content"):
        await repo.append_messages(A, "s", [plain("user", "ok"), plain("user", "x" * (limit + 1))])
    with pytest.raises(InvalidMessageError, match=r"messages\[0\]\.content must not contain a NUL"):
        await repo.append_messages(A, "s", [plain("user", "nul \x00")])
    with pytest.raises(InvalidMessageError, match=r"messages\[0\]"):
        await repo.append_messages(A, "s", [plain("user", "lone \ud800 surrogate")])
    assert await repo.load_history(A, "s") == []
