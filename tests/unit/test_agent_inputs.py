"""What an Agent and the facade accept: blank input, bypassed configs, wrong collaborators,
and the finite default read window."""

from __future__ import annotations

from typing import Any, cast

import pytest

from agentcore import (
    Agent,
    AgentConfig,
    ExecutionFacade,
    InMemoryHistoryRepository,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidMessageError,
    Message,
    ScriptedModel,
)
from agentcore.models import DEFAULT_HISTORY_LIMIT

CONFIG = AgentConfig(name="bot", include_history=True)


@pytest.mark.parametrize(
    "blank",
    [
        "",
        " ",
        "\t\n  ",
        "\u3000",
        Message(role="user", content=""),
        Message(role="user", content=" "),
    ],
)
async def test_blank_user_input_is_refused_before_anything_runs(blank: str | Message) -> None:
    model = ScriptedModel(["never"])
    history = InMemoryHistoryRepository()

    with pytest.raises(InvalidInputError) as raised:
        await Agent(CONFIG, model, history).execute_agent(blank, session_id="s")

    assert str(raised.value) == "an agent's input must not be empty or only whitespace"
    assert model.calls == []
    assert await history.list_sessions("bot") == []


async def test_an_empty_tool_result_is_a_turn() -> None:
    # A tool may legitimately return nothing; its call id carries the meaning.
    history = InMemoryHistoryRepository()
    result = await Agent(CONFIG, ScriptedModel(["noted"]), history).execute_agent(
        Message(role="tool", content="", tool_call_id="call_1"), session_id="s"
    )
    assert result.output == "noted"
    assert [m.content for m in await history.load_history("bot", "s")] == ["", "noted"]


async def test_the_facade_refuses_blank_input_too() -> None:
    facade = ExecutionFacade([CONFIG], ScriptedModel(["never"]), InMemoryHistoryRepository())
    with pytest.raises(InvalidInputError, match="empty or only whitespace"):
        await facade.run_agent("bot", "  ", session_id="s")


def test_history_limit_defaults_to_a_finite_window() -> None:
    assert DEFAULT_HISTORY_LIMIT == 50
    assert AgentConfig(name="bot").history_limit == 50
    assert AgentConfig(name="bot", history_limit=None).history_limit is None


async def test_by_default_the_model_sees_the_last_50_messages() -> None:
    history = InMemoryHistoryRepository()
    await history.append_messages(
        "bot", "s", [{"role": "user", "content": f"m{i}"} for i in range(80)]
    )
    model = ScriptedModel(["ok", "ok"])
    await Agent(CONFIG, model, history).execute_agent("next", session_id="s")
    assert [m.content for m in model.calls[0]] == [f"m{i}" for i in range(30, 80)] + ["next"]

    everything = AgentConfig(name="bot", include_history=True, history_limit=None)
    await Agent(everything, model, history).execute_agent("all", session_id="s")
    assert len(model.calls[1]) == 83


@pytest.mark.parametrize(
    ("fields", "error", "says"),
    [
        ({"name": 5}, InvalidIdentifierError, "AgentConfig.name must be a string, got int"),
        ({"name": "a\nb"}, InvalidIdentifierError, "AgentConfig.name must not contain control"),
        ({"name": "bot", "history_limit": -1}, InvalidInputError,
         "AgentConfig.history_limit must be >= 0, got -1"),
        ({"name": "bot", "history_limit": "10"}, InvalidInputError,
         "AgentConfig.history_limit must be an int or None, got str"),
        ({"name": "bot", "include_history": "yes"}, InvalidInputError,
         "AgentConfig.include_history must be a bool, got str"),
        ({"name": "bot", "instructions": 3}, InvalidInputError,
         "AgentConfig.instructions must be a string or None, got int"),
        ({"name": "bot", "model": ["gpt"]}, InvalidInputError,
         "AgentConfig.model must be a string or None, got list"),
    ],
)  # fmt: skip
def test_a_config_that_skipped_validation_is_checked_when_the_agent_is_built(
    fields: dict[str, Any], error: type[Exception], says: str
) -> None:
    config = AgentConfig.model_construct(**fields)
    with pytest.raises(error) as raised:
        Agent(config, ScriptedModel([]))
    assert str(raised.value).startswith(says)
    with pytest.raises(error):
        ExecutionFacade([config], ScriptedModel([]))


def test_wrong_collaborators_are_refused_when_the_agent_is_built() -> None:
    with pytest.raises(InvalidInputError, match="config must be an AgentConfig, got dict"):
        Agent({"name": "bot"}, ScriptedModel([]))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"model must be a ModelClient .*, got str"):
        Agent(CONFIG, "gpt-4o")  # type: ignore[arg-type]
    with pytest.raises(
        InvalidInputError,
        match=r"history must be a TurnStore, got dict \(it lacks load_history, "
        r"append_messages, get_message\)",
    ):
        Agent(CONFIG, ScriptedModel([]), {})  # type: ignore[arg-type]

    class NoLimit(InMemoryHistoryRepository):
        max_content_chars = None  # type: ignore[assignment]

    with pytest.raises(InvalidInputError, match="max_content_chars must be an int"):
        Agent(CONFIG, ScriptedModel([]), NoLimit())


async def test_a_reply_that_skipped_validation_is_refused_without_a_repository_too() -> None:
    reply = Message.model_construct(role="assistant", content=cast(Any, 42))
    agent = Agent(AgentConfig(name="bot"), ScriptedModel([reply]))
    with pytest.raises(InvalidMessageError, match=r"messages\[1\]\.content must be a string"):
        await agent.execute_agent("hi")


async def test_facade_names_must_be_strings() -> None:
    facade = ExecutionFacade([CONFIG], ScriptedModel([]))
    with pytest.raises(InvalidInputError, match="agent_name must be a string, got list"):
        await facade.run_agent(["bot"], "hi")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="workflow_name must be a string, got dict"):
        await facade.run_custom_workflow({}, "hi")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="agent_names must be a non-empty sequence"):
        await facade.run_simple_workflow(5, "hi")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="agents must be a list of AgentConfig"):
        ExecutionFacade(CONFIG, ScriptedModel([]))  # type: ignore[arg-type]


def test_workflows_must_be_a_mapping() -> None:
    with pytest.raises(InvalidInputError, match=r"workflows must be a mapping .*, got list"):
        ExecutionFacade([CONFIG], ScriptedModel([]), workflows=[object])  # type: ignore[arg-type]
