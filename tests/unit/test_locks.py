"""locks/ agrees with pyproject.toml: whatever run.py installs, a pin of the lock allows.

The locks are universal (one for every Python 3.11+ on Linux, macOS and Windows), so
each requirement is checked where its markers and the pins' markers apply, on each
of those platforms. An edit of pyproject.toml's dependencies without
``python3 run.py lock`` fails here, with that command in the message.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.unit.test_run_py import ROOT, load_run_py

RELOCK = "run `python3 run.py lock` and commit locks/ with pyproject.toml"
PYTHONS = ("3.11", "3.12", "3.13", "3.14")
PLATFORMS = {"linux": ("Linux", "posix"), "darwin": ("Darwin", "posix"), "win32": ("Windows", "nt")}
PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][\w.-]*)==(?P<version>[^\s;]+)(?: ; (?P<marker>.+?))?( \\)?$"
)


def environments() -> list[dict[str, str]]:
    here = {key: str(value) for key, value in default_environment().items()}
    return [
        {
            **here,
            "python_version": python,
            "python_full_version": f"{python}.0",
            "sys_platform": platform,
            "platform_system": system,
            "os_name": os_name,
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "extra": "",
        }
        for python in PYTHONS
        for platform, (system, os_name) in PLATFORMS.items()
    ]


def where(environment: dict[str, str]) -> str:
    return f"Python {environment['python_version']} on {environment['sys_platform']}"


class Lock:
    """A lock file's pins: name, version and the markers they apply under."""

    def __init__(self, path: Path) -> None:
        self.name = f"locks/{path.name}"
        self.pins: list[tuple[str, Version, Marker | None]] = []
        self.unhashed: list[str] = []
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if match := PIN.match(line):
                marker = match["marker"]
                self.pins.append(
                    (
                        canonicalize_name(match["name"]),
                        Version(match["version"]),
                        Marker(marker) if marker else None,
                    )
                )
                following = lines[number + 1] if number + 1 < len(lines) else ""
                if not following.lstrip().startswith("--hash=sha256:"):
                    self.unhashed.append(match["name"])

    def versions(self, name: str, environment: dict[str, str]) -> list[Version]:
        """The versions pinned for ``name`` where ``environment`` applies."""
        return [
            version
            for pinned, version, marker in self.pins
            if pinned == canonicalize_name(name)
            and (marker is None or marker.evaluate(environment))
        ]


def wanted(run_py: ModuleType, extra: str) -> list[tuple[str, Requirement]]:
    """What run.py installs for ``extra``, each with where it comes from."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = [("run.py's build_requirements()", Requirement(r)) for r in run_py.build_requirements()]
    found += [("pyproject.toml dependencies", Requirement(r)) for r in project["dependencies"]]
    extras, done = [extra], set()
    while extras:
        current = extras.pop()
        done.add(current)
        for text in project["optional-dependencies"][current]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == canonicalize_name(project["name"]):
                extras += [e for e in requirement.extras if e not in done]
            else:
                found.append((f"pyproject.toml extra {current!r}", requirement))
    return found


def disagreements(lock: Lock, requirements: list[tuple[str, Requirement]]) -> list[str]:
    """Each requirement the lock does not meet, once, with where if not everywhere."""
    found: dict[str, list[str]] = {}
    for environment in environments():
        for source, requirement in requirements:
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            versions = lock.versions(requirement.name, environment)
            if not versions:
                problem = f"{lock.name} pins no {requirement.name} ({source}: `{requirement}`)"
                found.setdefault(problem, []).append(where(environment))
            for version in versions:
                if not requirement.specifier.contains(version, prereleases=True):
                    problem = (
                        f"{lock.name} pins {requirement.name}=={version}, outside "
                        f"`{requirement}` ({source})"
                    )
                    found.setdefault(problem, []).append(where(environment))
    return [with_where(problem, places) for problem, places in found.items()]


def with_where(problem: str, places: list[str]) -> str:
    everywhere = len(places) == len(environments())
    return problem if everywhere else f"{problem}, for {', '.join(places)}"


RUN_PY = load_run_py()


@pytest.mark.parametrize("extra", sorted(RUN_PY.LOCK_FILES))
def test_each_lock_pins_what_pyproject_asks_for_its_extra(extra: str) -> None:
    lock = Lock(ROOT / "locks" / RUN_PY.LOCK_FILES[extra])
    problems = disagreements(lock, wanted(RUN_PY, extra))
    if problems:
        pytest.fail("\n".join([*problems, RELOCK]), pytrace=False)


def test_the_build_tools_and_uv_locks_pin_what_run_py_installs() -> None:
    build = [("run.py's build_requirements()", Requirement(r)) for r in RUN_PY.build_requirements()]
    uv = [("run.py's UV_REQUIREMENT", Requirement(RUN_PY.UV_REQUIREMENT))]
    problems = [
        *disagreements(Lock(ROOT / "locks" / RUN_PY.BUILD_LOCK), build),
        *disagreements(Lock(ROOT / "locks" / RUN_PY.UV_LOCK), uv),
    ]
    if problems:
        pytest.fail("\n".join([*problems, RELOCK]), pytrace=False)


def test_every_lock_pins_what_the_test_lock_pins_for_the_packages_they_share() -> None:
    test_lock = Lock(ROOT / "locks" / RUN_PY.LOCK_FILES["test"])
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "locks").glob("*.txt")):
        lock = Lock(path)
        if lock.name in (test_lock.name, f"locks/{RUN_PY.UV_LOCK}"):
            continue
        for environment in environments():
            for name in sorted({pinned for pinned, _, _ in lock.pins}):
                ours = [str(v) for v in lock.versions(name, environment)]
                theirs = [str(v) for v in test_lock.versions(name, environment)]
                if ours != theirs:
                    problem = f"{lock.name} pins {name} {ours}, {test_lock.name} {theirs}"
                    found.setdefault(problem, []).append(where(environment))
    if found:
        problems = [with_where(problem, places) for problem, places in found.items()]
        pytest.fail("\n".join([*problems, RELOCK]), pytrace=False)


@pytest.mark.parametrize("path", sorted((ROOT / "locks").glob("*.txt")), ids=lambda p: p.name)
def test_every_pin_carries_its_hashes(path: Path) -> None:
    lock = Lock(path)
    assert lock.pins, f"{lock.name}: no pins read (has uv's output format changed?)"
    assert lock.unhashed == [], f"{lock.name}: pins without --hash; {RELOCK}"
