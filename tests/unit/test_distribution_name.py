"""The distribution name is free on the package index, and every install hint uses it.

``agentcore`` on the package index is an unrelated project: a hint such as
``pip install 'agentcore[embedded]'`` would install that. agentcore is
distributed as ``agentcore-history`` (import package and command stay
``agentcore``); hints name it, or ``.`` for a checkout.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from agentcore.errors import DISTRIBUTION_NAME, MissingDependencyError

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
HINT = re.compile(r"""pip install\s+(?:-e\s+)?['"]?(?P<name>[\w.\-]+)\[(?P<extras>[\w,]+)\]""")
SELF_WITH_EXTRAS = re.compile(r"(?<![\w-])agentcore\[")
TEXTS = [
    ROOT / "README.md",
    ROOT / "run.py",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "agentcore").rglob("*.py")),
]


def test_the_distribution_is_not_the_unrelated_agentcore() -> None:
    assert PYPROJECT["project"]["name"] == DISTRIBUTION_NAME == "agentcore-history"
    assert PYPROJECT["project"]["scripts"] == {"agentcore": "agentcore.cli:main"}


def test_extras_refer_to_this_distribution() -> None:
    for extra, requirements in PYPROJECT["project"]["optional-dependencies"].items():
        for requirement in requirements:
            if requirement.startswith("agentcore"):
                assert requirement.startswith(f"{DISTRIBUTION_NAME}["), (extra, requirement)


def test_every_install_hint_names_this_distribution_or_a_checkout() -> None:
    wrong = []
    for path in TEXTS:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            names = [hint["name"] for hint in HINT.finditer(line)]
            if SELF_WITH_EXTRAS.search(line) or set(names) - {".", DISTRIBUTION_NAME}:
                wrong.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert wrong == []


def test_the_missing_extra_error_says_both_ways_to_install() -> None:
    message = str(MissingDependencyError.for_extra("the embedded database", "embedded"))
    assert "pip install 'agentcore-history[embedded]'" in message
    assert "pip install '.[embedded]'" in message
