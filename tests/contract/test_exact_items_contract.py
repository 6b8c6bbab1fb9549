"""Exact items: a framework's record of a message comes back exactly as it was given."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from agentcore import HistoryRepository, InvalidMessageError, Message
from agentcore.repository import (
    HistoryEditing,
    HistoryExport,
    HistoryImport,
    SessionLifecycle,
    TurnStore,
)
from agentcore.transfer import export_jsonl, import_jsonl

pytestmark = pytest.mark.port.with_args(
    TurnStore, HistoryEditing, SessionLifecycle, HistoryExport, HistoryImport
)

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


# Text that PostgreSQL's text and jsonb refuse (U+0000) or that UTF-8 cannot
# encode (lone surrogates), in keys and values, beside text they take.
HOSTILE_ITEMS: list[dict[str, Any]] = [
    {"type": "function_call_output", "call_id": "c1", "output": "\x00PNG\r\n\x1a\n\x00\x00"},
    {"k\x00": ["\x00", {"\ud800": "\udfff"}], "lone": "a\udc80b\ud83d", "emoji": "\U0001f600"},
    {"low-high": "\udc00\ud800", "separators": "\u2028\u2029\u202e\u2066", "bs": "\\u0000"},
    {"plain": "nothing special", "n": 1e16},
]


async def _every_write(repo: HistoryRepository, items: list[dict[str, Any]]) -> list[str]:
    """Store ``items`` through every way a message is written; the sessions holding them."""
    await repo.append_messages(A, "new", [{"role": "tool", "item": i} for i in items])
    await repo.append_messages(
        A, "ids", [{"role": "tool", "item": i, "id": f"m{n}"} for n, i in enumerate(items)]
    )
    await repo.save_full_history(A, "full", [{"role": "tool", "item": i} for i in items])
    await repo.append_messages(A, "replaced", [{"role": "user", "content": "old"}])
    expected = await repo.load_history(A, "replaced")
    assert await repo.replace_last_messages(
        A, "replaced", expected, [{"role": "tool", "item": i} for i in items]
    )
    await repo.import_session(A, "imported", [{"role": "tool", "item": i} for i in items])
    await repo.copy_session(A, "new", "copied")
    return ["new", "ids", "full", "replaced", "imported", "copied"]


async def test_items_holding_nul_and_lone_surrogates_are_stored_exactly_by_every_write(
    repo: HistoryRepository,
) -> None:
    for session in await _every_write(repo, HOSTILE_ITEMS):
        assert [m.item for m in await repo.load_history(A, session)] == HOSTILE_ITEMS
        assert [m.item async for m in repo.iter_history(A, session, batch_size=1)] == HOSTILE_ITEMS
    found = await repo.get_message(A, "ids", "m1")
    assert found is not None and found.item == HOSTILE_ITEMS[1]
    popped = await repo.pop_message(A, "new")
    assert popped is not None and popped.item == HOSTILE_ITEMS[-1]


async def test_items_holding_nul_and_lone_surrogates_survive_export_and_import(
    repo: HistoryRepository,
) -> None:
    await repo.append_messages(A, "s", [{"role": "tool", "item": i} for i in HOSTILE_ITEMS])
    first = io.StringIO()
    await export_jsonl(repo, first)
    first.getvalue().encode("utf-8")  # a file can hold it: lone surrogates are escapes
    await repo.clear_session(A, "s")
    await import_jsonl(repo, io.BytesIO(first.getvalue().encode("utf-8")))
    assert [m.item for m in await repo.load_history(A, "s")] == HOSTILE_ITEMS
    second = io.StringIO()
    await export_jsonl(repo, second)
    assert _without_times(second.getvalue()) == _without_times(first.getvalue())


def _without_times(export: str) -> list[Any]:
    lines = [json.loads(line) for line in export.split("\n") if line]
    for line in lines:
        for record in (line, line.get("message", {})):
            record.pop("created_at", None)
            record.pop("updated_at", None)
    return lines


async def test_a_surrogate_pair_in_an_item_comes_back_as_its_character(
    repo: HistoryRepository,
) -> None:
    # JSON reads "\ud83d\ude00" as one character; json.dumps/json.loads (the
    # OpenAI Agents SDK's SQLiteSession) do the same. Both stores agree.
    item = {"pair": "\ud83d\ude00", "\ud83d\ude00": ["x\ud83d\ude00y"]}
    await repo.append_messages(A, "s", [{"role": "tool", "item": item}])
    [message] = await repo.load_history(A, "s")
    assert message.item == json.loads(json.dumps(item))
    assert message.item == {"pair": "\U0001f600", "\U0001f600": ["x\U0001f600y"]}


@pytest.mark.parametrize("field", ["content", "name"])
@pytest.mark.parametrize("text", ["nul\x00", "lone \ud800"])
async def test_text_fields_still_refuse_nul_and_lone_surrogates(
    repo: HistoryRepository, field: str, text: str
) -> None:
    # content, name and tool_call_id are PostgreSQL text: an exact item can
    # carry such text, the plain fields cannot.
    message = {"role": "user", "content": "ok", field: text}
    with pytest.raises(InvalidMessageError, match=rf"messages\[0\]\.{field} must"):
        await repo.append_messages(A, "s", [message])
    assert await repo.load_history(A, "s") == []
