"""Custom workflows: user classes that orchestrate agent runs within one session.

A workflow is a class, instantiated with no arguments for each run, with::

    async def execute_workflow(self, initial_input, executor, session_id=None): ...

``executor`` is the :class:`~agentcore.facade.ExecutionFacade` running it; the
workflow passes ``session_id`` on to ``executor.run_agent`` so that its agents'
turns are stored in the caller's session.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from agentcore.errors import (
    InvalidInputError,
    InvalidWorkflowError,
    UnknownWorkflowError,
    WorkflowError,
)
from agentcore.models import AgentResult, Message
from agentcore.validation import check_identifier

logger = logging.getLogger("agentcore.workflows")

REQUIRED_SIGNATURE = "async def execute_workflow(self, initial_input, executor, session_id=None)"
"""The method every custom workflow class must define."""


class AgentRunner(Protocol):
    """What a workflow may call on its ``executor`` (the facade)."""

    async def run_agent(
        self, agent_name: str, input: str | Message, session_id: str | None = None
    ) -> AgentResult:
        """Run one turn of the named agent; see :meth:`ExecutionFacade.run_agent`."""
        ...


class CustomWorkflowExecutor:
    """A registry of custom workflow classes that runs them by name.

    Args:
        workflows: Workflow classes by name, each checked as by :meth:`register`.

    Raises:
        InvalidWorkflowError: a class does not have the required signature.
        InvalidInputError: ``workflows`` is not a mapping (a list of classes, say).
    """

    def __init__(self, workflows: Mapping[str, type] | None = None) -> None:
        if workflows is not None and not isinstance(workflows, Mapping):
            raise InvalidInputError(
                "workflows must be a mapping of names to workflow classes, "
                f"got {type(workflows).__name__}"
            )
        self._workflows: dict[str, type] = {}
        for name, workflow_class in (workflows or {}).items():
            self.register(name, workflow_class)

    @property
    def names(self) -> list[str]:
        """The registered workflow names, sorted."""
        return sorted(self._workflows)

    def register(self, name: str, workflow_class: type) -> None:
        """Add a workflow class under ``name``, after checking its shape.

        Args:
            name: The name callers run it by.
            workflow_class: A class constructible with no arguments that defines
                ``async def execute_workflow(self, initial_input, executor, session_id=None)``.

        Raises:
            InvalidIdentifierError: ``name`` is not a usable name.
            InvalidWorkflowError: the class does not fit, or ``name`` is taken.
        """
        check_identifier(name, "workflow name")
        check_workflow_class(workflow_class, name)
        if name in self._workflows and self._workflows[name] is not workflow_class:
            raise InvalidWorkflowError(
                f"workflow name {name!r} is already registered to "
                f"{_qualname(self._workflows[name])}"
            )
        self._workflows[name] = workflow_class

    async def execute(
        self,
        workflow_name: str,
        initial_input: Any,
        executor: AgentRunner,
        session_id: str | None = None,
    ) -> Any:
        """Instantiate the workflow and await its ``execute_workflow``.

        Args:
            workflow_name: A registered name.
            initial_input: Passed to the workflow unchanged.
            executor: Passed to the workflow, which calls its ``run_agent``.
            session_id: Passed to the workflow as ``session_id=``.

        Returns:
            Whatever the workflow returns.

        Raises:
            UnknownWorkflowError: no workflow has that name (lists the known ones).
            InvalidInputError: ``workflow_name`` is not a string.
            InvalidIdentifierError: ``session_id`` is not a usable id.
            WorkflowError: the workflow raised; the original is the ``__cause__``.
        """
        if not isinstance(workflow_name, str):
            raise InvalidInputError(
                f"workflow_name must be a string, got {type(workflow_name).__name__}"
            )
        workflow_class = self._workflows.get(workflow_name)
        if workflow_class is None:
            raise UnknownWorkflowError(workflow_name, list(self._workflows))
        if session_id is None:
            logger.warning(
                "workflow %r run without a session_id: its agents run without history",
                workflow_name,
            )
        else:
            check_identifier(session_id, "session_id")
        try:
            workflow = workflow_class()
            return await workflow.execute_workflow(initial_input, executor, session_id=session_id)
        except Exception as exc:
            raise WorkflowError(
                f"workflow {workflow_name!r} ({_qualname(workflow_class)}) failed: "
                f"{type(exc).__name__}: {exc}",
                workflow_name=workflow_name,
            ) from exc


def check_workflow_class(workflow_class: object, name: str) -> None:
    """Reject anything that is not a usable custom workflow class.

    Args:
        workflow_class: The candidate.
        name: Its workflow name, for the error message.

    Raises:
        InvalidWorkflowError: the message says what is wrong and prints the
            required signature.
    """
    problem = _workflow_problem(workflow_class)
    if problem:
        raise InvalidWorkflowError(
            f"workflow {name!r}: {problem}. A workflow is a class, constructible with "
            f"no arguments, that defines:\n    {REQUIRED_SIGNATURE}"
        )


def _workflow_problem(workflow_class: object) -> str | None:
    if not inspect.isclass(workflow_class):
        return f"expected a class, got {type(workflow_class).__name__}"
    where = _qualname(workflow_class)
    if _requires_arguments(workflow_class):
        return f"{where} cannot be constructed without arguments"
    method = getattr(workflow_class, "execute_workflow", None)
    if method is None:
        return f"{where} has no execute_workflow method"
    # Looked up on the class, a plain method still has ``self`` to bind; a
    # staticmethod or classmethod does not, as on an instance.
    takes_self = not isinstance(
        inspect.getattr_static(workflow_class, "execute_workflow"), staticmethod | classmethod
    )
    if not inspect.iscoroutinefunction(method):
        return f"{where}.execute_workflow is not an async def"
    signature = inspect.signature(method)
    session = signature.parameters.get("session_id")
    if session is None or session.kind not in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    ):
        return f"{where}.execute_workflow{signature} does not take a session_id parameter"
    if session.default is not None:
        return f"{where}.execute_workflow{signature}: session_id must default to None"
    try:
        signature.bind(*([None] if takes_self else []), None, None, session_id=None)
    except TypeError:
        return f"{where}.execute_workflow{signature} has the wrong parameters"
    return None


def _requires_arguments(workflow_class: type) -> bool:
    try:
        inspect.signature(workflow_class).bind()
    except TypeError:
        return True
    except ValueError:  # no signature to inspect (some builtins): let instantiation decide
        return False
    return False


def load_workflows(folder: str | Path) -> dict[str, type]:
    """Load the custom workflow classes defined in a folder's ``.py`` files.

    Every class defined (not imported) in a ``.py`` file of ``folder`` that has
    an ``execute_workflow`` attribute is a workflow, named by its class name.
    Files whose name starts with ``_`` are skipped. Each file is imported under
    a private module name, so folders need not be packages.

    Args:
        folder: The directory to scan (not recursively).

    Returns:
        Workflow classes by class name, ready for ``ExecutionFacade(workflows=...)``.

    Raises:
        InvalidWorkflowError: the folder does not exist, a file fails to import
            (the original error is the ``__cause__``), two files define the same
            class name, or a workflow class has the wrong signature.
    """
    directory = Path(folder)
    if not directory.is_dir():
        raise InvalidWorkflowError(f"workflow folder {str(directory)!r} is not a directory")
    found: dict[str, type] = {}
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        for name, workflow_class in _workflow_classes(_import_file(path)):
            if name in found:
                raise InvalidWorkflowError(
                    f"workflow {name!r} is defined twice: in {_qualname(found[name])} and in {path}"
                )
            check_workflow_class(workflow_class, name)
            found[name] = workflow_class
    return found


def _import_file(path: Path) -> Any:
    module_name = f"agentcore_workflows_{abs(hash(str(path.resolve())))}_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InvalidWorkflowError(f"cannot import workflow file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise InvalidWorkflowError(
            f"importing workflow file {path} failed: {type(exc).__name__}: {exc}"
        ) from exc
    return module


def _workflow_classes(module: Any) -> list[tuple[str, type]]:
    return [
        (name, value)
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and value.__module__ == module.__name__
        and hasattr(value, "execute_workflow")
    ]


def _qualname(workflow_class: type) -> str:
    return f"{workflow_class.__module__}.{workflow_class.__qualname__}"
