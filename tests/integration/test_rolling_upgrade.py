"""Migrations under traffic: a rolling upgrade, or its rollback, fails no call it need not.

psycopg prepares a statement on its fifth execution on a connection. A
migration that changes the type of a column a prepared statement returns
(0006 turns ``role`` into a domain, its rollback turns it back) made the
server refuse that statement on every warm connection: "cached plan must not
change result type", a ``StorageError`` on every later load until the pool
replaced the connection. Each migration runs here, up and down, while turns
(a load of 20 and an append of 2) run on warm pools of both kinds a caller
passes: an autocommit pool and a default one.

What a call may meet: nothing, while the schema is one the code runs against
(0004 and later); ``SchemaNotReadyError`` while the schema is older (0003 and
before: no ``item`` column), and only then; never another error. Afterwards
every append that succeeded is stored once, in order, and no other.
Rolling back 0002 (the pre-session schema, where no session can be stored)
and 0001 (no table) cannot be served live: docs/operations.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from agentcore import Message, PostgresHistoryRepository, migrations
from agentcore.errors import SchemaNotReadyError
from tests.support import CITUS_MIGRATION, LANGGRAPH_MIGRATION

SIXTH, SEVENTH = "0006_cached_role_check", "0007_scoped_state"
WORKERS = 4  # one conversation each, and as many connections in the pool
WARM_TURNS = 8  # psycopg prepares on the 5th execution on a connection
TURNS_AFTER = 4  # per worker, once the migration has returned
LOAD_MARKER = "ORDER BY seq DESC\nLIMIT (SELECT"
APPEND_MARKER = "WHERE m.n <"


def _rollback_one(dsn: str) -> object:
    return migrations.rollback(dsn, steps=1)


def _apply(dsn: str) -> object:
    return migrations.apply(dsn)


@dataclass(frozen=True)
class Step:
    """A migration step: from ``rolled_back`` migrations below the newest, ``run``."""

    rolled_back: int
    run: Callable[[str], object]
    served_before: bool  # the code runs against the schema before the step
    served_after: bool


STEPS = {
    "0007-down": Step(0, _rollback_one, True, True),
    "0007-up": Step(1, _apply, True, True),
    "0006-down": Step(1, _rollback_one, True, True),
    "0006-0007-up": Step(2, _apply, True, True),
    "0005-down": Step(2, _rollback_one, True, True),
    "0005-0007-up": Step(3, _apply, True, True),
    "0004-down": Step(3, _rollback_one, True, False),
    "0004-0007-up": Step(4, _apply, False, True),
    "0003-down": Step(4, _rollback_one, False, False),
    "0003-0007-up": Step(5, _apply, False, True),
}


@dataclass(frozen=True)
class Call:
    started: float
    ended: float
    what: str
    error: BaseException | None


def _pool(dsn: str, autocommit: bool) -> AsyncConnectionPool[Any]:
    kwargs = {"autocommit": True} if autocommit else {}
    return AsyncConnectionPool(
        dsn, min_size=WORKERS, max_size=WORKERS, kwargs=kwargs, open=False, timeout=30
    )


async def _prepared_on_every_connection(
    pool: AsyncConnectionPool[Any], marker: str, *, connections: int = WORKERS
) -> bool:
    """Whether each of the pool's connections has a statement holding ``marker`` prepared."""
    conns = [await pool.getconn() for _ in range(connections)]
    try:
        found = []
        for conn in conns:
            cur = await conn.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                [f"%{marker}%"],
                prepare=False,
            )
            row = await cur.fetchone()
            found.append(row is not None and row[0] > 0)
            if not conn.autocommit:
                await conn.commit()  # psycopg's rollback would deallocate them all
        return all(found)
    finally:
        for conn in conns:
            await pool.putconn(conn)


class Traffic:
    """Turns on ``WORKERS`` conversations: load the last 20, append 2; every call recorded."""

    def __init__(self, repo: PostgresHistoryRepository) -> None:
        self.repo = repo
        self.calls: list[Call] = []
        self.stored: dict[str, list[str]] = {f"s{i}": [] for i in range(WORKERS)}
        self._turn = 0

    async def _call(self, what: str, call: Any) -> bool:
        """Await ``call``, record it; whether it succeeded."""
        started = monotonic()
        try:
            await call
        except Exception as exc:
            self.calls.append(Call(started, monotonic(), what, exc))
            if not isinstance(exc, SchemaNotReadyError):
                raise
            return False
        self.calls.append(Call(started, monotonic(), what, None))
        return True

    async def turn(self, session: str) -> None:
        self._turn += 1
        texts = [f"{session}-{self._turn}-q", f"{session}-{self._turn}-a"]
        await self._call("load", self.repo.load_history("agent", session, limit=20))
        question, answer = (
            Message(role="user", content=texts[0]),
            Message(role="assistant", content=texts[1]),
        )
        batch = [question, answer]
        if await self._call("append", self.repo.append_messages("agent", session, batch)):
            self.stored[session].extend(texts)

    async def run(self, session: str, *, turns: int | None = None, until: asyncio.Event) -> None:
        done = 0
        while not until.is_set() if turns is None else done < turns:
            await self.turn(session)
            done += 1

    async def everyone(self, turns: int) -> None:
        never = asyncio.Event()
        await asyncio.gather(*(self.run(s, turns=turns, until=never) for s in self.stored))


@pytest.mark.parametrize("step_name", list(STEPS))
@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit-pool", "default-pool"])
async def test_a_migration_under_traffic_fails_no_call_while_the_schema_serves(
    database_dsn: str, autocommit: bool, step_name: str
) -> None:
    step = STEPS[step_name]
    # The Citus distribution (a no-op on one server) and LangGraph's tables,
    # the newest migrations, hold no conversation: the steps are counted below
    # them, so they go first.
    migrations.rollback(database_dsn, steps=2 + step.rolled_back)
    async with _pool(database_dsn, autocommit) as pool:
        traffic = Traffic(PostgresHistoryRepository(pool))
        for _ in range(5):  # warm: every connection has prepared what runs today
            await traffic.everyone(WARM_TURNS)
            warm = await _prepared_on_every_connection(pool, APPEND_MARKER)
            if step.served_before:
                warm = warm and await _prepared_on_every_connection(pool, LOAD_MARKER)
            if warm:
                break
        assert warm, "the pool did not warm up"
        traffic.calls.clear()

        migrated = asyncio.Event()
        workers = [asyncio.create_task(traffic.run(s, until=migrated)) for s in traffic.stored]
        await asyncio.sleep(0.05)  # traffic first
        began = monotonic()
        await asyncio.to_thread(step.run, database_dsn)
        ended = monotonic()
        migrated.set()
        await asyncio.gather(*workers)
        await traffic.everyone(TURNS_AFTER)

    failed = [c for c in traffic.calls if c.error is not None]
    others = [c for c in failed if not isinstance(c.error, SchemaNotReadyError)]
    assert not others, f"{len(others)} calls failed otherwise, e.g. {others[0].error!r}"
    assert any(c.started < ended and c.ended > began for c in traffic.calls)  # under traffic
    if step.served_before and step.served_after:
        assert not failed, f"{len(failed)} calls failed, e.g. {failed[0].error!r}"
    if step.served_before:  # nothing failed before the schema went
        assert all(c.ended > began for c in failed)
    if step.served_after:  # nothing fails once it is back
        assert all(c.started < ended for c in failed)
        assert sum(c.started > ended for c in traffic.calls) >= 2 * WORKERS * TURNS_AFTER

    migrations.apply(database_dsn)
    async with PostgresHistoryRepository.from_dsn(database_dsn) as repo:
        for session, texts in traffic.stored.items():
            stored = [m.content for m in await repo.load_history("agent", session)]
            assert stored == texts, session  # every append that succeeded, once, in order


async def _every_call_returning_stored_columns(repo: PostgresHistoryRepository) -> None:
    """Each call whose statements return a message's or a conversation's columns."""
    await repo.append_messages("agent", "s", [Message(role="user", content="x", id="m1")])
    assert await repo.get_message("agent", "s", "m1") is not None
    assert await repo.load_history("agent", "s", limit=20)
    assert (await repo.load_history_page("agent", "s", limit=5)).messages
    assert [m async for m in repo.iter_history("agent", "s")]
    assert [s async for s in repo.iter_sessions("agent")]
    assert (await repo.list_sessions_page("agent", limit=5)).sessions
    assert await repo.get_session("agent", "s") is not None
    await repo.set_session_metadata("agent", "s", {"title": "t"})
    tail = await repo.load_history("agent", "s", limit=1)
    assert await repo.replace_last_messages("agent", "s", tail, [Message(role="user", content="y")])
    popped = await repo.pop_message("agent", "s")
    assert popped is not None and popped.content == "y"
    await repo.save_full_history("agent", "s", [Message(role="system", content="z")])
    assert await repo.copy_session("agent", "s", f"copy-{monotonic()}") == 1


FIRST_CALLS: dict[str, Callable[[PostgresHistoryRepository], Any]] = {
    "load_history": lambda repo: repo.load_history("agent", "s", limit=20),
    "get_message": lambda repo: repo.get_message("agent", "s", "m1"),
    "load_history_page": lambda repo: repo.load_history_page("agent", "s", limit=5),
    "iter_history": lambda repo: repo.iter_history("agent", "s").__anext__(),
    "pop_message": lambda repo: repo.pop_message("agent", "s"),
    "replace_last_messages": lambda repo: repo.replace_last_messages(
        "agent", "s", [Message(role="system", content="z")], [Message(role="system", content="z")]
    ),
}
"""Calls whose statements return ``role``, each the first to meet the stale plans."""


@pytest.mark.parametrize("first", list(FIRST_CALLS))
@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit-pool", "default-pool"])
async def test_a_call_on_a_plan_0006_made_stale_succeeds_both_ways(
    database_dsn: str, autocommit: bool, first: str
) -> None:
    """Reads, and the writes whose statements return a role (pop, replace), on prepared plans.

    The first statement that meets a stale plan forgets every prepared
    statement of its connection, so each call goes first once.
    """
    # The Citus distribution (a no-op on one server) and LangGraph's tables,
    # the newest migrations, go first: 0007 is then the newest.
    assert migrations.rollback(database_dsn, steps=2) == [CITUS_MIGRATION, LANGGRAPH_MIGRATION]
    async with AsyncConnectionPool(
        database_dsn,
        min_size=1,
        max_size=1,
        kwargs={"autocommit": True} if autocommit else {},
        open=False,
    ) as pool:  # one connection: every call below runs on it
        repo = PostgresHistoryRepository(pool)
        # Down past 0007 (new tables only: no plan of these calls reads them)
        # and 0006, then up again.
        for change, done in (
            (lambda dsn: migrations.rollback(dsn, steps=2), [SEVENTH, SIXTH]),
            (migrations.apply, [SIXTH, SEVENTH, LANGGRAPH_MIGRATION, CITUS_MIGRATION]),
        ):
            for _ in range(WARM_TURNS):
                await _every_call_returning_stored_columns(repo)
            assert await _prepared_on_every_connection(pool, "RETURNING role", connections=1)
            assert change(database_dsn) == done
            await FIRST_CALLS[first](repo)  # StorageError before
            await _every_call_returning_stored_columns(repo)
