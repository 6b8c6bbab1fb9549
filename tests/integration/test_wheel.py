"""The built wheel works on its own: installed into a fresh virtualenv, run from elsewhere.

Builds the wheel with ``pip wheel`` (hatchling from PyPI, in pip's isolated
build environment) and installs it with its dependencies from PyPI, without
the ``embedded`` extra, into a new venv. Slow: about a minute with a cold pip cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import CITUS_MIGRATION, LANGGRAPH_MIGRATION

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(
    *argv: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--disable-pip-version-check",
        "-q",
        "-w",
        out,
        ROOT,
        cwd=out,
    )
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("agentcore_history-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bin/ folder of a fresh venv holding the wheel and its dependencies."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home / "venv", with_pip=True)
    bin_dir = home / "venv" / ("Scripts" if os.name == "nt" else "bin")
    done = _run(
        bin_dir / "python",
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "-q",
        wheel,
        cwd=home,
    )
    assert done.returncode == 0, done.stderr
    yield bin_dir


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTCORE_", "PYTHON"))}
    return env | {"AGENTCORE_DATA_DIR": str(tmp / "data")}


def test_the_wheel_carries_the_sql_and_the_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"agentcore/_data/sql/history.sql", "agentcore/_data/sql/sessions.sql"} <= names
    assert "agentcore/_data/migrations/0002_session_scoped_history.rollback.sql" in names
    assert "agentcore/py.typed" in names
    assert "agentcore/cli/__init__.py" in names


def test_the_wheel_and_the_sdist_carry_the_mit_license(
    wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License\n\nCopyright (c) 2026 the agentcore authors\n")
    with zipfile.ZipFile(wheel) as built:
        (dist_info,) = {n.split("/")[0] for n in built.namelist() if ".dist-info/" in n}
        assert built.read(f"{dist_info}/licenses/LICENSE").decode() == license_text
        metadata = built.read(f"{dist_info}/METADATA").decode()
    assert "License-Expression: MIT\n" in metadata
    assert "License-File: LICENSE\n" in metadata

    out = tmp_path_factory.mktemp("sdist")
    code = f"from hatchling.build import build_sdist; print(build_sdist({str(out)!r}))"
    built_sdist = _run(sys.executable, "-c", code, cwd=ROOT)
    assert built_sdist.returncode == 0, built_sdist.stderr
    with tarfile.open(out / built_sdist.stdout.strip()) as sdist:
        member = sdist.extractfile("agentcore_history-0.1.0/LICENSE")
        assert member is not None
        assert member.read().decode() == license_text
        # docs/performance.md links to the benchmarks' notes: they ship beside the docs.
        assert "agentcore_history-0.1.0/bench/NOTES.md" in sdist.getnames()


def test_installed_command_runs_the_demo_and_the_migrations(
    installed: Path, empty_database_dsn: str, tmp_path: Path
) -> None:
    env = _env(tmp_path)

    def migrate_status() -> list[str]:
        # Run from an empty folder: only the installed copy of agentcore can be imported.
        run = _run(
            installed / "agentcore",
            "migrate",
            "status",
            "--dsn",
            empty_database_dsn,
            cwd=tmp_path,
            env=env,
        )
        assert run.returncode == 0, run.stderr
        return run.stdout.split()

    migration_files = [m for m in (ROOT / "migrations").glob("*.sql") if ".rollback" not in m.name]
    assert migrate_status()[::2] == ["pending"] * len(migration_files)

    first = _run(
        installed / "agentcore", "demo", "--dsn", empty_database_dsn, cwd=tmp_path, env=env
    )
    assert first.returncode == 0, first.stderr
    assert (
        "applied 0001_conversation_history, 0002_session_scoped_history, 0003_session_metadata, "
        "0004_exact_items, 0005_hot_session_updates, 0006_cached_role_check, 0007_scoped_state, "
        f"{LANGGRAPH_MIGRATION}, {CITUS_MIGRATION}" in first.stdout
    )
    assert "Run 1:" in first.stdout
    second = _run(
        installed / "python",
        "-m",
        "agentcore",
        "demo",
        "--dsn",
        empty_database_dsn,
        cwd=tmp_path,
        env=env,
    )
    assert second.returncode == 0, second.stderr
    assert "Run 2:" in second.stdout
    assert "I remember 4 earlier messages" in second.stdout

    assert migrate_status() == [
        "applied",
        "0001_conversation_history",
        "applied",
        "0002_session_scoped_history",
        "applied",
        "0003_session_metadata",
        "applied",
        "0004_exact_items",
        "applied",
        "0005_hot_session_updates",
        "applied",
        "0006_cached_role_check",
        "applied",
        "0007_scoped_state",
        "applied",
        LANGGRAPH_MIGRATION,
        "applied",
        CITUS_MIGRATION,
    ]
    where = _run(
        installed / "python",
        "-c",
        "import agentcore.resources as r; print(r.data_dir('sql'))",
        cwd=tmp_path,
        env=env,
    )
    assert "site-packages" in where.stdout and "_data" in where.stdout


def test_without_the_embedded_extra_the_default_database_names_the_extra(
    installed: Path, tmp_path: Path
) -> None:
    run = _run(
        installed / "agentcore", "sessions", "--agent", "a", cwd=tmp_path, env=_env(tmp_path)
    )
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        "agentcore: error: the embedded database needs the 'embedded' extra: "
        "pip install 'agentcore-history[embedded]' (from a checkout of agentcore: "
        "pip install '.[embedded]'); or use another database with --dsn or "
        "$AGENTCORE_DATABASE_URL"
    ]
    info = _run(installed / "agentcore", "db", "info", cwd=tmp_path, env=_env(tmp_path))
    assert info.returncode == 0, info.stderr
    assert "not created yet" in info.stdout


@pytest.mark.parametrize("action", ["stop", "dsn"])
def test_without_the_embedded_extra_db_commands_name_the_extra_and_no_dsn(
    installed: Path, tmp_path: Path, action: str
) -> None:
    pgdata = tmp_path / "data" / "pgdata"
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("18\n")  # looks initialised: stop needs the wheel
    run = _run(installed / "agentcore", "db", action, cwd=tmp_path, env=_env(tmp_path))
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        "agentcore: error: the embedded database needs the 'embedded' extra: "
        "pip install 'agentcore-history[embedded]' (from a checkout of agentcore: "
        "pip install '.[embedded]')"
    ]


def test_the_installed_distribution_is_agentcore_history(installed: Path, tmp_path: Path) -> None:
    code = (
        "import importlib.metadata as m, agentcore.errors as e;"
        "print(m.version(e.DISTRIBUTION_NAME), m.packages_distributions()['agentcore'])"
    )
    run = _run(installed / "python", "-c", code, cwd=tmp_path, env=_env(tmp_path))
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0.1.0", "['agentcore-history']"]
