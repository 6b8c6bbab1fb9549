"""The Pydantic AI bridge keeps every message exactly, and loads valid windows, on every repository.

Round trip: ``ModelMessagesTypeAdapter.dump_json(loaded) == dump_json(original)``
for every part kind the installed pydantic-ai defines, generated
(tests/pydantic_ai_parts.py walks its part unions), every field set.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
import warnings
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic_ai.messages import (
    BinaryContent,
    ImageUrl,
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    RetryPromptPart,
    SystemPromptPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.usage import RequestUsage
from pydantic_core import PydanticSerializationError

from agentcore import HistoryRepository, InvalidInputError, InvalidMessageError
from agentcore.integrations.pydantic_ai import AgentcoreMessageHistory, valid_window
from agentcore.repository import ChatMessageStore, TurnStore
from agentcore.validation import MAX_JSON_FIELD_BYTES
from tests.contract.test_bridges_hostile_text_contract import EXAMPLES, hostile_text
from tests.pydantic_ai_parts import (
    REQUEST_PARTS,
    RESPONSE_PARTS,
    WHEN,
    dumped,
    every_part_kind,
    message_with,
)

pytestmark = pytest.mark.port.with_args(ChatMessageStore, uses=(TurnStore,))

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # RetryPromptPart is deprecated, and still a part kind
    CASES = every_part_kind()


def read_back_by_pydantic_ai(message: ModelMessage) -> bytes:
    """What Pydantic AI itself reads back from its own JSON of ``message``."""
    return dumped(ModelMessagesTypeAdapter.validate_json(dumped([message])))


def history(repo: HistoryRepository) -> AgentcoreMessageHistory:
    return AgentcoreMessageHistory(f"c-{uuid.uuid4().hex}", repo)


async def test_every_part_kind_round_trips_exactly(repo: HistoryRepository) -> None:
    store = history(repo)
    originals = [message for _, message in CASES]
    await store.append(originals)
    loaded = await store.load()
    assert len(loaded) == len(originals)
    exact = set()
    for (case, original), got in zip(CASES, loaded, strict=True):
        if read_back_by_pydantic_ai(original) == dumped([original]):
            assert dumped([got]) == dumped([original]), case
            exact.add(case.split("-")[1])
        else:  # Pydantic AI itself reads this one back changed: the bridge reads it as it does
            assert dumped([got]) == read_back_by_pydantic_ai(original), case
    # Every part kind round-trips exactly in some variant, except the deprecated
    # RetryPromptPart, which pydantic-ai 2.68 reads back as the part it became
    # (a ToolReturnPart with outcome "retried", or a RetryFeedbackPart).
    kinds = {cls.__name__ for cls in [*REQUEST_PARTS, *RESPONSE_PARTS]}
    assert kinds - exact == {"RetryPromptPart"}


async def test_one_message_per_append_round_trips_too(repo: HistoryRepository) -> None:
    store = history(repo)
    for _, message in CASES[:12]:
        await store.append([message])
    loaded = await store.load()
    assert [dumped([m]) for m in loaded] == [read_back_by_pydantic_ai(m) for _, m in CASES[:12]]


def conversation() -> list[ModelMessage]:
    """A run with two rounds of tool calls (a retry among them), then a second user turn."""
    usage = RequestUsage(input_tokens=12, output_tokens=5, details={"reasoning_tokens": 2})
    return [
        ModelRequest(
            parts=[
                SystemPromptPart("Be brief.", timestamp=WHEN),
                UserPromptPart(
                    [
                        "Weather here?",
                        ImageUrl(url="https://example.com/sky.png"),
                        BinaryContent(data=b"\x89PNG\x00", media_type="image/png"),
                    ],
                    timestamp=WHEN,
                ),
            ],
            instructions="Use the tools.",
        ),
        ModelResponse(
            parts=[
                ThinkingPart("where?", signature="sig-1", provider_name="anthropic"),
                ToolCallPart("locate", {"precise": True}, tool_call_id="c1"),
                ToolCallPart("weather", '{"city": "Par', tool_call_id="c2"),
            ],
            usage=usage,
            model_name="claude-x",
            timestamp=WHEN,
            provider_name="anthropic",
            provider_details={"stop_sequence": None, "logprobs": [0.25, -1.5]},
            provider_response_id="resp-1",
            finish_reason="tool_call",
        ),
        ModelRequest(
            parts=[
                ToolReturnPart("locate", {"city": "Paris", "t": 1e16}, tool_call_id="c1"),
                RetryPromptPart("invalid JSON", tool_name="weather", tool_call_id="c2"),
            ]
        ),
        ModelResponse(parts=[ToolCallPart("weather", {"city": "Paris"}, tool_call_id="c3")]),
        ModelRequest(parts=[ToolReturnPart("weather", "22.5 °C", tool_call_id="c3")]),
        ModelResponse(parts=[TextPart("22.5 °C in Paris.")], model_name="claude-x"),
        ModelRequest(parts=[UserPromptPart("And tomorrow?")]),
        ModelResponse(parts=[TextPart("Sunny.")], model_name="claude-x"),
    ]


def call_ids(window: list[ModelMessage]) -> None:
    """Assert that each tool result in ``window`` answers a call made earlier in it."""
    made: set[str] = set()
    for message in window:
        for part in message.parts:
            tool_call_id = getattr(part, "tool_call_id", None)
            if isinstance(message, ModelResponse) and tool_call_id is not None:
                made.add(tool_call_id)
            elif tool_call_id is not None:
                assert tool_call_id in made, (
                    f"{type(part).__name__} answers cut call {tool_call_id}"
                )


async def test_every_window_is_valid_to_send(repo: HistoryRepository) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        messages = conversation()
    store = history(repo)
    await store.append(messages)
    full = [dumped([m]) for m in await store.load()]
    assert full == [read_back_by_pydantic_ai(m) for m in messages]
    for limit in range(len(messages) + 2):
        window = await store.load(limit)
        assert len(window) <= limit
        if not window:
            continue
        assert isinstance(window[0], ModelRequest), limit
        call_ids(window)
        # All but the first are the stored messages as they are; the first keeps
        # every part of its stored form but the orphaned tool results.
        tail = full[len(full) - len(window) :]
        assert [dumped([m]) for m in window[1:]] == tail[1:], limit
        first = ModelMessagesTypeAdapter.validate_json(tail[0])[0]
        assert isinstance(first, ModelRequest)
        kept = [p for p in first.parts if getattr(p, "tool_call_id", None) is None]
        assert dumped(window[:1]) == dumped([dataclasses.replace(first, parts=kept)])
        # Only what had to go went: responses first, and requests of orphaned results only.
        cut = len(full) - min(limit, len(full))
        dropped = [ModelMessagesTypeAdapter.validate_json(t)[0] for t in full[cut : -len(window)]]
        for message in dropped:
            assert isinstance(message, ModelResponse) or all(
                getattr(p, "tool_call_id", None) is not None for p in message.parts
            )
    # By limit: a window that would start inside the tool rounds starts at the
    # next user turn instead (every request between holds only tool results).
    assert [len(await store.load(n)) for n in range(10)] == [0, 0, 2, 2, 2, 2, 2, 2, 8, 8]
    assert [dumped([m]) for m in await store.load(7)] == full[-2:]


def test_valid_window_keeps_a_request_s_user_prompt_and_drops_its_orphans() -> None:
    mixed = ModelRequest(
        parts=[
            ToolReturnPart("weather", "22.5", tool_call_id="gone"),
            UserPromptPart("Thanks. And tomorrow?", timestamp=WHEN),
        ]
    )
    reply = ModelResponse(parts=[TextPart("Sunny.")], timestamp=WHEN)
    window = valid_window([ModelResponse(parts=[TextPart("x")]), mixed, reply])
    assert dumped(window) == dumped([ModelRequest(parts=[mixed.parts[1]]), reply])
    assert valid_window([reply]) == []
    assert valid_window([]) == []


async def test_a_bad_message_stores_nothing_of_its_batch(repo: HistoryRepository) -> None:
    store = history(repo)
    good = ModelRequest(parts=[UserPromptPart("kept only with its turn")])
    not_json = ModelResponse(parts=[ToolCallPart("f", {"at": object()}, tool_call_id="c")])
    too_large = ModelRequest(parts=[UserPromptPart("x" * (MAX_JSON_FIELD_BYTES + 1))])
    for bad in ["hello", None, {"kind": "request", "parts": []}, not_json, too_large]:
        with pytest.raises(InvalidMessageError, match=r"messages\[1\]"):
            await store.append([good, bad])  # type: ignore[list-item]
    assert await store.load() == []


async def test_conversations_are_isolated_and_clear_deletes_one(repo: HistoryRepository) -> None:
    one, other = history(repo), history(repo)
    third = AgentcoreMessageHistory(one.conversation_id, repo, agent_name="another-app")
    message = ModelRequest(parts=[UserPromptPart("hi", timestamp=WHEN)])
    await one.append([message, message])  # a message appended twice is kept twice
    assert await other.load() == [] and await third.load() == []
    assert dumped(await one.load()) == dumped([message, message])
    await one.clear()
    assert await one.load() == []
    await one.append([])
    assert await one.load() == []


async def test_bad_limits_and_unreadable_items_raise_typed_errors(repo: HistoryRepository) -> None:
    store = history(repo)
    with pytest.raises(InvalidInputError):
        await store.load(-1)
    await repo.append_messages(
        store.agent_name, store.conversation_id, [{"role": "user", "item": {"kind": "odd"}}]
    )
    with pytest.raises(InvalidMessageError, match="stored message 0"):
        await store.load()


async def test_messages_agentcore_stored_itself_read_as_pydantic_ai_messages(
    repo: HistoryRepository,
) -> None:
    store = history(repo)
    call = {"id": "t1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
    await repo.append_messages(
        store.agent_name,
        store.conversation_id,
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "content": "22.5", "tool_call_id": "t1", "name": "w"},
            {"role": "assistant", "content": "22.5 °C"},
        ],
    )
    loaded = await store.load()
    assert [type(p).__name__ for m in loaded for p in m.parts] == [
        "SystemPromptPart",
        "UserPromptPart",
        "ToolCallPart",
        "ToolReturnPart",
        "TextPart",
    ]
    tool_call = loaded[2].parts[0]
    assert isinstance(tool_call, ToolCallPart)
    assert (tool_call.tool_name, tool_call.args, tool_call.tool_call_id) == ("w", "{}", "t1")


def as_json_reads_it(value: Any) -> Any:
    """``value`` as JSON reads it back (a surrogate pair becomes the character it encodes)."""
    return json.loads(json.dumps(value))


KINDS_FOR_TEXT = [
    (UserPromptPart, 1),  # multimodal user content
    (SystemPromptPart, 0),
    (ToolReturnPart, 0),
    (ToolCallPart, 0),  # dict args
    (ToolCallPart, 1),  # str args
    (TextPart, 0),
    (ThinkingPart, 0),
]


@EXAMPLES
@given(text=hostile_text, which=st.sampled_from(KINDS_FOR_TEXT))
async def test_any_text_in_any_field_round_trips(
    repo: HistoryRepository, text: str, which: tuple[type, int]
) -> None:
    """U+0000, lone surrogates, bidi controls... in every string field of a message.

    Pydantic AI's ``dump_json`` cannot write a lone surrogate (UTF-8 cannot), so
    the comparison is of the JSON-mode Python form, as JSON reads it. Where
    Pydantic AI cannot write even that form (it hashes a file URL's or an
    uploaded file id's UTF-8 for the part's identifier), the bridge refuses the
    message with ``InvalidMessageError`` and stores nothing.
    """
    message = message_with(*which, text=text)
    store = history(repo)
    try:
        expected = ModelMessagesTypeAdapter.dump_python([message], mode="json")
    except PydanticSerializationError:
        with pytest.raises(InvalidMessageError, match=r"messages\[0\] holds a value"):
            await store.append([message])
        assert await store.load() == []
        return
    await store.append([message])
    (got,) = await store.load()
    assert ModelMessagesTypeAdapter.dump_python([got], mode="json") == as_json_reads_it(expected)


@st.composite
def conversations(draw: st.DrawFn) -> list[ModelMessage]:
    """Turns of a user prompt, tool rounds (results sometimes sharing a request with a
    new prompt), and a reply; tool call ids unique across the conversation."""
    messages: list[ModelMessage] = []
    ids = iter(range(10**6))
    for _ in range(draw(st.integers(1, 4))):
        messages.append(ModelRequest(parts=[UserPromptPart("q", timestamp=WHEN)]))
        for _ in range(draw(st.integers(0, 3))):
            calls = [f"c{next(ids)}" for _ in range(draw(st.integers(1, 3)))]
            messages.append(
                ModelResponse(
                    parts=[ToolCallPart("t", {}, tool_call_id=c) for c in calls], timestamp=WHEN
                )
            )
            results: list[Any] = [
                ToolReturnPart("t", "r", tool_call_id=c, timestamp=WHEN) for c in calls
            ]
            if draw(st.booleans()):
                results.append(UserPromptPart("also this", timestamp=WHEN))
            messages.append(ModelRequest(parts=results))
        messages.append(ModelResponse(parts=[TextPart("a")], timestamp=WHEN))
    return messages


@given(conversation=conversations())
def test_every_window_of_any_conversation_is_valid(conversation: list[ModelMessage]) -> None:
    for limit in range(len(conversation) + 1):
        tail = conversation[len(conversation) - limit :]
        window = valid_window(tail)
        if not window:
            assert all(
                isinstance(m, ModelResponse)
                or all(getattr(p, "tool_call_id", None) for p in m.parts)
                for m in tail
            )
            continue
        assert isinstance(window[0], ModelRequest)
        call_ids(window)
        start = len(tail) - len(window)
        assert window[1:] == tail[start + 1 :]  # the very objects, unchanged
        assert window[0].parts == [
            p for p in tail[start].parts if getattr(p, "tool_call_id", None) is None
        ]
        for dropped in tail[:start]:
            assert isinstance(dropped, ModelResponse) or all(
                getattr(p, "tool_call_id", None) is not None for p in dropped.parts
            )
