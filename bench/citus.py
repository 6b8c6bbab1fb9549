"""agentcore on a Citus cluster against a single PostgreSQL of the same installation.

Needs Citus installed into a PostgreSQL installation (tests/citus.py says where it
looks; this repository does not build it). Run from the repository root::

    python -m bench.citus turns --turns 400        # a turn's latency: cluster vs single node
    python -m bench.citus sessions --sessions 1000000  # an owner's page, purge batches
    python -m bench.citus move --sessions 100000   # turns while a shard group moves

``turns``: one client, sequential turns on 50 conversations (load the last 20
messages, append a user message and the reply: two repository calls), on a
coordinator with two workers (32 shards) and on a single node started with the
same settings and no extension. Reports the median and p95 of a turn; then, in a
separate pass of 20 turns that is not timed, the statements the client sends per
turn and its round trips (the same on both: the repository does not know it runs
on Citus), and on the cluster the commands the coordinator sends to the workers
per turn (counted from ``citus.log_remote_commands``, whose notices name each one).

``sessions``: stores N conversations of one agent with one message each, spread
over the 32 shards (one INSERT ... SELECT over generate_series per table on the
coordinator, with the columns the repository writes); one in a hundred is owned
by the owner measured. The first ``--idle`` conversations (by number) were last
written 30 days ago, the rest within the last hour. Times a page of 50 of that
owner's conversations (first and fifth page, median of 20 each), then
purge_idle_sessions with batches of 1,000, which deletes exactly the idle ones
(``--idle`` / 1,000 batches; not the whole table, whose purge on the cluster
would take longer than this machine can give a run).
``move``: stores N conversations of 10 messages on the cluster, then for each
``--modes`` runs turns (load the last 20 messages, append two messages with ids)
on 16 conversations, 8 on one shard group and 8 elsewhere, a connection each,
for 3 s, while ``citus_move_shard_placement`` moves that shard group to the
other worker, and for 3 s after. Reports how long the move took, each group's
turn latency by when the turn started (before, during, after the move), every
failed call (retried with the same ids) and whether the acknowledged messages are
stored, each once.

Prints a JSON report on stdout and progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import re
import statistics
import sys
import time
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import AsyncCursor
from psycopg_pool import AsyncConnectionPool

from agentcore import Message, PostgresHistoryRepository, StorageError, migrations
from agentcore import postgres as agentcore_postgres
from tests.citus import running_cluster

CONVERSATIONS = 50
re_table = re.compile(r"(conversation_\w+?)_\d+")
COUNTED_TURNS = 20
"""Turns of the untimed pass that counts statements and round trips."""


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class _CountingCursor(AsyncCursor[Any]):
    """A cursor that counts the statements it sends and the round trips they take.

    A statement outside a pipeline is a round trip of its own; the statements
    agentcore sends in one pipeline (agentcore.postgres._send_in_one_round_trip,
    wrapped by :func:`_count_pipelines`) are one round trip together.
    """

    sent = 0
    round_trips = 0
    in_pipeline = False

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        _CountingCursor.sent += 1
        if not _CountingCursor.in_pipeline:
            _CountingCursor.round_trips += 1
        return await super().execute(query, params, **kwargs)


def _count_pipelines() -> None:
    """Count each of agentcore's pipelines as one round trip (bench only: a private name)."""
    send = agentcore_postgres._send_in_one_round_trip

    async def counted(*args: Any, **kwargs: Any) -> Any:
        _CountingCursor.round_trips += 1
        _CountingCursor.in_pipeline = True
        try:
            return await send(*args, **kwargs)
        finally:
            _CountingCursor.in_pipeline = False

    if getattr(send, "__name__", "") != "counted":
        agentcore_postgres._send_in_one_round_trip = counted


async def _turn(repo: PostgresHistoryRepository, session: str) -> None:
    await repo.load_history("agent", session, limit=20)
    await repo.append_messages(
        "agent",
        session,
        [Message(role="user", content="u" * 200), Message(role="assistant", content="a" * 600)],
    )


def _command_kind(notice: str) -> str:
    """What a ``citus.log_remote_commands`` notice's command does, without its values."""
    text = notice.removeprefix("issuing ").strip()
    for word in ("PREPARE TRANSACTION", "COMMIT PREPARED", "BEGIN", "COMMIT", "ROLLBACK"):
        if text.upper().startswith(word):
            return word
    verb = text.split(None, 1)[0].upper() if text else "?"
    if "worker_column_" in text or "COPY" in text.upper()[:10]:
        return verb + " (copy of pulled rows)"
    table = re_table.search(text)
    return f"{verb} {table[1] if table else ''}".strip()


async def _counted(dsn: str, *, citus: bool) -> dict[str, Any]:
    """Statements, round trips and (on the cluster) commands to workers per turn, untimed."""
    remote: list[str] = []

    async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
        conn.add_notice_handler(
            lambda diag: (
                remote.append(diag.message_primary or "")
                if (diag.message_primary or "").startswith("issuing ")
                else None
            )
        )
        if citus:
            await conn.execute("SET citus.log_remote_commands = on")

    async with AsyncConnectionPool(
        dsn, min_size=1, max_size=1, open=False, configure=configure,
        kwargs={"autocommit": True, "cursor_factory": _CountingCursor},
    ) as pool:  # fmt: skip
        repo = PostgresHistoryRepository(pool)
        await _turn(repo, "c0")  # the repository's first call asks what the database is
        _CountingCursor.sent = _CountingCursor.round_trips = 0
        remote[:] = []
        for n in range(COUNTED_TURNS):
            await _turn(repo, f"c{n % CONVERSATIONS}")
        report: dict[str, Any] = {
            "client_statements_per_turn": _CountingCursor.sent / COUNTED_TURNS,
            "client_round_trips_per_turn": _CountingCursor.round_trips / COUNTED_TURNS,
        }
        if citus:
            report["commands_to_workers_per_turn"] = len(remote) / COUNTED_TURNS
            kinds = collections.Counter(_command_kind(r) for r in remote)
            report["commands_to_workers_by_kind"] = {
                kind: round(n / COUNTED_TURNS, 2) for kind, n in kinds.most_common()
            }
        return report


async def _turns(dsn: str, turns: int, *, citus: bool) -> dict[str, Any]:
    async with AsyncConnectionPool(
        dsn, min_size=1, max_size=1, kwargs={"autocommit": True}, open=False
    ) as pool:
        repo = PostgresHistoryRepository(pool)
        for n in range(CONVERSATIONS):  # every conversation exists, with some history
            await repo.append_messages(
                "agent", f"c{n}", [Message(role="user", content="x" * 200)] * 20
            )
        took: list[float] = []
        for n in range(turns):
            start = time.perf_counter()
            await _turn(repo, f"c{n % CONVERSATIONS}")
            took.append(time.perf_counter() - start)
    ordered = sorted(took[turns // 10 :])  # the first tenth warms the plans up
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 3),
        "turns_timed": len(ordered),
    } | await _counted(dsn, citus=citus)


def turns(args: argparse.Namespace) -> dict[str, Any]:
    _count_pipelines()
    report: dict[str, Any] = {"load_before": _load(), "turns": args.turns}
    with running_cluster(workers=0, citus=False) as single:
        migrations.apply(single.dsn())
        log("single node")
        report["single_node"] = asyncio.run(_turns(single.dsn(), args.turns, citus=False))
    with running_cluster() as cluster:
        migrations.apply(cluster.dsn())
        log("cluster: coordinator and two workers")
        report["cluster"] = asyncio.run(_turns(cluster.dsn(), args.turns, citus=True))
    report["ratio_median"] = round(
        report["cluster"]["median_ms"] / report["single_node"]["median_ms"], 2
    )
    report["load_after"] = _load()
    return report


def _store_sessions(dsn: str, count: int, idle: int) -> float:
    """``count`` conversations of one message each; the first ``idle`` idle for 30 days."""
    start = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO conversation_sessions"
            " (agent_name, session_id, next_seq, created_at, updated_at, metadata)"
            " SELECT 'agent', 's' || n, 1, now() - interval '30 days',"
            " CASE WHEN n <= %(idle)s THEN now() - interval '30 days' + n * interval '1 ms'"
            " ELSE now() - (n %% 3600) * interval '1 s' END,"
            ' CASE WHEN n %% 100 = 0 THEN \'{"owner": "u1"}\'::jsonb'
            " ELSE jsonb_build_object('owner', 'o' || (n %% 997)) END"
            " FROM generate_series(1, %(count)s) AS n",
            {"count": count, "idle": idle},
        )
        log(f"stored {count} sessions in {time.perf_counter() - start:.1f}s")
        conn.execute(
            "INSERT INTO conversation_history (agent_name, session_id, seq, role, content)"
            " SELECT 'agent', 's' || n, 0, 'user', 'hello' FROM generate_series(1, %s) AS n",
            [count],
        )
        conn.execute("VACUUM ANALYZE conversation_sessions")
        conn.execute("VACUUM ANALYZE conversation_history")
        took = time.perf_counter() - start
        for table in ("conversation_sessions", "conversation_history"):
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert row is not None and row[0] == count, f"{table} holds {row}, not {count}"
    return took


async def _sessions(dsn: str) -> dict[str, Any]:
    async with AsyncConnectionPool(
        dsn, min_size=1, max_size=2, kwargs={"autocommit": True}, open=False
    ) as pool:
        repo = PostgresHistoryRepository(pool)
        pages: list[float] = []
        fifth: list[float] = []
        for _ in range(20):
            start = time.perf_counter()
            page = await repo.list_sessions_page("agent", limit=50, owner="u1")
            pages.append(time.perf_counter() - start)
            for _ in range(4):
                assert page.next_cursor is not None
                start = time.perf_counter()
                page = await repo.list_sessions_page(
                    "agent", limit=50, owner="u1", after=page.next_cursor
                )
            fifth.append(time.perf_counter() - start)
        batches: list[float] = []
        reports: list[int] = []

        def progress(report: Any) -> None:
            batches.append(time.perf_counter())
            reports.append(report.sessions)

        start = time.perf_counter()
        batches.append(start)
        await repo.purge_idle_sessions(
            timedelta(days=1), batch_size=1000, pause=0, on_progress=progress
        )
        total = time.perf_counter() - start
        per_batch = [b - a for a, b in itertools.pairwise(batches)]
    return {
        "owner_page_ms_median": round(statistics.median(pages) * 1000, 2),
        "owner_fifth_page_ms_median": round(statistics.median(fifth) * 1000, 2),
        "purge_batches": len(per_batch),
        "purge_batch_1000_ms_median": round(statistics.median(per_batch) * 1000, 1),
        "purge_batch_1000_ms_p95": round(
            sorted(per_batch)[max(0, int(len(per_batch) * 0.95) - 1)] * 1000, 1
        ),
        "purge_total_s": round(total, 1),
        "purged_sessions": reports[-1] if reports else 0,
    }


def sessions(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "load_before": _load(), "sessions": args.sessions, "idle": args.idle,
    }  # fmt: skip
    for name, kwargs in (("single_node", {"workers": 0, "citus": False}), ("cluster", {})):
        with running_cluster(**kwargs) as nodes:  # type: ignore[arg-type]
            migrations.apply(nodes.dsn())
            log(f"{name}: storing {args.sessions} conversations")
            built = _store_sessions(nodes.dsn(), args.sessions, args.idle)
            log(f"{name}: stored in {built:.1f}s; measuring")
            report[name] = asyncio.run(_sessions(nodes.dsn())) | {
                "build_s": round(built, 1), "load": _load(),
            }  # fmt: skip
    report["load_after"] = _load()
    return report


MOVE_WRITERS = 16
"""Conversations written during a move: half on the shard moved, half elsewhere."""


def _shard_of(conn: psycopg.Connection[Any], session_id: str) -> int:
    row = conn.execute(
        "SELECT get_shard_id_for_distribution_column('conversation_sessions', %s::text)",
        [session_id],
    ).fetchone()
    assert row is not None
    return int(row[0])


def _ms(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"calls": 0}
    ordered = sorted(values)
    return {
        "calls": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


async def _move(dsn: str, ports: list[int], mode: str) -> dict[str, Any]:
    """Turns on MOVE_WRITERS conversations while one shard group moves to the other worker."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        names = [f"{mode}-w{n}" for n in range(2000)]
        shard = _shard_of(conn, names[0])
        on = [s for s in names if _shard_of(conn, s) == shard]
        off = [s for s in names if _shard_of(conn, s) != shard]
        sessions = on[: MOVE_WRITERS // 2] + off[: MOVE_WRITERS // 2]
        row = conn.execute("SELECT nodeport FROM citus_shards WHERE shardid = %s", [shard])
        source = int(row.fetchone()[0])  # type: ignore[index]
        rows = conn.execute(
            "SELECT count(*), pg_size_pretty(sum(shard_size)) FROM citus_shards s"
            " JOIN pg_dist_shard d USING (shardid)"
            " WHERE d.shardid = %s OR (d.logicalrelid = 'conversation_history'::regclass"
            "  AND d.shardid = get_shard_id_for_distribution_column("
            "   'conversation_history', %s::text))",
            [shard, names[0]],
        ).fetchone()
    target = next(p for p in ports if p != source)
    phase = "before"
    took: dict[tuple[str, bool], list[float]] = collections.defaultdict(list)
    failures: collections.Counter[str] = collections.Counter()
    stop = asyncio.Event()
    async with AsyncConnectionPool(
        dsn, min_size=MOVE_WRITERS, max_size=MOVE_WRITERS, kwargs={"autocommit": True},
        open=False,
    ) as pool:  # fmt: skip
        repo = PostgresHistoryRepository(pool)

        async def writer(session: str) -> None:
            n = 0
            while not stop.is_set():
                batch = [
                    Message(role="user", content="u" * 200, id=f"{session}/{n}/u"),
                    Message(role="assistant", content="a" * 600, id=f"{session}/{n}/a"),
                ]
                start, started_in = time.perf_counter(), phase
                try:
                    await _turn_with(repo, session, batch)
                except StorageError as exc:  # retried with the same ids
                    failures[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
                    continue
                took[(started_in, session in on)].append(time.perf_counter() - start)
                n += 1

        tasks = [asyncio.create_task(writer(s)) for s in sessions]
        await asyncio.sleep(3)

        def move() -> float:
            with psycopg.connect(dsn, autocommit=True) as conn:
                start = time.perf_counter()
                conn.execute(
                    "SELECT citus_move_shard_placement(%s, '127.0.0.1', %s, '127.0.0.1', %s,"
                    " shard_transfer_mode => %s::citus.shard_transfer_mode)",
                    [shard, source, target, mode],
                )
                return time.perf_counter() - start

        phase = "during"
        moved_in = await asyncio.to_thread(move)
        phase = "after"
        await asyncio.sleep(3)
        stop.set()
        await asyncio.gather(*tasks)
    with psycopg.connect(dsn, autocommit=True) as conn:
        stored = conn.execute(
            "SELECT count(*), count(DISTINCT (session_id, message_id)) FROM conversation_history"
            " WHERE session_id = ANY(%s)",
            [sessions],
        ).fetchone()
        back = conn.execute("SELECT nodeport FROM citus_shards WHERE shardid = %s", [shard])
        now_on = int(back.fetchone()[0])  # type: ignore[index]
    acknowledged = 2 * sum(len(v) for v in took.values())
    return {
        "mode": mode,
        "shard_group_shards_and_size": list(rows) if rows else None,
        "move_s": round(moved_in, 2),
        "moved_to_target": now_on == target,
        "turns_on_moved_shard": {p: _ms(took[(p, True)]) for p in ("before", "during", "after")},
        "turns_elsewhere": {p: _ms(took[(p, False)]) for p in ("before", "during", "after")},
        "failed_calls": dict(failures),
        "messages_acknowledged": acknowledged,
        "messages_stored_for_those_sessions": stored[0] if stored else None,
        "distinct_ids_stored": stored[1] if stored else None,
    }


async def _turn_with(repo: PostgresHistoryRepository, session: str, batch: list[Message]) -> None:
    await repo.load_history("agent", session, limit=20)
    await repo.append_messages("agent", session, batch)


def move(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"load_before": _load(), "sessions": args.sessions}
    with running_cluster() as cluster:
        migrations.apply(cluster.dsn())
        dsn = cluster.dsn()
        log(f"storing {args.sessions} conversations of 10 messages")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO conversation_sessions (agent_name, session_id, next_seq)"
                " SELECT 'agent', 's' || n, 10 FROM generate_series(1, %s) AS n",
                [args.sessions],
            )
            conn.execute(
                "INSERT INTO conversation_history (agent_name, session_id, seq, role, content)"
                " SELECT 'agent', 's' || n, k, 'user', repeat('x', 200)"
                " FROM generate_series(1, %s) AS n, generate_series(0, 9) AS k",
                [args.sessions],
            )
            conn.execute("ANALYZE conversation_sessions")
            conn.execute("ANALYZE conversation_history")
        ports = [w.port for w in cluster.workers]
        for mode in args.modes:
            log(f"moving a shard group ({mode}) while turns run")
            report[mode] = asyncio.run(_move(dsn, ports, mode))
    report["load_after"] = _load()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    turn = sub.add_parser("turns")
    turn.add_argument("--turns", type=int, default=400)
    many = sub.add_parser("sessions")
    many.add_argument("--sessions", type=int, default=1_000_000)
    many.add_argument("--idle", type=int, default=20_000, help="conversations purged")
    moving = sub.add_parser("move")
    moving.add_argument("--sessions", type=int, default=100_000)
    moving.add_argument(
        "--modes", nargs="+", default=["force_logical", "block_writes"],
        choices=["force_logical", "block_writes", "auto"],
    )  # fmt: skip
    args = parser.parse_args()
    parts = {"turns": turns, "sessions": sessions, "move": move}
    report = parts[args.part](args)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
