"""The bridges store every text their frameworks' own stores take, exactly, on every repository.

U+0000 (a tool returning a binary file's header), lone surrogates, 4-byte
characters, line separators and bidi controls, in every field of an OpenAI
Agents SDK item and of a LangChain message: what the bridge reads back equals
what the framework's reference store reads back for the same input — the
SDK's ``SQLiteSession`` (a JSON round trip), LangChain's
``InMemoryChatMessageHistory`` (the objects themselves). JSON itself reads a
high surrogate followed by a low one as the character they encode, so for
LangChain, whose reference keeps the Python string, such a pair is compared
after its JSON round trip.
"""

from __future__ import annotations

import itertools
import json
import uuid
import warnings
from typing import Any

import pytest
from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.memory import SQLiteSession
from agents.testing import ScriptedModel, assistant_message, function_call
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from langchain_core._api.deprecation import LangChainDeprecationWarning
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)

from agentcore import HistoryRepository, InvalidMessageError
from agentcore.exact_json import exact_json
from agentcore.integrations.langchain import AgentcoreChatMessageHistory
from agentcore.integrations.openai_agents import AgentcoreSession
from agentcore.repository import ChatMessageStore, SessionItemStore
from agentcore.validation import MAX_JSON_FIELD_BYTES

pytestmark = pytest.mark.port.with_args(ChatMessageStore, SessionItemStore)

set_tracing_disabled(True)  # no trace export (it would need an API key)

EXAMPLES = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

EDGES = [
    "\x00",  # PostgreSQL's text and jsonb refuse it
    "\ud800",  # lone surrogates: UTF-8 cannot encode them
    "\udbff",
    "\udc00",
    "\udfff",
    "\U0001f600",  # 4 bytes in UTF-8, a surrogate pair in JSON escapes
    "\U0010ffff",
    "\u2028",  # line and paragraph separators
    "\u2029",
    "\u202e",  # bidi controls
    "\u2066",
    "\u200f",
    "\ufeff",
    "\x1b",
    "\x7f",
    "\x85",
    '"',
    "\\",
]
characters = st.sampled_from(EDGES) | st.integers(0xD800, 0xDFFF).map(chr) | st.characters()
looks_escaped = st.sampled_from(["\\u0000", "\\ud800", "\\\\u0000"])  # text, not escapes
short_text = st.lists(characters | looks_escaped, max_size=12).map("".join)
# Longer texts, cheaply: a short one repeated (a binary header, a dumped file).
hostile_text = short_text | st.tuples(short_text, st.integers(1, 3000)).map(lambda p: p[0] * p[1])


def _pair_free(text: str) -> bool:
    """Whether ``text`` holds no high surrogate followed by a low one."""
    return not any(
        "\ud800" <= a <= "\udbff" and "\udc00" <= b <= "\udfff"
        for a, b in itertools.pairwise(text)
    )


def sdk_turn(t: list[str]) -> list[Any]:
    """A whole SDK turn, with hostile text in every field the SDK fills with text."""
    return [
        {"role": "user", "content": t[0]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": t[1]}]},
        {
            "type": "function_call",
            "call_id": t[2],
            "name": "read_file",
            "arguments": t[3],
            "id": "fc_1",
            "status": "completed",
        },
        {"type": "function_call_output", "call_id": t[2], "output": t[4]},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": t[5]}],
            "encrypted_content": t[6],
        },
        {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": t[7], "annotations": [], "logprobs": []}],
        },
    ]


def langchain_turn(t: list[str]) -> list[BaseMessage]:
    """LangChain messages with hostile text in content, blocks, args, kwargs and artifacts."""
    return [
        SystemMessage(content=t[0]),
        HumanMessage(content=t[1], name=t[2], id=t[3]),
        HumanMessage(content=[{"type": "text", "text": t[4]}, t[5]]),
        AIMessage(
            content=t[6],
            tool_calls=[{"name": "read_file", "args": {"path": t[7], t[8]: [t[9]]}, "id": "t1"}],
            additional_kwargs={"extra": {t[10]: t[11]}},
            response_metadata={"model": t[12]},
        ),
        ToolMessage(content=t[13], tool_call_id="t1", artifact={"raw": t[14], t[15]: None}),
    ]


async def sqlite_round_trip(items: list[Any]) -> list[Any]:
    """What the SDK's own SQLiteSession reads back after ``add_items(items)``."""
    reference = SQLiteSession("reference")
    try:
        await reference.add_items(items)
        return await reference.get_items()
    finally:
        reference.close()


def in_memory_round_trip(messages: list[BaseMessage]) -> list[BaseMessage]:
    """What LangChain's own InMemoryChatMessageHistory reads back."""
    with warnings.catch_warnings():
        # Deprecated since langchain-core 1.6.4, still its reference history.
        warnings.simplefilter("ignore", LangChainDeprecationWarning)
        reference = InMemoryChatMessageHistory()
    reference.add_messages(messages)
    return reference.messages


def json_round_trip(messages: list[BaseMessage]) -> list[BaseMessage]:
    """LangChain messages after their own dict form went through JSON."""
    return messages_from_dict(json.loads(json.dumps([message_to_dict(m) for m in messages])))


@EXAMPLES
@given(texts=st.lists(hostile_text, min_size=8, max_size=8))
@example(texts=["\x00PNG\r\n\x1a\n", "\ud800", "\udfff\ud800", "\ud83d\ude00"] * 2)
async def test_sdk_session_reads_back_what_sqlite_session_reads_back(
    repo: HistoryRepository, texts: list[str]
) -> None:
    items = sdk_turn(texts)
    session = AgentcoreSession(f"s-{uuid.uuid4()}", repo)
    await session.add_items(items[:1])  # the SDK stores a run's input on its own first
    await session.add_items(items[1:])
    assert await session.get_items() == await sqlite_round_trip(items)
    assert await session.pop_item() == (await sqlite_round_trip(items))[-1]


@EXAMPLES
@given(texts=st.lists(hostile_text, min_size=16, max_size=16))
@example(texts=["\x00PNG\r\n\x1a\n", "\ud800", "\udfff\ud800", "\ud83d\ude00"] * 4)
async def test_langchain_history_reads_back_what_in_memory_history_reads_back(
    repo: HistoryRepository, texts: list[str]
) -> None:
    messages = langchain_turn(texts)
    history = AgentcoreChatMessageHistory(f"s-{uuid.uuid4()}", repo)
    await history.aadd_messages(messages)
    stored = await history.aget_messages()
    assert stored == json_round_trip(in_memory_round_trip(messages))
    if all(map(_pair_free, texts)):
        assert stored == in_memory_round_trip(messages)


@EXAMPLES
@given(
    texts=st.lists(hostile_text, min_size=8, max_size=8),
    position=st.integers(0, 5),
)
async def test_an_sdk_batch_with_one_refused_item_stores_nothing(
    repo: HistoryRepository, texts: list[str], position: int
) -> None:
    items = sdk_turn(texts)
    items[position] = {**items[position], "refused": float("nan")}  # not JSON
    session = AgentcoreSession(f"s-{uuid.uuid4()}", repo)
    with pytest.raises(InvalidMessageError, match=rf"messages\[{position}\]"):
        await session.add_items(items)
    assert await session.get_items() == []


@EXAMPLES
@given(texts=st.lists(hostile_text, min_size=16, max_size=16), position=st.integers(0, 4))
async def test_a_langchain_batch_with_one_refused_message_stores_nothing(
    repo: HistoryRepository, texts: list[str], position: int
) -> None:
    messages = langchain_turn(texts)
    refused = messages[position].model_copy(update={"additional_kwargs": {"x": {1, 2}}})
    messages[position] = refused  # a set is not JSON
    history = AgentcoreChatMessageHistory(f"s-{uuid.uuid4()}", repo)
    with pytest.raises(InvalidMessageError, match=rf"messages\[{position}\]"):
        await history.aadd_messages(messages)
    assert await history.aget_messages() == []


def _largest_output(unit: str) -> str:
    """The longest repetition of ``unit`` a function_call_output item holds within the limit."""
    base = {"type": "function_call_output", "call_id": "c1", "output": ""}
    per_unit = len(exact_json(unit).encode("utf-8")) - 2  # without its quotes
    room = MAX_JSON_FIELD_BYTES - len(exact_json(base).encode("utf-8"))
    return unit * (room // per_unit)


@pytest.mark.parametrize("unit", ["\x00", "\ud800", "\U0001f600\u2028\u202e"])
async def test_items_of_hostile_text_at_the_size_limit_are_stored_exactly(
    repo: HistoryRepository, unit: str
) -> None:
    output = _largest_output(unit)
    item = {"type": "function_call_output", "call_id": "c1", "output": output}
    assert len(exact_json(item).encode("utf-8")) > MAX_JSON_FIELD_BYTES - len(unit) * 6
    session = AgentcoreSession("s", repo)
    await session.add_items([item])  # type: ignore[list-item]
    assert await session.get_items() == await sqlite_round_trip([item])
    history = AgentcoreChatMessageHistory("s", repo)
    # LangChain's dict form adds its own keys: the longest content that fits.
    content = output[: len(output) - 200 // max(1, len(exact_json(unit)) - 2)]
    await history.aadd_messages([ToolMessage(content=content, tool_call_id="c1")])
    assert await history.aget_messages() == [ToolMessage(content=content, tool_call_id="c1")]


# A tool returning a binary file's header, and text read with surrogateescape.
PNG_HEADER = "\x00PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
TOOL_OUTPUTS: list[str] = []


@function_tool
def read_file(path: str) -> str:
    """The file's bytes as text."""
    TOOL_OUTPUTS.append(path)
    return PNG_HEADER + b"\xff\xfe".decode("utf-8", "surrogateescape")


async def _run(session: Any) -> Any:
    model = ScriptedModel(
        [
            [function_call("read_file", {"path": "logo.png"}, call_id="call_1")],
            [assistant_message("It is a PNG image.")],
        ]
    )
    agent = Agent(name="files", model=model, tools=[read_file])
    return await Runner.run(agent, "What is in logo.png?", session=session)


async def test_a_run_whose_tool_returns_nul_and_lone_surrogates_succeeds_and_keeps_the_turn(
    repo: HistoryRepository,
) -> None:
    session = AgentcoreSession("s", repo)
    result = await _run(session)
    reference = SQLiteSession("reference")
    try:
        expected = await _run(reference)
        expected_items = await reference.get_items()
    finally:
        reference.close()
    assert result.final_output == expected.final_output == "It is a PNG image."
    stored: list[Any] = await session.get_items()
    assert [i.get("type", i.get("role")) for i in stored] == [
        "user",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert stored == expected_items
    assert stored[2]["output"].startswith(PNG_HEADER)
