"""``agentcore import`` refuses an overlong line without reading it into memory.

Issue 25, item 6: one 1 GB line took 2.18 GB before it was refused. Here a
line 300 MB over the limit is imported by the CLI in a process of its own,
which reports how much its peak resident memory grew: far less than the line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agentcore.transfer import max_line_bytes
from tests.integration.test_cli import ROOT

OVER_BY = 300 * 2**20

# Runs the CLI in this process and prints the growth of its peak RSS, in bytes
# (ru_maxrss is in KiB on Linux), measured from after agentcore's imports.
PROBE = """
import resource, sys
from agentcore.cli import main
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
code = main(sys.argv[1:])
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(f"{code} {grown * 1024}", file=sys.stderr)
"""


def test_an_overlong_line_is_refused_with_memory_far_below_its_size(
    tmp_path: Path, database_dsn: str
) -> None:
    limit = max_line_bytes(1_000_000)  # the CLI's repository: the default max_content_chars
    export = tmp_path / "huge.jsonl"
    with export.open("wb") as file:
        file.write(b'{"format":"agentcore-history","version":1}\n')
        file.write(b'{"type":"session","agent_name":"a","session_id":"s"}\n')
        file.write(b'{"type":"message","agent_name":"a","session_id":"s","message":')
        file.write(b'{"role":"user","content":"')
        chunk = b"x" * 2**20
        for _ in range((limit + OVER_BY) // len(chunk) + 1):
            file.write(chunk)
        file.write(b'"}}\n')
    size = export.stat().st_size
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "import", str(export), "--dsn", database_dsn],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "AGENTCORE_DATABASE_URL"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    *lines, last = done.stderr.splitlines()
    code, grown = (int(n) for n in last.split())
    assert code == 1, done.stderr
    assert lines[-1].startswith(f"agentcore: error: line 3: longer than {limit:,} bytes"), lines
    # The line is read up to the limit, decoded never: a few times the limit at
    # most (in practice about the limit), against 2x the line before the fix.
    assert grown < 3 * limit < size / 2, (grown, limit, size)
