"""replace_last_messages on PostgreSQL: all or nothing, whatever fails, on any pool mode."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import psycopg
import pytest
from agents import Agent, RunConfig, Runner
from agents.memory import OpenAIResponsesCompactionSession
from agents.testing import ScriptedModel, assistant_message
from psycopg_pool import AsyncConnectionPool

from agentcore import PostgresHistoryRepository, StorageError
from agentcore.integrations.openai_agents import AgentcoreSession
from bench.wire import traced
from tests.conftest import pool_for
from tests.integration.storage_checks import assert_counters_match_rows, table_dump

A = "support-bot"
S = "compacted"


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def reject_inserts_of(dsn: str, content: str) -> None:
    """A trigger that makes the insert of any message holding ``content`` fail."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION reject_summary() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN RAISE EXCEPTION 'synthetic insert failure'; END $$"
        )
        conn.execute(
            psycopg.sql.SQL(
                "CREATE TRIGGER reject_summary BEFORE INSERT ON conversation_history FOR EACH ROW"
                " WHEN (strpos(concat(NEW.content, NEW.item::text), {}) > 0)"
                " EXECUTE FUNCTION reject_summary()"
            ).format(psycopg.sql.Literal(content))
        )


async def test_a_failing_insert_leaves_the_tail_as_it_was(
    database_dsn: str, pg_pool: AsyncConnectionPool[Any]
) -> None:
    repo = PostgresHistoryRepository(pg_pool)
    await repo.append_messages(A, S, [user(f"m{i}") for i in range(4)])
    tail = await repo.load_history(A, S, limit=2)
    reject_inserts_of(database_dsn, "summary")
    before = table_dump(database_dsn)
    with pytest.raises(StorageError, match="synthetic insert failure"):
        await repo.replace_last_messages(A, S, tail, [user("kept"), user("summary")])
    assert table_dump(database_dsn) == before
    # The tail is still there to replace; the pool still works.
    assert await repo.replace_last_messages(A, S, tail, [user("kept")])
    assert [m.content for m in await repo.load_history(A, S)] == ["m0", "m1", "kept"]
    assert_counters_match_rows(database_dsn)


async def test_a_failing_sdk_compaction_keeps_the_session(
    database_dsn: str, pg_pool: AsyncConnectionPool[Any]
) -> None:
    """The SDK's compaction over AgentcoreSession, its replacement failing in the database."""
    session = AgentcoreSession(S, PostgresHistoryRepository(pg_pool))
    original: Any = [user(str(i)) for i in range(4)]
    await session.add_items(original)
    reject_inserts_of(database_dsn, "synthetic-summary")
    summary = {"role": "user", "content": "synthetic-summary"}
    client = MagicMock()
    client.responses.compact = AsyncMock(return_value=SimpleNamespace(output=[summary]))
    compacting = OpenAIResponsesCompactionSession(
        S,
        session,
        client=client,
        compaction_mode="input",
        should_trigger_compaction=lambda _: True,
    )
    reply = assistant_message("done")
    with pytest.raises(StorageError, match="synthetic insert failure"):
        await Runner.run(
            Agent(name="worker", model=ScriptedModel([[reply]])),
            "continue",
            session=compacting,
            run_config=RunConfig(session_settings={"limit": 1}, tracing_disabled=True),
        )
    client.responses.compact.assert_awaited_once()
    assert await session.get_items(limit=-1) == [
        *original,
        user("continue"),
        reply.model_dump(exclude_unset=True),
    ]


@pytest.mark.parametrize("fresh", [True, False], ids=["replaced", "stale"])
async def test_a_non_autocommit_pool_gets_its_connection_back_as_it_was(
    database_dsn: str, fresh: bool
) -> None:
    async with AsyncConnectionPool(
        database_dsn, min_size=1, max_size=1, kwargs={"autocommit": False}, open=False
    ) as pool:
        repo = PostgresHistoryRepository(pool)
        await repo.append_messages(A, S, [user("m0"), user("m1")])
        tail = await repo.load_history(A, S, limit=1)
        if not fresh:
            await repo.append_messages(A, S, [user("newer")])
        assert await repo.replace_last_messages(A, S, tail, [user("summary")]) is fresh
        async with pool.connection() as conn:
            assert conn.autocommit is False
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    async with pool_for(database_dsn) as pool:
        contents = [m.content for m in await PostgresHistoryRepository(pool).load_history(A, S)]
    assert contents == (["m0", "summary"] if fresh else ["m0", "m1", "newer"])


async def test_a_replace_split_in_parts_is_stored_whole(
    database_dsn: str, pg_pool: AsyncConnectionPool[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentcore import postgres

    monkeypatch.setattr(postgres, "APPEND_CHUNK_JSONB_BYTES", 1)  # a statement per message
    repo = PostgresHistoryRepository(pg_pool)
    await repo.append_messages(A, S, [user(f"m{i}") for i in range(3)])
    tail = await repo.load_history(A, S, limit=2)
    replacement = [{"role": "user", "content": f"r{i}", "id": f"r{i}"} for i in range(5)]
    assert await repo.replace_last_messages(A, S, tail, replacement)
    assert [m.content for m in await repo.load_history(A, S)] == [
        "m0",
        *(f"r{i}" for i in range(5)),
    ]
    assert_counters_match_rows(database_dsn)


@pytest.mark.parametrize("size", [10, 1000])
@pytest.mark.parametrize("fresh", [True, False], ids=["replaced", "stale"])
async def test_a_replace_is_two_round_trips_whatever_the_history(
    database_dsn: str, size: int, fresh: bool
) -> None:
    async with pool_for(database_dsn, max_size=1) as pool:
        repo = PostgresHistoryRepository(pool)
        await repo.append_messages(A, S, [user(f"m{i}") for i in range(size)])
        tail = await repo.load_history(A, S, limit=3)
        if not fresh:
            await repo.append_messages(A, S, [user("newer")])
        async with pool.connection() as conn:
            pgconn = conn.pgconn
        with traced(pgconn) as wire:
            assert await repo.replace_last_messages(A, S, tail, [user("summary")]) is fresh
    # BEGIN, lock_session, lock_counter, the tail's read; then cut_last_messages,
    # the append, COMMIT (or COMMIT alone when the tail is stale).
    assert (wire.statements, wire.round_trips) == ((7, 2) if fresh else (5, 2))
