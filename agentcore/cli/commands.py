"""The CLI's commands. Each takes the parsed arguments and returns an exit status."""

from __future__ import annotations

import argparse
import asyncio
import json

from agentcore import embedded, migrations
from agentcore.cli import render
from agentcore.cli.chat import build_model, run_chat
from agentcore.cli.database import Database, explicit_dsn, open_repository, prepare, resolve
from agentcore.cli.demo import run_demo
from agentcore.errors import InvalidInputError, NotFoundError
from agentcore.models import AgentConfig
from agentcore.openai_model import OpenAIChatModel
from agentcore.repository import HistoryRepository
from agentcore.validation import check_identifier, check_limit, check_page_size


def history(args: argparse.Namespace) -> int:
    """``agentcore history``: print one session's messages, oldest first."""
    agent, session = _conversation(args)
    if args.page or args.before is not None:
        return _history_page(args, agent, session)
    limit = check_limit(args.limit, "--limit")
    database = _database(args)

    async def run() -> str:
        async with open_repository(database.dsn) as repository:
            messages = await repository.load_history(agent, session, limit)
            if not messages and limit != 0:
                await _require_session(repository, agent, session)
        return render.messages_json(messages) if args.json else render.messages_text(messages)

    print(asyncio.run(run()))
    return 0


def _history_page(args: argparse.Namespace, agent: str, session: str) -> int:
    """One page of a conversation read backwards, and the cursor of the older page."""
    limit = check_page_size(100 if args.limit is None else args.limit, "--limit")
    database = _database(args)

    async def run() -> str:
        async with open_repository(database.dsn) as repository:
            page = await repository.load_history_page(
                agent, session, limit=limit, before=args.before
            )
            if not page.messages and args.before is None:
                await _require_session(repository, agent, session)
        if args.json:
            messages = [m.model_dump(mode="json") for m in page.messages]
            return json.dumps(
                {"messages": messages, "next_cursor": page.next_cursor},
                indent=2,
                ensure_ascii=False,
            )
        text = render.messages_text(page.messages)
        if page.next_cursor:
            text += f"\nolder: --before {page.next_cursor}"
        return text

    print(asyncio.run(run()))
    return 0


def forget(args: argparse.Namespace) -> int:
    """``agentcore forget``: delete one session's history."""
    agent, session = _conversation(args)
    database = _database(args)

    async def run() -> int:
        async with open_repository(database.dsn) as repository:
            removed = await repository.clear_session(agent, session)
            if removed == 0:
                await _require_session(repository, agent, session)
        return removed

    removed = asyncio.run(run())
    print(f"forgot session {session!r} of agent {agent!r} ({removed} messages)")
    return 0


def migrate(args: argparse.Namespace) -> int:
    """``agentcore migrate [up|down|status]``."""
    dsn = resolve(args.dsn).dsn
    if args.action == "up":
        applied = migrations.apply(dsn)
        print("\n".join(f"applied {m}" for m in applied) or "already up to date")
    elif args.action == "down":
        if args.steps < 0:
            raise InvalidInputError(f"--steps must be >= 0, got {args.steps}")
        undone = migrations.rollback(dsn, steps=None if args.all else args.steps)
        print("\n".join(f"rolled back {m}" for m in undone) or "nothing to roll back")
    else:
        for state in migrations.status(dsn):
            print(f"{'applied' if state.applied else 'pending':<8} {state.id}")
    return 0


def db(args: argparse.Namespace) -> int:
    """``agentcore db [info|stop]``: the embedded default database."""
    data_dir = embedded.default_data_dir()
    if args.action == "stop":
        stopped = embedded.stop(data_dir)
        print(f"{'stopped' if stopped else 'not running'}: embedded PostgreSQL in {data_dir}")
        return 0
    state = embedded.status(data_dir)
    if state.running:
        status = f"running (pid {state.pid})"
    elif state.initialized:
        status = "stopped (starts on the next command that needs it)"
    else:
        status = "not created yet (created on the next command that needs it)"
    print(f"data directory: {state.data_dir}")
    print(f"status:         {status}")
    if state.dsn:
        print(f"dsn:            {state.dsn}")
    if explicit_dsn(args.dsn):
        print("note:           a DSN is set (--dsn or AGENTCORE_DATABASE_URL): commands use it")
    return 0


def demo(args: argparse.Namespace) -> int:
    """``agentcore demo``: applies the migrations, even to a database given by DSN."""
    database = resolve(args.dsn)
    where = (
        f"embedded PostgreSQL in {embedded.default_data_dir()}"
        if database.embedded
        else "the database given by --dsn / AGENTCORE_DATABASE_URL"
    )
    applied = prepare(database, apply_migrations=True)
    print(f"Database: {where}" + (f" (applied {', '.join(applied)})" if applied else ""))

    async def run() -> None:
        async with open_repository(database.dsn) as repository:
            await run_demo(repository, print)

    asyncio.run(run())
    return 0


def chat(args: argparse.Namespace) -> int:
    """``agentcore chat``: one turn with MESSAGE, else a loop over stdin."""
    agent, session = _conversation(args)
    limit = check_limit(args.history_limit, "--history-limit")
    config = AgentConfig(
        name=agent,
        instructions=args.instructions,
        include_history=True,
        history_limit=limit,
        model=args.model_name if args.model == "openai" else None,
    )
    model = build_model(args.model, args.model_name)
    database = _database(args)

    async def run() -> None:
        try:
            async with open_repository(database.dsn) as repository:
                await run_chat(repository, model, config, session, args.message, print)
        finally:
            if isinstance(model, OpenAIChatModel):
                await model.aclose()

    asyncio.run(run())
    return 0


def _database(args: argparse.Namespace, *, apply_migrations: bool = False) -> Database:
    database = resolve(args.dsn)
    prepare(database, apply_migrations=apply_migrations)
    return database


def _conversation(args: argparse.Namespace) -> tuple[str, str]:
    return check_identifier(args.agent, "--agent"), check_identifier(args.session, "--session")


async def _require_session(repository: HistoryRepository, agent: str, session: str) -> None:
    """Raise when ``(agent, session)`` has no stored conversation: it was mistyped."""
    if not await repository.list_sessions(agent, limit=1):
        raise _unknown_agent(agent)
    raise NotFoundError(f"agent {agent!r} has no session {session!r} (see `agentcore sessions`)")


def _unknown_agent(agent: str) -> NotFoundError:
    return NotFoundError(f"unknown agent {agent!r}: no conversations are stored for it")
