"""Smoke test of ``python -m bench.lifecycle purge`` on a tiny interleaved store.

Not a performance test: it checks that the store is built interleaved (several
conversations per heap page), that the CLI purge run by the bench deletes
exactly the idle half while turns run, and that nothing else is lost.
"""

from __future__ import annotations

import json

import pytest

from bench import lifecycle


@pytest.mark.slow
def test_the_purge_bench_deletes_the_idle_half_and_loses_nothing(
    database_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["purge", "--dsn", database_dsn, "--quick", "--sessions", "200", "--concurrency", "2"]
    assert lifecycle.main([*argv, "--purge-options", "--max-impact 1"]) == 0
    report = json.loads(capsys.readouterr().out)["purge"]
    assert report["stored_messages"] == 200 * 40
    assert report["conversations_per_heap_page"] > 2
    assert report["deleted_messages"] == 100 * 40
    assert report["left_sessions"] == 100
    assert report["messages_lost"] == 0
    assert report["turns_during"]["n"] > 0
    assert report["purge_command"].endswith("--max-impact 1")
