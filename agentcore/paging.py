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

from agentcore.errors import InvalidIdentifierError, InvalidInputError
from agentcore.models import SessionInfo, SessionPage
from agentcore.validation import check_identifier

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
        return updated_at.astimezone(UTC), check_identifier(session_id, "session_id")
    except (TypeError, ValueError, InvalidIdentifierError):
        raise _invalid("after", "list_sessions_page") from None


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


def _decode(cursor: object, what: str, method: str) -> list[object]:
    if not isinstance(cursor, str) or not cursor or len(cursor) > 2048:
        raise _invalid(what, method)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError):
        raise _invalid(what, method) from None
    if not isinstance(payload, list):
        raise _invalid(what, method)
    return payload


def _invalid(what: str, method: str) -> InvalidInputError:
    return InvalidInputError(f"{what} is not a cursor returned by {method}")
