"""The embedded database is private to the account that started it (issue 25).

A second real OS account tries to reach the server on every path the code can
take: started by root and by a normal account, with a data directory whose
socket fits in it and one too long for a socket, with or without a per-user
runtime directory (which older platformdirs releases put in the shared temp
dir). Root also must not be steered by what the server's account writes.

These tests create OS accounts, so they need root (CI runs as root); as a
normal user they are skipped, with that reason in the summary.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from agentcore import embedded
from agentcore.errors import DatabaseUnavailableError
from tests.support import scratch_dir

ROOT = Path(__file__).resolve().parents[2]
_PATHS = {
    "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))]
    )
}
OWNER, INTRUDER = "agentcore-owner", "agentcore-intruder"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="creates a second and a third OS account to attack the server: needs root (CI is)",
)

# Speaks just enough of PostgreSQL's protocol, with the standard library only,
# to tell whether a socket lets this account in: "unreachable" (connect()
# refused), "refused" (the server said no), or "admitted".
_PROBE = r"""
import json, os, socket, struct, sys
out = {}
for path in json.loads(sys.argv[1]):
    for user in json.loads(sys.argv[2]):
        key = f"{path} as {user}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        try:
            sock.connect(path)
        except OSError as exc:
            out[key] = f"unreachable: {exc.strerror}"
            continue
        body = struct.pack("!i", 196608)
        for k, v in (("user", user), ("database", "postgres")):
            body += k.encode() + b"\0" + v.encode() + b"\0"
        body += b"\0"
        sock.sendall(struct.pack("!i", len(body) + 4) + body)
        kind = sock.recv(1)
        length = struct.unpack("!i", sock.recv(4))[0]
        payload = sock.recv(length - 4)
        sock.close()
        if kind == b"R" and struct.unpack("!i", payload[:4])[0] == 0:
            out[key] = "admitted"
        elif kind == b"R":
            out[key] = "asked for a password"
        else:
            out[key] = "refused: " + payload.decode(errors="replace")[:120]
print(json.dumps(out))
"""

_START = r"""
import json, pathlib, sys, tempfile
if sys.argv[1] == "runtime-dir-in-tmp":
    # What platformdirs < 4.3 (and the wheel) did without XDG_RUNTIME_DIR.
    import platformdirs
    platformdirs.user_runtime_dir = lambda *a, **k: tempfile.gettempdir()
    platformdirs.user_runtime_path = lambda *a, **k: pathlib.Path(tempfile.gettempdir())
from agentcore import embedded
server = embedded.start(embedded.default_data_dir())
print(json.dumps({"dsn": server.dsn, "pid": embedded.status(server.data_dir).pid}))
"""

_STOP = """
from agentcore import embedded
print(embedded.stop(embedded.default_data_dir()))
"""


def _ensure_account(name: str) -> tuple[pwd.struct_passwd, bool]:
    try:
        return pwd.getpwnam(name), False
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--shell",
             "/usr/sbin/nologin", name],
            check=True, capture_output=True,
        )  # fmt: skip
        return pwd.getpwnam(name), True


@dataclass(frozen=True)
class Account:
    entry: pwd.struct_passwd
    python: str

    @property
    def name(self) -> str:
        return self.entry.pw_name

    def run(
        self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            user=self.entry.pw_uid,
            group=self.entry.pw_gid,
            extra_groups=[],
            env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", **_PATHS, **(env or {})},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def probe(self, sockets: list[str], users: list[str]) -> dict[str, str]:
        done = self.run([self.python, "-c", _PROBE, json.dumps(sockets), json.dumps(users)])
        assert done.returncode == 0, done.stderr
        result: dict[str, str] = json.loads(done.stdout)
        return result


def _python_for(entry: pwd.struct_passwd, imports: str) -> str | None:
    """A Python the account can run that imports ``imports`` from this checkout's venv.

    The venv's own interpreter may be a link into a folder closed to others
    (pyenv under /root): then a system python3 of the same version, given the
    venv's site-packages, does (PYTHONPATH is set by :meth:`Account.run`).
    """
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        account = Account(entry, candidate)
        try:
            if account.run([candidate, "-c", imports]).returncode == 0:
                return candidate
        except OSError:
            continue
    return None


@contextlib.contextmanager
def _accounts_lock() -> Iterator[None]:
    """Held while this process may add or delete the accounts: a lock on this file.

    On several workers this file's tests already run on one (ONE_WORKER in
    tests/conftest.py); the lock also covers another ``--dist`` mode.
    """
    fd = os.open(__file__, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing it releases the lock


@pytest.fixture(scope="module")
def accounts() -> Iterator[tuple[Account, Account]]:
    created: list[str] = []
    with _accounts_lock():
        try:
            pairs = [_ensure_account(name) for name in (OWNER, INTRUDER)]
            created = [entry.pw_name for entry, made in pairs if made]
            owner_python = _python_for(pairs[0][0], "import agentcore.embedded, psycopg")
            intruder_python = _python_for(pairs[1][0], "import socket, json")
            if owner_python is None or intruder_python is None:
                pytest.fail(
                    f"the accounts {OWNER}/{INTRUDER} cannot run this checkout's Python "
                    f"({sys.executable}) or any system python3: put the checkout where other "
                    "accounts can read it"
                )
            yield Account(pairs[0][0], owner_python), Account(pairs[1][0], intruder_python)
        finally:
            for name in created:
                subprocess.run(["userdel", name], check=False, capture_output=True)


def _sockets_under(folder: Path) -> set[str]:
    found: set[str] = set()
    for path, _, files in os.walk(folder):
        found.update(os.path.join(path, f) for f in files if f.startswith(".s.PGSQL."))
    return found


def _socket_of(dsn: str) -> Path:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    return Path(str(params["host"])) / f".s.PGSQL.{params['port']}"


def _modes_under(*folders: Path) -> dict[str, int]:
    modes = {}
    for folder in folders:
        for path, dirs, files in os.walk(folder):
            for name in [path, *(os.path.join(path, n) for n in dirs + files)]:
                modes[name] = os.lstat(name).st_mode
    return modes


def _assert_private(dsn: str, data_dir: Path, server_uid: int, intruder: Account) -> None:
    """The intruder reaches no socket of the server; nothing it made is open to others."""
    socket_path = _socket_of(dsn)
    socket_dir = socket_path.parent
    st = os.lstat(socket_dir)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (server_uid, 0o700), socket_dir
    assert stat.S_IMODE(os.lstat(socket_path).st_mode) & 0o077 == 0
    folders = [data_dir, embedded.control_dir(data_dir), socket_dir]
    open_to_others = {
        name: oct(stat.S_IMODE(mode))
        for name, mode in _modes_under(*folders).items()
        if not stat.S_ISLNK(mode) and mode & 0o002
    }
    assert open_to_others == {}
    sockets = sorted({str(socket_path)} | _sockets_under(Path(tempfile.gettempdir())))
    outcomes = intruder.probe(sockets, ["postgres", "agentcore_app", intruder.name])
    admitted = {key: outcome for key, outcome in outcomes.items() if "admitted" in outcome}
    asked = {key: outcome for key, outcome in outcomes.items() if "password" in outcome}
    assert (admitted, asked) == ({}, {})
    ours = [key for key in outcomes if key.startswith(str(socket_path))]
    assert ours and all(outcomes[key].startswith("unreachable") for key in ours), outcomes


def _assert_own_groups(pid: int) -> None:
    """The server runs with its own group only: not root's group, no supplementary ones."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    gids = {int(g) for g in fields["Gid"].split()}
    assert 0 not in gids and fields["Groups"].split() == []


@pytest.mark.slow
@pytest.mark.parametrize("length", ["short", "long"])
def test_a_server_root_starts_is_closed_to_other_accounts(
    accounts: tuple[Account, Account], length: str
) -> None:
    _, intruder = accounts
    with scratch_dir("agentcore-privacy-") as parent:
        data_dir = parent / ("d" * 120 if length == "long" else "d") / "pgdata"
        lock_existed = Path(tempfile.gettempdir(), ".lockfile").exists()
        server = embedded.start(data_dir, throwaway=True)
        try:
            assert (_socket_of(server.dsn).parent == data_dir) is (length == "short")
            with psycopg.connect(server.dsn) as conn:  # the owner (root) gets in
                assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
            server_uid = pwd.getpwnam(embedded.SERVER_ACCOUNT).pw_uid
            _assert_private(server.dsn, data_dir, server_uid, intruder)
            pid = embedded.status(data_dir).pid
            assert pid is not None
            _assert_own_groups(pid)
            assert Path(tempfile.gettempdir(), ".lockfile").exists() is lock_existed
        finally:
            server.stop()
        assert not _socket_of(server.dsn).parent.exists() or length == "short"


@pytest.mark.slow
@pytest.mark.parametrize(
    "variant", ["default-path", "long-path", "long-path, runtime-dir-in-tmp"]
)
def test_a_server_a_normal_account_starts_is_closed_to_other_accounts(
    accounts: tuple[Account, Account], variant: str
) -> None:
    owner, intruder = accounts
    with scratch_dir("agentcore-privacy-") as parent:
        home = parent / "home"
        home.mkdir(mode=0o700)
        os.chown(home, owner.entry.pw_uid, owner.entry.pw_gid)
        env = {"HOME": str(home)}
        if variant.startswith("long-path"):
            env["AGENTCORE_DATA_DIR"] = str(home / ("d" * 110))
        data_dir = Path(env.get("AGENTCORE_DATA_DIR", home / ".local/share/agentcore")) / "pgdata"
        mode = "runtime-dir-in-tmp" if "runtime" in variant else "plain"
        started = owner.run([owner.python, "-c", _START, mode], env)
        assert started.returncode == 0, started.stderr
        try:
            dsn = json.loads(started.stdout)["dsn"]
            # The owner gets in; the test would prove nothing otherwise.
            mine = owner.probe([str(_socket_of(dsn))], ["postgres"])
            assert list(mine.values()) == ["admitted"]
            _assert_private(dsn, data_dir, owner.entry.pw_uid, intruder)
        finally:
            stopped = owner.run([owner.python, "-c", _STOP], env)
            assert stopped.stdout.strip() == "True", stopped.stderr


@pytest.mark.slow
def test_root_never_signals_a_process_the_data_directory_names(
    accounts: tuple[Account, Account],
) -> None:
    """A postmaster.pid forged by the server's account cannot make root kill anything."""
    with scratch_dir("agentcore-privacy-") as parent:
        data_dir = parent / "pgdata"
        server = embedded.start(data_dir, throwaway=True)
        bystander = subprocess.Popen(["sleep", "300"])
        try:
            real = embedded.status(data_dir).pid
            assert real is not None
            forged = (data_dir / "postmaster.pid").read_text().splitlines()
            forged[0] = str(bystander.pid)
            (data_dir / "postmaster.pid").write_text("\n".join(forged) + "\n")
            # The server is the one root recorded, not the one the file names.
            assert embedded.status(data_dir).pid == real
            assert embedded.stop(data_dir) is True
            assert bystander.poll() is None
            assert not _process_alive(real)
            # With no record left, the forged file names no server either.
            assert embedded.stop(data_dir) is False
            assert bystander.poll() is None
        finally:
            bystander.send_signal(signal.SIGKILL)
            bystander.wait()
            server.stop()


@pytest.mark.slow
def test_root_follows_no_link_the_server_account_plants(
    accounts: tuple[Account, Account],
) -> None:
    with scratch_dir("agentcore-privacy-") as parent:
        data_dir = parent / "pgdata"
        vault = parent / "vault"
        vault.mkdir(mode=0o700)
        server = embedded.start(data_dir, throwaway=True)
        try:
            # One at a time: each file of the data directory root (or, once, the
            # wheel) wrote or could write, replaced by a link into root's folder.
            for name in [".handle_pids.json", "log", "postmaster.opts", "postmaster.pid"]:
                embedded.stop(data_dir)
                (data_dir / name).unlink(missing_ok=True)
                os.symlink(vault / name, data_dir / name)
                os.lchown(data_dir / name, *_ids(embedded.SERVER_ACCOUNT))
                # A link the server's own programs meet (its log) makes the start
                # fail, as pgserver cannot write into root's folder: either is fine.
                with contextlib.suppress(DatabaseUnavailableError):
                    embedded.start(data_dir)
                embedded.stop(data_dir)
                assert sorted(os.listdir(vault)) == [], name
                (data_dir / name).unlink()
        finally:
            server.stop()


def test_root_opens_no_folder_it_did_not_make(
    accounts: tuple[Account, Account], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Binaries in a closed folder (a venv under /root) are copied, not opened up."""
    install = embedded._installation()
    with scratch_dir("agentcore-privacy-") as parent:
        closed = parent / "closed"
        closed.mkdir(mode=0o700)
        package, libs = install.parent, install.parent.with_name(install.parent.name + ".libs")
        copy = closed / package.name / install.name
        shutil.copytree(install, copy, symlinks=True)
        shutil.copytree(libs, closed / libs.name, symlinks=True)
        cache = parent / "cache"
        monkeypatch.setattr(embedded, "_installation", lambda: copy)
        monkeypatch.setattr(embedded, "BINARY_CACHE", cache)
        data_dir = parent / "pgdata"
        before = {str(p): os.stat(p).st_mode for p in [closed, *closed.parents, *parent.parents]}
        server = embedded.start(data_dir, throwaway=True)
        try:
            pid = embedded.status(data_dir).pid
            assert pid is not None
            assert os.readlink(f"/proc/{pid}/exe").startswith(str(cache))
            after = {p: os.stat(p).st_mode for p in before}
            assert after == before
            blocked = parent / "blocked"
            blocked.mkdir(mode=0o700)
            with pytest.raises(DatabaseUnavailableError, match="chmod o\\+x"):
                embedded.start(blocked / "pgdata")
            assert stat.S_IMODE(os.stat(blocked).st_mode) == 0o700
        finally:
            server.stop()


def _ids(name: str) -> tuple[int, int]:
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def _process_alive(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.05)
    return True
