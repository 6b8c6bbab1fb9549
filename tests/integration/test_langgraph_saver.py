"""AgentcoreSaver under a real graph: equal to AsyncPostgresSaver, linear storage, resumable.

The graph (bench/langgraph_graph.py) is ``StateGraph(MessagesState)`` with a
stub model and a ``ToolNode``. Both checkpointers run the same turns on the same
database, and every checkpoint of the thread's history must read back equal.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage, HumanMessage, RemoveMessage, ToolMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.types import StateSnapshot
from psycopg_pool import AsyncConnectionPool

from agentcore import InvalidIdentifierError, PostgresHistoryRepository
from agentcore.integrations.langgraph import AgentcoreSaver
from bench.langgraph_graph import build_graph, config, human, run_turns
from tests.conftest import pool_for

ROOT = Path(__file__).resolve().parents[2]


def _normalized(value: Any) -> Any:
    """A state's values with ToolMessage ids blanked: ToolNode draws them at random."""
    if isinstance(value, dict):
        return {k: _normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    if isinstance(value, ToolMessage):
        return value.model_copy(update={"id": None})
    return value


async def _history(graph: Any, thread_id: str) -> list[tuple[Any, ...]]:
    return [
        (
            _normalized(s.values),
            s.next,
            s.metadata.get("step") if s.metadata else None,
            s.metadata.get("source") if s.metadata else None,
            [(t.name, t.interrupts) for t in s.tasks],
            s.parent_config is None,
        )
        async for s in graph.aget_state_history(config(thread_id))
    ]


async def _scenario(saver: BaseCheckpointSaver[Any], thread_id: str) -> list[tuple[Any, ...]]:
    """Turns, tool calls, a removal, an update by id, a rewind and a fork."""
    graph = build_graph(saver)
    await run_turns(graph, thread_id, range(1, 13), weather_every=4)
    await graph.aupdate_state(config(thread_id), {"messages": [RemoveMessage(id="h2")]})
    edited = HumanMessage("edited", id="h3")
    await graph.aupdate_state(config(thread_id), {"messages": [edited]})
    await run_turns(graph, thread_id, range(13, 16))
    history = [s async for s in graph.aget_state_history(config(thread_id))]
    old = history[len(history) // 2]
    await graph.ainvoke({"messages": [human(100, "a fork")]}, old.config)
    await run_turns(graph, thread_id, range(16, 18), weather_every=2)
    return await _history(graph, thread_id)


async def test_a_real_graph_reads_back_equal_to_async_postgres_saver(
    pg_pool: AsyncConnectionPool[Any],
) -> None:
    theirs = AsyncPostgresSaver(pg_pool)
    await theirs.setup()
    ours = await _scenario(AgentcoreSaver(pg_pool), "thread")
    reference = await _scenario(theirs, "thread")
    assert len(ours) == len(reference) > 60
    assert ours == reference


@pytest.mark.parametrize("target", ["postgres-citus"])
async def test_on_a_citus_cluster_a_real_graph_reads_back_equal_to_async_postgres_saver(
    citus_dsn: str, target: str
) -> None:
    """The same graph with AgentcoreSaver on a Citus cluster's coordinator (its
    tables distributed by migration 0009) and AsyncPostgresSaver on plain
    tables of the same coordinator (its own schema, which Citus leaves local)."""
    async with pool_for(citus_dsn) as pool:
        theirs = AsyncPostgresSaver(pool)
        await theirs.setup()
        async with pool.connection() as conn:  # the plain tables' rows of an earlier run
            for table in ("checkpoint_writes", "checkpoint_blobs", "checkpoints"):
                await conn.execute(f"DELETE FROM {table}")
        ours = await _scenario(AgentcoreSaver(pool), "thread")
        reference = await _scenario(theirs, "thread")
    assert len(ours) == len(reference) > 60
    assert ours == reference
    ids = [[m.id for m in state[0]["messages"]] for state in ours]
    assert any("h2" not in i and "echo-h2" in i for i in ids)  # the removal
    assert "h100" in ids[0] and "h15" not in ids[0]  # the fork, from before turn 15
    assert any(isinstance(m, ToolMessage) for m in ours[0][0]["messages"])


async def test_appended_messages_are_stored_once_as_conversation_rows(
    pg_pool: AsyncConnectionPool[Any],
) -> None:
    saver = AgentcoreSaver(pg_pool)
    graph = build_graph(saver)
    await run_turns(graph, "t", range(1, 41))
    async with pg_pool.connection() as conn:
        cur = await conn.execute(
            "SELECT role, content FROM conversation_history"
            " WHERE agent_name = 'langgraph' AND session_id = 't' ORDER BY seq"
        )
        rows = await cur.fetchall()
        cur = await conn.execute(
            "SELECT count(*), count(blob) FROM langgraph_checkpoint_blobs"
            " WHERE channel = 'messages'"
        )
        versions = await cur.fetchone()
    assert len(rows) == 80
    assert rows[:2] == [("user", "message 1"), ("assistant", "echo: message 1")]
    assert versions == (80, 0)  # a version per new message, none holding the list
    # agentcore reads the same conversation.
    repo = PostgresHistoryRepository(pg_pool)
    window = await repo.load_history("langgraph", "t", limit=2)
    assert [m.content for m in window] == ["message 40", "echo: message 40"]


async def test_a_removal_writes_the_list_again_once_then_appends(
    pg_pool: AsyncConnectionPool[Any],
) -> None:
    graph = build_graph(AgentcoreSaver(pg_pool))
    await run_turns(graph, "t", range(1, 6))
    await graph.aupdate_state(config("t"), {"messages": [RemoveMessage(id="h1")]})
    await run_turns(graph, "t", range(6, 8))
    async with pg_pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM conversation_history")
        row = await cur.fetchone()
    # 10 appended, the 9 left written again, then 2 turns of 2.
    assert row == (10 + 9 + 4,)
    state = await graph.aget_state(config("t"))
    assert [m.id for m in state.values["messages"]][:2] == ["echo-h1", "h2"]
    assert len(state.values["messages"]) == 13


RESUME = """
import asyncio, sys
from psycopg_pool import AsyncConnectionPool
from agentcore.integrations.langgraph import AgentcoreSaver
from bench.langgraph_graph import build_graph, config, run_turns

async def main() -> None:
    async with AsyncConnectionPool(sys.argv[1], kwargs={"autocommit": True}) as pool:
        graph = build_graph(AgentcoreSaver(pool))
        await run_turns(graph, "t", range(11, 13))
        state = await graph.aget_state(config("t"))
        print(len(state.values["messages"]))

asyncio.run(main())
"""


async def test_a_new_process_resumes_the_thread_and_only_appends(
    database_dsn: str, pg_pool: AsyncConnectionPool[Any]
) -> None:
    graph = build_graph(AgentcoreSaver(pg_pool))
    await run_turns(graph, "t", range(1, 11))
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", RESUME, database_dsn],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "24"
    async with pg_pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM conversation_history")
        row = await cur.fetchone()
    assert row == (24,)  # the new process read the thread, then appended
    state = await graph.aget_state(config("t"))
    assert [m.id for m in state.values["messages"]][-2:] == ["h12", "echo-h12"]


async def test_sync_invoke_from_another_thread(pg_pool: AsyncConnectionPool[Any]) -> None:
    saver = AgentcoreSaver(pg_pool)
    graph = build_graph(saver)

    def sync_turns() -> list[BaseMessage]:
        for turn in range(1, 4):
            graph.invoke({"messages": [human(turn)]}, config("sync"))
        return graph.get_state(config("sync")).values["messages"]  # type: ignore[no-any-return]

    messages = await asyncio.to_thread(sync_turns)
    assert [m.id for m in messages] == ["h1", "echo-h1", "h2", "echo-h2", "h3", "echo-h3"]
    with pytest.raises(asyncio.InvalidStateError, match="another thread"):
        saver.get_tuple(config("sync"))


async def test_interrupts_and_subgraph_namespaces_read_back_equal(
    pg_pool: AsyncConnectionPool[Any],
) -> None:
    theirs = AsyncPostgresSaver(pg_pool)
    await theirs.setup()

    async def run(saver: BaseCheckpointSaver[Any]) -> list[Any]:
        inner = build_graph(saver).builder.compile(interrupt_before=["tools"])
        outer = StateGraph(MessagesState)
        outer.add_node("agent", inner)
        outer.add_edge(START, "agent")
        graph = outer.compile(checkpointer=saver)
        cfg = config("sub")
        await graph.ainvoke({"messages": [human(1, "weather please")]}, cfg)
        paused = await graph.aget_state(cfg, subgraphs=True)
        await graph.ainvoke(None, cfg)
        history = await _history(graph, "sub")
        tuples = [t async for t in saver.alist(None)]
        namespaces = sorted({t.config["configurable"]["checkpoint_ns"] != "" for t in tuples})
        inner_state = paused.tasks[0].state
        assert isinstance(inner_state, StateSnapshot)
        return [paused.next, _normalized(inner_state.values), history, namespaces]

    ours, reference = await run(AgentcoreSaver(pg_pool)), await run(theirs)
    assert ours == reference
    assert ours[0] == ("agent",)
    assert ours[3] == [False, True]  # the subgraph has checkpoints of its own


async def test_agentcore_idle_purge_deletes_the_threads_checkpoints(
    pg_pool: AsyncConnectionPool[Any],
) -> None:
    saver = AgentcoreSaver(pg_pool)
    graph = build_graph(saver)
    await run_turns(graph, "old", range(1, 3))
    await run_turns(graph, "new", range(1, 3))
    async with pg_pool.connection() as conn:
        await conn.execute(
            "UPDATE conversation_sessions SET updated_at = now() - interval '2 days'"
            " WHERE session_id = 'old'"
        )
    report = await PostgresHistoryRepository(pg_pool).purge_idle_sessions(
        timedelta(days=1), agent_name="langgraph"
    )
    assert report.sessions == 1
    assert await saver.aget_tuple(config("old")) is None
    assert await saver.aget_tuple(config("new")) is not None
    async with pg_pool.connection() as conn:
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM langgraph_checkpoints WHERE thread_id = 'old'),"
            " (SELECT count(*) FROM langgraph_checkpoint_blobs WHERE thread_id = 'old')"
        )
        assert await cur.fetchone() == (0, 0)


async def test_a_thread_id_that_cannot_name_a_conversation_is_refused(
    pg_pool: AsyncConnectionPool[Any],
) -> None:
    graph = build_graph(AgentcoreSaver(pg_pool))
    with pytest.raises(InvalidIdentifierError, match="thread_id"):
        await graph.ainvoke({"messages": [human(1)]}, config("x" * 256))
    async with pg_pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM conversation_sessions")
        assert await cur.fetchone() == (0,)
