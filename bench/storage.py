"""Bytes on disk per stored message: both tables' heap, indexes and TOAST.

Run from the repository root::

    python -m bench.storage [--conversations 2000] [--turns 50]

Starts a throw-away embedded PostgreSQL, applies agentcore's migrations, and
stores ``--conversations`` conversations of ``--turns`` turns each through
``PostgresHistoryRepository.append_messages``: a turn is a user message of 200
and an assistant message of 600 characters of random text (incompressible,
as real text mostly is at these lengths), 50 conversations at a time. Then
``VACUUM ANALYZE`` and ``pg_total_relation_size`` of ``conversation_history``
and ``conversation_sessions``, divided by the messages stored
(docs/scaling.md, "When one server stops being enough").
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
from pathlib import Path

import psycopg
from psycopg_pool import AsyncConnectionPool

from agentcore import PostgresHistoryRepository, embedded, migrations


async def store(dsn: str, conversations: int, turns: int) -> None:
    async with AsyncConnectionPool(
        dsn, kwargs={"autocommit": True}, min_size=4, max_size=8
    ) as pool:
        repo = PostgresHistoryRepository(pool)

        async def one(i: int) -> None:
            for _ in range(turns):
                turn = [
                    {"role": "user", "content": secrets.token_urlsafe(150)},  # 200 characters
                    {"role": "assistant", "content": secrets.token_urlsafe(450)},  # 600
                ]
                await repo.append_messages("bench", f"s{i}", turn)

        for start in range(0, conversations, 50):
            await asyncio.gather(*(one(i) for i in range(start, min(start + 50, conversations))))


def measure(dsn: str) -> tuple[int, int, int]:
    """(messages, bytes of both tables with indexes and TOAST, bytes of the history's heap)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE conversation_history, conversation_sessions")
        row = conn.execute(
            "SELECT (SELECT count(*) FROM conversation_history),"
            " pg_total_relation_size('conversation_history')"
            " + pg_total_relation_size('conversation_sessions'),"
            " pg_relation_size('conversation_history')"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storage", description=__doc__)
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=50)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="agentcore-storage-") as tmp:
        Path(tmp).chmod(0o711)  # as root, the server's account passes through it
        server = embedded.start(Path(tmp) / "pgdata", throwaway=True)
        try:
            migrations.apply(server.dsn)
            asyncio.run(store(server.dsn, args.conversations, args.turns))
            messages, total, heap = measure(server.dsn)
        finally:
            server.stop()
    print(
        f"{messages:,} messages ({args.conversations:,} conversations x {args.turns} turns of a "
        f"200- and a 600-character message): {total / messages:.0f} bytes per message on disk "
        f"(both tables, indexes, TOAST); the history's heap alone {heap / messages:.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
