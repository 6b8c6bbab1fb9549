"""Argument parsing, dispatch and error reporting for the ``agentcore`` command."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn, TextIO

from agentcore.cli import commands, lifecycle
from agentcore.cli.database import APP_ROLE, DSN_ENV
from agentcore.cli.render import describe, escape, redacted
from agentcore.dsn import has_password, parse_dsn
from agentcore.errors import DISTRIBUTION_NAME, AgentcoreError, InvalidDsnError
from agentcore.validation import (
    DEFAULT_PURGE_BATCH_SIZE,
    DEFAULT_PURGE_MAX_IMPACT,
    DEFAULT_PURGE_PAUSE,
)

EXIT_OK = 0
EXIT_ERROR = 1
"""An error the user can fix: bad input, unreachable database, schema not ready."""
EXIT_USAGE = 2
"""Bad command-line syntax (argparse's own code)."""
EXIT_INTERRUPTED = 130

PROG_ENV = "AGENTCORE_PROG"
"""How the user started the command, when a wrapper knows better (``run.py`` sets
``python3 run.py``): hints such as the demo's "run it again" name it."""

Command = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse, with the user's text in its error messages escaped like every output.

    An argument no parser knows is an error of the parser it was given to
    (``sessions purge --json``: purge's usage line, not the top-level one).
    A parser made with ``default_action="list"`` reads ``sessions [OPTIONS]``
    as ``sessions list [OPTIONS]``; its own options are the default action's,
    accepted before no other action.
    """

    def __init__(self, *args: Any, default_action: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._default_action = default_action

    def error(self, message: str) -> NoReturn:
        super().error(escape(message))

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        argv = list(sys.argv[1:] if args is None else args)
        if self._default_action is None:
            parsed, extras = super().parse_known_args(argv, namespace)
        else:
            parsed, extras = self._parse_action(argv, self._default_action)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def _parse_action(self, argv: list[str], default: str) -> tuple[argparse.Namespace, list[str]]:
        # A subparser's namespace is always a new one (argparse copies it into
        # its parent's), so both passes start from nothing.
        self.exit_on_error = False
        try:
            parsed, extras = super().parse_known_args(argv)
        except argparse.ArgumentError as exc:
            if argv and not argv[0].startswith("-"):
                self.error(str(exc))  # `sessions bogus`: not an action
            parsed = None  # an option of no action's, or one's bad value: the default's
        finally:
            self.exit_on_error = True
        if parsed is None or parsed.action is None:
            return super().parse_known_args([default, *argv])
        early = [
            option.option_strings[0]
            for option in self._actions
            if option.dest.startswith(_BEFORE_ACTION) and hasattr(parsed, option.dest)
        ]
        if early:
            self.error(
                f"{', '.join(early)} before the action {parsed.action!r}: an action's options "
                f"follow its name (see `{self.prog} {parsed.action} --help`)"
            )
        return parsed, extras


_BEFORE_ACTION = "before_action_"
"""The dests of the options a ``default_action`` parser takes before any action."""


def main(argv: Sequence[str] | None = None, *, prog: str = "agentcore") -> int:
    """Run the ``agentcore`` command.

    Args:
        argv: The arguments after the program name (default: ``sys.argv[1:]``).
        prog: How the user started it (``python -m agentcore``...), named in
            usage lines and hints; ``$AGENTCORE_PROG`` overrides it.

    Returns:
        The process exit status: 0 on success, 1 for an error the user can
        fix (one line on stderr; a traceback too with ``--debug``), 2 for a
        usage error, 130 when interrupted.
    """
    parser = build_parser(os.environ.get(PROG_ENV) or prog)
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # like pip: what there is to do, on stdout, and success
        parser.print_help()
        return EXIT_OK
    args = parser.parse_args(argv)
    # Every DSN this invocation may quote in a message; their passwords are hidden.
    dsns = [dsn for dsn in (args.dsn, os.environ.get(DSN_ENV)) if dsn]
    _warn_of_password_in_argv(args.dsn)
    command: Command = args.command
    with _logging_to_stderr(debug=args.debug, dsns=dsns):
        try:
            return command(args)
        except AgentcoreError as exc:
            if args.debug:
                sys.stderr.write(redacted(traceback.format_exc(), dsns))
            print(f"agentcore: error: {describe(exc, dsns=dsns)}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            print("agentcore: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED


PASSWORD_IN_ARGV_WARNING = (
    "agentcore: warning: --dsn holds a password, which every local user can read in the "
    f"process list (ps); set ${DSN_ENV} or use a libpq passfile (~/.pgpass) or service "
    "file instead"
)
"""Printed once on stderr when ``--dsn`` carries a password (never the password itself)."""


def _warn_of_password_in_argv(dsn: str | None) -> None:
    if not dsn or not has_password(dsn):
        return
    try:
        parse_dsn(dsn)
    except InvalidDsnError:
        return  # the command reports the malformed DSN, in one line
    commands.say(PASSWORD_IN_ARGV_WARNING, file=sys.stderr)


class _Stderr(logging.StreamHandler[TextIO]):
    """A handler writing to whatever ``sys.stderr`` is when a record comes (like
    logging's last resort), hiding the passwords of ``dsns`` in every line."""

    def __init__(self, dsns: Sequence[str]) -> None:
        super().__init__()
        self._dsns = list(dsns)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always sys.stderr

    def format(self, record: logging.LogRecord) -> str:
        return redacted(super().format(record), self._dsns)


@contextmanager
def _logging_to_stderr(*, debug: bool, dsns: Sequence[str]) -> Iterator[None]:
    """Log records (a driver's warnings; with ``--debug`` everything) on stderr, redacted.

    Without a handler of the application's own, Python prints warnings through
    its last-resort handler, which would show libpq's text as it is. When the
    root logger already has handlers (an application calling :func:`main`,
    pytest), they are left to do their job.
    """
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    handler = _Stderr(dsns)
    handler.setLevel(logging.DEBUG if debug else logging.WARNING)
    handler.setFormatter(
        logging.Formatter("%(levelname)s %(name)s: %(message)s" if debug else "%(message)s")
    )
    level = root.level
    root.addHandler(handler)
    if debug:
        root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def build_parser(prog: str = "agentcore") -> argparse.ArgumentParser:
    """The full ``agentcore`` argument parser; ``prog`` is how the user started it."""
    parser = _Parser(
        prog=prog,
        description="Session-scoped, persistent conversation history for AI agents.",
    )
    parser.set_defaults(prog=prog)
    parser.add_argument(
        "--version", action="version", version=f"agentcore ({DISTRIBUTION_NAME}) {_version()}"
    )
    _shared_options(parser, default_dsn=None, default_debug=False)
    # Every command accepts the same options after its name too. There they
    # default to SUPPRESS, so a value given before the command is kept.
    shared = _Parser(add_help=False)
    _shared_options(shared, default_dsn=argparse.SUPPRESS, default_debug=argparse.SUPPRESS)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def add(name: str, command: Command, help_text: str, **kwargs: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[shared], help=help_text, description=help_text, **kwargs)
        p.set_defaults(command=command)
        return p

    add("demo", commands.demo, "two concurrent sessions of one agent, then a resumed one")

    chat = add("chat", commands.chat, "talk to an agent in one session")
    _conversation_args(chat)
    chat.add_argument("message", nargs="?", help="send one message and exit (default: a loop)")
    chat.add_argument("--model", choices=["echo", "openai"], default="echo")
    chat.add_argument(
        "--model-name",
        default="gpt-4o-mini",
        help="the model for --model openai (reads OPENAI_API_KEY and OPENAI_BASE_URL)",
    )
    chat.add_argument("--instructions", help="the agent's system prompt")
    chat.add_argument(
        "--history-limit",
        type=int,
        default=50,
        help="how many stored messages the model sees (default: 50)",
    )

    history = add("history", commands.history, "print one session's messages")
    _conversation_args(history)
    history.add_argument("--limit", type=int, help="only the last N messages (a page: 100)")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.add_argument(
        "--page",
        action="store_true",
        help="read backwards page by page: the last --limit messages and the older page's cursor",
    )
    history.add_argument(
        "--before", metavar="CURSOR", help="the page before this cursor (implies --page)"
    )

    sessions = add(
        "sessions",
        lifecycle.sessions,
        "list (default), copy, purge or label an agent's sessions",
        default_action="list",
    )
    _list_options(sessions, before_action=True)
    actions = sessions.add_subparsers(
        title="actions",
        dest="action",
        metavar="ACTION",
        description=f"`{prog} sessions --agent A` is `{prog} sessions list --agent A`; "
        f"`{prog} sessions ACTION --help` shows an action's options",
    )

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        return actions.add_parser(name, parents=[shared], help=help_text, description=help_text)

    _list_options(action("list", "an agent's sessions, newest first, a page at a time"))
    copy = action("copy", "branch a conversation: the same messages under a new session id")
    copy.add_argument("--agent", required=True, help="the agent's name")
    copy.add_argument(
        "--from", dest="source", metavar="S1", required=True, help="the session to copy"
    )
    copy.add_argument("--to", dest="target", metavar="S2", required=True, help="the new session id")
    copy.add_argument(
        "--up-to",
        metavar="N|ID",
        help="only the first N messages, or up to the message with this id (default: all)",
    )
    purge = action("purge", "remove the sessions idle for longer than --idle-for")
    purge.add_argument(
        "--idle-for",
        metavar="DURATION",
        required=True,
        help="idle for longer than this (30d, 12h, 90m, 45s, 2w)",
    )
    purge.add_argument("--agent", help="only this agent's sessions (default: every agent's)")
    purge.add_argument("--dry-run", action="store_true", help="only count")
    purge.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        default=DEFAULT_PURGE_BATCH_SIZE,
        help=f"sessions per transaction (default: {DEFAULT_PURGE_BATCH_SIZE})",
    )
    purge.add_argument(
        "--pause",
        type=float,
        metavar="SECONDS",
        default=DEFAULT_PURGE_PAUSE,
        help=f"seconds at least between batches (default: {DEFAULT_PURGE_PAUSE})",
    )
    purge.add_argument(
        "--max-impact",
        type=float,
        metavar="SHARE",
        default=DEFAULT_PURGE_MAX_IMPACT,
        help="share of the time spent in batches, above 0 and at most 1: after a batch of "
        f"d seconds wait d*(1-SHARE)/SHARE (default: {DEFAULT_PURGE_MAX_IMPACT})",
    )
    purge.add_argument("--yes", action="store_true", help="do not ask to confirm")
    metadata = action("metadata", "show a session's metadata, or --set it")
    metadata.add_argument("--agent", required=True, help="the agent's name")
    metadata.add_argument("--session", required=True, help="the session id")
    metadata.add_argument("--set", metavar="JSON", help="merge this JSON object in")
    metadata.add_argument("--replace", action="store_true", help="--set replaces the whole object")

    export = add("export", lifecycle.export, "write conversations as JSON Lines")
    export.add_argument("--agent", help="only this agent's sessions (default: every agent)")
    export.add_argument("--session", help="only this session (needs --agent)")
    export.add_argument("--out", metavar="FILE", help="write to FILE (default: stdout)")
    export.add_argument(
        "--force", action="store_true", help="with --out: overwrite FILE if it exists"
    )

    import_ = add("import", lifecycle.import_, "load conversations from a JSON Lines export")
    import_.add_argument("file", metavar="FILE", help="the export file, or - for stdin")

    forget = add("forget", commands.forget, "delete one session's history")
    _conversation_args(forget)

    migrate = add("migrate", commands.migrate, "apply, roll back or show the schema migrations")
    migrate.add_argument(
        "action",
        nargs="?",
        choices=["up", "down", "status"],
        default="status",
        help="up: apply all pending; down: roll back; status (default): list them",
    )
    migrate.add_argument("--steps", type=int, default=1, help="how many to roll back (default: 1)")
    migrate.add_argument("--all", action="store_true", help="with down: roll back every migration")
    migrate.add_argument(
        "--yes",
        action="store_true",
        help="with down: do not ask before losing stored conversations (needed without a terminal)",
    )

    db = add(
        "db",
        commands.db,
        "the embedded database: info (default), dsn (print only a DSN for applications, "
        "starting it) or stop",
    )
    db.add_argument("action", nargs="?", choices=["info", "dsn", "stop"], default="info")
    db.add_argument(
        "--owner",
        action="store_true",
        help=f"with dsn: the owner's DSN (superuser, for migrations), not the {APP_ROLE} role's",
    )
    return parser


def _list_options(parser: argparse.ArgumentParser, *, before_action: bool = False) -> None:
    """``sessions list``'s options; ``before_action``: on ``sessions`` itself, where
    they are parsed again as ``list``'s (they only need to be recognised there)."""

    def add(option: str, **kwargs: Any) -> None:
        if before_action:
            kwargs.pop("required", None)
            kwargs.update(dest=_BEFORE_ACTION + option[2:].replace("-", "_"))
            kwargs.update(default=argparse.SUPPRESS)
            if kwargs.get("action") != "store_true":
                kwargs.setdefault("metavar", option[2:].upper())
        parser.add_argument(option, **kwargs)

    add("--agent", required=True, help="the agent's name")
    add("--limit", type=int, metavar="N", default=100, help="page size (default: 100)")
    add("--after", metavar="CURSOR", help="the page after this cursor")
    add("--owner", help="only the sessions whose metadata owner is this")
    add("--json", action="store_true", help="print JSON")


def _conversation_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent", required=True, help="the agent's name")
    parser.add_argument("--session", required=True, help="the session id")


def _shared_options(
    parser: argparse.ArgumentParser, *, default_dsn: object, default_debug: object
) -> None:
    parser.add_argument(
        "--dsn",
        type=_dsn_argument,
        default=default_dsn,
        help="PostgreSQL DSN or URL (default: $AGENTCORE_DATABASE_URL, else the embedded database)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default_debug,
        help="log debug output and show tracebacks",
    )


def _dsn_argument(text: str) -> str:
    # `--dsn "$UNSET"` must not fall back to another database without a word.
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "an empty DSN (an unset variable?): give one, or leave --dsn out to use "
            f"${DSN_ENV} or the embedded database"
        )
    return text


def _version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION_NAME)
    except importlib.metadata.PackageNotFoundError:  # a checkout run without installing it
        return "(not installed)"
