"""Shared test plumbing: one real PostgreSQL per test run, a fresh database per test."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pytest_postgresql.janitor import DatabaseJanitor

from agentcore import embedded, migrations

_counter = itertools.count()


@dataclass(frozen=True)
class PgServer:
    """Where the test server is, and the migrated template every test clones."""

    params: dict[str, Any]
    template: str

    def dsn(self, dbname: str) -> str:
        return make_conninfo("", **(self.params | {"dbname": dbname}))

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
        yield conninfo_to_dict(external)
        return
    # Never under the repository or $HOME: as root the server's wheel opens the
    # data directory's parents to the unprivileged user that runs PostgreSQL.
    server = embedded.start(
        Path(tempfile.mkdtemp(prefix="agentcore-test-")) / "pgdata", throwaway=True
    )
    try:
        yield conninfo_to_dict(server.dsn)
    finally:
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
        yield server


@contextmanager
def fresh_database(server: PgServer, *, migrated: bool = True) -> Iterator[str]:
    """A database of its own for one test (a clone of the template: about 30 ms)."""
    name = f"agentcore_test_{os.getpid()}_{next(_counter)}"
    with server.janitor(name, template=server.template if migrated else None):
        yield server.dsn(name)
