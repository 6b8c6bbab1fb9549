"""Reads and writes do not depend on session settings a DBA, role or app may set.

Each setting is set the way a deployment sets it, on the database
(``ALTER DATABASE ... SET``) or on the application's role (``ALTER ROLE ...
SET``), and every repository operation must then give what the in-memory fake
gives. The migrations, up and down, must leave the same rows as on a database
with default settings.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool

from agentcore import (
    HistoryRepository,
    InMemoryHistoryRepository,
    PostgresHistoryRepository,
    migrations,
)
from agentcore.cli import main
from tests.conftest import pool_for
from tests.integration.test_migrations import LEGACY_ROWS, ODD_LEGACY_ROWS
from tests.integration.test_model_equivalence import outcome
from tests.support import PgServer, app_role, fresh_database

SETTINGS = [
    ("DateStyle", "SQL, DMY"),
    ("DateStyle", "German"),
    ("DateStyle", "Postgres, MDY"),
    ("IntervalStyle", "sql_standard"),
    ("TimeZone", "Asia/Kathmandu"),  # +05:45
    ("TimeZone", "America/St_Johns"),  # -03:30, with DST
    ("TimeZone", "<+0330>-03:30"),  # a POSIX zone Python has no name for
    ("extra_float_digits", "-15"),
    ("bytea_output", "escape"),
    ("lc_monetary", "C"),
    ("lc_numeric", "C"),
    ("standard_conforming_strings", "off"),
    ("client_encoding", "LATIN1"),
    ("client_encoding", "SQL_ASCII"),
]
IDS = [f"{name}={value}" for name, value in SETTINGS]

GIVEN = datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=timezone(timedelta(hours=5, minutes=30)))
"""A caller-given time whose day, month and offset a DateStyle could misread."""


@contextmanager
def database_with(pg_server: PgServer, name: str, value: str, scope: str) -> Iterator[str]:
    """A migrated database; yields a DSN whose sessions get ``name = value`` from ``scope``."""
    with fresh_database(pg_server) as dsn:
        if scope == "database":
            set_on_database(dsn, name, value)
            yield dsn
            return
        with app_role(dsn) as role_dsn:
            role = conninfo_to_dict(role_dsn)["user"]
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'ALTER ROLE "{role}" SET "{name}" = {literal(value)}'.encode())
            yield role_dsn


def set_on_database(dsn: str, name: str, value: str) -> None:
    dbname = conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{dbname}" SET "{name}" = {literal(value)}'.encode())


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def current(dsn: str, name: str) -> str:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT current_setting('{name}')".encode()).fetchone()
        assert row is not None
        value = row[0]  # bytes when the client encoding is SQL_ASCII
        return value.decode() if isinstance(value, bytes) else str(value)


async def every_operation(repo: HistoryRepository) -> list[tuple[Any, ...]]:
    """Each repository operation once (and the reads after each write), as outcomes."""
    a, s, t = "agent-é", "session-✓", "other"
    return [
        await outcome(repo.append_messages(a, s, [{"role": "user", "content": "plain 🙂"}])),
        await outcome(
            repo.append_messages(
                a,
                s,
                [
                    {"role": "user", "content": "with id", "id": "m-1", "created_at": GIVEN},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [{"id": "c", "type": "function", "x": 1.5e-7}],
                        "metadata": {"price": 0.1, "big": 12345678901234567890, "b": "\\x00"},
                    },
                ],
            )
        ),
        await outcome(  # a retry: the message with an id is not stored again
            repo.append_messages(a, s, [{"role": "user", "content": "with id", "id": "m-1"}])
        ),
        await outcome(repo.load_history(a, s)),
        await outcome(repo.load_history(a, s, limit=2)),
        await outcome(repo.list_sessions(a)),
        await outcome(
            repo.save_full_history(
                a,
                t,
                [
                    {"role": "system", "content": "be brief", "created_at": GIVEN},
                    {"role": "user", "content": "replaced ¤ \\ '' 🙂", "metadata": {"f": 2.5}},
                ],
            )
        ),
        await outcome(repo.load_history(a, t)),
        await outcome(repo.list_sessions(a)),
        await outcome(repo.clear_session(a, s)),
        await outcome(repo.load_history(a, s)),
        await outcome(repo.list_sessions(a)),
    ]


@pytest.mark.parametrize("scope", ["database", "role"])
@pytest.mark.parametrize(("name", "value"), SETTINGS, ids=IDS)
async def test_every_operation_gives_what_the_fake_gives_under_a_server_setting(
    pg_server: PgServer, name: str, value: str, scope: str
) -> None:
    want = await every_operation(InMemoryHistoryRepository())
    with database_with(pg_server, name, value, scope) as dsn:
        # The setting is in force for the sessions of that DSN.
        assert (
            current(dsn, name).lower().replace(" ", "").startswith(value.lower().replace(" ", ""))
        )
        async with pool_for(dsn) as pool:
            repo = PostgresHistoryRepository(pool)
            got = await every_operation(repo)
            assert got == want
            # Times are the same instants, in UTC, whatever the server's TimeZone.
            first, stored = await repo.load_history("agent-é", "other")
            assert first.created_at == GIVEN and first.created_at.tzinfo is UTC
            for info in await repo.list_sessions("agent-é"):
                assert info.created_at.tzinfo is UTC and info.updated_at.tzinfo is UTC
                assert abs(info.updated_at - datetime.now(UTC)) < timedelta(minutes=5)
            assert stored.created_at is not None
            assert abs(stored.created_at - datetime.now(UTC)) < timedelta(minutes=5)


def migrated_rows(dsn: str) -> list[tuple[Any, ...]]:
    """conversation_history read with fixed settings, whatever the database's."""
    fixed = make_conninfo(dsn, options="-c DateStyle=ISO -c TimeZone=UTC", client_encoding="UTF8")
    with psycopg.connect(fixed) as conn:
        columns = conn.execute(
            "SELECT string_agg(column_name, ',' ORDER BY ordinal_position)"
            " FROM information_schema.columns WHERE table_name = 'conversation_history'"
        ).fetchone()
        assert columns is not None
        rows = conn.execute(
            "SELECT to_jsonb(h)::text FROM conversation_history AS h ORDER BY 1"
        ).fetchall()
        return [columns, *rows]


def legacy_up_down(dsn: str) -> list[list[tuple[Any, ...]]]:
    """Legacy rows upgraded, rolled back, upgraded again: the rows after each step."""
    # Back to the pre-session schema (0001), whatever migrations follow 0002.
    to_0001 = len(migrations.apply(dsn)) - 1
    assert migrations.rollback(dsn, steps=to_0001)
    # The times are sent under the database's settings (the text in UTF-8).
    with psycopg.connect(make_conninfo(dsn, client_encoding="UTF8")) as conn:
        for row in [*LEGACY_ROWS, *ODD_LEGACY_ROWS, ("u0085", "user", "an odd name", GIVEN)]:
            conn.execute(
                "INSERT INTO conversation_history (agent_name, role, content, created_at)"
                " VALUES (%s, %s, %s, %s)",
                row,
            )
    steps = []
    migrations.apply(dsn)
    steps.append(migrated_rows(dsn))
    migrations.rollback(dsn, steps=to_0001)
    steps.append(migrated_rows(dsn))
    migrations.apply(dsn)
    steps.append(migrated_rows(dsn))
    return steps


@pytest.mark.parametrize(("name", "value"), SETTINGS, ids=IDS)
def test_migrations_give_the_same_rows_under_a_server_setting(
    pg_server: PgServer, name: str, value: str
) -> None:
    with fresh_database(pg_server, migrated=False) as plain:
        want = legacy_up_down(plain)
    with fresh_database(pg_server, migrated=False) as dsn:
        set_on_database(dsn, name, value)
        assert legacy_up_down(dsn) == want
        assert migrations.rollback(dsn, steps=None) and migrations.apply(dsn)


@pytest.mark.parametrize(
    ("name", "value"), [("DateStyle", "SQL, DMY"), ("TimeZone", "<+0330>-03:30")]
)
def test_cli_history_and_sessions_under_a_server_setting(
    pg_server: PgServer, name: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with database_with(pg_server, name, value, "database") as dsn:
        asyncio.run(append_one(dsn))
        assert main(["history", "--agent", "a", "--session", "s", "--json", "--dsn", dsn]) == 0
        [message] = json.loads(capsys.readouterr().out)
        assert (message["content"], message["created_at"]) == ("hi", "2001-02-02T22:35:06.789000Z")
        assert main(["sessions", "--agent", "a", "--dsn", dsn]) == 0
        out = capsys.readouterr().out
        assert out.splitlines()[1].split()[:2] == ["s", "1"]


async def append_one(dsn: str) -> None:
    async with PostgresHistoryRepository.from_dsn(dsn) as repo:
        message = {"role": "user", "content": "hi", "created_at": GIVEN}
        await repo.append_messages("a", "s", [message])


@pytest.mark.parametrize("autocommit", [True, False])
async def test_a_connection_switched_to_utf8_stays_so_in_the_pool(
    pg_server: PgServer, autocommit: bool
) -> None:
    with database_with(pg_server, "client_encoding", "LATIN1", "role") as dsn:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            dsn, min_size=1, max_size=1, kwargs={"autocommit": autocommit}, open=False
        )
        await pool.open(wait=True, timeout=30)
        try:
            repo = PostgresHistoryRepository(pool)
            for n in range(3):
                await repo.append_messages("a", "s", [{"role": "user", "content": f"🙂 {n}"}])
                assert [m.content for m in await repo.load_history("a", "s", 1)] == [f"🙂 {n}"]
            async with pool.connection() as conn:
                assert conn.info.parameter_status("client_encoding") == "UTF8"
                assert conn.info.transaction_status.name == "IDLE"
        finally:
            await pool.close()
