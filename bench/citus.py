"""agentcore on a Citus cluster against a single PostgreSQL of the same installation.

Needs Citus installed into a PostgreSQL installation (tests/citus.py says where it
looks; this repository does not build it). Run from the repository root::

    python -m bench.citus turns --turns 400        # a turn's latency: cluster vs single node
    python -m bench.citus sessions --sessions 100000  # an owner's page, a purge batch

``turns``: one client, sequential turns on 50 conversations (load the last 20
messages, append a user message and the reply: two repository calls), on a
coordinator with two workers (32 shards) and on a single node started with the
same settings and no extension. Reports the median and p95 of a turn, and the
statements each turn sends (the same on both: the repository does not know it
runs on Citus).

``sessions``: stores N conversations of one agent (one in a hundred owned by the
owner measured, all idle), spread over the 32 shards, then times a page of 50 of
that owner's conversations (first and fifth page) and purge batches of 1,000.
Prints a JSON report on stdout and progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from agentcore import Message, PostgresHistoryRepository, migrations
from tests.citus import running_cluster

CONVERSATIONS = 50


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def _turns(dsn: str, turns: int) -> dict[str, Any]:
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
            session = f"c{n % CONVERSATIONS}"
            start = time.perf_counter()
            await repo.load_history("agent", session, limit=20)
            await repo.append_messages(
                "agent",
                session,
                [
                    Message(role="user", content="u" * 200),
                    Message(role="assistant", content="a" * 600),
                ],
            )
            took.append(time.perf_counter() - start)
    ordered = sorted(took[turns // 10 :])  # the first tenth warms the plans up
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 3),
        "turns_timed": len(ordered),
    }


def turns(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"load_before": _load(), "turns": args.turns}
    with running_cluster(workers=0, citus=False) as single:
        migrations.apply(single.dsn())
        log("single node")
        report["single_node"] = asyncio.run(_turns(single.dsn(), args.turns))
    with running_cluster() as cluster:
        migrations.apply(cluster.dsn())
        log("cluster: coordinator and two workers")
        report["cluster"] = asyncio.run(_turns(cluster.dsn(), args.turns))
    report["ratio_median"] = round(
        report["cluster"]["median_ms"] / report["single_node"]["median_ms"], 2
    )
    report["load_after"] = _load()
    return report


def _store_sessions(dsn: str, count: int) -> float:
    start = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO conversation_sessions"
            " (agent_name, session_id, next_seq, created_at, updated_at, metadata)"
            " SELECT 'agent', 's' || n, 1, now() - interval '30 days',"
            " now() - interval '30 days' + n * interval '1 ms',"
            ' CASE WHEN n %% 100 = 0 THEN \'{"owner": "u1"}\'::jsonb'
            " ELSE jsonb_build_object('owner', 'o' || (n %% 997)) END"
            " FROM generate_series(1, %s) AS n",
            [count],
        )
        conn.execute(
            "INSERT INTO conversation_history (agent_name, session_id, seq, role, content)"
            " SELECT 'agent', 's' || n, 0, 'user', 'hello' FROM generate_series(1, %s) AS n",
            [count],
        )
        conn.execute("ANALYZE conversation_sessions")
        conn.execute("ANALYZE conversation_history")
    return time.perf_counter() - start


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
        "purge_total_s": round(total, 1),
        "purged_sessions": reports[-1] if reports else 0,
    }


def sessions(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"load_before": _load(), "sessions": args.sessions}
    for name, kwargs in (("single_node", {"workers": 0, "citus": False}), ("cluster", {})):
        with running_cluster(**kwargs) as nodes:  # type: ignore[arg-type]
            migrations.apply(nodes.dsn())
            log(f"{name}: storing {args.sessions} conversations")
            built = _store_sessions(nodes.dsn(), args.sessions)
            log(f"{name}: stored in {built:.1f}s; measuring")
            report[name] = asyncio.run(_sessions(nodes.dsn())) | {"build_s": round(built, 1)}
    report["load_after"] = _load()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    turn = sub.add_parser("turns")
    turn.add_argument("--turns", type=int, default=400)
    many = sub.add_parser("sessions")
    many.add_argument("--sessions", type=int, default=100_000)
    args = parser.parse_args()
    report = turns(args) if args.part == "turns" else sessions(args)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
