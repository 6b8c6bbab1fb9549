"""The app role of docs/operations.md can use agentcore and can change no schema.

The contract suite runs through that role too (``tests/contract``, the
``postgres-app-role`` variant).
"""

from __future__ import annotations

import itertools
import os
import random
import re

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from agentcore import MigrationError, PostgresHistoryRepository, migrations
from tests.support import PgServer, app_role, documented_app_role_sql, least_privilege_grants

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
    # Whole words: the table owner_state (migration 0007) is not an OWNER clause.
    single = re.findall(r"[A-Z_]+", grants.upper().replace("CREATE ROLE", ""))
    words = {*single, *(f"{a} {b}" for a, b in itertools.pairwise(single))}
    for word in ("ALL", "TRUNCATE", "CREATE ON", "SUPERUSER", "CREATEDB", "OWNER"):
        assert word not in words, word


@pytest.mark.parametrize("statement", DDL)
def test_the_app_role_cannot_change_the_schema(database_dsn: str, statement: str) -> None:
    with app_role(database_dsn) as app_dsn, psycopg.connect(app_dsn) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement.encode())


def test_migrations_need_the_owner_but_the_app_role_can_read_their_state(
    database_dsn: str,
) -> None:
    every = len(migrations.status(database_dsn))
    with app_role(database_dsn) as app_dsn:
        # Reading the state needs no lock: status, a plan, and apply on a current schema.
        assert [m.applied for m in migrations.status(app_dsn)] == [True] * every
        assert migrations.apply(app_dsn) == []
        assert migrations.plan_rollback(app_dsn).ids == [migrations.status(app_dsn)[-1].id]
        with pytest.raises(MigrationError, match="may not write yoyo's lock table"):
            migrations.rollback(app_dsn, steps=None)
        newest = migrations.rollback(database_dsn)  # the owner can
        with pytest.raises(MigrationError, match="may not write yoyo's lock table"):
            migrations.apply(app_dsn)  # something is pending now
        assert [m.applied for m in migrations.status(app_dsn)] == [True] * (every - 1) + [False]
    assert migrations.apply(database_dsn) == newest


def test_a_role_that_may_not_read_yoyos_tables_is_told_what_to_grant(database_dsn: str) -> None:
    with app_role(database_dsn) as app_dsn:
        with psycopg.connect(database_dsn, autocommit=True) as conn:
            role = psycopg.conninfo.conninfo_to_dict(app_dsn)["user"]
            conn.execute(f'REVOKE SELECT ON _yoyo_migration FROM "{role}"'.encode())
        with pytest.raises(MigrationError, match="let it read them"):
            migrations.status(app_dsn)


def test_the_documented_blocks_run_as_written_by_an_owner_that_is_no_superuser(
    pg_server: PgServer,
) -> None:
    """The first block as a superuser, the second as the owner, in the owner's database."""
    suffix = f"{os.getpid()}_{random.randrange(10**9)}"
    owner, app, dbname = f"owner_{suffix}", f"agentcore_app_{suffix}", f"owned_{suffix}"
    admin = pg_server.dsn("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{owner}" LOGIN NOSUPERUSER NOCREATEROLE'.encode())
        conn.execute(f'CREATE DATABASE "{dbname}" OWNER "{owner}"'.encode())
    owner_dsn = make_conninfo(pg_server.dsn(dbname), user=owner)
    app_dsn = make_conninfo(pg_server.dsn(dbname), user=app, password="change-me")
    create, grants = documented_app_role_sql(app, dbname)
    try:
        migrations.apply(owner_dsn)
        with psycopg.connect(owner_dsn, autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(create.encode())  # why the first block is not the owner's
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(create.encode())
        with psycopg.connect(owner_dsn, autocommit=True) as conn:
            conn.execute(grants.encode())
        assert all(m.applied for m in migrations.status(app_dsn))
        with psycopg.connect(app_dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO conversation_sessions (agent_name, session_id, next_seq) "
                "VALUES ('a', 's', 0)"
            )
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DROP TABLE conversation_history")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'.encode())
            conn.execute(f'DROP ROLE IF EXISTS "{app}"'.encode())
            conn.execute(f'DROP ROLE IF EXISTS "{owner}"'.encode())


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


def test_the_app_role_may_read_and_write_every_table_the_migrations_create(
    database_dsn: str,
) -> None:
    """Every table of every migration (yoyo's bookkeeping apart) is in the documented grants:
    a migration that adds a table fails here until docs/operations.md grants it."""
    with app_role(database_dsn) as app_dsn, psycopg.connect(database_dsn) as conn:
        role = conninfo_to_dict(app_dsn)["user"]
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                " AND relkind IN ('r', 'p') AND relname NOT LIKE '%%yoyo%%' ORDER BY relname"
            )
        ]
        assert {"conversation_history", "session_state", "langgraph_checkpoints"} <= set(tables)
        # has_table_privilege with a list is true if any one is held: each alone.
        missing = [
            f"{privilege} on {table}"
            for table in tables
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE")
            if not conn.execute(
                "SELECT has_table_privilege(%s, %s, %s)", (role, f"public.{table}", privilege)
            ).fetchone()
            == (True,)
        ]
    assert missing == []


async def test_the_langgraph_saver_works_through_the_app_role(database_dsn: str) -> None:
    from psycopg_pool import AsyncConnectionPool

    from agentcore.integrations.langgraph import AgentcoreSaver
    from bench.langgraph_graph import build_graph, config, run_turns

    with app_role(database_dsn) as app_dsn:
        async with AsyncConnectionPool(app_dsn, kwargs={"autocommit": True}, open=False) as pool:
            graph = build_graph(AgentcoreSaver(pool))
            await run_turns(graph, "t", range(1, 4))
            state = await graph.aget_state(config("t"))
            assert len(state.values["messages"]) == 6
            assert [c async for c in AgentcoreSaver(pool).alist(config("t"))]
