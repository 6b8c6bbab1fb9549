"""What a newcomer copies from the README and the guides works as shown."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DOCS = [README, *(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```\n", text, re.S | re.M)


def test_the_quickstart_is_two_commands() -> None:
    (quickstart,) = blocks(README.split("## Quickstart", 1)[1].split("\n## ", 1)[0], "bash")
    assert [line.split("#")[0].strip() for line in quickstart.splitlines()] == [
        "python3 run.py demo",
        "python3 run.py test",
    ]
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == "python3 run.py test"


def test_examples_read_the_database_url_from_one_variable() -> None:
    names = {
        name
        for text in DOCS
        for block in blocks(text, "python")
        for name in re.findall(r"""os\.environ(?:\.get\(|\[)\s*["'](\w+)["']""", block)
    }
    assert "AGENTCORE_DATABASE_URL" in names
    assert {n for n in names if "DATABASE" in n or "DSN" in n} == {"AGENTCORE_DATABASE_URL"}


def test_getting_started_shows_how_to_point_the_examples_at_the_embedded_database() -> None:
    guide = (ROOT / "docs" / "getting-started.md").read_text()
    assert "export AGENTCORE_DATABASE_URL=$(agentcore db dsn)" in guide


def test_the_fake_example_runs_warning_free_under_pytest(tmp_path: Path) -> None:
    (example,) = [b for b in blocks(README, "python") if "InMemoryHistoryRepository" in b]
    *body, last = example.rstrip().splitlines()
    assert last.startswith("asyncio.run(")  # the line the README says to drop under pytest
    (config,) = blocks(README, "toml")
    (tmp_path / "pyproject.toml").write_text(config)
    (tmp_path / "test_readme_fake.py").write_text("\n".join(body) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-W", "error", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith("1 passed in ")
    assert "warning" not in done.stdout.lower()
