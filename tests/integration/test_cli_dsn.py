"""Where the CLI takes a DSN: one message for a malformed one, and hints naming its source."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcore.cli import main
from tests.support import run_cli as run

COMMANDS = [
    ["migrate", "status"],
    ["migrate", "up"],
    ["migrate", "down", "--yes"],
    ["demo"],
    ["chat", "--agent", "a", "--session", "s", "hello"],
    ["sessions", "--agent", "a"],
    ["history", "--agent", "a", "--session", "s"],
    ["forget", "--agent", "a", "--session", "s"],
]
BAD = [
    ("not a dsn", '"not" is not a key=value pair'),
    ("postgresql://::::", 'bad port ":::"'),
    ("host=127.0.0.1 port=70000", 'bad port "70000"'),
    ("host=127.0.0.1 hots=x", 'unknown keyword "hots"'),
    ("postgresql://app:s3cr3tpw@127.0.0.1:x/app", 'bad port "…"'),
    ("host=127.0.0.1 password=s3cr3tpw port=x", 'bad port "…"'),
    ("host=127.0.0.1 password=s3cr3 tpw", '"…" is not a key=value pair'),
    ("mysql://app:s3cr3tpw@127.0.0.1/app", "a mysql:// URL: agentcore needs PostgreSQL"),
]


@pytest.fixture(autouse=True)
def no_default_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENTCORE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AGENTCORE_DATABASE_URL", raising=False)




@pytest.mark.parametrize(("dsn", "problem"), BAD, ids=[d for d, _ in BAD])
@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_every_command_gives_one_message_for_a_malformed_dsn(
    capsys: pytest.CaptureFixture[str], command: list[str], dsn: str, problem: str
) -> None:
    code, out, err = run(capsys, *command, "--dsn", dsn)
    assert (code, out) == (1, "")
    assert err.startswith("agentcore: error: invalid database DSN (from --dsn): ")
    assert problem in err and len(err.splitlines()) == 1
    assert "s3cr3" not in err and "tpw" not in err


def test_a_malformed_dsn_from_the_environment_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTCORE_DATABASE_URL", "postgresql://app:s3cr3tpw@db:99999/app")
    for command in COMMANDS:
        code, _, err = run(capsys, *command)
        assert code == 1
        assert err.startswith(
            "agentcore: error: invalid database DSN (from $AGENTCORE_DATABASE_URL): bad port"
        ), err
        assert "s3cr3tpw" not in err


def test_the_migrations_hint_names_the_dsn_given_by_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, empty_database_dsn: str
) -> None:
    monkeypatch.setenv("AGENTCORE_DATABASE_URL", empty_database_dsn)
    code, _, err = run(capsys, "sessions", "--agent", "a")
    assert code == 1
    assert err.strip() == (
        "agentcore: error: migrations not applied: agentcore's tables are missing or out of "
        "date in the database in $AGENTCORE_DATABASE_URL; run `agentcore migrate up` "
        "(it uses the same $AGENTCORE_DATABASE_URL)"
    )

    monkeypatch.delenv("AGENTCORE_DATABASE_URL")
    code, _, err = run(capsys, "sessions", "--agent", "a", "--dsn", empty_database_dsn)
    assert code == 1
    assert err.strip().endswith(
        "in the database given by --dsn; run `agentcore migrate up` with the same --dsn"
    )


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
@pytest.mark.parametrize("dsn", ["", " "], ids=["empty", "blank"])
def test_an_empty_dsn_is_a_usage_error_not_the_embedded_database(
    capsys: pytest.CaptureFixture[str], command: list[str], dsn: str, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--dsn", dsn])  # what `--dsn "$UNSET"` passes
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("usage: ")
    assert err.splitlines()[-1].endswith(
        "error: argument --dsn: an empty DSN (an unset variable?): give one, or leave --dsn "
        "out to use $AGENTCORE_DATABASE_URL or the embedded database"
    )
    assert not any(tmp_path.iterdir())  # no embedded database was made


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_an_exported_but_empty_database_url_is_refused(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("AGENTCORE_DATABASE_URL", "")  # AGENTCORE_DATABASE_URL=$UNSET
    code, out, err = run(capsys, *command)
    assert (code, out) == (1, "")
    assert err == (
        "agentcore: error: invalid database DSN (from $AGENTCORE_DATABASE_URL): it is empty; "
        "give a DSN, or unset AGENTCORE_DATABASE_URL to use the embedded database\n"
    )
    assert not any(tmp_path.iterdir())
