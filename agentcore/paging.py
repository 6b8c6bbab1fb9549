"""Keyset pages and their opaque cursors (pure functions, no I/O).

A cursor is the keyset position of the last row a page returned, so the next
page is one index range scan from there, however deep the caller has paged (no
OFFSET). Both repositories produce and accept the same cursors: PostgreSQL and
the in-memory fake page alike. Callers must treat them as opaque; anything not
made here is rejected with :class:`~agentcore.errors.InvalidInputError`.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from agentcore.errors import InvalidInputError
from agentcore.models import SessionInfo, SessionPage
from agentcore.validation import MAX_ID_LENGTH

_VERSION = 1
_SESSIONS = "s"
_HISTORY = "h"


def session_page(rows: list[SessionInfo], size: int) -> SessionPage:
    """A page from up to ``size + 1`` rows fetched in page order (the extra one says "more")."""
    sessions = rows[:size]
    more = len(rows) > size
    last = sessions[-1] if sessions else None
    cursor = session_cursor(last.updated_at, last.session_id) if more and last else None
    return SessionPage(sessions=sessions, next_cursor=cursor)


def session_cursor(updated_at: datetime, session_id: str) -> str:
    """The cursor after a session row, in ``list_sessions_page``'s order."""
    return _encode([_VERSION, _SESSIONS, updated_at.astimezone(UTC).isoformat(), session_id])


def history_cursor(position: int) -> str:
    """The cursor before the message at ``position`` (0 = the first message)."""
    return _encode([_VERSION, _HISTORY, position])


def decode_session_cursor(cursor: object) -> tuple[datetime, str]:
    """``(updated_at, session_id)`` of the row a session cursor points after.

    Raises:
        InvalidInputError: ``cursor`` is not a cursor ``list_sessions_page`` returned.
    """
    payload = _decode(cursor, "after", "list_sessions_page")
    try:
        version, kind, when, session_id = payload
        if version != _VERSION or kind != _SESSIONS:
            raise ValueError
        if not isinstance(when, str):
            raise ValueError
        updated_at = datetime.fromisoformat(when)
        if updated_at.tzinfo is None:
            raise ValueError
        # astimezone raises OverflowError for a time that leaves Python's
        # range in UTC (0001-01-01T00:00:00+14:00), which no stored row has.
        return updated_at.astimezone(UTC), _position(session_id)
    except (TypeError, ValueError, OverflowError):
        raise _invalid("after", "list_sessions_page") from None


def _position(session_id: object) -> str:
    """The session id of a cursor: any value the session_id column can hold.

    Not the rules for new ids, nor those for reads: a page may end on a
    conversation stored under a legacy id (control characters) or written by
    another program, and its cursor must still be accepted. The id is only
    compared with others, never used as a key.
    """
    if not isinstance(session_id, str) or len(session_id) > MAX_ID_LENGTH:
        raise ValueError
    if "\x00" in session_id or not _is_utf8(session_id):
        raise ValueError
    return session_id


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode_history_cursor(cursor: object) -> int:
    """The position a history cursor points before.

    Raises:
        InvalidInputError: ``cursor`` is not a cursor ``load_history_page`` returned.
    """
    payload = _decode(cursor, "before", "load_history_page")
    try:
        version, kind, position = payload
        if version != _VERSION or kind != _HISTORY:
            raise ValueError
        if isinstance(position, bool) or not isinstance(position, int):
            raise ValueError
        if not 0 <= position < 2**63:
            raise ValueError
        return position
    except (TypeError, ValueError):
        raise _invalid("before", "load_history_page") from None


def _encode(payload: list[object]) -> str:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


_MAX_CURSOR_CHARS = len(
    session_cursor(datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), "\x01" * MAX_ID_LENGTH)
)
"""The longest cursor agentcore issues: a session id of control characters, each
written as a six-character JSON escape, at the latest time (2,100 characters)."""


def _decode(cursor: object, what: str, method: str) -> list[object]:
    if not isinstance(cursor, str) or not cursor or len(cursor) > _MAX_CURSOR_CHARS:
        raise _invalid(what, method)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, RecursionError):  # RecursionError: "[[[[..."
        raise _invalid(what, method) from None
    if not isinstance(payload, list):
        raise _invalid(what, method)
    return payload


def _invalid(what: str, method: str) -> InvalidInputError:
    return InvalidInputError(f"{what} is not a cursor returned by {method}")
