"""On a Citus cluster, every statement on one conversation is a router query.

Each operation below runs through the repository against the coordinator of a
Citus cluster (tests/citus.py) whose tables migration 0007 distributed by
session_id; every statement it sends is recorded with its parameters. Each
recorded statement is then prepared on the coordinator and explained under
``plan_cache_mode = force_generic_plan`` (the plan psycopg's prepared
statements settle on), and the test fails if the plan fans out: any Citus
node whose task count is not 1, or a distributed subplan. A statement that
reads no distributed table (the advisory lock, BEGIN, COMMIT) runs on the
coordinator alone and touches no shard.

A COPY cannot be explained: the rows it streams carry the conversation's
session_id, and Citus sends each row to the shard of its session_id, one
shard for one conversation (the recorded COPY statements are listed and
checked to load conversation_history only).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from psycopg import AsyncCursor
from psycopg_pool import AsyncConnectionPool

from agentcore import Message, PostgresHistoryRepository
from tests.citus import TEST_SHARD_COUNT

Recorded = list[tuple[str, dict[str, Any] | None]]

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_UTILITY = {"BEGIN ISOLATION LEVEL READ COMMITTED", "COMMIT"}


RECORDED: Recorded = []
"""What the recording cursors sent, in order (emptied by each test)."""


class _RecordingCursor(AsyncCursor[Any]):
    """An async cursor that notes every statement and its parameters before sending it."""

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        RECORDED.append((str(query), dict(params) if params else None))
        return await super().execute(query, params, **kwargs)

    def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        RECORDED.append((str(statement), None))
        return super().copy(statement, params, **kwargs)


@asynccontextmanager
async def _recording_repo(dsn: str) -> AsyncIterator[PostgresHistoryRepository]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn,
        min_size=1,
        max_size=2,
        kwargs={"autocommit": True, "cursor_factory": _RecordingCursor},
        open=False,
    )
    await pool.open(wait=True, timeout=30)
    try:
        yield PostgresHistoryRepository(pool)
    finally:
        await pool.close()


def _positional(query: str, params: dict[str, Any] | None) -> tuple[str, list[Any]]:
    """``query`` with ``$n`` placeholders (first occurrence order), and the values in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    text = _PLACEHOLDER.sub(number, query)
    return text, [(params or {})[name] for name in names]


def _explain(dsn: str, query: str, params: dict[str, Any] | None, *, generic: bool = True) -> str:
    """The coordinator's plan of ``query`` prepared and run on a generic plan (or a custom one)."""
    text, values = _positional(query, params)
    mode = "force_generic_plan" if generic else "force_custom_plan"
    with psycopg.connect(dsn, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        conn.execute(f"SET plan_cache_mode = {mode}".encode())
        conn.execute(f"PREPARE probe AS {text}".encode())
        if values:
            marks = ", ".join(["%s"] * len(values))
            cur = conn.execute(f"EXPLAIN EXECUTE probe({marks})".encode(), values)
        else:
            cur = conn.execute(b"EXPLAIN EXECUTE probe")
        return "\n".join(str(row[0]) for row in cur.fetchall())


def _fans_out(plan: str) -> str | None:
    """Why ``plan`` is not a one-shard plan, or ``None`` when it is one."""
    counts = [int(n) for n in re.findall(r"Task Count: (\d+)", plan)]
    if "Citus" in plan and not counts:
        return "a Citus plan without a task count"
    if any(n != 1 for n in counts):
        return f"task counts {counts}"
    if "pull to coordinator" in plan or "repartition" in plan:
        return "INSERT ... SELECT through the coordinator"
    if "Subplan" in plan:
        return "a distributed subplan (recursive planning)"
    return None


Operation = Callable[[PostgresHistoryRepository], Awaitable[object]]


async def _turn(repo: PostgresHistoryRepository) -> None:
    await repo.load_history("agent", "s1", limit=20)
    await repo.append_messages(
        "agent",
        "s1",
        [Message(role="user", content="hi"), Message(role="assistant", content="hello")],
    )
    await repo.append_messages(
        "agent", "s1", [Message(role="user", content="meta", metadata={"k": 1})]
    )


async def _exactly_once(repo: PostgresHistoryRepository) -> None:
    batch = [Message(role="user", content="q", id="m1"), Message(role="assistant", content="a")]
    await repo.append_messages("agent", "s1", batch)
    await repo.append_messages("agent", "s1", batch)  # the retry: stores nothing
    await repo.get_message("agent", "s1", "m1")


async def _page(repo: PostgresHistoryRepository) -> None:
    first = await repo.load_history_page("agent", "s1", limit=2)
    assert first.next_cursor is not None
    await repo.load_history_page("agent", "s1", limit=2, before=first.next_cursor)


async def _pop(repo: PostgresHistoryRepository) -> None:
    await repo.pop_message("agent", "s1")


async def _replace(repo: PostgresHistoryRepository) -> None:
    tail = await repo.load_history("agent", "s1", limit=2)
    await repo.replace_last_messages(
        "agent", "s1", tail, [Message(role="assistant", content="summary")]
    )


async def _replace_with_ids(repo: PostgresHistoryRepository) -> None:
    await repo.append_messages("agent", "s1", [Message(role="user", content="q", id="m1")])
    tail = await repo.load_history("agent", "s1", limit=1)
    replaced = [Message(role="user", content="q", id="m1"), Message(role="assistant", content="a")]
    assert await repo.replace_last_messages("agent", "s1", tail, replaced)


async def _pop_empty(repo: PostgresHistoryRepository) -> None:
    assert await repo.pop_message("agent", "nothing here") is None


async def _import(repo: PostgresHistoryRepository) -> None:
    await repo.import_session(
        "agent", "imported", [Message(role="user", content=f"m{n}") for n in range(3)],
        metadata={"owner": "u1"},
    )  # fmt: skip


async def _one_conversation_rest(repo: PostgresHistoryRepository) -> None:
    await repo.get_session("agent", "s1")
    await repo.set_session_metadata("agent", "s1", {"owner": "u1"})
    _ = [m async for m in repo.iter_history("agent", "s1", batch_size=2)]  # an export's batches
    await repo.save_full_history("agent", "s2", [Message(role="user", content="x")])
    await repo.clear_session("agent", "s2")


OPERATIONS: dict[str, Operation] = {
    "turn": _turn,
    "exactly-once retry": _exactly_once,
    "page of history": _page,
    "pop": _pop,
    "compare-and-swap replace": _replace,
    "compare-and-swap replace with ids (COPY)": _replace_with_ids,
    "pop of an empty conversation": _pop_empty,
    "import of one conversation": _import,
    "metadata, export, save, clear": _one_conversation_rest,
}


async def _seed(dsn: str) -> None:
    async with AsyncConnectionPool(dsn, min_size=1, max_size=1, open=False) as pool:
        repo = PostgresHistoryRepository(pool)
        await repo.append_messages(
            "agent", "s1", [Message(role="user", content=f"old {n}") for n in range(6)]
        )


@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_every_statement_on_one_conversation_is_a_router_query(
    citus_dsn: str, operation: str
) -> None:
    await _seed(citus_dsn)
    RECORDED.clear()
    async with _recording_repo(citus_dsn) as repo:
        await OPERATIONS[operation](repo)
    recorded = list(RECORDED)
    explained = 0
    fanned: list[str] = []
    for query, params in recorded:
        head = query.strip()
        if head in _UTILITY:
            continue
        if head.startswith("COPY"):
            assert head.startswith("COPY conversation_history"), head
            continue
        try:
            plan = _explain(citus_dsn, query, params)
        except psycopg.Error as exc:  # Citus could not plan it on a generic plan
            fanned.append(f"no generic plan ({exc}):\n{head[:300]}")
            continue
        explained += 1
        why = _fans_out(plan)
        if why is not None:
            fanned.append(f"{why}:\n{head[:300]}\n--- plan ---\n{plan}")
    assert not fanned, "\n\n".join(fanned)
    assert explained > 0, recorded


def test_the_check_sees_a_fan_out(citus_dsn: str) -> None:
    """The check itself: a statement over every conversation of an agent is not one shard."""
    plan = _explain(
        citus_dsn, "SELECT count(*) FROM conversation_sessions WHERE agent_name = 'agent'", None
    )
    assert _fans_out(plan) == f"task counts [{TEST_SHARD_COUNT}]", plan
