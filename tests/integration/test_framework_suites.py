"""The frameworks' own tests, run against agentcore's bridges over both repositories.

The released sdists of openai-agents, langchain-core and
langgraph-checkpoint-postgres on PyPI carry their test suites. Each is
downloaded once (pinned version and sha256) into
``.cache/frameworks/``, never committed, and the selected test files run in a
pytest subprocess with ``tests/frameworks/plugins/agentcore_swap.py``, which
swaps the framework's reference store (``SQLiteSession``,
``InMemoryChatMessageHistory``) for the agentcore bridge. Tests of another
backend's internals are left out, each listed with its reason in
``tests/frameworks/*_left_out.txt``; everything else must pass.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import FIGURES
from tests.junit_failures import failed_tests, failure_summary
from tests.support import scratch_dir

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ROOT / "tests" / "frameworks"
CACHE = ROOT / ".cache" / "frameworks"


@dataclass(frozen=True)
class Suite:
    name: str  # AGENTCORE_FRAMEWORK for the plugin
    package: str
    version: str
    sha256: str
    paths: tuple[str, ...]
    left_out: str
    min_reached: int  # tests that must have built an agentcore-backed store
    # A suite whose sdist carries no tests (google-adk): a checkout of its
    # repository's tests at the release, named by this environment variable.
    checkout_env: str | None = None
    options: tuple[str, ...] = ()
    # The suite's tests that build a store, listed (tests/frameworks/): on
    # PostgreSQL the whole selection runs and must build a store in exactly
    # these; on the other backends only these run (the rest never reach a store).
    store_tests: str | None = None


SUITES = {
    "openai-agents": Suite(
        name="openai-agents",
        package="openai-agents",
        version="0.24.0",
        sha256="4b4b285f4fed81fdf1b4ac426a9101658d9cd29b4fb1aaeee18f639b77e704e3",
        paths=(
            "tests/memory/test_compaction_model_visibility.py",
            "tests/memory/test_compaction_suffix.py",
            "tests/memory/test_openai_responses_compaction_session.py",
            "tests/memory/test_session.py",
            "tests/memory/test_session_context_wrapper.py",
            "tests/memory/test_session_limit.py",
            "tests/memory/test_session_persistence_sanitize.py",
            "tests/extensions/memory/test_async_sqlite_session.py",
            "tests/extensions/memory/test_encrypt_session.py",
            # The other test files that build a SQLiteSession:
            "tests/test_agent_runner.py",
            "tests/test_agent_runner_streamed.py",
            "tests/test_max_turns.py",
            "tests/test_native_tool_failure_history.py",
            "tests/test_programmatic_tool_calling.py",
            "tests/test_run_impl_resume_paths.py",
            "tests/test_soft_cancel.py",
            "tests/test_tool_batch_failure_history.py",
            "tests/test_tool_failure_boundaries.py",
        ),
        left_out="openai_agents_left_out.txt",
        min_reached=200,
        store_tests="openai_agents_store_tests.txt",
    ),
    "langchain": Suite(
        name="langchain",
        package="langchain-core",
        version="1.8.1",
        sha256="778b9bf1d18d4b7a716311defa230db190006ef75fe175930e00012d82df603b",
        paths=("tests/unit_tests/chat_history", "tests/unit_tests/runnables/test_history.py"),
        left_out="langchain_left_out.txt",
        min_reached=20,
    ),
    "google-adk": Suite(
        name="google-adk",
        package="google-adk",
        version="2.13.0",
        sha256="",  # not downloaded: the sdist has no tests
        paths=("tests/unittests/sessions/test_session_service.py",),
        left_out="google_adk_left_out.txt",
        min_reached=40,
        checkout_env="AGENTCORE_ADK_TESTS",
        options=("-o", "asyncio_mode=auto"),
    ),
    # LangGraph's tests of its own PostgreSQL checkpointer, with AsyncPostgresSaver
    # and PostgresSaver swapped for AgentcoreSaver (on PostgreSQL only: the
    # saver has no in-memory twin). The store tests (test_store.py,
    # test_async_store.py) test LangGraph's BaseStore, not a checkpointer.
    "langgraph": Suite(
        name="langgraph",
        package="langgraph-checkpoint-postgres",
        version="3.2.0",
        sha256="dffef0e6822d7c614019f7f2c4bdbef42859746aee2d3e6d9d9747cf3744ca90",
        paths=(
            "tests/test_async.py",
            "tests/test_sync.py",
            "tests/test_prune.py",
            "tests/test_conformance_delta.py",
            "tests/test_delta_pagination.py",
            "tests/test_delta_plain_value_seed.py",
        ),
        left_out="langgraph_left_out.txt",
        min_reached=20,
    ),
}


def released_tests(suite: Suite) -> Path:
    """The suite's sdist unpacked in the cache (downloaded from PyPI on first use).

    A suite whose sdist has no tests runs from the checkout that its
    ``checkout_env`` names; without one it is skipped, and says why.

    One process at a time (workers of one run start these tests together): a
    lock on this file is held while the cache is checked and filled.
    """
    if suite.checkout_env is not None:
        where = os.environ.get(suite.checkout_env)
        if not where:
            pytest.skip(
                f"{suite.package} {suite.version}'s sdist has no tests: set "
                f"{suite.checkout_env} to a checkout of its repository (docs/testing.md)"
            )
        return Path(where)
    fd = os.open(__file__, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return _cached_sdist(suite)
    finally:
        os.close(fd)  # closing it releases the lock


def _cached_sdist(suite: Suite) -> Path:
    stem = f"{suite.package.replace('-', '_')}-{suite.version}"
    unpacked = CACHE / stem
    if (unpacked / "tests").is_dir():
        return unpacked
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"{stem}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"{suite.package}=={suite.version}",
                "-d",
                str(CACHE),
            ],
            check=True,
            capture_output=True,
        )
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert digest == suite.sha256, f"{archive.name}: sha256 {digest}, expected {suite.sha256}"
    with tarfile.open(archive) as tar:
        _extract(tar, CACHE)
    return unpacked


def _extract(tar: tarfile.TarFile, into: Path) -> None:
    """Unpack ``tar`` below ``into``, and nothing outside it.

    The "data" filter does this where the interpreter has it (3.12, and 3.11
    from 3.11.4); 3.11.0-3.11.3, which agentcore supports, do not: there only
    the regular files and folders are unpacked (the suites need no link: the
    SDK's sdist has one, CLAUDE.md), each checked to land below ``into``.
    """
    if hasattr(tarfile, "data_filter"):
        tar.extractall(into, filter="data")
        return
    root = into.resolve()
    plain = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
    for member in plain:
        if not (into / member.name).resolve().is_relative_to(root):
            raise AssertionError(f"{member.name}: outside {into}")
    tar.extractall(into, members=plain)  # every member was checked above


def left_out(suite: Suite) -> dict[str, str]:
    found = {}
    for line in (FRAMEWORKS / suite.left_out).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            node, _, reason = line.partition("  # ")
            assert reason, f"{suite.left_out}: {node} is left out without a reason"
            found[node.strip()] = reason
    return found


def store_tests(suite: Suite) -> list[str] | None:
    if suite.store_tests is None:
        return None
    text = (FRAMEWORKS / suite.store_tests).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


CASES = [
    *[
        (framework, backend)
        for framework in SUITES
        for backend in ("memory", "postgres")
        if not (framework == "langgraph" and backend == "memory")
    ],
    ("langchain", "postgres-sync"),  # LangChain's sync API over the sync repository
]


@pytest.mark.slow
@pytest.mark.parametrize(("framework", "backend"), CASES)
def test_framework_own_tests_pass_on_the_bridge(
    framework: str, backend: str, database_dsn: str, tmp_path: Path
) -> None:
    suite = SUITES[framework]
    root = released_tests(suite)
    skipped = left_out(suite)
    listed = store_tests(suite)
    junit, reached_file = tmp_path / "junit.xml", tmp_path / "reached.txt"
    if listed is not None and backend != "postgres":
        # Only the tests that build a store: the others test the framework
        # alone, and the PostgreSQL case runs them (and checks this list).
        selection = [f"@{tmp_path / 'store-tests.txt'}"]
        (tmp_path / "store-tests.txt").write_text("\n".join(listed) + "\n", encoding="utf-8")
    else:
        selection = [*[f"--deselect={node}" for node in skipped], *suite.paths]
    env = {
        **os.environ,
        "AGENTCORE_FRAMEWORK": suite.name,
        "AGENTCORE_BACKEND": backend,
        "AGENTCORE_DSN": database_dsn,
        "AGENTCORE_SWAP_REPORT": str(reached_file),
        "PYTHONPATH": os.pathsep.join([str(FRAMEWORKS / "plugins"), str(root)]),
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "agentcore_swap",
        "-p",
        "no:postgresql",
        "-p",
        "no:cacheprovider",
        "-q",
        "--tb=short",
        "-rfE",  # the log ends with every failed test, one a line
        f"--junitxml={junit}",
        *suite.options,
        *selection,
    ]
    # The frameworks' tests make temp folders they do not remove (about 30 a run)
    # and pytest keeps its own under /tmp/pytest-of-USER: all of it goes into a
    # scratch folder of this run, removed afterwards.
    with scratch_dir("agentcore-framework-tmp-") as scratch:
        done = subprocess.run(
            [*command, f"--basetemp={scratch / 'basetemp'}"],
            cwd=root,
            env={**env, "TMPDIR": str(scratch)},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    log = tmp_path / "pytest-output.txt"  # kept when this test fails (tmp_path_retention_policy)
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    title = f"{framework} {suite.version}'s own tests on {backend}"
    output_end = (done.stdout + done.stderr)[-3000:]
    assert junit.exists(), f"{title}: no report; pytest's output ends:\n{output_end}"
    counts = ET.parse(junit).getroot().find("testsuite")
    assert counts is not None
    tests, failures, errors, skips = (
        int(counts.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")
    )
    reached = reached_file.read_text(encoding="utf-8").split()
    if failures or errors:
        title += f": {failures} failed, {errors} errors, of {tests}"
        pytest.fail(failure_summary(title, failed_tests(junit, root), log), pytrace=False)
    assert done.returncode == 0, f"{title}: pytest exited {done.returncode}; see {log}"
    if listed is None or backend == "postgres":
        # Deselected ids that no longer exist would hide a typo in the list.
        assert f"{len(skipped)} deselected" in done.stdout, done.stdout[-2000:]
    assert len(reached) >= suite.min_reached, f"only {len(reached)} tests built a bridge"
    if listed is not None:
        news, gone = sorted(set(reached) - set(listed)), sorted(set(listed) - set(reached))
        assert not news and not gone, (
            f"{title}: tests/frameworks/{suite.store_tests} is out of date (the tests that "
            f"built a store are in {reached_file}); built one, not listed: {news[:10]}; "
            f"listed, built none: {gone[:10]}"
        )
    key = f"{framework} {suite.version} own tests on {backend}"
    FIGURES[f"{key}: run"] = tests
    FIGURES[f"{key}: passed"] = tests - skips
    FIGURES[f"{key}: skipped by the suite itself"] = skips
    FIGURES[f"{key}: left out (listed)"] = len(skipped)
    FIGURES[f"{key}: built an agentcore store"] = len(reached)
