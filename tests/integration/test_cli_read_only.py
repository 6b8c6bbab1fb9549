"""The CLI on a database that refuses writes: one error line, no pool warnings.

A write that fails closes its connection on purpose (agentcore.postgres,
_WriteCheckout); psycopg_pool used to report that as a warning printed before
the CLI's own error line.
"""

from __future__ import annotations

import json

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tests.integration.test_cli import assert_one_line_error
from tests.integration.test_cli_lifecycle import cli


@pytest.fixture
def read_only(database_dsn: str) -> tuple[str, str]:
    """A database holding one old conversation, made read-only for every new session,
    and an export of that conversation under another session id (to import)."""
    with psycopg.connect(database_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO conversation_sessions (agent_name, session_id, next_seq, updated_at)"
            " VALUES ('a', 's', 1, '2000-01-01T00:00:00Z')"
        )
        conn.execute(
            "INSERT INTO conversation_history (agent_name, session_id, seq, role, content)"
            " VALUES ('a', 's', 0, 'user', 'hi')"
        )
    exported = cli(database_dsn, "export")
    assert exported.code == 0, exported.err
    lines = [json.loads(line) for line in exported.out.splitlines()]
    for line in lines:
        if line.get("session_id") == "s":
            line["session_id"] = "t"
    dbname = str(conninfo_to_dict(database_dsn)["dbname"])
    with psycopg.connect(database_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
                sql.Identifier(dbname)
            )
        )
    return database_dsn, "".join(json.dumps(line) + "\n" for line in lines)


@pytest.mark.parametrize(
    "argv",
    [
        ("forget", "--agent", "a", "--session", "s"),
        ("sessions", "copy", "--agent", "a", "--from", "s", "--to", "t"),
        ("sessions", "metadata", "--agent", "a", "--session", "s", "--set", '{"title": "x"}'),
        ("sessions", "purge", "--idle-for", "1d", "--yes"),
        ("import", "-"),
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_a_write_refused_by_a_read_only_database_prints_one_error_line(
    read_only: tuple[str, str], argv: tuple[str, ...]
) -> None:
    dsn, export = read_only
    run = cli(dsn, *argv, stdin=export)
    assert_one_line_error(run, "the database refuses writes", "read-only")
