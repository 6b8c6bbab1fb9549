#!/usr/bin/env python3
"""The two quickstart commands: ``python3 run.py demo`` and ``python3 run.py test``.

Each one sets up what it needs on first use (a virtualenv in ``.venv`` with
agentcore installed in editable mode; the tests and the demo start their own
PostgreSQL from a wheel, so no system database is needed), then runs:

- ``demo``: the ``agentcore demo`` command on the embedded default database;
- ``test``: lint (ruff) and types (mypy --strict) of agentcore, its tests and
  its benchmarks, layering (import-linter) and the whole pytest suite. Extra
  arguments go to pytest.

Only the standard library is used here, so any Python 3.11+ can run it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
DISTRIBUTION = "agentcore-history"
EXTRAS = {"demo": "embedded", "test": "test"}
PROG = "python3 run.py"
"""How the user runs the demo from here; the demo names it in its "run it again" hint."""

USAGE = "usage: python3 run.py {demo,test} [arguments...]"
HELP = f"""{USAGE}

The two commands of agentcore's quickstart. On first use each one creates .venv
and installs agentcore in editable mode with what the command needs (about half
a minute); no PostgreSQL install is needed, a server ships as a wheel.

commands:
  demo   run `agentcore demo` on the embedded database: two sessions of one
         agent talk at the same time; run it again and both resume. Extra
         arguments go to `agentcore demo` (e.g. --dsn DSN).
  test   run ruff, mypy --strict and import-linter, then the whole test suite
         with pytest (ruff and mypy check agentcore/, tests/ and bench/).
         Extra arguments go to pytest, e.g.:
           python3 run.py test tests/unit -q
           python3 run.py test -k migrate -x

After the first run, the `agentcore` command itself is .venv/bin/agentcore
(see docs/cli.md).
"""


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - run.py may be started by an old python3
        sys.exit(f"agentcore needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if argv and argv[0] in ("-h", "--help", "help"):
        print(HELP, end="")
        return 0
    if not argv or argv[0] not in EXTRAS:
        given = f"unknown command {argv[0]!r}" if argv else "no command given"
        print(f"{USAGE}\nrun.py: error: {given}; see python3 run.py --help", file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_installed(EXTRAS[command])
    if command == "demo":
        return run([str(BIN / "agentcore"), "demo", *rest], env={"AGENTCORE_PROG": PROG})
    checks = [
        [str(PYTHON), "-m", "ruff", "check", "agentcore", "tests", "bench", "run.py"],
        [str(PYTHON), "-m", "mypy", "agentcore", "tests", "bench"],
        [str(BIN / "lint-imports")],
    ]
    for check in checks:
        if code := run(check):
            return code
    return run([str(PYTHON), "-m", "pytest", *rest])


def ensure_installed(extra: str) -> None:
    """Create .venv and install agentcore-history[extra] into it, unless already done."""
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
    started = time.monotonic()
    steps = install_steps(extra, terminal=sys.stdout.isatty(), stale=stale_distribution())
    for number, (what, command) in enumerate(steps, start=1):
        print(f"run.py: [{number}/{len(steps)}] {what} ...", flush=True)
        if run(command):
            sys.exit("run.py: installing dependencies failed (see the pip output above)")
    print(f"run.py: .venv is ready ({time.monotonic() - started:.0f} s)", flush=True)
    stamp.write_text(wanted)


def stale_distribution() -> bool:
    """Whether .venv holds agentcore under its old distribution name, ``agentcore``."""
    patterns = ("lib/python*/site-packages/agentcore-*.dist-info", "Lib/site-packages/agentcore-*")
    return any(any(VENV.glob(pattern)) for pattern in patterns)


def install_steps(
    extra: str, *, terminal: bool, stale: bool = False
) -> list[tuple[str, list[str]]]:
    """What to say and run to install agentcore-history[extra] into .venv.

    On a terminal pip shows its own progress (each package as it is collected,
    a progress bar while it downloads); elsewhere (CI logs) it stays quiet
    except for errors, and only these steps are printed. A .venv made before
    the distribution was renamed first loses the old ``agentcore`` one.
    """
    quiet = [] if terminal else ["-q"]
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", *quiet]
    uninstall = [str(PYTHON), "-m", "pip", "uninstall", "--yes", *quiet, "agentcore"]
    renamed = [("removing the old 'agentcore' distribution from .venv", uninstall)]
    return [
        *(renamed if stale else []),
        ("upgrading pip in .venv", [*pip, "--upgrade", "pip"]),
        (
            f"installing {DISTRIBUTION}[{extra}] and its dependencies into .venv "
            "(15-40 s the first time)",
            [*pip, "-e", f".[{extra}]"],
        ),
    ]


def run(command: list[str], env: dict[str, str] | None = None) -> int:
    return subprocess.call(command, cwd=ROOT, env={**os.environ, **(env or {})})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
