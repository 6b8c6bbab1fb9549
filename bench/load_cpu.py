"""Client instructions per turn (or per load of 20), counted so that two runs agree.

    python -m bench.load_cpu --turns [--kind repository|agent|narrow] [--default-pool]
                             [--ref COMMIT] [--loads 200] [--runs 2]
    python -m bench.load_cpu [--ref a8ab8cd] [--loads 300]      # loads of 20 only

Counts the instructions the client process executes under valgrind's
callgrind (which other processes on the machine do not inflate) for
``--loads`` turns, minus a run with none, divided by ``--loads``: per turn of
``--kind``, on one pooled connection, after 20 turns of warm-up:

- ``repository``: ``load_history(limit=20)``, then ``append_messages`` of a
  ~200-character user and a ~600-character assistant message without ids;
- ``agent``: ``Agent.execute_agent`` with EchoModel over the same repository
  (history_limit 20: it loads 20, builds the input and the reply, appends 2);
- ``narrow``: the narrow hand-written reference of ``bench/turns.py``.

Without ``--turns`` a load of the last 20 of 40 messages is counted instead.
With ``--ref`` (repeatable) the same count is made for agentcore as it is at
that git commit (extracted with ``git archive``) before this tree's. ``--runs N``
repeats each count, to show that it repeats.

What makes the count steady. A count of the real code over a real socket
moved by a third between two runs (bench/NOTES.md): under callgrind the
client runs about fifty times slower, so how often it found the server's
reply incomplete and polled again, and how often psycopg's "busy for 5 ms,
yield to the loop" rule fired, depended on timing. Under this harness
(``--run``, the process valgrind watches):

- the event loop's selector, before it hands a socket to the code as
  readable, waits (one ``time.sleep``, outside the counted code's control
  flow) until the server's whole reply is there, i.e. the bytes waiting on
  the socket end with a ``ReadyForQuery`` message: psycopg reads every reply
  in one go, as it does natively when the server is faster than the client;
- psycopg's clock for that 5 ms rule is frozen: natively a turn never runs
  5 ms between two waits;
- ``PYTHONHASHSEED=0``, a conversation emptied before each run.

Replies that were still incomplete after the sleep are reported ("late"):
the count of a run with late replies may differ. Needs ``valgrind``. Starts
its own throw-away server.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import fcntl
import gc
import operator
import os
import pstats
import re
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = [
    {"role": "assistant" if i % 2 else "user", "content": "x" * (600 if i % 2 else 200)}
    for i in range(40)
]
TURN = [
    {"role": "user", "content": "q" * 200},
    {"role": "assistant", "content": "a" * 600},
]
KINDS = ("repository", "agent", "narrow")
AGENT_NAME = "bench"
WARM_UP = 20
SETTLE_SECONDS = 0.004  # a reply's first bytes are there; the rest follows within this
_READY_FOR_QUERY = b"Z\x00\x00\x00\x05"


COUNTED = "PyNumber_InPlaceMatrixMultiply"
"""Callgrind counts only inside this C function (``operator.imatmul``), and
:data:`UNCOUNTED` (``operator.ifloordiv``) inside it not. Both are the
interpreter's public C API, so their symbols are there even in a stripped
build (a distribution's ``/usr/bin/python3``), where the static functions
behind ``operator.call`` or ``functools.reduce`` are not; nothing on a turn's
path uses ``@=`` or ``//=``."""
UNCOUNTED = "PyNumber_InPlaceFloorDivide"


class _Region:
    """``operator.imatmul(_Region(f), x)`` (or ``ifloordiv``): ``f(x)`` inside that C function."""

    __slots__ = ("_body",)

    def __init__(self, body: Callable[[Any], object]) -> None:
        self._body = body

    def __imatmul__(self, arg: Any) -> _Region:
        self._body(arg)
        return self

    def __ifloordiv__(self, arg: Any) -> _Region:
        self._body(arg)
        return self


class SteadySelector(selectors.DefaultSelector):
    """A selector that reports a database socket readable only once its whole reply is there."""

    def __init__(self) -> None:
        super().__init__()
        self.ignored: set[int] = set()  # the loop's own wake-up socket
        self.armed = False  # not while connecting: the handshake has replies of its own
        self.counting = False  # inside the counted region
        self.late = 0

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        events: list[tuple[Any, int]] = super().select(timeout)
        if self.counting:
            # Inside the counted region, callgrind toggles collection off
            # within PyNumber_InPlaceFloorDivide: the harness's own wait is not counted.
            # typeshed leaves _operator untyped; the call stays as is (a wrapper would be counted).
            operator.ifloordiv(_Region(self._settle), events)  # type: ignore[no-untyped-call]
        elif self.armed:
            self._settle(events)
        return events

    def _settle(self, events: list[tuple[Any, int]]) -> None:
        sockets = [
            key.fd for key, mask in events if mask & selectors.EVENT_READ
            and key.fd not in self.ignored
        ]  # fmt: skip
        if not sockets:
            return
        time.sleep(SETTLE_SECONDS)
        if not all(_whole_reply(fd) for fd in sockets):
            self.late += 1
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and not all(_whole_reply(fd) for fd in sockets):
                time.sleep(SETTLE_SECONDS)


def _whole_reply(fd: int) -> bool:
    waiting = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    if waiting < 6:
        return False
    with socket.socket(fileno=os.dup(fd)) as sock:
        tail = sock.recv(waiting, socket.MSG_PEEK)[-6:]
    return tail[:5] == _READY_FOR_QUERY


def steady_loop() -> asyncio.AbstractEventLoop:
    """An event loop on :class:`SteadySelector`; psycopg's busy-time clock frozen."""
    from psycopg import waiting

    frozen = time.monotonic()
    waiting.monotonic = lambda: frozen  # type: ignore[attr-defined]
    selector = SteadySelector()
    loop = asyncio.SelectorEventLoop(selector)
    selector.ignored.add(loop._ssock.fileno())  # type: ignore[attr-defined]
    return loop


def session_name(kind: str, pool_mode: str) -> str:
    return f"{kind}-{pool_mode}"


async def open_and_warm_up(
    dsn: str, what: str, pool_mode: str
) -> tuple[AsyncConnectionPool[Any], Callable[[], Awaitable[Any]]]:
    """A pool of one connection and the turn to count, after 20 turns of warm-up."""
    from agentcore import PostgresHistoryRepository

    kwargs = {"autocommit": True} if pool_mode == "autocommit" else {}
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, min_size=1, max_size=1, kwargs=kwargs, open=False
    )
    await pool.open(wait=True)
    selector = getattr(asyncio.get_running_loop(), "_selector", None)
    if isinstance(selector, SteadySelector):
        selector.armed = True
    repo = PostgresHistoryRepository(pool)
    turn = _turn(what, repo, pool, session_name(what, pool_mode))
    for _ in range(WARM_UP):
        await turn()
    return pool, turn


async def repeat(turn: Callable[[], Awaitable[Any]], count: int) -> None:
    for _ in range(count):
        await turn()


def _turn(what: str, repo: Any, pool: AsyncConnectionPool[Any], session: str) -> Any:
    if what == "load":
        return lambda: repo.load_history(AGENT_NAME, "load", 20)
    if what in ("turn", "repository"):

        async def repository_turn() -> None:
            await repo.load_history(AGENT_NAME, session, 20)
            await repo.append_messages(AGENT_NAME, session, TURN)

        return repository_turn
    if what == "agent":
        from agentcore import Agent, AgentConfig
        from agentcore.offline_models import EchoModel

        config = AgentConfig(name=AGENT_NAME, include_history=True, history_limit=20)
        agent = Agent(config, EchoModel(), repo)
        return lambda: agent.execute_agent(TURN[0]["content"], session_id=session)
    if what == "narrow":
        from bench.contenders import NarrowTurn, bench_queries

        narrow = NarrowTurn(pool, AGENT_NAME, bench_queries())
        return lambda: narrow(session, 0)
    raise ValueError(f"unknown turn kind {what!r}")


async def seed(dsn: str) -> None:
    from agentcore import PostgresHistoryRepository
    from bench.contenders import bench_queries

    sql = bench_queries()
    async with PostgresHistoryRepository.from_dsn(dsn) as repo:
        await repo.clear_session(AGENT_NAME, "load")
        await repo.append_messages(AGENT_NAME, "load", MESSAGES)
    async with await _admin(dsn) as conn:
        await conn.execute(sql["narrow_create_table"].text)
        await conn.execute(sql["narrow_create_index"].text)


async def _admin(dsn: str) -> Any:
    import psycopg

    return await psycopg.AsyncConnection.connect(dsn, autocommit=True)


async def empty(dsn: str, what: str, pool_mode: str) -> None:
    """Remove the conversation a counted run writes to, so every run starts alike."""
    session = session_name(what, pool_mode)
    async with await _admin(dsn) as conn:
        for query in (
            "DELETE FROM conversation_history WHERE agent_name = %s AND session_id = %s",
            "DELETE FROM conversation_sessions WHERE agent_name = %s AND session_id = %s",
            "DELETE FROM bench_narrow_history WHERE agent_name = %s AND session_id = %s",
        ):
            await conn.execute(query, (AGENT_NAME, session))


def instructions(
    source: Path, dsn: str, count: int, what: str = "load", pool_mode: str = "autocommit"
) -> tuple[int, int]:
    """``(instructions, late replies)`` of one process running ``count`` turns after warm-up."""
    asyncio.run(empty(dsn, what, pool_mode))
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--instr-atstart=no",  # see _instrument: start-up runs about 4x faster
            "--collect-atstart=no",
            f"--toggle-collect={COUNTED}",
            f"--toggle-collect={UNCOUNTED}",
            sys.executable,
            "-m",
            "bench.load_cpu",
            "--run",
            dsn,
            str(count),
            what,
            pool_mode,
        ],
        env={"PYTHONPATH": f"{source}:{ROOT}", "PYTHONHASHSEED": "0", _INSTRUMENT: "1"},
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(done.stdout + done.stderr[-3000:])
    found = re.search(r"Collected : (\d+)", done.stderr)
    late = re.search(r"late replies: (\d+)", done.stdout)
    assert found and late, done.stderr + done.stdout
    if not int(found.group(1)):
        raise RuntimeError(
            f"callgrind counted nothing: {sys.executable} does not call {COUNTED} "
            "where the harness expects (see _Region)"
        )
    return int(found.group(1)), int(late.group(1))


_INSTRUMENT = "AGENTCORE_CALLGRIND_INSTRUMENT"


def _instrument() -> None:
    """Switch callgrind's instrumentation on, in this process, which it watches.

    :func:`instructions` starts valgrind with ``--instr-atstart=no``: the
    interpreter's start-up, the imports, the connection and the warm-up run
    uninstrumented (about four times valgrind's minimum slowdown instead of
    fifty), and nothing of them was counted anyway (collection is toggled by
    :data:`COUNTED`). ``callgrind_control`` reaches this process through
    valgrind's gdbserver, which polls between basic blocks: the wait for it
    spins, so that no blocking system call needs ``ptrace`` to be interrupted.
    The count inside :data:`COUNTED` is the same within the spread between
    two runs (``--turns --loads 5 --runs 2``: 1,260,704 and 1,264,730 with an
    instrumented start-up, 1,263,697 and 1,268,455 with this; 42 s and 15 s).
    """
    control = subprocess.Popen(
        ["callgrind_control", "--instr=on", str(os.getpid())],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    while control.poll() is None:
        pass
    said = control.stdout.read() if control.stdout else ""
    if control.returncode or "OK" not in said:
        raise RuntimeError(f"callgrind_control --instr=on failed: {said.strip()}")


def run_counted(dsn: str, count: int, what: str, pool_mode: str, profile: bool = False) -> None:
    """The body of ``--run``: warm up, then ``count`` turns inside ``operator.imatmul``.

    Callgrind collects only inside :data:`COUNTED` (``--toggle-collect``),
    which nothing else calls: start-up, imports, the pool's connection and the
    warm-up are not counted at all.
    """
    loop = steady_loop()
    selector: SteadySelector = loop._selector  # type: ignore[attr-defined]
    try:
        pool, turn = loop.run_until_complete(open_and_warm_up(dsn, what, pool_mode))
        if os.environ.get(_INSTRUMENT):
            _instrument()
        gc.collect()  # the collector's counters start alike in every run
        gc.freeze()
        sys._clear_type_cache()
        if profile:
            profiler = cProfile.Profile(time.process_time)
            profiler.runcall(loop.run_until_complete, repeat(turn, count))
            stats = pstats.Stats(profiler)
            stats.sort_stats("tottime").print_stats(40)
        else:
            selector.counting = True
            # typeshed leaves _operator untyped; the counted region is this very call.
            operator.imatmul(  # type: ignore[no-untyped-call]
                _Region(loop.run_until_complete), repeat(turn, count)
            )
            selector.counting = False
        loop.run_until_complete(pool.close())
    finally:
        loop.close()
    print(f"late replies: {selector.late}")


def per_turn(source: Path, dsn: str, count: int, what: str, pool_mode: str) -> tuple[float, int]:
    """Instructions per turn (over ``count`` turns) and the late replies."""
    counted, late = instructions(source, dsn, count, what, pool_mode)
    return counted / count, late


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load_cpu",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--ref",
        action="append",
        default=[],
        help="also count agentcore at this git commit, first (repeatable, in order)",
    )
    parser.add_argument("--loads", type=int, default=200, help="turns (or loads) counted")
    parser.add_argument("--turns", action="store_true", help="count whole turns, not loads")
    parser.add_argument("--kind", choices=KINDS, default="repository", help="with --turns")
    parser.add_argument(
        "--default-pool", action="store_true", help="a pool not in autocommit (with --turns)"
    )
    parser.add_argument("--runs", type=int, default=1, help="count each tree this many times")
    parser.add_argument("--run", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        run_counted(args.run[0], int(args.run[1]), args.run[2], args.run[3])
        return 0
    what = args.kind if args.turns else "load"
    pool_mode = "default" if args.default_pool else "autocommit"
    unit = (
        f"{what} turn (load 20 + append 2, {pool_mode} pool)"
        if args.turns
        else "load of 20 messages"
    )

    from agentcore import embedded, migrations

    with tempfile.TemporaryDirectory(prefix="agentcore-load-cpu-") as tmp:
        trees: list[tuple[str, Path]] = []
        for ref in args.ref:
            old = Path(tmp) / ref
            old.mkdir()
            archive = subprocess.run(
                ["git", "archive", ref, "agentcore", "sql"],
                cwd=ROOT,
                capture_output=True,
                check=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
            trees.append((ref, old))
        trees.append(("this tree", ROOT))
        Path(tmp).chmod(0o711)  # as root, the server's account passes through it
        server = embedded.start(Path(tmp) / "pgdata", throwaway=True)
        try:
            migrations.apply(server.dsn)
            asyncio.run(seed(server.dsn))
            for label, source in trees:
                for _ in range(args.runs):
                    count, late = per_turn(source, server.dsn, args.loads, what, pool_mode)
                    print(
                        f"{label}: {count:,.0f} client instructions per {unit}"
                        + (f" ({late} late replies: may differ)" if late else ""),
                        flush=True,
                    )
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
