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
from agentcore.cli.commands import check_cursor, say
from agentcore.cli.database import Database, open_repository, prepare, resolve
from agentcore.cli.progress import ProgressBar
from agentcore.errors import AgentcoreError, InvalidInputError, NotFoundError
from agentcore.models import PurgeReport
from agentcore.paging import decode_session_cursor
from agentcore.transfer import ImportRefusal, TransferReport, export_jsonl, import_jsonl
from agentcore.validation import (
    check_identifier,
    check_limit,
    check_max_impact,
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
    # Only a copy writes under the agent's name; list, purge and metadata read,
    # label or delete what is stored, also under ids older versions accepted.
    agent = check_stored_identifier(args.agent, "--agent")
    if check_limit(args.limit, "--limit") == 0:
        return _list_nothing(args, agent)
    limit = check_page_size(args.limit, "--limit")
    owner = None if args.owner is None else check_stored_identifier(args.owner, "--owner")
    if args.after is not None:
        check_cursor(decode_session_cursor, args.after, "--after", "a `more: --after CURSOR` line")
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
    agent = check_identifier(args.agent, "--agent")
    source = check_stored_identifier(args.source, "--from")
    target = check_identifier(args.target, "--to")
    up_to: int | str | None = args.up_to
    if isinstance(up_to, str) and up_to.isdigit():
        up_to = int(up_to)
    database = _database(args)

    async def run() -> int:
        async with open_repository(database) as repository:
            if isinstance(up_to, int):
                # The library copies what there is; on the command line a count
                # past the end is a mistake (a message id meant, or the wrong session).
                info = await repository.get_session(agent, source)
                if info is not None and up_to > info.message_count:
                    raise InvalidInputError(
                        f"--up-to {up_to} is past the end of session {source!r}, which holds "
                        f"{render.counted(info.message_count, 'message')}; nothing was copied"
                    )
            return await repository.copy_session(agent, source, target, up_to=up_to)

    copied = asyncio.run(run())
    say(
        f"copied session {source!r} to {target!r} of agent {agent!r} "
        f"({render.counted(copied, 'message')})"
    )
    return 0


def _metadata(args: argparse.Namespace) -> int:
    agent = check_stored_identifier(args.agent, "--agent")
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
    idle_for = parse_duration(args.idle_for)
    agent = None if args.agent is None else check_stored_identifier(args.agent, "--agent")
    batch_size = check_page_size(args.batch_size, "--batch-size")
    pause = check_pause(args.pause)
    max_impact = check_max_impact(args.max_impact, "--max-impact")
    database = _database(args)
    scope = f"agent {agent!r}" if agent else "every agent"

    async def run() -> tuple[PurgeReport, bool]:
        async with open_repository(database) as repository:
            due = await repository.purge_idle_sessions(idle_for, agent_name=agent, dry_run=True)
            if args.dry_run or due.sessions == 0:
                return due, not args.dry_run
            if not args.yes:
                _confirm_purge(
                    f"delete {_conversations(due.sessions, due.messages)} of {scope}, "
                    f"idle for more than {args.idle_for}? [y/N] "
                )
            bar = ProgressBar(sys.stderr, "conversation", due.sessions)
            try:
                done = await repository.purge_idle_sessions(
                    idle_for,
                    agent_name=agent,
                    batch_size=batch_size,
                    pause=pause,
                    max_impact=max_impact,
                    on_progress=lambda r: bar.update(r.sessions, _messages(r.messages)),
                )
                bar.update(done.sessions, _messages(done.messages), force=True)
            finally:
                bar.close()
            return done, True

    report, deleted = asyncio.run(run())
    verb = "purged" if deleted else "would purge"
    say(
        f"{verb} {_conversations(report.sessions, report.messages)} of {scope} "
        f"idle for more than {args.idle_for}"
    )
    return 0


def _confirm_purge(question: str) -> None:
    """Ask ``question`` on the terminal; refuse without one (a script must say --yes)."""
    if not sys.stdin.isatty():
        raise InvalidInputError(
            "nothing deleted: pass --yes to confirm (standard input is not a terminal)"
        )
    sys.stderr.write(question)
    sys.stderr.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):  # Ctrl-D reads "": a no
        raise InvalidInputError("purge cancelled: nothing was deleted")


def export(args: argparse.Namespace) -> int:
    """``agentcore export``: conversations as JSON Lines, to a file or stdout."""
    agent = None if args.agent is None else check_stored_identifier(args.agent, "--agent")
    session = None if args.session is None else check_stored_identifier(args.session, "--session")
    if session is not None and agent is None:
        raise InvalidInputError("--session needs --agent")
    database = _database(args)

    async def run(out: TextIO) -> TransferReport:
        bar = ProgressBar(sys.stderr, "conversation")
        try:
            async with open_repository(database) as repository:
                return await export_jsonl(
                    repository,
                    out,
                    agent_name=agent,
                    session_id=session,
                    on_progress=lambda r: bar.update(r.sessions, _messages(r.messages)),
                )
        finally:
            bar.close()

    with _output(args.out, force=args.force) as out:
        report = asyncio.run(run(out))
    where = "stdout" if args.out in (None, "-") else args.out
    say(
        f"exported {_conversations(report.sessions, report.messages)} to {where}",
        file=sys.stderr,
    )
    return 0


def import_(args: argparse.Namespace) -> int:
    """``agentcore import FILE``: load a JSON Lines export (``-``: stdin)."""
    database = _database(args)

    async def run(lines: BinaryIO) -> TransferReport:
        bar = ProgressBar(sys.stderr, "conversation")

        def refused(refusal: ImportRefusal) -> None:
            bar.clear()
            # One line: the escape writes a newline in the text as "\n".
            print(render.escape(f"agentcore: error: {refusal}"), file=sys.stderr)

        try:
            async with open_repository(database) as repository:
                return await import_jsonl(
                    repository,
                    lines,
                    on_progress=lambda r: bar.update(r.sessions, _messages(r.messages)),
                    on_refused=refused,
                )
        finally:
            bar.close()

    with _input(args.file) as lines:
        report = asyncio.run(run(lines))
    empty = f", {report.empty_sessions} of them empty" if report.empty_sessions else ""
    say(
        f"imported {render.counted(report.sessions, 'conversation')} "
        f"({render.counted(report.messages, 'message')}{empty}); "
        f"skipped {report.skipped_sessions} already present; "
        f"refused {report.refused_sessions}"
    )
    if report.refused_sessions:
        raise AgentcoreError(
            f"{render.counted(report.refused_sessions, 'conversation')} refused (see above); "
            "the others were imported"
        )
    return 0


@contextmanager
def _output(path: str | None, *, force: bool) -> Iterator[TextIO]:
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
            open_private(path, overwrite=force) as binary,
            io.TextIOWrapper(binary, encoding="utf-8", newline="\n") as file,
        ):
            yield file
    except OSError as exc:
        raise InvalidInputError(f"cannot write {path}: {exc.strerror}") from None


EXPORT_FILE_MODE = 0o600
"""An export holds conversations, which are private: only its owner may read it."""


@contextmanager
def open_private(path: str, *, overwrite: bool = False) -> Iterator[io.BufferedWriter]:
    """Open ``path`` to write an export: created 0600, whatever the umask.

    An existing regular file is refused unless ``overwrite`` (``--force``):
    an export is often the only copy of what a purge deletes next. When
    overwritten, it must be this account's: its mode is narrowed to 0600
    before its contents are truncated. A symbolic link is never followed
    (someone who can write the directory could point it anywhere), and a file
    of another account is refused. A FIFO or a device (``/dev/null``) is
    written as it is.

    Raises:
        InvalidInputError: ``path`` cannot be opened, is a symbolic link, is
            an existing file (without ``overwrite``), or is a file of another
            account.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            fd = os.open(path, flags | os.O_EXCL, EXPORT_FILE_MODE)
            created = True
        except FileExistsError:
            fd = os.open(path, flags, EXPORT_FILE_MODE)
            created = False
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidInputError(
                f"cannot write {path}: it is a symbolic link, which an export never follows"
            ) from None
        raise InvalidInputError(f"cannot write {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            if not (created or overwrite):
                raise InvalidInputError(
                    f"cannot write {path}: it exists; pass --force to overwrite it"
                )
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


def _conversations(conversations: int, messages: int) -> str:
    """``1 conversation (2 messages)``."""
    return (
        f"{render.counted(conversations, 'conversation')} ({render.counted(messages, 'message')})"
    )


def _messages(count: int) -> str:
    return render.counted(count, "message", grouped=True)


def _json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _database(args: argparse.Namespace) -> Database:
    database = resolve(args.dsn, prog=args.prog)
    prepare(database, apply_migrations=False)
    return database
