from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import pytest

from agentcore import (
    REQUIRED_SIGNATURE,
    AgentResult,
    CustomWorkflowExecutor,
    InvalidIdentifierError,
    InvalidWorkflowError,
    Message,
    UnknownWorkflowError,
    WorkflowError,
    load_workflows,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "custom_workflows"


class RecordingRunner:
    """Stands in for the facade: records run_agent calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | Message, str | None]] = []

    async def run_agent(
        self, agent_name: str, input: str | Message, session_id: str | None = None
    ) -> AgentResult:
        self.calls.append((agent_name, input, session_id))
        reply = Message(role="assistant", content=f"reply {len(self.calls)}")
        return AgentResult(
            agent_name=agent_name,
            output=reply.content or "",
            messages=[reply],
            session_id=session_id,
        )


class Recorder:
    seen: ClassVar[list[tuple[Any, Any, str | None]]] = []

    async def execute_workflow(
        self, initial_input: Any, executor: Any, session_id: str | None = None
    ) -> str:
        Recorder.seen.append((initial_input, executor, session_id))
        return "done"


async def test_execute_passes_input_executor_and_session_id_to_the_workflow() -> None:
    Recorder.seen = []
    runner = RecordingRunner()
    executor = CustomWorkflowExecutor({"rec": Recorder})

    result = await executor.execute("rec", {"task": 1}, runner, session_id="s-42")

    assert result == "done"
    assert Recorder.seen == [({"task": 1}, runner, "s-42")]


async def test_each_run_gets_a_fresh_workflow_instance() -> None:
    instances: list[object] = []

    class Remembering:
        async def execute_workflow(
            self, initial_input: Any, executor: Any, session_id: str | None = None
        ) -> None:
            instances.append(self)

    executor = CustomWorkflowExecutor({"w": Remembering})
    await executor.execute("w", None, RecordingRunner(), session_id="s")
    await executor.execute("w", None, RecordingRunner(), session_id="s")

    assert len(instances) == 2
    assert instances[0] is not instances[1]


async def test_example_workflow_passes_the_session_to_both_agent_runs() -> None:
    workflows = load_workflows(FIXTURES)
    runner = RecordingRunner()

    outputs = await CustomWorkflowExecutor(workflows).execute(
        "ExampleWorkflow", "hello", runner, session_id="s-7"
    )

    assert outputs == ["reply 1", "reply 2"]
    assert runner.calls == [
        ("assistant", "hello", "s-7"),
        ("assistant", "Summarize: reply 1", "s-7"),
    ]


def test_load_workflows_finds_classes_by_name_and_skips_underscore_files() -> None:
    workflows = load_workflows(FIXTURES)
    assert list(workflows) == ["ExampleWorkflow"]
    assert workflows["ExampleWorkflow"].__name__ == "ExampleWorkflow"


def test_load_workflows_ignores_imported_classes_and_helpers(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(
        "from collections import OrderedDict\n"
        "class Helper:\n"
        "    pass\n"
        "class Greeting:\n"
        "    async def execute_workflow(self, initial_input, executor, session_id=None):\n"
        "        return 'hi'\n"
    )
    assert list(load_workflows(tmp_path)) == ["Greeting"]


def test_load_workflows_rejects_a_wrong_signature_in_a_file(tmp_path: Path) -> None:
    (tmp_path / "old.py").write_text(
        "class OldStyle:\n"
        "    async def execute_workflow(self, initial_input, executor):\n"
        "        return None\n"
    )
    with pytest.raises(InvalidWorkflowError, match="OldStyle") as caught:
        load_workflows(tmp_path)
    assert REQUIRED_SIGNATURE in str(caught.value)


def test_load_workflows_reports_a_file_that_fails_to_import(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import no_such_module_here\n")
    with pytest.raises(InvalidWorkflowError, match=r"broken\.py") as caught:
        load_workflows(tmp_path)
    assert isinstance(caught.value.__cause__, ImportError)


def test_load_workflows_rejects_a_class_name_defined_twice(tmp_path: Path) -> None:
    body = (
        "class Twin:\n"
        "    async def execute_workflow(self, initial_input, executor, session_id=None):\n"
        "        return None\n"
    )
    (tmp_path / "a.py").write_text(body)
    (tmp_path / "b.py").write_text(body)
    with pytest.raises(InvalidWorkflowError, match="'Twin' is defined twice"):
        load_workflows(tmp_path)


def test_load_workflows_rejects_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidWorkflowError, match="not a directory"):
        load_workflows(tmp_path / "nope")


class NoMethod:
    pass


class SyncMethod:
    def execute_workflow(
        self, initial_input: Any, executor: Any, session_id: str | None = None
    ) -> None: ...


class NoSession:
    async def execute_workflow(self, initial_input: Any, executor: Any) -> None: ...


class SessionWithoutDefault:
    async def execute_workflow(
        self, initial_input: Any, executor: Any, session_id: str | None
    ) -> None: ...


class SessionOnlyInKwargs:
    async def execute_workflow(self, initial_input: Any, executor: Any, **kwargs: Any) -> None: ...


class TooFewParameters:
    async def execute_workflow(self, session_id: str | None = None) -> None: ...


class StaticWithSelfName:
    # Looks right, but a staticmethod gets no self: "self" would swallow the input.
    @staticmethod
    async def execute_workflow(
        self: Any, initial_input: Any, executor: Any, session_id: str | None = None
    ) -> None: ...


class NeedsArguments:
    def __init__(self, setting: int) -> None:
        self.setting = setting

    async def execute_workflow(
        self, initial_input: Any, executor: Any, session_id: str | None = None
    ) -> None: ...


@pytest.mark.parametrize(
    ("workflow_class", "problem"),
    [
        (NoMethod, "has no execute_workflow method"),
        (SyncMethod, "is not an async def"),
        (NoSession, "does not take a session_id parameter"),
        (SessionWithoutDefault, "session_id must default to None"),
        (SessionOnlyInKwargs, "does not take a session_id parameter"),
        (TooFewParameters, "has the wrong parameters"),
        (StaticWithSelfName, "has the wrong parameters"),
        (NeedsArguments, "cannot be constructed without arguments"),
        (Recorder(), "expected a class, got Recorder"),
    ],
)
def test_registration_rejects_a_bad_workflow_and_prints_the_required_signature(
    workflow_class: Any, problem: str
) -> None:
    with pytest.raises(InvalidWorkflowError) as caught:
        CustomWorkflowExecutor({"bad": workflow_class})
    message = str(caught.value)
    assert "workflow 'bad'" in message
    assert problem in message
    assert "async def execute_workflow(self, initial_input, executor, session_id=None)" in message


def test_register_accepts_extra_optional_parameters_and_keyword_only_session() -> None:
    class Flexible:
        async def execute_workflow(
            self,
            initial_input: Any,
            executor: Any,
            *,
            session_id: str | None = None,
            verbose: bool = False,
        ) -> None: ...

    executor = CustomWorkflowExecutor()
    executor.register("flex", Flexible)
    assert executor.names == ["flex"]


async def test_static_and_class_methods_with_the_right_parameters_are_accepted_and_run() -> None:
    seen: list[Any] = []

    class Static:
        @staticmethod
        async def execute_workflow(
            initial_input: Any, executor: Any, session_id: str | None = None
        ) -> Any:
            seen.append(("static", initial_input, session_id))

    class Classy:
        @classmethod
        async def execute_workflow(
            cls, initial_input: Any, executor: Any, session_id: str | None = None
        ) -> Any:
            seen.append((cls.__name__, initial_input, session_id))

    runner = CustomWorkflowExecutor({"static": Static, "classy": Classy})
    await runner.execute("static", "a", RecordingRunner(), session_id="s1")
    await runner.execute("classy", "b", RecordingRunner(), session_id="s2")
    assert seen == [("static", "a", "s1"), ("Classy", "b", "s2")]


def test_a_name_cannot_be_registered_to_two_classes() -> None:
    class Other(Recorder):
        pass

    executor = CustomWorkflowExecutor({"rec": Recorder})
    with pytest.raises(InvalidWorkflowError, match="already registered"):
        executor.register("rec", Other)


def test_a_bad_workflow_name_is_rejected() -> None:
    with pytest.raises(InvalidIdentifierError, match="workflow name"):
        CustomWorkflowExecutor({"": Recorder})


async def test_unknown_workflow_lists_the_known_names() -> None:
    executor = CustomWorkflowExecutor({"beta": Recorder, "alpha": Recorder})
    with pytest.raises(UnknownWorkflowError) as caught:
        await executor.execute("gamma", None, RecordingRunner(), session_id="s")
    assert str(caught.value) == "unknown workflow 'gamma'; known workflows: 'alpha', 'beta'"
    assert caught.value.available == ["alpha", "beta"]


async def test_a_workflow_exception_is_wrapped_naming_the_workflow() -> None:
    boom = KeyError("missing")

    class Failing:
        async def execute_workflow(
            self, initial_input: Any, executor: Any, session_id: str | None = None
        ) -> None:
            raise boom

    executor = CustomWorkflowExecutor({"failing": Failing})
    with pytest.raises(WorkflowError, match="workflow 'failing'") as caught:
        await executor.execute("failing", None, RecordingRunner(), session_id="s")
    assert caught.value.__cause__ is boom
    assert caught.value.workflow_name == "failing"
    assert "KeyError" in str(caught.value)


async def test_a_workflow_constructor_failure_is_wrapped_too() -> None:
    class BadInit:
        def __init__(self) -> None:
            raise RuntimeError("no config")

        async def execute_workflow(
            self, initial_input: Any, executor: Any, session_id: str | None = None
        ) -> None: ...

    executor = CustomWorkflowExecutor({"bad-init": BadInit})
    with pytest.raises(WorkflowError, match="no config") as caught:
        await executor.execute("bad-init", None, RecordingRunner(), session_id="s")
    assert isinstance(caught.value.__cause__, RuntimeError)


async def test_running_without_a_session_warns(caplog: pytest.LogCaptureFixture) -> None:
    Recorder.seen = []
    with caplog.at_level(logging.WARNING, logger="agentcore"):
        await CustomWorkflowExecutor({"rec": Recorder}).execute("rec", 1, RecordingRunner())
    assert Recorder.seen[0][2] is None
    assert any("without a session_id" in r.getMessage() for r in caplog.records)


async def test_a_bad_session_id_is_rejected_before_the_workflow_runs() -> None:
    Recorder.seen = []
    with pytest.raises(InvalidIdentifierError, match="session_id"):
        await CustomWorkflowExecutor({"rec": Recorder}).execute(
            "rec", 1, RecordingRunner(), session_id=""
        )
    assert Recorder.seen == []
