"""``agentcore export --out FILE`` writes private data: the file is 0600, whatever the umask.

Run as the installed command would be (a subprocess), with the umask it inherits.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcore import PostgresHistoryRepository
from tests.integration.test_cli import ROOT, Run, assert_one_line_error


def export(dsn: str, out: Path, *, umask: int, force: bool = False) -> Run:
    done = subprocess.run(
        [sys.executable, "-m", "agentcore", "export", "--out", str(out), "--dsn", dsn]
        + (["--force"] if force else []),
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "AGENTCORE_DATABASE_URL"},
        capture_output=True,
        text=True,
        timeout=120,
        umask=umask,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def store(database_dsn: str) -> Iterator[str]:
    async def fill() -> None:
        async with PostgresHistoryRepository.from_dsn(database_dsn) as repo:
            await repo.append_messages("a", "s", [{"role": "user", "content": "private"}])

    asyncio.run(fill())
    yield database_dsn


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_a_new_export_file_is_readable_by_its_owner_only(
    store: str, tmp_path: Path, umask: int
) -> None:
    out = tmp_path / "all.jsonl"
    run = export(store, out, umask=umask)
    assert run.code == 0, run.err
    assert mode(out) == 0o600
    assert "private" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_an_existing_file_is_overwritten_with_force_and_made_private(
    store: str, tmp_path: Path, umask: int
) -> None:
    out = tmp_path / "all.jsonl"
    out.write_text("old contents, much longer than the export " * 100, encoding="utf-8")
    out.chmod(0o666)
    run = export(store, out, umask=umask, force=True)
    assert run.code == 0, run.err
    assert mode(out) == 0o600
    text = out.read_text(encoding="utf-8")
    assert "old contents" not in text and "private" in text


def test_a_symbolic_link_is_never_followed(store: str, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("untouched", encoding="utf-8")
    link = tmp_path / "all.jsonl"
    link.symlink_to(target)
    assert_one_line_error(export(store, link, umask=0o022), "symbolic link")
    assert target.read_text(encoding="utf-8") == "untouched"
    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "not-there")
    assert_one_line_error(export(store, dangling, umask=0o022), "symbolic link")
    assert not (tmp_path / "not-there").exists()


def test_an_existing_file_is_left_alone_without_force(store: str, tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    out.write_text("an earlier export", encoding="utf-8")
    out.chmod(0o644)
    run = export(store, out, umask=0o022)
    assert_one_line_error(run, f"cannot write {out}: it exists; pass --force to overwrite it")
    assert out.read_text(encoding="utf-8") == "an earlier export"
    assert mode(out) == 0o644
    # Not a file that holds data: written as it is, without --force.
    assert export(store, Path(os.devnull), umask=0o022).code == 0
