"""No message agentcore produces quotes a DSN's password, whatever the DSN's form.

The passwords are generated: marker words (``PWa``, ``PWb``...) joined by the
characters that cut a DSN apart (``@ : / ? # % = ' "`` and spaces). Each DSN is
written every way a person might: in a URL's user info (encoded or not), in a
URL's query, in key=value form (quoted or not), with a bad percent-encoding
elsewhere. A password can leak whole, or in pieces (an unencoded ``@`` makes
its tail part of the host name), so the test looks for every marker word in
the parser's error, the connection error, and the CLI's stdout and stderr.
Nothing listens on 127.0.0.1:1, so every connection fails at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
from urllib.parse import quote

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentcore import migrations
from agentcore.cli import main
from agentcore.dsn import has_password, parse_dsn, redact
from agentcore.errors import AgentcoreError
from agentcore.postgres import check_connection

MARKERS = ("PWa", "PWb", "PWc", "PWd")
SEPARATORS = ["@", ":", "/", "?", "#", "%", "=", "'", '"', " ", "&", "%zz", "\\", "@@"]


@st.composite
def passwords(draw: st.DrawFn) -> str:
    count = draw(st.integers(min_value=1, max_value=len(MARKERS)))
    parts = [MARKERS[0]]
    for marker in MARKERS[1:count]:
        parts += [draw(st.sampled_from(SEPARATORS)), marker]
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(SEPARATORS)))
    return "".join(parts)


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def dsns(password: str) -> list[str]:
    """Every way of writing ``password`` into a DSN, well-formed or not."""
    return [
        f"postgresql://app:{password}@127.0.0.1:1/app",  # unencoded, as people do
        f"postgresql://app:{quote(password, safe='')}@127.0.0.1:1/app",
        f"postgresql://app:{password}@127.0.0.1:1/app?sslmode=disable",
        f"postgresql://app@127.0.0.1:1/app?password={password}",
        f"postgresql://app@127.0.0.1:1/app?password={quote(password, safe='')}",
        f"postgresql://app@127.0.0.1:1/app?password={password}&connect_timeout=2",
        f"postgresql://app@127.0.0.1:1/a%zzpp?password={quote(password, safe='')}",
        f"postgres://app:{password}@127.0.0.1:1/app",
        f"host=127.0.0.1 port=1 user=app password={password}",
        f"host=127.0.0.1 port=1 password={password} dbname=app",
        f"host=127.0.0.1 port=1 user=app password={_quoted(password)}",
        f"password={_quoted(password)} host=127.0.0.1 port=1 sslmode=maybe",
        f"host=127.0.0.1 port=x password={_quoted(password)}",
        f"host=127.0.0.1 port=1 password = {_quoted(password)} dbname=app",
        f"host=127.0.0.1 port=1 sslpassword={_quoted(password)}",
    ]


def leaked(text: str, password: str) -> list[str]:
    return [m for m in MARKERS if m in password and m in text]


def connection_error(dsn: str) -> str:
    """What agentcore says when it cannot connect (or parse), the way a caller sees it."""
    try:
        asyncio.run(check_connection(dsn, timeout=2))
    except AgentcoreError as exc:
        return str(exc)
    return ""


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(passwords())
def test_no_error_of_the_parser_or_the_connection_holds_a_piece_of_the_password(
    password: str,
) -> None:
    for dsn in dsns(password):
        assert has_password(dsn), dsn
        try:
            parse_dsn(dsn)
        except AgentcoreError as exc:
            assert leaked(str(exc), password) == [], (dsn, str(exc))
        message = connection_error(dsn)
        assert message, dsn  # nothing listens there
        assert leaked(message, password) == [], (dsn, message)
        message = migration_error(dsn)
        assert message, dsn
        assert leaked(message, password) == [], (dsn, message)


def migration_error(dsn: str) -> str:
    """What agentcore.migrations says when it cannot connect (or parse)."""
    try:
        migrations.status(dsn)
    except AgentcoreError as exc:
        return str(exc)
    return ""


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(passwords())
def test_libpq_and_psycopg_messages_are_redacted_whatever_they_quote(password: str) -> None:
    for dsn in dsns(password):
        for exc in _driver_errors(dsn):
            assert leaked(redact(str(exc), dsn), password) == [], (dsn, str(exc))


def _driver_errors(dsn: str) -> list[Exception]:
    errors: list[Exception] = []
    try:
        psycopg.conninfo.conninfo_to_dict(dsn)
        psycopg.connect(dsn, connect_timeout=2).close()
    except psycopg.Error as exc:
        errors.append(exc)
    return errors


def test_the_unencoded_at_sign_no_longer_shows_the_password_s_tail() -> None:
    # issue 25, item 8: psycopg said "failed to resolve host 'PWb@127.0.0.1'".
    message = connection_error("postgresql://app:PWa@PWb@127.0.0.1:1/app")
    assert "failed to resolve host" in message
    assert "PWa" not in message and "PWb" not in message


def test_a_password_in_a_url_query_is_hidden_in_a_percent_encoding_error() -> None:
    # issue 25, item 8: the whole token, password included, was quoted.
    message = connection_error("postgresql://app@127.0.0.1:1/app?password=PWa%zzPWb")
    assert "bad percent-encoding" in message
    assert "PWa" not in message and "PWb" not in message


def test_what_redaction_keeps() -> None:
    dsn = "postgresql://app:PWa@db.example.com:5432/app"
    assert redact('connection to server at "db.example.com" (10.0.0.1) failed', dsn) == (
        'connection to server at "db.example.com" (10.0.0.1) failed'
    )
    assert redact("no password here", "host=db dbname=app") == "no password here"
    assert not has_password("host=db user=app dbname=app")
    assert not has_password("postgresql://app@db:5432/app")


COMMANDS = [
    ["sessions", "--agent", "a"],
    ["history", "--agent", "a", "--session", "s"],
    ["migrate", "status"],
    ["export", "--out", os.devnull],
]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(passwords(), st.sampled_from(COMMANDS), st.booleans(), st.booleans())
def test_the_cli_prints_no_piece_of_the_password(
    password: str, command: list[str], from_env: bool, debug: bool
) -> None:
    """On stdout and stderr, with ``--dsn`` or the environment, with ``--debug`` tracebacks."""
    for dsn in dsns(password):
        out, err = io.StringIO(), io.StringIO()
        argv = [*command, *(["--debug"] if debug else [])]
        env = {"AGENTCORE_DATABASE_URL": dsn} if from_env else {}
        if not from_env:
            argv += ["--dsn", dsn]
        with (
            _environment(env),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            _no_root_handlers(),
        ):
            code = main(argv)
        assert code == 1, (dsn, out.getvalue(), err.getvalue())
        shown = out.getvalue() + err.getvalue()
        assert leaked(shown, password) == [], (dsn, shown)


@pytest.fixture(autouse=True)
def _no_embedded(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("AGENTCORE_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    monkeypatch.delenv("AGENTCORE_DATABASE_URL", raising=False)


class _environment:
    def __init__(self, values: dict[str, str]) -> None:
        self._values = values
        self._old: dict[str, str | None] = {}

    def __enter__(self) -> None:
        for key, value in self._values.items():
            self._old[key] = os.environ.get(key)
            os.environ[key] = value

    def __exit__(self, *exc: object) -> None:
        for key, value in self._old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _no_root_handlers:
    """As when the command runs on its own: no logging handler but the CLI's."""

    def __enter__(self) -> None:
        root = logging.getLogger()
        self._handlers = root.handlers[:]
        for handler in self._handlers:
            root.removeHandler(handler)

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        for handler in self._handlers:
            root.addHandler(handler)
