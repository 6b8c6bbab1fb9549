#!/usr/bin/env python3
"""The two quickstart commands: ``python3 run.py demo`` and ``python3 run.py test``.

Each one sets up what it needs on first use (a virtualenv in ``.venv`` with
agentcore installed in editable mode; the tests and the demo start their own
PostgreSQL from a wheel, so no system database is needed), then runs:

- ``demo``: the ``agentcore demo`` command on the embedded default database;
- ``test``: lint (ruff), types (mypy --strict), layering (import-linter) and
  the whole pytest suite. Extra arguments go to pytest.

Only the standard library is used here, so any Python 3.11+ can run it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
EXTRAS = {"demo": "embedded", "test": "test"}


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - run.py may be started by an old python3
        sys.exit(f"agentcore needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not argv or argv[0] not in EXTRAS:
        sys.exit("usage: python3 run.py demo | test [pytest arguments...]")
    command, rest = argv[0], argv[1:]
    ensure_installed(EXTRAS[command])
    if command == "demo":
        return run([str(BIN / "agentcore"), "demo", *rest])
    checks = [
        [str(PYTHON), "-m", "ruff", "check", "agentcore", "tests", "bench", "run.py"],
        [str(PYTHON), "-m", "mypy", "agentcore"],
        [str(BIN / "lint-imports")],
    ]
    for check in checks:
        if code := run(check):
            return code
    return run([str(PYTHON), "-m", "pytest", *rest])


def ensure_installed(extra: str) -> None:
    """Create .venv and install agentcore[extra] into it, unless already done."""
    if not PYTHON.exists():
        print(f"run.py: creating {VENV.relative_to(ROOT)} ...", flush=True)
        try:
            venv.create(VENV, with_pip=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            sys.exit(
                f"run.py: could not create a virtualenv ({exc}). On Debian/Ubuntu install "
                "the venv module first: apt-get install python3-venv"
            )
    stamp = VENV / f".agentcore-{extra}"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    print(f"run.py: installing agentcore[{extra}] into .venv ...", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if run([*pip, "--upgrade", "pip"]) or run([*pip, "-e", f".[{extra}]"]):
        sys.exit("run.py: installing dependencies failed (see the pip output above)")
    stamp.write_text(wanted)


def run(command: list[str]) -> int:
    return subprocess.call(command, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
