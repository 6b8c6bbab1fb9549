"""The CLI's commands. Each takes the parsed arguments and returns an exit status."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from collections.abc import Callable
from typing import TextIO

from agentcore import embedded, migrations
from agentcore.cli import render
from agentcore.cli.chat import build_model, run_chat
from agentcore.cli.database import (
    APP_ROLE,
    FROM_EMBEDDED,
    Database,
    describe_source,
    explicit_dsn,
    open_repository,
    prepare,
    resolve,
    same_database,
)
from agentcore.cli.demo import run_demo
from agentcore.errors import InvalidInputError, NotFoundError
from agentcore.models import AgentConfig
from agentcore.openai_model import OpenAIChatModel
from agentcore.paging import decode_history_cursor
from agentcore.repository import SessionLifecycle
from agentcore.validation import (
    check_identifier,
    check_limit,
    check_page_size,
    check_stored_identifier,
)


def say(text: str, *, file: TextIO | None = None) -> None:
    """Print ``text`` (one or more lines) with any control character escaped."""
    print(render.escape(text, keep_newlines=True), file=file)


def check_cursor(decode: Callable[[str], object], cursor: str, option: str, where: str) -> None:
    """Refuse ``cursor`` unless it is one agentcore printed, naming the option.

    Args:
        decode: The paging module's decoder for this kind of cursor.
        cursor: What the user passed.
        option: ``--after`` or ``--before``.
        where: The output line the cursor is copied from.

    Raises:
        InvalidInputError: ``cursor`` is not such a cursor.
    """
    try:
        decode(cursor)
    except InvalidInputError:
        raise InvalidInputError(
            f"{option} is not a cursor agentcore printed: pass the CURSOR of {where} "
            "(or the next_cursor of --json), as it is"
        ) from None


def history(args: argparse.Namespace) -> int:
    """``agentcore history``: print one session's messages, oldest first."""
    agent, session = _conversation(args, stored=True)
    if args.page or args.before is not None:
        return _history_page(args, agent, session)
    limit = check_limit(args.limit, "--limit")
    database = _database(args)

    async def run() -> str:
        async with open_repository(database) as repository:
            messages = await repository.load_history(agent, session, limit)
            # With --limit 0 one message tells whether the session exists at all.
            if not (messages or (limit == 0 and await repository.load_history(agent, session, 1))):
                await _require_session(repository, database, agent, session)
        return render.messages_json(messages) if args.json else render.messages_text(messages)

    shown = asyncio.run(run())
    if shown:  # nothing to show (--limit 0) prints nothing at all; JSON prints []
        say(shown)
    return 0


def _history_page(args: argparse.Namespace, agent: str, session: str) -> int:
    """One page of a conversation read backwards, and the cursor of the older page."""
    limit = check_page_size(100 if args.limit is None else args.limit, "--limit")
    if args.before is not None:
        check_cursor(
            decode_history_cursor, args.before, "--before", "an `older: --before CURSOR` line"
        )
    database = _database(args)

    async def run() -> str:
        async with open_repository(database) as repository:
            page = await repository.load_history_page(
                agent, session, limit=limit, before=args.before
            )
            if not page.messages and args.before is None:
                await _require_session(repository, database, agent, session)
        if args.json:
            messages = [render.message_fields(m) for m in page.messages]
            return render.json_text({"messages": messages, "next_cursor": page.next_cursor})
        text = render.messages_text(page.messages)
        if page.next_cursor:
            text += f"\nolder: --before {page.next_cursor}"
        return text

    shown = asyncio.run(run())
    if shown:  # like history: nothing to show prints nothing, not even the header
        say(shown)
    return 0


def forget(args: argparse.Namespace) -> int:
    """``agentcore forget``: delete one session's history."""
    agent, session = _conversation(args, stored=True)
    database = _database(args)

    async def run() -> int:
        async with open_repository(database) as repository:
            removed = await repository.clear_session(agent, session)
            if removed == 0:
                await _require_session(repository, database, agent, session)
        return removed

    removed = asyncio.run(run())
    say(f"forgot session {session!r} of agent {agent!r} ({render.counted(removed, 'message')})")
    return 0


def migrate(args: argparse.Namespace) -> int:
    """``agentcore migrate [up|down|status]``."""
    database = resolve(args.dsn, prog=args.prog)
    if args.action == "up":
        applied = migrations.apply(database.dsn)
        say("\n".join(f"applied {m}" for m in applied) or "already up to date")
    elif args.action == "down":
        if args.steps < 0:
            raise InvalidInputError(f"--steps must be >= 0, got {args.steps}")
        steps = None if args.all else args.steps
        plan = migrations.plan_rollback(database.dsn, steps=steps)
        if plan.messages and not set(plan.ids) <= _LOSSLESS_ROLLBACKS:
            _confirm_rollback(plan, database, assume_yes=args.yes)
        undone = migrations.rollback(database.dsn, steps=steps)
        say("\n".join(f"rolled back {m}" for m in undone) or "nothing to roll back")
        if undone and database.embedded:
            say(f"Commands now refuse this database until `{args.prog} migrate up`.")
    else:
        for state in migrations.status(database.dsn):
            say(f"{'applied' if state.applied else 'pending':<8} {state.id}")
    return 0


# Rollbacks that change no stored data (0005 only resets a table's fillfactor,
# 0006 moves the role's check from a domain back to the table, 0009 copies a
# Citus cluster's rows back onto the coordinator and does nothing elsewhere):
# they need no confirmation.
_LOSSLESS_ROLLBACKS = frozenset(
    {"0005_hot_session_updates", "0006_cached_role_check", "0009_citus_distribution"}
)


def _rollback_consequence(plan: migrations.RollbackPlan) -> str:
    """What rolling back ``plan.ids`` does to the stored conversations, in one sentence."""
    stored = (
        f"{render.counted(plan.conversations, 'conversation')}, "
        f"{render.counted(plan.messages, 'message')}"
    )
    if "0001_conversation_history" in plan.ids:
        return f"deletes every stored conversation: {stored}"
    if "0002_session_scoped_history" in plan.ids:
        return (
            f"merges the stored conversations ({stored}) into one history per agent: "
            "session ids, names, tool calls, metadata and message ids are lost"
        )
    if "0003_session_metadata" in plan.ids:
        return (
            f"drops the metadata of the stored conversations ({stored}): "
            "titles, owners and other session metadata are lost"
        )
    if "0007_scoped_state" in plan.ids and plan.ids == ["0007_scoped_state"]:
        return (
            f"drops the scoped state (Google ADK's session, user: and app: state) kept "
            f"beside the stored conversations ({stored}); the messages stay"
        )
    if "0004_exact_items" in plan.ids:
        return (
            f"moves the exact items of the stored conversations ({stored}) into their "
            "messages' metadata, where their key order and number forms may change"
        )
    return f"changes the schema that holds {stored} (see docs/migrations.md)"


def _confirm_rollback(
    plan: migrations.RollbackPlan, database: Database, *, assume_yes: bool
) -> None:
    """Ask before a rollback that loses stored data; refuse without a terminal or --yes."""
    what = (
        f"rolling back {', '.join(plan.ids)} on {describe_source(database)} "
        f"{_rollback_consequence(plan)}"
    )
    if not (assume_yes or sys.stdin.isatty()):
        raise InvalidInputError(
            f"{what}; not done: pass --yes to confirm (standard input is not a terminal)"
        )
    say(f"{what[0].upper()}{what[1:]}.")
    if assume_yes:
        return
    try:
        answer = input("Roll back? [y/N] ").strip().lower()
    except EOFError:  # Ctrl-D: no answer is a no
        answer = ""
    if answer not in ("y", "yes"):
        raise InvalidInputError("rollback cancelled: nothing was changed")


def db(args: argparse.Namespace) -> int:
    """``agentcore db [info|dsn|stop]``: the embedded default database."""
    data_dir = embedded.default_data_dir()
    if args.action == "stop":
        stopped = embedded.stop(data_dir)
        say(f"{'stopped' if stopped else 'not running'}: embedded PostgreSQL in {data_dir}")
        return 0
    if args.action == "dsn":
        # Only the DSN on stdout: `export AGENTCORE_DATABASE_URL=$(agentcore db dsn)`.
        server = embedded.start(data_dir)
        database = Database(dsn=server.dsn, source=FROM_EMBEDDED, prog=args.prog)
        prepare(database, apply_migrations=True)
        say(server.dsn if args.owner else server.app_dsn())
        return 0
    state = embedded.status(data_dir)
    if state.running:
        status = f"running (pid {state.pid})"
    elif state.initialized:
        status = "stopped (starts on the next command that needs it)"
    else:
        status = "not created yet (created on the next command that needs it)"
    say(f"data directory: {state.data_dir}")
    say(f"status:         {status}")
    if state.dsn:
        say(f"owner dsn:      {state.dsn}")
        say(f"app dsn:        `{args.prog} db dsn` (role {APP_ROLE}: reads and writes rows only)")
    if explicit_dsn(args.dsn):
        say("note:           a DSN is set (--dsn or AGENTCORE_DATABASE_URL): commands use it")
    return 0


def demo(args: argparse.Namespace) -> int:
    """``agentcore demo``: applies the migrations, even to a database given by DSN."""
    database = resolve(args.dsn, prog=args.prog)
    applied = prepare(database, apply_migrations=True)
    where = describe_source(database)
    say(f"Database: {where}" + (f" (applied {', '.join(applied)})" if applied else ""))

    async def run() -> None:
        async with open_repository(database) as repository:
            await run_demo(
                repository, say, again=f"{args.prog} demo", where=same_database(database)
            )

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
            async with open_repository(database) as repository:
                await run_chat(repository, model, config, session, args.message, say)
        finally:
            if isinstance(model, OpenAIChatModel):
                await model.aclose()

    asyncio.run(run())
    return 0


def _database(args: argparse.Namespace, *, apply_migrations: bool = False) -> Database:
    database = resolve(args.dsn, prog=args.prog)
    prepare(database, apply_migrations=apply_migrations)
    return database


def _conversation(args: argparse.Namespace, *, stored: bool = False) -> tuple[str, str]:
    # Reading or deleting (stored=True) accepts ids with control characters,
    # which older versions stored; nothing new is written under one.
    check = check_stored_identifier if stored else check_identifier
    return check(args.agent, "--agent"), check(args.session, "--session")


async def _require_session(
    repository: SessionLifecycle, database: Database, agent: str, session: str
) -> None:
    """Raise when ``(agent, session)`` has no stored conversation: it was mistyped.

    The hint is a command that lists the agent's sessions as written.
    """
    if not await repository.list_sessions(agent, limit=1):
        raise _unknown_agent(agent)
    raise NotFoundError(
        f"agent {agent!r} has no session {session!r} "
        f"(see `{database.prog} sessions --agent {shlex.quote(agent)}`{same_database(database)})"
    )


def _unknown_agent(agent: str) -> NotFoundError:
    return NotFoundError(f"unknown agent {agent!r}: no conversations are stored for it")
