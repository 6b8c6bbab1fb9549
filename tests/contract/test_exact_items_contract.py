"""Exact items: a framework's record of a message comes back exactly as it was given."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentcore import HistoryRepository, InvalidMessageError, Message

A = "framework"

# Shapes taken from the OpenAI Responses API and from LangChain's message dumps,
# with what jsonb would have changed: key order, 1e16 as a float, -0.0.
ITEMS: list[dict[str, Any]] = [
    {"role": "user", "content": "hi"},
    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "x"}]},
    {
        "type": "function_call",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
        "id": "fc_1",
        "status": "completed",
    },
    {"type": "function_call_output", "call_id": "call_1", "output": "22C"},
    {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": None},
    {"zeta": 1, "alpha": 2, "mid": {"z": 1e16, "a": -0.0, "n": 1.0, "i": 10**20}},
    {
        "type": "ai",
        "data": {
            "content": "",
            "tool_calls": [
                {"name": "f", "args": {"b": 1.5, "a": 2}, "id": "t1", "type": "tool_call"}
            ],
            "usage_metadata": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
            "response_metadata": {"logprobs": [1e-300, 2.5e300]},
            "id": "lc-1",
        },
    },
    {"text": "ünïcødé ✓ \U0001f600 \t\n\"quoted\"", "empty": {}, "list": [[], [{}]]},
]


def classify(item: dict[str, Any]) -> str:
    return "tool" if item.get("type") == "function_call_output" else "assistant"


async def test_items_come_back_equal_with_key_order_and_floats(repo: HistoryRepository) -> None:
    await repo.append_messages(
        A, "s", [Message(role=classify(i), item=i) for i in ITEMS]
    )
    loaded: list[Any] = [m.item for m in await repo.load_history(A, "s")]
    assert loaded == ITEMS
    # Equal as text too: the same key order, 1e16 still a float, -0.0 kept.
    assert json.dumps(loaded) == json.dumps(ITEMS)
    assert isinstance(loaded[5]["mid"]["z"], float)


async def test_item_messages_need_no_content(repo: HistoryRepository) -> None:
    item = {"type": "function_call_output", "call_id": "c", "output": "x"}
    await repo.append_messages(A, "s", [{"role": "tool", "item": item}])
    [message] = await repo.load_history(A, "s")
    assert (message.role, message.content, message.tool_call_id, message.item) == (
        "tool",
        None,
        None,
        item,
    )


async def test_items_survive_replace_and_pop(repo: HistoryRepository) -> None:
    messages = [Message(role="assistant", item=i) for i in ITEMS]
    await repo.save_full_history(A, "s", messages)
    assert [m.item for m in await repo.load_history(A, "s")] == ITEMS
    popped = await repo.pop_message(A, "s")
    assert popped is not None and json.dumps(popped.item) == json.dumps(ITEMS[-1])


async def test_items_with_ids_are_deduplicated_like_other_messages(
    repo: HistoryRepository,
) -> None:
    batch = [{"role": "user", "item": ITEMS[0], "id": "m1"}]
    assert await repo.append_messages(A, "s", batch) == 1
    assert await repo.append_messages(A, "s", batch) == 0
    assert [m.item for m in await repo.load_history(A, "s")] == [ITEMS[0]]


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"x": float("nan")}, "messages[1].item['x'] must not contain NaN or Infinity"),
        ({"x": [float("inf")]}, "messages[1].item['x'][0] must not contain NaN or Infinity"),
        ({"x": "nul\x00"}, "messages[1].item['x'] must not contain a NUL byte"),
        ({"lone \ud800": 1}, "messages[1].item must be valid Unicode text"),
        ({"x": 10**4001}, "messages[1].item['x'] must not contain integers of more than"),
        ({"x": object()}, "messages[1] is invalid: item"),
        ("not an object", "messages[1] is invalid: item"),
    ],
)
async def test_bad_items_are_rejected_and_nothing_is_written(
    repo: HistoryRepository, item: Any, problem: str
) -> None:
    batch = [{"role": "user", "content": "ok"}, {"role": "user", "item": item}]
    with pytest.raises(InvalidMessageError) as caught:
        await repo.append_messages(A, "s", batch)
    assert str(caught.value).startswith(problem)
    assert await repo.load_history(A, "s") == []


async def test_messages_without_items_are_unchanged(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [{"role": "user", "content": "plain"}])
    [message] = await repo.load_history(A, "s")
    assert (message.content, message.item) == ("plain", None)
