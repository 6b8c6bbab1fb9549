"""Export conversations to JSON Lines and import them back, through any repository.

The format (version 1, documented in docs/operations.md) is one JSON object
per line:

* first, the header ``{"format": "agentcore-history", "version": 1}``;
* for each conversation, a ``session`` line (its agent, session id, metadata
  and times), then one ``message`` line per message, oldest first, each with
  its agent and session id and every field of the message.

Both directions stream: an export reads each conversation in batches
(``iter_history``), an import hands each conversation's messages to
``import_session`` one line at a time. Memory stays bounded by a batch,
whatever the length of a conversation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from agentcore.errors import InvalidInputError, InvalidMessageError, SessionExistsError
from agentcore.models import Message, SessionInfo
from agentcore.repository import HistoryRepository
from agentcore.validation import check_identifier

FORMAT = "agentcore-history"
"""The ``format`` of the header line."""

FORMAT_VERSION = 1
"""The ``version`` written; an import accepts this version only."""

# One stateless encoder (json.dumps with options builds one per call).
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


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
    return fields


def _line(value: dict[str, Any]) -> str:
    return _ENCODER.encode(value) + "\n"


async def import_jsonl(
    repository: HistoryRepository,
    lines: Iterable[str],
    *,
    on_progress: Progress | None = None,
) -> TransferReport:
    """Store the conversations of a JSON Lines export.

    Each conversation is stored atomically (``import_session``); one already
    present is left as it was and counted as skipped, so importing the same
    file twice stores nothing twice. A conversation that fails validation
    stops the import with an error; the ones before it stay stored, and a
    second run after the fix skips them.

    Args:
        repository: Where to store.
        lines: The file's lines (an open text file, ``sys.stdin``).
        on_progress: Called after each conversation with the totals so far.

    Returns:
        How many conversations and messages were stored, and how many skipped.

    Raises:
        InvalidInputError: a line is not JSON, the header is missing or of
            another version, or lines are out of place (the message says
            which line).
        InvalidMessageError: a message is invalid (with its line).
    """
    reader = _Lines(iter(lines))
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
