"""Count what a piece of code sends to PostgreSQL, from libpq's protocol trace.

The trace is libpq's own record of every protocol message on a connection, so
the counts are exact (pg_stat_statements is not shipped with the embedded
server's wheel). A *statement* is an ``Execute`` message (extended protocol)
or a simple ``Query`` message (psycopg sends ``BEGIN``/``COMMIT`` that way).
A *round trip* is a ``ReadyForQuery`` reply from the server: the client waits
for one after every ``Sync`` (or simple ``Query``), and a pipeline of several
statements followed by one ``Sync`` gets exactly one.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from psycopg import pq


@dataclass
class WireCount:
    """Protocol messages seen on one connection while tracing."""

    frontend: Counter[str] = field(default_factory=Counter)
    backend: Counter[str] = field(default_factory=Counter)
    text: str = ""
    """The trace itself (the messages and their contents)."""

    @property
    def statements(self) -> int:
        """Statements the client asked the server to run."""
        return self.frontend["Execute"] + self.frontend["Query"]

    @property
    def round_trips(self) -> int:
        """Times the client waited for the server to be ready again."""
        return self.backend["ReadyForQuery"]

    @property
    def syncs(self) -> int:
        """Sync messages sent (one per pipeline or per extended-protocol call)."""
        return self.frontend["Sync"]

    def add(self, other: WireCount) -> None:
        """Accumulate another count into this one."""
        self.frontend.update(other.frontend)
        self.backend.update(other.backend)


def parse_trace(text: str) -> WireCount:
    """Count the messages in a libpq trace (timestamps suppressed)."""
    count = WireCount()
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        direction, message = parts[0], parts[2].split(" ", 1)[0]
        if direction == "F":
            count.frontend[message] += 1
        elif direction == "B":
            count.backend[message] += 1
    return count


@contextmanager
def traced(pgconn: pq.abc.PGconn) -> Iterator[WireCount]:
    """Trace ``pgconn`` for the duration of the block; the count fills in at exit.

    Args:
        pgconn: A libpq connection (``psycopg_connection.pgconn``). Tracing
            follows the connection, including while it sits in a pool.
    """
    count = WireCount()
    fd, path = tempfile.mkstemp(prefix="agentcore-wire-", suffix=".trace")
    try:
        pgconn.trace(fd)
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield count
        finally:
            pgconn.untrace()
        with open(path, encoding="utf-8", errors="replace") as trace:
            count.text = trace.read()
        count.add(parse_trace(count.text))
    finally:
        os.close(fd)
        os.unlink(path)


def describe(count: WireCount) -> dict[str, Any]:
    """A JSON-ready summary of a count."""
    return {
        "statements": count.statements,
        "round_trips": count.round_trips,
        "syncs": count.syncs,
        "frontend": dict(count.frontend),
        "backend": dict(count.backend),
    }
