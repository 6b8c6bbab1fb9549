#!/usr/bin/env python3
"""The two quickstart commands, ``python3 run.py demo`` and ``python3 run.py test``, and ``lock``.

Each quickstart command sets up what it needs on first use (a virtualenv in
``.venv`` holding exactly the packages pinned, with their hashes, in
``locks/``, and agentcore in editable mode; the tests and the demo start their
own PostgreSQL from a wheel, so no system database is needed), then runs:

- ``demo``: the ``agentcore demo`` command on the embedded default database;
- ``test``: lint (ruff) and types (mypy --strict) of agentcore, its tests and
  its benchmarks, layering (import-linter) and the whole pytest suite. Extra
  arguments go to pytest. ``test --newest`` does the same in ``.venv-newest``,
  installed from pyproject.toml's ranges at the newest releases;
- ``lock``: compiles the locks again with a pinned uv.

Only the standard library is used here, so any Python 3.11+ can run it.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
NEWEST = ROOT / ".venv-newest"
DISTRIBUTION = "agentcore-history"
EXTRAS = {"demo": "embedded", "test": "test"}
LOCKS = ROOT / "locks"
LOCK_FILES = {"embedded": "demo.txt", "test": "test.txt"}
"""The lock of each extra run.py installs, in locks/: every package, transitive ones
included, pinned with its hashes, for any Python 3.11+ on Linux, macOS and Windows."""
BUILD_LOCK = "build.txt"
"""pip and the build tools, installed first: the other locks' installs then run with this
pip and build their few sdists (agentcore itself, forbiddenfruit) without build isolation,
so no unpinned build tool is ever fetched."""
BUILD_TOOLS = ("pip", "editables~=0.3", "setuptools>=70.1")
"""With pyproject's [build-system] requires: the pip every install runs with; editables,
which hatchling asks for to build an editable install; setuptools, which builds
blockbuster's forbiddenfruit (an sdist only) and, from 70.1, wheels without `wheel`."""
UV_LOCK = "uv.txt"
UV_REQUIREMENT = "uv==0.13.9"
"""The uv that `python3 run.py lock` installs into .venv (from locks/uv.txt) to compile."""
INPUT_LABELS = {
    "build-tools.in": "run.py's build_requirements()",
    "uv.in": "run.py's UV_REQUIREMENT",
}
"""How a lock's annotations name the inputs run.py writes to a scratch folder."""
COMPILE = ["--universal", "--generate-hashes", "--python-version", "3.11", "--system-certs"]
"""One lock for every Python 3.11+ and platform; the trusted certificates are the
system's, as pip's are (a TLS-inspecting proxy's CA in the system store works for both)."""
COMPILE_HEADER = ["--custom-compile-command", "python3 run.py lock"]
PROG = "python3 run.py"
"""How the user runs the demo from here; the demo names it in its "run it again" hint."""

USAGE = "usage: python3 run.py {demo,test,lock} [arguments...]"
HELP = f"""{USAGE}

The two commands of agentcore's quickstart, and the one that refreshes their
locks. On first use demo and test create .venv and install into it what the
command needs, at the versions pinned (with hashes) in locks/, and agentcore in
editable mode (about a minute); no PostgreSQL install is needed, a server
ships as a wheel.

commands:
  demo   run `agentcore demo` on the embedded database: two sessions of one
         agent talk at the same time; run it again and both resume. Extra
         arguments go to `agentcore demo` (e.g. --dsn DSN).
  test   run ruff, mypy --strict and import-linter, then the whole test suite
         with pytest (ruff and mypy check agentcore/, tests/ and bench/).
         Extra arguments go to pytest, e.g.:
           python3 run.py test tests/unit -q
           python3 run.py test -k migrate -x
         The whole suite runs on pytest-xdist workers, twice the CPUs
         (-n 0: one process; -n N: N workers); see SUITE_DURATION below.
         test --quick is the edit loop (about a minute): ruff, the unit
         tests, the contract suite on the in-memory repository and a
         PostgreSQL smoke test; extra arguments go to pytest.
         test --newest runs the same in .venv-newest, installed afresh from
         pyproject.toml's ranges at today's newest releases instead of the
         locks: it tells whether the next `lock --upgrade` will pass, and may
         fail (never the default, nor CI's).
  lock   compile locks/ again after an edit of pyproject.toml's dependencies,
         keeping every pin that still fits (installs a pinned uv into .venv).
         Extra arguments go to `uv pip compile`, e.g.:
           python3 run.py lock --upgrade                 (everything newest)
           python3 run.py lock --upgrade-package ruff    (one package)

After the first run, the `agentcore` command itself is .venv/bin/agentcore
(see docs/cli.md; docs/testing.md tells more of the locks).
"""


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - run.py may be started by an old python3
        sys.exit(f"agentcore needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if argv and argv[0] in ("-h", "--help", "help"):
        print(HELP, end="")
        return 0
    if not argv or argv[0] not in (*EXTRAS, "lock"):
        given = f"unknown command {argv[0]!r}" if argv else "no command given"
        print(f"{USAGE}\nrun.py: error: {given}; see python3 run.py --help", file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "lock":
        return lock(rest)
    if command == "test" and rest[:1] == ["--newest"]:
        print("run.py: test --newest: the newest releases, not the locks (allowed to fail)")
        return run_checks(ensure_newest(), with_workers(rest[1:]))
    ensure_installed(EXTRAS[command])
    if command == "demo":
        return run([str(BIN / "agentcore"), "demo", *rest], env={"AGENTCORE_PROG": PROG})
    if rest[:1] == ["--quick"]:
        print(f"run.py: test --quick: {QUICK_SCOPE}; not the whole suite", flush=True)
        return run_checks(BIN, ["--quick", *rest[1:]], quick=True)
    if not rest:  # the whole suite: say what it costs before it starts
        print(f"run.py: {SUITE_DURATION}", flush=True)
    return run_checks(BIN, with_workers(rest))


QUICK_SCOPE = (
    "ruff, then the unit tests, the contract suite on the in-memory repository and a "
    "PostgreSQL smoke test (about a minute)"
)
SUITE_DURATION = (
    "the whole suite takes about 7 minutes on a 2-core machine with nothing else "
    "running (its frameworks' own suites, stress and hostile-input generators included), "
    "on twice as many pytest-xdist workers as CPUs; 15-20 minutes in one process (-n 0) "
    '(docs/testing.md, "Where the time goes"); `python3 run.py test --quick` is '
    "the edit loop"
)


def worker_count(cpus: int | None) -> int:
    """How many pytest-xdist workers ``test`` runs the suite on: twice the CPUs, at least 2.

    Much of the suite waits (on PostgreSQL, on subprocesses), so more workers
    than CPUs pay; docs/testing.md ("Where the time goes") has the measurements.
    """
    return max(2, 2 * (cpus or 1))


def with_workers(pytest_args: list[str]) -> list[str]:
    """``pytest_args`` with ``-n N`` (:func:`worker_count`) first, unless they choose.

    They choose with ``-n``/``--numprocesses`` (``-n 0``: no workers, one
    process), by leaving pytest-xdist out (``-p no:xdist``), or with ``--pdb``
    or ``--trace``, which need the tests in this process.
    """
    for arg in pytest_args:
        if arg in ("--pdb", "--trace", "no:xdist", "-pno:xdist") or arg.startswith(
            ("-n", "--numprocesses")
        ):
            return pytest_args
    return ["-n", str(worker_count(os.cpu_count())), *pytest_args]


def run_checks(bin_dir: Path, pytest_args: list[str], *, quick: bool = False) -> int:
    """ruff, mypy, import-linter, then pytest, each with the tools in ``bin_dir``.

    ``quick`` (the edit loop) runs ruff alone before pytest.
    """
    python = str(bin_dir / PYTHON.name)
    checks = [
        [python, "-m", "ruff", "check", "agentcore", "tests", "bench", "run.py"],
        [python, "-m", "mypy", "agentcore", "tests", "bench"],
        [str(bin_dir / "lint-imports")],
    ]
    for check in checks[:1] if quick else checks:
        if code := run(check):
            return code
    return run([python, "-m", "pytest", *pytest_args])


def create_venv(path: Path) -> None:
    """Create the virtualenv ``path`` unless it exists."""
    if (path / PYTHON.relative_to(VENV)).exists():
        return
    print(f"run.py: creating {path.relative_to(ROOT)} ...", flush=True)
    try:
        venv.create(path, with_pip=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(
            f"run.py: could not create a virtualenv ({exc}). On Debian/Ubuntu install "
            "the venv module first: apt-get install python3-venv"
        )


def ensure_installed(extra: str) -> None:
    """Bring .venv to the lock of agentcore-history[extra], unless already done.

    The stamp holds a hash of pyproject.toml and the locks installed from, so an
    edit of either (a `git pull`, `run.py lock`) installs again; pip then moves
    each package to its pinned version, whatever the .venv held before.
    """
    create_venv(VENV)
    stamp = VENV / f".agentcore-{extra}"
    wanted = install_fingerprint(extra)
    if stamp.exists() and stamp.read_text() == wanted:
        return
    started = time.monotonic()
    steps = install_steps(extra, terminal=sys.stdout.isatty(), stale=stale_distribution())
    for number, (what, command) in enumerate(steps, start=1):
        print(f"run.py: [{number}/{len(steps)}] {what} ...", flush=True)
        if run(command):
            sys.exit("run.py: installing dependencies failed (see the pip output above)")
    print(f"run.py: .venv is ready ({time.monotonic() - started:.0f} s)", flush=True)
    if extra_packages := unlocked_packages():
        print(
            "run.py: note: .venv also holds packages no lock lists, left by an earlier "
            f"install: {', '.join(extra_packages)}. For a .venv with exactly the locked "
            "packages, remove .venv and run this again.",
            flush=True,
        )
    stamp.write_text(wanted)


def install_fingerprint(extra: str) -> str:
    """A hash of what an install of ``extra`` is made from: pyproject.toml and its locks."""
    digest = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", LOCKS / BUILD_LOCK, LOCKS / LOCK_FILES[extra]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def site_packages(venv_dir: Path) -> list[Path]:
    return [*venv_dir.glob("lib/python*/site-packages"), *venv_dir.glob("Lib/site-packages")]


def stale_distribution() -> bool:
    """Whether .venv holds agentcore under its old distribution name, ``agentcore``."""
    return any(any(site.glob("agentcore-*.dist-info")) for site in site_packages(VENV))


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_names() -> set[str]:
    """The name of every package any lock in locks/ pins."""
    pin = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", re.MULTILINE)
    return {
        normalized(name)
        for lock_file in LOCKS.glob("*.txt")
        for name in pin.findall(lock_file.read_text(encoding="utf-8"))
    }


def unlocked_packages() -> list[str]:
    """Packages in .venv that no lock lists (an install only adds and moves packages)."""
    locked = locked_names() | {DISTRIBUTION}
    installed = {
        normalized(info.name.split("-")[0])
        for site in site_packages(VENV)
        for info in site.glob("*.dist-info")
    }
    return sorted(installed - locked)


def install_steps(
    extra: str, *, terminal: bool, stale: bool = False
) -> list[tuple[str, list[str]]]:
    """What to say and run to install agentcore-history[extra] into .venv from its lock.

    On a terminal pip shows its own progress (each package as it is collected,
    a progress bar while it downloads); elsewhere (CI logs) it stays quiet
    except for errors, and only these steps are printed. A .venv made before
    the distribution was renamed first loses the old ``agentcore`` one.

    Every package comes from a lock with its hashes; the build tools come first
    (wheels only), so the sdists after them build without fetching anything.
    """
    quiet = [] if terminal else ["-q"]
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", *quiet]
    locked = [*pip, "--require-hashes", "-r"]
    uninstall = [str(PYTHON), "-m", "pip", "uninstall", "--yes", *quiet, "agentcore"]
    renamed = [("removing the old 'agentcore' distribution from .venv", uninstall)]
    lock_file = LOCK_FILES[extra]
    return [
        *(renamed if stale else []),
        (
            f"installing pip and the build tools of locks/{BUILD_LOCK} into .venv",
            [*locked, f"locks/{BUILD_LOCK}", "--only-binary", ":all:"],
        ),
        (
            f"installing the dependencies of {DISTRIBUTION}[{extra}] locked in "
            f"locks/{lock_file} into .venv (about a minute the first time)",
            [*locked, f"locks/{lock_file}", "--no-build-isolation"],
        ),
        (
            f"installing {DISTRIBUTION} itself in editable mode",
            [*pip, "--no-deps", "--no-build-isolation", "-e", "."],
        ),
    ]


def ensure_newest() -> Path:
    """.venv-newest with agentcore-history[test] at the newest releases pyproject allows.

    Upgraded on every run (eagerly: every dependency, not only the direct ones),
    since the point is today's releases; returns its scripts folder.
    """
    create_venv(NEWEST)
    bin_dir = NEWEST / BIN.name
    pip = [str(bin_dir / PYTHON.name), "-m", "pip", "install", "--disable-pip-version-check"]
    steps = [
        ("upgrading pip in .venv-newest", [*pip, "-q", "--upgrade", "pip"]),
        (
            f"installing {DISTRIBUTION}[test] at the newest releases into .venv-newest",
            [*pip, "-q", "--upgrade", "--upgrade-strategy", "eager", "-e", ".[test]"],
        ),
    ]
    for number, (what, command) in enumerate(steps, start=1):
        print(f"run.py: [{number}/{len(steps)}] {what} ...", flush=True)
        if run(command):
            sys.exit("run.py: installing the newest releases failed (see pip's output above)")
    return bin_dir


def lock(uv_args: list[str]) -> int:
    """Compile locks/ again with the uv of locks/uv.txt; ``uv_args`` go to each compile."""
    create_venv(VENV)
    print(f"run.py: installing {UV_REQUIREMENT} of locks/{UV_LOCK} into .venv ...", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if run([*pip, "--require-hashes", "--only-binary", ":all:", "-r", f"locks/{UV_LOCK}"]):
        return 1
    with tempfile.TemporaryDirectory() as scratch:
        inputs = Path(scratch)
        (inputs / "build-tools.in").write_text("\n".join(build_requirements()) + "\n")
        (inputs / "uv.in").write_text(UV_REQUIREMENT + "\n")
        for what, command in lock_commands(inputs, uv_args):
            print(f"run.py: compiling {what} ...", flush=True)
            if code := run(command):
                return code
            output = ROOT / what
            text = output.read_text(encoding="utf-8")
            for name, label in INPUT_LABELS.items():
                text = text.replace(f"-r {inputs / name}", label)
            output.write_text(text, encoding="utf-8")
    print("run.py: locks/ compiled; commit them with pyproject.toml", flush=True)
    return 0


def build_requirements() -> list[str]:
    """What building agentcore and the lock's sdists takes: pyproject's, and BUILD_TOOLS."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [*pyproject["build-system"]["requires"], *BUILD_TOOLS]


def lock_commands(inputs: Path, uv_args: list[str]) -> list[tuple[str, list[str]]]:
    """Each lock and the ``uv pip compile`` that makes it; the others keep the test lock's pins."""
    build_in, uv_in = str(inputs / "build-tools.in"), str(inputs / "uv.in")
    uv = [str(BIN / "uv"), "pip", "compile", "-q", *COMPILE, *COMPILE_HEADER, *uv_args]
    test_lock = f"locks/{LOCK_FILES['test']}"
    sources = {
        **{
            f"locks/{lock_file}": ["pyproject.toml", build_in, "--extra", extra]
            for extra, lock_file in LOCK_FILES.items()
        },
        f"locks/{BUILD_LOCK}": [build_in],
    }
    return [
        (test_lock, [*uv, *sources.pop(test_lock), "-o", test_lock]),
        *[(lock, [*uv, *source, "-c", test_lock, "-o", lock]) for lock, source in sources.items()],
        (f"locks/{UV_LOCK}", [*uv, uv_in, "-o", f"locks/{UV_LOCK}"]),
    ]


def run(command: list[str], env: dict[str, str] | None = None) -> int:
    return subprocess.call(command, cwd=ROOT, env={**os.environ, **(env or {})})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
