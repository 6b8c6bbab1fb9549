"""bench/bridges.py keeps running: every contender, at tiny sizes, on a real database.

The figures of docs/integrations.md come from this entry point; this smoke
test runs it the way the docs do (``--tiny`` only shrinks the plan) so that a
change in a bridge, a framework or the repository cannot leave it broken.
The bench itself checks, after each timed run, that every session holds its
seeded items plus two per turn, so a contender whose turn stored nothing fails
here.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.bridges import CONTENDERS, POPPERS, TINY, main


def test_the_bridges_bench_runs_every_contender_and_reports_ratios(
    database_dsn: str, tmp_path: Path
) -> None:
    out = tmp_path / "bridges.json"

    assert main(["--dsn", database_dsn, "--tiny", "--silent", "--out", str(out)]) == 0

    report = json.loads(out.read_text(encoding="utf-8"))
    cells = {(k, c, h) for k in CONTENDERS for c in TINY.concurrency for h in TINY.histories}
    assert {tuple(row["key"]) for row in report["turns"]} == cells
    assert all(row["turns_per_s"] > 0 for row in report["turns"])
    assert {(p["contender"], p["history"]) for p in report["pop"]} == {
        (k, h) for k in POPPERS for h in TINY.pop_sizes
    }
    assert {(h["store"], h["threads"]) for h in report["handover"]} == {
        (store, n) for store in ("memory", "postgres") for n in TINY.handover_threads
    }
    assert all(h["sync_us_per_call"] > 0 < h["async_us_per_call"] for h in report["handover"])
    pairs = {(r["a"], r["b"]) for r in report["ratios"]}
    assert ("sdk-agentcore", "sdk-sqlalchemy") in pairs
    assert ("lc-agentcore", "lc-postgres") in pairs
    assert report["versions"]["openai-agents"] != "not installed"
