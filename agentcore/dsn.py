"""Parse a libpq DSN without connecting, with errors that say which part is wrong.

libpq reports a malformed DSN in many ways, some only when connecting, some
quoting the very text it could not parse (which may be the password). Here a
DSN is checked once, up front, and every problem becomes an
:class:`~agentcore.errors.InvalidDsnError` naming the part: the key=value
syntax, an unknown keyword or URL parameter, the quoting, the percent-encoding,
a port or another number, an ``sslmode``. The offending text is quoted only
when the DSN holds no password; otherwise it is shown as ``…``.

:func:`redact` takes the password out of any other message that may quote a
DSN's parts (a failed connection names its host, which an unencoded ``@`` in a
URL's password turns into the password's tail).
"""

from __future__ import annotations

import functools
import re
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict

from agentcore.errors import InvalidDsnError

FORMS = 'key=value pairs such as "host=db dbname=app" or a postgresql:// URL'

_INTEGER_OPTIONS = (
    "connect_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
)
_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

_LIBPQ_MESSAGES = (
    (
        re.compile(r'missing "=" after "(.*)" in connection info string'),
        "{} is not a key=value pair",
    ),
    (re.compile(r'invalid connection option "(.*)"'), "unknown keyword {}"),
    (re.compile(r'invalid URI query parameter: "(.*)"'), "unknown URL query parameter {}"),
    (re.compile(r'invalid percent-encoded token: "(.*)"'), "bad percent-encoding {}"),
    (re.compile(r"unterminated quoted string.*"), "a quoted value is not closed"),
)
_QUOTED = re.compile(r'"[^"]*"')
SECRET_KEYWORDS = (
    "password",  # the libpq keywords whose values are secrets
    "sslpassword",
    "oauth_client_secret",
    "scram_client_key",
    "scram_server_key",
)
# A secret keyword's value starts after it, in key=value form or in a URL's query
# (libpq's keywords are lower case; any case is taken, to be safe).
_SECRET_VALUE = re.compile(rf"(?:^|[\s?&])(?:{'|'.join(SECRET_KEYWORDS)})\s*=\s*", re.IGNORECASE)
_URL = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]*)://")
_POSTGRES_SCHEMES = ("postgresql", "postgres")
"""The URL schemes libpq reads (exactly so: it compares them case-sensitively)."""
# Where libpq (or a person) may cut a password into pieces that end up in other fields.
_SEPARATORS = re.compile(r"""[\s@/?#&=:%'"\\,;\[\]]+""")
_QUOTED_ANY = re.compile(r""""([^"]*)"|'([^']*)'""")
HIDDEN = "…"
"""What stands for a redacted part of a message."""
MIN_REDACTED_CHARS = 3
"""Pieces of a password shorter than this are hidden only in the quoted values
of a message (libpq and psycopg quote what they echo); replacing one or two
characters everywhere would leave nothing readable."""


def parse_dsn(dsn: str, *, source: str | None = None) -> dict[str, str]:
    """The connection parameters of ``dsn``, checked without connecting.

    Args:
        dsn: A libpq connection string or a ``postgresql://`` URL.
        source: Where the DSN came from, named in the message (``--dsn``...).

    Returns:
        Its parameters, as libpq reads them.

    Raises:
        InvalidDsnError: ``dsn`` is malformed; the message names the part and
            never contains the password.
    """
    secret = has_password(dsn)
    url = _URL.match(dsn)
    if url is not None and url[1] not in _POSTGRES_SCHEMES:
        raise _invalid(
            source,
            f"a {url[1]}:// URL: agentcore needs PostgreSQL (a postgresql:// or postgres:// URL, "
            'or key=value pairs such as "host=db dbname=app")',
            dsn,
        )
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    except psycopg.ProgrammingError as exc:
        syntax = _libpq_problem(str(exc), secret)
        # Not chained: libpq's message may quote the password, and --debug prints causes.
        raise _invalid(source, f"{syntax} (expected {FORMS})", dsn) from None
    problem = _value_problem(params, secret)
    if problem is not None:
        raise _invalid(source, problem, dsn)
    return params


def has_password(dsn: str) -> bool:
    """Whether ``dsn`` holds (or may hold) a password or another secret.

    Generous on purpose: a URL with ``:`` before an ``@`` after its scheme, or
    any ``password=`` (``sslpassword=``...) in key=value form or in a URL's
    query, counts, even when libpq would read the DSN otherwise.
    """
    return bool(_secrets(dsn))


def redact(message: str, dsn: str) -> str:
    """``message`` without any part of ``dsn``'s password (or other secret).

    What counts as the password is read from the text as a person meant it,
    not only as libpq parses it: in a URL, everything between the first ``:``
    of the user info and the last ``@``; after ``password=``, the value up to
    the next libpq keyword (quoted or not, percent-encoded or not). Every
    piece of it between separators (``@ / ? # & = : %``, quotes, spaces...)
    is hidden too, since libpq may have put a piece into another field (an
    unencoded ``@`` makes the password's tail part of the host name). A
    quoted value of the message that holds any piece becomes ``"…"``; pieces
    of at least :data:`MIN_REDACTED_CHARS` characters are replaced wherever
    they are.

    Args:
        message: Any text: an error message, a log line, a traceback.
        dsn: The DSN the text may quote.

    Returns:
        The text with the secret parts replaced by ``…``; unchanged when
        ``dsn`` holds no password.
    """
    secrets = _secrets(dsn)
    if not secrets:
        return message

    def quoted(match: re.Match[str]) -> str:
        value = match.group(1) if match.group(1) is not None else match.group(2)
        if any(s in value or (value and value in s) for s in secrets):
            quote = match.group()[0]
            return f"{quote}{HIDDEN}{quote}"
        return match.group()

    message = _QUOTED_ANY.sub(quoted, message)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_REDACTED_CHARS:
            message = message.replace(secret, HIDDEN)
    return message


def _secrets(dsn: str) -> frozenset[str]:
    """Every text of ``dsn`` that may be its password or a piece of it."""
    regions = [*_keyword_values(dsn), *_url_password(dsn)]
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        params = {}
    regions += [str(params[k]) for k in SECRET_KEYWORDS if params.get(k)]
    found: set[str] = set()
    for region in regions:
        for text in (region, unquote(region, errors="replace")):
            found.add(text)
            found.update(piece for piece in _SEPARATORS.split(text) if piece)
    found.discard("")
    return frozenset(found)


def _url_password(dsn: str) -> list[str]:
    start = _URL.match(dsn)
    if start is None:
        return []
    rest = dsn[start.end() :]
    user_info = rest[: rest.rfind("@")] if "@" in rest else ""
    if ":" not in user_info:
        return []
    return [user_info.split(":", 1)[1]]


def _keyword_values(dsn: str) -> list[str]:
    """The values after each secret keyword, up to the next libpq keyword."""
    values = []
    for found in _SECRET_VALUE.finditer(dsn):
        rest = dsn[found.end() :]
        if rest.startswith("'"):
            closing = re.search(r"(?<!\\)'", rest[1:])
            values.append(rest[1 : closing.start() + 1] if closing else rest[1:])
            continue
        end = _next_keyword().search(rest)
        values.append(rest[: end.start()] if end else rest)
    return values


@functools.cache
def _next_keyword() -> re.Pattern[str]:
    """Where the next libpq keyword starts (the set libpq itself lists)."""
    keywords = sorted(
        (o.keyword.decode() for o in psycopg.pq.Conninfo.get_defaults()), key=len, reverse=True
    )
    return re.compile(rf"[\s&](?:{'|'.join(map(re.escape, keywords))})\s*=")


def _invalid(source: str | None, problem: str, dsn: str) -> InvalidDsnError:
    where = f" (from {source})" if source else ""
    return InvalidDsnError(redact(f"invalid database DSN{where}: {problem}", dsn))


def _show(text: str, secret: bool) -> str:
    return '"…"' if secret else f'"{text}"'


def _libpq_problem(message: str, secret: bool) -> str:
    message = message.strip().splitlines()[0] if message.strip() else "cannot be parsed"
    for pattern, template in _LIBPQ_MESSAGES:
        found = pattern.fullmatch(message)
        if found:
            return template.format(*(_show(g, secret) for g in found.groups()))
    return _QUOTED.sub('"…"', message) if secret else message


def _value_problem(params: dict[str, str], secret: bool) -> str | None:
    for port in params.get("port", "").split(","):
        if port.strip() and not (port.strip().isdigit() and 0 < int(port) < 65536):
            return f"bad port {_show(port, secret)}: a port is a number from 1 to 65535"
    for option in _INTEGER_OPTIONS:
        value = params.get(option, "").strip()
        if value and not re.fullmatch(r"-?\d+", value):
            return f"{option} must be a whole number, got {_show(value, secret)}"
    sslmode = params.get("sslmode")
    if sslmode is not None and sslmode not in _SSLMODES:
        return f"sslmode must be one of {', '.join(_SSLMODES)}, got {_show(sslmode, secret)}"
    return None
