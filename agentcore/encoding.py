"""agentcore stores Unicode text: it uses databases encoded in UTF-8 only."""

from __future__ import annotations

from agentcore.errors import UnsupportedDatabaseError

SUPPORTED_ENCODING = "UTF8"
"""The only ``server_encoding`` agentcore works with (PostgreSQL's name for UTF-8)."""


def check_server_encoding(encoding: str | None, dbname: str) -> None:
    """Refuse a database whose encoding cannot hold every message.

    In LATIN1, EUC_JP and the like an emoji cannot be stored at all, and in
    SQL_ASCII the server checks no encoding, so the in-memory store and
    PostgreSQL would disagree about what can be stored.

    Args:
        encoding: The connection's ``server_encoding`` parameter.
        dbname: The database's name, for the message.

    Raises:
        UnsupportedDatabaseError: the encoding is not UTF8.
    """
    if encoding != SUPPORTED_ENCODING:
        raise UnsupportedDatabaseError(
            f"database {dbname!r} is encoded in {encoding}; agentcore supports UTF8 "
            "databases only: create the database with ENCODING 'UTF8' "
            f"(e.g. createdb -E UTF8 -T template0 {dbname}) and move the data there"
        )
