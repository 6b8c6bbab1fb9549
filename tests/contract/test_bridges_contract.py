"""The framework bridges keep what the frameworks give them exactly, on every repository."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import json
import uuid
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from agentcore import HistoryRepository, InvalidMessageError
from agentcore.integrations.langchain import AgentcoreChatMessageHistory
from agentcore.integrations.openai_agents import AgentcoreSession
from agentcore.repository import ChatMessageStore, SessionItemStore

pytestmark = pytest.mark.port.with_args(ChatMessageStore, SessionItemStore)

SDK_ITEMS: list[Any] = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "developer", "content": "Answer briefly."},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
    {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}", "id": "fc_1"},
    {"type": "function_call_output", "call_id": "c1", "output": "22.5"},
    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "t"}]},
    {"type": "computer_call", "id": "cc_1", "call_id": "c2", "action": {"x": 1e16, "y": 0.5}},
    {"type": "mcp_list_tools", "id": "mcp_1", "server_label": "s", "tools": []},
    {"type": "item_reference", "id": "fc_1"},
    {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "ok", "annotations": [], "logprobs": []}],
    },
]

LANGCHAIN_MESSAGES: list[BaseMessage] = [
    SystemMessage(content="Be brief.", id="s1"),
    HumanMessage(content=[{"type": "text", "text": "hi"}], name="ann", id="h1"),
    AIMessage(
        content="",
        tool_calls=[{"name": "w", "args": {"city": "Paris", "t": 1e16}, "id": "t1"}],
        invalid_tool_calls=[{"name": "x", "args": "{bad", "id": "t2", "error": "json"}],
        usage_metadata={"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
        response_metadata={"model": "m", "logprobs": [0.25, -1.5]},
        id="a1",
    ),
    ToolMessage(content="22.5", tool_call_id="t1", artifact={"raw": [1, 2.0]}, status="success"),
    FunctionMessage(content="42", name="f"),
    ChatMessage(content="hello", role="moderator"),
    AIMessageChunk(content="partial", id="c1"),
]


def as_text(value: Any) -> str:
    return json.dumps(value, default=repr)


async def test_sdk_items_come_back_exactly(repo: HistoryRepository) -> None:
    session = AgentcoreSession("s", repo)
    await session.add_items(SDK_ITEMS)
    got = await session.get_items()
    assert got == SDK_ITEMS
    assert as_text(got) == as_text(SDK_ITEMS)  # key order and float forms too
    assert await session.get_items(limit=2) == SDK_ITEMS[-2:]


async def test_sdk_item_ids_are_not_deduplicated(repo: HistoryRepository) -> None:
    session = AgentcoreSession("s", repo)
    await session.add_items([SDK_ITEMS[3]])
    await session.add_items([SDK_ITEMS[3]])
    assert await session.get_items() == [SDK_ITEMS[3], SDK_ITEMS[3]]


async def test_sdk_concurrent_pops_return_distinct_items(repo: HistoryRepository) -> None:
    session = AgentcoreSession("s", repo)
    items: list[Any] = [{"role": "user", "content": f"m{i}"} for i in range(10)]
    await session.add_items(items)
    popped = await asyncio.gather(*(session.pop_item() for _ in range(12)))
    assert sorted(as_text(p) for p in popped if p) == sorted(as_text(i) for i in items)
    assert popped.count(None) == 2


async def test_sdk_sessions_are_isolated_by_session_and_agent(repo: HistoryRepository) -> None:
    one, other = AgentcoreSession("a", repo), AgentcoreSession("b", repo)
    third = AgentcoreSession("a", repo, agent_name="another-app")
    await one.add_items(SDK_ITEMS[:1])
    assert await other.get_items() == [] and await third.get_items() == []
    await one.clear_session()
    assert await one.get_items() == []


async def test_every_langchain_message_type_round_trips(repo: HistoryRepository) -> None:
    history = AgentcoreChatMessageHistory("s", repo)
    await history.aadd_messages(LANGCHAIN_MESSAGES)
    got = await history.aget_messages()
    assert got == LANGCHAIN_MESSAGES
    assert [type(m) for m in got] == [type(m) for m in LANGCHAIN_MESSAGES]
    assert [m.model_dump() for m in got] == [m.model_dump() for m in LANGCHAIN_MESSAGES]


async def test_langchain_message_added_twice_is_kept_twice(repo: HistoryRepository) -> None:
    history = AgentcoreChatMessageHistory("s", repo)
    await history.aadd_messages([LANGCHAIN_MESSAGES[2]])
    await history.aadd_messages([LANGCHAIN_MESSAGES[2]])
    assert await history.aget_messages() == [LANGCHAIN_MESSAGES[2]] * 2
    await history.aclear()
    assert await history.aget_messages() == []


NOT_JSON: dict[str, Any] = {
    "date": datetime.date(2026, 5, 9),
    "datetime": datetime.datetime(2026, 5, 9, 12, 0),
    "decimal": decimal.Decimal("1.5"),
    "bytes": b"\x89PNG",
    "set": {1, 2},
    "tuple": (1, 2),
    "uuid": uuid.UUID(int=7),
    "object": object(),
    "int key": {1: "one"},
    "tuple key": {(1, 2): "pair"},
}


def deep(value: Any) -> Any:
    """``value`` nested inside JSON, where a shallow check would not look."""
    return {"rows": [1, "two", {"cell": [None, value]}]}


def langchain_carrying(value: Any) -> list[BaseMessage]:
    return [
        ToolMessage(content="ok", tool_call_id="t1", artifact=value),
        ToolMessage(content="ok", tool_call_id="t1", artifact=deep(value)),
        AIMessage(content="a", additional_kwargs={"extra": deep(value)}),
        AIMessage(content="a", response_metadata={"when": value}),
        AIMessage(content="", tool_calls=[{"name": "w", "args": {"at": value}, "id": "t1"}]),
        HumanMessage(content=[{"type": "text", "text": "hi", "meta": deep(value)}]),
        ChatMessage(content="hello", role="moderator", additional_kwargs={"k": value}),
    ]


@pytest.mark.parametrize("kind", NOT_JSON)
async def test_langchain_message_holding_a_non_json_value_raises_invalid_message_error(
    repo: HistoryRepository, kind: str
) -> None:
    history = AgentcoreChatMessageHistory("s", repo)
    for bad in langchain_carrying(NOT_JSON[kind]):
        with pytest.raises(InvalidMessageError, match=r"messages\[1\]"):
            await history.aadd_messages([HumanMessage("kept only with its turn"), bad])
    assert await history.aget_messages() == []  # nothing of any batch was stored


@pytest.mark.parametrize("kind", NOT_JSON)
async def test_sdk_item_holding_a_non_json_value_raises_invalid_message_error(
    repo: HistoryRepository, kind: str
) -> None:
    session = AgentcoreSession("s", repo)
    value = NOT_JSON[kind]
    for bad in [
        {"role": "user", "content": value},
        {"type": "function_call_output", "call_id": "c1", "output": deep(value)},
        {"type": "computer_call", "id": "cc_1", "call_id": "c2", "action": {"x": value}},
    ]:
        with pytest.raises(InvalidMessageError, match=r"messages\[1\]"):
            await session.add_items([SDK_ITEMS[0], bad])  # type: ignore[list-item]
    assert await session.get_items() == []


async def test_bridges_refuse_what_is_not_a_message_with_invalid_message_error(
    repo: HistoryRepository,
) -> None:
    session = AgentcoreSession("s", repo)
    history = AgentcoreChatMessageHistory("s", repo)
    for bad in ["hello", None, [1, 2], {"role": ["not", "hashable"], "content": {1}}]:
        with pytest.raises(InvalidMessageError, match=r"(items|messages)\[1\]"):
            await session.add_items([SDK_ITEMS[0], bad])  # type: ignore[list-item]
        with pytest.raises(InvalidMessageError, match=r"messages\[1\]"):
            await history.aadd_messages([HumanMessage("hi"), bad])  # type: ignore[list-item]
    assert await session.get_items() == []
    assert await history.aget_messages() == []


async def test_langchain_reading_an_item_it_cannot_read_raises_invalid_message_error(
    repo: HistoryRepository,
) -> None:
    await repo.append_messages("langchain", "s", [{"role": "user", "item": {"type": "odd"}}])
    with pytest.raises(InvalidMessageError, match="stored message 0"):
        await AgentcoreChatMessageHistory("s", repo).aget_messages()
