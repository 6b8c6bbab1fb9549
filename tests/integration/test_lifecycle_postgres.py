"""Lifecycle operations on PostgreSQL: their plans, their round trips, their locks,
and migration 0003 (up, down, up again, data kept)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from agentcore import Message, PostgresHistoryRepository, migrations
from agentcore.models import PurgeReport
from agentcore.sql import load_queries
from bench.wire import traced
from tests.conftest import pool_for
from tests.support import CITUS_MIGRATION, LANGGRAPH_MIGRATION

SQL = load_queries()
THIRD = "0003_session_metadata"
FIFTH = "0005_hot_session_updates"
SIXTH = "0006_cached_role_check"
SEVENTH = "0007_scoped_state"

# 20,000 conversations of 10 agents, one message each, a quarter with an owner
# among 5 (hundreds of conversations each, like a busy user), updated_at spread
# over 20,000 seconds: big enough that a plan reading every row (a sequential
# scan, a sort of all rows) shows as one.
FILL = """
INSERT INTO conversation_sessions (
    agent_name, session_id, next_seq, created_at, updated_at, metadata
)
SELECT 'agent-' || (i % 10), 's-' || i, 1,
       timestamptz '2025-01-01' + i * interval '1 second',
       timestamptz '2025-01-01' + i * interval '1 second',
       CASE WHEN i % 4 = 0 THEN jsonb_build_object('owner', 'user-' || (i / 10 % 5)) ELSE '{}' END
FROM generate_series(1, 20000) AS i;
INSERT INTO conversation_history (agent_name, session_id, seq, role, content, created_at)
SELECT 'agent-' || (i % 10), 's-' || i, 0, 'user', 'hi', timestamptz '2025-01-01'
FROM generate_series(1, 20000) AS i;
INSERT INTO conversation_history (agent_name, session_id, seq, role, content, created_at)
SELECT 'agent-1', 'long', n, 'user', 'm' || n, timestamptz '2025-01-01'
FROM generate_series(0, 9999) AS n;
INSERT INTO conversation_sessions (agent_name, session_id, next_seq)
VALUES ('agent-1', 'long', 10000);
ANALYZE conversation_sessions;
ANALYZE conversation_history;
"""


def plan(dsn: str, name: str, params: dict[str, Any]) -> str:
    with psycopg.connect(dsn) as conn:
        # A prepared statement's generic plan is what a pooled connection runs
        # after five executions: check that one, not only the custom plan.
        conn.execute("SET plan_cache_mode = force_generic_plan")
        text = SQL[name].text
        rows = conn.execute(("EXPLAIN (FORMAT JSON) " + text).encode(), params).fetchall()
        return json.dumps(rows[0][0])


@pytest.fixture
def filled(database_dsn: str) -> str:
    with psycopg.connect(database_dsn, autocommit=True) as conn:
        conn.execute(FILL.encode())
    return database_dsn


def _node_types(plan_json: str) -> list[str]:
    found: list[str] = []

    def visit(node: dict[str, Any]) -> None:
        found.append(node["Node Type"] + ":" + node.get("Index Name", ""))
        for child in node.get("Plans", []):
            visit(child)

    visit(json.loads(plan_json)[0]["Plan"])
    return found


AFTER = {"after_time": datetime(2025, 1, 1, 3, tzinfo=UTC), "after_session": "s-10800"}


def test_one_owners_page_is_one_range_of_the_owner_index_without_a_sort(filled: str) -> None:
    for name, extra in [("list_owner_sessions", {}), ("list_owner_sessions_after", AFTER)]:
        nodes = _node_types(
            plan(filled, name, {"agent_name": "agent-0", "owner": "user-3", "limit": 21} | extra)
        )
        assert "Index Scan:ix_conversation_sessions_owner" in nodes, nodes
        assert not any(n.startswith(("Sort", "Incremental Sort", "Seq Scan")) for n in nodes), nodes


def test_a_sessions_page_after_a_cursor_is_an_index_range_without_a_full_sort(filled: str) -> None:
    nodes = _node_types(
        plan(filled, "list_sessions_after", {"agent_name": "agent-0", "limit": 101} | AFTER)
    )
    assert "Index Scan:ix_conversation_sessions_recent" in nodes, nodes
    # Ties on updated_at are ordered by session id within each group only.
    assert not any(n.startswith(("Sort:", "Seq Scan")) for n in nodes), nodes


def test_a_history_page_is_one_backward_range_of_the_primary_key(filled: str) -> None:
    nodes = _node_types(
        plan(
            filled,
            "load_messages_before",
            {"agent_name": "agent-1", "session_id": "long", "before": 5000, "limit": 51},
        )
    )
    assert nodes[-1] == "Index Scan:conversation_history_pkey", nodes
    assert not any(n.startswith(("Sort", "Seq Scan")) for n in nodes), nodes


def test_purge_finds_idle_sessions_through_the_recent_index(filled: str) -> None:
    nodes = _node_types(
        plan(
            filled,
            "purge_idle_sessions",
            {
                "agent_name": "agent-3",
                "cutoff": datetime(2025, 1, 1, 1, tzinfo=UTC),
                "after_time": datetime(1, 1, 1, tzinfo=UTC),
                "after_session": "",
                "batch_size": 100,
            },
        )
    )
    assert "Index Scan:ix_conversation_sessions_recent" in nodes, nodes
    assert not any(n.startswith("Seq Scan") for n in nodes), nodes
    agents = _node_types(plan(filled, "list_agents", {}))
    assert not any(n.startswith("Seq Scan") for n in agents), agents


def test_a_purge_in_heap_order_reads_a_range_of_pages_not_the_table(filled: str) -> None:
    for agent in ("agent-3", None):
        nodes = _node_types(
            plan(
                filled,
                "purge_idle_in_heap_order",
                {
                    "agent_name": agent,
                    "cutoff": datetime(2025, 1, 1, 1, tzinfo=UTC),
                    "after": "(10,0)",
                    "before": 1034,
                    "batch_size": 100,
                },
            )
        )
        assert "Tid Range Scan" in [n.split(":")[0] for n in nodes], nodes
        assert not any(n.startswith("Seq Scan") for n in nodes), nodes
    deleting = _node_types(
        plan(
            filled,
            "purge_messages_in_heap_order",
            {"agent_names": ["agent-1", "agent-2"], "session_ids": ["s-1", "s-2"]},
        )
    )
    assert "Index Scan:conversation_history_pkey" in deleting, deleting
    assert not any(n.startswith("Seq Scan") for n in deleting), deleting


# --- round trips ------------------------------------------------------------------------


@pytest.fixture
async def one_connection(database_dsn: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    async with pool_for(database_dsn, max_size=1) as pool:
        yield pool


@pytest.mark.parametrize("size", [3, 500])
async def test_copy_is_one_round_trip_whatever_the_length(
    one_connection: AsyncConnectionPool[Any], size: int
) -> None:
    repo = PostgresHistoryRepository(one_connection)
    await repo.append_messages(
        "a", "src", [Message(role="user", content=f"m{i}") for i in range(size)]
    )
    async with one_connection.connection() as conn:
        pgconn = conn.pgconn
    with traced(pgconn) as wire:
        assert await repo.copy_session("a", "src", "dst") == size
    # BEGIN ISOLATION LEVEL READ COMMITTED, the lock, the copy, COMMIT: one
    # round trip at READ COMMITTED whatever the server's default isolation.
    assert (wire.statements, wire.round_trips) == (4, 1)


# --- locks: a purge never deletes a conversation being written ------------------------


async def test_purge_skips_a_conversation_whose_lock_a_writer_holds(database_dsn: str) -> None:
    async with pool_for(database_dsn, max_size=3) as pool:
        repo = PostgresHistoryRepository(pool)
        old = datetime(2025, 1, 1, tzinfo=UTC)
        for session in ("busy-row", "busy-lock", "idle"):
            await repo.import_session(
                "a", session, [Message(role="user", content="x")], updated_at=old
            )
        async with pool.connection() as writer, writer.transaction():
            # A writer in the middle of a turn: the row lock of an append, and
            # the advisory lock of a replace or a deduplicating append.
            await writer.execute(
                "SELECT 1 FROM conversation_sessions WHERE session_id = 'busy-row' FOR UPDATE"
            )
            await writer.execute(
                SQL["lock_session"].text, {"agent_name": "a", "session_id": "busy-lock"}
            )
            report = await asyncio.wait_for(
                repo.purge_idle_sessions(timedelta(days=1), pause=0), timeout=30
            )
        assert report == PurgeReport(sessions=1, messages=1)
        left = sorted(s.session_id for s in await repo.list_sessions("a"))
        assert left == ["busy-lock", "busy-row"]
        # Run again once the writer is gone: the rest goes.
        assert await repo.purge_idle_sessions(timedelta(days=1), pause=0) == PurgeReport(
            sessions=2, messages=2
        )


async def test_purge_keeps_a_conversation_whose_write_commits_during_the_purge(
    database_dsn: str,
) -> None:
    # A turn in flight on an idle conversation (its counter row updated, not
    # yet committed) while the purge runs: the purge passes it by, and the
    # turn's messages are all there after the commit.
    async with pool_for(database_dsn, max_size=3) as pool:
        repo = PostgresHistoryRepository(pool)
        old = datetime(2025, 1, 1, tzinfo=UTC)
        await repo.import_session("a", "s", [Message(role="user", content="x")], updated_at=old)
        async with pool.connection() as writer:
            await writer.execute("BEGIN")
            await writer.execute(
                "UPDATE conversation_sessions SET updated_at = now(), next_seq = next_seq + 1"
                " WHERE session_id = 's'"
            )
            await writer.execute(
                "INSERT INTO conversation_history (agent_name, session_id, seq, role, content)"
                " VALUES ('a', 's', 1, 'user', 'new')"
            )
            purge = asyncio.create_task(
                repo.purge_idle_sessions(timedelta(days=1), pause=0, batch_size=10)
            )
            await asyncio.sleep(0.5)  # the purge skips the locked row meanwhile
            await writer.execute("COMMIT")
            await purge
        assert [m.content for m in await repo.load_history("a", "s")] == ["x", "new"]


# --- the walk in heap order, and the budget ---------------------------------------------

# 60 conversations of agents "a" and "b" written in turn, 6 at a time (the way
# live traffic leaves them: a page holds rows of several), even ones idle; two
# idle ones of "a" without messages (only the final pass finds them); one idle
# conversation whose first message was deleted (its rows start at position 1).
INTERLEAVED = """
INSERT INTO conversation_sessions (agent_name, session_id, next_seq, updated_at)
SELECT CASE WHEN i % 3 = 0 THEN 'b' ELSE 'a' END, 's-' || i, 8,
       CASE WHEN i % 2 = 0 THEN timestamptz '2025-01-01' + i * interval '1 minute'
            ELSE now() END
FROM generate_series(1, 60) AS i;
INSERT INTO conversation_history (agent_name, session_id, seq, role, content)
SELECT CASE WHEN i % 3 = 0 THEN 'b' ELSE 'a' END, 's-' || i, n, 'user', repeat('x', 300)
FROM generate_series(1, 60) AS i CROSS JOIN generate_series(0, 7) AS n
ORDER BY i / 6, n, i;
INSERT INTO conversation_sessions (agent_name, session_id, next_seq, updated_at)
VALUES ('a', 'empty-1', 0, '2025-01-01'), ('a', 'empty-2', 0, '2025-01-01');
DELETE FROM conversation_history WHERE session_id = 's-4' AND seq = 0;
UPDATE conversation_sessions SET next_seq = 7 WHERE session_id = 's-4';
"""


def _stored(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT s.session_id, count(h.seq) FROM conversation_sessions AS s"
            " LEFT JOIN conversation_history AS h USING (agent_name, session_id)"
            " GROUP BY s.session_id"
        ).fetchall()
        (orphans,) = conn.execute(
            "SELECT count(*) FROM conversation_history AS h WHERE NOT EXISTS ("
            " SELECT 1 FROM conversation_sessions AS s"
            " WHERE s.agent_name = h.agent_name AND s.session_id = h.session_id)"
        ).fetchone() or (None,)
    assert orphans == 0, "messages left without their conversation"
    return dict(rows)


@pytest.mark.parametrize("agent", [None, "a"])
async def test_a_purge_in_heap_order_deletes_exactly_the_idle_conversations(
    database_dsn: str, agent: str | None
) -> None:
    with psycopg.connect(database_dsn, autocommit=True) as conn:
        conn.execute(INTERLEAVED.encode())
    before = _stored(database_dsn)
    idle = {f"s-{i}" for i in range(2, 61, 2) if agent is None or i % 3}
    idle |= {"empty-1", "empty-2"}
    async with pool_for(database_dsn, max_size=2) as pool:
        repo = PostgresHistoryRepository(pool)
        progress: list[PurgeReport] = []
        report = await repo.purge_idle_sessions(
            timedelta(days=30),
            agent_name=agent,
            batch_size=4,
            pause=0,
            max_impact=1,
            on_progress=progress.append,
        )
    assert report == PurgeReport(sessions=len(idle), messages=sum(before[s] for s in idle))
    assert progress[-1] == report and len(progress) >= len(idle) // 4
    assert _stored(database_dsn) == {s: n for s, n in before.items() if s not in idle}


async def test_a_purge_waits_after_each_batch_in_proportion_to_its_cost(
    database_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(database_dsn, autocommit=True) as conn:
        conn.execute(INTERLEAVED.encode())
    async with pool_for(database_dsn, max_size=2) as pool:
        repo = PostgresHistoryRepository(pool)
        spent: list[float] = []
        batch = repo._purge_heap_batch

        async def slow_batch(params: dict[str, Any]) -> Any:
            # Each batch costs 20 ms more, as under concurrent load.
            started = asyncio.get_running_loop().time()
            await asyncio.sleep(0.02)
            done = await batch(params)
            if done[0]:
                spent.append(asyncio.get_running_loop().time() - started)
            return done

        monkeypatch.setattr(repo, "_purge_heap_batch", slow_batch)
        started = asyncio.get_running_loop().time()
        await repo.purge_idle_sessions(
            timedelta(days=30), agent_name="a", batch_size=5, pause=0, max_impact=0.25
        )
        elapsed = asyncio.get_running_loop().time() - started
    # Busy a quarter of the time: after a batch of d seconds, 3 d of rest.
    assert len(spent) >= 3
    assert elapsed >= 4 * sum(spent)


# --- migration 0003 ---------------------------------------------------------------------


async def test_0003_rolls_back_and_up_again_keeping_conversations(empty_database_dsn: str) -> None:
    dsn = empty_database_dsn
    migrations.apply(dsn)
    async with PostgresHistoryRepository.from_dsn(dsn) as repo:
        await repo.append_messages("a", "s", [{"role": "user", "content": "kept"}])
        await repo.set_session_metadata("a", "s", {"owner": "u", "title": "t"})

    assert migrations.rollback(dsn, steps=7) == [
        CITUS_MIGRATION,
        LANGGRAPH_MIGRATION,
        SEVENTH,
        SIXTH,
        FIFTH,
        "0004_exact_items",
        THIRD,
    ]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regclass('ix_conversation_sessions_owner')").fetchone() == (
            None,
        )
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'conversation_sessions' ORDER BY ordinal_position"
            )
        ]
        assert "metadata" not in columns
        assert conn.execute("SELECT next_seq FROM conversation_sessions").fetchall() == [(1,)]

    assert migrations.apply(dsn) == [
        THIRD,
        "0004_exact_items",
        FIFTH,
        SIXTH,
        SEVENTH,
        LANGGRAPH_MIGRATION,
        CITUS_MIGRATION,
    ]
    async with PostgresHistoryRepository.from_dsn(dsn) as repo:
        [info] = await repo.list_sessions("a")
        assert (info.session_id, info.message_count, info.metadata) == ("s", 1, {})
        assert [m.content for m in await repo.load_history("a", "s")] == ["kept"]
        await repo.set_session_metadata("a", "s", {"owner": "u"})
        page = await repo.list_sessions_page("a", owner="u")
        assert [s.session_id for s in page.sessions] == ["s"]
