"""The suite on several workers (pytest-xdist) keeps what it checks on one.

One pytest subprocess with ``-n 2`` runs a few tests written into ``tmp_path``
whose conftest is the suite's own (tests/conftest.py): a test leaves a scratch
directory behind, tests add reliability figures, and a file is one of
``ONE_WORKER``'s. No PostgreSQL; not a unit test only because it is slow (two
workers start, each importing the suite's plumbing).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = """
from tests.conftest import *  # the suite's own hooks and fixtures
from tests.conftest import ONE_WORKER

ONE_WORKER["test_grouped.py"] = "test_parallel_runs.py: its tests must share a worker"
"""

LEAVES = """
from pathlib import Path

from tests.support import CREATED_DIRS


def test_makes_a_folder_and_forgets_it() -> None:
    path = Path({left!r})
    path.mkdir()
    CREATED_DIRS.append(path)
"""

COUNTS = """
import os

import pytest

from tests.support import FIGURES


@pytest.mark.parametrize("case", range(6))
def test_counts(case: int) -> None:
    FIGURES["cases counted"] += 1
    FIGURES[f"case {case}"] += case
    FIGURES["cases on " + os.environ["PYTEST_XDIST_WORKER"]] += 1
"""

GROUPED = """
import os
import time

import pytest


@pytest.mark.parametrize("case", range(8))
def test_grouped(case: int) -> None:
    time.sleep(0.1)  # the other worker is free meanwhile: the next case could go there
    with open({record!r}, "a") as file:
        file.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
"""


def test_two_workers_add_up_figures_share_a_group_and_fail_on_a_left_folder(
    tmp_path: Path,
) -> None:
    left, record = tmp_path / "left-by-a-worker", tmp_path / "grouped-workers.txt"
    files = {
        "conftest.py": CONFTEST,
        "pytest.ini": "[pytest]\naddopts = -p no:cacheprovider\n"
        "asyncio_default_fixture_loop_scope = function\n",
        "test_counts.py": COUNTS,
        "test_grouped.py": GROUPED.format(record=str(record)),
        "test_leaves.py": LEAVES.format(left=str(left)),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", f"--basetemp={tmp_path / 'base'}"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    # Every test passed, yet the run fails: a worker left a scratch directory.
    assert "15 passed" in output, output
    assert done.returncode == 1, output
    assert f"scratch directories left behind: {left}" in output, output
    # The controller's summary adds up both workers' figures.
    assert "agentcore reliability figures" in output, output
    assert "cases counted: 6" in output and "case 5: 5" in output, output
    assert "cases on gw0: " in output and "cases on gw1: " in output, output
    # A file of ONE_WORKER ran on one worker.
    workers = record.read_text(encoding="utf-8").split()
    assert len(workers) == 8 and len(set(workers)) == 1, workers


def test_the_longest_files_are_collected_first() -> None:
    """So that on several workers they start at once (tests/conftest.py, LONGEST_FIRST).

    The files are given in the opposite order, two ordinary ones first.
    """
    from tests.conftest import LONGEST_FIRST

    ordinary = ["tests/unit/test_ports.py", "tests/integration/test_smoke.py"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         *ordinary, *reversed(LONGEST_FIRST)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if "::" in line]
    files = list(dict.fromkeys(line.split("::")[0] for line in lines))
    assert files == [*LONGEST_FIRST, *ordinary]
