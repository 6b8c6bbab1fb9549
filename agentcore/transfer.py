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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from agentcore.errors import (
    InvalidInputError,
    InvalidMessageError,
    LineTooLongError,
    SessionExistsError,
)
from agentcore.exact_json import exact_json
from agentcore.models import Message, SessionInfo
from agentcore.repository import HistoryRepository
from agentcore.validation import (
    MAX_CONTENT_CHARS_LIMIT,
    MAX_ID_LENGTH,
    MAX_JSON_FIELD_BYTES,
    MAX_SESSION_METADATA_CHARS,
    MAX_TEXT_FIELD_CHARS,
    check_identifier,
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

    Attributes:
        sessions: Conversations written (export) or stored (import).
        messages: Their messages.
        skipped_sessions: Import only: conversations already present, left as they were.
    """

    sessions: int = 0
    messages: int = 0
    skipped_sessions: int = 0


Progress = Callable[[TransferReport], None]


async def export_jsonl(
    repository: HistoryRepository,
    out: TextSink,
    *,
    agent_name: str | None = None,
    session_id: str | None = None,
    batch_size: int = 1000,
    on_progress: Progress | None = None,
) -> TransferReport:
    """Write conversations to ``out`` as JSON Lines.

    Args:
        repository: Where to read from.
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
    repository: HistoryRepository, agent_name: str | None, session_id: str | None, batch_size: int
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
    repository: HistoryRepository,
    lines: BinaryLines | Iterable[str],
    *,
    on_progress: Progress | None = None,
) -> TransferReport:
    """Store the conversations of a JSON Lines export.

    Each conversation is stored atomically (``import_session``); one already
    present is left as it was and counted as skipped, so importing the same
    file twice stores nothing twice. A conversation that fails validation
    stops the import with an error; the ones before it stay stored, and a
    second run after the fix skips them.

    A line longer than :func:`max_line_bytes` (for the repository's
    ``max_content_chars``) stops the import too. From a binary or text file
    (anything with ``readline``) at most that many bytes (characters) of a
    line are read before it is refused, so memory stays bounded whatever the
    file holds; strings given in a list are only measured.

    Args:
        repository: Where to store.
        lines: The export: a file opened in binary (best: it is decoded as
            UTF-8 only once its length is known to be acceptable), a text
            file, ``sys.stdin``, or any iterable of lines.
        on_progress: Called after each conversation with the totals so far.

    Returns:
        How many conversations and messages were stored, and how many skipped.

    Raises:
        LineTooLongError: a line is longer than :func:`max_line_bytes`.
        InvalidInputError: a line is not UTF-8 or not JSON, the header is
            missing or of another version, or lines are out of place (the
            message says which line).
        InvalidMessageError: a message is invalid (with its line).
    """
    limit = max_line_bytes(getattr(repository, "max_content_chars", MAX_CONTENT_CHARS_LIMIT))
    reader = _Lines(_bounded_lines(lines, limit))
    header = reader.next_object()
    if header is None or header.get("format") != FORMAT:
        raise InvalidInputError(f"line 1: not an agentcore export (no {FORMAT!r} header)")
    if header.get("version") != FORMAT_VERSION:
        raise InvalidInputError(
            f"line 1: export format version {header.get('version')!r} is not supported "
            f"(this agentcore reads version {FORMAT_VERSION})"
        )
    report = TransferReport()
    while (record := reader.next_object()) is not None:
        where = f"line {reader.number}"
        if record.get("type") != "session":
            raise InvalidInputError(f"{where}: expected a session line, got {record.get('type')!r}")
        agent, session = _key(record, where)
        metadata = record.get("metadata", {})
        stored = await _import_one(repository, reader, record, agent, session, metadata, where)
        if stored is None:
            report = TransferReport(report.sessions, report.messages, report.skipped_sessions + 1)
        elif stored:
            report = TransferReport(
                report.sessions + 1, report.messages + stored, report.skipped_sessions
            )
        if on_progress is not None:
            on_progress(report)
    return report


async def _import_one(
    repository: HistoryRepository,
    reader: _Lines,
    record: dict[str, Any],
    agent: str,
    session: str,
    metadata: Any,
    where: str,
) -> int | None:
    """Import one conversation; ``None`` when it was already there (its lines are skipped)."""
    messages = reader.messages_of(agent, session)
    try:
        return await repository.import_session(
            agent,
            session,
            messages,
            metadata=metadata,
            created_at=_time(record.get("created_at"), f"{where}: created_at"),
            updated_at=_time(record.get("updated_at"), f"{where}: updated_at"),
        )
    except SessionExistsError:
        for _ in messages:  # read past its messages
            pass
        return None
    except LineTooLongError:
        raise  # it names its line already
    except InvalidMessageError as exc:
        raise InvalidMessageError(
            f"session {session!r} of agent {agent!r} ({where}), line {reader.number}: {exc}"
        ) from None
    except InvalidInputError as exc:
        raise type(exc)(f"session {session!r} of agent {agent!r} ({where}): {exc}") from None


def _key(record: dict[str, Any], where: str) -> tuple[str, str]:
    try:
        return (
            check_identifier(record.get("agent_name"), "agent_name"),
            check_identifier(record.get("session_id"), "session_id"),
        )
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from None


def _time(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{where} is not an ISO 8601 time: {value!r}") from None


def _bounded_lines(source: BinaryLines | Iterable[str], limit: int) -> Iterator[str]:
    """The lines of ``source`` as text, each refused once it is known to exceed ``limit`` bytes."""
    readline: Callable[[int], bytes | str] | None = getattr(source, "readline", None)
    if readline is None:
        for number, text in enumerate(cast("Iterable[str]", source), start=1):
            yield _checked(text, number, limit)
        return
    number = 0
    # One byte (or character, at least a byte) more than a line may hold: its newline.
    while line := readline(limit + 1):
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
            raise InvalidInputError(
                f"line {number}: not UTF-8 (byte {exc.start + 1} of the line)"
            ) from None
    chars = len(line) - line.endswith("\n")
    # Measured in UTF-8 only when it may matter: a character is 1 to 4 bytes.
    if chars > limit or (
        4 * chars > limit and len(line[:chars].encode("utf-8", "surrogatepass")) > limit
    ):
        raise LineTooLongError(number, limit)
    return line


class _Lines:
    """The export's lines as JSON objects, one at a time, with one line of look-ahead."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._pending: dict[str, Any] | None = None
        self.number = 0

    def next_object(self) -> dict[str, Any] | None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            return pending
        for text in self._lines:
            self.number += 1
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except ValueError:
                raise InvalidInputError(f"line {self.number}: not JSON") from None
            if not isinstance(value, dict):
                raise InvalidInputError(f"line {self.number}: not a JSON object")
            return value
        return None

    def messages_of(self, agent: str, session: str) -> Iterator[Any]:
        """The message lines that follow, up to the next session line."""
        while (record := self.next_object()) is not None:
            if record.get("type") != "message":
                self._pending = record
                return
            if (record.get("agent_name"), record.get("session_id")) != (agent, session):
                raise InvalidInputError(
                    f"line {self.number}: a message of session {record.get('session_id')!r} "
                    f"under the session line of {session!r}"
                )
            yield record.get("message")
