"""An append with ids looks each new id up in the unique index, whatever plan the server picks.

Once psycopg prepares ``append_messages`` (its 6th execution on a connection),
the server may run a generic plan, built without the parameters' values. That
plan used to check the conversation's stored ids one by one (an anti-join over
the whole conversation): a 2-message append with ids was 11-60x slower at
200,000 stored messages than at 10. The statement psycopg really prepared is
explained here, under both plan cache modes, on a conversation of 20,000 rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from agentcore import PostgresHistoryRepository
from agentcore.sql import load_queries
from tests.conftest import pool_for

A, BIG = "support-bot", "big"
STORED = 20_000
INDEX = "ux_conversation_history_message_id"


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


@pytest.mark.parametrize("mode", ["force_generic_plan", "force_custom_plan"])
async def test_append_with_ids_reads_one_index_entry_per_new_message(
    database_dsn: str, mode: str
) -> None:
    with psycopg.connect(database_dsn, autocommit=True) as admin:
        for session, count in [(BIG, STORED), *((f"small-{i}", 10) for i in range(50))]:
            admin.execute(
                "INSERT INTO conversation_history"
                " (agent_name, session_id, seq, role, content, message_id)"
                " SELECT %(a)s, %(s)s::text, g, 'user', 'stored ' || g, %(s)s::text || '-m-' || g"
                " FROM generate_series(0, %(n)s - 1) AS g",
                {"a": A, "s": session, "n": count},
            )
            admin.execute(
                "INSERT INTO conversation_sessions (agent_name, session_id, next_seq)"
                " VALUES (%s, %s, %s)",
                (A, session, count),
            )
        admin.execute("ANALYZE conversation_history")

    async with pool_for(database_dsn, max_size=1) as pool:
        repo = PostgresHistoryRepository(pool)
        for n in range(6):  # psycopg prepares the statement on its 6th execution
            batch = [{"role": "user", "content": "x", "id": f"warm-{n}"}]
            assert await repo.append_messages(A, "warm", batch) == 1
        text = load_queries()["append_messages"].text
        async with pool.connection() as conn:
            cur = await conn.execute(
                b"SELECT name, parameter_types::text[] FROM pg_prepared_statements"
                b" WHERE statement LIKE '%%json_array_elements%%message_id%%'"
            )
            prepared = await cur.fetchall()
            assert len(prepared) == 1, prepared
            name, types = prepared[0]
            assert "%(" in text and len(types) == 3  # the same statement, psycopg's types
            batch = [
                {"role": "user", "content": "new", "id": "new-1"},
                {"role": "user", "content": "old", "id": f"{BIG}-m-{STORED // 2}"},
                {"role": "user", "content": "new", "id": "new-2"},
            ]
            # Values in the order psycopg numbers the placeholders.
            values = {"agent_name": A, "session_id": BIG, "messages": json.dumps(batch)}
            order = [p for p in ("agent_name", "session_id", "messages") if f"%({p})s" in text]
            order.sort(key=lambda p: text.index(f"%({p})s"))
            await conn.execute(b"BEGIN")
            try:
                await conn.execute(
                    sql.SQL("SET LOCAL plan_cache_mode = {}").format(sql.Literal(mode))
                )
                cur = await conn.execute(
                    sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE {}({})").format(
                        sql.Identifier(name),
                        sql.SQL(", ").join(sql.Literal(values[p]) for p in order),
                    )
                )
                row = await cur.fetchone()
            finally:
                await conn.execute(b"ROLLBACK")
    assert row is not None
    plan = row[0][0]["Plan"]
    history_reads = [
        node
        for node in plan_nodes(plan)
        if node.get("Relation Name") == "conversation_history"
        and node["Node Type"] != "ModifyTable"
    ]
    described = [(n["Node Type"], n.get("Index Name")) for n in history_reads]
    assert history_reads, plan
    assert all(
        n["Node Type"] in ("Index Scan", "Index Only Scan") and n["Index Name"] == INDEX
        for n in history_reads
    ), described
    assert not any("Anti Join" in n["Node Type"] for n in plan_nodes(plan)), described
    # O(batch): one index probe per message of the batch, one stored row found.
    assert sum(n["Actual Loops"] for n in history_reads) == len(batch)
    assert sum(n["Actual Rows"] * n["Actual Loops"] for n in history_reads) <= 1
