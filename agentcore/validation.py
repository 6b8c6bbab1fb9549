"""Checks applied where data enters agentcore, shared by every repository.

Each check raises an :mod:`agentcore.errors` error that says what was wrong,
before any state is touched.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import pydantic

from agentcore.errors import InvalidIdentifierError, InvalidInputError, InvalidMessageError
from agentcore.exact_json import exact_json, has_surrogates
from agentcore.models import Message

MAX_ID_LENGTH = 255
"""Longest accepted agent name, session id or message id, in characters."""

MAX_ID_BYTES = 768
"""Longest agent name, session id, message id or owner accepted for new data, in
bytes of UTF-8 (on top of :data:`MAX_ID_LENGTH`).

PostgreSQL refuses a btree index entry larger than 2,704 bytes (btree version 4,
8 kB pages), and three indexes hold three of these values each:
``ux_conversation_history_message_id`` (agent_name, session_id, message_id) and
``ix_conversation_sessions_owner`` (agent_name, owner, updated_at, session_id),
the largest. An entry of the latter is at most an 8-byte header, three text
values of a 4-byte length header plus ``b`` bytes each, the 8-byte timestamp
and up to 3 + 7 bytes of alignment padding, rounded up to a multiple of 8:
``38 + 3 * b <= 2704`` holds up to ``b = 888`` (the primary keys hold two ids,
``ix_conversation_sessions_recent`` one). 768 (3 x 256) leaves a margin and
keeps every id of up to 255 characters outside the astral planes valid (at
most 3 bytes each); an id of 4-byte characters (emoji) is limited to 192 of
them. Checked on PostgreSQL by tests/contract/test_identifier_rules_contract.py.

Reads accept longer ids (up to :data:`MAX_ID_LENGTH` characters): rows stored
before the limit keep them, and reach PostgreSQL's limit only together.
"""


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

MAX_CONTENT_CHARS_LIMIT = 25_000_000
"""The largest ``max_content_chars`` a repository accepts.

With it, :data:`MAX_JSON_FIELD_BYTES` and :data:`MAX_TEXT_FIELD_CHARS`, one
message always fits in one PostgreSQL jsonb value (at most 268,435,455
bytes), the form in which an append sends it: content takes at most 4 bytes
per character there, JSON fields at most 8 per byte of their JSON text
(``agentcore.rows.JSONB_BYTES_PER_JSON_CHAR``), so the worst message is
about 100 MB + 2 x 67 MB + 8 MB. Checked by tests/unit/test_message_size_limits.py.
"""

MAX_JSON_FIELD_BYTES = 8 * 2**20
"""Largest ``metadata``, ``tool_calls`` or ``item`` of one message: 8 MiB of UTF-8 JSON text."""

MAX_TEXT_FIELD_CHARS = 2**20
"""Largest ``name`` or ``tool_call_id`` of one message, in characters."""

MessageInput = Message | Mapping[str, Any]
"""A :class:`Message`, or a dict in OpenAI chat-message style that validates as one."""

logger = logging.getLogger("agentcore.history")


def check_max_content_chars(value: object) -> int:
    """Return a validated ``max_content_chars`` (a repository's constructor argument).

    Raises:
        InvalidInputError: not an int, below 1, or above
            :data:`MAX_CONTENT_CHARS_LIMIT` (a message PostgreSQL could not take).
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"max_content_chars must be an int, got {type(value).__name__}")
    if not 1 <= value <= MAX_CONTENT_CHARS_LIMIT:
        raise InvalidInputError(
            f"max_content_chars must be between 1 and {MAX_CONTENT_CHARS_LIMIT}, got {value}"
        )
    return int(value)  # an int subclass (an IntEnum, say) is kept as a plain int


def check_message_size(message: Message, where: str) -> None:
    """Refuse a message whose fields exceed the per-message size limits.

    The limits keep any one message within what PostgreSQL can store in one
    append (see :data:`MAX_CONTENT_CHARS_LIMIT`); both repositories apply
    them, so they agree. ``content`` is checked against ``max_content_chars``
    separately.

    Raises:
        InvalidMessageError: ``name`` or ``tool_call_id`` longer than
            :data:`MAX_TEXT_FIELD_CHARS`, or ``metadata``, ``tool_calls`` or
            ``item`` larger than :data:`MAX_JSON_FIELD_BYTES` as JSON.
    """
    for field in ("name", "tool_call_id"):
        text = getattr(message, field)
        if isinstance(text, str) and len(text) > MAX_TEXT_FIELD_CHARS:
            raise InvalidMessageError(
                f"{where}.{field} is {len(text)} characters; the limit is {MAX_TEXT_FIELD_CHARS}"
            )
    for field in ("metadata", "tool_calls", "item"):
        value = getattr(message, field)
        if not value:
            continue
        # As stored and exported: compact UTF-8, lone surrogates as escapes.
        size = len(exact_json(value).encode("utf-8"))
        if size > MAX_JSON_FIELD_BYTES:
            raise InvalidMessageError(
                f"{where}.{field} is {size} bytes as JSON; the limit is {MAX_JSON_FIELD_BYTES}"
            )


def conversation_key(
    agent_name: object, session_id: object, operation: str
) -> tuple[str, str] | None:
    """Validate a conversation's key; ``None`` (with a warning) when there is no session.

    agentcore never falls back to a shared conversation: without a session id
    a read returns nothing and a write stores nothing.

    A read (``load_history``) accepts ids stored before control characters
    were refused (:func:`check_stored_identifier`); a write does not.

    Raises:
        InvalidIdentifierError: a bad ``agent_name``, or a bad non-None ``session_id``.
    """
    reading = operation == "load_history"
    check = check_stored_identifier if reading else check_identifier
    agent = check(agent_name, "agent_name")
    if session_id is None:
        logger.warning(
            "%s for agent %r called without a session_id: %s",
            operation,
            agent,
            "no history is read" if reading else "nothing is stored",
        )
        return None
    return agent, check(session_id, "session_id")


def check_identifier(value: object, what: str, *, max_bytes: int | None = MAX_ID_BYTES) -> str:
    """Return ``value`` if it is a usable identifier for new data, else raise.

    Writes (``append_messages``, ``save_full_history``, an agent's turn) and
    agent names use it.

    Args:
        value: The candidate id.
        what: Its name in error messages (``agent_name``, ``session_id``...).
        max_bytes: The limit in bytes of UTF-8; ``None`` to look up values
            stored before the limit (the owner a page selects by).

    Raises:
        InvalidIdentifierError: not a string, empty or only whitespace, longer
            than 255 characters or than 768 bytes in UTF-8 (:data:`MAX_ID_BYTES`),
            containing a NUL byte or another control character (C0, DEL, C1) or
            a Unicode line or paragraph separator (U+2028, U+2029), or not
            encodable as UTF-8 (a lone surrogate).
    """
    value = check_stored_identifier(value, what)
    if max_bytes is not None:
        _check_id_bytes(value, what, max_bytes)
    if not value.isprintable():  # fast path: printable text holds none of them
        found = _CONTROL.search(value)
        if found is not None:
            raise InvalidIdentifierError(
                f"{what} must not contain control characters or line separators "
                f"(found U+{ord(found.group()):04X} at index {found.start()})"
            )
    return value


def _check_id_bytes(value: str, what: str, max_bytes: int) -> None:
    if len(value) > max_bytes // 4:
        size = id_bytes(value)
        if size > max_bytes:
            raise InvalidIdentifierError(
                f"{what} is {size} bytes long in UTF-8; the limit is {max_bytes} bytes "
                "(an index entry of PostgreSQL holds three ids)"
            )


def check_restored_identifier(value: object, what: str) -> str:
    """Return ``value`` if an import may store it, else raise.

    What an export can hold (:func:`check_stored_identifier`: control
    characters of ids an older version stored are kept), within the byte
    limit of new ids (:data:`MAX_ID_BYTES`), which PostgreSQL's indexes need
    (no PostgreSQL ever stored a longer one, so only an export of the
    in-memory repository could hold one).

    Raises:
        InvalidIdentifierError: as :func:`check_stored_identifier`, or longer
            than :data:`MAX_ID_BYTES` bytes in UTF-8.
    """
    value = check_stored_identifier(value, what)
    _check_id_bytes(value, what, MAX_ID_BYTES)
    return value


def check_stored_identifier(value: object, what: str) -> str:
    """Return ``value`` if it can name stored data, else raise.

    Like :func:`check_identifier`, but control characters other than NUL are
    accepted: rows stored before agentcore refused them stay reachable by
    reads (``load_history``, ``get_message``, the session listings and pages,
    ``iter_history``, export), ``clear_session``, ``set_session_metadata``,
    ``purge_idle_sessions`` and as the source of ``copy_session``, which use
    this check. Nothing new can be written under such an id; only an import
    (``import_session``) stores one, to restore what an export of such rows
    holds.

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


def id_bytes(value: str) -> int:
    """The length of a (valid) id in bytes of UTF-8, as PostgreSQL stores it."""
    return len(value) if value.isascii() else len(value.encode("utf-8"))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""C0 and C1 control characters, DEL, and the Unicode line and paragraph separators."""

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
        InvalidMessageError: any message is malformed, holds a NUL byte or a
            lone surrogate in ``content``, ``name`` or ``tool_call_id``
            (PostgreSQL text; an ``item`` may hold both), is too large, or
            repeats a message id already used earlier in the batch.
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
        problem = str(error["msg"])
        if error["type"] == "invalid-json-value":  # say what the value was
            problem += f" (a {type(error['input']).__name__})"
        parts.append(f"{where}: {problem}" if where else problem)
    return "; ".join(parts)


def _check_message(
    message: Message,
    index: int,
    max_content_chars: int,
    check_id: Callable[[object, str], str] = check_identifier,
) -> Message:
    """Check what the model cannot; return the message as PostgreSQL stores it.

    ``check_id``: the rule for the message's id (an import takes any id a read
    accepts, :func:`check_stored_identifier`).

    A :class:`Message` built with ``model_construct`` skipped pydantic, so
    every field's type is checked again here. They are ``isinstance`` checks
    (the nested JSON types are checked by the jsonb walk that runs anyway), so
    a validated message pays about 0.4 µs (bench/NOTES.md, "Validation cost").
    """
    if is_plain_message(message):
        # Most messages: a role and a text. Nothing else to check or to
        # normalise; anything wrong is reported by the full checks below.
        content = message.__dict__["content"]  # a str: is_plain_message checked its type
        if len(content) <= max_content_chars and _text_problem(content) is None:
            return message
    where = f"messages[{index}]"
    problem = _type_problem(message)
    if problem:
        raise InvalidMessageError(f"{where}.{problem}")
    content = message.content
    problem = message.role_problem()  # again: a Message may have skipped validation
    if problem:
        raise InvalidMessageError(f"{where} is invalid: {problem}")
    if content is not None and len(content) > max_content_chars:
        raise InvalidMessageError(
            f"{where}.content is {len(content)} characters; the limit is {max_content_chars}"
        )
    if message.id is not None:
        try:
            check_id(message.id, f"{where}.id")
        except InvalidIdentifierError as exc:
            raise InvalidMessageError(str(exc)) from None
    for field in _TEXT_FIELDS:
        problem = _text_problem(getattr(message, field))
        if problem:
            raise InvalidMessageError(f"{where}.{field} {problem}")
    return _as_stored(message, where)


_TEXT_FIELDS = ("content", "name", "tool_call_id")
_PLAIN_ROLES = ("user", "assistant", "system")


def is_plain_message(message: Message) -> bool:
    """Whether ``message`` holds a role (not ``tool``) and a text, and nothing else.

    No id, name, tool calls or call id, metadata, time or item: most
    messages of a turn. Such a message needs none of the normalisation of
    :func:`prepare_messages`, and is appended without a JSON array.
    """
    fields = message.__dict__
    return (
        type(fields["content"]) is str
        and type(fields["role"]) is str
        and fields["role"] in _PLAIN_ROLES
        and fields["name"] is None
        and fields["tool_calls"] is None
        and fields["tool_call_id"] is None
        and fields["id"] is None
        and fields["created_at"] is None
        and fields["item"] is None
        and type(fields["metadata"]) is dict
        and not fields["metadata"]
    )


def _type_problem(message: Message) -> str | None:
    """Which field holds a value of the wrong type (``field must be ..., got T``)."""
    content, metadata = message.content, message.metadata
    if (
        type(message.role) is str
        and (content is None or type(content) is str)
        and type(metadata) is dict
        and message.name is None
        and message.tool_call_id is None
        and message.tool_calls is None
        and message.created_at is None
    ):
        return None  # most messages, in one test
    if not isinstance(message.role, str):
        return f"role must be a string, got {type(message.role).__name__}"
    for field in _TEXT_FIELDS:
        text = getattr(message, field)
        if text is not None and not isinstance(text, str):
            return f"{field} must be a string or None, got {type(text).__name__}"
    tool_calls = message.tool_calls
    if tool_calls is not None and not isinstance(tool_calls, list):
        return f"tool_calls must be a list of objects or None, got {type(tool_calls).__name__}"
    if not isinstance(message.metadata, dict):
        return f"metadata must be a dict, got {type(message.metadata).__name__}"
    created_at = message.created_at
    if created_at is not None and not isinstance(created_at, datetime):
        return f"created_at must be a datetime or None, got {type(created_at).__name__}"
    return None


def _as_stored(message: Message, where: str) -> Message:
    """The message as PostgreSQL gives it back: created_at in UTC, JSON as jsonb keeps it."""
    update: dict[str, Any] = {}
    if message.created_at is not None:
        update["created_at"] = _as_utc(message.created_at, f"{where}.created_at")
    if message.tool_calls:
        for position, call in enumerate(message.tool_calls):
            if not isinstance(call, dict):
                raise InvalidMessageError(
                    f"{where}.tool_calls[{position}] must be an object, got {type(call).__name__}"
                )
    for field in ("tool_calls", "metadata"):
        value = getattr(message, field)
        if not value:
            continue
        try:
            update[field] = _as_jsonb(value)
        except _JsonProblem as exc:
            raise InvalidMessageError(f"{where}.{field}{exc.where()} {exc}") from None
    item = _check_item(message.item, where)
    if item is not message.item:
        update["item"] = item
    stored = message.model_copy(update=update) if update else message
    check_message_size(stored, where)
    return stored


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
    """What is wrong in a JSON value, and where (filled in on the way out)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.path: list[str] = []

    def where(self) -> str:
        return "".join(reversed(self.path))


def _check_item(item: object, where: str) -> dict[str, Any] | None:
    """The ``item`` as PostgreSQL's ``json`` gives it back, or :class:`InvalidMessageError`.

    Its strings may hold any text, U+0000 and lone surrogates included
    (stored as JSON escapes, :mod:`agentcore.exact_json`); a high surrogate
    followed by a low one comes back as the character the pair encodes, so
    such an item is stored in that form by both repositories.
    """
    if item is None:
        return None
    try:
        if not isinstance(item, dict):
            raise _JsonProblem("must be a JSON object")
        surrogates = _check_json(item)
    except _JsonProblem as exc:
        raise InvalidMessageError(f"{where}.item{exc.where()} {exc}") from None
    if surrogates:
        stored: dict[str, Any] = json.loads(exact_json(item))
        return stored
    return item


def _check_json(value: Any) -> bool:
    """Raise :class:`_JsonProblem` unless PostgreSQL's ``json`` keeps ``value``.

    ``json`` stores the text as given, so keys keep their order and numbers
    their form; what it cannot hold is what JSON cannot express (NaN,
    Infinity, non-string keys, other Python objects). Any text can be held,
    as escapes where UTF-8 or PostgreSQL's text cannot (:mod:`agentcore.exact_json`).

    Returns:
        Whether a string (or key) holds a surrogate code point.
    """
    surrogates = False
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise _JsonProblem(
                    f"has a key {key!r} of type {type(key).__name__}; keys must be strings"
                )
            if _check_json_at(item, f"[{key!r}]") or has_surrogates(key):
                surrogates = True
    elif isinstance(value, list):
        for position, item in enumerate(value):
            if _check_json_at(item, f"[{position}]"):
                surrogates = True
    else:
        surrogates = _check_json_scalar(value)
    return surrogates


def _check_json_at(value: Any, step: str) -> bool:
    try:
        return _check_json(value)
    except _JsonProblem as exc:
        exc.path.append(step)
        raise


def _check_json_scalar(value: Any) -> bool:
    if isinstance(value, str):
        return has_surrogates(value)
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, int):
        if abs(value) >= _HUGE_INT:
            raise _JsonProblem(
                f"must not contain integers of more than {MAX_JSON_INT_DIGITS} digits"
            )
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _JsonProblem("must not contain NaN or Infinity")
    else:
        raise _JsonProblem(f"holds a {type(value).__name__}, which JSON cannot hold")
    return False


def _as_jsonb(value: Any) -> Any:
    """``value`` as PostgreSQL's jsonb gives it back, or :class:`_JsonProblem`.

    Both repositories store exactly this, so they return the same thing: jsonb
    keeps object keys shortest first, then in UTF-8 byte order; it reads a
    number as an exact decimal, so a float written in exponent form
    (``1e+16``) comes back as an int, and ``-0.0`` as ``0.0``. It stores
    neither U+0000, nor lone surrogates, nor NaN or Infinity. Only JSON types
    are accepted (a message built with ``model_construct`` may hold anything):
    dict with string keys, list, str, int, float, bool and None; subclasses of
    str, int and float are stored as the plain type.
    """
    kind = type(value)
    if kind is str:
        problem = _text_problem(value)
        if problem:
            raise _JsonProblem(f"{problem} (in a key or string)")
        return value
    if kind is dict:
        return _jsonb_object(value)
    if kind is list:
        return _jsonb_array(value)
    if kind is int or kind is float:
        return _jsonb_number(value)
    if value is None or kind is bool:
        return value
    return _as_jsonb(_plain(value))


def _jsonb_object(value: dict[Any, Any]) -> dict[str, Any]:
    items = []
    for k, v in value.items():
        if type(k) is not str:
            if not isinstance(k, str):
                raise _JsonProblem(
                    f"has a key {k!r} of type {type(k).__name__}; keys must be strings"
                )
            k = str.__str__(k)
        key = _as_jsonb(k)  # a bad key is reported at its object's path
        try:
            items.append((key, _as_jsonb(v)))
        except _JsonProblem as exc:
            exc.path.append(f"[{k!r}]")
            raise
    items.sort(key=lambda kv: (len(kv[0].encode("utf-8")), kv[0].encode("utf-8")))
    return dict(items)


def _jsonb_array(value: list[Any]) -> list[Any]:
    out = []
    for position, item in enumerate(value):
        try:
            out.append(_as_jsonb(item))
        except _JsonProblem as exc:
            exc.path.append(f"[{position}]")
            raise
    return out


def _jsonb_number(value: float) -> float:
    if isinstance(value, int):
        if abs(value) >= _HUGE_INT:
            raise _JsonProblem(
                f"must not contain integers of more than {MAX_JSON_INT_DIGITS} digits"
            )
        return value
    if not math.isfinite(value):
        raise _JsonProblem("must not contain NaN or Infinity")
    text = repr(value)
    if "e+" in text:
        return int(Decimal(text))
    return 0.0 if value == 0 else value


def _plain(value: object) -> object:
    """A subclass of a JSON type as the plain type, or :class:`_JsonProblem`."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__index__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    raise _JsonProblem(
        f"holds a value of type {type(value).__name__}, which is not JSON "
        "(use dict with string keys, list, str, int, float, bool or None)"
    )


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


def check_owner_fits(agent_name: str, session_id: str, update: Mapping[str, Any]) -> None:
    """Refuse an owner that PostgreSQL could not index with the conversation's ids.

    The owner index holds agent_name, owner and session_id together. New ids
    and owners always fit (:data:`MAX_ID_BYTES` each); a conversation stored
    before that limit under longer ids keeps working, and gets an owner as
    long as the three together are within three times the limit.

    Raises:
        InvalidInputError: ``update`` sets an owner that, with the ids, is too long.
    """
    owner = update.get(OWNER_KEY)
    if not isinstance(owner, str):
        return
    size = id_bytes(agent_name) + id_bytes(owner) + id_bytes(session_id)
    if size > 3 * MAX_ID_BYTES:
        raise InvalidInputError(
            f"metadata[{OWNER_KEY!r}] cannot be set on this conversation: agent_name, "
            f"session_id (stored before the limit of {MAX_ID_BYTES} bytes per id) and owner "
            f"are {size} bytes in UTF-8 together, more than the owner index takes "
            f"({3 * MAX_ID_BYTES})"
        )


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

    Without :data:`MAX_ID_BYTES`: an owner stored before the limit stays selectable.

    Raises:
        InvalidIdentifierError: see :func:`check_identifier`.
    """
    return check_identifier(value, "owner", max_bytes=None)


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
    the whole stream, except that a message id is checked as an import's ids
    are (:func:`check_restored_identifier`): an import restores what an export
    wrote, ids stored by older versions included. Ids repeated within the
    stream are found by the store (PostgreSQL's unique index), not here:
    remembering every id would make an import's memory grow with the
    conversation.

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
        message = _check_message(
            _to_message(item, index), index, self._max_content_chars, check_restored_identifier
        )
        self.count += 1
        return message


DEFAULT_PURGE_BATCH_SIZE = 100
"""Conversations ``purge_idle_sessions`` deletes per transaction by default."""

DEFAULT_PURGE_PAUSE = 0.05
"""Seconds ``purge_idle_sessions`` waits between two batches by default."""

DEFAULT_PURGE_MAX_IMPACT = 0.5
"""The share of its time ``purge_idle_sessions`` may spend in batches by default.

After a batch that took ``d`` seconds it waits ``d * (1 - max_impact) / max_impact``
(at least ``pause``): at 0.5 as long as the batch took. docs/operations.md has
what each value costs live turns, measured.
"""

UPDATED_AT_STEP = timedelta(minutes=1)
"""How stale a conversation's ``updated_at`` may be: a write moves it only when older.

Both repositories follow it (sql/history.sql). A purge counts a conversation
idle only when ``updated_at`` is older than ``idle_for`` plus this step, so a
conversation written within ``idle_for`` is never purged.
"""


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


def check_max_impact(value: object, what: str = "max_impact") -> float:
    """Return a purge's budget: the share of its time spent in batches, above 0, at most 1.

    Raises:
        InvalidInputError: anything else.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(
            f"{what} must be a number above 0 and at most 1, got {type(value).__name__}"
        )
    if not (math.isfinite(value) and 0 < value <= 1):
        raise InvalidInputError(f"{what} must be above 0 and at most 1, got {value}")
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


def check_expected_tail(value: object) -> list[Message]:
    """Return the messages a tail replacement expects to find (``replace_last_messages``).

    They are compared with the stored ones field by field, so they must be
    :class:`Message` objects as a read returned them; a dict could only ever
    differ (a stored message always has its ``created_at``).

    Raises:
        InvalidInputError: not a list (a sequence) of :class:`Message` objects.
    """
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise InvalidInputError(
            "expected must be a list of Message objects (as load_history returns them), "
            f"got {type(value).__name__}"
        )
    for index, message in enumerate(value):
        if not isinstance(message, Message):
            raise InvalidInputError(
                f"expected[{index}] must be a Message (as load_history returns it), "
                f"got {type(message).__name__}"
            )
    return list(value)


def check_state(value: object, what: str) -> dict[str, Any]:
    """Validate a scoped state object (or a delta of one); return it as jsonb keeps it.

    Both repositories store exactly the returned dict (keys in jsonb's order,
    numbers as jsonb reads them), so they give back the same thing.

    Raises:
        InvalidInputError: not a dict with string keys, or values that are not
            JSON or that jsonb cannot store (U+0000, lone surrogates, NaN).
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        kind = type(value).__name__
        raise InvalidInputError(f"{what} must be a dict (a JSON object), got {kind}")
    for key in value:
        if not isinstance(key, str):
            raise InvalidInputError(f"{what} keys must be strings, got {type(key).__name__}")
    try:
        stored: dict[str, Any] = _as_jsonb(dict(value))
    except _JsonProblem as exc:
        raise InvalidInputError(f"{what}{exc.where()} {exc}") from None
    return stored


def merge_state(current: Mapping[str, Any], delta: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` with ``delta``'s keys over it, as jsonb's ``||`` merges (both checked)."""
    merged: dict[str, Any] = _as_jsonb({**current, **delta})
    return merged


def check_update_time(value: object) -> float:
    """Return a finite float: a scoped conversation's update time (seconds since the epoch).

    Raises:
        InvalidInputError: not a real number, or NaN or infinite.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"update_time must be a number, got {type(value).__name__}")
    result = float(value)
    if not math.isfinite(result):
        raise InvalidInputError(f"update_time must be finite, got {value!r}")
    return result


def check_revision(value: object) -> int | None:
    """Return an expected revision: ``None``, or an int >= 0.

    Raises:
        InvalidInputError: anything else.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(f"expected_revision must be an int >= 0, got {value!r}")
    return value


class ScopedWrite(NamedTuple):
    """A scoped-state write's arguments, checked: what both repositories store."""

    agent_name: str
    session_id: str
    owner: str
    update_time: float
    state: dict[str, Any]
    owner_state: dict[str, Any]
    agent_state: dict[str, Any]


def check_scoped_create(
    agent_name: object,
    session_id: object,
    owner: object,
    update_time: object,
    state: object,
    owner_state: object,
    agent_state: object,
) -> ScopedWrite:
    """Check ``create_scoped_session``'s arguments (a new conversation's identifiers).

    Raises:
        InvalidIdentifierError: a bad identifier, or an owner the metadata cannot hold.
        InvalidInputError: a bad update time or state.
    """
    agent = check_identifier(agent_name, "agent_name")
    session = check_identifier(session_id, "session_id")
    who = check_identifier(owner, "owner")
    check_owner_fits(agent, session, {"owner": who})
    return ScopedWrite(
        agent,
        session,
        who,
        check_update_time(update_time),
        check_state(state, "state"),
        check_state(owner_state, "owner_state"),
        check_state(agent_state, "agent_state"),
    )


def check_scoped_append(
    agent_name: object,
    session_id: object,
    owner: object,
    update_time: object,
    expected_revision: object,
    state: object,
    owner_state: object,
    agent_state: object,
) -> tuple[ScopedWrite, int | None]:
    """Check ``append_with_state``'s arguments (a stored conversation's identifiers).

    Returns:
        The checked write, and the expected revision (``None``: any).

    Raises:
        InvalidIdentifierError: a bad identifier or owner.
        InvalidInputError: a bad update time, revision or state.
    """
    agent = check_stored_identifier(agent_name, "agent_name")
    session = check_stored_identifier(session_id, "session_id")
    who = check_owner(owner)
    when = check_update_time(update_time)
    expected = check_revision(expected_revision)
    write = ScopedWrite(
        agent,
        session,
        who,
        when,
        check_state(state, "state"),
        check_state(owner_state, "owner_state"),
        check_state(agent_state, "agent_state"),
    )
    return write, expected
