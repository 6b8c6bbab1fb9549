"""Export conversations to JSON Lines and import them back, through any repository.

The format (version 1, documented in docs/operations.md) is one JSON object
per line:

* first, the header ``{"format": "agentcore-history", "version": 1}``;
* for each conversation, a ``session`` line (its agent, session id, metadata
  and times), then one ``message`` line per message, oldest first, each with
  its agent and session id and every field of the message.

Both directions stream: an export reads each conversation in batches
(``iter_history``), an import hands each conversation's messages to
``import_session`` one line at a time. An export holds one batch of messages
at a time, an import one line, and a line longer than :func:`max_line_bytes`
is refused before it is decoded: memory stays bounded whatever the length of
a conversation or of a line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import accumulate
from typing import Any, Protocol, cast

from agentcore.errors import (
    ImportLineError,
    InvalidInputError,
    InvalidMessageError,
    LineTooLongError,
    SessionExistsError,
)
from agentcore.exact_json import exact_json
from agentcore.models import Message, SessionInfo
from agentcore.repository import HistoryExport, HistoryImport
from agentcore.validation import (
    MAX_CONTENT_CHARS_LIMIT,
    MAX_ID_LENGTH,
    MAX_JSON_FIELD_BYTES,
    MAX_SESSION_METADATA_CHARS,
    MAX_TEXT_FIELD_CHARS,
    REPEATED_IMPORT_ID,
)

FORMAT = "agentcore-history"
"""The ``format`` of the header line."""

FORMAT_VERSION = 1
"""The ``version`` written; an import accepts this version only."""

JSON_BYTES_PER_CHAR = 6
"""Most bytes one character of a string takes in an export's JSON: the export
writes UTF-8 unescaped (``ensure_ascii=False``), so a character is 1 to 4 bytes,
``"`` and ``\\`` are 2, and a control character is escaped in 6 (``\\u001b``)."""

LINE_OVERHEAD_BYTES = 1024
"""More than a line holds besides its strings and JSON fields: its keys,
quotes and commas, the role, a ``created_at``, a message count."""


def max_line_bytes(max_content_chars: int = MAX_CONTENT_CHARS_LIMIT) -> int:
    """The longest line a valid export holds for a repository, in bytes (newline excluded).

    The longest line is a message's, with every field at its limit (the
    limits of :mod:`agentcore.validation`, which both repositories apply):

    * ``content``: ``max_content_chars`` characters, ``name`` and
      ``tool_call_id``: :data:`~agentcore.validation.MAX_TEXT_FIELD_CHARS`
      each, at :data:`JSON_BYTES_PER_CHAR` bytes a character;
    * ``metadata``, ``tool_calls`` and ``item``:
      :data:`~agentcore.validation.MAX_JSON_FIELD_BYTES` each, measured as
      the very JSON text an export writes (compact, UTF-8);
    * the message id, agent name and session id:
      :data:`~agentcore.validation.MAX_ID_LENGTH` characters each;
    * :data:`LINE_OVERHEAD_BYTES` for the rest.

    A session line (metadata of at most
    :data:`~agentcore.validation.MAX_SESSION_METADATA_CHARS` characters) is
    far shorter; the header is one short line. With the default
    ``max_content_chars`` (1,000,000) the bound is 43,754,350 bytes; with the
    largest (25,000,000), 187,754,350.

    Args:
        max_content_chars: The importing repository's ``max_content_chars``.

    Returns:
        The bound: any longer line holds a field over its limit, which the
        repository would refuse anyway.
    """
    message = (
        JSON_BYTES_PER_CHAR * (max_content_chars + 2 * MAX_TEXT_FIELD_CHARS + 3 * MAX_ID_LENGTH)
        + 3 * MAX_JSON_FIELD_BYTES
        + LINE_OVERHEAD_BYTES
    )
    session = (
        4 * MAX_SESSION_METADATA_CHARS  # characters of JSON text, escapes included
        + JSON_BYTES_PER_CHAR * 2 * MAX_ID_LENGTH
        + LINE_OVERHEAD_BYTES
    )
    return max(message, session)


class BinaryLines(Protocol):
    """An export read as bytes: a file opened ``"rb"``, ``sys.stdin.buffer``."""

    def readline(self, size: int = -1, /) -> bytes:
        """The next line, at most ``size`` bytes of it; ``b""`` at the end."""


class TextSink(Protocol):
    """Where an export writes: anything with ``write(str)`` (a text file, ``sys.stdout``)."""

    def write(self, text: str, /) -> Any:
        """Write ``text``."""


@dataclass(frozen=True)
class TransferReport:
    """What an export wrote or an import stored.

    Every conversation of an import file is counted once: stored
    (``sessions``), skipped or refused.

    Attributes:
        sessions: Conversations written (export) or stored (import).
        messages: Their messages.
        skipped_sessions: Import only: conversations already present, left as they were.
        refused_sessions: Import only: conversations the repository refused
            (nothing of them stored; ``on_refused`` says which and why).
        empty_sessions: Import only: how many of ``sessions`` have no message
            (stored with their metadata and times).
    """

    sessions: int = 0
    messages: int = 0
    skipped_sessions: int = 0
    refused_sessions: int = 0
    empty_sessions: int = 0


Progress = Callable[[TransferReport], None]


@dataclass(frozen=True)
class ImportRefusal:
    """A conversation of an import file that its repository refused (nothing of it stored).

    Attributes:
        agent_name: Its agent name, as the file gives it (maybe not a string).
        session_id: Its session id, as the file gives it.
        line_number: The line refused: the session line, or the message's line.
        error: Why, as the repository said it.
    """

    agent_name: Any
    session_id: Any
    line_number: int
    error: InvalidInputError

    def __str__(self) -> str:
        return (
            f"line {self.line_number}: session {self.session_id!r} of agent "
            f"{self.agent_name!r} refused: {self.error}"
        )


async def export_jsonl(
    repository: HistoryExport,
    out: TextSink,
    *,
    agent_name: str | None = None,
    session_id: str | None = None,
    batch_size: int = 1000,
    on_progress: Progress | None = None,
) -> TransferReport:
    """Write conversations to ``out`` as JSON Lines.

    Args:
        repository: Where to read from: any :class:`~agentcore.HistoryExport`
            (``iter_sessions``, ``iter_history``, ``get_session``).
        out: Where to write (text).
        agent_name: Only this agent's conversations (default: every agent's).
        session_id: Only this conversation (needs ``agent_name``).
        batch_size: Messages (and conversations) read per statement.
        on_progress: Called after each conversation with the totals so far.

    Returns:
        How many conversations and messages were written.

    Raises:
        InvalidInputError: ``session_id`` without ``agent_name``, or a bad id.
        NotFoundError: never; an unknown agent or session exports nothing.
    """
    if session_id is not None and agent_name is None:
        raise InvalidInputError("exporting one session needs its agent_name too")
    out.write(_line({"format": FORMAT, "version": FORMAT_VERSION}))
    sessions = messages = 0
    async for info in _sessions(repository, agent_name, session_id, batch_size):
        out.write(_line(_session_line(info)))
        key = {"agent_name": info.agent_name, "session_id": info.session_id}
        async for message in repository.iter_history(
            info.agent_name, info.session_id, batch_size=batch_size
        ):
            out.write(_line({"type": "message", **key, "message": _message_fields(message)}))
            messages += 1
        sessions += 1
        if on_progress is not None:
            on_progress(TransferReport(sessions, messages))
    return TransferReport(sessions, messages)


async def _sessions(
    repository: HistoryExport, agent_name: str | None, session_id: str | None, batch_size: int
) -> Any:
    if session_id is not None:
        assert agent_name is not None
        info = await repository.get_session(agent_name, session_id)
        if info is not None:
            yield info
        return
    async for info in repository.iter_sessions(agent_name, batch_size=batch_size):
        yield info


def _session_line(info: SessionInfo) -> dict[str, Any]:
    return {
        "type": "session",
        "agent_name": info.agent_name,
        "session_id": info.session_id,
        "metadata": info.metadata,
        "created_at": info.created_at.isoformat(),
        "updated_at": info.updated_at.isoformat(),
        "message_count": info.message_count,
    }


def _message_fields(message: Message) -> dict[str, Any]:
    fields = message.model_dump(mode="json", exclude_none=True)
    fields["created_at"] = message.created_at.isoformat() if message.created_at else None
    if message.item is not None:
        # As stored: pydantic's JSON mode would replace a lone surrogate in a key.
        fields["item"] = message.item
    return fields


def _line(value: dict[str, Any]) -> str:
    # An item may hold lone surrogates: written as escapes, so that the line is UTF-8.
    return exact_json(value) + "\n"


async def import_jsonl(
    repository: HistoryImport,
    lines: BinaryLines | Iterable[str],
    *,
    on_progress: Progress | None = None,
    on_refused: Callable[[ImportRefusal], None] | None = None,
) -> TransferReport:
    """Store the conversations of a JSON Lines export.

    Each conversation is stored atomically (``import_session``), an empty one
    (its messages popped or replaced by none) with its metadata and times, and
    ids that older versions stored (with control characters) as they are: an
    export of the result is the very file imported. One already present is
    left as it was and counted as skipped, so importing the same file twice
    stores nothing twice.

    Two kinds of trouble, two outcomes:

    * **A conversation that its repository refuses** (a bad id, metadata,
      time or message): it is skipped whole, counted in ``refused_sessions``
      and handed to ``on_refused``, and the import goes on with the next one.
    * **A line that cannot be read** (not UTF-8, not a JSON object, nested too
      deeply, longer than :func:`max_line_bytes`, out of place, or a bad
      header): the import stops with :class:`~agentcore.errors.ImportLineError`
      naming it. The conversations complete before that line stay stored (one
      whose session line gives its ``message_count`` is complete once that
      many messages were read; one without is complete only at the next
      session line); the one it interrupts is not stored. After fixing the
      line, a second run skips what the first stored.

    From a binary or text file (anything with ``readline``) at most
    :func:`max_line_bytes` bytes (characters) of a line are read before it is
    refused, so memory stays bounded whatever the file holds; strings given in
    a list are only measured. A binary file is decoded line by line, so a
    line that is not UTF-8 is named exactly; a text file's decoder reads
    ahead, so the line it names is the one being read when the decoder
    failed, at or before the bad bytes.

    Args:
        repository: Where to store: any :class:`~agentcore.HistoryImport`
            (``import_session``).
        lines: The export: a file opened in binary (best: it is decoded as
            UTF-8 only once its length is known to be acceptable), a text
            file, ``sys.stdin``, or any iterable of lines.
        on_progress: Called after each conversation with the totals so far.
        on_refused: Called with each refused conversation, when it is refused.

    Returns:
        How many conversations and messages were stored, and how many were
        skipped and refused.

    Raises:
        ImportLineError: a line cannot be read (the message says which and why;
            :class:`~agentcore.errors.LineTooLongError` for a line too long).
    """
    limit = max_line_bytes(getattr(repository, "max_content_chars", MAX_CONTENT_CHARS_LIMIT))
    reader = _Lines(_bounded_lines(lines, limit))
    header = reader.next_object()
    if header is None or header.get("format") != FORMAT:
        raise ImportLineError(1, f"not an agentcore export (no {FORMAT!r} header)")
    if header.get("version") != FORMAT_VERSION:
        raise ImportLineError(
            1,
            f"export format version {header.get('version')!r} is not supported "
            f"(this agentcore reads version {FORMAT_VERSION})",
        )
    report = TransferReport()
    while (record := reader.next_object()) is not None:
        if record.get("type") != "session":
            raise ImportLineError(
                reader.number, f"expected a session line, got {record.get('type')!r}"
            )
        outcome = await _import_one(repository, reader, record)
        if isinstance(outcome, ImportRefusal):
            report = replace(report, refused_sessions=report.refused_sessions + 1)
            if on_refused is not None:
                on_refused(outcome)
        elif outcome is None:
            report = replace(report, skipped_sessions=report.skipped_sessions + 1)
        else:
            report = replace(
                report,
                sessions=report.sessions + 1,
                messages=report.messages + outcome,
                empty_sessions=report.empty_sessions + (outcome == 0),
            )
        if on_progress is not None:
            on_progress(report)
    return report


async def _import_one(
    repository: HistoryImport, reader: _Lines, record: dict[str, Any]
) -> int | ImportRefusal | None:
    """Import one conversation: its message count, a refusal, or ``None`` when it was
    already there (its lines are read past either way)."""
    session_line = reader.number
    agent: Any = record.get("agent_name")  # checked by import_session
    session: Any = record.get("session_id")
    messages = reader.messages_of(agent, session, record.get("message_count"))
    try:
        return await repository.import_session(
            agent,
            session,
            messages,
            metadata=record.get("metadata", {}),
            created_at=_time(record.get("created_at"), "created_at"),
            updated_at=_time(record.get("updated_at"), "updated_at"),
        )
    except SessionExistsError:
        outcome = None
    except ImportLineError:
        raise  # the file cannot be read on: the import stops
    except InvalidInputError as exc:  # ids, metadata, times, a message
        # A message's error names the line it was read from; an id repeated
        # is found when the store sees it (PostgreSQL: at the COPY's end).
        named = isinstance(exc, InvalidMessageError) and str(exc) != REPEATED_IMPORT_ID
        line = reader.number if named else session_line
        outcome = ImportRefusal(agent, session, line, exc)
    reader.read_past(messages)
    return outcome


def _time(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} is not an ISO 8601 time: {value!r}") from None


def _bounded_lines(source: BinaryLines | Iterable[str], limit: int) -> Iterator[str]:
    """The lines of ``source`` as text, each refused once it is known to exceed ``limit`` bytes."""
    readline: Callable[[int], bytes | str] | None = getattr(source, "readline", None)
    if readline is None:
        for number, text in enumerate(cast("Iterable[str]", source), start=1):
            yield _checked(text, number, limit)
        return
    number = 0
    while True:
        try:
            # One byte (or character, at least a byte) more than a line may hold: its newline.
            line = readline(limit + 1)
        except UnicodeDecodeError:  # a text file's decoder, which reads ahead
            raise ImportLineError(
                number + 1, "not UTF-8 (found by the file's decoder at or after this line)"
            ) from None
        if not line:
            return
        number += 1
        yield _checked(line, number, limit)


def _checked(line: bytes | str, number: int, limit: int) -> str:
    """``line`` as text, unless it is longer than ``limit`` bytes before its newline."""
    if isinstance(line, bytes):
        if len(line) - line.endswith(b"\n") > limit:
            raise LineTooLongError(number, limit)
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImportLineError(number, f"not UTF-8 (byte {exc.start + 1} of the line)") from None
    chars = len(line) - line.endswith("\n")
    # Measured in UTF-8 only when it may matter: a character is 1 to 4 bytes.
    if chars > limit or (
        4 * chars > limit and len(line[:chars].encode("utf-8", "surrogatepass")) > limit
    ):
        raise LineTooLongError(number, limit)
    return line


MAX_JSON_DEPTH = 512
"""The deepest nesting of arrays and objects an import reads in a line.

A stored value nests at most about 255 levels (pydantic's limit), so no
export line comes near it. Deeper lines are refused before they are parsed:
the outcome must not depend on how much of Python's stack the caller uses
(the JSON parser recurses, and fails at about 1,000 levels less what the
stack already holds)."""

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _nested_too_deeply(text: str) -> bool:
    """Whether ``text``'s arrays and objects nest deeper than :data:`MAX_JSON_DEPTH`."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False  # most lines: two scans in C
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0) > MAX_JSON_DEPTH


class _Lines:
    """The export's lines as JSON objects, one at a time, with one line of look-ahead.

    A line that cannot be read raises :class:`ImportLineError`, except right
    after the last message a session line announced: the conversation is
    complete, so its stream ends and the error comes with the next object.
    """

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._pending: dict[str, Any] | None = None
        self._error: ImportLineError | None = None
        self.number = 0

    def next_object(self) -> dict[str, Any] | None:
        if self._error is not None:
            raise self._error
        if self._pending is not None:
            pending, self._pending = self._pending, None
            return pending
        for text in self._lines:
            self.number += 1
            if not text.strip():
                continue
            if _nested_too_deeply(text):
                raise ImportLineError(
                    self.number,
                    f"JSON nested more than {MAX_JSON_DEPTH} levels deep (no export line is)",
                )
            try:
                value = json.loads(text)
            except (ValueError, RecursionError):
                raise ImportLineError(self.number, "not JSON") from None
            if not isinstance(value, dict):
                raise ImportLineError(self.number, "not a JSON object")
            return value
        return None

    def read_past(self, messages: Iterator[Any]) -> None:
        """Read past the rest of a skipped or refused conversation's ``messages``.

        A line that cannot be read is raised by the next :meth:`next_object`,
        once the conversation is counted.
        """
        try:
            for _ in messages:
                pass
        except ImportLineError as exc:
            self._error = exc

    def messages_of(self, agent: Any, session: Any, declared: Any) -> Iterator[Any]:
        """The message lines that follow, up to the next session line.

        ``declared``: the session line's ``message_count``; once that many
        messages were read, a line that cannot be read ends the stream (the
        conversation is stored) and is raised by the next :meth:`next_object`.
        """
        count = 0
        while True:
            try:
                record = self.next_object()
                if record is not None and record.get("type") == "message":
                    if (record.get("agent_name"), record.get("session_id")) != (agent, session):
                        raise ImportLineError(
                            self.number,
                            f"a message of session {record.get('session_id')!r} "
                            f"under the session line of {session!r}",
                        )
            except ImportLineError as exc:
                if type(declared) is not int or count != declared:
                    raise
                self._error = exc
                return
            if record is None:
                return
            if record.get("type") != "message":
                self._pending = record
                return
            count += 1
            yield record.get("message")
