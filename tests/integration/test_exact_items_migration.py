"""Migration 0004_exact_items on a real PostgreSQL: up, down keeping the items, up again."""

from __future__ import annotations

import psycopg

from agentcore import PostgresHistoryRepository, migrations
from tests.support import CITUS_MIGRATION, LANGGRAPH_MIGRATION

ITEM = {"type": "function_call", "call_id": "c1", "arguments": "{}", "x": 1.5}


async def test_rollback_keeps_items_in_metadata_and_reapplying_works(
    empty_database_dsn: str,
) -> None:
    migrations.apply(empty_database_dsn)
    async with PostgresHistoryRepository.from_dsn(empty_database_dsn) as repo:
        await repo.append_messages(
            "a", "s", [{"role": "assistant", "item": ITEM}, {"role": "user", "content": "hi"}]
        )
        [with_item, _plain] = await repo.load_history("a", "s")
        assert with_item.item == ITEM

    # 0005 (a fillfactor), 0006 (the role's check), 0007 (scoped state),
    # LangGraph's tables and the Citus distribution (a no-op here) sit above
    # 0004: roll back all six, newest first.
    assert migrations.rollback(empty_database_dsn, steps=6) == [
        CITUS_MIGRATION,
        LANGGRAPH_MIGRATION,
        "0007_scoped_state",
        "0006_cached_role_check",
        "0005_hot_session_updates",
        "0004_exact_items",
    ]
    with psycopg.connect(empty_database_dsn) as conn:
        rows = conn.execute(
            "SELECT content, metadata FROM conversation_history ORDER BY seq"
        ).fetchall()
        columns = conn.execute(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_name = 'conversation_history' AND column_name = 'item'"
        ).fetchone()
    assert rows == [("", {"item": ITEM}), ("hi", {})]
    assert columns == (0,)

    assert migrations.apply(empty_database_dsn) == [
        "0004_exact_items",
        "0005_hot_session_updates",
        "0006_cached_role_check",
        "0007_scoped_state",
        LANGGRAPH_MIGRATION,
        CITUS_MIGRATION,
    ]
    async with PostgresHistoryRepository.from_dsn(empty_database_dsn) as repo:
        loaded = await repo.load_history("a", "s")
        assert [m.item for m in loaded] == [None, None]
        assert loaded[0].metadata == {"item": ITEM}
