"""The conversation row's per-turn update is HOT, and migration 0005 goes down and up.

A turn updates its conversation's counter row. While updated_at moved on every
write, every such update changed an indexed column: a new entry in each of
the table's indexes and a dead tuple per turn. It now moves at most once a
minute, and 0005 leaves room on each page (fillfactor 90) for the new version.
"""

from __future__ import annotations

import asyncio

import psycopg

from agentcore import Message, PostgresHistoryRepository, migrations
from tests.conftest import pool_for
from tests.support import CITUS_MIGRATION, LANGGRAPH_MIGRATION

FIFTH = "0005_hot_session_updates"
SIXTH = "0006_cached_role_check"
SEVENTH = "0007_scoped_state"
EIGHTH = LANGGRAPH_MIGRATION
NINTH = CITUS_MIGRATION  # a no-op without Citus
TURNS = 100


def _fillfactor(dsn: str) -> list[str] | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT reloptions FROM pg_class WHERE oid = 'conversation_sessions'::regclass"
        ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _updates(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
            " WHERE relname = 'conversation_sessions'"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def test_turns_update_the_conversation_row_hot(database_dsn: str) -> None:
    before = _updates(database_dsn)
    async with pool_for(database_dsn, max_size=2) as pool:
        repo = PostgresHistoryRepository(pool)
        for n in range(TURNS):
            await repo.load_history("agent", "s", limit=20)
            await repo.append_messages(
                "agent",
                "s",
                [Message(role="user", content=f"q{n}"), Message(role="assistant", content="a")],
            )
    # A backend reports its statistics when it ends (the pool is closed) or
    # at most once a second: wait until all of them are counted.
    for _ in range(50):
        updated, hot = (a - b for a, b in zip(_updates(database_dsn), before, strict=True))
        if updated >= TURNS - 1:
            break
        await asyncio.sleep(0.1)
    assert updated == TURNS - 1  # the first append inserts the row
    assert hot / updated >= 0.95, f"{hot} of {updated} updates were HOT"


def test_0005_sets_fillfactor_and_rolls_back_and_up_again(empty_database_dsn: str) -> None:
    dsn = empty_database_dsn
    migrations.apply(dsn)
    assert _fillfactor(dsn) == ["fillfactor=90"]
    assert migrations.rollback(dsn, steps=5) == [NINTH, EIGHTH, SEVENTH, SIXTH, FIFTH]
    assert _fillfactor(dsn) is None
    assert migrations.apply(dsn) == [FIFTH, SIXTH, SEVENTH, EIGHTH, NINTH]
    assert _fillfactor(dsn) == ["fillfactor=90"]
