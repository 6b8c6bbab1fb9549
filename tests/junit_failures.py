"""The failed tests of a pytest JUnit XML report, each with a one-line reason.

A framework's own suite runs in a subprocess (tests/integration/test_framework_suites.py);
when some of its tests fail, its report says which and why in a few lines instead of
the tail of pytest's output.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REASON_WIDTH = 160
_PHASE = re.compile(r'failed on (?P<phase>setup|teardown) with "(?P<reason>.*)"', re.DOTALL)


@dataclass(frozen=True)
class FailedTest:
    node_id: str  # as pytest takes it on the command line, relative to the suite's root
    reason: str  # one line: the exception and its message, or the assertion


def failed_tests(junit: Path, root: Path) -> list[FailedTest]:
    """Every test of ``junit`` that failed or errored, in the report's order.

    Args:
        junit: a report written by ``pytest --junitxml``.
        root: the folder pytest ran in, which its test files' paths are relative to.
    """
    found = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        for outcome in ("failure", "error"):
            element = case.find(outcome)
            if element is not None:
                node_id = _node_id(case.get("classname", ""), case.get("name", ""), root)
                found.append(FailedTest(node_id, _reason(element)))
    return found


def failure_summary(
    title: str, failed: list[FailedTest], log: Path, *, per_reason: int = 3, reasons: int = 4
) -> str:
    """A few lines: ``title``, then each reason with how many tests and which (a few).

    A broken dependency fails dozens of tests for one reason: the reasons come most
    common first, each with its first ``per_reason`` tests, at most ``reasons`` of them.
    """
    lines = [title]
    grouped: dict[str, list[str]] = {}
    for test in failed:
        grouped.setdefault(test.reason, []).append(test.node_id)
    ranked = sorted(grouped.items(), key=lambda item: -len(item[1]))
    for reason, node_ids in ranked[:reasons]:
        lines.append(f"{len(node_ids)} x {reason}")
        lines += [f"    {node_id}" for node_id in node_ids[:per_reason]]
        if len(node_ids) > per_reason:
            lines.append(f"    ...and {len(node_ids) - per_reason} more")
    if rest := ranked[reasons:]:
        count = sum(len(node_ids) for _, node_ids in rest)
        lines.append(f"...and {count} more tests, failed for {len(rest)} other reasons")
    lines.append(f"every failed test and pytest's whole output: {log}")
    return "\n".join(lines)


def _node_id(classname: str, name: str, root: Path) -> str:
    """``tests.memory.test_x.TestY`` and ``test_z`` -> ``tests/memory/test_x.py::TestY::test_z``."""
    parts = classname.split(".")
    for end in range(len(parts), 0, -1):
        path = "/".join(parts[:end]) + ".py"
        if (root / path).is_file():
            return "::".join([path, *parts[end:], name])
    return "::".join([classname, name])


def _reason(element: ET.Element) -> str:
    """The first line of the failure's message (pytest's ``E`` line where it has none)."""
    message = element.get("message", "").strip()
    if not message:
        caught = [line for line in (element.text or "").splitlines() if line.startswith("E ")]
        message = caught[0][1:].strip() if caught else element.get("type", "failed")
    if phase := _PHASE.fullmatch(message):
        message = f"{phase['reason']} (in {phase['phase']})"
    first = message.splitlines()[0]
    return first if len(first) <= REASON_WIDTH else first[: REASON_WIDTH - 3] + "..."
