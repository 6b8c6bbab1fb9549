"""Google ADK's complaint workloads: AgentcoreSessionService against ADK's DatabaseSessionService.

Run from the repository root, with the ``bench`` extra installed::

    python -m bench.adk --out bench/results/adk.json

Without ``--dsn`` it starts its own throw-away embedded PostgreSQL, applies
agentcore's migrations, and removes everything at exit. Both services use
the same server and database: ``AgentcoreSessionService`` over
``PostgresHistoryRepository`` (psycopg), ADK 2.13's ``DatabaseSessionService``
on ``postgresql+asyncpg`` (its own tables, created by it).

1. ``list_sessions`` of one user who has N sessions (``--list-sizes``).
2. ``get_session`` of a session of E events with ``num_recent_events=20``
   (``--event-sizes``).
3. An ADK turn: ``get_session`` (``num_recent_events=20``), then
   ``append_event`` of one event with a state delta, on C sessions at once
   (``--concurrency``), each seeded with 20 events.

Sessions and events are seeded with bulk SQL into each service's own tables
(what its ``create_session``/``append_event`` would store: the same rows), so
that the sizes are reached in seconds. A contender whose one call takes
longer than ``--give-up`` seconds at a size is not measured at larger ones.
Figures are medians over ``--repeats`` calls; prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig
from google.adk.sessions.database_session_service import DatabaseSessionService
from google.genai import types
from psycopg.conninfo import conninfo_to_dict

from agentcore import PostgresHistoryRepository, migrations
from agentcore.integrations.google_adk import AgentcoreSessionService, conversation_id
from bench.turns import _own_server, machine

APP = "bench-app"
WINDOW = GetSessionConfig(num_recent_events=20)
T0 = 1_750_000_000.0


def event_json(n: int) -> dict[str, Any]:
    """One event as both services store it (a model's text reply)."""
    event = Event(
        id=str(uuid.UUID(int=n)),
        invocation_id=f"inv-{n}",
        author="assistant",
        timestamp=T0 + n,
        content=types.Content(role="model", parts=[types.Part(text=f"reply {n} " + "x" * 200)]),
    )
    return event.model_dump(exclude_none=True, mode="json")


async def seed_agentcore(dsn: str, user: str, sessions: int, events: int) -> list[str]:
    """``sessions`` sessions of ``user``, each with ``events`` events, in agentcore's tables."""
    ids = [f"{user}-s{i}" for i in range(sessions)]
    keys = [conversation_id(user, s) for s in ids]
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO conversation_sessions (agent_name, session_id, next_seq, metadata)"
            " SELECT %(a)s, k, %(n)s, jsonb_build_object('owner', %(u)s::text)"
            " FROM unnest(%(keys)s::text[]) AS k",
            {"a": APP, "u": user, "keys": keys, "n": events},
        )
        await conn.execute(
            "INSERT INTO session_state (agent_name, session_id, owner, state, update_time)"
            " SELECT %(a)s, k, %(u)s, '{\"k\": 1}', %(t)s + o"
            " FROM unnest(%(keys)s::text[]) WITH ORDINALITY AS x(k, o)",
            {"a": APP, "u": user, "keys": keys, "t": T0},
        )
        if events:
            item = json.dumps(event_json(0))
            await conn.execute(
                "INSERT INTO conversation_history"
                " (agent_name, session_id, seq, role, item, created_at)"
                " SELECT %(a)s, k, g, 'assistant', %(item)s::json, to_timestamp(%(t)s + g)"
                " FROM unnest(%(keys)s::text[]) AS k, generate_series(0, %(n)s - 1) AS g",
                {"a": APP, "keys": keys, "n": events, "item": item, "t": T0},
            )
        await conn.execute("ANALYZE")
    return ids


async def seed_adk(dsn: str, user: str, sessions: int, events: int) -> list[str]:
    """The same in DatabaseSessionService's tables (sessions, events, app/user states)."""
    ids = [f"{user}-s{i}" for i in range(sessions)]
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO app_states (app_name, state, update_time) VALUES (%(a)s, '{}', now())"
            " ON CONFLICT DO NOTHING",
            {"a": APP},
        )
        await conn.execute(
            "INSERT INTO user_states (app_name, user_id, state, update_time)"
            " VALUES (%(a)s, %(u)s, '{}', now()) ON CONFLICT DO NOTHING",
            {"a": APP, "u": user},
        )
        await conn.execute(
            "INSERT INTO sessions (app_name, user_id, id, state, create_time, update_time)"
            " SELECT %(a)s, %(u)s, s, '{\"k\": 1}',"
            " (to_timestamp(%(t)s) AT TIME ZONE 'UTC'),"
            " (to_timestamp(%(t)s + o) AT TIME ZONE 'UTC')"
            " FROM unnest(%(ids)s::text[]) WITH ORDINALITY AS x(s, o)",
            {"a": APP, "u": user, "ids": ids, "t": T0},
        )
        if events:
            data = event_json(0)
            await conn.execute(
                "INSERT INTO events (id, app_name, user_id, session_id, invocation_id,"
                " timestamp, event_data)"
                " SELECT gen_random_uuid()::text, %(a)s, %(u)s, s, 'inv',"
                " (to_timestamp(%(t)s + g) AT TIME ZONE 'UTC'), %(data)s::jsonb"
                " FROM unnest(%(ids)s::text[]) AS s, generate_series(0, %(n)s - 1) AS g",
                {"a": APP, "u": user, "ids": ids, "n": events, "data": json.dumps(data), "t": T0},
            )
        await conn.execute("ANALYZE")
    return ids


Seed = Callable[[str, str, int, int], Awaitable[list[str]]]


async def timed(call: Callable[[], Awaitable[Any]], repeats: int) -> float:
    """The median seconds of ``repeats`` calls (after one untimed warm-up)."""
    await call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def turn(service: BaseSessionService, user: str, session_id: str, n: int) -> None:
    session = await service.get_session(
        app_name=APP, user_id=user, session_id=session_id, config=WINDOW
    )
    assert session is not None
    event = Event(
        invocation_id=f"turn-{n}",
        author="assistant",
        timestamp=time.time(),
        content=types.Content(role="model", parts=[types.Part(text=f"turn {n}")]),
        actions=EventActions(state_delta={"turns": n, "user:last": n}),
    )
    await service.append_event(session, event)


async def turns_per_second(
    service: BaseSessionService, user: str, ids: Sequence[str], turns_each: int
) -> float:
    """Turns per second with one task per session of ``ids``, ``turns_each`` turns each."""

    async def one(session_id: str) -> None:
        for n in range(turns_each):
            await turn(service, user, session_id, n)

    await asyncio.gather(*(turn(service, user, s, -1) for s in ids))  # warm-up
    start = time.perf_counter()
    await asyncio.gather(*(one(s) for s in ids))
    return len(ids) * turns_each / (time.perf_counter() - start)


async def measure(
    name: str, service: BaseSessionService, seed: Seed, dsn: str, args: argparse.Namespace
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for size in args.list_sizes:
        user = f"lister{size}"
        await seed(dsn, user, size, 0)

        async def listing(user: str = user) -> None:
            await service.list_sessions(app_name=APP, user_id=user)

        seconds = await timed(listing, args.repeats)
        found[f"list_sessions at {size} sessions (ms)"] = round(seconds * 1000, 2)
        print(f"{name}: list_sessions at {size}: {seconds * 1000:.2f} ms", flush=True)
        if seconds > args.give_up:
            break
    for size in args.event_sizes:
        user = f"reader{size}"
        (session_id,) = await seed(dsn, user, 1, size)

        async def get(user: str = user, session_id: str = session_id) -> None:
            got = await service.get_session(
                app_name=APP, user_id=user, session_id=session_id, config=WINDOW
            )
            assert got is not None and len(got.events) == 20

        seconds = await timed(get, args.repeats)
        found[f"get_session of {size} events, last 20 (ms)"] = round(seconds * 1000, 2)
        print(f"{name}: get_session at {size} events: {seconds * 1000:.2f} ms", flush=True)
        if seconds > args.give_up:
            break
    for c in args.concurrency:
        user = f"turner{c}"
        ids = await seed(dsn, user, c, 20)
        rate = await turns_per_second(service, user, ids, args.turns)
        found[f"turns per second at C={c}"] = round(rate, 1)
        print(f"{name}: turns at C={c}: {rate:.1f}/s", flush=True)
    return found


async def run(dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    arguments = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    results: dict[str, Any] = {"machine": machine(), "args": arguments | {"dsn": None}}
    async with PostgresHistoryRepository.from_dsn(dsn, max_size=20) as repo:
        results["agentcore"] = await measure(
            "agentcore", AgentcoreSessionService(repo), seed_agentcore, dsn, args
        )
    url = "postgresql+asyncpg://"
    info = conninfo_to_dict(dsn)
    url += f"{info.get('user', '')}:{info.get('password', '')}@"
    url += f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info['dbname']}"
    if str(info.get("host", "")).startswith("/"):
        url = (
            f"postgresql+asyncpg://{info.get('user', '')}:{info.get('password', '')}@/"
            f"{info['dbname']}?host={info['host']}&port={info.get('port', 5432)}"
        )
    adk = DatabaseSessionService(url, pool_size=20)
    try:
        await adk.create_session(app_name=APP, user_id="warm-up")  # creates its tables
        results["adk"] = await measure("adk", adk, seed_adk, dsn, args)
    finally:
        await adk.close()
    results["load_average_at_end"] = os.getloadavg()
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        "| workload | agentcore | ADK DatabaseSessionService | ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, ours in results["agentcore"].items():
        theirs = results["adk"].get(key)
        if theirs is None:
            ratio = "not measured"
        elif key.startswith("turns"):
            ratio = f"{ours / theirs:.1f}x"
        else:
            ratio = f"{theirs / ours:.1f}x"
        lines.append(f"| {key} | {ours} | {'-' if theirs is None else theirs} | {ratio} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", help="a migrated database (default: a throw-away server)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--list-sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--event-sizes", type=int, nargs="+", default=[3_000, 30_000])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--turns", type=int, default=20, help="turns per session, timed")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--give-up", type=float, default=60.0)
    args = parser.parse_args(argv)
    dsn, stop = (args.dsn, None) if args.dsn else _own_server()
    try:
        migrations.apply(dsn)
        results = asyncio.run(run(dsn, args))
    finally:
        if stop is not None:
            stop()
    print(table(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
