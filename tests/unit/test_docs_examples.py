"""Every ```python block in the docs runs, and prints what the ```text block after it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[2] / "docs"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```\n", re.DOTALL | re.MULTILINE)


def examples(path: Path) -> list[tuple[str, str | None]]:
    """The python blocks of a markdown file, each with the text block right after it."""
    text = path.read_text()
    blocks = [(m.group(1), m.group(2), m.start(), m.end()) for m in BLOCK.finditer(text)]
    found = []
    for index, (language, code, _, end) in enumerate(blocks):
        if language != "python":
            continue
        expected = None
        if index + 1 < len(blocks):
            next_language, next_code, next_start, _ = blocks[index + 1]
            if next_language == "text" and not text[end:next_start].strip():
                expected = next_code
        found.append((code, expected))
    return found


CASES = [
    pytest.param(path, number, code, expected, id=f"{path.name}-{number}")
    for path in sorted(DOCS.glob("*.md"))
    for number, (code, expected) in enumerate(examples(path), start=1)
]


def test_the_custom_workflows_guide_has_runnable_examples() -> None:
    assert len(examples(DOCS / "custom-workflows.md")) >= 3


@pytest.mark.parametrize(("path", "number", "code", "expected"), CASES)
def test_docs_example_runs_and_prints_what_the_docs_say(
    path: Path, number: int, code: str, expected: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    exec(compile(code, f"{path.name} example {number}", "exec"), {"__name__": "__main__"})
    if expected is not None:
        assert capsys.readouterr().out == expected
