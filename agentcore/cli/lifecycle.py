"""The CLI's lifecycle commands: page, copy, purge, label, export and import conversations.

Each only wires a repository operation (or :mod:`agentcore.transfer`) to a command.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import io
import json
import os
import re
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, TextIO

from agentcore.cli import render
from agentcore.cli.commands import say
from agentcore.cli.database import Database, open_repository, prepare, resolve
from agentcore.cli.progress import ProgressBar
from agentcore.errors import AgentcoreError, InvalidInputError, NotFoundError
from agentcore.models import PurgeReport
from agentcore.transfer import ImportRefusal, TransferReport, export_jsonl, import_jsonl
from agentcore.validation import (
    check_identifier,
    check_limit,
    check_page_size,
    check_pause,
    check_stored_identifier,
)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` as a timedelta.

    Raises:
        InvalidInputError: anything else.
    """
    match = _DURATION.match(text)
    if not match:
        raise InvalidInputError(
            f"--idle-for must be a number and a unit (s, m, h, d or w), like 30d; got {text!r}"
        )
    try:
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    except OverflowError:
        raise InvalidInputError(f"--idle-for is too long: {text!r}") from None


def sessions(args: argparse.Namespace) -> int:
    """``agentcore sessions [list|copy|purge|metadata]``."""
    action = {
        "list": _list,
        "copy": _copy,
        "purge": _purge,
        "metadata": _metadata,
    }[args.action]
    return action(args)


def _list(args: argparse.Namespace) -> int:
    agent = _agent(args)
    if check_limit(args.limit, "--limit") == 0:
        return _list_nothing(args, agent)
    limit = check_page_size(args.limit, "--limit")
    owner = None if args.owner is None else check_stored_identifier(args.owner, "--owner")
    database = _database(args)

    async def run() -> str:
        async with open_repository(database) as repository:
            page = await repository.list_sessions_page(
                agent, owner=owner, limit=limit, after=args.after
            )
            if not page.sessions and owner is None and args.after is None:
                raise NotFoundError(f"unknown agent {agent!r}: no conversations are stored for it")
        if args.json:
            return _json(
                {
                    "sessions": [s.model_dump(mode="json") for s in page.sessions],
                    "next_cursor": page.next_cursor,
                }
            )
        if not page.sessions:  # like history: nothing to show prints nothing
            return ""
        text = render.sessions_text(page.sessions)
        if page.next_cursor:
            text += f"\nmore: --after {page.next_cursor}"
        return text

    shown = asyncio.run(run())
    if shown:
        say(shown)
    return 0


def _list_nothing(args: argparse.Namespace, agent: str) -> int:
    """``--limit 0``: nothing is listed, but an unknown agent is still an error."""
    database = _database(args)

    async def run() -> None:
        async with open_repository(database) as repository:
            if not await repository.list_sessions(agent, limit=1):
                raise NotFoundError(f"unknown agent {agent!r}: no conversations are stored for it")

    asyncio.run(run())
    if args.json:
        say(_json({"sessions": [], "next_cursor": None}))
    return 0


def _copy(args: argparse.Namespace) -> int:
    agent = _agent(args)
    if args.source is None or args.target is None:
        raise InvalidInputError("sessions copy needs --from and --to")
    source = check_stored_identifier(args.source, "--from")
    target = check_identifier(args.target, "--to")
    up_to: int | str | None = args.up_to
    if isinstance(up_to, str) and up_to.isdigit():
        up_to = int(up_to)
    database = _database(args)

    async def run() -> int:
        async with open_repository(database) as repository:
            return await repository.copy_session(agent, source, target, up_to=up_to)

    copied = asyncio.run(run())
    say(f"copied session {source!r} to {target!r} of agent {agent!r} ({copied} messages)")
    return 0


def _metadata(args: argparse.Namespace) -> int:
    agent = _agent(args)
    if args.session is None:
        raise InvalidInputError("sessions metadata needs --session")
    session = check_stored_identifier(args.session, "--session")
    update = None
    if args.set is not None:
        try:
            update = json.loads(args.set)
        except ValueError:
            raise InvalidInputError(
                '--set must be a JSON object, like \'{"title": "x"}\''
            ) from None
    database = _database(args)

    async def run() -> object:
        async with open_repository(database) as repository:
            if update is not None:
                return await repository.set_session_metadata(
                    agent, session, update, merge=not args.replace
                )
            info = await repository.get_session(agent, session)
            if info is None:
                raise NotFoundError(f"agent {agent!r} has no session {session!r}")
            return info.metadata

    say(_json(asyncio.run(run())))
    return 0


def _purge(args: argparse.Namespace) -> int:
    if args.idle_for is None:
        raise InvalidInputError("sessions purge needs --idle-for, like --idle-for 30d")
    idle_for = parse_duration(args.idle_for)
    agent = None if args.agent is None else check_stored_identifier(args.agent, "--agent")
    batch_size = check_page_size(args.batch_size, "--batch-size")
    pause = check_pause(args.pause)
    database = _database(args)
    scope = f"agent {agent!r}" if agent else "every agent"

    async def run() -> tuple[PurgeReport, bool]:
        async with open_repository(database) as repository:
            due = await repository.purge_idle_sessions(idle_for, agent_name=agent, dry_run=True)
            if args.dry_run or due.sessions == 0:
                return due, not args.dry_run
            if not args.yes and not _confirmed(
                f"delete {due.sessions} conversations ({due.messages} messages) of {scope}, "
                f"idle for more than {args.idle_for}? [y/N] "
            ):
                raise InvalidInputError("nothing deleted: confirm on a terminal, or pass --yes")
            bar = ProgressBar(sys.stderr, "conversations", due.sessions)
            try:
                done = await repository.purge_idle_sessions(
                    idle_for,
                    agent_name=agent,
                    batch_size=batch_size,
                    pause=pause,
                    on_progress=lambda r: bar.update(r.sessions, f"{r.messages:,} messages"),
                )
                bar.update(done.sessions, f"{done.messages:,} messages", force=True)
            finally:
                bar.close()
            return done, True

    report, deleted = asyncio.run(run())
    verb = "purged" if deleted else "would purge"
    say(
        f"{verb} {report.sessions} conversations ({report.messages} messages) of {scope} "
        f"idle for more than {args.idle_for}"
    )
    return 0


def _confirmed(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    sys.stderr.write(question)
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def export(args: argparse.Namespace) -> int:
    """``agentcore export``: conversations as JSON Lines, to a file or stdout."""
    agent = None if args.agent is None else check_stored_identifier(args.agent, "--agent")
    session = None if args.session is None else check_stored_identifier(args.session, "--session")
    if session is not None and agent is None:
        raise InvalidInputError("--session needs --agent")
    database = _database(args)

    async def run(out: TextIO) -> TransferReport:
        bar = ProgressBar(sys.stderr, "conversations")
        try:
            async with open_repository(database) as repository:
                return await export_jsonl(
                    repository,
                    out,
                    agent_name=agent,
                    session_id=session,
                    on_progress=lambda r: bar.update(r.sessions, f"{r.messages:,} messages"),
                )
        finally:
            bar.close()

    with _output(args.out) as out:
        report = asyncio.run(run(out))
    where = "stdout" if args.out in (None, "-") else args.out
    say(
        f"exported {report.sessions} conversations ({report.messages} messages) to {where}",
        file=sys.stderr,
    )
    return 0


def import_(args: argparse.Namespace) -> int:
    """``agentcore import FILE``: load a JSON Lines export (``-``: stdin)."""
    database = _database(args)

    async def run(lines: BinaryIO) -> TransferReport:
        bar = ProgressBar(sys.stderr, "conversations")

        def refused(refusal: ImportRefusal) -> None:
            bar.clear()
            # One line: the escape writes a newline in the text as "\n".
            print(render.escape(f"agentcore: error: {refusal}"), file=sys.stderr)

        try:
            async with open_repository(database) as repository:
                return await import_jsonl(
                    repository,
                    lines,
                    on_progress=lambda r: bar.update(r.sessions, f"{r.messages:,} messages"),
                    on_refused=refused,
                )
        finally:
            bar.close()

    with _input(args.file) as lines:
        report = asyncio.run(run(lines))
    empty = f", {report.empty_sessions} of them empty" if report.empty_sessions else ""
    say(
        f"imported {report.sessions} conversations ({report.messages} messages{empty}); "
        f"skipped {report.skipped_sessions} already present; "
        f"refused {report.refused_sessions}"
    )
    if report.refused_sessions:
        raise AgentcoreError(
            f"{report.refused_sessions} conversation(s) refused (see above); "
            "the others were imported"
        )
    return 0


@contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    # The format is UTF-8 whatever the locale says.
    if path in (None, "-"):
        sys.stdout.flush()
        stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
        try:
            yield stdout
        finally:
            stdout.flush()
            stdout.detach()
        return
    try:
        with (
            open_private(path) as binary,
            io.TextIOWrapper(binary, encoding="utf-8", newline="\n") as file,
        ):
            yield file
    except OSError as exc:
        raise InvalidInputError(f"cannot write {path}: {exc.strerror}") from None


EXPORT_FILE_MODE = 0o600
"""An export holds conversations, which are private: only its owner may read it."""


@contextmanager
def open_private(path: str) -> Iterator[io.BufferedWriter]:
    """Open ``path`` to write an export: created 0600, whatever the umask.

    An existing file is overwritten, as shells do with ``>``, but only a
    regular file of this account's: its mode is narrowed to 0600 before its
    contents are truncated. A symbolic link is never followed (someone who can
    write the directory could point it anywhere), and a file of another
    account is refused. A FIFO or a device (``/dev/null``) is written as it is.

    Raises:
        InvalidInputError: ``path`` cannot be opened, is a symbolic link, or
            is a file of another account.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, EXPORT_FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidInputError(
                f"cannot write {path}: it is a symbolic link, which an export never follows"
            ) from None
        raise InvalidInputError(f"cannot write {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            if info.st_uid != os.geteuid():
                raise InvalidInputError(
                    f"cannot write {path}: it belongs to another account (uid {info.st_uid})"
                )
            os.fchmod(fd, EXPORT_FILE_MODE)  # the umask cannot widen it, an old file narrows
            os.ftruncate(fd, 0)
        binary = os.fdopen(fd, "wb")
    except OSError as exc:
        os.close(fd)
        raise InvalidInputError(f"cannot write {path}: {exc.strerror}") from None
    except BaseException:
        os.close(fd)
        raise
    with binary:
        yield binary


@contextmanager
def _input(path: str) -> Iterator[BinaryIO]:
    # Bytes: import_jsonl measures each line before decoding it (as UTF-8,
    # whatever the locale says).
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        file = Path(path).open("rb")
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None
    with file:
        yield file


def _json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _agent(args: argparse.Namespace) -> str:
    if args.agent is None:
        raise InvalidInputError(f"sessions {args.action} needs --agent")
    # Only a copy writes under the agent's name; the other actions read,
    # label or delete what is stored, also under ids older versions accepted.
    check = check_identifier if args.action == "copy" else check_stored_identifier
    return check(args.agent, "--agent")


def _database(args: argparse.Namespace) -> Database:
    database = resolve(args.dsn, prog=args.prog)
    prepare(database, apply_migrations=False)
    return database
