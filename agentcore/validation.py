"""Checks applied where data enters agentcore, shared by every repository.

Each check raises an :mod:`agentcore.errors` error that says what was wrong,
before any state is touched.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pydantic

from agentcore.errors import InvalidIdentifierError, InvalidInputError, InvalidMessageError
from agentcore.models import Message

MAX_ID_LENGTH = 255
"""Longest accepted agent name, session id or message id, in characters."""

MAX_LIMIT = 2**63 - 1
"""The largest row limit PostgreSQL accepts (a bigint); ``None`` means no limit."""

EARLIEST = datetime(1, 1, 8, tzinfo=UTC)
LATEST = datetime(9999, 12, 24, tzinfo=UTC)
"""The range of ``created_at`` accepted: a week inside Python's, so the value
reads back in any server time zone (PostgreSQL allows offsets up to 167 hours;
migration 0002 clamps older rows into the same range)."""

MAX_JSON_INT_DIGITS = 4000
"""Integers in ``metadata``/``tool_calls`` have at most this many digits
(Python refuses to print much longer ones)."""

_HUGE_INT = 10**MAX_JSON_INT_DIGITS

DEFAULT_MAX_CONTENT_CHARS = 1_000_000
"""Default cap on one message's ``content``, in characters (about 1 MB of text)."""

MessageInput = Message | Mapping[str, Any]
"""A :class:`Message`, or a dict in OpenAI chat-message style that validates as one."""

logger = logging.getLogger("agentcore.history")


def conversation_key(
    agent_name: object, session_id: object, operation: str
) -> tuple[str, str] | None:
    """Validate a conversation's key; ``None`` (with a warning) when there is no session.

    agentcore never falls back to a shared conversation: without a session id
    a read returns nothing and a write stores nothing.

    Raises:
        InvalidIdentifierError: a bad ``agent_name``, or a bad non-None ``session_id``.
    """
    agent = check_identifier(agent_name, "agent_name")
    if session_id is None:
        logger.warning(
            "%s for agent %r called without a session_id: %s",
            operation,
            agent,
            "no history is read" if operation == "load_history" else "nothing is stored",
        )
        return None
    return agent, check_identifier(session_id, "session_id")


def check_identifier(value: object, what: str) -> str:
    """Return ``value`` if it is a usable identifier, else raise.

    Args:
        value: The candidate id.
        what: Its name in error messages (``agent_name``, ``session_id``...).

    Raises:
        InvalidIdentifierError: not a string, empty or only whitespace, longer
            than 255 characters, containing a NUL byte, or not encodable as
            UTF-8 (a lone surrogate).
    """
    if not isinstance(value, str):
        raise InvalidIdentifierError(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidIdentifierError(f"{what} must not be empty or only whitespace")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidIdentifierError(
            f"{what} is {len(value)} characters long; the limit is {MAX_ID_LENGTH}"
        )
    if "\x00" in value:
        raise InvalidIdentifierError(f"{what} must not contain a NUL byte")
    if not _is_utf8(value):
        raise InvalidIdentifierError(f"{what} {_SURROGATE}")
    return value


_SURROGATE = "must be valid Unicode text (it holds a lone surrogate, which UTF-8 cannot encode)"


def _is_utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_limit(value: object, what: str = "limit") -> int | None:
    """Return a validated row limit: ``None`` (no limit) or an int >= 0.

    Raises:
        InvalidInputError: a negative number, a bool, or not an int.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{what} must be an int or None, got {type(value).__name__}")
    if value < 0:
        raise InvalidInputError(f"{what} must be >= 0, got {value}")
    if value > MAX_LIMIT:
        raise InvalidInputError(
            f"{what} must be at most {MAX_LIMIT} (PostgreSQL's bigint), got {value}"
        )
    return value


def prepare_messages(messages: Sequence[MessageInput], *, max_content_chars: int) -> list[Message]:
    """Validate a whole batch before anything is written.

    Args:
        messages: Messages or message dicts.
        max_content_chars: The largest accepted ``content``, in characters.

    Returns:
        The batch as :class:`Message` objects, in the given order.

    Raises:
        InvalidMessageError: any message is malformed, holds a NUL byte, is too
            large, or repeats a message id already used earlier in the batch.
    """
    if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Sequence):
        raise InvalidMessageError(
            f"messages must be a list of messages, got {type(messages).__name__}"
        )
    prepared: list[Message] = []
    seen_ids: dict[str, int] = {}
    for index, item in enumerate(messages):
        message = _check_message(_to_message(item, index), index, max_content_chars)
        if message.id is not None:
            if message.id in seen_ids:
                raise InvalidMessageError(
                    f"messages[{index}]: id {message.id!r} repeats messages[{seen_ids[message.id]}]"
                )
            seen_ids[message.id] = index
        prepared.append(message)
    return prepared


def _to_message(item: object, index: int) -> Message:
    if isinstance(item, Message):
        return item
    if not isinstance(item, Mapping):
        raise InvalidMessageError(
            f"messages[{index}] must be a Message or a dict, got {type(item).__name__}"
        )
    try:
        return Message.model_validate(item)
    except pydantic.ValidationError as exc:
        raise InvalidMessageError(f"messages[{index}] is invalid: {_describe(exc)}") from exc


def _describe(exc: pydantic.ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    return "; ".join(parts)


def _check_message(message: Message, index: int, max_content_chars: int) -> Message:
    """Check what the model cannot; return the message as PostgreSQL stores it."""
    where = f"messages[{index}]"
    problem = message.role_problem()  # again: a Message may have skipped validation
    if problem:
        raise InvalidMessageError(f"{where} is invalid: {problem}")
    if message.content is not None and len(message.content) > max_content_chars:
        raise InvalidMessageError(
            f"{where}.content is {len(message.content)} characters; "
            f"the limit is {max_content_chars}"
        )
    if message.id is not None:
        try:
            check_identifier(message.id, f"{where}.id")
        except InvalidIdentifierError as exc:
            raise InvalidMessageError(str(exc)) from None
    for field in ("content", "name", "tool_call_id"):
        problem = _text_problem(getattr(message, field))
        if problem:
            raise InvalidMessageError(f"{where}.{field} {problem}")
    return _as_stored(message, where)


def _as_stored(message: Message, where: str) -> Message:
    """The message as PostgreSQL gives it back: created_at in UTC, JSON as jsonb keeps it."""
    update: dict[str, Any] = {}
    if message.created_at is not None:
        update["created_at"] = _as_utc(message.created_at, f"{where}.created_at")
    for field in ("tool_calls", "metadata"):
        value = getattr(message, field)
        if not value:
            continue
        try:
            update[field] = _as_jsonb(value)
        except _JsonProblem as exc:
            raise InvalidMessageError(f"{where}.{field} {exc}") from None
    return message.model_copy(update=update) if update else message


def _text_problem(text: str | None) -> str | None:
    if text is None:
        return None
    if "\x00" in text:
        return "must not contain a NUL byte"
    return None if _is_utf8(text) else _SURROGATE


def _as_utc(when: datetime, where: str) -> datetime:
    # Both repositories keep the instant in UTC; PostgreSQL hands it back in
    # the server's time zone, which must still be a valid Python datetime.
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidMessageError(f"{where} must be timezone-aware")
    out_of_range = InvalidMessageError(
        f"{where} must lie between {EARLIEST.date()} and {LATEST.date()} (UTC), got {when}"
    )
    try:
        utc = when.astimezone(UTC)
    except OverflowError:
        raise out_of_range from None
    if not EARLIEST <= utc <= LATEST:
        raise out_of_range
    return utc


class _JsonProblem(Exception):
    pass


def _as_jsonb(value: Any) -> Any:
    """``value`` as PostgreSQL's jsonb gives it back, or :class:`_JsonProblem`.

    Both repositories store exactly this, so they return the same thing: jsonb
    keeps object keys shortest first, then in UTF-8 byte order; it reads a
    number as an exact decimal, so a float written in exponent form
    (``1e+16``) comes back as an int, and ``-0.0`` as ``0.0``. It stores
    neither U+0000, nor lone surrogates, nor NaN or Infinity.
    """
    if isinstance(value, str):
        problem = _text_problem(value)
        if problem:
            raise _JsonProblem(f"{problem} (in a key or string)")
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _HUGE_INT:
        raise _JsonProblem(f"must not contain integers of more than {MAX_JSON_INT_DIGITS} digits")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _JsonProblem("must not contain NaN or Infinity")
        text = repr(value)
        if "e+" in text:
            return int(Decimal(text))
        return 0.0 if value == 0 else value
    if isinstance(value, dict):
        items = [(_as_jsonb(k), _as_jsonb(v)) for k, v in value.items()]
        items.sort(key=lambda kv: (len(kv[0].encode("utf-8")), kv[0].encode("utf-8")))
        return dict(items)
    if isinstance(value, list):
        return [_as_jsonb(item) for item in value]
    return value


_JSON_OBJECT = pydantic.TypeAdapter(dict[str, pydantic.JsonValue])

MAX_SESSION_METADATA_CHARS = 16_384
"""Largest conversation metadata object, in characters of its JSON text."""

MAX_PAGE_SIZE = 10_000
"""Most rows one page (sessions or messages) may ask for."""

OWNER_KEY = "owner"
"""The conversation metadata key that ``list_sessions_page(owner=...)`` selects by."""


def check_session_metadata(value: object) -> dict[str, Any]:
    """Validate a conversation's metadata object; return it as the stores keep it.

    Raises:
        InvalidInputError: not a dict with string keys, values that are not
            JSON (or that jsonb cannot store), an ``owner`` that is not a valid
            identifier, or larger than :data:`MAX_SESSION_METADATA_CHARS`.
    """
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            f"metadata must be a dict (a JSON object), got {type(value).__name__}"
        )
    for key in value:
        if not isinstance(key, str):
            raise InvalidInputError(f"metadata keys must be strings, got {type(key).__name__}")
    try:
        checked = _JSON_OBJECT.validate_python(dict(value))
        stored: dict[str, Any] = _as_jsonb(checked)
    except pydantic.ValidationError as exc:
        raise InvalidInputError(f"metadata is not JSON: {_describe(exc)}") from None
    except _JsonProblem as exc:
        raise InvalidInputError(f"metadata {exc}") from None
    return _check_session_metadata_result(stored)


def merge_session_metadata(
    current: Mapping[str, Any], update: dict[str, Any], *, merge: bool
) -> dict[str, Any]:
    """The metadata after an update: ``update``'s keys over ``current``'s, or ``update`` alone.

    Both inputs are already checked (:func:`check_session_metadata`).

    Raises:
        InvalidInputError: the merged object is larger than :data:`MAX_SESSION_METADATA_CHARS`.
    """
    if not merge:
        return update
    merged: dict[str, Any] = _as_jsonb({**current, **update})
    return _check_session_metadata_result(merged)


def _check_session_metadata_result(stored: dict[str, Any]) -> dict[str, Any]:
    owner = stored.get(OWNER_KEY)
    if owner is not None:
        try:
            check_identifier(owner, f"metadata[{OWNER_KEY!r}]")
        except InvalidIdentifierError as exc:
            raise InvalidInputError(str(exc)) from None
    size = len(json.dumps(stored, ensure_ascii=False))
    if size > MAX_SESSION_METADATA_CHARS:
        raise InvalidInputError(
            f"metadata is {size} characters as JSON; the limit is {MAX_SESSION_METADATA_CHARS}"
        )
    return stored


def check_page_size(value: object, what: str = "limit") -> int:
    """Return a page size: an int from 1 to :data:`MAX_PAGE_SIZE`.

    Raises:
        InvalidInputError: not an int, or out of that range.
    """
    checked = check_limit(value, what)
    if checked is None or not 1 <= checked <= MAX_PAGE_SIZE:
        raise InvalidInputError(f"{what} must be between 1 and {MAX_PAGE_SIZE}, got {value!r}")
    return checked


def check_owner(value: object) -> str:
    """Return a valid owner (an identifier) to select conversations by.

    Raises:
        InvalidIdentifierError: see :func:`check_identifier`.
    """
    return check_identifier(value, "owner")


MAX_IDLE_FOR = timedelta(days=36_525)
"""The longest ``idle_for`` accepted (100 years): now minus it stays a valid time."""


def check_idle_for(value: object) -> timedelta:
    """Return a non-negative ``timedelta`` (how long a conversation must be idle).

    Raises:
        InvalidInputError: not a ``timedelta``, or negative.
    """
    if not isinstance(value, timedelta):
        raise InvalidInputError(f"idle_for must be a timedelta, got {type(value).__name__}")
    if value < timedelta(0):
        raise InvalidInputError(f"idle_for must not be negative, got {value}")
    if value > MAX_IDLE_FOR:
        raise InvalidInputError(f"idle_for must be at most {MAX_IDLE_FOR.days} days, got {value}")
    return value


def check_copy_bound(value: object) -> int | str | None:
    """Return ``copy_session``'s ``up_to``: ``None``, a message count >= 1, or a message id.

    Raises:
        InvalidInputError: anything else.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return check_identifier(value, "up_to")
        except InvalidIdentifierError as exc:
            raise InvalidInputError(str(exc)) from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(
            f"up_to must be a message count, a message id or None, got {type(value).__name__}"
        )
    if not 1 <= value <= MAX_LIMIT:
        raise InvalidInputError(f"up_to must be between 1 and {MAX_LIMIT} messages, got {value}")
    return value


REPEATED_IMPORT_ID = (
    "a message id appears twice in the imported conversation (ids are unique within "
    "a conversation); nothing of it is stored"
)
"""The error of an import whose stream repeats a message id."""


class MessageStream:
    """Validates the messages of one long stream, one by one (an import).

    The same checks as :func:`prepare_messages`, with positions counted over
    the whole stream. Ids repeated within the stream are found by the store
    (PostgreSQL's unique index), not here: remembering every id would make an
    import's memory grow with the conversation.

    Args:
        max_content_chars: The largest accepted ``content``, in characters.
    """

    def __init__(self, *, max_content_chars: int) -> None:
        self._max_content_chars = max_content_chars
        self.count = 0
        """How many messages were checked so far."""

    def check(self, item: object) -> Message:
        """Validate the next message of the stream.

        Raises:
            InvalidMessageError: the message is invalid.
        """
        index = self.count
        message = _check_message(_to_message(item, index), index, self._max_content_chars)
        self.count += 1
        return message


DEFAULT_PURGE_BATCH_SIZE = 100
"""Conversations ``purge_idle_sessions`` deletes per transaction by default."""

DEFAULT_PURGE_PAUSE = 0.05
"""Seconds ``purge_idle_sessions`` waits between two batches by default."""


def check_pause(value: object) -> float:
    """Return a pause between batches: a finite number of seconds from 0 to 3600.

    Raises:
        InvalidInputError: anything else.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"pause must be a number of seconds, got {type(value).__name__}")
    if not (math.isfinite(value) and 0 <= value <= 3600):
        raise InvalidInputError(f"pause must be between 0 and 3600 seconds, got {value}")
    return float(value)


def check_session_time(value: object, what: str) -> datetime | None:
    """Return an imported conversation's time in UTC (``None``: now).

    Raises:
        InvalidInputError: not a timezone-aware datetime in the accepted range.
    """
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{what} must be a datetime, got {type(value).__name__}")
    try:
        return _as_utc(value, what)
    except InvalidMessageError as exc:
        raise InvalidInputError(str(exc)) from None
