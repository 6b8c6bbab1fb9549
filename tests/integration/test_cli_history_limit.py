"""``--limit 0``: nothing to show prints nothing (``[]`` with --json); unknown names still fail."""

from __future__ import annotations

import pytest

from tests.support import run_cli as run


def test_history_and_sessions_with_limit_zero_print_nothing(
    capsys: pytest.CaptureFixture[str], database_dsn: str
) -> None:
    dsn = ("--dsn", database_dsn)
    assert run(capsys, "chat", "--agent", "a", "--session", "s", "hello", *dsn)[0] == 0
    history = ("history", "--agent", "a", "--session", "s", "--limit", "0", *dsn)
    assert run(capsys, *history) == (0, "", "")
    assert run(capsys, *history, "--json") == (0, "[]\n", "")
    assert run(capsys, "sessions", "--agent", "a", "--limit", "0", *dsn) == (0, "", "")
    assert run(capsys, "sessions", "--agent", "a", "--limit", "0", "--json", *dsn) == (
        0,
        '{\n  "sessions": [],\n  "next_cursor": null\n}\n',
        "",
    )


def test_limit_zero_still_refuses_unknown_agents_and_sessions(
    capsys: pytest.CaptureFixture[str], database_dsn: str
) -> None:
    dsn = ("--dsn", database_dsn)
    assert run(capsys, "chat", "--agent", "a", "--session", "s", "hello", *dsn)[0] == 0
    code, out, err = run(capsys, "history", "--agent", "a", "--session", "t", "--limit", "0", *dsn)
    assert (code, out) == (1, "")
    assert "agent 'a' has no session 't'" in err
    code, out, err = run(capsys, "sessions", "--agent", "nobody", "--limit", "0", *dsn)
    assert (code, out) == (1, "")
    assert "unknown agent 'nobody'" in err
