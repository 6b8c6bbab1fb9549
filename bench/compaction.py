"""What compacting a conversation's tail costs as the conversation grows.

Run from the repository root::

    python -m bench.compaction          # about a minute

It starts a throw-away embedded PostgreSQL (or uses ``--dsn``), fills one
conversation per size with H messages, then times ``--rounds`` compactions
on it: the last ``--tail`` messages read and replaced by one summary, each
followed (untimed) by appends that put the removed messages back, so H stays
put. The ways:

- ``replace_last_messages``: read the tail, compare-and-swap it (atomic; what
  ``AgentcoreSession``'s compaction hook does);
- ``load + save_full_history``: read everything, replace everything (atomic);
- ``load + clear + append``: the OpenAI Agents SDK's fallback for a store
  without compaction hooks (not atomic: a crash between the clear and the
  append loses the history).

Prints the median and p90 per compaction in milliseconds, and the ratio of the
medians at the largest and smallest H.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Sequence

from agentcore import PostgresHistoryRepository
from bench.pop import Step, message, on_a_server, report, time_ways

AGENT = "bench-compaction"
SUMMARY = {"role": "system", "content": "summary " + "y" * 400}
Compaction = Callable[[PostgresHistoryRepository, str, int], Awaitable[None]]


async def replace_tail(repo: PostgresHistoryRepository, session: str, tail: int) -> None:
    expected = await repo.load_history(AGENT, session, tail)
    assert await repo.replace_last_messages(AGENT, session, expected, [SUMMARY])


async def rewrite_all(repo: PostgresHistoryRepository, session: str, tail: int) -> None:
    history = await repo.load_history(AGENT, session)
    await repo.save_full_history(AGENT, session, [*history[:-tail], SUMMARY])


async def clear_and_append(repo: PostgresHistoryRepository, session: str, tail: int) -> None:
    history = await repo.load_history(AGENT, session)
    await repo.clear_session(AGENT, session)
    await repo.append_messages(AGENT, session, [*history[:-tail], SUMMARY])


WAYS: dict[str, Compaction] = {
    "replace_last_messages": replace_tail,
    "load + save_full_history": rewrite_all,
    "load + clear + append": clear_and_append,
}


async def measure(
    dsn: str, sizes: Sequence[int], rounds: int, tail: int
) -> dict[tuple[str, int], list[float]]:
    async def put_back(repo: PostgresHistoryRepository, session: str, i: int) -> None:
        await repo.append_messages(AGENT, session, [message(i) for i in range(tail - 1)])

    def of_tail(way: Compaction) -> Step:
        async def step(repo: PostgresHistoryRepository, session: str) -> None:
            await way(repo, session, tail)

        return step

    ways = {name: of_tail(way) for name, way in WAYS.items()}
    return await time_ways(dsn, AGENT, sizes, rounds, ways, put_back)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compaction", description=__doc__)
    parser.add_argument("--dsn", help="use this database instead of a throw-away server")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--rounds", type=int, default=30, help="compactions per size and way")
    parser.add_argument("--tail", type=int, default=4, help="messages replaced by the summary")
    args = parser.parse_args(argv)
    found = on_a_server(args.dsn, lambda dsn: measure(dsn, args.sizes, args.rounds, args.tail))
    report(found, list(WAYS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
