"""The ``agentcore`` command (composition root: the only place that wires real parts)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

from agentcore import embedded, migrations
from agentcore.errors import AgentcoreError
from agentcore.postgres import PostgresHistoryRepository


async def _demo(dsn: str) -> None:
    session = f"demo-{uuid.uuid4().hex[:8]}"
    async with PostgresHistoryRepository.from_dsn(dsn) as repo:
        await repo.append_messages("demo-agent", session, [
            {"role": "user", "content": "Hello, who are you?"},
            {"role": "assistant", "content": "I am the agentcore demo."},
        ])
        for message in await repo.load_history("demo-agent", session):
            print(f"[{session}] {message.role}: {message.content}")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="agentcore")
    parser.add_argument("command", choices=["demo"])
    parser.add_argument("--dsn", help="PostgreSQL DSN (default: the embedded database)")
    args = parser.parse_args(argv)
    try:
        dsn = args.dsn or embedded.start(embedded.default_data_dir()).dsn
        migrations.apply(dsn)
        asyncio.run(_demo(dsn))
    except AgentcoreError as exc:
        print(f"agentcore: {exc}", file=sys.stderr)
        return 1
    return 0
