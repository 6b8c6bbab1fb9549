"""Migration 0006: the role's check moves from the table to a domain, and back.

A table CHECK is read from its stored text and planned again by every INSERT
statement; a domain's check is prepared once per connection. The rule is the
same before and after, for every way a row gets in (an append, a COPY, a
statement written by hand), and the migration neither rewrites nor scans the
table: its storage (relfilenode) stays the same, whatever its size. (Its
rollback does rewrite it: see migrations/0006_cached_role_check.rollback.sql.)
"""

from __future__ import annotations

import psycopg
import pytest

from agentcore import Message, PostgresHistoryRepository, migrations
from tests.support import CITUS_MIGRATION, LANGGRAPH_MIGRATION

FIFTH = "0005_hot_session_updates"
SIXTH = "0006_cached_role_check"
SEVENTH = "0007_scoped_state"
EIGHTH = LANGGRAPH_MIGRATION
NINTH = CITUS_MIGRATION  # a no-op without Citus


def _storage_and_checks(dsn: str) -> tuple[int, list[tuple[str, str]]]:
    """conversation_history's relfilenode, and the checks on its role: (owner, definition)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT relfilenode FROM pg_class WHERE oid = 'conversation_history'::regclass"
        ).fetchone()
        checks = conn.execute(
            "SELECT CASE WHEN conrelid <> 0 THEN conrelid::regclass::text"
            " ELSE contypid::regtype::text END,"
            " pg_get_constraintdef(oid)"
            " FROM pg_constraint"
            " WHERE contype = 'c' AND (conrelid = 'conversation_history'::regclass"
            "  OR contypid = (SELECT atttypid FROM pg_attribute"
            "   WHERE attrelid = 'conversation_history'::regclass AND attname = 'role'))"
            " ORDER BY 1"
        ).fetchall()
    assert row is not None
    return int(row[0]), [(str(owner), str(definition)) for owner, definition in checks]


def _insert_role(dsn: str, role: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO conversation_history (agent_name, session_id, seq, role, content)"
            " VALUES ('by-hand', 's', (SELECT count(*) FROM conversation_history), %s, 'x')",
            [role],
        )


def _refuses_bad_roles(dsn: str) -> None:
    for role in ("function", "User", "", "user "):
        with pytest.raises(psycopg.errors.CheckViolation):
            _insert_role(dsn, role)


async def test_0006_moves_the_check_without_touching_the_rows_and_back(
    empty_database_dsn: str,
) -> None:
    dsn = empty_database_dsn
    migrations.apply(dsn)
    assert migrations.rollback(dsn, steps=4) == [NINTH, EIGHTH, SEVENTH, SIXTH]
    async with PostgresHistoryRepository.from_dsn(dsn) as repo:
        stored = [
            Message(role=role, content=f"{role} says", tool_call_id="c" if role == "tool" else None)
            for role in ("system", "user", "assistant", "tool")
        ]
        await repo.save_full_history("a", "s", stored)  # a COPY
        await repo.append_messages("a", "s", [Message(role="user", content="more")])
    storage, checks = _storage_and_checks(dsn)
    assert [owner for owner, _ in checks] == ["conversation_history"]

    assert migrations.apply(dsn) == [SIXTH, SEVENTH, EIGHTH, NINTH]
    after, checks = _storage_and_checks(dsn)
    assert after == storage  # neither rewritten nor copied
    assert checks == [
        (
            "message_role",
            "CHECK (((VALUE)::text = ANY ((ARRAY['system'::character varying, "
            "'user'::character varying, 'assistant'::character varying, "
            "'tool'::character varying])::text[]))) NOT VALID",
        )
    ]
    _refuses_bad_roles(dsn)
    for role in ("system", "user", "assistant", "tool"):
        _insert_role(dsn, role)
    async with PostgresHistoryRepository.from_dsn(dsn) as repo:
        loaded = await repo.load_history("a", "s")
        assert [(m.role, m.content, m.tool_call_id) for m in loaded] == [
            (m.role, m.content, m.tool_call_id) for m in stored
        ] + [("user", "more", None)]
        await repo.save_full_history("a", "t", loaded)  # COPY into the domain
        await repo.append_messages("a", "t", [Message(role="assistant", content="ok")])
        assert len(await repo.load_history("a", "t")) == 6

    # Back: PostgreSQL cannot turn a domain column into its base type in
    # place (varchar(50) takes a length coercion), so the rollback rewrites
    # the table, keeping every row.
    assert migrations.rollback(dsn, steps=4) == [NINTH, EIGHTH, SEVENTH, SIXTH]
    _, checks = _storage_and_checks(dsn)
    async with PostgresHistoryRepository.from_dsn(dsn) as repo:
        assert [m.content for m in await repo.load_history("a", "t")][-1] == "ok"
    assert checks == [
        (
            "conversation_history",
            "CHECK (((role)::text = ANY ((ARRAY['system'::character varying, "
            "'user'::character varying, 'assistant'::character varying, "
            "'tool'::character varying])::text[])))",
        )
    ]
    _refuses_bad_roles(dsn)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regtype('message_role')").fetchone() == (None,)
    assert migrations.apply(dsn) == [SIXTH, SEVENTH, EIGHTH, NINTH]
    _refuses_bad_roles(dsn)
