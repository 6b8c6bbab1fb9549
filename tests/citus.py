"""A Citus cluster on this machine for the tests: a coordinator and two workers.

Citus is not on the package index, and this repository holds no recipe that
builds it: it must already be installed into a PostgreSQL installation
(``citus.so`` in that installation's ``pg_config --pkglibdir``). The
installation is ``$AGENTCORE_CITUS_BINDIR`` (its ``bin`` directory) when set,
else the first ``/usr/lib/postgresql/<major>/bin`` (Debian's layout) whose
library directory holds ``citus.so``. When none is found, :func:`citus_missing`
says what is missing, and the distributed tests skip with that reason, loudly
(tests/conftest.py prints it in the run's summary).

Each node has its own data directory (0700) in a scratch directory removed
afterwards, listens on a free loopback port only (no unix socket), and lets in
the role ``postgres`` with a password generated for the run (scram-sha-256).
The nodes reach each other the same way: each server is started with
``PGPASSFILE`` naming a password file only its account can read. PostgreSQL
refuses to run as root: as root the nodes run as the embedded server's account
(``pgserver``, agentcore/embedded.py), which owns their directories. Every node
is stopped by the process id its ``postmaster.pid`` names (a fast shutdown,
SIGINT), then its directory is removed.
"""

from __future__ import annotations

import os
import pwd
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from agentcore import embedded
from tests.support import scratch_dir

CITUS_BINDIR_ENV = "AGENTCORE_CITUS_BINDIR"
"""The ``bin`` directory of a PostgreSQL installation with Citus installed."""

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
WORKERS = 2
SHARD_COUNT = 32
"""Citus' default: the shards of a distributed table (bench/citus.py measures with it)."""
TEST_SHARD_COUNT = 4
"""The tests' shards per table (tests/conftest.py): two per worker still puts a
conversation's statements on one shard of several, and each statement over
every shard (a per-test reset, an owner's page) sends 4 tasks instead of 32."""

_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "shared_preload_libraries": "'citus'",
    "max_connections": "200",
    # citus_move_shard_placement copies a shard by logical replication.
    "wal_level": "logical",
    "max_replication_slots": "20",
    "max_wal_senders": "20",
    "citus.shard_replication_factor": "1",
    # The nodes talk over loopback, where the servers offer no TLS.
    "citus.node_conninfo": "'sslmode=disable'",
    # How a node reaches itself (shard splits, moves): over loopback too.
    "citus.local_hostname": "'127.0.0.1'",
    "log_min_messages": "warning",
    "logging_collector": "off",
}

_THROWAWAY_SETTINGS = {
    # A test cluster's directories are deleted when it stops: a crash loses
    # nothing anyone keeps, so nothing waits for the disk (as the tests'
    # embedded servers, agentcore/embedded.py's throwaway).
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def _pkglibdir(bindir: Path) -> Path | None:
    pg_config = bindir / "pg_config"
    if not os.access(pg_config, os.X_OK):
        return None
    done = subprocess.run(
        [str(pg_config), "--pkglibdir"], capture_output=True, text=True, check=False
    )
    return Path(done.stdout.strip()) if done.returncode == 0 else None


def _candidate_bindirs() -> list[Path]:
    given = os.environ.get(CITUS_BINDIR_ENV)
    if given:
        return [Path(given)]
    return sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def citus_bindir() -> Path | None:
    """The ``bin`` directory of a PostgreSQL installation that has Citus, or ``None``."""
    for bindir in _candidate_bindirs():
        libdir = _pkglibdir(bindir)
        if libdir is not None and (libdir / "citus.so").is_file():
            return bindir
    return None


def citus_missing() -> str | None:
    """Why no Citus cluster can be started here, or ``None`` when one can."""
    if citus_bindir() is not None:
        return None
    looked = ", ".join(str(path) for path in _candidate_bindirs()) or "no /usr/lib/postgresql/*/bin"
    return (
        f"CITUS IS NOT INSTALLED: no citus.so in the library directory (pg_config --pkglibdir) "
        f"of {looked}; build Citus from its source (github.com/citusdata/citus, a release "
        f"that supports the installation's PostgreSQL) with PGXS against that installation "
        f"and install it there, or set ${CITUS_BINDIR_ENV} to the bin directory of one that has it"
    )


@dataclass(frozen=True)
class Node:
    """One running node: its port and data directory, and its postmaster's process id."""

    port: int
    data_dir: Path
    pid: int


@dataclass(frozen=True)
class CitusCluster:
    """A running coordinator and its workers, all on loopback.

    Attributes:
        coordinator: The node applications and migrations connect to.
        workers: The nodes holding the shards.
        password: The role ``postgres``'s password on every node.
        bindir: The PostgreSQL installation's ``bin`` directory.
    """

    coordinator: Node
    workers: tuple[Node, ...]
    password: str
    bindir: Path

    def dsn(self, dbname: str = "postgres", node: Node | None = None) -> str:
        """A DSN of ``dbname`` on ``node`` (the coordinator by default)."""
        target = node or self.coordinator
        return make_conninfo(
            host="127.0.0.1", port=target.port, user="postgres", password=self.password,
            dbname=dbname,
        )  # fmt: skip


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _server_account() -> pwd.struct_passwd | None:
    """As root, the account the nodes run as (created like the embedded server's); else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(embedded.SERVER_ACCOUNT)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
             "/nonexistent", "--shell", "/usr/sbin/nologin", embedded.SERVER_ACCOUNT],
            check=True, capture_output=True,
        )  # fmt: skip
        return pwd.getpwnam(embedded.SERVER_ACCOUNT)


def _run_as(
    account: pwd.struct_passwd | None, argv: list[str], env: dict[str, str] | None = None
) -> None:
    user = group = None
    extra: list[int] | None = None
    if account is not None:
        user, group, extra = account.pw_uid, account.pw_gid, []
    base = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    done = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd="/", check=False,
        env=base | (env or {}), user=user, group=group, extra_groups=extra,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stdout}{done.stderr}")


def _own(path: Path, account: pwd.struct_passwd | None, mode: int) -> None:
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid)
    path.chmod(mode)


def _start_node(
    bindir: Path, folder: Path, name: str, password_file: Path, pgpass: Path,
    account: pwd.struct_passwd | None, settings: dict[str, str],
) -> Node:  # fmt: skip
    data_dir = folder / name
    data_dir.mkdir()
    _own(data_dir, account, 0o700)
    # Without fsync (a throw-away node) initdb need not flush its files either.
    no_sync = ["--no-sync"] if settings.get("fsync") == "off" else []
    _run_as(account, [
        str(bindir / "initdb"), "-D", str(data_dir), "-U", "postgres", "-E", "UTF8",
        "--locale=C", "--auth-local=reject", "--auth-host=scram-sha-256",
        f"--pwfile={password_file}", *no_sync,
    ])  # fmt: skip
    port = _free_port()
    with (data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(f"port = {port}\n")
        for key, value in settings.items():
            conf.write(f"{key} = {value}\n")
    (data_dir / "pg_hba.conf").write_text(
        "host all all 127.0.0.1/32 scram-sha-256\n"
        "host replication all 127.0.0.1/32 scram-sha-256\n",
        encoding="utf-8",
    )
    log = folder / f"{name}.log"
    log.touch()
    _own(log, account, 0o600)
    _run_as(
        account,
        [str(bindir / "pg_ctl"), "start", "-w", "-t", str(int(START_TIMEOUT_SECONDS)),
         "-D", str(data_dir), "-l", str(log)],
        env={"PGPASSFILE": str(pgpass), "HOME": str(data_dir)},
    )  # fmt: skip
    pid = int((data_dir / "postmaster.pid").read_text(encoding="utf-8").splitlines()[0])
    return Node(port=port, data_dir=data_dir, pid=pid)


def _signal(pid: int, number: int) -> bool:
    """Send signal ``number`` to ``pid`` (0: none); whether that process was still there."""
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        return False
    return True


def _stop_nodes(nodes: list[Node], *, immediate: bool) -> None:
    """Shut every node down at once, by its postmaster's process id; wait until all are gone.

    A fast shutdown (SIGINT), or with ``immediate`` an immediate one (SIGQUIT:
    no checkpoint, for nodes whose directories are thrown away). A node still
    there after :data:`STOP_TIMEOUT_SECONDS` gets SIGQUIT.
    """
    first = signal.SIGQUIT if immediate else signal.SIGINT
    running = [node for node in nodes if _signal(node.pid, first)]
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while running and time.monotonic() < deadline:
        time.sleep(0.05)
        running = [node for node in running if _signal(node.pid, 0)]
    for node in running:
        _signal(node.pid, signal.SIGQUIT)


def _set_up(cluster: CitusCluster) -> None:
    for node in (cluster.coordinator, *cluster.workers):
        with psycopg.connect(cluster.dsn(node=node), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS citus")
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(
            "SELECT citus_set_coordinator_host('127.0.0.1', %s)", [cluster.coordinator.port]
        )
        for worker in cluster.workers:
            conn.execute("SELECT citus_add_node('127.0.0.1', %s)", [worker.port])


@contextmanager
def running_cluster(
    bindir: Path | None = None,
    workers: int = WORKERS,
    *,
    citus: bool = True,
    shard_count: int = SHARD_COUNT,
    throwaway: bool = False,
) -> Iterator[CitusCluster]:
    """A coordinator and ``workers`` workers with Citus, stopped by process id afterwards.

    The database ``postgres`` on every node has the ``citus`` extension, and the
    workers are registered with the coordinator; nothing of agentcore's is created.
    A table distributed on it gets ``shard_count`` shards (``citus.shard_count``).
    With ``throwaway`` the nodes do not wait for the disk (``fsync``,
    ``synchronous_commit`` and ``full_page_writes`` off): the tests' cluster,
    not the bench's. With ``citus=False`` (and no workers) it is a single
    PostgreSQL of the same installation and settings, without the extension:
    the baseline of bench/citus.py.
    """
    found = bindir or citus_bindir()
    if found is None:
        raise RuntimeError(citus_missing())
    account = _server_account()
    password = secrets.token_urlsafe(24)
    settings = _SETTINGS | {"citus.shard_count": str(shard_count)}
    if throwaway:
        settings |= _THROWAWAY_SETTINGS
    with scratch_dir("agentcore-citus-") as folder, ExitStack() as stack:
        secrets_dir = folder / "secrets"
        secrets_dir.mkdir()
        _own(secrets_dir, account, 0o700)
        password_file = secrets_dir / "password"
        password_file.write_text(password + "\n", encoding="utf-8")
        _own(password_file, account, 0o600)
        pgpass = secrets_dir / "pgpass"
        pgpass.write_text(f"127.0.0.1:*:*:postgres:{password}\n", encoding="utf-8")
        _own(pgpass, account, 0o600)
        nodes: list[Node] = []
        stack.callback(_stop_nodes, nodes, immediate=throwaway)
        names = ["coordinator", *(f"worker{i}" for i in range(1, workers + 1))]
        # The nodes are set up and started side by side (initdb is most of it).
        with ThreadPoolExecutor(max_workers=len(names)) as starting:
            started = [
                starting.submit(
                    _start_node, found, folder, name, password_file, pgpass, account, settings
                )
                for name in names
            ]
        failed = [future.exception() for future in started if future.exception() is not None]
        nodes.extend(future.result() for future in started if future.exception() is None)
        if failed:
            raise failed[0]  # type: ignore[misc]
        cluster = CitusCluster(
            coordinator=nodes[0], workers=tuple(nodes[1:]), password=password, bindir=found
        )
        if citus:
            _set_up(cluster)
        yield cluster
