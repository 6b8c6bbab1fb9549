"""Checks applied where data enters agentcore, shared by every repository.

Each check raises an :mod:`agentcore.errors` error that says what was wrong,
before any state is touched.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
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
    if message.item is not None:
        try:
            _check_json(message.item)
        except _JsonProblem as exc:
            raise InvalidMessageError(f"{where}.item {exc}") from None
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


def _check_json(value: Any) -> None:
    """Raise :class:`_JsonProblem` unless PostgreSQL's ``json`` keeps ``value`` exactly.

    ``json`` stores the text as given, so keys keep their order and numbers
    their form; what it cannot hold is what JSON cannot express (NaN,
    Infinity, lone surrogates) and, like agentcore's other text, U+0000.
    """
    if isinstance(value, str):
        problem = _text_problem(value)
        if problem:
            raise _JsonProblem(f"{problem} (in a key or string)")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _JsonProblem("must not contain NaN or Infinity")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _HUGE_INT:
        raise _JsonProblem(f"must not contain integers of more than {MAX_JSON_INT_DIGITS} digits")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json(key)
            _check_json(item)
    elif isinstance(value, list):
        for item in value:
            _check_json(item)


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
