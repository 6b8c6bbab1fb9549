"""run.py, the quickstart's entry point: its help, its usage errors, what it runs and prints."""

from __future__ import annotations

import importlib.util
import os
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
    assert done.stdout.startswith("usage: python3 run.py {demo,test,lock} [arguments...]\n")
    assert "\n  demo   run `agentcore demo` on the embedded database" in done.stdout
    assert "\n  test   run ruff, mypy --strict and import-linter" in done.stdout
    assert "Extra arguments go to pytest" in done.stdout
    assert "\n         test --newest runs the same in .venv-newest" in done.stdout
    assert "\n  lock   compile locks/ again" in done.stdout


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
        "usage: python3 run.py {demo,test,lock} [arguments...]",
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


def fake_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModuleType:
    """run.py pointed at a checkout in tmp_path whose .venv exists, empty."""
    module = load_run_py()
    (tmp_path / "pyproject.toml").write_text('[build-system]\nrequires = ["hatchling"]\n')
    locks = tmp_path / "locks"
    locks.mkdir()
    for name in ("build.txt", "demo.txt", "test.txt"):
        (locks / name).write_text(f"# {name}\n")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()  # the venv exists; its packages do not yet
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "VENV", tmp_path / ".venv")
    monkeypatch.setattr(module, "LOCKS", locks)
    monkeypatch.setattr(module, "PYTHON", python)
    return module


def record_commands(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> list[list[str]]:
    commands: list[list[str]] = []

    def run(command: list[str], env: dict[str, str] | None = None) -> int:
        commands.append(command)
        return 0

    monkeypatch.setattr(module, "run", run)
    return commands


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "ci-log"])
def test_a_first_install_prints_each_step_and_shows_pips_progress_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    terminal: bool,
) -> None:
    module = fake_checkout(monkeypatch, tmp_path)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: terminal)
    commands = record_commands(monkeypatch, module)

    module.ensure_installed("embedded")

    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "run.py: [1/3] installing pip and the build tools of locks/build.txt into .venv ...",
        "run.py: [2/3] installing the dependencies of agentcore-history[embedded] locked in "
        "locks/demo.txt into .venv (about a minute the first time) ...",
        "run.py: [3/3] installing agentcore-history itself in editable mode ...",
    ]
    assert lines[3].startswith("run.py: .venv is ready (") and len(lines) == 4
    for command in commands:
        assert ("-q" in command) is not terminal  # pip's own progress only on a terminal
    assert (tmp_path / ".venv" / ".agentcore-embedded").exists()
    module.ensure_installed("embedded")  # stamped: nothing more to do
    assert len(commands) == 3 and capsys.readouterr().out == ""


def test_every_package_comes_from_a_lock_with_hashes_and_nothing_builds_in_isolation() -> None:
    module = load_run_py()
    build, locked, itself = (command for _, command in module.install_steps("test", terminal=False))
    assert build[-5:] == ["--require-hashes", "-r", "locks/build.txt", "--only-binary", ":all:"]
    assert locked[-4:] == ["--require-hashes", "-r", "locks/test.txt", "--no-build-isolation"]
    assert itself[-4:] == ["--no-deps", "--no-build-isolation", "-e", "."]
    for command in (build, locked, itself):
        assert command[1:4] == ["-m", "pip", "install"] and "--upgrade" not in command


@pytest.mark.parametrize("edited", ["pyproject.toml", "locks/build.txt", "locks/test.txt"])
def test_an_edit_of_pyproject_or_a_lock_installs_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, edited: str
) -> None:
    module = fake_checkout(monkeypatch, tmp_path)
    commands = record_commands(monkeypatch, module)
    module.ensure_installed("test")
    module.ensure_installed("embedded")
    assert len(commands) == 6
    (tmp_path / edited).write_text("# edited\n")
    module.ensure_installed("test")
    module.ensure_installed("embedded")
    assert len(commands) == (9 if edited == "locks/test.txt" else 12)


def test_a_venv_from_before_the_lock_is_brought_to_it_and_its_extra_packages_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = fake_checkout(monkeypatch, tmp_path)
    (tmp_path / "locks" / "test.txt").write_text("Tox_Extra==1.0 \\\n    --hash=sha256:00\n")
    (tmp_path / ".venv" / ".agentcore-test").write_text("a hash of pyproject.toml alone")
    site = tmp_path / ".venv" / "lib" / "python3.11" / "site-packages"
    for installed in ("agentcore_history-0.1.0", "tox_extra-1.0", "numpy-2.0.0", "pip-26.3"):
        (site / f"{installed}.dist-info").mkdir(parents=True)
    (tmp_path / "locks" / "build.txt").write_text("pip==26.3 \\\n")
    commands = record_commands(monkeypatch, module)

    module.ensure_installed("test")

    installed_from = [command[command.index("-r") + 1] for command in commands[:2]]
    assert installed_from == ["locks/build.txt", "locks/test.txt"] and "-e" in commands[2]
    assert capsys.readouterr().out.splitlines()[-1] == (
        "run.py: note: .venv also holds packages no lock lists, left by an earlier install: "
        "numpy. For a .venv with exactly the locked packages, remove .venv and run this again."
    )


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
    monkeypatch.setattr(module.os, "cpu_count", lambda: 2)
    assert module.main(["test", "tests/unit", "-q"]) == 0
    tools = {command[2]: command[3:] for command in commands if command[1:2] == ["-m"]}
    assert tools["ruff"] == ["check", "agentcore", "tests", "bench", "run.py"]
    assert tools["mypy"] == ["agentcore", "tests", "bench"]
    assert tools["pytest"] == ["-n", "4", "tests/unit", "-q"]


def test_test_newest_runs_the_same_checks_with_the_newest_releases_not_the_locks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module = load_run_py()
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "NEWEST", tmp_path / ".venv-newest")
    monkeypatch.setattr(module, "create_venv", lambda path: None)
    monkeypatch.setattr(module, "ensure_installed", lambda extra: pytest.fail("the locked .venv"))
    commands = record_commands(monkeypatch, module)

    assert module.main(["test", "--newest", "tests/unit", "-q"]) == 0

    newest = str(tmp_path / ".venv-newest" / "bin")
    upgrade_pip, install = commands[:2]
    assert upgrade_pip[0].startswith(newest) and upgrade_pip[-2:] == ["--upgrade", "pip"]
    assert install[-5:] == ["--upgrade", "--upgrade-strategy", "eager", "-e", ".[test]"]
    checks = commands[2:]
    assert [command[2:3] or command[:1] for command in checks] == [
        ["ruff"],
        ["mypy"],
        [f"{newest}/lint-imports"],
        ["pytest"],
    ]
    assert all(command[0].startswith(newest) for command in checks)
    assert checks[-1][3:] == ["-n", str(module.worker_count(os.cpu_count())), "tests/unit", "-q"]


def test_lock_compiles_the_test_lock_first_and_the_others_keep_its_pins(tmp_path: Path) -> None:
    module = load_run_py()
    compiles = dict(module.lock_commands(tmp_path, ["--upgrade-package", "ruff"]))
    assert list(compiles) == ["locks/test.txt", "locks/demo.txt", "locks/build.txt", "locks/uv.txt"]
    for lock, command in compiles.items():
        assert command[1:3] == ["pip", "compile"] and command[0].endswith("uv")
        assert command[-2:] == ["-o", lock]
        for option in ("--universal", "--generate-hashes", "--upgrade-package"):
            assert option in command
        assert command[command.index("--python-version") + 1] == "3.11"
        assert ("-c" in command) is (lock in ("locks/demo.txt", "locks/build.txt"))
    assert compiles["locks/demo.txt"][compiles["locks/demo.txt"].index("-c") + 1] == (
        "locks/test.txt"
    )
    assert compiles["locks/test.txt"][-4:-2] == ["--extra", "test"]
    assert compiles["locks/demo.txt"][-6:-4] == ["--extra", "embedded"]


def test_lock_installs_its_uv_from_a_lock_and_names_its_inputs_plainly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module = fake_checkout(monkeypatch, tmp_path)
    commands: list[list[str]] = []

    def run(command: list[str], env: dict[str, str] | None = None) -> int:
        commands.append(command)
        if "compile" in command:  # what uv writes: its inputs are in a scratch folder
            source = next(arg for arg in command if arg.endswith(".in"))
            (tmp_path / command[-1]).write_text(f"x==1 \\\n    # via -r {source}\n")
        return 0

    monkeypatch.setattr(module, "run", run)
    assert module.lock([]) == 0
    assert commands[0][-5:] == ["--require-hashes", "--only-binary", ":all:", "-r", "locks/uv.txt"]
    assert (
        (tmp_path / "locks" / "build.txt")
        .read_text()
        .endswith("# via run.py's build_requirements()\n")
    )
    assert (tmp_path / "locks" / "uv.txt").read_text().endswith("# via run.py's UV_REQUIREMENT\n")


def test_test_quick_runs_ruff_then_the_edit_loops_tests_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = load_run_py()
    monkeypatch.setattr(module, "ensure_installed", lambda extra: None)
    commands = record_commands(monkeypatch, module)
    assert module.main(["test", "--quick", "-x"]) == 0
    assert [command[2] for command in commands] == ["ruff", "pytest"]
    assert commands[-1][3:] == ["--quick", "-x"]
    assert "not the whole suite" in capsys.readouterr().out


def test_the_whole_suite_says_up_front_how_long_it_takes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = load_run_py()
    monkeypatch.setattr(module, "ensure_installed", lambda extra: None)
    record_commands(monkeypatch, module)
    assert module.main(["test"]) == 0
    out = capsys.readouterr().out
    assert "the whole suite takes about 7 minutes on a 2-core machine" in out and "--quick" in out
    assert "twice as many pytest-xdist workers as CPUs" in out


@pytest.mark.parametrize(("cpus", "workers"), [(None, 2), (1, 2), (2, 4), (8, 16)])
def test_the_suite_runs_on_twice_as_many_workers_as_cpus(cpus: int | None, workers: int) -> None:
    assert load_run_py().worker_count(cpus) == workers


@pytest.mark.parametrize(
    "chosen",
    [["-n", "0"], ["-n0"], ["-n", "3"], ["--numprocesses=1"], ["-p", "no:xdist"], ["--pdb"]],
)
def test_arguments_that_choose_the_workers_or_need_one_process_are_left_alone(
    monkeypatch: pytest.MonkeyPatch, chosen: list[str]
) -> None:
    module = load_run_py()
    monkeypatch.setattr(module, "ensure_installed", lambda extra: None)
    commands = record_commands(monkeypatch, module)
    assert module.main(["test", "tests/unit", *chosen]) == 0
    assert commands[-1][3:] == ["tests/unit", *chosen]
