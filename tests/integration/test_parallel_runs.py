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


CLUSTER_FILE = """
import os

import pytest


@pytest.mark.parametrize("case", range(4))
def test_on_the_cluster(case: int) -> None:
    with open({record!r}, "a") as file:
        file.write("file " + os.environ["PYTEST_XDIST_WORKER"] + "\\n")
"""

CLUSTER_PARAMS = """
import os
import time

import pytest


@pytest.mark.parametrize("target", ["postgres", "postgres-citus"])
@pytest.mark.parametrize("case", range(4))
def test_by_target(case: int, target: str) -> None:
    time.sleep(0.1)  # the other worker is free meanwhile: the next case could go there
    with open({record!r}, "a") as file:
        file.write(target + " " + os.environ["PYTEST_XDIST_WORKER"] + "\\n")
"""


def test_the_tests_on_the_citus_cluster_share_one_worker(tmp_path: Path) -> None:
    """A test_citus_*.py file and every postgres-citus case: one unit (tests/conftest.py,
    on_the_cluster), so that a run starts one Citus cluster, not one per worker."""
    record = tmp_path / "workers.txt"
    files = {
        "conftest.py": "from tests.conftest import *  # the suite's own hooks and fixtures\n",
        "pytest.ini": "[pytest]\naddopts = -p no:cacheprovider\n"
        "asyncio_default_fixture_loop_scope = function\n",
        "test_citus_something.py": CLUSTER_FILE.format(record=str(record)),
        "test_targets.py": CLUSTER_PARAMS.format(record=str(record)),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", f"--basetemp={tmp_path / 'base'}"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "12 passed" in output, output
    ran = [line.split() for line in record.read_text(encoding="utf-8").splitlines()]
    on_the_cluster = {worker for target, worker in ran if target in {"file", "postgres-citus"}}
    assert len(ran) == 12 and len(on_the_cluster) == 1, ran
    # The other cases are spread as usual: some ran on the other worker.
    assert {worker for target, worker in ran if target == "postgres"} - on_the_cluster, ran


def test_a_test_asking_for_the_cluster_elsewhere_is_refused(tmp_path: Path) -> None:
    """Outside the cluster's unit it would start a second cluster on another worker."""
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import *  # the suite's own hooks and fixtures\n", encoding="utf-8"
    )
    (tmp_path / "test_stray.py").write_text(
        "def test_stray(citus_cluster: object) -> None:\n    pass\n", encoding="utf-8"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "must be in a test_citus_*.py file or have a postgres-citus parameter" in output
    assert "test_stray.py::test_stray" in output, output


def test_the_longest_files_are_collected_first() -> None:
    """So that on several workers they start at once (tests/conftest.py, LONGEST_FIRST).

    The files are given in the opposite order, two ordinary ones first; the
    tests on the Citus cluster start at CITUS_SCOPE's rank, whatever their file.
    """
    from tests.conftest import CITUS_SCOPE, LONGEST_FIRST

    ordinary = ["tests/unit/test_ports.py", "tests/integration/test_smoke.py"]
    cluster = [
        "tests/integration/test_citus_router.py",
        "tests/integration/test_citus_migrations.py",
    ]
    files_first = [path for path in LONGEST_FIRST if path != CITUS_SCOPE]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         *ordinary, *cluster, *reversed(files_first)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if "::" in line]
    files = list(dict.fromkeys(line.split("::")[0] for line in lines))
    expected = [
        path for entry in LONGEST_FIRST for path in (cluster if entry == CITUS_SCOPE else [entry])
    ]
    assert files == [*expected, *ordinary]
