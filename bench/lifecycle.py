"""Lifecycle at scale: paging 10,000,000 sessions, purging 5,000,000 messages, moving a
1,000,000-message conversation.

Run from the repository root (each part stays within about ten minutes on a
2-core machine)::

    python -m bench.lifecycle paging      # 10,000,000 sessions: ms per page
    python -m bench.lifecycle purge       # 4,000,000 messages in 100,000 sessions, half idle
    python -m bench.lifecycle transfer    # export and import 1,000,000 messages
    python -m bench.lifecycle all --quick # every part on small stores (< 2 minutes)

Without ``--dsn`` each part starts its own throw-away embedded PostgreSQL (as
the tests do) and removes it at exit; with ``--dsn`` it writes into that
(migrated, preferably empty) database. Stores are built set-based with
generate_series (bench/sql/lifecycle.sql); the build time is reported, not
measured against anything. The purge's store is laid out as live traffic
leaves it: conversations appended in turn, ten at a time, idle and active ones
of the same agent side by side on the heap's pages; 8 workers run turns on the
active ones before (a quiet baseline), during and after
``agentcore sessions purge --idle-for 30d --yes`` run in its own
process. Prints a JSON report on stdout and progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from agentcore import Message, PostgresHistoryRepository, migrations
from agentcore.paging import session_cursor
from agentcore.sql import load_queries
from agentcore.transfer import export_jsonl, import_jsonl
from bench.contenders import ASSISTANT_CONTENT, USER_CONTENT, bench_queries
from bench.turns import _own_server, machine, percentile

SQL = bench_queries()


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def execute(dsn: str, name: str, params: dict[str, Any] | None = None) -> list[Any]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(SQL[name].text, params or {})
        return cur.fetchall() if cur.description else []


def timed(dsn: str, name: str, params: dict[str, Any] | None = None) -> float:
    started = time.perf_counter()
    execute(dsn, name, params)
    return round(time.perf_counter() - started, 1)


async def open_pool(dsn: str, size: int) -> AsyncConnectionPool[Any]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, min_size=size, max_size=size, kwargs={"autocommit": True}, open=False
    )
    await pool.open(wait=True)
    return pool


def ms(values: Sequence[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(values) * 1000, 3),
        "p99_ms": round(percentile(values, 99) * 1000, 3),
        "n": len(values),
    }


# --- paging ---------------------------------------------------------------------------


async def paging(dsn: str, sessions: int, pages: int) -> dict[str, Any]:
    agents, owners = 10, 20_000
    log(f"paging: building {sessions:,} sessions of {agents} agents")
    execute(dsn, "lc_drop_session_indexes")
    build = {
        "insert_s": timed(
            dsn, "lc_build_sessions", {"sessions": sessions, "agents": agents, "owners": owners}
        ),
        "recent_index_s": timed(dsn, "lc_create_recent_index"),
        "owner_index_s": timed(dsn, "lc_create_owner_index"),
        "vacuum_analyze_s": timed(dsn, "lc_analyze"),
    }
    log(f"paging: built {build}")
    per_agent = sessions // agents
    pool = await open_pool(dsn, 1)
    repo = PostgresHistoryRepository(pool)
    result: dict[str, Any] = {"sessions": sessions, "agents": agents, "build": build}
    try:
        walks: dict[str, Any] = {}
        for label, offset in [
            ("first page", 0),
            ("middle", per_agent // 2),
            ("near the end", per_agent - 100 * pages - 1),
        ]:
            cursor = None
            if offset:
                [(when, sid)] = execute(
                    dsn, "lc_session_at", {"agent_name": "agent-3", "offset": offset}
                )
                cursor = session_cursor(when, sid)
            times = []
            for _ in range(pages):
                started = time.perf_counter()
                page = await repo.list_sessions_page("agent-3", limit=100, after=cursor)
                times.append(time.perf_counter() - started)
                assert len(page.sessions) == 100
                cursor = page.next_cursor
            walks[f"{label} (offset {offset:,})"] = ms(times)
            log(f"paging: {label}: {walks[f'{label} (offset {offset:,})']}")
        result["server execution time of one deep page (EXPLAIN ANALYZE)"] = server_time(
            dsn, "agent-3", per_agent // 2
        )
        result[f"list_sessions_page, 100 per page, agent with {per_agent:,} sessions"] = walks
        owned: dict[str, Any] = {}
        for owner in ("heavy", "user-3"):
            cursor, times, seen = None, [], 0
            for _ in range(pages):
                started = time.perf_counter()
                page = await repo.list_sessions_page(
                    "agent-7" if owner == "heavy" else "agent-3",
                    owner=owner,
                    limit=20,
                    after=cursor,
                )
                times.append(time.perf_counter() - started)
                seen += len(page.sessions)
                cursor = page.next_cursor
                if cursor is None:
                    break
            owned[owner] = ms(times) | {"sessions_listed": seen}
            log(f"paging: owner {owner}: {owned[owner]}")
        result["list_sessions_page(owner=...), 20 per page"] = owned
    finally:
        await pool.close()
    return result


def server_time(dsn: str, agent: str, offset: int) -> dict[str, Any]:
    """The server's own time for a page after a deep cursor (no client, no network)."""
    [(when, sid)] = execute(dsn, "lc_session_at", {"agent_name": agent, "offset": offset})
    params = {"agent_name": agent, "after_time": when, "after_session": sid, "limit": 101}
    query = load_queries()["list_sessions_after"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        times = []
        for _ in range(20):
            cur = conn.execute(("EXPLAIN (ANALYZE, FORMAT JSON) " + query.text).encode(), params)
            row = cur.fetchone()
            assert row is not None
            times.append(row[0][0]["Execution Time"])
            nodes = json.dumps(row[0][0]["Plan"])
    return {
        "median_ms": round(statistics.median(times), 3),
        "uses_index": "ix_conversation_sessions_recent" in nodes,
        "full_sort": '"Node Type": "Sort"' in nodes,
    }


# --- purge ----------------------------------------------------------------------------


class Turns:
    """C workers doing turns (load the last 20, append 2) on random active sessions.

    Active sessions are the odd-numbered ones of agent "bench" (lc_build_interleaved):
    they share heap pages with the idle ones a purge deletes.
    """

    def __init__(self, repo: PostgresHistoryRepository, sessions: int, concurrency: int) -> None:
        self._repo = repo
        self._active = sessions // 2
        self._concurrency = concurrency
        self.latencies: list[float] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = 0.0
        self.seconds = 0.0

    def start(self) -> None:
        self.latencies = []
        self._stop.clear()
        self._started = time.perf_counter()
        self._tasks = [asyncio.create_task(self._worker(i)) for i in range(self._concurrency)]

    async def stop(self) -> list[float]:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        self.seconds = time.perf_counter() - self._started
        return self.latencies

    def phase(self) -> dict[str, float]:
        """The last phase's latencies and rate."""
        return ms(self.latencies) | {"turns_per_s": round(len(self.latencies) / self.seconds)}

    async def _worker(self, seed: int) -> None:
        rng = random.Random(seed)
        turn = [
            Message(role="user", content=USER_CONTENT),
            Message(role="assistant", content=ASSISTANT_CONTENT),
        ]
        while not self._stop.is_set():
            session = f"session-{2 * rng.randrange(self._active) + 1}"
            started = time.perf_counter()
            await self._repo.load_history("bench", session, limit=20)
            await self._repo.append_messages("bench", session, turn)
            self.latencies.append(time.perf_counter() - started)


def _purge_child(dsn: str, options: str) -> dict[str, Any]:
    """Run ``agentcore sessions purge --idle-for 30d --yes [options]`` in this process.

    Its own process (as an operator runs it), so that its peak RSS is its own.
    """
    from agentcore.cli.app import main as cli

    argv = ["sessions", "purge", "--idle-for", "30d", "--yes", "--dsn", dsn, *options.split()]
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        code = cli(argv)
    return {"exit": code, "seconds": time.perf_counter() - started, "peak_rss_mib": _peak_rss_mib()}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def purge(
    dsn: str, sessions: int, messages: int, phase_s: float, concurrency: int, options: str
) -> dict[str, Any]:
    content = {"user_content": USER_CONTENT, "assistant_content": ASSISTANT_CONTENT}
    log(f"purge: building {sessions:,} sessions x {messages} messages, interleaved")
    build = {
        "insert_s": timed(
            dsn,
            "lc_build_interleaved",
            {"agent_name": "bench", "sessions": sessions, "messages": messages, "together": 10}
            | content,
        ),
        "vacuum_analyze_s": timed(dsn, "lc_analyze"),
    }
    [(stored_sessions, stored_messages)] = execute(dsn, "lc_counts")
    [(per_page,)] = execute(dsn, "lc_conversations_per_page", {"pages": 2000})
    log(f"purge: built {stored_sessions:,} sessions, {stored_messages:,} messages: {build}")
    pool = await open_pool(dsn, concurrency + 1)
    repo = PostgresHistoryRepository(pool)
    turns = Turns(repo, sessions, concurrency)
    command = f"agentcore sessions purge --idle-for 30d --yes {options}".strip()
    result: dict[str, Any] = {
        "stored_sessions": stored_sessions,
        "stored_messages": stored_messages,
        "conversations_per_heap_page": round(per_page, 1),
        "concurrent_turn_workers": concurrency,
        "purge_command": command,
        "build_s": build,
    }
    try:
        execute(dsn, "lc_checkpoint")
        result["load_before_baseline"] = _load()
        [(start,)] = execute(dsn, "lc_wal_lsn")
        turns.start()
        await asyncio.sleep(phase_s)
        await turns.stop()
        [(end,)] = execute(dsn, "lc_wal_lsn")
        [(turn_wal,)] = execute(dsn, "lc_wal_bytes", {"start": start, "end": end})
        wal_per_turn = turn_wal / max(1, len(turns.latencies))
        baseline = turns.phase()
        log(f"purge: baseline {baseline}, {wal_per_turn:.0f} WAL bytes per turn")
        result["load_before_purge"] = _load()
        execute(dsn, "lc_checkpoint")
        [(start,)] = execute(dsn, "lc_wal_lsn")
        turns.start()
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.lifecycle",
            "_purge",
            "--dsn",
            dsn,
            "--file",
            options,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await child.communicate()
        [(end,)] = execute(dsn, "lc_wal_lsn")
        await turns.stop()
        during = turns.phase()
        result["load_after_purge"] = _load()
        if child.returncode != 0:
            raise RuntimeError(f"purge failed: {err.decode()}")
        done = json.loads(out)
        said = err.decode().strip().splitlines()[-1]
        deleted = int(said.split("(")[1].split()[0].replace(",", ""))
        [(wal,)] = execute(dsn, "lc_wal_bytes", {"start": start, "end": end})
        purge_wal = wal - wal_per_turn * len(turns.latencies)
        turns.start()
        await asyncio.sleep(phase_s)
        await turns.stop()
        after = turns.phase()
        [(left_sessions, left_messages)] = execute(dsn, "lc_counts")
        turned = len(turns.latencies) + during["n"] + baseline["n"]
        kept = (sessions - sessions // 2) * messages + 2 * int(turned)
        result |= {
            "purge_said": said,
            "deleted_messages": deleted,
            "seconds": round(done["seconds"], 1),
            "messages_per_s": round(deleted / done["seconds"]),
            "wal_bytes_per_deleted_message": round(purge_wal / max(1, deleted), 1),
            "wal_bytes_per_turn": round(wal_per_turn, 1),
            "purge_peak_rss_mib": done["peak_rss_mib"],
            "turns_before": baseline,
            "turns_during": during,
            "turns_after": after,
            "p99_ratio": round(during["p99_ms"] / baseline["p99_ms"], 2),
            "turns_per_s_ratio": round(during["turns_per_s"] / baseline["turns_per_s"], 2),
            "left_sessions": left_sessions,
            "left_messages": left_messages,
            "messages_lost": kept - left_messages,
        }
        log(f"purge: {json.dumps(result)}")
    finally:
        await pool.close()
    return result


# --- transfer -------------------------------------------------------------------------


async def _export(dsn: str, out: str) -> dict[str, Any]:
    pool = await open_pool(dsn, 1)
    try:
        repo = PostgresHistoryRepository(pool)
        started = time.perf_counter()
        with open(out, "w", encoding="utf-8") as file:
            report = await export_jsonl(repo, file, agent_name="bench", session_id="long")
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    return {
        "messages": report.messages,
        "seconds": round(elapsed, 1),
        "messages_per_s": round(report.messages / elapsed),
        "peak_rss_mib": _peak_rss_mib(),
    }


async def _import(dsn: str, path: str) -> dict[str, Any]:
    pool = await open_pool(dsn, 1)
    try:
        repo = PostgresHistoryRepository(pool)
        await repo.clear_session("bench", "long")
        started = time.perf_counter()
        with open(path, encoding="utf-8") as file:
            report = await import_jsonl(repo, file)
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    return {
        "messages": report.messages,
        "seconds": round(elapsed, 1),
        "messages_per_s": round(report.messages / elapsed),
        "peak_rss_mib": _peak_rss_mib(),
    }


def _peak_rss_mib() -> float:
    # VmHWM is this process's own peak. ru_maxrss survives exec on Linux: a
    # child would report its parent's peak when that was higher.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _child(step: str, dsn: str, path: str) -> dict[str, Any]:
    # Each direction in its own process, so that its peak RSS is its own.
    done = subprocess.run(
        [sys.executable, "-m", "bench.lifecycle", step, "--dsn", dsn, "--file", path],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


async def transfer(dsn: str, messages_list: Sequence[int]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "baseline_peak_rss_mib (python + agentcore imported)": _child("_rss", dsn, "")[
            "peak_rss_mib"
        ]
    }
    for messages in messages_list:
        execute(
            dsn,
            "lc_build_long_conversation",
            {
                "agent_name": "bench",
                "session_id": "long",
                "messages": messages,
                "content": USER_CONTENT,
            },
        )
        execute(dsn, "lc_analyze")
        with tempfile.TemporaryDirectory(prefix="agentcore-bench-") as folder:
            path = str(Path(folder) / "long.jsonl")
            exported = _child("_export", dsn, path) | {
                "file_mib": round(os.path.getsize(path) / 2**20, 1)
            }
            log(f"transfer: export {messages:,}: {exported}")
            imported = _child("_import", dsn, path)
            log(f"transfer: import {messages:,}: {imported}")
            again = str(Path(folder) / "again.jsonl")
            _child("_export", dsn, again)
            identical = _digest(path) == _digest(again)
        result[f"{messages:,} messages in one conversation"] = {
            "export": exported,
            "import": imported,
            "re-export identical": identical,
        }
        pool = await open_pool(dsn, 1)
        try:
            await PostgresHistoryRepository(pool).clear_session("bench", "long")
        finally:
            await pool.close()
    return result


# --- main -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.lifecycle",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "part",
        choices=["paging", "purge", "transfer", "all", "_export", "_import", "_rss", "_purge"],
    )
    parser.add_argument("--dsn", help="use this migrated database instead of a throw-away server")
    parser.add_argument("--quick", action="store_true", help="small stores: a smoke run")
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument(
        "--messages",
        type=int,
        action="append",
        help="transfer: conversation length (repeatable; default 100,000 and 1,000,000)",
    )
    parser.add_argument(
        "--sessions",
        type=int,
        help="paging: sessions to build (default 10,000,000); purge: conversations of 40 "
        "messages, half of them idle (default 100,000: 4,000,000 messages)",
    )
    parser.add_argument(
        "--purge-options",
        default="",
        metavar="OPTIONS",
        help="purge: more options of agentcore sessions purge, e.g. '--max-impact 0.3'",
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, help="purge: concurrent turn workers (default 8)"
    )
    args = parser.parse_args(argv)
    if args.part in ("_export", "_import"):
        step: Callable[[str, str], Any] = _export if args.part == "_export" else _import
        print(json.dumps(asyncio.run(step(args.dsn, args.file))))
        return 0
    if args.part == "_purge":
        print(json.dumps(_purge_child(args.dsn, args.file)))
        return 0
    if args.part == "_rss":
        import agentcore.transfer  # noqa: F401

        print(json.dumps({"peak_rss_mib": _peak_rss_mib()}))
        return 0
    report: dict[str, Any] = {
        "command": " ".join(["python", "-m", "bench.lifecycle", *sys.argv[1:]]),
        "machine": machine(),
    }
    parts = ["paging", "purge", "transfer"] if args.part == "all" else [args.part]
    for part in parts:
        dsn, stop = (args.dsn, None) if args.dsn else _own_server()
        try:
            if not args.dsn:
                migrations.apply(dsn)
            started = time.perf_counter()
            if part == "paging":
                sessions = args.sessions or (200_000 if args.quick else 10_000_000)
                report[part] = asyncio.run(paging(dsn, sessions, 20 if args.quick else 200))
            elif part == "purge":
                report[part] = asyncio.run(
                    purge(
                        dsn,
                        args.sessions or (2_000 if args.quick else 100_000),
                        40,
                        5 if args.quick else 20,
                        args.concurrency,
                        args.purge_options,
                    )
                )
            else:
                sizes = args.messages or ([10_000] if args.quick else [100_000, 1_000_000])
                report[part] = asyncio.run(transfer(dsn, sizes))
            report[part]["elapsed_s"] = round(time.perf_counter() - started, 1)
        finally:
            if stop is not None:
                stop()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
