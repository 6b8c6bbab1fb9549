from __future__ import annotations

import asyncio
import logging

import pytest

from agentcore import (
    Agent,
    AgentConfig,
    InMemoryHistoryRepository,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidMessageError,
    Message,
    ModelError,
    ScriptedModel,
)

AGENT = "helper"


def config(**overrides: object) -> AgentConfig:
    values: dict[str, object] = {
        "name": AGENT,
        "instructions": "Be brief.",
        "include_history": True,
        "history_limit": 10,
    }
    return AgentConfig.model_validate(values | overrides)


def contents(messages: list[Message]) -> list[tuple[str, str | None]]:
    return [(m.role, m.content) for m in messages]


async def test_model_sees_instructions_then_history_then_input() -> None:
    repo = InMemoryHistoryRepository()
    await repo.append_messages(
        AGENT, "s1", [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    )
    model = ScriptedModel(["fine"])

    result = await Agent(config(), model, repo).execute_agent("how are you?", session_id="s1")

    assert contents(model.calls[0]) == [
        ("system", "Be brief."),
        ("user", "hi"),
        ("assistant", "hello"),
        ("user", "how are you?"),
    ]
    assert result.output == "fine"
    assert result.session_id == "s1"
    assert contents(result.messages) == [("user", "how are you?"), ("assistant", "fine")]


async def test_turn_is_appended_to_the_session_and_nothing_else() -> None:
    repo = InMemoryHistoryRepository()
    agent = Agent(config(), ScriptedModel(["one", "two"]), repo)

    await agent.execute_agent("first", session_id="s1")
    await agent.execute_agent("second", session_id="s1")

    stored = await repo.load_history(AGENT, "s1")
    assert contents(stored) == [
        ("user", "first"),
        ("assistant", "one"),
        ("user", "second"),
        ("assistant", "two"),
    ]
    assert await repo.load_history(AGENT, "s2") == []
    assert [s.session_id for s in await repo.list_sessions(AGENT)] == ["s1"]


async def test_history_limit_bounds_what_the_model_sees_but_not_what_is_stored() -> None:
    repo = InMemoryHistoryRepository()
    await repo.append_messages(
        AGENT, "s1", [{"role": "user", "content": f"old {i}"} for i in range(6)]
    )
    model = ScriptedModel(["ok"])

    await Agent(config(history_limit=2, instructions=None), model, repo).execute_agent(
        "new", session_id="s1"
    )

    assert contents(model.calls[0]) == [("user", "old 4"), ("user", "old 5"), ("user", "new")]
    assert len(await repo.load_history(AGENT, "s1")) == 8


async def test_history_limit_zero_sends_no_history() -> None:
    repo = InMemoryHistoryRepository()
    await repo.append_messages(AGENT, "s1", [{"role": "user", "content": "old"}])
    model = ScriptedModel(["ok"])

    await Agent(config(history_limit=0), model, repo).execute_agent("new", session_id="s1")

    assert contents(model.calls[0]) == [("system", "Be brief."), ("user", "new")]


async def test_the_turn_is_persisted_in_one_append() -> None:
    class CountingRepository(InMemoryHistoryRepository):
        def __init__(self) -> None:
            super().__init__()
            self.appends: list[int] = []

        async def append_messages(self, agent_name, session_id, messages):  # type: ignore[no-untyped-def]
            self.appends.append(len(messages))
            return await super().append_messages(agent_name, session_id, messages)

        async def save_full_history(self, agent_name, session_id, history):  # type: ignore[no-untyped-def]
            raise AssertionError("the agent must never rewrite a conversation")

    repo = CountingRepository()
    await Agent(config(), ScriptedModel(["a"]), repo).execute_agent("q", session_id="s1")

    assert repo.appends == [2]


async def test_window_never_starts_with_orphaned_tool_results() -> None:
    repo = InMemoryHistoryRepository()
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    call2 = call | {"id": "call_2"}
    await repo.append_messages(
        AGENT,
        "s1",
        [
            {"role": "user", "content": "look it up"},
            {"role": "assistant", "content": None, "tool_calls": [call, call2]},
            {"role": "tool", "tool_call_id": "call_1", "content": "r1"},
            {"role": "tool", "tool_call_id": "call_2", "content": "r2"},
            {"role": "assistant", "content": "found it"},
        ],
    )
    model = ScriptedModel(["ok", "ok"])
    agent = Agent(config(history_limit=3, instructions=None), model, repo)

    await agent.execute_agent("and?", session_id="s1")

    # The limit cut between the call and its results: both results are left out.
    assert contents(model.calls[0]) == [("assistant", "found it"), ("user", "and?")]


async def test_window_keeps_tool_results_whose_call_is_inside_it() -> None:
    repo = InMemoryHistoryRepository()
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    await repo.append_messages(
        AGENT,
        "s1",
        [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "r1"},
        ],
    )
    model = ScriptedModel(["ok"])

    await Agent(config(history_limit=2, instructions=None), model, repo).execute_agent(
        "next", session_id="s1"
    )

    assert [m.role for m in model.calls[0]] == ["assistant", "tool", "user"]
    assert model.calls[0][0].tool_calls == [call]


async def test_without_session_id_warns_and_neither_loads_nor_stores(
    caplog: pytest.LogCaptureFixture,
) -> None:
    repo = InMemoryHistoryRepository()
    await repo.append_messages(AGENT, "s1", [{"role": "user", "content": "secret"}])
    model = ScriptedModel(["ok"])

    with caplog.at_level(logging.WARNING, logger="agentcore"):
        result = await Agent(config(), model, repo).execute_agent("hello")

    assert contents(model.calls[0]) == [("system", "Be brief."), ("user", "hello")]
    assert result.output == "ok"
    assert result.session_id is None
    assert [s.message_count for s in await repo.list_sessions(AGENT)] == [1]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "without a session_id" in warnings[0].getMessage()
    assert AGENT in warnings[0].getMessage()


async def test_without_include_history_nothing_is_loaded_or_stored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    repo = InMemoryHistoryRepository()
    await repo.append_messages(AGENT, "s1", [{"role": "user", "content": "old"}])
    model = ScriptedModel(["ok"])

    with caplog.at_level(logging.WARNING):
        await Agent(config(include_history=False), model, repo).execute_agent("x", "s1")

    assert contents(model.calls[0]) == [("system", "Be brief."), ("user", "x")]
    assert len(await repo.load_history(AGENT, "s1")) == 1
    assert caplog.records == []


async def test_without_repository_runs_statelessly() -> None:
    model = ScriptedModel(["a", "b"])
    agent = Agent(config(), model)

    await agent.execute_agent("one", session_id="s1")
    await agent.execute_agent("two", session_id="s1")

    assert contents(model.calls[1]) == [("system", "Be brief."), ("user", "two")]


async def test_nothing_is_stored_when_the_model_fails() -> None:
    repo = InMemoryHistoryRepository()
    model = ScriptedModel([ModelError("server down", status=503)])

    with pytest.raises(ModelError, match="server down") as caught:
        await Agent(config(), model, repo).execute_agent("hello", session_id="s1")

    assert caught.value.status == 503
    assert await repo.load_history(AGENT, "s1") == []
    assert await repo.list_sessions(AGENT) == []


async def test_a_foreign_model_exception_becomes_a_model_error_and_nothing_is_stored() -> None:
    repo = InMemoryHistoryRepository()
    boom = RuntimeError("socket closed")
    model = ScriptedModel([boom])

    with pytest.raises(ModelError, match="RuntimeError: socket closed") as caught:
        await Agent(config(), model, repo).execute_agent("hello", session_id="s1")

    assert caught.value.__cause__ is boom
    assert caught.value.status is None
    assert await repo.list_sessions(AGENT) == []


async def test_a_reply_that_is_not_an_assistant_message_is_a_model_error() -> None:
    repo = InMemoryHistoryRepository()
    model = ScriptedModel([Message(role="user", content="I am not a reply")])

    with pytest.raises(ModelError, match="assistant Message"):
        await Agent(config(), model, repo).execute_agent("hello", session_id="s1")
    assert await repo.list_sessions(AGENT) == []


async def test_a_tool_message_is_accepted_as_input_and_stored() -> None:
    repo = InMemoryHistoryRepository()
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    await repo.append_messages(
        AGENT, "s1", [{"role": "assistant", "content": None, "tool_calls": [call]}]
    )
    tool_result = Message(role="tool", tool_call_id="c1", content="42")

    await Agent(config(), ScriptedModel(["the answer is 42"]), repo).execute_agent(
        tool_result, session_id="s1"
    )

    stored = await repo.load_history(AGENT, "s1")
    assert [m.role for m in stored] == ["assistant", "tool", "assistant"]
    assert stored[1].tool_call_id == "c1"


@pytest.mark.parametrize(
    ("bad_input", "error"),
    [
        (Message(role="assistant", content="x"), InvalidInputError),
        (Message(role="system", content="x"), InvalidInputError),
        (42, InvalidInputError),
        ("nul \x00 byte", InvalidMessageError),
    ],
)
async def test_bad_input_is_rejected_before_the_model_is_called(
    bad_input: object, error: type[Exception]
) -> None:
    model = ScriptedModel(["never"])

    with pytest.raises(error):
        await Agent(config(), model, InMemoryHistoryRepository()).execute_agent(
            bad_input,  # type: ignore[arg-type]
            session_id="s1",
        )
    assert model.calls == []


@pytest.mark.parametrize("session_id", ["", "  ", "x" * 256, "a\x00b"])
async def test_bad_session_id_is_rejected_before_the_model_is_called(session_id: str) -> None:
    model = ScriptedModel(["never"])

    with pytest.raises(InvalidIdentifierError, match="session_id"):
        await Agent(config(), model, InMemoryHistoryRepository()).execute_agent("x", session_id)
    assert model.calls == []


def test_bad_agent_name_is_rejected_when_the_agent_is_built() -> None:
    with pytest.raises(InvalidIdentifierError, match=r"AgentConfig\.name"):
        Agent(config(name=""), ScriptedModel([]))


def test_history_limit_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="history_limit"):
        config(history_limit=-1)


async def test_a_reply_the_store_refuses_stores_neither_message() -> None:
    repo = InMemoryHistoryRepository()
    model = ScriptedModel([Message(role="assistant", content="bad \x00 reply")])

    with pytest.raises(InvalidMessageError, match=r"messages\[1\]\.content"):
        await Agent(config(), model, repo).execute_agent("hello", session_id="s1")

    assert await repo.list_sessions(AGENT) == []


async def test_a_turn_cancelled_during_the_model_call_stores_nothing() -> None:
    started = asyncio.Event()

    class Hanging:
        async def complete(self, messages: object, *, config: AgentConfig) -> Message:
            started.set()
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    repo = InMemoryHistoryRepository()
    task = asyncio.create_task(Agent(config(), Hanging(), repo).execute_agent("hi", "s1"))
    await started.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert await repo.list_sessions(AGENT) == []


async def test_input_over_the_stores_limit_costs_no_model_call() -> None:
    history = InMemoryHistoryRepository(max_content_chars=100)
    model = ScriptedModel(["never used"])
    agent = Agent(AgentConfig(name="bot", include_history=True), model, history)
    with pytest.raises(InvalidMessageError, match="the limit is 100"):
        await agent.execute_agent("x" * 101, session_id="s")
    assert model.calls == []
    assert await history.load_history("bot", "s") == []
