"""LangGraph's checkpointer conformance suite (langgraph-checkpoint-conformance) on AgentcoreSaver.

Every base capability and every extended one the saver overrides (it overrides
all three: delete_for_runs, copy_thread, prune), each suite on a fresh
migrated database of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import (
    ALL_CAPABILITIES,
    BASE_CAPABILITIES,
)

from agentcore.integrations.langgraph import AgentcoreSaver
from tests.conftest import empty_the_cluster, pool_for
from tests.support import PgServer, fresh_database


@pytest.mark.parametrize("target", ["postgres", "postgres-citus"])
async def test_conformance_suite_passes_every_capability(
    pg_server: PgServer, target: str, request: pytest.FixtureRequest
) -> None:
    """On PostgreSQL, and on a Citus cluster's coordinator (tests/citus.py) whose
    LangGraph tables migration 0009 distributed with the conversations."""
    databases: list[str] = []
    if target == "postgres-citus":  # here, not in the factory: skipped where Citus is missing
        request.getfixturevalue("citus_cluster")

    @checkpointer_test(name="AgentcoreSaver")
    async def agentcore_saver() -> AsyncIterator[AgentcoreSaver]:
        if target == "postgres-citus":  # one database, emptied for each capability
            cluster = request.getfixturevalue("citus_cluster")
            empty_the_cluster(cluster, request.getfixturevalue("citus_janitor"))
            dsn = cluster.dsn()
            databases.append(dsn)
            async with pool_for(dsn) as pool:
                yield AgentcoreSaver(pool)
            return
        with fresh_database(pg_server) as dsn:
            databases.append(dsn)
            async with pool_for(dsn) as pool:
                yield AgentcoreSaver(pool)

    report = await validate(agentcore_saver)
    report.print_report()
    results = report.results
    assert {c.value for c in ALL_CAPABILITIES} == set(results)
    failures = {name: [str(f) for f in r.failures] for name, r in results.items() if r.tests_failed}
    assert not failures
    for capability in ALL_CAPABILITIES:
        result = results[capability.value]
        assert result.detected, f"{capability.value} is not overridden"
        assert result.passed, f"{capability.value}: {result}"
        assert result.tests_passed > 0
    assert report.passed_all_base()
    assert len(databases) == len(ALL_CAPABILITIES)
    assert BASE_CAPABILITIES <= ALL_CAPABILITIES
