"""The bridges against the frameworks' own stores, and the sync face's cost per call.

Run from the repository root, with the ``bench`` extra installed
(``pip install -e '.[test,bench]'``)::

    python -m bench.bridges --out bench/results/bridges.json    # about 7 minutes

Without ``--dsn`` it starts its own throw-away embedded PostgreSQL (as the
tests do), applies agentcore's migrations, and removes everything at exit.
In one run, against one server:

1. **OpenAI Agents SDK**: the session calls of one ``Runner.run`` turn
   (``get_items()``: every item under the SDK's default settings; then
   ``add_items`` of the input and of the reply, see ``bench/bridge_contenders.py``)
   through ``AgentcoreSession`` over ``PostgresHistoryRepository``, over the
   in-memory fake (the bridge's and the repository's own cost, no database),
   the SDK's ``SQLAlchemySession`` on the same server (async psycopg,
   ``postgresql+psycopg``) and its ``SQLiteSession`` (a file); then
   ``pop_item`` on a short and a long session.
2. **LangChain**: read the messages, add two, through
   ``AgentcoreChatMessageHistory`` (async over PostgreSQL, sync over
   ``SyncHistoryRepository``) and langchain-postgres's
   ``PostgresChatMessageHistory`` (async and sync), same server.
3. **The sync face**: ``SyncHistoryRepository`` against the async repository
   it runs, over the fake and over PostgreSQL (``bench/handover.py``).

C sessions run at once (tasks of one event loop; threads for the sync
contenders), each seeded with H items before timing, each contender in its
own pool, in an order rotated on every repeat; figures are medians over
repeats. Prints markdown tables and writes every measurement as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentcore import InMemoryHistoryRepository
from bench import handover
from bench.bridge_contenders import (
    AgentcoreLangChain,
    AgentcoreSdk,
    Contender,
    LangChainPostgres,
    SdkSessions,
    SqlAlchemySdk,
    SqliteSdk,
)
from bench.turns import (
    WARM_UP_TURNS,
    Run,
    _own_server,
    _rotated,
    _run,
    machine,
    paired_ratio,
    server_settings,
    summarize,
)

CONTENDERS: dict[str, str] = {
    "sdk-agentcore": "AgentcoreSession over PostgresHistoryRepository",
    "sdk-agentcore-memory": "AgentcoreSession over InMemoryHistoryRepository (no database)",
    "sdk-sqlalchemy": "SDK SQLAlchemySession, postgresql+psycopg, same server",
    "sdk-sqlite": "SDK SQLiteSession, a file",
    "lc-agentcore": "AgentcoreChatMessageHistory, async, over PostgresHistoryRepository",
    "lc-agentcore-sync": "AgentcoreChatMessageHistory, sync, over SyncHistoryRepository",
    "lc-postgres": "langchain-postgres PostgresChatMessageHistory, async",
    "lc-postgres-sync": "langchain-postgres PostgresChatMessageHistory, sync",
}
FAMILIES = {
    "OpenAI Agents SDK: get_items() + add_items([input]) + add_items([reply])": (
        "sdk-agentcore", "sdk-agentcore-memory", "sdk-sqlalchemy", "sdk-sqlite",
    ),
    "LangChain: read the messages + add 2": (
        "lc-agentcore", "lc-agentcore-sync", "lc-postgres", "lc-postgres-sync",
    ),
}  # fmt: skip
RATIOS = (
    ("sdk-agentcore", "sdk-sqlalchemy"),
    ("sdk-agentcore", "sdk-sqlite"),
    ("lc-agentcore", "lc-postgres"),
    ("lc-agentcore-sync", "lc-postgres-sync"),
    ("lc-agentcore-sync", "lc-agentcore"),
)
POPPERS = ("sdk-agentcore", "sdk-sqlalchemy", "sdk-sqlite")


@dataclass(frozen=True)
class Plan:
    """How much to run. A run's turns are split evenly between its C sessions."""

    concurrency: tuple[int, ...] = (1, 16)
    histories: tuple[int, ...] = (0, 1000)
    repeats: int = 3
    turns_at_h0: int = 320
    turns_at_h: int = 96  # at H > 0: a turn reads all H items, so fewer of them
    turns_per_session: int = 8
    pop_sizes: tuple[int, ...] = (100, 10_000)
    pops: int = 30
    handover_calls: int = 20_000  # over the fake; a tenth of it over PostgreSQL
    handover_threads: tuple[int, ...] = (1, 4)
    session_limit: int | None = None  # the SDK sessions' SessionSettings.limit
    parts: tuple[str, ...] = ("turns", "pop", "handover")

    def turns_per_worker(self, concurrency: int, history: int) -> int:
        total = self.turns_at_h if history else self.turns_at_h0
        return max(2, total // concurrency)


TINY = Plan(
    concurrency=(1, 2),
    histories=(0, 3),
    repeats=1,
    turns_at_h0=6,
    turns_at_h=4,
    turns_per_session=2,
    pop_sizes=(2, 5),
    pops=2,
    handover_calls=40,
    handover_threads=(1, 2),
)


class Bridges:
    """Opens the contenders on one database and times them."""

    def __init__(self, dsn: str, plan: Plan, contenders: Sequence[str], scratch: Path) -> None:
        self.dsn = dsn
        self.plan = plan
        self.contenders = list(contenders)
        self.scratch = scratch
        self.fake = InMemoryHistoryRepository()  # holds the fake's sessions between runs

    async def open(self, key: str, concurrency: int, cell: str) -> Contender:
        """``key``'s contender, sized for ``concurrency`` sessions at once."""
        contender = await self._open(key, concurrency, cell)
        if isinstance(contender, SdkSessions):
            contender.limit = self.plan.session_limit
        return contender

    async def _open(self, key: str, concurrency: int, cell: str) -> Contender:
        if key == "sdk-agentcore":
            return await AgentcoreSdk(self.dsn, concurrency).open()
        if key == "sdk-agentcore-memory":
            return AgentcoreSdk(None, concurrency).over(self.fake)
        if key == "sdk-sqlalchemy":
            return await SqlAlchemySdk(self.dsn, concurrency).open()
        if key == "sdk-sqlite":
            return await SqliteSdk(self.scratch / f"{cell}.sqlite").open()
        if key.startswith("lc-agentcore"):
            return await AgentcoreLangChain(
                self.dsn, concurrency, sync=key.endswith("-sync")
            ).open()
        if key.startswith("lc-postgres"):
            return await LangChainPostgres(self.dsn, concurrency, sync=key.endswith("-sync")).open()
        raise ValueError(f"unknown contender {key!r}")

    async def create_tables(self) -> None:
        if "sdk-sqlalchemy" in self.contenders:
            await SqlAlchemySdk.create_tables(self.dsn)
        if any(k.startswith("lc-postgres") for k in self.contenders):
            await LangChainPostgres.create_table(self.dsn)

    async def turns(self, log: Callable[[str], None]) -> list[Run]:
        """Every contender at every (C, H); every repeat on sessions of its own, seeded first."""
        runs: list[Run] = []
        for concurrency in self.plan.concurrency:
            for history in self.plan.histories:
                for key in self.contenders:
                    contender = await self.open(key, concurrency, _cell(key, concurrency, history))
                    try:
                        for repeat in range(self.plan.repeats):
                            for worker in self.workers(key, concurrency, history, repeat):
                                for session in worker:
                                    await contender.seed(session, history)
                    finally:
                        await contender.close()
                for repeat in range(self.plan.repeats):
                    for key in _rotated(self.contenders, repeat):
                        result = await self.run(key, concurrency, history, repeat)
                        log(
                            f"C={concurrency:<3} H={history:<5} #{repeat} {key:<22}"
                            f"{result.turns_per_s:8.0f} turns/s  p50 {result.p50_ms:7.2f} ms"
                        )
                        runs.append(result)
        return runs

    def workers(self, key: str, concurrency: int, history: int, repeat: int) -> list[list[str]]:
        """The sessions each of the C workers cycles through in one run.

        A turn reads the whole session (the frameworks' default), so a session
        takes at most ``Plan.turns_per_session`` turns: H stays about H.
        """
        per_worker = self.plan.turns_per_worker(concurrency, history)
        count = -(-per_worker // self.plan.turns_per_session)
        cell = _cell(key, concurrency, history)
        return [[f"{cell}-r{repeat}-w{w}-s{s}" for s in range(count)] for w in range(concurrency)]

    async def run(self, key: str, concurrency: int, history: int, repeat: int) -> Run:
        per_worker = self.plan.turns_per_worker(concurrency, history)
        workers = self.workers(key, concurrency, history, repeat)
        cell = _cell(key, concurrency, history)
        warm = [[f"{cell}-warm{repeat}-w{w}"] for w in range(concurrency)]
        contender = await self.open(key, concurrency, cell)
        try:
            contender.prepare([s for worker in workers + warm for s in worker])
            await drive(contender, warm, WARM_UP_TURNS, None)
            latencies: list[float] = []
            cpu = time.process_time()
            started = time.perf_counter()
            await drive(contender, workers, per_worker, latencies)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu
            for worker in workers:  # every turn stored its two items
                for i, session in enumerate(worker):
                    turns = len(range(i, per_worker, len(worker)))
                    found = await contender.count(session)
                    if found != history + 2 * turns:
                        raise AssertionError(
                            f"{key}: session {session} holds {found} items, "
                            f"not {history} + 2 x {turns}"
                        )
        finally:
            await contender.close()
        ms = [x * 1000 for x in latencies]
        return _run(key, concurrency, history, repeat, seconds, len(ms) / seconds, ms, cpu)

    async def pops(self, log: Callable[[str], None]) -> list[dict[str, Any]]:
        """``pop_item`` on a session of each size, each pop followed (untimed) by a put-back."""
        found: list[dict[str, Any]] = []
        for size in self.plan.pop_sizes:
            for key in [k for k in POPPERS if k in self.contenders]:
                cell = f"pop-{key}-h{size}"
                contender = await self.open(key, 1, cell)
                assert isinstance(contender, AgentcoreSdk | SqlAlchemySdk | SqliteSdk)
                try:
                    await contender.seed(cell, size)
                    for n in range(WARM_UP_TURNS):  # prepared statements, as in the turns
                        await contender.pop(cell)
                        await contender.put_back(cell, n)
                    times = []
                    for n in range(self.plan.pops):
                        began = time.perf_counter()
                        popped = await contender.pop(cell)
                        times.append((time.perf_counter() - began) * 1000)
                        assert popped is not None
                        await contender.put_back(cell, n)
                finally:
                    await contender.close()
                median = statistics.median(times)
                log(f"pop H={size:<6} {key:<16} median {median:7.2f} ms")
                found.append({"contender": key, "history": size, "median_ms": median, "ms": times})
        return found


async def drive(
    contender: Contender,
    workers: Sequence[Sequence[str]],
    turns: int,
    latencies: list[float] | None,
) -> None:
    """The workers at once (threads if the contender blocks), ``turns`` turns each.

    A worker's turns go round its sessions in turn.
    """
    if contender.sync:
        await asyncio.to_thread(_threads, contender.sync_turn, workers, turns, latencies)
        return

    async def one(sessions: Sequence[str]) -> None:
        for n in range(turns):
            began = time.perf_counter()
            await contender.turn(sessions[n % len(sessions)], n)
            if latencies is not None:
                latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(one(w) for w in workers))


def _threads(
    turn: Callable[[str, int], None],
    workers: Sequence[Sequence[str]],
    turns: int,
    latencies: list[float] | None,
) -> None:
    failures: list[BaseException] = []

    def one(sessions: Sequence[str]) -> None:
        try:
            for n in range(turns):
                began = time.perf_counter()
                turn(sessions[n % len(sessions)], n)
                if latencies is not None:
                    latencies.append(time.perf_counter() - began)  # list.append is atomic
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=one, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def _cell(key: str, concurrency: int, history: int) -> str:
    return f"{key}-c{concurrency}-h{history}"


def ratios(report: dict[str, Any]) -> list[dict[str, Any]]:
    """agentcore's bridge over each framework store: ratio of medians and paired ratio."""
    matrix = {tuple(row["key"]): row for row in report["turns"]}
    found = []
    for a, b in RATIOS:
        for c in report["plan"]["concurrency"]:
            for h in report["plan"]["histories"]:
                if (a, c, h) in matrix and (b, c, h) in matrix:
                    found.append(
                        {
                            "a": a,
                            "b": b,
                            "concurrency": c,
                            "history": h,
                            "ratio": matrix[a, c, h]["turns_per_s"]
                            / matrix[b, c, h]["turns_per_s"],
                            "paired": paired_ratio(report["runs"], a, b, c, h),
                        }
                    )
    return found


def markdown(report: dict[str, Any]) -> str:
    """The report as markdown tables."""
    lines: list[str] = []
    matrix = {tuple(row["key"]): row for row in report["turns"]}
    plan = report["plan"]
    limit = plan.get("session_limit")
    for family, keys in FAMILIES.items():
        if not any(key in keys for key, _, _ in matrix):
            continue
        if limit is not None and keys[0].startswith("sdk"):
            family += f", SessionSettings(limit={limit})"
        lines.append(f"### {family} (medians of {plan['repeats']} repeats)\n")
        lines.append("| contender | C | H | turns/s | p50 ms | p99 ms | client CPU µs/turn |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|")
        for c in plan["concurrency"]:
            for h in plan["histories"]:
                for key in keys:
                    row = matrix.get((key, c, h))
                    if row is not None:
                        lines.append(
                            f"| {CONTENDERS[key]} | {c} | {h} | {row['turns_per_s']:.0f} | "
                            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | "
                            f"{row['client_cpu_us_per_turn']:.0f} |"
                        )
        lines.append("")
    lines.append("### Ratios of turns/s (ratio of medians; paired: median of per-repeat ratios)\n")
    lines.append("| ratio | C | H | ratio | paired |")
    lines.append("|---|---:|---:|---:|---:|")
    for r in report["ratios"]:
        paired = "-" if r["paired"] is None else f"{r['paired']:.2f}"
        lines.append(
            f"| {r['a']} ÷ {r['b']} | {r['concurrency']} | {r['history']} | "
            f"{r['ratio']:.2f} | {paired} |"
        )
    lines.append("")
    _pop_and_handover_tables(report, lines)
    return "\n".join(lines) + "\n"


def _pop_and_handover_tables(report: dict[str, Any], lines: list[str]) -> None:
    plan = report["plan"]
    if not report["pop"] and not report["handover"]:
        return
    lines.append(f"### pop_item (median ms of {plan['pops']} pops)\n")
    sizes = plan["pop_sizes"]
    lines.append("| contender | " + " | ".join(f"H={h}" for h in sizes) + " |")
    lines.append("|---|" + "---:|" * len(sizes))
    pops = {(p["contender"], p["history"]): p["median_ms"] for p in report["pop"]}
    for key in POPPERS:
        if (key, sizes[0]) in pops:
            cells = " | ".join(f"{pops[key, h]:.2f}" for h in sizes)
            lines.append(f"| {CONTENDERS[key]} | {cells} |")
    lines.append("")
    lines.append(
        "### SyncHistoryRepository vs the async repository: load_history (limit=1 on the "
        f"fake, 20 on PostgreSQL), "
        f"medians of {plan['repeats']} repeats\n"
    )
    lines.append(
        "| store | threads (sync) / tasks (async) | async µs/call | sync µs/call "
        "| hand-over µs/call | sync ÷ async | async CPU µs/call | sync CPU µs/call "
        "| async p50 µs | sync p50 µs |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for cell in report["handover"]:
        lines.append(
            f"| {cell['store']} | {cell['threads']} | {cell['async_us_per_call']:.1f} | "
            f"{cell['sync_us_per_call']:.1f} | {cell['handover_us_per_call']:.1f} | "
            f"{cell['sync_over_async']:.2f} | {cell['async_cpu_us_per_call']:.1f} | "
            f"{cell['sync_cpu_us_per_call']:.1f} | {cell['async_p50_us']:.1f} | "
            f"{cell['sync_p50_us']:.1f} |"
        )


async def measure(
    dsn: str, plan: Plan, contenders: Sequence[str], scratch: Path, log: Callable[[str], None]
) -> tuple[list[Run], list[dict[str, Any]]]:
    bridges = Bridges(dsn, plan, contenders, scratch)
    await bridges.create_tables()
    turns = await bridges.turns(log) if "turns" in plan.parts else []
    return turns, await bridges.pops(log) if "pop" in plan.parts else []


def bench_main(args: argparse.Namespace, dsn: str) -> dict[str, Any]:
    plan = TINY if args.tiny else Plan()
    if args.repeats:
        plan = Plan(**(asdict(plan) | {"repeats": args.repeats}))
    if args.session_limit is not None:
        plan = Plan(**(asdict(plan) | {"session_limit": args.session_limit}))
    if args.parts:
        plan = Plan(**(asdict(plan) | {"parts": tuple(args.parts)}))
    contenders = [k for k in CONTENDERS if k not in set(args.skip or [])]

    def log(text: str) -> None:
        if not args.silent:
            print(text, file=sys.stderr, flush=True)

    host = machine()  # before the run: its load average is the machine's, not the bench's
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="agentcore-bench-bridges-") as scratch:
        runs, pops = asyncio.run(measure(dsn, plan, contenders, Path(scratch), log))
    found = []
    if "handover" in plan.parts:
        found = handover.measure(dsn, plan.handover_calls, plan.handover_threads, plan.repeats, log)
    load_after = list(_load_average())
    report: dict[str, Any] = {
        "command": " ".join(["python", "-m", "bench.bridges", *(args.argv or [])]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(time.perf_counter() - started, 1),
        "machine": host | {"load_average_at_end": load_after},
        "server": asyncio.run(server_settings(dsn)),
        "versions": _versions(),
        "plan": asdict(plan),
        "contenders": contenders,
        "turns": [{"key": list(k), **v} for k, v in summarize(runs).items()],
        "pop": pops,
        "handover": handover.summarize(found),
        "runs": [asdict(r) for r in runs],
        "handover_runs": found,
    }
    report["ratios"] = ratios(report)
    return report


def _load_average() -> tuple[float, ...]:
    import os

    return os.getloadavg() if hasattr(os, "getloadavg") else ()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("openai-agents", "langchain-core", "langchain-postgres", "sqlalchemy", "psycopg"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bridges",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dsn", help="use this database instead of a throw-away server")
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results/bridges.json"), help="the JSON report"
    )
    parser.add_argument("--repeats", type=int, help="override the number of repeats")
    parser.add_argument(
        "--tiny", action="store_true", help="a few turns of everything (the smoke test's size)"
    )
    parser.add_argument(
        "--skip", action="append", choices=list(CONTENDERS), help="leave a contender out"
    )
    parser.add_argument(
        "--session-limit",
        type=int,
        help="the SDK sessions' SessionSettings.limit (default: none, every item)",
    )
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=["turns", "pop", "handover"],
        help="measure only these parts (default: all three)",
    )
    parser.add_argument("--silent", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    dsn, stop = (args.dsn, None) if args.dsn else _own_server()
    try:
        from agentcore import migrations

        migrations.apply(dsn)
        report = bench_main(args, dsn)
    finally:
        if stop is not None:
            stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(markdown(report))
    print(f"JSON: {args.out}  ({report['elapsed_s']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
