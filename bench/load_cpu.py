"""Client instructions per ``load_history`` of 20 messages: this tree against a git commit.

    python -m bench.load_cpu [--ref a8ab8cd] [--loads 300]

Counts the instructions the client process executes (valgrind's callgrind,
which other processes on the machine do not inflate) for ``--loads`` loads of
the last 20 of 40 messages (≈200 and ≈600 characters), minus a run with no
load, for agentcore as it is at ``--ref`` (extracted with ``git archive``) and
as it is in this tree. Needs ``valgrind``. Starts its own throw-away server.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = [
    {"role": "assistant" if i % 2 else "user", "content": "x" * (600 if i % 2 else 200)}
    for i in range(40)
]


async def loads(dsn: str, count: int) -> None:
    """What runs under callgrind: a pool of one connection, ``count`` loads after 20."""
    from agentcore import PostgresHistoryRepository

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, min_size=1, max_size=1, kwargs={"autocommit": True}, open=False
    )
    await pool.open(wait=True)
    repo = PostgresHistoryRepository(pool)
    for _ in range(20 + count):
        await repo.load_history("bench", "load", 20)
    await pool.close()


async def seed(dsn: str) -> None:
    from agentcore import PostgresHistoryRepository

    async with PostgresHistoryRepository.from_dsn(dsn) as repo:
        await repo.clear_session("bench", "load")
        await repo.append_messages("bench", "load", MESSAGES)


def instructions(source: Path, dsn: str, count: int) -> int:
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "bench.load_cpu",
            "--run",
            dsn,
            str(count),
        ],
        env={"PYTHONPATH": f"{source}:{ROOT}"},
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    assert found, done.stderr
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load_cpu", description=__doc__)
    parser.add_argument("--ref", default="a8ab8cd", help="the git commit to compare with")
    parser.add_argument("--loads", type=int, default=300)
    parser.add_argument("--run", nargs=2, metavar=("DSN", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        asyncio.run(loads(args.run[0], int(args.run[1])))
        return 0

    from agentcore import embedded, migrations

    with tempfile.TemporaryDirectory(prefix="agentcore-load-cpu-") as tmp:
        old = Path(tmp) / "old"
        old.mkdir()
        archive = subprocess.run(
            ["git", "archive", args.ref, "agentcore", "sql"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        server = embedded.start(Path(tmp) / "pgdata", throwaway=True)
        try:
            migrations.apply(server.dsn)
            asyncio.run(seed(server.dsn))
            for label, source in ((args.ref, old), ("this tree", ROOT)):
                per_load = (
                    instructions(source, server.dsn, args.loads)
                    - instructions(source, server.dsn, 0)
                ) / args.loads
                print(f"{label}: {per_load:,.0f} client instructions per load of 20 messages")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
