"""Migration 0002 on a big legacy table: today's version against the previous one.

Run from the repository root::

    python -m bench.migration                       # 1,000,000 legacy rows of 1,000 agents
    python -m bench.migration --rows 100000 --agents 100

It builds N rows in the pre-session schema (0001) once, in a template
database, then for each version of 0002 clones that database and times the
upgrade and the rollback on the same data, in the same run. The previous
version is read at run time from git history (``--old-ref``, the commit before
0002 was rebuilt); the new one is the tree's. It reports the time of each
step, the tables' size before and after, the extra disk a step needed (the
database's size just before its COMMIT, when old and new rows both exist,
plus what sorts spilled to temporary files) and the WAL written, and checks
that both versions leave the same rows and the same schema.

Without ``--dsn`` it starts its own throw-away embedded PostgreSQL and removes
it at exit. With ``--dsn`` (a superuser's, on a server you can spare) it
creates and drops databases named ``agentcore_migration_*`` on that server.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from agentcore.resources import data_dir

ROOT = Path(__file__).resolve().parents[1]
OLD_REF = "a8ab8cd"
"""The last commit whose 0002 updated every row in place."""
MIGRATION = "0002_session_scoped_history"

# The 0001 rows as the predecessor wrote them: agents interleaved in time (so
# an agent's rows are scattered over the table), about 500 bytes of content,
# and a few rows of every kind 0002 must map (odd roles, blank agent names,
# times Python cannot read).
FILL = """
INSERT INTO conversation_history (agent_name, role, content, created_at)
SELECT
    CASE WHEN i %% 100003 = 0 THEN ' '
         ELSE 'agent-' || (hashint4(i) & 2147483647) %% %(agents)s END,
    CASE WHEN i %% 997 = 0 THEN 'AI' WHEN i %% 1009 = 0 THEN 'function'
         WHEN i %% 2 = 0 THEN 'user' ELSE 'assistant' END,
    repeat(md5(i::text), 15),
    CASE WHEN i %% 200003 = 0 THEN 'infinity'::timestamptz
         ELSE timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second'
              + (hashint4(i * 7) %% 600) * interval '1 second' END
FROM generate_series(1, %(rows)s) AS i
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.migration",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="legacy rows (1,000,000)")
    parser.add_argument("--agents", type=int, default=1_000, help="agents they belong to (1,000)")
    parser.add_argument(
        "--dsn", help="a superuser DSN on a server to use instead of a throw-away one"
    )
    parser.add_argument(
        "--old-ref", default=OLD_REF, help=f"git commit of the old 0002 ({OLD_REF})"
    )
    parser.add_argument("--out", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)

    versions = {"previous": old_version(args.old_ref), "current": current_version()}
    if args.dsn:
        admin, stop = args.dsn, None
    else:
        admin, stop = own_server()
    try:
        report = run(admin, args.rows, args.agents, versions, log)
    finally:
        if stop is not None:
            stop()
    report["command"] = " ".join(["python", "-m", "bench.migration", *sys.argv[1:]])
    print(markdown(report))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def old_version(ref: str) -> dict[str, str]:
    """0002 and its rollback as they were at ``ref``, read from git."""

    def show(name: str) -> str:
        return subprocess.run(
            ["git", "show", f"{ref}:migrations/{name}"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    return {"up": show(f"{MIGRATION}.sql"), "down": show(f"{MIGRATION}.rollback.sql")}


def current_version() -> dict[str, str]:
    folder = data_dir("migrations")
    return {
        "up": (folder / f"{MIGRATION}.sql").read_text(encoding="utf-8"),
        "down": (folder / f"{MIGRATION}.rollback.sql").read_text(encoding="utf-8"),
    }


def own_server() -> tuple[str, Callable[[], None]]:
    from agentcore import embedded

    parent = Path(tempfile.mkdtemp(prefix="agentcore-bench-"))
    parent.chmod(0o711)  # as root, the server's account passes through it
    server = embedded.start(parent / "pgdata", throwaway=True)
    return server.dsn, server.stop


def run(
    admin: str,
    rows: int,
    agents: int,
    versions: dict[str, dict[str, str]],
    log: Callable[[str], None],
) -> dict[str, Any]:
    template = "agentcore_migration_legacy"
    names = {version: f"agentcore_migration_{version}" for version in versions}
    for name in [template, *names.values()]:
        execute(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    execute(admin, f"CREATE DATABASE {template}")
    try:
        started = time.perf_counter()
        build_legacy(dsn_for(admin, template), rows, agents)
        elapsed = time.perf_counter() - started
        log(f"built {rows:,} legacy rows of {agents:,} agents in {elapsed:.1f} s")
        for name in names.values():
            execute(admin, f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
        results: dict[str, dict[str, Any]] = {v: {} for v in versions}
        states: dict[str, dict[str, Any]] = {v: {} for v in versions}
        for step in ("up", "down"):
            for version, sql in versions.items():
                dsn = dsn_for(admin, names[version])
                results[version][step] = timed(dsn, sql[step])
                states[version][step] = fingerprint(dsn)
                log(f"{version} {step}: {results[version][step]['seconds']:.1f} s")
        return {
            "rows": rows,
            "agents": agents,
            "server": server_facts(dsn_for(admin, template)),
            "results": results,
            "same_result": {
                step: states["previous"][step] == states["current"][step] for step in ("up", "down")
            },
        }
    finally:
        for name in [template, *names.values()]:
            execute(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def dsn_for(admin: str, dbname: str) -> str:
    return make_conninfo(admin, dbname=dbname)


def execute(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement.encode())


def build_legacy(dsn: str, rows: int, agents: int) -> None:
    schema = (data_dir("migrations") / "0001_conversation_history.sql").read_text(encoding="utf-8")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(schema.encode())
        conn.execute(FILL.encode(), {"rows": rows, "agents": agents})
        conn.execute(b"VACUUM ANALYZE conversation_history")
        conn.execute(b"CHECKPOINT")


def sizes(conn: psycopg.Connection[Any]) -> dict[str, int]:
    row = conn.execute(
        b"SELECT pg_database_size(current_database()),"
        b" coalesce(pg_total_relation_size(to_regclass('conversation_history')), 0)"
        b" + coalesce(pg_total_relation_size(to_regclass('conversation_sessions')), 0),"
        b" (SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()),"
        b" pg_current_wal_lsn() - '0/0'::pg_lsn"
    ).fetchone()
    assert row is not None
    return {"database": row[0], "tables": row[1], "temp": row[2], "wal": int(row[3])}


def timed(dsn: str, sql: str) -> dict[str, Any]:
    """Run one migration file in one transaction, as yoyo does; measure it."""
    with psycopg.connect(dsn) as conn:
        conn.execute(b"CHECKPOINT")
        conn.commit()
        before = sizes(conn)
        conn.commit()
        started = time.perf_counter()
        conn.execute(sql.encode())
        peak = sizes(conn)  # inside the transaction: old and new rows both on disk
        conn.commit()
        seconds = time.perf_counter() - started
        time.sleep(0.6)  # pg_stat_database is flushed at most every 0.5 s
        after = sizes(conn)
    return {
        "seconds": round(seconds, 2),
        "tables_before": before["tables"],
        "tables_after": after["tables"],
        "extra_disk": peak["database"] - before["database"] + after["temp"] - before["temp"],
        "temp_files": after["temp"] - before["temp"],
        "wal": after["wal"] - before["wal"],
    }


def fingerprint(dsn: str) -> dict[str, Any]:
    """The rows and the schema a migration left, in comparable form."""
    with psycopg.connect(make_conninfo(dsn, options="-c TimeZone=UTC -c DateStyle=ISO")) as conn:
        tables = {}
        for table in ("conversation_history", "conversation_sessions"):
            if conn.execute(b"SELECT to_regclass(%s)", (table,)).fetchone() == (None,):
                continue
            columns = conn.execute(
                b"SELECT column_name, data_type, character_maximum_length, is_nullable,"
                b" column_default FROM information_schema.columns WHERE table_name = %s"
                b" ORDER BY ordinal_position",
                (table,),
            ).fetchall()
            digest = f"SELECT count(*), sum(hashtextextended(t::text, 0)::numeric) FROM {table} t"
            rows = conn.execute(digest.encode()).fetchone()
            indexes = conn.execute(
                b"SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname",
                (table,),
            ).fetchall()
            constraints = conn.execute(
                b"SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                b" WHERE conrelid = %s::regclass AND contype <> 'n' ORDER BY conname",
                (table,),
            ).fetchall()
            tables[table] = {
                "columns": [list(c) for c in columns],
                "rows": [rows[0], str(rows[1])] if rows else None,
                "indexes": [i[0] for i in indexes],
                "constraints": [list(c) for c in constraints],
            }
        return tables


def server_facts(dsn: str) -> dict[str, Any]:
    with psycopg.connect(dsn) as conn:
        facts: dict[str, Any] = {}
        for name in (
            "server_version",
            "shared_buffers",
            "work_mem",
            "maintenance_work_mem",
            "wal_level",
        ):
            row = conn.execute(f"SHOW {name}".encode()).fetchone()
            facts[name] = row[0] if row else None
        row = conn.execute(b"SELECT pg_table_size('conversation_history')").fetchone()
        facts["legacy_table_bytes"] = row[0] if row else None
    params = conninfo_to_dict(dsn)
    facts["host"] = (
        "embedded" if str(params.get("host", "")).startswith("/") else params.get("host")
    )
    return facts


def markdown(report: dict[str, Any]) -> str:
    mib = 1024 * 1024
    lines = [
        f"Migration {MIGRATION} on {report['rows']:,} legacy rows of {report['agents']:,} agents"
        f" (legacy table {report['server']['legacy_table_bytes'] / mib:,.0f} MiB,"
        f" PostgreSQL {report['server']['server_version']})",
        "",
        "| version | step | seconds | tables before (MiB) | tables after (MiB) |"
        " extra disk (MiB) | of which temp files | WAL (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for version, steps in report["results"].items():
        for step, r in steps.items():
            lines.append(
                f"| {version} | {step} | {r['seconds']:.1f} | {r['tables_before'] / mib:,.0f} |"
                f" {r['tables_after'] / mib:,.0f} | {r['extra_disk'] / mib:,.0f} |"
                f" {r['temp_files'] / mib:,.0f} | {r['wal'] / mib:,.0f} |"
            )
    results = report["results"]
    for step in ("up", "down"):
        ratio = results["previous"][step]["seconds"] / results["current"][step]["seconds"]
        lines.append(
            f"\n{step}: current is {ratio:.1f}x faster;"
            f" same rows and schema as previous: {report['same_result'][step]}"
        )
    lines.append(f"\ncommand: {report.get('command', 'python -m bench.migration')}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
