"""The "turns" benchmark: agentcore against the seed's design and the raw-SQL limit.

Run from the repository root::

    python -m bench.turns --quick                 # < 2 minutes
    python -m bench.turns --out bench/results/full.json --chart docs/performance-growth.png

Without ``--dsn`` it starts its own throw-away embedded PostgreSQL (as the
tests do), creates a database, applies agentcore's migrations, and removes
everything at exit. With ``--dsn`` it applies the migrations to that database
and writes benchmark rows into it (under agent names starting with the
contender's key).

Every contender runs against the same server and database, in the same run,
in an order rotated on every repeat; the figures are medians over repeats.
Prints a markdown report and writes every measurement as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from agentcore import InMemoryHistoryRepository, Message, PostgresHistoryRepository
from agentcore.sql import Queries
from bench import wire
from bench.contenders import (
    ASSISTANT_CONTENT,
    USER_CONTENT,
    AgentTurn,
    NarrowTurn,
    ReferenceTurn,
    RepositoryTurn,
    RewriteTurn,
    Turn,
    bench_queries,
)
from bench.pgbench import pgbench_binary, pgbench_script, run_pgbench

CONTENDERS: dict[str, str] = {
    "repository": "PostgresHistoryRepository (load_history + append_messages)",
    "repository-default": "the same on a default pool (not autocommit)",
    "repository-ids": "the same, each message with an id (deduplicated append)",
    "agent": "Agent.execute_agent + EchoModel (same repository)",
    "agent-default": "the same on a default pool (not autocommit)",
    "rewrite": "seed design: delete + re-insert window (raw psycopg)",
    "reference": "hand-written psycopg, 2 statements, bare pool",
    "narrow": "narrow reference: own table, ORDER BY id, 2-row INSERT",
    "pgbench": "pgbench, same 2 statements (server limit)",
    "memory": "InMemoryHistoryRepository (no database)",
}
DB_PYTHON = (
    "repository", "repository-default", "agent", "agent-default", "rewrite", "reference", "narrow",
)  # fmt: skip
AGENTCORE = ("repository", "repository-default", "agent", "agent-default")
DEFAULT_POOL = "-default"  # a contender whose key ends so runs on a pool left in default mode
GROWTH_ONLY = ("repository-ids",)  # measured on the growth curve only
# psycopg prepares a statement on its 5th execution on a connection; the
# server then plans it afresh 5 times before it may keep one generic plan:
# a pool's connection is steady after 10 turns (bench/server_count.py).
WARM_UP_TURNS = 12
SETTINGS = (
    "server_version", "fsync", "synchronous_commit", "wal_level", "full_page_writes",
    "shared_buffers", "work_mem", "max_connections", "jit", "max_wal_size",
    "checkpoint_timeout", "autovacuum",
)  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """How much to run."""

    concurrency: tuple[int, ...] = (1, 16, 64)
    histories: tuple[int, ...] = (0, 1000)
    repeats: int = 5
    turns_per_run: int = 2000
    growth_histories: tuple[int, ...] = (10, 100, 1000, 10000)
    growth_turns: int = 500
    save_full_size: int = 10_000

    def turns_per_session(self, concurrency: int, total: int | None = None) -> int:
        return max(4, (total or self.turns_per_run) // concurrency)


QUICK = Plan(concurrency=(16, 64), repeats=3, turns_per_run=300, growth_turns=40)
FULL = Plan(concurrency=(16, 64), repeats=5, turns_per_run=1500, growth_turns=300)


@dataclass(frozen=True)
class Run:
    """One timed run of one contender."""

    contender: str
    concurrency: int
    history: int
    repeat: int
    turns: int
    seconds: float
    turns_per_s: float
    p50_ms: float
    p99_ms: float
    client_cpu_us_per_turn: float
    server_cpu_s: float | None = None  # every server process's CPU during the run


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


class Bench:
    """Runs the contenders against one database."""

    def __init__(self, dsn: str, plan: Plan, contenders: Sequence[str]) -> None:
        self.dsn = dsn
        self.plan = plan
        self.contenders = list(contenders)
        self.sql: Queries = bench_queries()
        self.script = pgbench_script(self.sql)
        self._admin: psycopg.AsyncConnection[Any] | None = None

    async def __aenter__(self) -> Bench:
        self._admin = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        if "narrow" in self.contenders:
            await self.admin.execute(self.sql["narrow_create_table"].text)
            await self.admin.execute(self.sql["narrow_create_index"].text)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._admin is not None:
            await self._admin.close()

    @property
    def admin(self) -> psycopg.AsyncConnection[Any]:
        assert self._admin is not None
        return self._admin

    async def seed(self, agent: str, sessions: int, history: int, with_ids: bool = False) -> None:
        """Give sessions '0'..sessions-1 of ``agent`` ``history`` messages each (untimed)."""
        params = {
            "agent_name": agent,
            "sessions": sessions,
            "history": history,
            "user_content": USER_CONTENT,
            "assistant_content": ASSISTANT_CONTENT,
        }
        if agent.startswith(("turns-narrow", "growth-narrow", "wire-narrow")):
            if history:
                await self.admin.execute(self.sql["narrow_seed"].text, params)
            await self.admin.execute(self.sql["narrow_analyze"].text)
            return
        if history:
            seed = self.sql["seed_history_with_ids" if with_ids else "seed_history"]
            await self.admin.execute(seed.text, params)
            await self.admin.execute(self.sql["seed_sessions"].text, params)
        await self.admin.execute(self.sql["analyze_history"].text)

    def make_turn(
        self,
        key: str,
        pool: AsyncConnectionPool[Any] | None,
        agent: str,
        memory: InMemoryHistoryRepository | None = None,
    ) -> Turn:
        if key == "memory":
            assert memory is not None
            return RepositoryTurn(memory, agent)
        assert pool is not None
        key = key.removesuffix(DEFAULT_POOL)
        if key == "narrow":
            return NarrowTurn(pool, agent, self.sql)
        if key == "repository":
            return RepositoryTurn(PostgresHistoryRepository(pool), agent)
        if key == "repository-ids":
            return RepositoryTurn(PostgresHistoryRepository(pool), agent, with_ids=True)
        if key == "agent":
            return AgentTurn(PostgresHistoryRepository(pool), agent)
        if key == "reference":
            return ReferenceTurn(pool, agent, self.sql)
        if key == "rewrite":
            return RewriteTurn(pool, agent, self.sql)
        raise ValueError(f"unknown contender {key!r}")

    async def run(
        self,
        key: str,
        concurrency: int,
        history: int,
        repeat: int,
        turns_per_session: int,
        phase: str = "turns",
    ) -> Run:
        agent = f"{phase}-{key}-c{concurrency}-h{history}-r{repeat}-{os.getpid()}"
        if key == "pgbench":
            return await self._run_pgbench(agent, concurrency, history, repeat, turns_per_session)
        pool: AsyncConnectionPool[Any] | None = None
        memory: InMemoryHistoryRepository | None = None
        if key == "memory":
            memory = InMemoryHistoryRepository()
            seeded = seed_messages(history)
            for session in range(concurrency):
                await memory.save_full_history(agent, str(session), seeded)
        else:
            await self.seed(agent, concurrency, history, with_ids=key in GROWTH_ONLY)
            pool = _pool(self.dsn, key, concurrency)
            await pool.open(wait=True, timeout=120)
        server_cpu: float | None = None
        try:
            warm = self.make_turn(key, pool, agent + "-warm", memory)
            await _sessions(warm, concurrency, WARM_UP_TURNS, None)
            turn = self.make_turn(key, pool, agent, memory)
            latencies: list[float] = []
            pids = await self.server_pids() if pool is not None else []
            server = server_cpu_seconds(pids)
            cpu = time.process_time()
            started = time.perf_counter()
            await _sessions(turn, concurrency, turns_per_session, latencies)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu
            if pids:
                server_cpu = server_cpu_seconds(pids) - server
        finally:
            if pool is not None:
                await pool.close()
        return _run(
            key,
            concurrency,
            history,
            repeat,
            seconds,
            seconds and len(latencies) / seconds,
            [x * 1000 for x in latencies],
            cpu,
            server_cpu,
        )

    async def server_pids(self) -> list[int]:
        """Every process of the server (backends, WAL writer, checkpointer...), if local."""
        cur = await self.admin.execute(self.sql["server_pids"].text)
        pids = [int(row[0]) for row in await cur.fetchall()]
        return [pid for pid in pids if Path(f"/proc/{pid}/stat").exists()]

    async def _run_pgbench(
        self, agent: str, concurrency: int, history: int, repeat: int, turns_per_session: int
    ) -> Run:
        await self.seed(agent, concurrency, history)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = await asyncio.to_thread(
            run_pgbench,
            self.dsn,
            self.script,
            agent=agent,
            clients=concurrency,
            turns_per_client=turns_per_session,
            variables={
                "limit": str(20),
                "user_content": USER_CONTENT,
                "assistant_content": ASSISTANT_CONTENT,
            },
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        return _run(
            "pgbench",
            concurrency,
            history,
            repeat,
            done.turns / done.turns_per_s,
            done.turns_per_s,
            done.latencies_ms,
            cpu,
        )

    async def matrix(self, log: Callable[[str], None]) -> list[Run]:
        """Every contender at every (C, H), repeats alternating the order."""
        runs: list[Run] = []
        for concurrency in self.plan.concurrency:
            for history in self.plan.histories:
                for repeat in range(self.plan.repeats):
                    matrix_keys = [k for k in self.contenders if k not in GROWTH_ONLY]
                    for key in _rotated(matrix_keys, repeat):
                        result = await self.run(
                            key,
                            concurrency,
                            history,
                            repeat,
                            self.plan.turns_per_session(concurrency),
                        )
                        log(
                            f"C={concurrency:<3} H={history:<5} #{repeat} {key:<10} "
                            f"{result.turns_per_s:9.0f} turns/s  p50 {result.p50_ms:6.2f} ms"
                        )
                        runs.append(result)
        return runs

    async def growth(self, log: Callable[[str], None]) -> list[Run]:
        """C=1, per-turn latency as the stored history grows."""
        runs: list[Run] = []
        for history in self.plan.growth_histories:
            for repeat in range(self.plan.repeats):
                for key in _rotated(self.contenders, repeat):
                    result = await self.run(
                        key, 1, history, repeat, self.plan.growth_turns, phase="growth"
                    )
                    log(f"growth H={history:<5} #{repeat} {key:<10} p50 {result.p50_ms:6.3f} ms")
                    runs.append(result)
        return runs

    async def save_full(self, log: Callable[[str], None]) -> list[dict[str, Any]]:
        """``save_full_history`` of N messages against a raw COPY of the same rows."""
        size = self.plan.save_full_size
        messages = seed_messages(size)
        now = datetime.now(UTC)
        results: list[dict[str, Any]] = []
        async with AsyncConnectionPool(
            self.dsn, min_size=1, max_size=1, kwargs={"autocommit": True}
        ) as pool:
            repo = PostgresHistoryRepository(pool)
            for repeat in range(self.plan.repeats):
                for key in _rotated(["save_full_history", "raw_copy"], repeat):
                    agent, session = f"save-{os.getpid()}", f"{key}-{repeat}"
                    if key == "raw_copy":
                        rows = [
                            (
                                agent,
                                session,
                                seq,
                                m.role,
                                m.content,
                                None,
                                None,
                                None,
                                Jsonb(m.metadata),
                                None,
                                now,
                            )
                            for seq, m in enumerate(messages)
                        ]
                        started = time.perf_counter()
                        async with pool.connection() as conn, conn.transaction():
                            async with conn.cursor().copy(self.sql["reference_copy"].text) as cp:
                                for row in rows:
                                    await cp.write_row(row)
                    else:
                        started = time.perf_counter()
                        await repo.save_full_history(agent, session, messages)
                    seconds = time.perf_counter() - started
                    log(f"save {size} #{repeat} {key:<18} {seconds * 1000:8.1f} ms")
                    results.append(
                        {"contender": key, "repeat": repeat, "messages": size, "seconds": seconds}
                    )
        return results

    async def access_path(self) -> dict[str, Any]:
        """Per contender: statements, round trips, WAL bytes and HOT updates per turn.

        On one pooled connection: a steady-state turn on the wire; then
        ``sessions`` conversations of 1000 messages each take one turn right
        after a CHECKPOINT (every page they touch writes a full-page image),
        then ``rounds`` more turns each (WAL between checkpoints, and the
        server's and the client's CPU time per turn: one connection's backend
        and the server's background processes, whose /proc counters tick in
        10 ms, so over many sequential turns rather than in the short
        concurrent runs). The conversation rows' updates and how many of them
        were HOT come from pg_stat_user_tables around the whole measurement.
        """
        found: dict[str, Any] = {}
        sessions, rounds = 50, 20
        for key in DB_PYTHON:
            if key not in self.contenders:
                continue
            agent = f"wire-{key}-{os.getpid()}"
            await self.seed(agent, sessions, 1000)
            updates = await self._session_updates()
            async with _pool(self.dsn, key, 1) as pool:
                turn = self.make_turn(key, pool, agent)
                for n in range(WARM_UP_TURNS):
                    await turn("0", n)
                async with pool.connection() as conn:
                    pgconn = conn.pgconn
                with wire.traced(pgconn) as count:
                    await turn("0", 0)
                await self.admin.execute(self.sql["checkpoint"].text)
                start = await self._wal_position()
                for s in range(sessions):
                    await turn(str(s), 0)
                after_checkpoint = await self._wal_bytes_since(start) / sessions
                pids = await self.server_pids()
                start = await self._wal_position()
                server = server_cpu_seconds(pids)
                client = time.process_time()
                for n in range(rounds):
                    for s in range(sessions):
                        await turn(str(s), n + 1)
                client = time.process_time() - client
                server = server_cpu_seconds(pids) - server
                steady = await self._wal_bytes_since(start) / (sessions * rounds)
            await asyncio.sleep(1.1)  # backends report their statistics at most once a second
            upd, hot = (a - b for a, b in zip(await self._session_updates(), updates, strict=True))
            found[key] = wire.describe(count) | {
                "wal_bytes_per_turn": steady,
                "wal_bytes_per_turn_after_checkpoint": after_checkpoint,
                "server_cpu_us_per_turn": server / (sessions * rounds) * 1e6,
                "client_cpu_us_per_turn": client / (sessions * rounds) * 1e6,
                "session_updates": upd,
                "hot_updates": hot,
            }
        if "pgbench" in self.contenders:
            found["pgbench"] = {
                "statements": 2,
                "round_trips": 2,
                "note": "by construction: 2 prepared statements, a Sync each",
            }
        return found

    async def _wal_position(self) -> str:
        row = await (await self.admin.execute(self.sql["wal_position"].text)).fetchone()
        assert row is not None
        return str(row[0])

    async def _wal_bytes_since(self, start: str) -> int:
        cur = await self.admin.execute(self.sql["wal_bytes_since"].text, {"start": start})
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def _session_updates(self) -> tuple[int, int]:
        await self.admin.execute(self.sql["clear_stats_snapshot"].text)
        row = await (await self.admin.execute(self.sql["session_update_counts"].text)).fetchone()
        return (0, 0) if row is None else (int(row[0]), int(row[1]))


def _pool(dsn: str, key: str, size: int) -> AsyncConnectionPool[Any]:
    """A pool of ``size`` connections: autocommit, unless ``key`` asks for a default pool."""
    kwargs: dict[str, Any] = {} if key.endswith(DEFAULT_POOL) else {"autocommit": True}
    return AsyncConnectionPool(dsn, min_size=size, max_size=size, kwargs=kwargs, open=False)


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def server_cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of these local processes so far (/proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended: its time is lost, as on any run
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / _TICKS


async def _sessions(turn: Turn, sessions: int, turns: int, latencies: list[float] | None) -> None:
    async def one(session: str) -> None:
        for n in range(turns):
            started = time.perf_counter()
            await turn(session, n)
            if latencies is not None:
                latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(one(str(s)) for s in range(sessions)))


def _run(
    key: str,
    concurrency: int,
    history: int,
    repeat: int,
    seconds: float,
    turns_per_s: float,
    latencies_ms: list[float],
    cpu_s: float,
    server_cpu_s: float | None = None,
) -> Run:
    return Run(
        key,
        concurrency,
        history,
        repeat,
        len(latencies_ms),
        seconds,
        turns_per_s,
        percentile(latencies_ms, 50),
        percentile(latencies_ms, 99),
        cpu_s / len(latencies_ms) * 1e6,
        server_cpu_s,
    )


def _rotated(items: Sequence[str], by: int) -> list[str]:
    by %= len(items)
    return [*items[by:], *items[:by]]


def seed_messages(count: int) -> list[Message]:
    """``count`` alternating user/assistant messages, the sizes of a turn's."""
    return [
        Message(role="user", content=USER_CONTENT)
        if i % 2 == 0
        else Message(role="assistant", content=ASSISTANT_CONTENT)
        for i in range(count)
    ]


# --- summary -----------------------------------------------------------------------------


def summarize(runs: list[Run]) -> dict[tuple[str, int, int], dict[str, Any]]:
    """Median turns/s, p50 and p99 over repeats, per (contender, C, H)."""
    groups: dict[tuple[str, int, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.contender, run.concurrency, run.history), []).append(run)
    return {
        key: {
            "turns_per_s": statistics.median(r.turns_per_s for r in group),
            "p50_ms": statistics.median(r.p50_ms for r in group),
            "p99_ms": statistics.median(r.p99_ms for r in group),
            "client_cpu_us_per_turn": statistics.median(r.client_cpu_us_per_turn for r in group),
            # Summed over repeats, not a median: /proc counts in 10 ms ticks.
            "server_cpu_us_per_turn": (
                sum(r.server_cpu_s or 0.0 for r in group) / sum(r.turns for r in group) * 1e6
                if all(r.server_cpu_s is not None for r in group)
                else None
            ),
            "repeats": len(group),
        }
        for key, group in groups.items()
    }


def paired_ratio(
    runs: list[dict[str, Any]], a: str, b: str, concurrency: int, history: int
) -> float | None:
    """The median over repeats of a's turns/s over b's, each taken within one repeat."""
    by_repeat: dict[int, dict[str, float]] = {}
    for run in runs:
        if (run["concurrency"], run["history"]) == (concurrency, history):
            by_repeat.setdefault(run["repeat"], {})[run["contender"]] = run["turns_per_s"]
    ratios = [r[a] / r[b] for r in by_repeat.values() if a in r and b in r and r[b]]
    return statistics.median(ratios) if ratios else None


def targets(  # noqa: C901 - one short block per target, kept together
    matrix: dict[tuple[str, int, int], dict[str, float]],
    growth: dict[tuple[str, int, int], dict[str, float]],
    save_full: list[dict[str, Any]],
    plan: Plan,
    runs: dict[str, Any],
) -> list[dict[str, Any]]:
    """The issue's targets from this run: ratios of medians, and paired ratios.

    ``paired`` is the same ratio taken within each repeat, then the median: on a
    machine whose load changes between repeats it is the steadier of the two.
    """
    found: list[dict[str, Any]] = []

    def ratio(
        a: tuple[str, int, int], b: tuple[str, int, int], table: Any, field: str
    ) -> float | None:
        if a in table and b in table and table[b][field]:
            return float(table[a][field] / table[b][field])
        return None

    def add(
        name: str,
        value: float | None,
        limit: float | None,
        higher_is_better: bool = True,
        paired: float | None = None,
    ) -> None:
        def met(v: float | None) -> bool | None:
            if v is None or limit is None:
                return None
            return v >= limit if higher_is_better else v <= limit

        found.append(
            {
                "target": name,
                "ratio": value,
                "paired": paired,
                "limit": "-" if limit is None else f"{'>=' if higher_is_better else '<='} {limit}",
                "met": met(value),
                "met_paired": met(paired),
            }
        )

    def vs_reference(key: str, c: int, h: int, limit: float | None, label: str) -> None:
        add(
            f"{label} / reference turns/s, C={c}, H={h}",
            ratio((key, c, h), ("reference", c, h), matrix, "turns_per_s"),
            limit,
            paired=paired_ratio(runs["matrix"], key, "reference", c, h),
        )

    def vs(a: str, b: str, c: int, h: int, limit: float | None) -> None:
        add(
            f"{a} / {b} turns/s, C={c}, H={h}",
            ratio((a, c, h), (b, c, h), matrix, "turns_per_s"),
            limit,
            paired=paired_ratio(runs["matrix"], a, b, c, h),
        )

    cells = [(c, h) for c in plan.concurrency for h in plan.histories]
    for key in ("repository", "agent"):
        for c, h in cells:
            vs(f"{key}{DEFAULT_POOL}", key, c, h, 0.95)
    for key, limit in (("repository", 0.85), ("agent", 0.8), ("agent-default", 0.8)):
        for c, h in cells:
            vs(key, "narrow", c, h, limit)
    access = runs.get("access_path", {})
    if "narrow" in access:
        for key in AGENTCORE:
            if key not in access:
                continue
            for field, when in (
                ("server_cpu_us_per_turn", "server CPU, C=1, H=1000"),
                ("wal_bytes_per_turn", "WAL between checkpoints"),
                ("wal_bytes_per_turn_after_checkpoint", "WAL after a checkpoint"),
            ):
                add(
                    f"{key} per turn / narrow's: {when}",
                    access[key][field] / access["narrow"][field],
                    1.2,
                    False,
                )
            if access[key].get("session_updates"):
                add(
                    f"{key}: HOT share of conversation-row updates",
                    access[key]["hot_updates"] / access[key]["session_updates"],
                    0.95,
                )
    for c in (16, 64):
        vs_reference("repository", c, 1000, 0.9, "repository")
    for h in plan.histories:
        vs_reference("agent", 16, h, 0.8, "execute_agent")
    low, high = min(plan.growth_histories), max(plan.growth_histories)
    add(
        f"repository p50 latency, H={high} / H={low} (C=1)",
        ratio(("repository", 1, high), ("repository", 1, low), growth, "p50_ms"),
        1.25,
        False,
    )
    lib = [r["seconds"] for r in save_full if r["contender"] == "save_full_history"]
    raw = [r["seconds"] for r in save_full if r["contender"] == "raw_copy"]
    add(
        f"save_full_history({plan.save_full_size}) / raw COPY time",
        statistics.median(lib) / statistics.median(raw) if lib and raw else None,
        1.5,
        False,
    )
    for c in plan.concurrency:  # no target: the rest of the grid, for context
        for h in plan.histories:
            if (c, h) not in ((16, 1000), (64, 1000)):
                vs_reference("repository", c, h, None, "(no target) repository")
    return found


def markdown(report: dict[str, Any]) -> str:
    """The report as markdown tables."""
    lines: list[str] = []
    _turn_tables(report, lines)
    _growth_table(report, lines)
    _save_and_wire_tables(report, lines)
    _target_tables(report, lines)
    return "\n".join(lines) + "\n"


def _turn_tables(report: dict[str, Any], lines: list[str]) -> None:
    matrix = {tuple(row["key"]): row for row in report["matrix"]}
    plan = report["plan"]
    lines.append(f"### Turns: throughput and latency (medians of {plan['repeats']} repeats)\n")
    for c in plan["concurrency"]:
        for h in plan["histories"]:
            ref = matrix.get(("reference", c, h))
            narrow = matrix.get(("narrow", c, h))
            lines.append(f"**C={c}, H={h}**\n")
            lines.append(
                "| contender | turns/s | p50 ms | p99 ms | client CPU µs/turn "
                "| server CPU µs/turn | x reference | x narrow |"
            )
            lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
            for key in report["contenders"]:
                row = matrix.get((key, c, h))
                if row is None:
                    continue
                vs = f"{row['turns_per_s'] / ref['turns_per_s']:.2f}" if ref else "-"
                vs_narrow = f"{row['turns_per_s'] / narrow['turns_per_s']:.2f}" if narrow else "-"
                server = row.get("server_cpu_us_per_turn")
                lines.append(
                    f"| {CONTENDERS[key]} | {row['turns_per_s']:.0f} | "
                    f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | "
                    f"{row['client_cpu_us_per_turn']:.0f} | "
                    f"{'-' if server is None else f'{server:.0f}'} | {vs} | {vs_narrow} |"
                )
            lines.append("")


def _growth_table(report: dict[str, Any], lines: list[str]) -> None:
    plan = report["plan"]
    growth = {tuple(row["key"]): row for row in report["growth"]}
    lines.append("### Growth: C=1, median turn latency (ms) by stored history H\n")
    hs = plan["growth_histories"]
    lines.append(
        "| contender | " + " | ".join(f"H={h}" for h in hs) + f" | H={hs[-1]} / H={hs[0]} |"
    )
    lines.append("|---|" + "---:|" * (len(hs) + 1))
    for key in report["contenders"]:
        if not all((key, 1, h) in growth for h in hs):
            continue
        cells = [growth[(key, 1, h)] for h in hs]
        ratio = cells[-1]["p50_ms"] / cells[0]["p50_ms"]
        lines.append(
            f"| {CONTENDERS[key]} | "
            + " | ".join(f"{c['p50_ms']:.3f}" for c in cells)
            + f" | {ratio:.2f}x |"
        )
    lines.append("")


def _save_and_wire_tables(report: dict[str, Any], lines: list[str]) -> None:
    plan = report["plan"]
    save = report["save_full"]
    lines.append(f"### save_full_history vs raw COPY ({plan['save_full_size']} messages)\n")
    lines.append("| contender | median ms | runs (ms) |")
    lines.append("|---|---:|---|")
    for key in ("save_full_history", "raw_copy"):
        times = [r["seconds"] * 1000 for r in save if r["contender"] == key]
        if times:
            lines.append(
                f"| {key} | {statistics.median(times):.1f} | "
                + ", ".join(f"{t:.1f}" for t in times)
                + " |"
            )
    lines.append("")
    lines.append(
        "### Per turn: statements and round trips (steady state, from the wire), WAL, HOT, CPU\n"
    )
    lines.append(
        "| contender | statements | round trips | WAL bytes/turn | WAL bytes/turn "
        "after CHECKPOINT | conversation-row updates HOT | client CPU µs/turn (C=1) "
        "| server CPU µs/turn (C=1) |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for key, row in report["access_path"].items():
        wal = row.get("wal_bytes_per_turn")
        fpi = row.get("wal_bytes_per_turn_after_checkpoint")
        upd = row.get("session_updates")
        hot = f"{row['hot_updates']} / {upd}" if upd else "-"
        lines.append(
            f"| {CONTENDERS[key]} | {row['statements']} | {row['round_trips']} | "
            f"{'-' if wal is None else f'{wal:.0f}'} | {'-' if fpi is None else f'{fpi:.0f}'} | "
            f"{hot} | {_us(row.get('client_cpu_us_per_turn'))} | "
            f"{_us(row.get('server_cpu_us_per_turn'))} |"
        )
    lines.append("")


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _target_tables(report: dict[str, Any], lines: list[str]) -> None:
    matrix = {tuple(row["key"]): row for row in report["matrix"]}
    plan = report["plan"]
    lines.append("### Targets (this run)\n")
    lines.append(
        "| target | ratio of medians | met | paired ratio (median of per-repeat) | met | limit |"
    )
    lines.append("|---|---:|---|---:|---|---|")
    verdict = {True: "yes", False: "**no**", None: "-"}
    for t in report["targets"]:
        value = "-" if t["ratio"] is None else f"{t['ratio']:.2f}"
        paired = "-" if t.get("paired") is None else f"{t['paired']:.2f}"
        lines.append(
            f"| {t['target']} | {value} | {verdict[t['met']]} | {paired} | "
            f"{verdict[t.get('met_paired')]} | {t['limit']} |"
        )
    lines.append("")
    lines.append("### Reported ratios (no target): repository ÷ pgbench, ÷ seed rewrite\n")
    lines.append("| C | H | ÷ pgbench | ÷ seed rewrite | ÷ in-memory |")
    lines.append("|---:|---:|---:|---:|---:|")
    for c in plan["concurrency"]:
        for h in plan["histories"]:
            repo = matrix.get(("repository", c, h))
            if not repo:
                continue
            parts = []
            for other in ("pgbench", "rewrite", "memory"):
                row = matrix.get((other, c, h))
                parts.append(f"{repo['turns_per_s'] / row['turns_per_s']:.2f}" if row else "-")
            lines.append(f"| {c} | {h} | " + " | ".join(parts) + " |")


# --- environment ---------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        memory = round(pages * size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": memory,
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": sys.version.split()[0],
        "psycopg": psycopg.__version__,
        "psycopg_impl": psycopg.pq.__impl__,
        "libpq": psycopg.pq.version(),
    }


async def server_settings(dsn: str) -> dict[str, str]:
    sql = bench_queries()
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        found = {}
        for name in SETTINGS:
            cur = await conn.execute(sql["server_setting"].text, {"name": name})
            row = await cur.fetchone()
            assert row is not None
            found[name] = row[0]
        return found


# --- main ----------------------------------------------------------------------------------


def _own_server() -> tuple[str, Callable[[], None]]:
    from agentcore import embedded

    parent = Path(tempfile.mkdtemp(prefix="agentcore-bench-"))
    parent.chmod(0o711)  # as root, the server's account passes through it
    server = embedded.start(parent / "pgdata", throwaway=True)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE agentcore_bench")

    def stop() -> None:
        server.stop()
        shutil.rmtree(parent, ignore_errors=True)  # the server removed pgdata; this its folder

    return make_conninfo(server.dsn, dbname="agentcore_bench"), stop


async def bench_main(args: argparse.Namespace, dsn: str) -> dict[str, Any]:
    plan = QUICK if args.quick else FULL
    if args.repeats:
        plan = Plan(**(asdict(plan) | {"repeats": args.repeats}))
    if args.growth_histories:
        plan = Plan(**(asdict(plan) | {"growth_histories": args.growth_histories}))
    if args.growth_turns:
        plan = Plan(**(asdict(plan) | {"growth_turns": args.growth_turns}))
    contenders = [k for k in CONTENDERS if k not in set(args.skip or [])]
    try:
        import agentcore.agent  # noqa: F401
    except ImportError:
        print(
            "contender 'agent' skipped: agentcore.agent is not on this branch yet", file=sys.stderr
        )
        contenders.remove("agent")

    def log(text: str) -> None:
        if not args.silent:
            print(text, file=sys.stderr, flush=True)

    host = machine()  # before the run: its load average is the machine's, not the bench's
    started = time.perf_counter()
    async with Bench(dsn, plan, contenders) as bench:
        access = await bench.access_path()
        matrix_runs = await bench.matrix(log)
        growth_runs = await bench.growth(log)
        save_runs = await bench.save_full(log)
    matrix, growth = summarize(matrix_runs), summarize(growth_runs)
    runs = {"matrix": [asdict(r) for r in matrix_runs], "growth": [asdict(r) for r in growth_runs]}
    return {
        "command": " ".join(["python", "-m", "bench.turns", *sys.argv[1:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(time.perf_counter() - started, 1),
        "machine": host,
        "server": await server_settings(dsn),
        "pgbench": str(pgbench_binary().name),
        "plan": asdict(plan),
        "contenders": contenders,
        "access_path": access,
        "matrix": [{"key": list(k), **v} for k, v in matrix.items()],
        "growth": [{"key": list(k), **v} for k, v in growth.items()],
        "save_full": save_runs,
        "targets": targets(matrix, growth, save_runs, plan, runs | {"access_path": access}),
        "runs": runs,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.turns",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a short run (< 2 minutes)")
    parser.add_argument("--dsn", help="use this database instead of a throw-away server")
    parser.add_argument(
        "--out",
        type=Path,
        help="where to write the JSON report "
        "(default bench/results/turns-quick.json or turns-full.json)",
    )
    parser.add_argument("--chart", type=Path, help="also draw the growth curve to this PNG")
    parser.add_argument("--repeats", type=int, help="override the number of repeats (>= 3)")
    parser.add_argument(
        "--growth-histories",
        type=lambda text: tuple(int(h) for h in text.split(",")),
        help="override the growth curve's stored histories, e.g. 10,1000,200000",
    )
    parser.add_argument("--growth-turns", type=int, help="override the turns per growth run")
    parser.add_argument(
        "--skip",
        action="append",
        choices=list(CONTENDERS),
        help="leave a contender out (repeatable)",
    )
    parser.add_argument("--silent", action="store_true", help="no progress lines on stderr")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="only recompute the targets of a saved report and print it",
    )
    args = parser.parse_args(argv)
    if args.render:
        return render(args.render)
    out = args.out or Path("bench/results") / f"turns-{'quick' if args.quick else 'full'}.json"
    if args.dsn:
        dsn, stop = args.dsn, None
    else:
        dsn, stop = _own_server()
    try:
        from agentcore import migrations

        migrations.apply(dsn)
        report = asyncio.run(bench_main(args, dsn))
    finally:
        if stop is not None:
            stop()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(markdown(report))
    print(f"JSON: {out}  ({report['elapsed_s']} s)")
    if args.chart:
        from bench.chart import draw_growth

        draw_growth(report, args.chart)
        print(f"chart: {args.chart}")
    return 0


def render(path: Path) -> int:
    """Recompute a saved report's summaries and targets from its runs; print it."""
    report = json.loads(path.read_text(encoding="utf-8"))
    plan_fields: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in report["plan"].items()
    }
    plan = Plan(**plan_fields)
    matrix = summarize([Run(**r) for r in report["runs"]["matrix"]])
    growth = summarize([Run(**r) for r in report["runs"]["growth"]])
    report["targets"] = targets(
        matrix,
        growth,
        report["save_full"],
        plan,
        report["runs"] | {"access_path": report["access_path"]},
    )
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
