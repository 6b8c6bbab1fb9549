"""The PostgreSQL smoke test of ``python3 run.py test --quick``: one pass over the surface.

The edit loop runs the contract suite on the in-memory repository only; this
makes sure the PostgreSQL repository, its SQL and the migrations still work
together at all, in a few seconds. The whole suite tests each part properly.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from agentcore import (
    AgentConfig,
    ExecutionFacade,
    PostgresHistoryRepository,
    ScriptedModel,
    SyncHistoryRepository,
    migrations,
)
from agentcore.transfer import export_jsonl, import_jsonl
from tests.conftest import pool_for

pytestmark = pytest.mark.smoke


async def test_a_turn_a_page_and_an_export_round_trip_on_postgresql(
    pg_pool: AsyncConnectionPool[Any], database_dsn: str, empty_database_dsn: str
) -> None:
    assert all(m.applied for m in migrations.status(database_dsn))
    history = PostgresHistoryRepository(pg_pool)
    model = ScriptedModel(["Hi Ada!", "Your name is Ada."])
    facade = ExecutionFacade([AgentConfig(name="bot", include_history=True)], model, history)
    await facade.run_agent("bot", "I am Ada.", session_id="s1")
    result = await facade.run_agent("bot", "What is my name?", session_id="s1")
    assert result.output == "Your name is Ada."
    assert [m.content for m in model.calls[1]] == ["I am Ada.", "Hi Ada!", "What is my name?"]
    page = await history.list_sessions_page("bot", limit=10)
    assert [s.session_id for s in page.sessions] == ["s1"]

    exported = io.StringIO()
    await export_jsonl(history, exported)
    migrations.apply(empty_database_dsn)
    async with pool_for(empty_database_dsn) as pool:
        restored = PostgresHistoryRepository(pool)
        await import_jsonl(restored, io.BytesIO(exported.getvalue().encode()))
        again = io.StringIO()
        await export_jsonl(restored, again)
    assert again.getvalue() == exported.getvalue()


def test_the_sync_face_on_postgresql(database_dsn: str) -> None:
    with SyncHistoryRepository.from_dsn(database_dsn) as history:
        assert history.append_messages("bot", "s", [{"role": "user", "content": "hi"}]) == 1
        assert [m.content for m in history.load_history("bot", "s")] == ["hi"]
