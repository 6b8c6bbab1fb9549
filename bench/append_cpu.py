"""The server's CPU per append, one statement against another, on one backend.

Run from the repository root::

    python -m bench.append_cpu            # about a minute

It starts a throw-away embedded PostgreSQL (or uses ``--dsn``, which must be a
server on this machine: the CPU is read from ``/proc/<pid>/stat`` of the
backend), and runs ``--appends`` sequential two-message appends of each way on
one autocommit connection, in ``--rounds`` rounds, each on a conversation of its
own after 50 untimed appends. A way's server CPU per append is the backend's
user + system time over the appends (10 ms ticks: 4,000 appends of ~200 µs make
some 80 of them); its WAL the difference of ``pg_current_wal_insert_lsn()``.
The ways: agentcore's ``append_plain_messages`` (a turn's append), the
``append_plain_update_first`` variant (bench/sql/variants.sql), and the narrow
reference's two-row insert (bench/sql/narrow.sql).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from typing import Any

import psycopg

from agentcore.sql import Query, load_queries
from bench.contenders import ASSISTANT_CONTENT, USER_CONTENT, bench_queries
from bench.turns import _own_server, server_cpu_seconds


def ways() -> dict[str, Query]:
    """The statements compared, by name."""
    ours, bench_sql = load_queries(), bench_queries()
    return {
        "append_plain_messages": ours["append_plain_messages"],
        "update_first": bench_sql["append_plain_update_first"],
        "narrow": bench_sql["narrow_append"],
    }


def append_params(session: str) -> dict[str, Any]:
    """Parameters every way takes: two messages for conversation ``session``."""
    return {
        "agent_name": "bench-append-cpu",
        "session_id": session,
        "message_count": 2,
        "role_0": "user",
        "content_0": USER_CONTENT,
        "role_1": "assistant",
        "content_1": ASSISTANT_CONTENT,
        "user_seq": 0,
        "assistant_seq": 1,
        "user_content": USER_CONTENT,
        "assistant_content": ASSISTANT_CONTENT,
    }


def measure(dsn: str, appends: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    """Per way, per round: (server µs per append, WAL bytes per append)."""
    bench_sql, compared = bench_queries(), ways()
    found: dict[str, list[tuple[float, float]]] = {name: [] for name in compared}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(bench_sql["narrow_create_table"].text)
        conn.execute(bench_sql["narrow_create_index"].text)
        pid = conn.info.backend_pid
        for r in range(rounds):
            for name, query in compared.items():
                params = append_params(f"{name}-{r}")
                for _ in range(50):
                    conn.execute(query.text, params)
                start = conn.execute(bench_sql["wal_position"].text).fetchone()
                assert start is not None
                cpu = server_cpu_seconds([pid])
                for _ in range(appends):
                    conn.execute(query.text, params)
                cpu = server_cpu_seconds([pid]) - cpu
                wal = conn.execute(
                    bench_sql["wal_bytes_since"].text, {"start": start[0]}
                ).fetchone()
                assert wal is not None
                found[name].append((cpu / appends * 1e6, float(wal[0]) / appends))
    return found


def report(found: dict[str, list[tuple[float, float]]]) -> None:
    print("| way | server CPU µs per append (median; rounds) | WAL bytes per append |")
    print("|---|---|---:|")
    for name, rows in found.items():
        cpus = [round(c, 1) for c, _ in rows]
        wal = statistics.median(w for _, w in rows)
        runs = ", ".join(map(str, cpus))
        print(f"| {name} | {statistics.median(cpus):.1f} ({runs}) | {wal:.0f} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.append_cpu", description=__doc__)
    parser.add_argument("--dsn", help="a database on this machine instead of a throw-away one")
    parser.add_argument("--appends", type=int, default=4000, help="timed appends per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    dsn, stop = (args.dsn, None) if args.dsn else _own_server()
    try:
        from agentcore import migrations

        migrations.apply(dsn)
        report(measure(dsn, args.appends, args.rounds))
    finally:
        if stop is not None:
            stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
