"""agentcore uses UTF8 databases only, and refuses any other encoding clearly.

In LATIN1 or EUC_JP an emoji cannot be stored, and SQL_ASCII checks nothing:
PostgreSQL and the in-memory fake would disagree about what can be stored. The
migrations refuse such a database before touching it, and so does the
repository at its first call, with nothing read or written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count

import psycopg
import pytest
from yoyo import get_backend, read_migrations

from agentcore import PostgresHistoryRepository, UnsupportedDatabaseError, migrations
from agentcore.cli import main
from agentcore.resources import data_dir
from tests.conftest import pool_for
from tests.support import PgServer

ENCODINGS = ["LATIN1", "EUC_JP", "SQL_ASCII"]
_numbers = count()


@contextmanager
def encoded_database(pg_server: PgServer, encoding: str) -> Iterator[str]:
    """An empty database in ``encoding``, dropped afterwards."""
    name = f"agentcore_{encoding.lower()}_{os.getpid()}_{next(_numbers)}"
    admin = pg_server.dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            f"CREATE DATABASE {name} ENCODING '{encoding}'"
            " LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0".encode()
        )
    try:
        yield pg_server.dsn(name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)".encode())


@pytest.fixture(params=ENCODINGS)
def encoded_dsn(request: pytest.FixtureRequest, pg_server: PgServer) -> Iterator[str]:
    with encoded_database(pg_server, request.param) as dsn:
        yield dsn


def relations(dsn: str) -> list[str]:
    with psycopg.connect(dsn, client_encoding="UTF8") as conn:
        rows = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " ORDER BY relname"
        ).fetchall()
        return [r[0] for r in rows]


def assert_refused(exc: pytest.ExceptionInfo[UnsupportedDatabaseError], dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        encoding = conn.info.parameter_status("server_encoding")
    message = str(exc.value)
    assert f"encoded in {encoding}" in message
    assert "supports UTF8 databases only" in message
    assert "createdb -E UTF8 -T template0" in message


def test_migrations_refuse_a_database_not_in_utf8_before_touching_it(encoded_dsn: str) -> None:
    for call in (migrations.apply, migrations.rollback, migrations.status):
        with pytest.raises(UnsupportedDatabaseError) as exc:
            call(encoded_dsn)
        assert_refused(exc, encoded_dsn)
    assert relations(encoded_dsn) == []  # not even yoyo's bookkeeping tables


def schema_without_the_check(dsn: str) -> None:
    """agentcore's tables made as an older agentcore would have made them."""
    backend = get_backend(migrations.yoyo_url(dsn))
    try:
        with backend.lock():
            backend.apply_migrations(backend.to_apply(read_migrations(str(data_dir("migrations")))))
    finally:
        backend.connection.close()


def table_rows(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, client_encoding="UTF8") as conn:
        return conn.execute(
            "SELECT 'h', count(*) FROM conversation_history"
            " UNION ALL SELECT 's', count(*) FROM conversation_sessions"
        ).fetchall()


@pytest.mark.parametrize("encoding", ["LATIN1", "EUC_JP"])
async def test_repository_refuses_a_database_not_in_utf8_writing_nothing(
    pg_server: PgServer, encoding: str
) -> None:
    with encoded_database(pg_server, encoding) as dsn:
        schema_without_the_check(dsn)
        async with pool_for(dsn) as pool:
            repo = PostgresHistoryRepository(pool)
            calls = [
                repo.append_messages("a", "s", [{"role": "user", "content": "emoji 🙂"}]),
                repo.append_messages("a", "s", [{"role": "user", "content": "é", "id": "1"}]),
                repo.save_full_history("a", "s", [{"role": "user", "content": "x"}]),
                repo.load_history("a", "s"),
                repo.list_sessions("a"),
                repo.clear_session("a", "s"),
            ]
            for call in calls:
                with pytest.raises(UnsupportedDatabaseError) as exc:
                    await call
                assert_refused(exc, dsn)
        assert table_rows(dsn) == [("h", 0), ("s", 0)]
        with pytest.raises(UnsupportedDatabaseError):
            async with PostgresHistoryRepository.from_dsn(dsn) as repo:
                await repo.load_history("a", "s")


def test_cli_says_so_in_one_line(encoded_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["migrate", "up"], ["sessions", "--agent", "a"]):
        assert main([*argv, "--dsn", encoded_dsn]) == 1
        out, err = capsys.readouterr()
        assert out == ""
        [line] = err.splitlines()
        assert line.startswith("agentcore: error: database ")
        assert "supports UTF8 databases only" in line and "createdb -E UTF8" in line
