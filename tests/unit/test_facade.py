from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from agentcore import (
    AgentConfig,
    EchoModel,
    ExecutionFacade,
    InMemoryHistoryRepository,
    InvalidInputError,
    InvalidWorkflowError,
    ModelError,
    ScriptedModel,
    UnknownAgentError,
    UnknownWorkflowError,
    WorkflowError,
    load_workflows,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "custom_workflows"
ASSISTANT = AgentConfig(name="assistant", include_history=True, history_limit=20)


def facade(
    model: Any, repo: InMemoryHistoryRepository | None = None, **kwargs: Any
) -> ExecutionFacade:
    return ExecutionFacade(
        [ASSISTANT, AgentConfig(name="critic", instructions="Criticize.")],
        model,
        repo if repo is not None else InMemoryHistoryRepository(),
        **kwargs,
    )


async def test_run_agent_passes_the_session_id_to_the_agent() -> None:
    repo = InMemoryHistoryRepository()
    model = ScriptedModel(["one", "two"])
    app = facade(model, repo)

    result = await app.run_agent("assistant", "hello", session_id="s1")
    await app.run_agent("assistant", "again", session_id="s1")

    assert result.session_id == "s1"
    assert [m.content for m in model.calls[1]] == ["hello", "one", "again"]
    assert len(await repo.load_history("assistant", "s1")) == 4


async def test_run_agent_keeps_sessions_apart() -> None:
    repo = InMemoryHistoryRepository()
    model = ScriptedModel(["a1", "b1", "a2"])
    app = facade(model, repo)

    await app.run_agent("assistant", "from A", session_id="A")
    await app.run_agent("assistant", "from B", session_id="B")
    await app.run_agent("assistant", "A again", session_id="A")

    assert [m.content for m in model.calls[1]] == ["from B"]
    assert [m.content for m in model.calls[2]] == ["from A", "a1", "A again"]


async def test_run_custom_workflow_passes_the_session_id_to_the_executor() -> None:
    seen: list[tuple[Any, Any, str | None]] = []

    class Spy:
        async def execute_workflow(
            self, initial_input: Any, executor: Any, session_id: str | None = None
        ) -> str:
            seen.append((initial_input, executor, session_id))
            return "spied"

    app = facade(ScriptedModel([]), workflows={"spy": Spy})

    assert await app.run_custom_workflow("spy", "go", session_id="s9") == "spied"
    assert seen == [("go", app, "s9")]


async def test_example_workflow_stores_both_turns_under_the_callers_session() -> None:
    repo = InMemoryHistoryRepository()
    app = facade(EchoModel(), repo, workflows=load_workflows(FIXTURES))

    outputs = await app.run_custom_workflow("ExampleWorkflow", "plan a trip", session_id="s1")

    assert outputs[0] == 'echo: "plan a trip" (I remember no earlier messages)'
    # The second turn saw the first: same session, passed down by the workflow.
    assert outputs[1].endswith('(I remember 2 earlier messages; you first said "plan a trip")')
    stored = await repo.load_history("assistant", "s1")
    assert [m.role for m in stored] == ["user", "assistant", "user", "assistant"]
    assert [s.session_id for s in await repo.list_sessions("assistant")] == ["s1"]


async def test_run_simple_workflow_chains_outputs_without_a_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    repo = InMemoryHistoryRepository()
    model = ScriptedModel(["draft", "critique"])
    app = facade(model, repo)

    with caplog.at_level(logging.WARNING, logger="agentcore"):
        result = await app.run_simple_workflow(["assistant", "critic"], "write")

    assert result.output == "critique"
    assert result.agent_name == "critic"
    assert result.session_id is None
    assert [m.content for m in model.calls[1]] == ["Criticize.", "draft"]
    assert await repo.list_sessions("assistant") == []
    # assistant has include_history: it says its turn is not stored.
    assert any("assistant" in r.getMessage() for r in caplog.records)


async def test_run_simple_workflow_checks_every_name_before_running_any() -> None:
    model = ScriptedModel(["never"])
    with pytest.raises(UnknownAgentError, match="'ghost'"):
        await facade(model).run_simple_workflow(["assistant", "ghost"], "x")
    assert model.calls == []


async def test_run_simple_workflow_needs_agents() -> None:
    with pytest.raises(InvalidInputError, match="non-empty"):
        await facade(ScriptedModel([])).run_simple_workflow([], "x")
    with pytest.raises(InvalidInputError, match="non-empty"):
        await facade(ScriptedModel([])).run_simple_workflow("assistant", "x")


async def test_unknown_agent_lists_the_known_agents() -> None:
    with pytest.raises(UnknownAgentError) as caught:
        await facade(ScriptedModel([])).run_agent("nobody", "x", session_id="s")
    assert str(caught.value) == "unknown agent 'nobody'; known agents: 'assistant', 'critic'"


async def test_unknown_workflow_lists_the_known_workflows() -> None:
    app = facade(ScriptedModel([]), workflows=load_workflows(FIXTURES))
    with pytest.raises(UnknownWorkflowError, match="known workflows: 'ExampleWorkflow'"):
        await app.run_custom_workflow("Missing", "x", session_id="s")


async def test_unknown_workflow_with_none_registered_says_so() -> None:
    with pytest.raises(UnknownWorkflowError, match="known workflows: none"):
        await facade(ScriptedModel([])).run_custom_workflow("Missing", "x", session_id="s")


async def test_a_model_failure_inside_a_workflow_names_the_workflow_and_stores_nothing() -> None:
    repo = InMemoryHistoryRepository()
    app = facade(
        ScriptedModel(["first", ModelError("rate limited", status=429)]),
        repo,
        workflows=load_workflows(FIXTURES),
    )

    with pytest.raises(WorkflowError, match="'ExampleWorkflow'") as caught:
        await app.run_custom_workflow("ExampleWorkflow", "x", session_id="s1")

    assert isinstance(caught.value.__cause__, ModelError)
    assert caught.value.__cause__.status == 429
    # The first turn completed and is kept; the failed second turn stored nothing.
    assert [m.content for m in await repo.load_history("assistant", "s1")] == ["x", "first"]


def test_duplicate_agent_names_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="two agents are named 'assistant'"):
        ExecutionFacade([ASSISTANT, ASSISTANT], EchoModel())


def test_agents_must_be_agent_configs() -> None:
    with pytest.raises(InvalidInputError, match="AgentConfig"):
        ExecutionFacade([{"name": "x"}], EchoModel())  # type: ignore[list-item]


def test_a_bad_workflow_class_is_rejected_when_the_facade_is_built() -> None:
    class Old:
        async def execute_workflow(self, initial_input: Any, executor: Any) -> None: ...

    with pytest.raises(InvalidWorkflowError, match="session_id"):
        ExecutionFacade([ASSISTANT], EchoModel(), workflows={"old": Old})


def test_names_are_listed() -> None:
    app = facade(EchoModel(), workflows=load_workflows(FIXTURES))
    assert app.agent_names == ["assistant", "critic"]
    assert app.workflow_names == ["ExampleWorkflow"]
