"""The app role of docs/operations.md can use agentcore and can change no schema.

The contract suite runs through that role too (``tests/contract``, the
``postgres-app-role`` variant).
"""

from __future__ import annotations

import psycopg
import pytest

from agentcore import MigrationError, PostgresHistoryRepository, migrations
from tests.support import app_role, least_privilege_grants

DDL = [
    "CREATE TABLE sneaky (x int)",
    "DROP TABLE conversation_history",
    "ALTER TABLE conversation_sessions ADD COLUMN sneaky int",
    "TRUNCATE conversation_history",
    "CREATE INDEX sneaky ON conversation_history (content)",
    "CREATE SCHEMA sneaky",
    "CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS 'SELECT 1'",
]


def test_the_documented_grants_are_only_row_rights() -> None:
    grants = "\n".join(
        line for line in least_privilege_grants().splitlines() if not line.startswith("--")
    )
    assert "SELECT, INSERT, UPDATE, DELETE" in grants
    for word in ("ALL", "TRUNCATE", "CREATE ON", "SUPERUSER", "CREATEDB", "OWNER"):
        assert word not in grants.upper().replace("CREATE ROLE", ""), word


@pytest.mark.parametrize("statement", DDL)
def test_the_app_role_cannot_change_the_schema(database_dsn: str, statement: str) -> None:
    with app_role(database_dsn) as app_dsn, psycopg.connect(app_dsn) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement.encode())


def test_migrations_need_the_owner(database_dsn: str) -> None:
    with app_role(database_dsn) as app_dsn:
        with pytest.raises(MigrationError):
            migrations.rollback(app_dsn, steps=None)
        with pytest.raises(MigrationError):
            migrations.apply(app_dsn)
    assert all(m.applied for m in migrations.status(database_dsn))
    every = len(migrations.status(database_dsn))
    assert len(migrations.rollback(database_dsn, steps=None)) == every  # the owner can


async def test_the_app_role_runs_every_operation(database_dsn: str) -> None:
    with app_role(database_dsn) as app_dsn:
        async with PostgresHistoryRepository.from_dsn(app_dsn) as repo:
            turn = [
                {"role": "user", "content": "q", "id": "1"},
                {"role": "assistant", "content": "a"},
            ]
            assert await repo.append_messages("bot", "s", turn) == 2
            assert await repo.append_messages("bot", "s", turn[:1]) == 0
            await repo.save_full_history("bot", "s", [*turn, {"role": "user", "content": "x"}])
            assert len(await repo.load_history("bot", "s", limit=2)) == 2
            assert [i.message_count for i in await repo.list_sessions("bot")] == [3]
            assert await repo.clear_session("bot", "s") == 3
