"""A test run leaves nothing behind in the temp directory.

Runs a small part of the suite in a subprocess whose temp directory
(``TMPDIR``) is a fresh empty folder, so that other test runs on the machine
cannot interfere: the part runs on two workers, as ``python3 run.py test``
runs the suite, and each starts its own embedded servers (the shared test
server, a private one) and uses the docs examples' data directories. The
folder must be empty afterwards. pytest's own ``tmp_path`` folders go to
``--basetemp`` elsewhere; they are pytest's business (removed after a passing
run, see ``tmp_path_retention_policy``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import scratch_dir

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_run_of_tests_using_every_kind_of_scratch_dir_leaves_the_temp_dir_empty() -> None:
    with scratch_dir("agentcore-tmpdir-") as tmpdir, scratch_dir("agentcore-basetemp-") as base:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTCORE_")}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-n",
                "2",  # as run.py test runs it: each worker starts its own servers
                f"--basetemp={base}",
                "tests/unit/test_docs_examples.py::test_docs_example_runs_and_prints_what_the_docs_say",
                "-k",
                "cli.md or getting-started",
                "tests/integration/test_faults.py::"
                "test_a_wrong_password_is_a_database_unavailable_error",
            ],
            cwd=ROOT,
            env=env | {"TMPDIR": str(tmpdir)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert " passed" in done.stdout.splitlines()[-1]
        # Not even a lock file or a runtime folder: agentcore keeps its start lock
        # beside each data directory, not in a folder shared by every run.
        assert [p.name for p in tmpdir.iterdir()] == []
