"""Shared test plumbing: one real PostgreSQL per test run, a fresh database per test."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pytest_postgresql.janitor import DatabaseJanitor

from agentcore import embedded, migrations

_counter = itertools.count()
_VERSIONS: dict[str, int] = {}

CREATED_DIRS: list[Path] = []
"""Every scratch directory this test run made; the run fails if one is left (tests/conftest.py)."""

FIGURES: Counter[str] = Counter()
"""What the reliability tests did in this run (operations, faults, inputs), by name.

Shown in the run's summary (tests/conftest.py), each worker's added up when the
suite runs on several (pytest-xdist)."""


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A new directory in the temp dir, removed afterwards with everything in it.

    As root it is 0711: an embedded server's data directory inside it must be
    reachable by the account that runs PostgreSQL (``pgserver``), and
    agentcore opens no folder it did not make.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        path.chmod(0o711)
    CREATED_DIRS.append(path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class PgServer:
    """Where the test server is, and the migrated template every test clones."""

    params: dict[str, Any]
    template: str

    def dsn(self, dbname: str) -> str:
        return make_conninfo("", **(self.params | {"dbname": dbname}))

    def key(self) -> tuple[str, str]:
        """The server and the template: two servers may have templates of one name."""
        return self.dsn("postgres"), self.template

    def version(self) -> int:
        """The server's ``server_version_num``, asked once."""
        key = self.dsn("postgres")
        if key not in _VERSIONS:
            with psycopg.connect(key) as conn:
                _VERSIONS[key] = conn.info.server_version
        return _VERSIONS[key]

    def janitor(
        self, dbname: str, *, template: str | None = None, as_template: bool = False
    ) -> DatabaseJanitor:
        return DatabaseJanitor(
            user=self.params.get("user", "postgres"),
            host=self.params.get("host", "localhost"),
            port=self.params.get("port", 5432),
            password=self.params.get("password"),
            dbname=dbname,
            template_dbname=template,
            as_template=as_template,
        )


@contextmanager
def running_server() -> Iterator[dict[str, Any]]:
    """``$AGENTCORE_TEST_DSN``'s server, or a throw-away embedded one in a temp dir."""
    external = os.environ.get("AGENTCORE_TEST_DSN")
    if external:
        try:
            yield conninfo_to_dict(external)
        finally:
            _close_admin()
        return
    with scratch_dir("agentcore-test-") as parent:
        server = embedded.start(parent / "pgdata", throwaway=True)
        try:
            yield conninfo_to_dict(server.dsn)
        finally:
            _close_admin()
            server.stop()


@contextmanager
def migrated_template(params: dict[str, Any]) -> Iterator[PgServer]:
    """A template database with every migration applied, made once per run."""
    name = f"agentcore_tmpl_{os.getpid()}"
    server = PgServer(params=params, template=name)
    janitor = server.janitor(name, as_template=True)
    janitor.drop()
    with janitor:
        janitor.load(lambda **_: migrations.apply(server.dsn(name)))
        try:
            yield server
        finally:
            drop_spares(server)


_ADMIN: dict[str, psycopg.Connection[Any]] = {}
"""One connection per server for creating and dropping the tests' databases."""


def _admin(server: PgServer, statement: sql.Composed) -> None:
    """Run ``statement`` on the server's admin connection (a new one if it was lost:
    some tests restart their server)."""
    dsn = server.dsn("postgres")
    conn = _ADMIN.get(dsn)
    if conn is not None and not conn.closed:
        try:
            conn.execute(statement)
            return
        except psycopg.OperationalError:
            conn.close()
    _ADMIN[dsn] = psycopg.connect(dsn, autocommit=True)
    _ADMIN[dsn].execute(statement)


def _close_admin() -> None:
    while _ADMIN:
        _ADMIN.popitem()[1].close()


@contextmanager
def fresh_database(server: PgServer, *, migrated: bool = True) -> Iterator[str]:
    """A database of its own for one test: a clone of the migrated template, dropped after.

    On PostgreSQL 15 and later the clone copies the template's files
    (``STRATEGY FILE_COPY``) instead of writing them to the WAL, the default:
    the template is small and the test servers run with ``fsync=off``, so the
    checkpoint that strategy needs is cheap (create and drop: 59 ms instead of
    104 ms through pytest-postgresql's janitor, measured on the shared machine).
    """
    name = f"agentcore_test_{os.getpid()}_{next(_counter)}"
    _create(server, name, server.template if migrated else None)
    try:
        yield server.dsn(name)
    finally:
        _drop(server, name)


def _create(server: PgServer, name: str, template: str | None) -> None:
    """``CREATE DATABASE name``, a clone of ``template`` (by its files on PostgreSQL 15+)."""
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        if server.version() >= 150000:
            create += sql.SQL(" STRATEGY FILE_COPY")
    _admin(server, create)


def _drop(server: PgServer, name: str) -> None:
    _admin(server, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


DOCS = Path(__file__).resolve().parents[1] / "docs"

LANGGRAPH_MIGRATION = next(
    p.stem
    for p in (Path(__file__).resolve().parents[1] / "migrations").glob("*.sql")
    if p.stem.endswith("_langgraph_checkpoints")
)
"""The LangGraph checkpointer's migration, by name: its number changes when branches merge."""

CITUS_MIGRATION = next(
    p.stem
    for p in (Path(__file__).resolve().parents[1] / "migrations").glob("*.sql")
    if p.stem.endswith("_citus_distribution")
)
"""The Citus distribution migration (the newest; a no-op without Citus), by name: its
number changes when branches merge."""


def least_privilege_blocks() -> tuple[str, str]:
    """The two SQL blocks of docs/operations.md's "Least-privilege role" section.

    The first creates the role (a superuser's or CREATEROLE's job), the second
    grants it its rights (the owner's).
    """
    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    section = text.split("## Least-privilege role", 1)[1].split("\n## ", 1)[0]
    blocks = [part.split("```", 1)[0] for part in section.split("```sql\n")[1:]]
    assert len(blocks) == 2, blocks
    return blocks[0], blocks[1]


def least_privilege_grants() -> str:
    """The owner's block of docs/operations.md's "Least-privilege role" section."""
    return least_privilege_blocks()[1]


def documented_app_role_sql(role: str, dbname: str) -> tuple[str, str]:
    """Both documented blocks for ``role`` in database ``dbname``."""
    create, grants = (
        block.replace("agentcore_app", role).replace("DATABASE agentcore ", f'DATABASE "{dbname}" ')
        for block in least_privilege_blocks()
    )
    return create, grants


@contextmanager
def app_role(owner_dsn: str) -> Iterator[str]:
    """Run the documented grants on ``owner_dsn``'s database; yield the app role's DSN."""
    dbname = conninfo_to_dict(owner_dsn)["dbname"]
    role = f"agentcore_app_{os.getpid()}_{next(_counter)}"
    create, grants = documented_app_role_sql(role, str(dbname))
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        conn.execute(create.encode())
        conn.execute(grants.encode())
    try:
        yield make_conninfo(owner_dsn, user=role, password="change-me")
    finally:
        with psycopg.connect(owner_dsn, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"'.encode())
            conn.execute(f'DROP ROLE "{role}"'.encode())


_SPARE: dict[tuple[str, str], list[str]] = {}
"""Emptied databases cloned from each template (by server and name), for the next test."""

_PRISTINE: dict[tuple[str, str], str] = {}
"""Each template's schema fingerprint (:data:`_FINGERPRINT`), as its clones start."""

_FINGERPRINT = """
SELECT md5(concat_ws(' | ',
  (SELECT string_agg(concat_ws(':', c.relname, c.relkind, c.relacl, c.reloptions), ','
                     ORDER BY c.relname)
     FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace),
  (SELECT string_agg(concat_ws(':', a.attrelid::regclass, a.attname,
                               format_type(a.atttypid, a.atttypmod), a.attnotnull,
                               a.attcollation, pg_get_expr(d.adbin, d.adrelid)), ','
                     ORDER BY a.attrelid::regclass::text, a.attnum)
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
     LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT string_agg(conname || ':' || pg_get_constraintdef(oid), ',' ORDER BY conname)
     FROM pg_constraint WHERE connamespace = 'public'::regnamespace),
  (SELECT string_agg(pg_get_indexdef(i.indexrelid), ',' ORDER BY i.indexrelid::regclass::text)
     FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
    WHERE c.relnamespace = 'public'::regnamespace),
  (SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal),
  (SELECT string_agg(p.oid::regprocedure::text, ',' ORDER BY p.oid::regprocedure::text)
     FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace),
  (SELECT string_agg(nspname || ':' || coalesce(nspacl::text, ''), ',' ORDER BY nspname)
     FROM pg_namespace),
  (SELECT string_agg(extname || ':' || extversion, ',' ORDER BY extname) FROM pg_extension),
  (SELECT string_agg(array_to_string(setconfig, ','), ';' ORDER BY setrole)
     FROM pg_db_role_setting
    WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())),
  (SELECT string_agg(defaclrole::regrole || ':' || defaclacl::text, ',' ORDER BY defaclrole)
     FROM pg_default_acl),
  (SELECT string_agg(migration_id, ',' ORDER BY migration_id) FROM _yoyo_migration),
  (SELECT count(*) FROM yoyo_lock)
)),
(SELECT count(*) FROM pg_stat_activity
  WHERE datname = current_database() AND pid <> pg_backend_pid()
    AND NOT (%(idle_ok)s AND state = 'idle'))
"""
"""A migrated database's schema, grants and settings in one hash; and its other connections."""


@contextmanager
def reused_database(server: PgServer, *, pooled: bool = False) -> Iterator[str]:
    """A migrated database for one test: a clone of the template, or an earlier test's,
    emptied.

    After the test its tables are truncated, and it is kept for the next test
    only if it is exactly as the template made it (:data:`_FINGERPRINT`: the
    schema, grants, settings, extensions, applied migrations) and no other
    connection is left in it; otherwise, or when the test failed, it is
    dropped. A clone and a drop cost a test about 60 ms of the server's CPU
    more than a truncate (measured on the shared machine): the contract suite
    has 1,400 such tests.

    ``pooled``: the test reached the database through PgBouncer, which keeps
    its server connections: idle ones (no transaction, no lock) may stay, and
    the next test's clients use them, as an application's next requests do.
    """
    spare = _SPARE.setdefault(server.key(), [])
    name = spare.pop() if spare else _clone(server)
    empty = False
    try:
        yield server.dsn(name)
        empty = _empty(server, name, pooled=pooled)
    finally:
        if empty:
            spare.append(name)
        else:
            _drop(server, name)


def _clone(server: PgServer) -> str:
    name = f"agentcore_test_{os.getpid()}_{next(_counter)}"
    _create(server, name, server.template)
    if server.key() not in _PRISTINE:
        with psycopg.connect(server.dsn(name)) as conn:
            row = conn.execute(_FINGERPRINT, {"idle_ok": False}).fetchone()
            assert row is not None and row[1] == 0, row
            _PRISTINE[server.key()] = row[0]
    return name


def _empty(server: PgServer, name: str, *, pooled: bool) -> bool:
    """Truncate every table but yoyo's; whether ``name`` is as its template made it."""
    try:
        with psycopg.connect(server.dsn(name), autocommit=True) as conn:
            conn.execute("SET lock_timeout = '2s'")
            for _ in range(50):  # a closed pool's backends take a moment to go
                row = conn.execute(_FINGERPRINT, {"idle_ok": pooled}).fetchone()
                if row is None or row[1] == 0:
                    break
                time.sleep(0.01)
            if row != (_PRISTINE[server.key()], 0):
                return False
            tables = [
                sql.Identifier(table)
                for (table,) in conn.execute(
                    "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                    " AND relkind IN ('r', 'p') AND relname NOT LIKE '%%yoyo%%'"
                )
            ]
            conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(sql.SQL(", ").join(tables)))
            return True
    except psycopg.Error:
        return False


def drop_spares(server: PgServer) -> None:
    """Drop the emptied clones of ``server``'s template that no test took."""
    for name in _SPARE.pop(server.key(), []):
        _drop(server, name)


@dataclass(frozen=True)
class AppRoleServer:
    """Databases cloned from :attr:`server`'s template already hold the documented grants."""

    server: PgServer
    role: str

    @contextmanager
    def database(self) -> Iterator[str]:
        """A fresh database of its own, and the app role's DSN for it."""
        with reused_database(self.server) as dsn:
            yield make_conninfo(dsn, user=self.role, password="change-me")


@contextmanager
def app_role_template(server: PgServer) -> Iterator[AppRoleServer]:
    """A template with docs/operations.md's grants run in it, and the role they grant to.

    Table and schema privileges and default privileges live in the database's
    own catalogs, so every clone of this template holds them: a test gets an
    app-role database for the price of a clone, instead of creating and
    dropping a role and running the grants each time (``app_role``).
    """
    name = f"agentcore_tmpl_app_{os.getpid()}"
    role = f"agentcore_app_{os.getpid()}_tmpl"
    create, grants = documented_app_role_sql(role, name)
    _create(server, name, server.template)
    try:
        with psycopg.connect(server.dsn(name), autocommit=True) as conn:
            conn.execute(create.encode())
            conn.execute(grants.encode())
        app = PgServer(params=server.params, template=name)
        try:
            yield AppRoleServer(app, role)
        finally:
            drop_spares(app)
    finally:
        _drop(server, name)
        _admin(server, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``agentcore ARGV`` in this process; its exit code, stdout and stderr."""
    from agentcore.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
