"""Smoke test of bench/load_cpu.py, the count of a turn's client instructions.

Not a performance test: it checks that every kind of turn runs under the
steady harness, and that two counts of the same code agree (the count this
tool replaced moved by a third between two runs; bench/NOTES.md).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys

import pytest

from bench import load_cpu


@pytest.mark.parametrize(
    ("kind", "pool"),
    [
        ("repository", "autocommit"),
        ("repository", "default"),
        ("agent", "default"),
        ("narrow", "autocommit"),
    ],
)
async def test_every_kind_of_turn_runs_on_the_steady_loop(
    database_dsn: str, kind: str, pool: str
) -> None:
    await load_cpu.seed(database_dsn)
    await load_cpu.empty(database_dsn, kind, pool)
    done = subprocess.run(
        [sys.executable, "-m", "bench.load_cpu", "--run", database_dsn, "3", kind, pool],
        cwd=load_cpu.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "late replies: " in done.stdout


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_two_counts_of_the_same_turn_agree(database_dsn: str) -> None:
    asyncio.run(load_cpu.seed(database_dsn))
    first, _ = load_cpu.per_turn(load_cpu.ROOT, database_dsn, 5, "repository", "autocommit")
    second, _ = load_cpu.per_turn(load_cpu.ROOT, database_dsn, 5, "repository", "autocommit")
    assert 100_000 < first < 20_000_000
    assert abs(first - second) / first < 0.02
