"""Smoke test of bench/storage.py (docs/scaling.md's bytes per message): not a measurement."""

from __future__ import annotations

import re

import pytest

from bench import storage


def test_the_storage_bench_stores_what_it_says_and_reports_bytes_per_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert storage.main(["--conversations", "3", "--turns", "2"]) == 0
    out = capsys.readouterr().out
    found = re.search(r"^12 messages .*: (\d+) bytes per message .* heap alone (\d+)$", out)
    assert found, out
    total, heap = int(found[1]), int(found[2])
    assert total > heap > 400  # 400 characters a message on average, stored uncompressed
