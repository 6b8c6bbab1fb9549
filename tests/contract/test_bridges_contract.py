"""The framework bridges keep what the frameworks give them exactly, on every repository."""

from __future__ import annotations

import asyncio
import json
from typing import Any

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

from agentcore import HistoryRepository
from agentcore.integrations.langchain import AgentcoreChatMessageHistory
from agentcore.integrations.openai_agents import AgentcoreSession

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
