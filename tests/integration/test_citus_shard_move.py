"""Moving a shard between the workers of a Citus cluster while turns run.

The cluster is tests/citus.py's coordinator and two workers (wal_level =
logical, so a move can copy a shard by logical replication), with agentcore's
tables distributed by session_id (migration 0007). Conversations are chosen so
that half of them live on the shard that is moved (a conversation's row and
its messages are co-located: one shard group) and half elsewhere.

- ``test_turns_run_through_a_shard_move``: writers run agent turns (with an
  input id) and plain appends (with message ids) on every conversation while
  ``citus_move_shard_placement`` moves the shard group to the other worker with
  logical replication (``force_logical``, what Citus' default ``auto`` picks
  for these tables, which have primary keys). A call that fails is retried with
  the same ids, and must have failed with a :class:`TransientStorageError` or a
  :class:`DatabaseUnavailableError` (agentcore's retryable errors). Afterwards
  every conversation holds exactly the messages that were acknowledged, each
  once, in order, and they are on the destination worker.
- ``test_a_write_held_by_a_move_fails_retryable``: a move in ``block_writes``
  mode, inside a transaction left open, holds the shard's writes
  deterministically. A write with a lock or statement timeout fails with
  :class:`TransientStorageError` and stores nothing; a read of the shard and
  a one-shard update elsewhere (metadata) go through; a write without a
  timeout waits, then lands on the new placement once the move commits; the
  failed call, retried with the same message ids, stores its messages once.
  (An append elsewhere waits too, while appends are an INSERT ... SELECT that
  Citus pulls to the coordinator: docs/scaling.md, Moving shards.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from agentcore import (
    Agent,
    AgentConfig,
    DatabaseUnavailableError,
    EchoModel,
    Message,
    PostgresHistoryRepository,
    StorageError,
    TransientStorageError,
    migrations,
)
from agentcore.agent import reply_id_for
from tests.citus import TEST_SHARD_COUNT, CitusCluster, Node, running_cluster

AGENT = "mover"
PER_SHARD = 6
"""Conversations on the moved shard, and as many elsewhere."""
RETRYABLE = (TransientStorageError, DatabaseUnavailableError)
MOVE_TIMEOUT_SECONDS = 40.0
AFTER_MOVE_SECONDS = 0.5
"""How long the writers go on once the shard is on its new worker."""


@dataclass(frozen=True)
class Shard:
    """The shard group of one conversation: its two shards and where they are."""

    sessions_shard: int
    history_shard: int
    source: Node
    target: Node


def _shard_of(conn: psycopg.Connection[Any], table: str, session_id: str) -> int:
    row = conn.execute(
        "SELECT get_shard_id_for_distribution_column(%s, %s::text)", [table, session_id]
    ).fetchone()
    assert row is not None
    return int(row[0])


def _port_of(conn: psycopg.Connection[Any], shard: int) -> int:
    ports = conn.execute("SELECT nodeport FROM citus_shards WHERE shardid = %s", [shard]).fetchall()
    assert len(ports) == 1, f"shard {shard} has {len(ports)} placements"
    return int(ports[0][0])


def _pick(cluster: CitusCluster, prefix: str) -> tuple[Shard, list[str], list[str]]:
    """A shard group, PER_SHARD session ids on it and PER_SHARD on other shards."""
    on: list[str] = []
    off: list[str] = []
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        first = f"{prefix}-0"
        shard = _shard_of(conn, "conversation_sessions", first)
        n = 0
        while len(on) < PER_SHARD or len(off) < PER_SHARD:
            session = f"{prefix}-{n}"
            n += 1
            side = on if _shard_of(conn, "conversation_sessions", session) == shard else off
            if len(side) < PER_SHARD:
                side.append(session)
        history = _shard_of(conn, "conversation_history", first)
        port = _port_of(conn, shard)
        assert _port_of(conn, history) == port, "the history shard is co-located"
    source = next(w for w in cluster.workers if w.port == port)
    target = next(w for w in cluster.workers if w.port != port)
    return Shard(shard, history, source, target), on, off


def _move_sql(shard: Shard, mode: str) -> tuple[str, list[Any]]:
    return (
        "SELECT citus_move_shard_placement(%s, '127.0.0.1', %s, '127.0.0.1', %s, "
        "shard_transfer_mode => %s::citus.shard_transfer_mode)",
        [shard.sessions_shard, shard.source.port, shard.target.port, mode],
    )


def _stored_ids(dsn: str, session_id: str) -> list[str | None]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT message_id FROM conversation_history"
            " WHERE agent_name = %s AND session_id = %s ORDER BY seq",
            [AGENT, session_id],
        ).fetchall()
    return [row[0] for row in rows]


def _ids_on_worker(cluster: CitusCluster, node: Node, shard: Shard, session_id: str) -> set[str]:
    """The message ids of ``session_id`` in the history shard's table on ``node``."""
    with psycopg.connect(cluster.dsn(node=node), autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL("SELECT message_id FROM {} WHERE session_id = %s").format(
                sql.Identifier(f"conversation_history_{shard.history_shard}")
            ),
            [session_id],
        ).fetchall()
    return {row[0] for row in rows}


@asynccontextmanager
async def _repository(dsn: str, size: int, options: str = "") -> AsyncIterator[Any]:
    kwargs: dict[str, Any] = {"autocommit": True}
    if options:
        kwargs["options"] = options
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, min_size=size, max_size=size, kwargs=kwargs, open=False, timeout=30
    )
    await pool.open(wait=True, timeout=30)
    try:
        yield PostgresHistoryRepository(pool)
    finally:
        await pool.close()


@dataclass
class _Writer:
    """One conversation's writer: turns and appends, each retried until acknowledged."""

    session_id: str
    acknowledged: list[str] = field(default_factory=list)
    during_move: int = 0
    failures: list[BaseException] = field(default_factory=list)

    async def run(
        self,
        repo: PostgresHistoryRepository,
        agent: Agent,
        stop: asyncio.Event,
        moving: asyncio.Event,
    ) -> None:
        n = 0
        while not stop.is_set():
            ids = await self._step(repo, agent, n)
            self.acknowledged.extend(ids)
            if moving.is_set():
                self.during_move += 1
            n += 1

    async def _step(self, repo: PostgresHistoryRepository, agent: Agent, n: int) -> list[str]:
        prefix = f"{self.session_id}/{n}"
        for _ in range(50):
            try:
                if n % 2 == 0:  # an agent turn, exactly-once per input id
                    user = Message(role="user", content=f"turn {n}", id=f"{prefix}/in")
                    result = await agent.execute_agent(user, self.session_id)
                    assert [m.id for m in result.messages] == [
                        f"{prefix}/in",
                        reply_id_for(f"{prefix}/in"),
                    ]
                    return [f"{prefix}/in", reply_id_for(f"{prefix}/in")]
                await repo.load_history(AGENT, self.session_id, limit=20)
                ids = [f"{prefix}/u", f"{prefix}/a"]
                await repo.append_messages(
                    AGENT,
                    self.session_id,
                    [
                        Message(role="user", content="question", id=ids[0]),
                        Message(role="assistant", content="answer", id=ids[1]),
                    ],
                )
                return ids
            except StorageError as exc:  # anything else fails the test
                self.failures.append(exc)
                await asyncio.sleep(0.05)
        raise AssertionError(f"{self.session_id}: step {n} failed 50 times: {self.failures[-1]!r}")


async def test_turns_run_through_a_shard_move(citus_cluster: CitusCluster, citus_dsn: str) -> None:
    shard, on, off = _pick(citus_cluster, "move")
    writers = [_Writer(session) for session in on + off]
    stop, moving = asyncio.Event(), asyncio.Event()
    async with _repository(citus_dsn, size=8) as repo:
        agent = Agent(
            AgentConfig(name=AGENT, include_history=True, history_limit=20), EchoModel(), repo
        )
        tasks = [asyncio.create_task(w.run(repo, agent, stop, moving)) for w in writers]
        try:
            await asyncio.sleep(0.5)
            assert all(w.acknowledged for w in writers), "every writer ran before the move"

            def move() -> float:
                query, params = _move_sql(shard, "force_logical")
                with psycopg.connect(citus_dsn, autocommit=True) as conn:
                    start = time.monotonic()
                    conn.execute(query, params)
                    return time.monotonic() - start

            moving.set()
            took = await asyncio.wait_for(asyncio.to_thread(move), MOVE_TIMEOUT_SECONDS)
            moving.clear()
            await asyncio.sleep(AFTER_MOVE_SECONDS)
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    with psycopg.connect(citus_dsn, autocommit=True) as conn:
        assert _port_of(conn, shard.sessions_shard) == shard.target.port
        assert _port_of(conn, shard.history_shard) == shard.target.port
    moved_writers = [w for w in writers if w.session_id in on]
    assert sum(w.during_move for w in moved_writers) > 0, (
        f"no call on the moved shard completed during the {took:.2f} s move"
    )
    for writer in writers:
        assert writer.acknowledged
        # Exactly the acknowledged messages, each once, in the order acknowledged.
        assert _stored_ids(citus_dsn, writer.session_id) == writer.acknowledged
        for failure in writer.failures:
            assert isinstance(failure, RETRYABLE), f"{writer.session_id}: {failure!r}"
    for session in on:
        wanted = set(next(w for w in writers if w.session_id == session).acknowledged)
        assert _ids_on_worker(citus_cluster, shard.target, shard, session) == wanted


@pytest.mark.parametrize("timeout", ["lock_timeout", "statement_timeout"])
async def test_a_write_held_by_a_move_fails_retryable(
    citus_cluster: CitusCluster, citus_dsn: str, timeout: str
) -> None:
    shard, on, off = _pick(citus_cluster, f"held-{timeout}")
    held, other, waiting = on[0], off[0], on[1]
    first = [Message(role="user", content="before the move", id="m0")]
    batch = [
        Message(role="user", content="during the move", id="m1"),
        Message(role="assistant", content="reply", id="m2"),
    ]
    async with (
        _repository(citus_dsn, size=2, options=f"-c {timeout}=300") as impatient,
        _repository(citus_dsn, size=1) as patient,
    ):
        for session in (held, other, waiting):
            assert await impatient.append_messages(AGENT, session, first) == 1
        query, params = _move_sql(shard, "block_writes")
        mover = psycopg.connect(citus_dsn)  # the move's transaction, left open
        try:
            mover.execute(query, params)
            with pytest.raises(TransientStorageError, match=timeout.replace("_", " ")) as failed:
                await impatient.append_messages(AGENT, held, batch)
            assert isinstance(failed.value.__cause__, psycopg.errors.LockNotAvailable) == (
                timeout == "lock_timeout"
            )
            with pytest.raises(TransientStorageError):
                await impatient.set_session_metadata(AGENT, held, {"owner": "o"})
            # Reads of the held shard go on, and so do single-shard updates elsewhere.
            assert [m.id for m in await impatient.load_history(AGENT, held)] == ["m0"]
            assert await impatient.set_session_metadata(AGENT, other, {"owner": "o"}) == {
                "owner": "o"
            }
            # A write without a timeout waits for the move.
            wait = asyncio.create_task(patient.append_messages(AGENT, waiting, batch))
            await asyncio.sleep(0.5)
            assert not wait.done()
            mover.commit()
        finally:
            mover.close()
        assert await asyncio.wait_for(wait, 30) == 2
        # The failed call, made again with the same ids, stores its messages once.
        assert await impatient.append_messages(AGENT, held, batch) == 2
        assert await impatient.append_messages(AGENT, held, batch) == 0

    with psycopg.connect(citus_dsn, autocommit=True) as conn:
        assert _port_of(conn, shard.sessions_shard) == shard.target.port
    assert _stored_ids(citus_dsn, other) == ["m0"]
    for session in (held, waiting):
        assert _stored_ids(citus_dsn, session) == ["m0", "m1", "m2"]
    for session in (held, waiting):  # written on the new placement, not the old one
        assert _ids_on_worker(citus_cluster, shard.target, shard, session) == {"m0", "m1", "m2"}


async def test_a_write_held_by_a_tenant_isolation_fails_retryable() -> None:
    """``isolate_tenant_to_new_shard`` splits a shard while an append waits for it.

    On a cluster of its own: the split changes the shard count that other
    tests of the session check. The split (``block_writes``, in a transaction
    left open) holds an append to a neighbour of the tenant (a conversation on
    the shard that is split); once it commits, the append either goes through
    on the new shard (the router statements of sql/distributed.sql are planned
    after the wait) or, where Citus had planned it for the shard that is gone,
    is refused ("could not find valid entry for shard", seen with the
    INSERT ... SELECT append this replaced): a :class:`TransientStorageError`,
    nothing stored, whose retry with the same ids stores its messages once.
    Either way they are stored exactly once.
    """
    with running_cluster(shard_count=TEST_SHARD_COUNT, throwaway=True) as cluster:
        migrations.apply(cluster.dsn())
        dsn = cluster.dsn()
        tenant = "tenant-0"
        with psycopg.connect(dsn, autocommit=True) as conn:
            before = _shard_counts(conn)
            old = _shard_of(conn, "conversation_sessions", tenant)
            writer = next(  # a neighbour: on the shard that is split, not isolated
                name
                for name in (f"neighbour-{n}" for n in range(10_000))
                if _shard_of(conn, "conversation_sessions", name) == old
            )
        batch = [
            Message(role="user", content="during the split", id="m1"),
            Message(role="assistant", content="reply", id="m2"),
        ]
        async with _repository(dsn, size=2) as repo:
            for session in (tenant, writer):
                await repo.append_messages(AGENT, session, [Message(role="user", content="x")])
            splitter = psycopg.connect(dsn)
            try:
                splitter.execute(
                    "SELECT isolate_tenant_to_new_shard('conversation_sessions', %s::text,"
                    " cascade_option => 'CASCADE', shard_transfer_mode => 'block_writes')",
                    [tenant],
                )
                held = asyncio.create_task(repo.append_messages(AGENT, writer, batch))
                await asyncio.sleep(0.5)
                assert not held.done()
                splitter.commit()
            finally:
                splitter.close()
            try:
                stored = await asyncio.wait_for(held, 30)
            except TransientStorageError as exc:
                assert "could not find valid entry for shard" in str(exc)
                assert [m.id for m in await repo.load_history(AGENT, writer)] == [None]
                stored = await repo.append_messages(AGENT, writer, batch)
            assert stored == 2
            assert await repo.append_messages(AGENT, writer, batch) == 0
            assert [m.id for m in await repo.load_history(AGENT, writer)] == [None, "m1", "m2"]
            assert len(await repo.load_history(AGENT, tenant)) == 1
        with psycopg.connect(dsn, autocommit=True) as conn:
            new = _shard_of(conn, "conversation_sessions", tenant)
            after = _shard_counts(conn)
        assert new != old
        # The split shard became three (the tenant's, and one each side), in every
        # co-located table; a reference table keeps its one shard.
        assert {table: count for table, (_, count) in after.items()} == {
            table: count + 2 if kind == "distributed" else count
            for table, (kind, count) in before.items()
        }
        assert after["conversation_sessions"] == ("distributed", TEST_SHARD_COUNT + 2)


def _shard_counts(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    rows = conn.execute(
        "SELECT table_name::text, citus_table_type, count(*) FROM citus_shards GROUP BY 1, 2"
    ).fetchall()
    return {table: (kind, count) for table, kind, count in rows}
