"""Smoke test of bench/server_count.py, the count of the server's instructions per statement.

Not a performance test: it checks that the server starts under callgrind,
and that every statement of a turn is counted, the marker's own cost taken
out (the count is what bench/NOTES.md quotes where /proc's 10 ms ticks
cannot tell two turns apart; it repeats to the instruction, see there).
"""

from __future__ import annotations

import re
import shutil

import pytest

from bench import server_count


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_each_statement_of_a_turn_is_counted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert server_count.main(["--statements", "4", "--history", "40"]) == 0
    out = capsys.readouterr().out
    counts = {
        name: int(count.replace(",", ""))
        for name, count in re.findall(r"^\| (\w+) \| ([\d,]+) \|$", out, re.MULTILINE)
    }
    assert set(counts) == set(server_count.STATEMENTS), out
    # A statement costs the server tens of thousands of instructions, not a few
    # (the marker's own cost subtracted) nor millions (planning not amortized).
    assert all(20_000 < count < 2_000_000 for count in counts.values()), counts
