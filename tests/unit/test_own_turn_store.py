"""A user's own three-method store (tests/unit/dict_turn_store.py) runs agent turns.

It implements :class:`agentcore.TurnStore` only, and is neither a subclass nor
a wrapper of an agentcore repository: ``Agent`` and ``ExecutionFacade`` ask
for nothing more. The typing side is checked too: mypy accepts it where a
``TurnStore`` is asked for and refuses it where a wider port is.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api

from agentcore import (
    Agent,
    AgentConfig,
    ExecutionFacade,
    HistoryRepository,
    InvalidInputError,
    Message,
    ScriptedModel,
    TurnStore,
)
from tests.unit.dict_turn_store import DictTurnStore

ROOT = Path(__file__).parents[2]
CONFIG = AgentConfig(name="support", instructions="Be brief.", include_history=True)


def test_the_store_is_a_turn_store_and_nothing_more() -> None:
    store = DictTurnStore()
    assert isinstance(store, TurnStore)
    assert not isinstance(store, HistoryRepository)


async def test_an_agent_keeps_two_sessions_apart_in_the_users_store() -> None:
    store = DictTurnStore()
    model = ScriptedModel(["A1", "B1", "A2", "B2", "A3"])
    agent = Agent(CONFIG, model, history=store)

    await agent.execute_agent("I am Ann", session_id="ann")
    await agent.execute_agent("I am Bob", session_id="bob")
    await agent.execute_agent("who am I?", session_id="ann")
    await agent.execute_agent("who am I?", session_id="bob")
    result = await agent.execute_agent("and now?", session_id="ann")

    assert result.output == "A3"
    assert [m.content for m in model.calls[3]] == [
        "Be brief.",
        "I am Bob",
        "B1",
        "who am I?",
    ]
    assert [m.content for m in model.calls[4]] == [
        "Be brief.",
        "I am Ann",
        "A1",
        "who am I?",
        "A2",
        "and now?",
    ]
    assert [m.content for m in store.conversations["support", "ann"]] == [
        "I am Ann",
        "A1",
        "who am I?",
        "A2",
        "and now?",
        "A3",
    ]
    assert [m.content for m in store.conversations["support", "bob"]] == [
        "I am Bob",
        "B1",
        "who am I?",
        "B2",
    ]


async def test_the_facade_runs_turns_over_the_users_store() -> None:
    store = DictTurnStore()
    model = ScriptedModel(["one", "two", "three", "four"])
    facade = ExecutionFacade([CONFIG], model, history=store)

    for session, text in [("s1", "a"), ("s2", "b"), ("s1", "c"), ("s2", "d")]:
        await facade.run_agent("support", text, session_id=session)

    assert [m.content for m in model.calls[2]] == ["Be brief.", "a", "one", "c"]
    assert [m.content for m in model.calls[3]] == ["Be brief.", "b", "two", "d"]
    assert [m.role for m in store.conversations["support", "s1"]] == ["user", "assistant"] * 2
    assert list(store.conversations) == [("support", "s1"), ("support", "s2")]


async def test_a_retried_turn_beyond_the_window_is_found_with_get_message() -> None:
    store = DictTurnStore()
    config = AgentConfig(name="support", include_history=True, history_limit=2)
    model = ScriptedModel(["first reply", "second reply"])
    agent = Agent(config, model, history=store)

    first = await agent.execute_agent(Message(role="user", content="hi", id="m-1"), "s")
    await agent.execute_agent("more", session_id="s")
    # The window (2 messages) no longer holds m-1's reply: the agent looks it up.
    retried = await agent.execute_agent(Message(role="user", content="hi", id="m-1"), "s")

    assert retried.output == first.output == "first reply"
    assert len(model.calls) == 2  # the retry did not call the model
    assert len(store.conversations["support", "s"]) == 4


def test_a_store_without_get_message_is_refused_naming_it() -> None:
    class TwoMethods:
        load_history = DictTurnStore.load_history
        append_messages = DictTurnStore.append_messages

    with pytest.raises(
        InvalidInputError, match=r"TurnStore, got TwoMethods \(it lacks get_message\)"
    ):
        Agent(CONFIG, ScriptedModel([]), history=TwoMethods())  # type: ignore[arg-type]


CHECKED = """
from agentcore import (
    Agent, AgentConfig, ExecutionFacade, Message, ScriptedModel, SyncHistoryRepository,
)
from agentcore.transfer import export_jsonl
from tests.unit.dict_turn_store import DictTurnStore

config = AgentConfig(name="support", include_history=True)
Agent(config, ScriptedModel([]), history=DictTurnStore())
ExecutionFacade([config], ScriptedModel([]), history=DictTurnStore())
SyncHistoryRepository.over(DictTurnStore())  # refused: it asks for every port


async def export() -> None:
    with open("out.jsonl", "w") as out:
        await export_jsonl(DictTurnStore(), out)  # refused: it asks for a HistoryExport


class NoGetMessage:
    async def load_history(
        self, agent_name: str, session_id: str | None, limit: int | None = None
    ) -> list[Message]:
        return []

    async def append_messages(
        self, agent_name: str, session_id: str | None, messages: object
    ) -> int:
        return 0


Agent(config, ScriptedModel([]), history=NoGetMessage())  # refused: no get_message
"""


@pytest.mark.slow
def test_mypy_accepts_the_users_store_where_a_turn_store_is_asked_for(tmp_path: Path) -> None:
    checked = tmp_path / "own_store_typing.py"
    checked.write_text(textwrap.dedent(CHECKED))
    out, err, status = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            str(checked),
        ]
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    lines = {int(line.split(":")[1]) for line in errors}
    source = checked.read_text().splitlines()
    refused = {n for n, text in enumerate(source, start=1) if "# refused" in text}
    assert lines == refused, out + err
    assert status == 1
    assert all(e.endswith("[arg-type]") for e in errors), out
    assert '"NoGetMessage" is missing following "TurnStore" protocol member' in out
