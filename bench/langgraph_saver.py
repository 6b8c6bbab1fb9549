"""AgentcoreSaver against LangGraph's AsyncPostgresSaver: storage, WAL and time per turn.

python -m bench.langgraph_saver [--turns 1000] [--marks 10,100,300,1000] [--chart PNG]
python -m bench.langgraph_saver --retention [--threads 10000]

Storage: one thread of T turns of the real graph of bench/langgraph_graph.py
(each turn: a human message and the stub model's AI answer), per checkpointer,
each in a database of its own on the same server. At each mark T: the bytes on
disk (heap, indexes, TOAST) of every table the checkpointer writes, the WAL
written since the thread began, the median time of one turn's checkpoint
writes (aput + aput_writes, over the 10 turns before the mark) and of
``aget_tuple`` of the latest checkpoint (15 calls).

Retention (AgentcoreSaver only): threads of 2 graph turns each (one run, copied
with ``acopy_thread``), then, while live graphs keep running turns on other
threads, ``aprune(keep_latest)`` over all of them (batches of 1,000), then
agentcore's idle purge of all of them.

Without ``--dsn`` it starts its own throw-away embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg_pool import AsyncConnectionPool

from agentcore import PostgresHistoryRepository, migrations
from agentcore.integrations.langgraph import AgentcoreSaver
from agentcore.sql import Queries, load_queries
from bench.langgraph_graph import build_graph, config, human

TABLES = {
    "agentcore": [
        "conversation_history",
        "conversation_sessions",
        "langgraph_checkpoints",
        "langgraph_checkpoint_blobs",
        "langgraph_checkpoint_writes",
    ],
    "postgres": ["checkpoints", "checkpoint_blobs", "checkpoint_writes", "checkpoint_migrations"],
}
LABELS = {"agentcore": "AgentcoreSaver", "postgres": "AsyncPostgresSaver"}
WORDS = (
    "order ship refund invoice customer account password reset delivery late early box "
    "price discount coupon card bank transfer address street city country phone email "
    "support agent ticket issue bug error crash update version install setup login page "
    "report weekly monthly figure total average growth loss profit team manager meeting"
).split()


def bench_sql() -> Queries:
    return load_queries(Path(__file__).parent / "sql")


def text(turn: int, chars: int) -> str:
    """Turn ``turn``'s human message: ``chars`` characters of words drawn at random
    (seeded by the turn, so every run writes the same), with numbers, compressing
    about as well as prose: a repeated sentence would flatter the savers that
    write it again (PostgreSQL compresses each stored value)."""
    draw = random.Random(turn)
    words = [f"turn {turn}:"]
    while sum(len(w) + 1 for w in words) < chars:
        word = draw.choice(WORDS)
        words.append(f"{word} {draw.randrange(10_000)}" if draw.random() < 0.2 else word)
    return " ".join(words)[:chars]


def _timed(
    method: Callable[..., Awaitable[Any]], spent: list[float]
) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    return wrapper


async def _scalar(pool: AsyncConnectionPool[Any], query: str, params: dict[str, Any]) -> Any:
    async with pool.connection() as conn:
        cur = await conn.execute(bench_sql()[query].text, params)
        row = await cur.fetchone()
    assert row is not None
    return row[0]


async def storage_run(
    dsn: str, contender: str, turns: int, marks: list[int], chars: int, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    """One thread of ``turns`` turns on ``contender``; the figures at each mark."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, kwargs={"autocommit": True}, open=False
    )
    async with pool:
        saver: BaseCheckpointSaver[Any]
        if contender == "agentcore":
            saver = AgentcoreSaver(pool)
        else:
            saver = AsyncPostgresSaver(pool)
            await saver.setup()
        spent: list[float] = []
        saver.aput = _timed(saver.aput, spent)  # type: ignore[method-assign,assignment]
        saver.aput_writes = _timed(saver.aput_writes, spent)  # type: ignore[method-assign,assignment]
        graph = build_graph(saver)
        tables = TABLES[contender]
        start_lsn = await _scalar(pool, "lg_wal_lsn", {})
        per_turn: list[float] = []
        rows = []
        for turn in range(1, turns + 1):
            spent.clear()
            await graph.ainvoke({"messages": [human(turn, text(turn, chars))]}, config("t"))
            per_turn.append(sum(spent))
            if turn not in marks:
                continue
            gets = []
            for _ in range(15):
                started = time.perf_counter()
                assert await saver.aget_tuple(config("t")) is not None
                gets.append(time.perf_counter() - started)
            row = {
                "contender": contender,
                "turns": turn,
                "bytes": await _scalar(pool, "lg_relation_bytes", {"tables": tables}),
                "wal_bytes": await _scalar(pool, "lg_wal_bytes_since", {"start": start_lsn}),
                "write_ms": round(statistics.median(per_turn[-10:]) * 1000, 3),
                "get_ms": round(statistics.median(gets) * 1000, 3),
            }
            rows.append(row)
            log(json.dumps(row))
    return rows


def targets(rows: list[dict[str, Any]], marks: list[int]) -> dict[str, Any]:
    """The issue's goals, from the storage rows."""
    at = {(r["contender"], r["turns"]): r for r in rows}
    first, mid, last = 100, 300, max(marks)
    lo = min(marks)
    found: dict[str, Any] = {}
    ours = [at[("agentcore", t)] for t in (first, mid, last)]
    early = ours[0]["bytes"] / first
    late = (ours[2]["bytes"] - ours[1]["bytes"]) / (last - mid)
    found["bytes_per_turn_0_100"] = round(early)
    found["bytes_per_turn_300_1000"] = round(late)
    found["linear_ratio"] = round(late / early, 3)
    found["linear_met"] = late / early <= 1.3
    for key in ("bytes", "wal_bytes"):
        ratio = at[("agentcore", last)][key] / at[("postgres", last)][key]
        found[f"{key}_ratio_at_{last}"] = round(ratio, 4)
        found[f"{key}_ratio_met"] = ratio <= 0.1
    for key in ("write_ms", "get_ms"):
        for t in (lo, last):
            ratio = at[("agentcore", t)][key] / at[("postgres", t)][key]
            found[f"{key}_ratio_at_{t}"] = round(ratio, 3)
        found[f"{key}_agentcore_{last}_over_{lo}"] = round(
            at[("agentcore", last)][key] / at[("agentcore", lo)][key], 3
        )
    return found


async def retention_run(
    dsn: str, threads: int, live: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """Prune and purge ``threads`` threads while ``live`` graphs keep running turns."""
    async with AsyncConnectionPool(
        dsn, min_size=4, max_size=16, kwargs={"autocommit": True}, open=False
    ) as pool:
        saver = AgentcoreSaver(pool)
        graph = build_graph(saver)
        ids = [f"idle-{n}" for n in range(threads)]
        sem = asyncio.Semaphore(12)

        # One thread of 2 graph turns, copied to the others (acopy_thread: its
        # checkpoints, versions, writes and 4 messages each).
        for turn in (1, 2):
            await graph.ainvoke({"messages": [human(turn)]}, config(ids[0]))
        sem = asyncio.Semaphore(12)

        async def copy(thread_id: str) -> None:
            async with sem:
                await saver.acopy_thread(ids[0], thread_id)

        started = time.perf_counter()
        await asyncio.gather(*(copy(t) for t in ids[1:]))
        log(f"seeded {threads} threads in {time.perf_counter() - started:.1f} s")
        stop = asyncio.Event()
        live_turns = [0]

        async def live_graph(n: int) -> None:
            turn = 0
            while not stop.is_set():
                turn += 1
                await graph.ainvoke({"messages": [human(turn)]}, config(f"live-{n}"))
                live_turns[0] += 1

        runners = [asyncio.create_task(live_graph(n)) for n in range(live)]
        result: dict[str, Any] = {"threads": threads, "live_graphs": live}
        try:
            started = time.perf_counter()
            for i in range(0, threads, 1000):
                await saver.aprune(ids[i : i + 1000])
            result["prune_keep_latest_s"] = round(time.perf_counter() - started, 2)
            async with pool.connection() as conn:
                await conn.execute(
                    bench_sql()["lg_make_idle"].text,
                    {"agent_name": "langgraph", "session_ids": ids},
                )
            started = time.perf_counter()
            report = await PostgresHistoryRepository(pool).purge_idle_sessions(
                timedelta(days=1), agent_name="langgraph", pause=0
            )
            result["idle_purge_s"] = round(time.perf_counter() - started, 2)
            result["purged_threads"] = report.sessions
            result["purged_messages"] = report.messages
        finally:
            stop.set()
            await asyncio.gather(*runners)
        result["live_turns_meanwhile"] = live_turns[0]
        left = await saver.aget_tuple(config(ids[0]))
        result["idle_thread_left"] = left is not None
        result["live_thread_readable"] = await saver.aget_tuple(config("live-0")) is not None
        log(json.dumps(result))
        return result


def draw(rows: list[dict[str, Any]], path: Path) -> None:
    """Bytes on disk and WAL against turns, both checkpointers (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for contender in ("agentcore", "postgres"):
        mine = [r for r in rows if r["contender"] == contender]
        xs = [r["turns"] for r in mine]
        ax.plot(xs, [r["bytes"] / 1e6 for r in mine], marker="o", label=f"{LABELS[contender]} disk")
        ax.plot(
            xs,
            [r["wal_bytes"] / 1e6 for r in mine],
            marker="x",
            linestyle="--",
            label=f"{LABELS[contender]} WAL",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("turns in the thread (T)")
    ax.set_ylabel("MB written")
    ax.set_title("LangGraph checkpointer storage as the thread grows")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _own_server() -> tuple[str, Callable[[], None]]:
    from agentcore import embedded

    parent = Path(tempfile.mkdtemp(prefix="agentcore-bench-"))
    parent.chmod(0o711)
    server = embedded.start(parent / "pgdata", throwaway=True)

    def stop() -> None:
        server.stop()
        shutil.rmtree(parent, ignore_errors=True)

    return server.dsn, stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.langgraph_saver", description=__doc__)
    parser.add_argument("--dsn", help="a database to use instead of a throw-away server")
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument(
        "--marks", type=lambda s: [int(x) for x in s.split(",")], default=[10, 100, 300, 1000]
    )
    parser.add_argument("--chars", type=int, default=400, help="characters per human message")
    parser.add_argument("--retention", action="store_true")
    parser.add_argument("--threads", type=int, default=10000)
    parser.add_argument("--live", type=int, default=4, help="graphs running during retention")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--chart", type=Path)
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    dsn, stop = (args.dsn, None) if args.dsn else _own_server()
    report: dict[str, Any] = {"argv": sys.argv[1:], "load": os.getloadavg()}
    try:
        migrations.apply(dsn)
        if args.retention:
            report["retention"] = asyncio.run(retention_run(dsn, args.threads, args.live, log))
        else:
            rows = []
            for contender in ("agentcore", "postgres"):
                rows += asyncio.run(
                    storage_run(dsn, contender, args.turns, args.marks, args.chars, log)
                )
            report["storage"] = rows
            report["targets"] = targets(rows, args.marks)
        report["load_after"] = os.getloadavg()
    finally:
        if stop is not None:
            stop()
    name = "langgraph-retention.json" if args.retention else "langgraph.json"
    out = args.out or Path("bench/results") / name
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report.get("targets") or report.get("retention"), indent=2))
    if args.chart and "storage" in report:
        draw(report["storage"], args.chart)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
