"""The migrations on a Citus coordinator: distributed when citus is there, plain otherwise.

The distribution migration is found by name (its number changes as migrations
are added before it), and what was written before each step (a conversation
with its ADK state, its owner's and its agent's, and a LangGraph checkpoint's
rows) must read back the same after it.
"""

from __future__ import annotations

from typing import Any

import psycopg

from agentcore import Message, PostgresHistoryRepository, migrations
from tests.conftest import pool_for
from tests.support import CITUS_MIGRATION, PgServer

CONVERSATION_TABLES = {
    "conversation_sessions": "session_id",
    "conversation_history": "session_id",
    "session_state": "session_id",
    "langgraph_checkpoints": "thread_id",
    "langgraph_checkpoint_blobs": "thread_id",
    "langgraph_checkpoint_writes": "thread_id",
}
"""Every table about one conversation, and the column that names it."""

REFERENCE_TABLES = {"owner_state", "agent_state"}
"""The tables of state shared by many conversations: a copy on every node."""

EVERY_TABLE = [*CONVERSATION_TABLES, *sorted(REFERENCE_TABLES)]


def _citus_tables(dsn: str) -> dict[str, tuple[str, str | None, int]]:
    """Each table Citus manages: (kind, distribution column, co-location group)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT logicalrelid::regclass::text, partmethod,"
            " column_to_column_name(logicalrelid, partkey), colocationid"
            " FROM pg_dist_partition"
        ).fetchall()
    kinds = {"h": "distributed", "n": "reference"}
    return {table: (kinds[method], column, group) for table, method, column, group in rows}


def _steps_down_to_distribution(dsn: str) -> int:
    """How many of the applied migrations are the distribution one and those after it."""
    applied = [m.id for m in migrations.status(dsn) if m.applied]
    assert CITUS_MIGRATION in applied, applied
    return len(applied) - applied.index(CITUS_MIGRATION)


async def _write_everything(dsn: str) -> None:
    """A conversation with scoped state, and a LangGraph thread's rows, on the cluster."""
    async with pool_for(dsn) as pool:
        repo = PostgresHistoryRepository(pool)
        await repo.append_messages("agent", "s", [Message(role="user", content="before")])
        await repo.create_scoped_session(
            "agent", "adk", owner="u", update_time=1.0, state={"k": 1}, owner_state={"o": 1}
        )
        await repo.append_with_state(
            "agent",
            "adk",
            [Message(role="user", content="with state")],
            owner="u",
            update_time=2.0,
            state={"k": 2},
            owner_state={"o": 2},
            agent_state={"a": 2},
        )
    # The LangGraph tables' rows as the saver's statements write them (their
    # SQL on a cluster is the bridges' tests' business): one of each.
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "INSERT INTO conversation_sessions (agent_name, session_id, next_seq)"
            " VALUES ('langgraph', 't', 0)"
        )
        conn.execute(
            "INSERT INTO langgraph_checkpoints (agent_name, thread_id, checkpoint_id, checkpoint)"
            " VALUES ('langgraph', 't', 'c1', '{\"v\": 1}')"
        )
        conn.execute(
            "INSERT INTO langgraph_checkpoint_blobs"
            " (agent_name, thread_id, channel, version, type, blob)"
            " VALUES ('langgraph', 't', 'x', '1', 'json', '\\x01')"
        )
        conn.execute(
            "INSERT INTO langgraph_checkpoint_writes"
            " (agent_name, thread_id, checkpoint_id, task_id, idx, channel, blob)"
            " VALUES ('langgraph', 't', 'c1', 'task', 0, 'x', '\\x02')"
        )


async def _read_everything(dsn: str) -> dict[str, Any]:
    async with pool_for(dsn) as pool:
        repo = PostgresHistoryRepository(pool)
        plain = await repo.load_history("agent", "s")
        scoped = await repo.get_scoped_session("agent", "adk", owner="u")
    assert scoped is not None
    session, messages = scoped
    with psycopg.connect(dsn) as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone() for table in EVERY_TABLE
        }
    return {
        "plain": [m.content for m in plain],
        "scoped": [m.content for m in messages],
        "states": (session.state, session.owner_state, session.agent_state, session.revision),
        "rows": counts,
    }


WRITTEN = {
    "plain": ["before"],
    "scoped": ["with state"],
    "states": ({"k": 2}, {"o": 2}, {"a": 2}, 1),
    "rows": {
        "conversation_sessions": (3,),
        "conversation_history": (2,),
        "session_state": (1,),
        "langgraph_checkpoints": (1,),
        "langgraph_checkpoint_blobs": (1,),
        "langgraph_checkpoint_writes": (1,),
        "agent_state": (1,),
        "owner_state": (1,),
    },
}


async def test_every_table_is_distributed_by_conversation_and_co_located(citus_dsn: str) -> None:
    tables = _citus_tables(citus_dsn)
    assert set(tables) == set(EVERY_TABLE), tables
    for table, column in CONVERSATION_TABLES.items():
        assert tables[table][:2] == ("distributed", column), (table, tables[table])
    # One co-location group: a conversation's rows of every table on one shard.
    assert len({tables[table][2] for table in CONVERSATION_TABLES}) == 1, tables
    assert {tables[table][:2] for table in REFERENCE_TABLES} == {("reference", None)}


async def test_down_and_up_again_on_the_coordinator_keep_the_rows(citus_dsn: str) -> None:
    await _write_everything(citus_dsn)
    assert await _read_everything(citus_dsn) == WRITTEN
    steps = _steps_down_to_distribution(citus_dsn)
    try:
        rolled = migrations.rollback(citus_dsn, steps=steps)
        assert rolled[-1] == CITUS_MIGRATION, rolled
        assert _citus_tables(citus_dsn) == {}  # plain tables on the coordinator
        assert await _read_everything(citus_dsn) == WRITTEN
    finally:
        migrations.apply(citus_dsn)
    assert set(_citus_tables(citus_dsn)) == set(EVERY_TABLE)
    assert await _read_everything(citus_dsn) == WRITTEN


async def test_every_rollback_runs_on_the_coordinator(citus_dsn: str) -> None:
    try:
        rolled = migrations.rollback(citus_dsn, steps=None)
        assert rolled and rolled[-1].startswith("0001_"), rolled
        with psycopg.connect(citus_dsn) as conn:
            left = conn.execute("SELECT to_regclass('conversation_history')").fetchone()
        assert left == (None,)
    finally:
        migrations.apply(citus_dsn)
    assert set(_citus_tables(citus_dsn)) == set(EVERY_TABLE)


def test_without_citus_the_migration_changes_nothing(
    database_dsn: str, pg_server: PgServer
) -> None:
    with psycopg.connect(database_dsn) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'citus'"
        ).fetchone() == (0,)
        kinds = conn.execute(
            "SELECT relname, relkind FROM pg_class WHERE relname = ANY(%s) ORDER BY 1",
            [EVERY_TABLE],
        ).fetchall()
    assert kinds == sorted((table, "r") for table in EVERY_TABLE)
    assert any(m.id == CITUS_MIGRATION and m.applied for m in migrations.status(database_dsn))
    # Its rollback, there, changes nothing either: every table stays.
    assert migrations.rollback(database_dsn, steps=1) == [CITUS_MIGRATION]
    with psycopg.connect(database_dsn) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname = ANY(%s) AND relkind = 'r'",
            [EVERY_TABLE],
        ).fetchone()
    assert left == (len(EVERY_TABLE),)
