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
import functools
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from psycopg_pool import AsyncConnectionPool

from agentcore import Message, PostgresHistoryRepository
from bench.turns import _own_server

AGENT = "bench-pop"
_T = TypeVar("_T")
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


async def fill(repo: PostgresHistoryRepository, agent: str, session: str, size: int) -> None:
    """Store ``size`` messages in the conversation, a thousand per append."""
    for start in range(0, size, 1000):
        batch = [message(i) for i in range(start, min(size, start + 1000))]
        await repo.append_messages(agent, session, batch)


def report(found: dict[tuple[str, int], list[float]], ways: Sequence[str]) -> None:
    """Print the timings per way and H (median, p90), then each way's growth."""
    print("| way | H | median ms | p90 ms |\n|---|---:|---:|---:|")
    for (way, size), times in found.items():
        p90 = statistics.quantiles(times, n=10)[-1]
        print(f"| {way} | {size} | {statistics.median(times):.2f} | {p90:.2f} |")
    sizes = sorted({size for _, size in found})
    low, high = sizes[0], sizes[-1]
    for way in ways:
        ratio = statistics.median(found[way, high]) / statistics.median(found[way, low])
        print(f"{way}: median at H={high} / H={low} = {ratio:.1f}x")


Step = Callable[[PostgresHistoryRepository, str], Awaitable[object]]
Restore = Callable[[PostgresHistoryRepository, str, int], Awaitable[object]]


async def time_ways(
    dsn: str,
    agent: str,
    sizes: Sequence[int],
    rounds: int,
    ways: Mapping[str, Step],
    restore: Restore,
) -> dict[tuple[str, int], list[float]]:
    """Time ``rounds`` calls of each way on a conversation of each size, in ms.

    ``restore(repo, session, i)`` runs after each timed call, untimed, to put
    the conversation back to its size.
    """
    found: dict[tuple[str, int], list[float]] = {}
    async with AsyncConnectionPool(
        dsn, min_size=1, max_size=2, kwargs={"autocommit": True}, open=False
    ) as pool:
        await pool.open(wait=True)
        repo = PostgresHistoryRepository(pool)
        for size in sizes:
            session = f"h{size}"
            await fill(repo, agent, session, size)
            for way, step in ways.items():
                times = []
                for i in range(rounds):
                    began = time.perf_counter()
                    await step(repo, session)
                    times.append((time.perf_counter() - began) * 1000)
                    await restore(repo, session, i)
                found[way, size] = times
            info = await repo.get_session(agent, session)
            assert info is not None and info.message_count == size
    return found


async def measure(dsn: str, sizes: Sequence[int], pops: int) -> dict[tuple[str, int], list[float]]:
    async def pop(way: Pop, repo: PostgresHistoryRepository, session: str) -> None:
        assert await way(repo, session) is not None

    async def put_back(repo: PostgresHistoryRepository, session: str, i: int) -> None:
        await repo.append_messages(AGENT, session, [message(10**6 + i)])

    ways = {name: functools.partial(pop, way) for name, way in WAYS.items()}
    return await time_ways(dsn, AGENT, sizes, pops, ways, put_back)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pop", description=__doc__)
    parser.add_argument("--dsn", help="use this database instead of a throw-away server")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--pops", type=int, default=50, help="pops timed per size and way")
    args = parser.parse_args(argv)
    found = on_a_server(args.dsn, lambda dsn: measure(dsn, args.sizes, args.pops))
    report(found, list(WAYS))
    return 0


def on_a_server(dsn: str | None, run: Callable[[str], Coroutine[Any, Any, _T]]) -> _T:
    """``run(dsn)`` on a migrated database: ``dsn``, or a throw-away server's."""
    dsn, stop = (dsn, None) if dsn else _own_server()
    try:
        from agentcore import migrations

        migrations.apply(dsn)
        return asyncio.run(run(dsn))
    finally:
        if stop is not None:
            stop()


if __name__ == "__main__":
    raise SystemExit(main())
