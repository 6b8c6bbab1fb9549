"""Parse a libpq DSN without connecting, with errors that say which part is wrong.

libpq reports a malformed DSN in many ways, some only when connecting, some
quoting the very text it could not parse (which may be the password). Here a
DSN is checked once, up front, and every problem becomes an
:class:`~agentcore.errors.InvalidDsnError` naming the part: the key=value
syntax, an unknown keyword or URL parameter, the quoting, the percent-encoding,
a port or another number, an ``sslmode``. The offending text is quoted only
when the DSN holds no password; otherwise it is shown as ``…``.
"""

from __future__ import annotations

import re

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
_KEYWORD_PASSWORD = re.compile(r"(^|\s)password\s*=", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"^\w+://[^@/?#]*:[^@/?#]*@")


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
    secret = bool(_KEYWORD_PASSWORD.search(dsn) or _URL_PASSWORD.match(dsn.strip()))
    try:
        params = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    except psycopg.ProgrammingError as exc:
        syntax = _libpq_problem(str(exc), secret)
        # Not chained: libpq's message may quote the password, and --debug prints causes.
        raise _invalid(source, f"{syntax} (expected {FORMS})") from None
    secret = secret or "password" in params
    problem = _value_problem(params, secret)
    if problem is not None:
        raise _invalid(source, problem)
    return params


def _invalid(source: str | None, problem: str) -> InvalidDsnError:
    where = f" (from {source})" if source else ""
    return InvalidDsnError(f"invalid database DSN{where}: {problem}")


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
