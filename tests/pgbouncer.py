"""A private PgBouncer for the tests, in front of a throw-away embedded server of its own.

PgBouncer listens on a free loopback port and authenticates its clients with a
password generated for the run (scram-sha-256, from an auth file only its own
account can read); it reaches the server over the server's unix socket, where
the server authenticates it by peer, as it does every connection.

PgBouncer refuses to run as root. As root it runs as the server's own account
(``pgserver``, which owns the data directory and can already do anything to
that server): the throw-away server's ident map is given that account, and only
that server's. As any other account, PgBouncer runs as that account, which the
server already maps. The shared test server is not touched.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from agentcore import embedded
from tests.support import scratch_dir

INSTALL_HINT = "install it (Debian/Ubuntu: apt-get install pgbouncer)"
START_TIMEOUT_SECONDS = 15.0


PGBOUNCER_ENV = "AGENTCORE_TEST_PGBOUNCER"
"""The pgbouncer executable to test with, when not the one on PATH or in /usr/sbin."""


def pgbouncer_binary() -> str | None:
    """Where the ``pgbouncer`` executable is (Debian puts it in /usr/sbin), or ``None``.

    ``$AGENTCORE_TEST_PGBOUNCER`` names it instead, when set (it is then
    missing unless that file is executable).
    """
    given = os.environ.get(PGBOUNCER_ENV)
    if given is not None:
        return given if os.access(given, os.X_OK) else None
    found = shutil.which("pgbouncer")
    if found:
        return found
    for candidate in ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass(frozen=True)
class Bouncer:
    """A running PgBouncer: where clients connect, and its pool mode."""

    params: dict[str, Any]
    pool_mode: str

    def dsn(self, dbname: str) -> str:
        return make_conninfo("", **(self.params | {"dbname": dbname}))

    def through(self, direct_dsn: str) -> str:
        """The DSN reaching ``direct_dsn``'s database through PgBouncer."""
        return self.dsn(str(conninfo_to_dict(direct_dsn)["dbname"]))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _let_server_account_in(server: embedded.EmbeddedServer) -> None:
    """Map the server's own account in the throw-away server's ident map (as root only)."""
    ident = embedded.control_dir(server.data_dir) / "pg_ident.conf"
    line = f'agentcore "{embedded.SERVER_ACCOUNT}" all\n'
    if line in ident.read_text(encoding="utf-8"):
        return
    with ident.open("a", encoding="utf-8") as file:
        file.write(line)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")


@contextmanager
def running_pgbouncer(
    binary: str,
    server: embedded.EmbeddedServer,
    *,
    pool_mode: str = "transaction",
    pool_size: int = 20,
) -> Iterator[Bouncer]:
    """A PgBouncer in ``pool_mode`` in front of ``server``, stopped afterwards.

    Every database name is passed through (a ``*`` entry), so the per-test
    clones of the template are reachable. ``pool_size`` is the most server
    connections it opens per database (1: every client shares one).
    """
    socket_dir = str(conninfo_to_dict(server.dsn)["host"])
    user = str(conninfo_to_dict(server.dsn).get("user", "postgres"))
    as_root = os.geteuid() == 0
    with scratch_dir("agentcore-pgbouncer-") as folder:
        password = secrets.token_urlsafe(24)
        port = _free_port()
        auth = folder / "users.txt"
        auth.write_text(f'"{user}" "{password}"\n', encoding="utf-8")
        auth.chmod(0o600)
        config = folder / "pgbouncer.ini"
        log = folder / "pgbouncer.log"
        config.write_text(
            "\n".join(
                [
                    "[databases]",
                    f"* = host={socket_dir} port={embedded.PORT}",
                    "[pgbouncer]",
                    "listen_addr = 127.0.0.1",
                    f"listen_port = {port}",
                    "unix_socket_dir =",
                    "auth_type = scram-sha-256",
                    f"auth_file = {auth}",
                    f"pool_mode = {pool_mode}",
                    "max_client_conn = 1000",
                    f"default_pool_size = {pool_size}",
                    f"logfile = {log}",
                    "log_connections = 0",
                    "log_disconnections = 0",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        config.chmod(0o600)
        account: str | None = None
        if as_root:
            account = embedded.SERVER_ACCOUNT
            for path in (folder, auth, config):
                shutil.chown(path, user=account, group=account)
            folder.chmod(0o700)
            _let_server_account_in(server)
        # Its log goes to the log file (read on a failed start); its stderr, which
        # repeats it, to nothing: an unread pipe would fill up and stop PgBouncer.
        # As root the child is the server's account from its start (its own
        # group, no others), not through pgbouncer's -u, which not every version has.
        process = subprocess.Popen(
            [binary, str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=account,
            group=account,
            extra_groups=[] if account else None,
        )
        try:
            bouncer = Bouncer(
                params={"host": "127.0.0.1", "port": port, "user": user, "password": password},
                pool_mode=pool_mode,
            )
            _wait_until_serving(process, bouncer, log)
            yield bouncer
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_serving(process: subprocess.Popen[bytes], bouncer: Bouncer, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            logged = log.read_text(errors="replace") if log.exists() else "(no log)"
            raise RuntimeError(f"pgbouncer exited with {process.returncode}: {logged}")
        try:
            with psycopg.connect(bouncer.dsn("postgres"), connect_timeout=2, autocommit=True):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
