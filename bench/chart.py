"""Draw the growth curve of a ``bench.turns`` JSON report (needs the ``bench`` extra).

python -m bench.chart bench/results/turns-full.json docs/performance-growth.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SHORT_LABELS = {
    "repository": "agentcore repository",
    "agent": "agentcore Agent + EchoModel",
    "rewrite": "seed design (rewrite)",
    "reference": "hand-written psycopg",
    "pgbench": "pgbench",
    "memory": "in-memory repository",
}


def draw_growth(report: dict[str, Any], path: Path) -> None:
    """Median turn latency (C=1) against stored history, one line per contender."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    growth = {tuple(row["key"]): row for row in report["growth"]}
    histories = report["plan"]["growth_histories"]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for key in report["contenders"]:
        points = [(h, growth[(key, 1, h)]["p50_ms"]) for h in histories if (key, 1, h) in growth]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=SHORT_LABELS.get(key, key))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("messages already stored in the session (H)")
    ax.set_ylabel("median turn latency, ms (C=1)")
    ax.set_title("Turn latency as the conversation grows")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    draw_growth(json.loads(Path(argv[0]).read_text(encoding="utf-8")), Path(argv[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
