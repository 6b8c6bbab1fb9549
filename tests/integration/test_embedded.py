"""The embedded server: concurrent starts, reuse across processes, stop from a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from agentcore import SchemaNotReadyError, SyncHistoryRepository, embedded, migrations
from tests.support import scratch_dir

ROOT = Path(__file__).resolve().parents[2]

_START = """
import sys
from pathlib import Path
from agentcore import embedded
from tests.support import scratch_dir
server = embedded.start(Path(sys.argv[1]))
print(server.dsn)
"""


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Under the temp dir, never $HOME: as root the wheel opens the parents of
    # the data directory to the unprivileged user that runs PostgreSQL.
    with scratch_dir("agentcore-embedded-") as parent:
        try:
            yield parent / "pgdata"
        finally:
            embedded.stop(parent / "pgdata")


def _start_in_subprocess(data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _START, str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_processes_starting_at_once_share_one_server(data_dir: Path) -> None:
    first, second = _start_in_subprocess(data_dir), _start_in_subprocess(data_dir)
    outputs = [p.communicate(timeout=120) for p in (first, second)]

    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    dsns = {out.strip() for out, _ in outputs}
    assert len(dsns) == 1
    state = embedded.status(data_dir)
    assert state.running and state.initialized
    assert state.dsn in dsns
    with psycopg.connect(state.dsn) as conn:
        row = conn.execute("SELECT pg_postmaster_start_time() IS NOT NULL").fetchone()
    assert row == (True,)


@pytest.mark.slow
def test_server_outlives_its_starter_and_stops_from_another_process(data_dir: Path) -> None:
    starter = _start_in_subprocess(data_dir)
    out, err = starter.communicate(timeout=120)
    assert starter.returncode == 0, err
    with psycopg.connect(out.strip(), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (42)")

    assert embedded.status(data_dir).running
    assert embedded.stop(data_dir) is True
    assert not embedded.status(data_dir).running
    assert embedded.stop(data_dir) is False

    for _ in range(2):  # the second time, this process's earlier handle is reused
        server = embedded.start(data_dir)
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SELECT x FROM kept").fetchall() == [(42,)]
            assert conn.execute("SHOW fsync").fetchone() == ("on",)  # a kept server is durable
        assert embedded.stop(data_dir) is True


def test_a_throwaway_server_skips_fsync_and_a_kept_one_on_the_same_directory_does_not(
    data_dir: Path,
) -> None:
    """Throw-away data is deleted at stop: it is not worth a flush to disk (tests run faster)."""
    server = embedded.start(data_dir, throwaway=True)
    with psycopg.connect(server.dsn) as conn:
        assert conn.execute("SHOW fsync").fetchone() == ("off",)
    assert embedded.stop(data_dir) is True
    data_dir.mkdir(parents=True, exist_ok=True)
    kept = embedded.start(data_dir)
    with psycopg.connect(kept.dsn) as conn:
        assert conn.execute("SHOW fsync").fetchone() == ("on",)


def test_status_of_a_missing_directory_says_nothing_runs(tmp_path: Path) -> None:
    state = embedded.status(tmp_path / "nowhere")
    assert (state.initialized, state.running, state.dsn) == (False, False, None)
    assert embedded.stop(tmp_path / "nowhere") is False


_TWO_THROWAWAYS = """
import sys
from pathlib import Path
from agentcore import embedded
first = embedded.start(Path(sys.argv[1]) / "a" / "pgdata", throwaway=True)
second = embedded.start(Path(sys.argv[1]) / "b" / "pgdata", throwaway=True)
print(embedded.status(first.data_dir).pid, embedded.status(second.data_dir).pid)
first.stop()  # the other one is left to the end of the process
"""


@pytest.mark.slow
def test_throwaway_servers_are_all_discarded_when_the_process_exits() -> None:
    with scratch_dir("agentcore-embedded-") as parent:
        done = subprocess.run(
            [sys.executable, "-c", _TWO_THROWAWAYS, str(parent)],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        pids = [int(pid) for pid in done.stdout.split()]
        for name in ("a", "b"):
            assert not (parent / name / "pgdata").exists()
            assert not embedded.control_dir(parent / name / "pgdata").exists()
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


def test_app_dsn_is_the_least_privilege_role_once_the_schema_is_there(data_dir: Path) -> None:
    server = embedded.start(data_dir)
    with pytest.raises(SchemaNotReadyError, match=r"migrations\.apply\(server\.dsn\)"):
        server.app_dsn()
    migrations.apply(server.dsn)

    app_dsn = server.app_dsn()
    assert server.app_dsn() == app_dsn  # made once; granting again changes nothing
    assert conninfo_to_dict(app_dsn) == conninfo_to_dict(server.dsn) | {"user": "agentcore_app"}
    with SyncHistoryRepository.from_dsn(app_dsn) as history:
        history.append_messages("bot", "s1", [{"role": "user", "content": "hello"}])
        assert [m.content for m in history.load_history("bot", "s1")] == ["hello"]
    with psycopg.connect(app_dsn) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("agentcore_app",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DROP TABLE conversation_history")
