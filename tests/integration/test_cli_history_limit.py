"""``history --limit 0``: nothing to show, so nothing is printed (``[]`` with --json)."""

from __future__ import annotations

import pytest

from agentcore.cli import main


def test_history_limit_zero_prints_nothing(
    capsys: pytest.CaptureFixture[str], database_dsn: str
) -> None:
    dsn = ["--dsn", database_dsn]
    assert main(["chat", "--agent", "a", "--session", "s", "hello", *dsn]) == 0
    capsys.readouterr()
    assert main(["history", "--agent", "a", "--session", "s", "--limit", "0", *dsn]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["history", "--agent", "a", "--session", "s", "--limit", "0", "--json", *dsn]) == 0
    assert capsys.readouterr().out == "[]\n"
