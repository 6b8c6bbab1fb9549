"""Client CPU per turn, for profiling the library against the raw reference.

    python -m bench.cpu [--dsn DSN] [--out bench/results/cpu.json]

Runs the repository, the agent and the raw reference alternately at C=16 on
sessions holding 1000 messages, and reports client CPU time per turn
(``time.process_time``, which other processes on the machine do not inflate)
next to turns/s. Used for the before/after of bench/NOTES.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from agentcore import migrations
from bench.turns import QUICK, Bench, _own_server, _rotated

CONTENDERS = ("repository", "agent", "reference")


async def measure(dsn: str, repeats: int, turns: int) -> dict[str, Any]:
    found: dict[str, list[dict[str, float]]] = {k: [] for k in CONTENDERS}
    async with Bench(dsn, QUICK, list(CONTENDERS)) as bench:
        for repeat in range(repeats):
            for key in _rotated(CONTENDERS, repeat):
                cpu = time.process_time()
                run = await bench.run(key, 16, 1000, repeat, turns, phase="cpu")
                cpu = time.process_time() - cpu
                found[key].append(
                    {"turns_per_s": run.turns_per_s, "cpu_us_per_turn": cpu / run.turns * 1e6}
                )
                print(
                    f"#{repeat} {key:<10} {run.turns_per_s:7.0f} turns/s "
                    f"{cpu / run.turns * 1e6:6.0f} µs CPU/turn",
                    file=sys.stderr,
                )
    summary = {
        key: {
            "turns_per_s": statistics.median(r["turns_per_s"] for r in runs),
            "cpu_us_per_turn": statistics.median(r["cpu_us_per_turn"] for r in runs),
        }
        for key, runs in found.items()
    }
    return {"summary": summary, "runs": found}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu")
    parser.add_argument("--dsn")
    parser.add_argument("--out", type=Path, default=Path("bench/results/cpu.json"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--turns", type=int, default=100, help="turns per session")
    args = parser.parse_args()
    dsn, stop = (args.dsn, None) if args.dsn else _own_server()
    try:
        migrations.apply(dsn)
        report = asyncio.run(measure(dsn, args.repeats, args.turns))
    finally:
        if stop is not None:
            stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    ref = report["summary"]["reference"]
    print("| contender | turns/s | client CPU µs/turn | x reference turns/s |")
    print("|---|---:|---:|---:|")
    for key, row in report["summary"].items():
        print(
            f"| {key} | {row['turns_per_s']:.0f} | {row['cpu_us_per_turn']:.0f} | "
            f"{row['turns_per_s'] / ref['turns_per_s']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
