"""bench/adk.py keeps running: both services, at tiny sizes, on a real database.

The figures of docs/performance.md's Google ADK section come from this entry
point; this runs it as the docs do, with the sizes shrunk, so that a change in
the bridge, in ADK or in the repository cannot leave it broken. The bench
checks that each windowed read returns 20 events.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.adk import main


def test_the_adk_bench_measures_both_services(database_dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "adk.json"
    argv = [
        "--dsn",
        database_dsn,
        "--out",
        str(out),
        "--list-sizes",
        "30",
        "--event-sizes",
        "40",
        "--concurrency",
        "1",
        "2",
        "--turns",
        "2",
        "--repeats",
        "1",
    ]
    assert main(argv) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    keys = [
        "list_sessions at 30 sessions (ms)",
        "get_session of 40 events, last 20 (ms)",
        "turns per second at C=1",
        "turns per second at C=2",
    ]
    for service in ("agentcore", "adk"):
        assert list(report[service]) == keys
        assert all(value > 0 for value in report[service].values())
