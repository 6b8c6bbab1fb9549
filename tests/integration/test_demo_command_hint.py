"""The demo's last line names the command that runs it again where the user stands,
on the same database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = Path(sys.executable).parent / "agentcore"


@pytest.mark.parametrize(
    ("command", "env", "again"),
    [
        ([str(INSTALLED)], {}, "agentcore demo"),
        ([sys.executable, "-m", "agentcore"], {}, "python -m agentcore demo"),
        ([str(INSTALLED)], {"AGENTCORE_PROG": "python3 run.py"}, "python3 run.py demo"),
    ],
    ids=["installed-command", "python-m", "through-run-py"],
)
def test_the_first_demo_run_names_the_command_that_works_here(
    database_dsn: str, command: list[str], env: dict[str, str], again: str
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AGENTCORE_")}
    done = subprocess.run(
        [*command, "demo", "--dsn", database_dsn],
        cwd=ROOT,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # Run as written, the command would miss the database --dsn named.
    assert done.stdout.splitlines()[-1] == (
        f"Run `{again}` again with the same --dsn: both sessions resume with what they remember."
    )


def test_with_the_database_in_the_environment_the_hint_works_as_written(
    database_dsn: str,
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AGENTCORE_")}
    done = subprocess.run(
        [str(INSTALLED), "demo"],
        cwd=ROOT,
        env=clean | {"AGENTCORE_DATABASE_URL": database_dsn},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        "Run `agentcore demo` again: both sessions resume with what they remember."
    )
