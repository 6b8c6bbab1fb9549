"""What a pop costs as the conversation grows: ``pop_message`` against read-and-rewrite.

Run from the repository root::

    python -m bench.pop                 # about a minute

It starts a throw-away embedded PostgreSQL (or uses ``--dsn``), fills one
conversation per size with H messages, then times ``--pops`` pops on it, each
followed (untimed) by an append that puts a message back, so H stays put.
"read-and-rewrite" is what a framework's pop had to be before
``pop_message``: load the whole conversation, save it back without its last
message. Prints the median and p90 per pop in milliseconds, and the ratio of
the medians at the largest and smallest H.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from psycopg_pool import AsyncConnectionPool

from agentcore import Message, PostgresHistoryRepository
from bench.turns import _own_server

AGENT = "bench-pop"
Pop = Callable[[PostgresHistoryRepository, str], Awaitable[Message | None]]


async def atomic_pop(repo: PostgresHistoryRepository, session: str) -> Message | None:
    return await repo.pop_message(AGENT, session)


async def rewrite_pop(repo: PostgresHistoryRepository, session: str) -> Message | None:
    history = await repo.load_history(AGENT, session)
    if not history:
        return None
    await repo.save_full_history(AGENT, session, history[:-1])
    return history[-1]


WAYS: dict[str, Pop] = {"pop_message": atomic_pop, "read-and-rewrite": rewrite_pop}


def message(i: int) -> dict[str, Any]:
    return {"role": "user" if i % 2 else "assistant", "content": f"message {i} " + "x" * 200}


async def measure(dsn: str, sizes: Sequence[int], pops: int) -> dict[tuple[str, int], list[float]]:
    found: dict[tuple[str, int], list[float]] = {}
    async with AsyncConnectionPool(
        dsn, min_size=1, max_size=2, kwargs={"autocommit": True}, open=False
    ) as pool:
        await pool.open(wait=True)
        repo = PostgresHistoryRepository(pool)
        for size in sizes:
            session = f"h{size}"
            for start in range(0, size, 1000):
                batch = [message(i) for i in range(start, min(size, start + 1000))]
                await repo.append_messages(AGENT, session, batch)
            for way, pop in WAYS.items():
                times = []
                for i in range(pops):
                    began = time.perf_counter()
                    popped = await pop(repo, session)
                    times.append((time.perf_counter() - began) * 1000)
                    assert popped is not None
                    await repo.append_messages(AGENT, session, [message(size + i)])
                found[way, size] = times
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pop", description=__doc__)
    parser.add_argument("--dsn", help="use this database instead of a throw-away server")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--pops", type=int, default=50, help="pops timed per size and way")
    args = parser.parse_args(argv)
    dsn, stop = (args.dsn, None) if args.dsn else _own_server()
    try:
        from agentcore import migrations

        migrations.apply(dsn)
        found = asyncio.run(measure(dsn, args.sizes, args.pops))
    finally:
        if stop is not None:
            stop()
    print("| way | H | median ms | p90 ms |\n|---|---:|---:|---:|")
    for (way, size), times in found.items():
        p90 = statistics.quantiles(times, n=10)[-1]
        print(f"| {way} | {size} | {statistics.median(times):.2f} | {p90:.2f} |")
    low, high = min(args.sizes), max(args.sizes)
    for way in WAYS:
        ratio = statistics.median(found[way, high]) / statistics.median(found[way, low])
        print(f"{way}: median at H={high} / H={low} = {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
