"""Sessions end to end on a real PostgreSQL: facade -> workflow -> agent -> repository."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from agentcore import (
    AgentConfig,
    EchoModel,
    ExecutionFacade,
    Message,
    PostgresHistoryRepository,
    load_workflows,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "custom_workflows"
ASSISTANT = AgentConfig(
    name="assistant", instructions="You are terse.", include_history=True, history_limit=50
)
TURNS = 3


class TurnstileEchoModel:
    """EchoModel that records every call and makes concurrent sessions meet at each turn.

    The barrier holds each session's turn k until the other one has also loaded
    its history and called the model, so the two sessions' loads and appends
    interleave on the database.
    """

    def __init__(self, parties: int) -> None:
        self.calls: list[list[Message]] = []
        self._barrier = asyncio.Barrier(parties)

    async def complete(self, messages: Sequence[Message], *, config: AgentConfig) -> Message:
        self.calls.append(list(messages))
        await asyncio.wait_for(self._barrier.wait(), timeout=30)
        return await EchoModel().complete(messages, config=config)


def session_id(label: str) -> str:
    return f"{label}-{uuid.uuid4()}"


async def converse(app: ExecutionFacade, label: str, sid: str) -> list[str]:
    outputs = []
    for turn in range(TURNS):
        result = await app.run_agent("assistant", f"{label} turn {turn}", session_id=sid)
        assert result.session_id == sid
        outputs.append(result.output)
    return outputs


def labels_seen(call: list[Message]) -> set[str]:
    return {
        match
        for m in call
        if m.role == "user" and m.content
        for match in re.findall(r"\b(alpha|beta)\b", m.content)
    }


async def concurrent_sessions_scenario(repo: PostgresHistoryRepository) -> None:
    model = TurnstileEchoModel(parties=2)
    app = ExecutionFacade([ASSISTANT], model, repo)
    sids = {"alpha": session_id("alpha"), "beta": session_id("beta")}

    outputs = await asyncio.gather(*(converse(app, label, sid) for label, sid in sids.items()))

    # Each model call saw one session only, and exactly that session's earlier turns.
    assert len(model.calls) == 2 * TURNS
    for call in model.calls:
        (label,) = labels_seen(call)
        assert call[0] == Message(role="system", content="You are terse.")
        turn = int(call[-1].content.rsplit(" ", 1)[1]) if call[-1].content else -1
        assert [m.content for m in call[1:] if m.role == "user"] == [
            f"{label} turn {t}" for t in range(turn + 1)
        ]
    # The calls really interleaved: both sessions' turn 0 came before either's turn 1.
    assert {next(iter(labels_seen(c))) for c in model.calls[:2]} == {"alpha", "beta"}

    for (label, sid), said in zip(sids.items(), outputs, strict=True):
        assert said[2] == (
            f'echo: "{label} turn 2" (I remember 4 earlier messages; '
            f'you first said "{label} turn 0")'
        )
        stored = await repo.load_history("assistant", sid)
        assert [(m.role, m.content) for m in stored[::2]] == [
            ("user", f"{label} turn {t}") for t in range(TURNS)
        ]
        assert [m.content for m in stored[1::2]] == said


async def test_concurrent_sessions_of_one_agent_see_only_their_own_history(
    pg_pool: AsyncConnectionPool[Any],
) -> None:
    await concurrent_sessions_scenario(PostgresHistoryRepository(pg_pool))


async def test_the_concurrent_scenario_passes_again_on_the_same_database(
    pg_pool: AsyncConnectionPool[Any],
) -> None:
    # The seed's original bug: history keyed by agent name alone made a second
    # run against the same database see the first run's conversation.
    repo = PostgresHistoryRepository(pg_pool)
    await concurrent_sessions_scenario(repo)
    await concurrent_sessions_scenario(repo)
    sessions = await repo.list_sessions("assistant")
    assert len(sessions) == 4
    assert {s.message_count for s in sessions} == {2 * TURNS}


async def workflow_scenario(repo: PostgresHistoryRepository) -> str:
    app = ExecutionFacade(
        [ASSISTANT, AgentConfig(name="bystander", include_history=True)],
        EchoModel(),
        repo,
        workflows=load_workflows(FIXTURES),
    )
    sid = session_id("workflow")
    before = {s.session_id: s.message_count for s in await repo.list_sessions("assistant")}

    outputs = await app.run_custom_workflow("ExampleWorkflow", "plan a trip", session_id=sid)

    assert outputs[1].endswith('(I remember 2 earlier messages; you first said "plan a trip")')
    stored = await repo.load_history("assistant", sid)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "plan a trip"),
        ("assistant", outputs[0]),
        ("user", f"Summarize: {outputs[0]}"),
        ("assistant", outputs[1]),
    ]
    after = {s.session_id: s.message_count for s in await repo.list_sessions("assistant")}
    assert after == before | {sid: 4}
    assert await repo.list_sessions("bystander") == []
    return sid


async def test_a_workflow_run_persists_under_its_session_and_nowhere_else(
    pg_pool: AsyncConnectionPool[Any],
) -> None:
    repo = PostgresHistoryRepository(pg_pool)
    first = await workflow_scenario(repo)
    first_history = await repo.load_history("assistant", first)

    second = await workflow_scenario(repo)

    assert second != first
    assert await repo.load_history("assistant", first) == first_history


async def test_concurrent_workflow_runs_keep_their_sessions_apart(
    pg_pool: AsyncConnectionPool[Any],
) -> None:
    repo = PostgresHistoryRepository(pg_pool)
    app = ExecutionFacade([ASSISTANT], EchoModel(), repo, workflows=load_workflows(FIXTURES))
    sids = [session_id(f"run{i}") for i in range(4)]

    results = await asyncio.gather(
        *(
            app.run_custom_workflow("ExampleWorkflow", f"task {i}", session_id=sid)
            for i, sid in enumerate(sids)
        )
    )

    for i, (sid, outputs) in enumerate(zip(sids, results, strict=True)):
        assert outputs[1].endswith(f'you first said "task {i}")')
        stored = await repo.load_history("assistant", sid)
        assert [m.content for m in stored if m.role == "user"] == [
            f"task {i}",
            f"Summarize: {outputs[0]}",
        ]
