"""What ``SyncHistoryRepository`` costs per call over the async repository it runs.

The sync face runs the async repository on an event loop in a thread of its
own; each call is handed to that thread and its result handed back. Here the
same call, ``load_history`` of a conversation holding WINDOW messages, is made

- on the async repository, awaited by ``tasks`` tasks of one event loop;
- on ``SyncHistoryRepository``, from ``threads`` threads;

over the in-memory fake with ``limit=1`` (the call itself costs little, so the
difference is the hand-over) and over PostgreSQL with ``limit=WINDOW`` (an
agent's read). Reported: wall-clock microseconds per call
(total time ÷ calls, so with several threads it is throughput), the process's
CPU microseconds per call (every thread's; steadier than wall time on a shared
machine) and the median latency of one call. Part of ``python -m bench.bridges``.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from agentcore import InMemoryHistoryRepository, PostgresHistoryRepository, SyncHistoryRepository
from bench.contenders import WINDOW
from bench.turns import _pool, seed_messages

AGENT, SESSION = "bench-handover", "handover"


def _result(calls: int, seconds: float, cpu: float, latencies: list[float]) -> dict[str, float]:
    return {
        "calls": calls,
        "us_per_call": seconds / calls * 1e6,
        "cpu_us_per_call": cpu / calls * 1e6,
        "p50_us": statistics.median(latencies) * 1e6,
    }


async def _async_calls(
    repo: PostgresHistoryRepository | InMemoryHistoryRepository, calls: int, tasks: int, limit: int
) -> dict[str, float]:
    latencies: list[float] = []

    async def one(count: int) -> None:
        for _ in range(count):
            began = time.perf_counter()
            await repo.load_history(AGENT, SESSION, limit=limit)
            latencies.append(time.perf_counter() - began)

    for _ in range(max(1, calls // 10)):  # warm up: prepared statements, pool connections
        await repo.load_history(AGENT, SESSION, limit=limit)
    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(calls // tasks) for _ in range(tasks)))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return _result(len(latencies), seconds, cpu, latencies)


def _sync_calls(
    repo: SyncHistoryRepository, calls: int, threads: int, limit: int
) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()

    def one(count: int) -> None:
        mine = []
        for _ in range(count):
            began = time.perf_counter()
            repo.load_history(AGENT, SESSION, limit=limit)
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    for _ in range(max(1, calls // 10)):
        repo.load_history(AGENT, SESSION, limit=limit)
    workers = [threading.Thread(target=one, args=(calls // threads,)) for _ in range(threads)]
    cpu, started = time.process_time(), time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return _result(len(latencies), seconds, cpu, latencies)


def measure(
    dsn: str, calls: int, threads: tuple[int, ...], repeats: int, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Every (store, face, threads) cell, ``repeats`` times alternating the faces.

    Called outside any event loop: the async face runs under ``asyncio.run``.
    """
    found: list[dict[str, Any]] = []
    fake = InMemoryHistoryRepository()
    asyncio.run(fake.append_messages(AGENT, SESSION, seed_messages(WINDOW)))
    with SyncHistoryRepository.from_dsn(dsn, min_size=1, max_size=1) as seeding:
        seeding.save_full_history(AGENT, SESSION, seed_messages(WINDOW))

    async def on_postgres(n: int, count: int) -> dict[str, float]:
        async with _pool(dsn, "handover", n) as pool:
            return await _async_calls(PostgresHistoryRepository(pool), count, n, WINDOW)

    for store, store_calls in (("memory", calls), ("postgres", max(1, calls // 10))):
        for n in threads:
            for repeat in range(repeats):
                faces = ("async", "sync") if repeat % 2 == 0 else ("sync", "async")
                for face in faces:
                    if face == "async" and store == "memory":
                        got = asyncio.run(_async_calls(fake, store_calls, n, 1))
                    elif face == "async":
                        got = asyncio.run(on_postgres(n, store_calls))
                    elif store == "memory":
                        with SyncHistoryRepository.over(fake) as repo:
                            got = _sync_calls(repo, store_calls, n, 1)
                    else:
                        with SyncHistoryRepository.from_dsn(dsn, min_size=n, max_size=n) as repo:
                            got = _sync_calls(repo, store_calls, n, WINDOW)
                    log(
                        f"handover {store:<8} {face:<5} threads={n} #{repeat} "
                        f"{got['us_per_call']:8.1f} µs/call  p50 {got['p50_us']:8.1f} µs"
                    )
                    found.append(
                        {"store": store, "face": face, "threads": n, "repeat": repeat} | got
                    )
    return found


def summarize(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Medians over repeats per (store, threads), sync against async."""
    cells: dict[tuple[str, int], dict[str, list[dict[str, Any]]]] = {}
    for row in found:
        cells.setdefault((row["store"], row["threads"]), {}).setdefault(row["face"], []).append(row)
    summary = []
    for (store, threads), faces in cells.items():
        cell: dict[str, Any] = {"store": store, "threads": threads}
        for face, rows in faces.items():
            for field in ("us_per_call", "cpu_us_per_call", "p50_us"):
                cell[f"{face}_{field}"] = statistics.median(r[field] for r in rows)
        if "sync_us_per_call" in cell and "async_us_per_call" in cell:
            cell["handover_us_per_call"] = cell["sync_us_per_call"] - cell["async_us_per_call"]
            cell["sync_over_async"] = cell["sync_us_per_call"] / cell["async_us_per_call"]
        summary.append(cell)
    return summary
