"""run.py, the quickstart's entry point: its help, its usage errors, what it runs and prints."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_run_py() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_py_under_test", ROOT / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_py(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("flag", ["--help", "-h", "help"])
def test_help_explains_both_commands_and_exits_0(flag: str) -> None:
    done = run_py(flag)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("usage: python3 run.py {demo,test} [arguments...]\n")
    assert "\n  demo   run `agentcore demo` on the embedded database" in done.stdout
    assert "\n  test   run ruff, mypy --strict and import-linter" in done.stdout
    assert "Extra arguments go to pytest" in done.stdout


@pytest.mark.parametrize(
    ("argv", "problem"),
    [(["bogus"], "unknown command 'bogus'"), ([], "no command given")],
)
def test_an_unknown_or_missing_command_exits_2_with_the_usage(
    argv: list[str], problem: str
) -> None:
    done = run_py(*argv)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        "usage: python3 run.py {demo,test} [arguments...]",
        f"run.py: error: {problem}; see python3 run.py --help",
    ]


def test_the_demo_is_told_how_the_user_started_it(monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_run_py()
    calls: list[tuple[list[str], dict[str, str] | None]] = []

    def run(command: list[str], env: dict[str, str] | None = None) -> int:
        calls.append((command, env))
        return 0

    monkeypatch.setattr(module, "ensure_installed", lambda extra: None)
    monkeypatch.setattr(module, "run", run)
    assert module.main(["demo", "--dsn", "host=db"]) == 0
    ((command, env),) = calls
    assert command[1:] == ["demo", "--dsn", "host=db"] and command[0].endswith("agentcore")
    assert env == {"AGENTCORE_PROG": "python3 run.py"}


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "ci-log"])
def test_a_first_install_prints_each_step_and_shows_pips_progress_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    terminal: bool,
) -> None:
    module = load_run_py()
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()  # the venv exists; its packages do not yet
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "VENV", tmp_path / ".venv")
    monkeypatch.setattr(module, "PYTHON", python)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: terminal)
    commands: list[list[str]] = []

    def run(command: list[str], env: dict[str, str] | None = None) -> int:
        commands.append(command)
        return 0

    monkeypatch.setattr(module, "run", run)

    module.ensure_installed("embedded")

    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [
        "run.py: [1/2] upgrading pip in .venv ...",
        "run.py: [2/2] installing agentcore-history[embedded] and its dependencies into .venv "
        "(15-40 s the first time) ...",
    ]
    assert lines[2].startswith("run.py: .venv is ready (") and len(lines) == 3
    assert [c[-2:] for c in commands] == [["--upgrade", "pip"], ["-e", ".[embedded]"]]
    for command in commands:
        assert ("-q" in command) is not terminal  # pip's own progress only on a terminal
    assert (tmp_path / ".venv" / ".agentcore-embedded").exists()
    module.ensure_installed("embedded")  # stamped: nothing more to do
    assert len(commands) == 2 and capsys.readouterr().out == ""


def test_a_venv_from_before_the_rename_loses_the_old_distribution_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module = load_run_py()
    monkeypatch.setattr(module, "VENV", tmp_path)
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    assert module.stale_distribution() is False
    (site / "agentcore_history-0.1.0.dist-info").mkdir(parents=True)
    assert module.stale_distribution() is False
    (site / "agentcore-0.1.0.dist-info").mkdir()
    assert module.stale_distribution() is True

    steps = module.install_steps("test", terminal=False, stale=True)
    assert steps[0][1][-4:] == ["uninstall", "--yes", "-q", "agentcore"]
    assert steps[1:] == module.install_steps("test", terminal=False)


def test_test_type_checks_the_library_its_tests_and_the_benchmarks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = load_run_py()
    commands: list[list[str]] = []

    def run(command: list[str], env: dict[str, str] | None = None) -> int:
        commands.append(command)
        return 0

    monkeypatch.setattr(module, "ensure_installed", lambda extra: None)
    monkeypatch.setattr(module, "run", run)
    assert module.main(["test", "tests/unit", "-q"]) == 0
    tools = {command[2]: command[3:] for command in commands if command[1:2] == ["-m"]}
    assert tools["ruff"] == ["check", "agentcore", "tests", "bench", "run.py"]
    assert tools["mypy"] == ["agentcore", "tests", "bench"]
    assert tools["pytest"] == ["tests/unit", "-q"]
