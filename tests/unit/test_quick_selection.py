"""``pytest --quick`` (``python3 run.py test --quick``) keeps exactly the edit loop's tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def collected(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_quick_keeps_unit_tests_the_fake_s_contract_and_the_smoke_tests_only() -> None:
    quick = collected("--quick", "tests")
    assert quick
    kinds = {line.split("/")[1] for line in quick}
    assert kinds == {"unit", "contract", "integration"}
    contract = [line for line in quick if line.startswith("tests/contract/")]
    assert contract and all("[memory" in line or "-memory" in line for line in contract)
    integration = {line.split("::")[0] for line in quick if line.startswith("tests/integration/")}
    assert integration == {"tests/integration/test_smoke.py"}
    every_unit = collected("tests/unit")
    assert [line for line in quick if line.startswith("tests/unit/")] == every_unit


def test_port_keeps_the_contract_modules_that_check_that_port_only() -> None:
    chosen = collected("--port", "HistoryImport", "tests/contract")
    modules = {line.split("::")[0].removeprefix("tests/contract/") for line in chosen}
    assert modules == {
        "test_exact_items_contract.py",
        "test_exact_transfer_contract.py",
        "test_hostile_import_contract.py",
        "test_identifier_rules_contract.py",
        "test_lifecycle_contract.py",
        "test_transfer_contract.py",
    }
    # Every repository of the fixture, PgBouncer's included.
    assert any("[postgres-pgbouncer" in line for line in chosen)
    assert any("[memory" in line for line in chosen)
