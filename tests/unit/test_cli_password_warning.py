"""A password given with --dsn is in argv, which every local user sees in ``ps``: the CLI warns.

Nothing listens on 127.0.0.1:1, so each command fails to connect at once; the
warning comes first, once, and never holds the password.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import run_cli as run

WARNING = "agentcore: warning: --dsn holds a password"


@pytest.fixture(autouse=True)
def no_default_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENTCORE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AGENTCORE_DATABASE_URL", raising=False)




@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://app:s3cr3tpw@127.0.0.1:1/app",
        "postgresql://app@127.0.0.1:1/app?password=s3cr3tpw",
        "host=127.0.0.1 port=1 password=s3cr3tpw",
        "host=127.0.0.1 port=1 password='s3cr3 tpw'",
    ],
)
@pytest.mark.parametrize("where", ["before", "after"])
def test_a_password_in_dsn_is_warned_of_once_without_the_password(
    capsys: pytest.CaptureFixture[str], dsn: str, where: str
) -> None:
    argv = ["sessions", "--agent", "a"]
    argv = ["--dsn", dsn, *argv] if where == "before" else [*argv, "--dsn", dsn]
    code, out, err = run(capsys, *argv)
    assert code == 1
    lines = err.splitlines()
    assert lines[0].startswith(WARNING)
    assert "AGENTCORE_DATABASE_URL" in lines[0] and "passfile" in lines[0]
    assert sum(WARNING in line for line in lines) == 1
    assert lines[1].startswith("agentcore: error: cannot connect to the database")
    assert "s3cr3" not in out + err and "tpw" not in out + err


@pytest.mark.parametrize(
    "dsn", ["postgresql://app@127.0.0.1:1/app", "host=127.0.0.1 port=1 user=app"]
)
def test_no_warning_without_a_password(capsys: pytest.CaptureFixture[str], dsn: str) -> None:
    code, _, err = run(capsys, "sessions", "--agent", "a", "--dsn", dsn)
    assert code == 1
    assert WARNING not in err and len(err.splitlines()) == 1


def test_no_warning_for_a_password_in_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTCORE_DATABASE_URL", "postgresql://app:s3cr3tpw@127.0.0.1:1/app")
    code, _, err = run(capsys, "sessions", "--agent", "a")
    assert code == 1
    assert WARNING not in err and "s3cr3tpw" not in err
