"""AgentcoreSession's compaction hooks: the SDK's compaction is atomic on every repository."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import pytest
from agents import Agent, RunConfig, Runner
from agents.memory import OpenAIResponsesCompactionSession
from agents.testing import ScriptedModel, assistant_message

from agentcore import HistoryRepository
from agentcore.integrations.openai_agents import AgentcoreSession
from agentcore.repository import SessionItemStore

pytestmark = pytest.mark.port.with_args(SessionItemStore)


def said(*texts: str) -> list[Any]:
    return [{"role": "user", "content": t} for t in texts]


async def stored(session: AgentcoreSession) -> list[Any]:
    return await session.get_items(limit=-1)


async def test_a_snapshot_shorter_than_its_limit_is_the_whole_session(
    repo: HistoryRepository,
) -> None:
    session = AgentcoreSession("s", repo)
    await session.add_items(said("a", "b", "c"))
    snapshot = await session._get_compaction_snapshot(5)
    assert snapshot is not None
    assert (snapshot.items, snapshot.complete) == (said("a", "b", "c"), True)
    exact = await session._get_compaction_snapshot(3)
    assert exact is not None and (exact.items, exact.complete) == (said("a", "b", "c"), True)


async def test_a_snapshot_holds_the_latest_items_and_says_it_is_partial(
    repo: HistoryRepository,
) -> None:
    session = AgentcoreSession("s", repo)
    await session.add_items(said("a", "b", "c", "d"))
    snapshot = await session._get_compaction_snapshot(2)
    assert snapshot is not None
    assert (snapshot.items, snapshot.complete) == (said("c", "d"), False)


async def test_replace_suffix_puts_the_output_in_place_of_the_suffix(
    repo: HistoryRepository,
) -> None:
    session = AgentcoreSession("s", repo)
    await session.add_items(said("a", "b", "c", "d"))
    snapshot = await session._get_compaction_snapshot(3)
    assert snapshot is not None
    summary: Any = {"type": "compaction", "id": "cmp", "encrypted_content": "x", "n": 1.0}
    assert await snapshot.replace_suffix(1, [summary])
    assert await stored(session) == [*said("a", "b"), summary]
    await session.add_items(said("e"))
    assert await stored(session) == [*said("a", "b"), summary, *said("e")]


@pytest.mark.parametrize("write", ["add", "pop", "clear"])
async def test_a_write_after_the_snapshot_makes_replace_suffix_change_nothing(
    repo: HistoryRepository, write: str
) -> None:
    session = AgentcoreSession("s", repo)
    await session.add_items(said("a", "b", "c"))
    snapshot = await session._get_compaction_snapshot(2)
    assert snapshot is not None
    other = AgentcoreSession("s", repo)  # another process, say
    if write == "add":
        await other.add_items(said("newer"))
    elif write == "pop":
        await other.pop_item()
    else:
        await other.clear_session()
    before = await stored(session)
    assert not await snapshot.replace_suffix(0, said("summary"))
    assert await stored(session) == before


async def test_replace_suffix_of_nothing_is_refused(repo: HistoryRepository) -> None:
    session = AgentcoreSession("s", repo)
    await session.add_items(said("a"))
    snapshot = await session._get_compaction_snapshot(2)
    assert snapshot is not None
    assert not await snapshot.replace_suffix(1, said("summary"))
    assert await stored(session) == said("a")


def expired(item: Any) -> bool:
    return str(item.get("content", "")).startswith("old")


async def test_prune_prefix_drops_the_expired_start_in_the_same_replacement(
    repo: HistoryRepository,
) -> None:
    session = AgentcoreSession("s", repo)
    await session.add_items(said("old1", "old2", "live", "old3", "x", "y"))
    snapshot = await session._get_compaction_snapshot(2, prune_prefix=expired)
    assert snapshot is not None and snapshot.items == said("x", "y")
    assert await snapshot.replace_suffix(0, said("summary"))
    # The expired start goes; an expired item after a live one stays.
    assert await stored(session) == said("live", "old3", "summary")


async def test_prune_prefix_checks_the_whole_session_it_rewrites(
    repo: HistoryRepository,
) -> None:
    session = AgentcoreSession("s", repo)
    await session.add_items(said("old1", "live", "x"))
    snapshot = await session._get_compaction_snapshot(1, prune_prefix=expired)
    assert snapshot is not None
    await AgentcoreSession("s", repo).add_items(said("newer"))
    assert not await snapshot.replace_suffix(0, said("summary"))
    assert await stored(session) == said("old1", "live", "x", "newer")


async def test_prune_prefix_without_expired_items_replaces_the_suffix_only(
    repo: HistoryRepository,
) -> None:
    session = AgentcoreSession("s", repo)
    await session.add_items(said("live", "old1", "x"))
    snapshot = await session._get_compaction_snapshot(1, prune_prefix=expired)
    assert snapshot is not None
    assert await snapshot.replace_suffix(0, said("summary"))
    assert await stored(session) == said("live", "old1", "summary")


async def test_atomic_replace_items_replaces_the_whole_session(repo: HistoryRepository) -> None:
    session = AgentcoreSession("s", repo)
    await session.add_items(said("a", "b"))
    assert await AgentcoreSession._atomic_replace_items(session, said("summary"))
    assert await stored(session) == said("summary")
    assert await AgentcoreSession._atomic_replace_items(session, [])
    assert await stored(session) == []


async def test_a_subclass_that_transforms_items_gets_no_hooks(repo: HistoryRepository) -> None:
    class Upper(AgentcoreSession):
        async def add_items(self, items: list[Any]) -> None:
            upper: Any = [{**i, "content": i["content"].upper()} for i in items]
            await super().add_items(upper)

    session = Upper("s", repo)
    await session.add_items(said("a"))
    assert await session._get_compaction_snapshot(2) is None
    assert not await Upper._atomic_replace_items(session, said("b"))
    assert await stored(session) == said("A")


async def test_sdk_compaction_replaces_history_in_one_write(repo: HistoryRepository) -> None:
    """The SDK's compaction uses the atomic hooks, never its clear-then-add fallback."""
    session = AgentcoreSession("s", repo)
    await session.add_items(said("a", "b", "c"))
    summary = {"type": "compaction", "id": "cmp", "encrypted_content": "summary"}
    client = MagicMock()
    client.responses.compact = AsyncMock(return_value=SimpleNamespace(output=[summary]))
    compacting = OpenAIResponsesCompactionSession(
        "s",
        session,
        client=client,
        compaction_mode="input",
        should_trigger_compaction=lambda _: True,
    )
    clears = AsyncMock(wraps=session.clear_session)
    session.clear_session = clears  # type: ignore[method-assign]
    model = ScriptedModel([[assistant_message("done")]])
    await Runner.run(
        Agent(name="worker", model=model),
        "continue",
        session=compacting,
        run_config=RunConfig(session_settings={"limit": 1}, tracing_disabled=True),
    )
    # The model saw the last stored item and the turn: they are summarised
    # (from the user message on), the items before them are kept.
    client.responses.compact.assert_awaited_once()
    assert await stored(session) == [*said("a", "b"), summary]
    await compacting.run_compaction({"force": True, "compaction_mode": "input"})
    assert await stored(session) == [summary]
    clears.assert_not_awaited()
