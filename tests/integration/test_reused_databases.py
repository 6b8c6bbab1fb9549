"""The contract suite's databases are reused only when a test left them as the template made them.

``tests.support.reused_database``: after a test its tables are truncated and
it goes to the next test, unless its schema, grants, settings or applied
migrations changed, or a connection was left in it, or the test failed: then
it is dropped.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.conftest import BehindPgBouncer
from tests.support import PgServer, reused_database

CHANGES = [
    "ALTER TABLE conversation_history ADD COLUMN extra int",
    "CREATE INDEX extra ON conversation_sessions (created_at)",
    "ALTER TABLE conversation_sessions ALTER COLUMN next_seq SET DEFAULT 7",
    "CREATE TABLE extra (x int)",
    "CREATE FUNCTION extra() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "GRANT SELECT ON conversation_history TO PUBLIC",
    "CREATE SCHEMA extra",
    "DELETE FROM _yoyo_migration"
    " WHERE migration_id = (SELECT max(migration_id) FROM _yoyo_migration)",
    "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET work_mem = ''8MB''',"
    " current_database()); END $$",
]


def name(dsn: str) -> str:
    return str(conninfo_to_dict(dsn)["dbname"])


def test_an_emptied_database_goes_to_the_next_test_empty(pg_server: PgServer) -> None:
    with reused_database(pg_server) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO conversation_sessions (agent_name, session_id, next_seq)"
            " VALUES ('a', 's', 1)"
        )
        first = name(dsn)
    with reused_database(pg_server) as dsn, psycopg.connect(dsn) as conn:
        assert name(dsn) == first
        assert conn.execute("SELECT count(*) FROM conversation_sessions").fetchone() == (0,)


@pytest.mark.parametrize("change", CHANGES)
def test_a_database_a_test_changed_is_dropped(pg_server: PgServer, change: str) -> None:
    with reused_database(pg_server) as dsn:
        # The one left by the previous test, if any, is taken first: its name is this one.
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(change.encode())
        changed = name(dsn)
    with reused_database(pg_server) as dsn:
        assert name(dsn) != changed
    with psycopg.connect(pg_server.dsn("postgres")) as conn:
        found = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (changed,))
        assert found.fetchone() == (0,)


def test_a_database_with_a_connection_left_in_it_is_dropped(pg_server: PgServer) -> None:
    with reused_database(pg_server) as dsn:
        left = psycopg.connect(dsn)
        used = name(dsn)
    with reused_database(pg_server) as dsn:
        assert name(dsn) != used
    assert left.broken or left.closed or _is_dead(left)


def _is_dead(conn: psycopg.Connection[object]) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


def test_the_database_of_a_failed_test_is_dropped(pg_server: PgServer) -> None:
    with pytest.raises(ZeroDivisionError), reused_database(pg_server) as dsn:
        failed = name(dsn)
        1 / 0  # noqa: B018
    with reused_database(pg_server) as dsn:
        assert name(dsn) != failed


def test_through_pgbouncer_an_idle_server_connection_may_stay(pg_server: PgServer) -> None:
    """PgBouncer keeps its server connections: idle ones go on to the next test."""
    with reused_database(pg_server, pooled=True) as dsn:
        idle = psycopg.connect(dsn, autocommit=True)
        idle.execute("SELECT 1")
        used = name(dsn)
    try:
        with reused_database(pg_server, pooled=True) as dsn:
            assert name(dsn) == used
            assert idle.execute("SELECT count(*) FROM conversation_sessions").fetchone() == (0,)
    finally:
        idle.close()


def test_through_pgbouncer_a_connection_in_a_transaction_drops_it(pg_server: PgServer) -> None:
    with reused_database(pg_server, pooled=True) as dsn:
        busy = psycopg.connect(dsn)  # not autocommit: idle in transaction after a statement
        busy.execute("SELECT count(*) FROM conversation_history")
        used = name(dsn)
    with reused_database(pg_server, pooled=True) as dsn:
        assert name(dsn) != used
    assert _is_dead(busy)
    busy.close()


def test_templates_of_one_name_on_two_servers_keep_their_own_databases(
    pg_server: PgServer, behind_pgbouncer: BehindPgBouncer
) -> None:
    """Each worker names its templates after its process id, on every server it starts."""
    other = behind_pgbouncer.pg
    assert other.template == pg_server.template and other.key() != pg_server.key()
    for server in (pg_server, other, pg_server, other):
        with reused_database(server) as dsn, psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM conversation_history").fetchone() == (0,)
