from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool
from xdist.scheduler import LoadScopeScheduling

from agentcore import embedded, migrations
from tests.citus import TEST_SHARD_COUNT, CitusCluster, citus_missing, running_cluster
from tests.pgbouncer import INSTALL_HINT, Bouncer, pgbouncer_binary, running_pgbouncer
from tests.support import (
    CREATED_DIRS,
    FIGURES,
    AppRoleServer,
    PgServer,
    app_role_template,
    fresh_database,
    migrated_template,
    running_server,
    scratch_dir,
)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One real PostgreSQL for the whole run, started by the tests themselves."""
    with running_server() as params, migrated_template(params) as server:
        yield server


@dataclass(frozen=True)
class BehindPgBouncer:
    """A throw-away server of its own with its migrated template, and a PgBouncer in front.

    Attributes:
        server: The embedded server (PgBouncer reaches it over its unix socket).
        pg: Its migrated template, for :func:`~tests.support.fresh_database`.
        bouncer: A PgBouncer in transaction mode in front of it.
    """

    server: embedded.EmbeddedServer
    pg: PgServer
    bouncer: Bouncer


PGBOUNCER_MISSING: list[str] = []
"""The tests that could not run because pgbouncer is not installed (see the summary)."""


@pytest.fixture(scope="session")
def behind_pgbouncer() -> Iterator[BehindPgBouncer]:
    """A private PgBouncer in transaction mode in front of a throw-away server of its own.

    Without ``pgbouncer`` the tests that use it are skipped, and the run's
    summary says so in capitals; in CI (``$CI`` set) they fail instead.
    """
    binary = pgbouncer_binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(f"pgbouncer is not installed, and CI must test through it: {INSTALL_HINT}")
        pytest.skip(f"pgbouncer is not installed: {INSTALL_HINT}")
    with scratch_dir("agentcore-bounced-") as parent:
        server = embedded.start(parent / "pgdata", throwaway=True)
        try:
            with (
                migrated_template(conninfo_to_dict(server.dsn)) as pg,
                running_pgbouncer(binary, server) as bouncer,
            ):
                yield BehindPgBouncer(server=server, pg=pg, bouncer=bouncer)
        finally:
            server.stop()


CITUS_MISSING: list[str] = []
"""The tests that could not run because Citus is not installed (see the summary)."""


@pytest.fixture(scope="session")
def citus_cluster() -> Iterator[CitusCluster]:
    """A Citus coordinator and two workers on loopback, with agentcore's schema migrated.

    The schema is in the coordinator's database ``postgres``, distributed by
    the migrations (tests/citus.py), over :data:`~tests.citus.TEST_SHARD_COUNT`
    shards per table, on nodes that do not wait for the disk. One cluster per
    run: every test that uses it runs on one worker (:func:`on_the_cluster`).
    Without Citus installed the tests that use it are skipped, and the run's
    summary says so in capitals.
    """
    missing = citus_missing()
    if missing is not None:
        pytest.skip(missing)
    with running_cluster(shard_count=TEST_SHARD_COUNT, throwaway=True) as cluster:
        migrations.apply(cluster.dsn())
        yield cluster


# Every row of every table the migrations distributed (or made a reference
# table), in one transaction: a multi-shard DELETE of a test's few rows costs
# tens of milliseconds where a TRUNCATE of every shard of every table cost
# seconds (a new file per shard, and the lock of each on its worker).
_EMPTY_THE_CLUSTER = """
DO $$
DECLARE
    item regclass;
BEGIN
    FOR item IN
        SELECT logicalrelid FROM pg_dist_partition
        ORDER BY partmethod = 'n', logicalrelid = 'conversation_sessions'::regclass
    LOOP
        EXECUTE format('DELETE FROM %s', item);
    END LOOP;
END
$$
"""


@pytest.fixture(scope="session")
def citus_janitor(citus_cluster: CitusCluster) -> Iterator[list[psycopg.Connection[Any]]]:
    """One connection to the coordinator for the whole run, that empties the tables.

    Kept open: a new session on the coordinator opens its own connections to
    the workers, which cost more than the emptying itself. Replaced when a
    test broke it.
    """
    kept = [psycopg.connect(citus_cluster.dsn(), autocommit=True)]
    yield kept
    kept[0].close()


@pytest.fixture
def citus_dsn(citus_cluster: CitusCluster, citus_janitor: list[psycopg.Connection[Any]]) -> str:
    """The cluster's coordinator, with agentcore's tables emptied for this test.

    A Citus cluster propagates no CREATE DATABASE by default, so the tests
    share one database and each begins with empty tables.
    """
    empty_the_cluster(citus_cluster, citus_janitor)
    return citus_cluster.dsn()


def empty_the_cluster(cluster: CitusCluster, janitor: list[psycopg.Connection[Any]]) -> None:
    """Delete every row of agentcore's tables on the cluster, over the kept connection."""
    try:
        janitor[0].execute(_EMPTY_THE_CLUSTER)
    except psycopg.OperationalError:
        janitor[0].close()
        janitor[0] = psycopg.connect(cluster.dsn(), autocommit=True)
        janitor[0].execute(_EMPTY_THE_CLUSTER)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "setup" and report.skipped:
        if "pgbouncer is not installed" in str(report.longrepr):
            PGBOUNCER_MISSING.append(report.nodeid)
        if "CITUS IS NOT INSTALLED" in str(report.longrepr):
            CITUS_MISSING.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("agentcore reliability figures")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {value}")
    if PGBOUNCER_MISSING:
        terminalreporter.section("PGBOUNCER NOT TESTED", sep="!", red=True, bold=True)
        terminalreporter.write_line(
            f"PGBOUNCER NOT TESTED: {len(PGBOUNCER_MISSING)} tests skipped because pgbouncer "
            f"is not installed; {INSTALL_HINT} (in CI they fail instead)",
            red=True,
            bold=True,
        )
    if CITUS_MISSING:
        terminalreporter.section("CITUS NOT TESTED", sep="!", red=True, bold=True)
        terminalreporter.write_line(
            f"CITUS NOT TESTED: {len(CITUS_MISSING)} tests skipped because Citus is not "
            f"installed: {citus_missing()}",
            red=True,
            bold=True,
        )


@pytest.fixture(scope="session")
def app_role_server(pg_server: PgServer) -> Iterator[AppRoleServer]:
    """Clones that hold docs/operations.md's grants for an app role (``app_role_template``)."""
    with app_role_template(pg_server) as app:
        yield app


@pytest.fixture
def database_dsn(pg_server: PgServer) -> Iterator[str]:
    """A migrated database that only this test uses."""
    with fresh_database(pg_server) as dsn:
        yield dsn


@pytest.fixture
def empty_database_dsn(pg_server: PgServer) -> Iterator[str]:
    """A database with no schema at all, for migration tests."""
    with fresh_database(pg_server, migrated=False) as dsn:
        yield dsn


async def open_pool(dsn: str, max_size: int = 10) -> AsyncConnectionPool[Any]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, min_size=1, max_size=max_size, kwargs={"autocommit": True}, open=False
    )
    await pool.open(wait=True, timeout=30)
    return pool


@asynccontextmanager
async def pool_for(dsn: str, max_size: int = 10) -> AsyncIterator[AsyncConnectionPool[Any]]:
    """An open autocommit pool on ``dsn``, closed afterwards."""
    pool = await open_pool(dsn, max_size=max_size)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def pg_pool(database_dsn: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    async with pool_for(database_dsn, max_size=16) as pool:
        yield pool


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--quick",
        action="store_true",
        help="the edit loop: the unit tests, the contract suite on the in-memory "
        "repository and the PostgreSQL smoke tests (marked smoke) only",
    )
    parser.addoption(
        "--port",
        action="append",
        default=[],
        metavar="NAME",
        help="only the contract tests of this port of agentcore.repository (TurnStore, "
        "SessionLifecycle...; repeatable): see tests/contract/conftest.py",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``--quick``, keep only what the edit loop runs (see ``python3 run.py --help``).

    Then put the longest tests first (:data:`LONGEST_FIRST`), so that on
    several workers they start at once instead of ending the run alone.
    """
    if config.getoption("--quick"):
        keep_quick(config, items)
    unrouted = [
        item.nodeid
        for item in items
        if "citus_cluster" in getattr(item, "fixturenames", ()) and not on_the_cluster(item.nodeid)
    ]
    if unrouted:
        raise pytest.UsageError(
            "tests that use the Citus cluster must be in a test_citus_*.py file or have a "
            f"postgres-citus parameter (one worker runs them all): {', '.join(unrouted)}"
        )
    order: dict[str, float] = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        order[path] = min(order.get(path, 2), start_order(path, item))
    cluster = LONGEST_FIRST.index(CITUS_SCOPE) / len(LONGEST_FIRST)
    items.sort(
        key=lambda item: (
            cluster if on_the_cluster(item.nodeid) else order[item.nodeid.split("::", 1)[0]]
        )
    )


CITUS_SCOPE = "the Citus cluster's tests"
"""The tests that use the Citus cluster: one unit of :class:`OneWorkerFiles`."""


def on_the_cluster(nodeid: str) -> bool:
    """Whether a test uses the Citus cluster: by its file or its parameter's id.

    A test file ``test_citus_*.py``, or a parameter id ``postgres-citus`` (the
    contract suite's ``repo`` and the bridges' own fixtures): all of them run on
    one worker, so that a run starts one cluster (three servers), not one per
    worker. :func:`pytest_collection_modifyitems` refuses a test that asks for
    the cluster without either.
    """
    path, _, name = nodeid.partition("::")
    return Path(path).name.startswith("test_citus_") or bool(_CITUS_PARAM.search(name))


_CITUS_PARAM = re.compile(r"\[(?:.*-)?postgres-citus(?:-.*)?\]$")


LONGEST_FIRST = (
    "tests/integration/test_framework_suites.py",  # openai-agents' suite on PostgreSQL: 80-110 s
    CITUS_SCOPE,  # every test on the cluster, on one worker
    "tests/integration/test_model_equivalence.py",  # fake and PostgreSQL on random sequences
    "tests/unit/test_quick_selection.py",  # two collections of the whole suite
    "tests/integration/test_parallel_runs.py",  # a run on two workers
    "tests/integration/test_whole_surface.py",
    "tests/integration/test_no_leftovers.py",
    "tests/integration/test_bench_server_count.py",  # the server under callgrind
    "tests/integration/test_wheel.py",
    "tests/integration/test_embedded_privacy.py",
    "tests/integration/test_bench_load_cpu.py",  # two callgrind counts
    "tests/integration/test_bench_bridges.py",
    "tests/integration/test_cli_lifecycle.py",
    "tests/integration/test_cli_chat_interrupt.py",
    "tests/integration/test_pgbouncer.py",
)
"""The test files that run longest, longest first (docs/testing.md, "Where the time goes")."""


def start_order(path: str, item: pytest.Item) -> float:
    """When ``item``'s file starts: by :data:`LONGEST_FIRST`, then files with slow tests.

    Whole files move (their module fixtures are set up once), except the tests
    on the Citus cluster, which all start at :data:`CITUS_SCOPE`'s rank; the
    sort keeps the collection's order within each rank.
    """
    if path in LONGEST_FIRST:
        return LONGEST_FIRST.index(path) / len(LONGEST_FIRST)
    return 1 if item.get_closest_marker("slow") else 2


def keep_quick(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        kind = item.path.relative_to(config.rootpath).parts[1]
        callspec = getattr(item, "callspec", None)
        repo = str(callspec.params.get("repo", "")) if callspec is not None else ""
        quick = (
            kind == "unit"
            or (kind == "contract" and repo.startswith("memory"))
            or item.get_closest_marker("smoke") is not None
        )
        (keep if quick else drop).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep


WORKERS_LEFT: list[Path] = []
"""The scratch directories the workers made (pytest-xdist), checked again at the very end."""


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run if a scratch directory it made is still there (a run leaves nothing).

    On several workers each checks its own, and hands them and its reliability
    figures to the controller (``workeroutput``), which checks them all again
    once every worker has stopped and its servers with it.
    """
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["agentcore_created_dirs"] = [str(path) for path in CREATED_DIRS]
        workeroutput["agentcore_figures"] = dict(FIGURES)
    left = [path for path in [*CREATED_DIRS, *WORKERS_LEFT] if path.exists()]
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"scratch directories left behind: {', '.join(map(str, left))}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# Hypothesis: "ci" is the default (every run of the suite); `pytest
# --hypothesis-profile=long` runs the long variants. Registered here, in the
# top conftest, so that the option finds the profile when pytest starts.
settings.register_profile(
    "ci",
    max_examples=300,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=3000,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """A worker stopped (pytest-xdist): take its scratch directories and figures."""
    output = getattr(node, "workeroutput", {})
    WORKERS_LEFT.extend(Path(path) for path in output.get("agentcore_created_dirs", []))
    FIGURES.update(output.get("agentcore_figures", {}))


ONE_WORKER = {
    "tests/integration/test_embedded_privacy.py": "adds and deletes the same two OS accounts",
    "tests/integration/test_wheel.py": "builds the wheel and installs it into a venv once",
    "tests/integration/test_cli.py": "starts its module's embedded default database once",
}
"""Test files whose tests all run on one worker (pytest-xdist), and why.

By file, in :class:`OneWorkerFiles`: pytest-xdist's own ``xdist_group`` marker
and ``--dist loadgroup`` do nothing under pytest 9.2 (xdist 3.8 renames
``item._nodeid``, which pytest no longer reads).
"""


class OneWorkerFiles(LoadScopeScheduling):  # type: ignore[misc]
    """pytest-xdist's ``load`` distribution, except for the files of :data:`ONE_WORKER`.

    Each other test is a unit of its own, sent to whichever worker is free, in
    the order of the collection (:func:`start_order`: the longest first); each
    file of :data:`ONE_WORKER` is one unit, all its tests on one worker, and so
    are the tests on the Citus cluster (:func:`on_the_cluster`, :data:`CITUS_SCOPE`).
    """

    def _split_scope(self, nodeid: str) -> str:
        if on_the_cluster(nodeid):
            return CITUS_SCOPE
        path = nodeid.split("::", 1)[0]
        return path if path in ONE_WORKER else nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> OneWorkerFiles | None:
    """With ``-n N`` (and no other ``--dist``), schedule with :class:`OneWorkerFiles`."""
    if config.getoption("dist") != "load":
        return None
    config.option.loadscopereorder = False  # the collection's order is the one wanted
    return OneWorkerFiles(config, log)
