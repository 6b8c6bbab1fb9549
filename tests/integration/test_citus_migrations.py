"""The migrations on a Citus coordinator: distributed when citus is there, plain otherwise.

The distribution migration is found by name (its number changes as migrations
are added before it), and the conversation written before each step must read
back the same after it.
"""

from __future__ import annotations

import psycopg

from agentcore import Message, PostgresHistoryRepository, migrations
from tests.conftest import pool_for
from tests.support import PgServer

DISTRIBUTION = "_citus_distribution"


def _distributed(dsn: str) -> dict[str, tuple[str, int]]:
    """Each distributed table of agentcore's: (distribution column, co-location group)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT logicalrelid::regclass::text, column_to_column_name(logicalrelid, partkey),"
            " colocationid FROM pg_dist_partition"
            " WHERE logicalrelid::regclass::text LIKE 'conversation_%'"
        ).fetchall()
    return {table: (column, group) for table, column, group in rows}


def _steps_down_to_distribution(dsn: str) -> int:
    """How many of the applied migrations are the distribution one and those after it."""
    applied = [m.id for m in migrations.status(dsn) if m.applied]
    names = [name for name in applied if name.endswith(DISTRIBUTION)]
    assert len(names) == 1, applied
    return len(applied) - applied.index(names[0])


async def _history(dsn: str) -> list[str]:
    async with pool_for(dsn) as pool:
        messages = await PostgresHistoryRepository(pool).load_history("agent", "s")
    return [m.content or "" for m in messages]


async def test_the_tables_are_distributed_by_session_and_co_located(citus_dsn: str) -> None:
    tables = _distributed(citus_dsn)
    assert set(tables) == {"conversation_sessions", "conversation_history"}, tables
    assert {column for column, _ in tables.values()} == {"session_id"}
    assert len({group for _, group in tables.values()}) == 1, tables  # co-located


async def test_down_and_up_again_on_the_coordinator_keep_the_rows(citus_dsn: str) -> None:
    async with pool_for(citus_dsn) as pool:
        repo = PostgresHistoryRepository(pool)
        await repo.append_messages("agent", "s", [Message(role="user", content="before")])
    steps = _steps_down_to_distribution(citus_dsn)
    try:
        rolled = migrations.rollback(citus_dsn, steps=steps)
        assert rolled[-1].endswith(DISTRIBUTION), rolled
        assert _distributed(citus_dsn) == {}  # plain tables on the coordinator
        assert await _history(citus_dsn) == ["before"]
    finally:
        migrations.apply(citus_dsn)
    assert set(_distributed(citus_dsn)) == {"conversation_sessions", "conversation_history"}
    assert await _history(citus_dsn) == ["before"]


async def test_every_rollback_runs_on_the_coordinator(citus_dsn: str) -> None:
    try:
        rolled = migrations.rollback(citus_dsn, steps=None)
        assert rolled and rolled[-1].startswith("0001_"), rolled
        with psycopg.connect(citus_dsn) as conn:
            left = conn.execute("SELECT to_regclass('conversation_history')").fetchone()
        assert left == (None,)
    finally:
        migrations.apply(citus_dsn)
    assert set(_distributed(citus_dsn)) == {"conversation_sessions", "conversation_history"}


def test_without_citus_the_migration_changes_nothing(
    database_dsn: str, pg_server: PgServer
) -> None:
    with psycopg.connect(database_dsn) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'citus'"
        ).fetchone() == (0,)
        kinds = conn.execute(
            "SELECT relname, relkind FROM pg_class"
            " WHERE relname IN ('conversation_sessions', 'conversation_history') ORDER BY 1"
        ).fetchall()
    assert kinds == [("conversation_history", "r"), ("conversation_sessions", "r")]
    assert any(m.id.endswith(DISTRIBUTION) and m.applied for m in migrations.status(database_dsn))
