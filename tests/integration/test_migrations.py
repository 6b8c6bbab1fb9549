"""Schema migrations on a real PostgreSQL: up from legacy data, down, up again."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from agentcore import (
    LEGACY_SESSION_ID,
    Message,
    PostgresHistoryRepository,
    migrations,
)
from agentcore.errors import DatabaseUnavailableError, MigrationError, SchemaNotReadyError
from tests.support import CITUS_MIGRATION, LANGGRAPH_MIGRATION

FIRST, SECOND = "0001_conversation_history", "0002_session_scoped_history"
THIRD = "0003_session_metadata"
FOURTH = "0004_exact_items"
FIFTH = "0005_hot_session_updates"
SIXTH = "0006_cached_role_check"
SEVENTH = "0007_scoped_state"
EIGHTH = LANGGRAPH_MIGRATION
# The Citus distribution (a no-op without Citus); its name (number) changes
# when branches merge: tests/support.py finds it.
NINTH = CITUS_MIGRATION
EVERY = [FIRST, SECOND, THIRD, FOURTH, FIFTH, SIXTH, SEVENTH, EIGHTH, NINTH]
T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)

LEGACY_ROWS = [  # (agent_name, role, content, created_at): inserted out of time order
    ("support", "user", "Where is my order?", T0),
    ("support", "assistant", "It ships tomorrow.", T0 + timedelta(seconds=2)),
    ("sales", "user", "Discounts?", T0 + timedelta(seconds=1)),
    ("support", "user", "Thanks! ✓ '; DROP TABLE x; --", T0 + timedelta(seconds=3)),
    ("support", "system", "earlier system note", T0 - timedelta(seconds=1)),
]


def legacy_database(
    dsn: str, rows: list[tuple[str, str, str, datetime]] = LEGACY_ROWS
) -> list[tuple[int, str, str, str, datetime]]:
    """Bring an empty database to the pre-session schema and fill it like the seed did."""
    assert migrations.apply(dsn, migrations_dir=None) and migrations.rollback(dsn, steps=8) == [
        NINTH,
        EIGHTH,
        SEVENTH,
        SIXTH,
        FIFTH,
        FOURTH,
        THIRD,
        SECOND,
    ]
    with psycopg.connect(dsn) as conn:
        for row in rows:
            conn.execute(
                "INSERT INTO conversation_history (agent_name, role, content, created_at)"
                " VALUES (%s, %s, %s, %s)",
                row,
            )
    return legacy_rows(dsn)


def legacy_rows(dsn: str) -> list[tuple[int, str, str, str, datetime]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT id, agent_name, role, content, created_at FROM conversation_history ORDER BY id"
        ).fetchall()


def test_apply_on_empty_database_applies_everything_once(empty_database_dsn: str) -> None:
    assert migrations.apply(empty_database_dsn) == EVERY
    assert migrations.apply(empty_database_dsn) == []
    assert [(s.id, s.applied) for s in migrations.status(empty_database_dsn)] == [
        (FIRST, True),
        (SECOND, True),
        (THIRD, True),
        (FOURTH, True),
        (FIFTH, True),
        (SIXTH, True),
        (SEVENTH, True),
        (EIGHTH, True),
        (NINTH, True),
    ]


async def test_upgrade_keeps_legacy_rows_under_the_legacy_session(empty_database_dsn: str) -> None:
    legacy_database(empty_database_dsn)
    assert migrations.apply(empty_database_dsn) == [
        SECOND,
        THIRD,
        FOURTH,
        FIFTH,
        SIXTH,
        SEVENTH,
        EIGHTH,
        NINTH,
    ]

    async with PostgresHistoryRepository.from_dsn(empty_database_dsn) as repo:
        support = await repo.load_history("support", LEGACY_SESSION_ID)
        assert [(m.role, m.content) for m in support] == [  # in the order they were written
            ("system", "earlier system note"),
            ("user", "Where is my order?"),
            ("assistant", "It ships tomorrow."),
            ("user", "Thanks! ✓ '; DROP TABLE x; --"),
        ]
        assert support[1].created_at == T0
        [info] = await repo.list_sessions("support")
        assert (info.session_id, info.message_count) == (LEGACY_SESSION_ID, 4)
        assert (info.created_at, info.updated_at) == (
            T0 - timedelta(seconds=1),
            T0 + timedelta(seconds=3),
        )
        # A legacy conversation goes on like any other.
        assert (
            await repo.append_messages(
                "support", LEGACY_SESSION_ID, [{"role": "user", "content": "more"}]
            )
            == 1
        )
        assert len(await repo.load_history("support", LEGACY_SESSION_ID)) == 5
        assert [m.content for m in await repo.load_history("sales", LEGACY_SESSION_ID)] == [
            "Discounts?"
        ]


async def test_rollback_restores_legacy_schema_and_rows(empty_database_dsn: str) -> None:
    before = legacy_database(empty_database_dsn)
    migrations.apply(empty_database_dsn)
    async with PostgresHistoryRepository.from_dsn(empty_database_dsn) as repo:
        await repo.append_messages(
            "support",
            "s-new",
            [
                {"role": "user", "content": "new-style"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c", "type": "function"}],
                },
            ],
        )

    assert migrations.rollback(empty_database_dsn, steps=8) == [
        NINTH,
        EIGHTH,
        SEVENTH,
        SIXTH,
        FIFTH,
        FOURTH,
        THIRD,
        SECOND,
    ]

    after = legacy_rows(empty_database_dsn)
    assert after[: len(before)] == before  # legacy rows back with their ids
    assert [(r[1], r[2], r[3]) for r in after[len(before) :]] == [
        ("support", "user", "new-style"),
        ("support", "assistant", ""),
    ]
    with psycopg.connect(empty_database_dsn) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'conversation_history' ORDER BY ordinal_position"
            )
        ]
        assert columns == ["id", "agent_name", "role", "content", "created_at"]
        assert conn.execute("SELECT to_regclass('conversation_sessions')").fetchone() == (None,)
        # The 0001 schema works as before: new rows get fresh ids.
        (new_id,) = conn.execute(
            "INSERT INTO conversation_history (agent_name, role, content)"
            " VALUES ('x', 'user', 'y') RETURNING id"
        ).fetchone() or (0,)
        assert new_id > max(r[0] for r in after)

    # ...and up again keeps everything, legacy and rolled-back rows alike.
    assert migrations.apply(empty_database_dsn) == [
        SECOND,
        THIRD,
        FOURTH,
        FIFTH,
        SIXTH,
        SEVENTH,
        EIGHTH,
        NINTH,
    ]
    async with PostgresHistoryRepository.from_dsn(empty_database_dsn) as repo:
        assert len(await repo.load_history("support", LEGACY_SESSION_ID)) == 6


def test_full_rollback_then_apply_again(empty_database_dsn: str) -> None:
    migrations.apply(empty_database_dsn)
    everything = [NINTH, EIGHTH, SEVENTH, SIXTH, FIFTH, FOURTH, THIRD, SECOND, FIRST]
    assert migrations.rollback(empty_database_dsn, steps=None) == everything
    with psycopg.connect(empty_database_dsn) as conn:
        assert conn.execute("SELECT to_regclass('conversation_history')").fetchone() == (None,)
    assert migrations.rollback(empty_database_dsn, steps=None) == []
    assert migrations.apply(empty_database_dsn) == EVERY


def test_negative_rollback_steps_are_rejected(empty_database_dsn: str) -> None:
    with pytest.raises(MigrationError, match="steps"):
        migrations.rollback(empty_database_dsn, steps=-1)


def test_two_processes_applying_at_once_both_succeed(empty_database_dsn: str) -> None:
    script = "import sys, agentcore.migrations as m; print(','.join(m.apply(sys.argv[1])))"
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, empty_database_dsn],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    applied = sorted(out.strip() for out, _ in outputs)
    # One did the work, the other found none left.
    assert applied == ["", ",".join(EVERY)]
    assert all(s.applied for s in migrations.status(empty_database_dsn))


def test_unreachable_database_is_a_typed_error(tmp_path: Path) -> None:
    dsn = f"host={tmp_path} port=1 dbname=nothing connect_timeout=2"
    with pytest.raises(DatabaseUnavailableError, match="cannot connect"):
        migrations.apply(dsn)


async def test_repository_on_unmigrated_database_says_so(empty_database_dsn: str) -> None:
    async with PostgresHistoryRepository.from_dsn(empty_database_dsn) as repo:
        with pytest.raises(SchemaNotReadyError, match="migrations"):
            await repo.load_history("a", "s")
        with pytest.raises(SchemaNotReadyError):
            await repo.append_messages("a", "s", [{"role": "user", "content": "x"}])


ODD_LEGACY_ROWS = [  # what the 0001 schema accepted but agentcore's messages cannot hold
    ("support", "function", "lookup result", T0),
    ("support", "AI", "an ai reply", T0 + timedelta(seconds=1)),
    ("support", "tool", "a tool row without a call id", T0 + timedelta(seconds=2)),
    ("support", "human", "a human line", T0 + timedelta(seconds=3)),
    ("support", "Assistant ", "a capitalised reply", T0 + timedelta(seconds=4)),
    ("support", "SYSTEM", "a shouted system note", T0 + timedelta(seconds=5)),
    ("", "user", "no agent name", T0 + timedelta(seconds=6)),
    ("  ", "assistant", "blank agent name", T0 + timedelta(seconds=7)),
    ("\xa0\x1c\u3000", "user", "unicode-blank agent name", T0 + timedelta(seconds=8)),
    ("clock", "user", "go zero time", datetime(1, 1, 1, tzinfo=UTC)),
    ("clock", "user", "far future", datetime(9999, 12, 31, tzinfo=UTC)),
]
ODD_TIMES = ["-infinity", "infinity"]  # also accepted by the 0001 schema


async def test_odd_legacy_roles_and_names_load_as_valid_messages_and_roll_back(
    empty_database_dsn: str,
) -> None:
    legacy_database(empty_database_dsn, ODD_LEGACY_ROWS)
    with psycopg.connect(empty_database_dsn) as conn:
        for when in ODD_TIMES:
            conn.execute(
                "INSERT INTO conversation_history (agent_name, role, content, created_at)"
                " VALUES ('clock', 'user', %s, %s::timestamptz)",
                (when, when),
            )
        # Compared as text: Python cannot hold these times.
        before = conn.execute(
            "SELECT id, agent_name, role, content, created_at::text FROM conversation_history"
            " ORDER BY id"
        ).fetchall()
    migrations.apply(empty_database_dsn)

    async with PostgresHistoryRepository.from_dsn(empty_database_dsn) as repo:
        support = await repo.load_history("support", LEGACY_SESSION_ID)
        assert [(m.role, m.metadata) for m in support] == [
            ("user", {"legacy_role": "function"}),
            ("assistant", {"legacy_role": "AI"}),
            ("user", {"legacy_role": "tool"}),
            ("user", {"legacy_role": "human"}),
            ("assistant", {"legacy_role": "Assistant "}),
            ("system", {"legacy_role": "SYSTEM"}),
        ]
        unnamed = await repo.load_history("__legacy_unnamed__", LEGACY_SESSION_ID)
        assert [(m.content, m.metadata) for m in unnamed] == [
            ("no agent name", {"legacy_agent_name": ""}),
            ("blank agent name", {"legacy_agent_name": "  "}),
            ("unicode-blank agent name", {"legacy_agent_name": "\xa0\x1c\u3000"}),
        ]
        clock = await repo.load_history("clock", LEGACY_SESSION_ID)
        assert [m.content for m in clock] == [
            "-infinity",
            "go zero time",
            "far future",
            "infinity",  # in their true order
        ]
        assert [m.metadata["legacy_created_at"] for m in clock] == [
            "-infinity",
            "0001-01-01 00:00:00+00",
            "9999-12-31 00:00:00+00",
            "infinity",
        ]
        assert [s.agent_name for s in await repo.list_sessions("clock")] == ["clock"]
        for message in support + unnamed + clock:  # every stored row is a valid message
            assert Message.model_validate(message.model_dump()) == message
        # ...so a legacy history can be carried into a new session as it is.
        await repo.save_full_history("support", "copied", support)
    with psycopg.connect(empty_database_dsn) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO conversation_history (agent_name, session_id, seq, role, content)"
            " VALUES ('a', 's', 0, 'function', 'x')"
        )

    assert migrations.rollback(empty_database_dsn, steps=8) == [
        NINTH,
        EIGHTH,
        SEVENTH,
        SIXTH,
        FIFTH,
        FOURTH,
        THIRD,
        SECOND,
    ]
    with psycopg.connect(empty_database_dsn) as conn:
        after = conn.execute(
            "SELECT id, agent_name, role, content, created_at::text FROM conversation_history"
            " ORDER BY id"
        ).fetchall()
    assert after[: len(before)] == before  # roles, names and times restored exactly
