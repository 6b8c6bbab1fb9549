"""Every runnable block in docs/*.md is executed, and its shown output is checked.

The convention (also described in docs/testing.md):

- A ```python block runs as a script of its own. When a ```text block follows it
  directly, that is what the script must print, exactly.
- A ```console block holds ``$ agentcore ...`` command lines, each followed by its
  output. The commands run in order through ``agentcore.cli.main``; each one must
  exit 0 and print the lines shown, where a line ``...`` stands for any number of
  lines and ``...`` within a line for any text (a time, a path).
  Any other ``$`` command in a console block is an error.
- Both run with ``AGENTCORE_DATABASE_URL`` set to a fresh, migrated database of the
  test server (one per block) and ``AGENTCORE_DATA_DIR`` set to a temp dir. A python
  block gets the database only when it mentions ``AGENTCORE_DATABASE_URL``. An
  embedded server a block starts in that temp dir is stopped after it.
- An HTML comment ``<!-- no-test -->`` on the line right before a block's fence
  marks it as shown only. Blocks in any other language (``bash``, ``text``, none)
  are never run.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentcore import embedded
from agentcore.cli import main
from tests.support import scratch_dir

DOCS = Path(__file__).parents[2] / "docs"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```\n", re.DOTALL | re.MULTILINE)
NO_TEST = "<!-- no-test -->"
DATABASE_ENV = "AGENTCORE_DATABASE_URL"


@dataclass(frozen=True)
class Example:
    language: str
    code: str
    expected: str | None
    skipped: bool


def examples(path: Path) -> list[Example]:
    """The python and console blocks of a markdown file, in order."""
    text = path.read_text()
    blocks = [(m.group(1), m.group(2), m.start(), m.end()) for m in BLOCK.finditer(text)]
    found = []
    for index, (language, code, start, end) in enumerate(blocks):
        if language not in ("python", "console"):
            continue
        expected = None
        if language == "python" and index + 1 < len(blocks):
            next_language, next_code, next_start, _ = blocks[index + 1]
            if next_language == "text" and not text[end:next_start].strip():
                expected = next_code
        skipped = text[:start].rstrip().endswith(NO_TEST)
        found.append(Example(language, code, expected, skipped))
    return found


CASES = [
    pytest.param(example, id=f"{path.name}-{number}-{example.language}")
    for path in sorted(DOCS.glob("*.md"))
    for number, example in enumerate(examples(path), start=1)
    if not example.skipped
]


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(DATABASE_ENV, raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with scratch_dir("agentcore-docs-") as data_dir:
        monkeypatch.setenv("AGENTCORE_DATA_DIR", str(data_dir))
        try:
            yield
        finally:
            # An example may start the embedded server of its data directory.
            embedded.stop(data_dir / "pgdata")


def test_the_guides_have_runnable_examples() -> None:
    assert len(examples(DOCS / "custom-workflows.md")) >= 3
    for guide in ("getting-started.md", "concepts.md", "testing.md", "cli.md"):
        assert any(not e.skipped for e in examples(DOCS / guide)), guide


@pytest.mark.parametrize("example", CASES)
def test_docs_example_runs_and_prints_what_the_docs_say(
    example: Example,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if example.language == "console" or DATABASE_ENV in example.code:
        monkeypatch.setenv(DATABASE_ENV, request.getfixturevalue("database_dsn"))
    if example.language == "console":
        run_console(example.code, capsys)
        return
    exec(compile(example.code, "docs example", "exec"), {"__name__": "__main__"})
    if example.expected is not None:
        assert capsys.readouterr().out == example.expected


def run_console(block: str, capsys: pytest.CaptureFixture[str]) -> None:
    for command, expected in _commands(block):
        argv = shlex.split(command)
        assert argv[0] == "agentcore", f"only agentcore commands run; mark the block {NO_TEST}"
        code = main(argv[1:])
        captured = capsys.readouterr()
        assert code == 0, f"{command}\n{captured.err}"
        assert _matches(captured.out.splitlines(), expected), (
            f"{command} printed:\n{captured.out}\nthe docs show:\n" + "\n".join(expected)
        )


def _commands(block: str) -> list[tuple[str, list[str]]]:
    commands: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif commands:
            commands[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"output before the first '$ ' command: {line!r}")
    return commands


def _matches(actual: list[str], expected: list[str]) -> bool:
    """``expected`` equals ``actual``; a ``...`` line is any lines, ``...`` in a line any text."""
    if not expected:
        return not actual
    head, *rest = expected
    if head == "...":
        return any(_matches(actual[i:], rest) for i in range(len(actual) + 1))
    pattern = ".*".join(re.escape(part) for part in head.split("..."))
    return (
        bool(actual) and re.fullmatch(pattern, actual[0]) is not None and _matches(actual[1:], rest)
    )
