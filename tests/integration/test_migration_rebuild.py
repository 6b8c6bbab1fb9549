"""Migration 0002 writes conversation_history anew and swaps the names.

A new table is a new object: what a DBA attached to the old one (the owner,
an application role's grants, comments, storage options) must move to it, and
what cannot move (triggers, policies, publications, extra columns) is refused
before any row is copied, leaving the database as it was. The rollback changes
the table in place, so everything attached survives it too.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
import pytest

from agentcore import migrations
from agentcore.errors import MigrationError
from tests.integration.test_migrations import SECOND, legacy_database

DECORATIONS = [
    "COMMENT ON TABLE conversation_history IS 'the chat log'",
    "COMMENT ON COLUMN conversation_history.content IS 'what was said'",
    "COMMENT ON COLUMN conversation_history.id IS 'surrogate'",
    "ALTER TABLE conversation_history SET (fillfactor = 90, autovacuum_vacuum_scale_factor = 0.01)",
]


def attached(dsn: str, role: str) -> dict[str, Any]:
    """What a DBA may have attached to conversation_history, as seen by the catalog."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT pg_get_userbyid(c.relowner), c.reloptions, obj_description(c.oid, 'pg_class'),"
            " (SELECT array_agg(a.attname || '=' || d.description ORDER BY a.attname)"
            "  FROM pg_description d JOIN pg_attribute a"
            "  ON a.attrelid = d.objoid AND a.attnum = d.objsubid"
            "  WHERE d.objoid = c.oid AND d.objsubid > 0),"
            " (SELECT array_agg(p ORDER BY p) FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE',"
            "  'DELETE', 'TRUNCATE']) AS p WHERE has_table_privilege(%s, c.oid, p))"
            " FROM pg_class c WHERE c.oid = 'conversation_history'::regclass",
            (role,),
        ).fetchone()
    assert row is not None
    owner, options, comment, column_comments, rights = row
    return {
        "owner": owner,
        "options": options,
        "comment": comment,
        "column_comments": column_comments,
        "rights": rights,
    }


def test_owner_grants_comments_and_options_survive_the_upgrade_and_the_rollback(
    empty_database_dsn: str,
) -> None:
    legacy_database(empty_database_dsn)
    role = f"legacy_app_{os.getpid()}"
    with psycopg.connect(empty_database_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}"'.encode())
        # An application role's rights, given while the table had the 0001 schema.
        conn.execute(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON conversation_history TO "{role}"'.encode()
        )
        for statement in DECORATIONS:
            conn.execute(statement.encode())
    try:
        before = attached(empty_database_dsn, role)
        assert before["rights"] == ["DELETE", "INSERT", "SELECT", "UPDATE"]
        assert before["comment"] == "the chat log"

        applied = migrations.apply(empty_database_dsn)
        assert applied[0] == SECOND
        assert attached(empty_database_dsn, role) == before | {
            "column_comments": ["content=what was said", "legacy_id=surrogate"]
        }

        assert migrations.rollback(empty_database_dsn, steps=len(applied)) == applied[::-1]
        assert attached(empty_database_dsn, role) == before
    finally:
        with psycopg.connect(empty_database_dsn, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"'.encode())
            conn.execute(f'DROP ROLE "{role}"'.encode())


@pytest.mark.parametrize(
    "attachment",
    [
        "ALTER TABLE conversation_history ADD COLUMN tenant text DEFAULT 'x'",
        "CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';"
        " CREATE TRIGGER audit BEFORE INSERT ON conversation_history"
        " FOR EACH ROW EXECUTE FUNCTION noop()",
        "CREATE POLICY mine ON conversation_history USING (true)",
        "CREATE PUBLICATION history_pub FOR TABLE conversation_history",
    ],
    ids=["column", "trigger", "policy", "publication"],
)
def test_what_cannot_be_carried_over_is_refused_leaving_everything_as_it_was(
    empty_database_dsn: str, attachment: str
) -> None:
    before = legacy_database(empty_database_dsn)
    with psycopg.connect(empty_database_dsn, autocommit=True) as conn:
        conn.execute(attachment.encode())
    with pytest.raises(MigrationError, match="cannot carry over"):
        migrations.apply(empty_database_dsn)
    with psycopg.connect(empty_database_dsn) as conn:
        assert conn.execute("SELECT to_regclass('conversation_sessions')").fetchone() == (None,)
        rows = conn.execute(
            "SELECT id, agent_name, role, content, created_at FROM conversation_history ORDER BY id"
        ).fetchall()
    assert rows == before
    applied = [s.applied for s in migrations.status(empty_database_dsn)]
    assert applied[0] and not any(applied[1:])
