"""The ports of agentcore.repository: their union, their callers and their contract tests.

mypy proves that each caller uses nothing outside the port it asks for; the
tests here prove the other half (a port asks for nothing its caller does not
use), that :class:`HistoryRepository` is exactly the union of the ports, and
that the contract suite is organised by port: every module declares the ports
it checks (and those it only uses), and every method of a port is called by a
module that checks it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest
from typing_extensions import get_protocol_members

from agentcore import InMemoryHistoryRepository, PostgresHistoryRepository
from agentcore.repository import (
    PORTS,
    ChatMessageStore,
    HistoryExport,
    HistoryImport,
    HistoryRepository,
    SessionItemStore,
    TurnStore,
)

ROOT = Path(__file__).parents[2]
CONTRACT = sorted((ROOT / "tests" / "contract").glob("test_*.py"))
EVERY_METHOD = get_protocol_members(HistoryRepository)
BRIDGES = {
    ChatMessageStore: ("AgentcoreChatMessageHistory", "AgentcoreMessageHistory"),
    SessionItemStore: ("AgentcoreSession",),
}
"""The bridge ports, and the bridge classes (LangChain's, Pydantic AI's; the SDK's) whose
contract tests exercise each."""


def _methods_called(path: Path, functions: set[str] | None = None) -> set[str]:
    """Repository methods named as attributes in ``path`` (in ``functions`` only, if given)."""
    tree = ast.parse(path.read_text())
    roots: list[ast.AST] = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (functions is None or node.name in functions)
    ]
    if functions is None:
        roots = [tree]
    return {
        node.attr
        for root in roots
        for node in ast.walk(root)
        if isinstance(node, ast.Attribute) and node.attr in EVERY_METHOD
    }


def _port_marks(path: Path) -> list[pytest.Mark]:
    module = importlib.import_module(f"tests.contract.{path.stem}")
    marks = getattr(module, "pytestmark", [])
    marks = marks if isinstance(marks, list) else [marks]
    return [mark for mark in marks if mark.name == "port"]


def _declared_ports(path: Path) -> list[type]:
    """The ports a contract module checks."""
    return [port for mark in _port_marks(path) for port in mark.args]


def _used_ports(path: Path) -> list[type]:
    """The ports a contract module only uses, to set up or to look at what it checks."""
    return [port for mark in _port_marks(path) for port in mark.kwargs.get("uses", ())]


def test_the_full_protocol_is_exactly_the_union_of_the_ports() -> None:
    union = set().union(*(get_protocol_members(port) for port in PORTS))
    assert union == EVERY_METHOD
    assert all(issubclass(HistoryRepository, port) for port in PORTS)


@pytest.mark.parametrize("port", PORTS, ids=lambda port: port.__name__)
def test_a_method_in_several_ports_has_one_signature(port: type) -> None:
    for name in get_protocol_members(port):
        mine, full = getattr(port, name), getattr(HistoryRepository, name)
        assert inspect.signature(mine) == inspect.signature(full), f"{port.__name__}.{name}"
        assert inspect.iscoroutinefunction(mine) == inspect.iscoroutinefunction(full), name


def test_the_full_protocol_describes_every_method_in_full() -> None:
    for name in EVERY_METHOD:
        doc = inspect.getdoc(getattr(HistoryRepository, name)) or ""
        assert doc and not doc.startswith("As :meth:"), name


def test_both_repositories_implement_every_port() -> None:
    for port in (*PORTS, HistoryRepository):
        assert isinstance(InMemoryHistoryRepository(), port), port.__name__
        assert issubclass(PostgresHistoryRepository, port), port.__name__


def _both(
    memory: InMemoryHistoryRepository, postgres: PostgresHistoryRepository
) -> list[HistoryRepository]:
    return [memory, postgres]  # mypy checks the signatures, not only the names


@pytest.mark.parametrize(
    ("source", "functions", "port"),
    [
        ("agentcore/agent.py", None, TurnStore),
        ("agentcore/transfer.py", {"export_jsonl", "_sessions"}, HistoryExport),
        ("agentcore/transfer.py", {"import_jsonl", "_import_one"}, HistoryImport),
        ("agentcore/integrations/langchain.py", None, ChatMessageStore),
        ("agentcore/integrations/pydantic_ai.py", None, ChatMessageStore),
        ("agentcore/integrations/openai_agents.py", None, SessionItemStore),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_each_caller_asks_for_exactly_the_methods_it_calls(
    source: str, functions: set[str] | None, port: type
) -> None:
    assert _methods_called(ROOT / source, functions) == get_protocol_members(port)


@pytest.mark.parametrize("path", CONTRACT, ids=lambda path: path.stem)
def test_every_contract_module_declares_the_ports_it_checks(path: Path) -> None:
    declared = _declared_ports(path)
    assert declared, f"{path.name} has no pytestmark = pytest.mark.port.with_args(...)"
    assert all(port in PORTS for port in declared), declared
    used = _used_ports(path)
    assert all(port in PORTS and port not in declared for port in used), used


@pytest.mark.parametrize("path", CONTRACT, ids=lambda path: path.stem)
def test_a_contract_module_calls_only_the_ports_it_declares(path: Path) -> None:
    """What a store must implement to run a module is what the module declares."""
    allowed = set().union(
        *(get_protocol_members(port) for port in (*_declared_ports(path), *_used_ports(path)))
    )
    assert _methods_called(path) <= allowed, _methods_called(path) - allowed


@pytest.mark.parametrize("port", PORTS, ids=lambda port: port.__name__)
def test_every_method_of_a_port_is_called_by_a_contract_module_of_that_port(port: type) -> None:
    modules = [path for path in CONTRACT if port in _declared_ports(path)]
    assert modules, f"no contract module declares {port.__name__}"
    if port in BRIDGES:
        # Reached through the bridge, whose source calls exactly the port's
        # methods (test_each_caller_asks_for_exactly_the_methods_it_calls).
        bridges = BRIDGES[port]
        assert all(any(b in path.read_text() for b in bridges) for path in modules), bridges
        return
    called = set().union(*(_methods_called(path) for path in modules))
    assert get_protocol_members(port) <= called, get_protocol_members(port) - called
