"""agentcore.dsn: a malformed DSN is refused up front, naming the part, never the password."""

from __future__ import annotations

import pytest

from agentcore import PostgresHistoryRepository, migrations
from agentcore.dsn import parse_dsn
from agentcore.errors import InvalidDsnError, InvalidInputError


@pytest.mark.parametrize(
    ("dsn", "problem"),
    [
        ("not a dsn", '"not" is not a key=value pair'),
        ("postgresql://::::", 'bad port ":::"'),
        ("host=db port=abc", 'bad port "abc"'),
        ("host=db port=99999", 'bad port "99999"'),
        ("postgresql://h1:5432,h2:x/app", 'bad port "x"'),
        ("host=db hots=x", 'unknown keyword "hots"'),
        ("postgresql://db/app?hots=x", 'unknown URL query parameter "hots"'),
        ("host='db", "a quoted value is not closed"),
        ("postgresql://db/a%zzpp", 'bad percent-encoding "a%zzpp"'),
        ("host=db connect_timeout=soon", 'connect_timeout must be a whole number, got "soon"'),
        ("host=db sslmode=maybe", 'sslmode must be one of disable, allow, prefer, require'),
        (
            "mysql://app@db/app",
            "a mysql:// URL: agentcore needs PostgreSQL (a postgresql:// or postgres:// URL, "
            'or key=value pairs such as "host=db dbname=app")',
        ),
        ("sqlite:///tmp/x.db", "a sqlite:// URL: agentcore needs PostgreSQL"),
    ],
)
def test_a_malformed_dsn_names_the_wrong_part(dsn: str, problem: str) -> None:
    with pytest.raises(InvalidDsnError) as caught:
        parse_dsn(dsn, source="--dsn")
    assert str(caught.value).startswith("invalid database DSN (from --dsn): ")
    assert problem in str(caught.value)
    assert isinstance(caught.value, InvalidInputError)
    assert caught.value.__cause__ is None  # libpq's own message may quote the password


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://app:s3cr3tpw@db:99999/app",
        "postgresql://app:s3cr3tpw@db/app?hots=x",
        "postgresql://app:s3cr3tpw@[::1/app",
        "postgresql://app:s3cr3tpw%zz@db/app",
        "host=db password=s3cr3tpw port=abc",
        "host=db password=s3cr3tpw hots=x",
        "host=db password=s3cr3tpw connect_timeout=s3cr3tpw",
        "host=db password=s3cr3 tpw",
        "host=db password='s3cr3tpw",
        "password=s3cr3tpw sslmode=s3cr3tpw",
    ],
)
def test_the_message_never_holds_the_password(dsn: str) -> None:
    with pytest.raises(InvalidDsnError) as caught:
        parse_dsn(dsn)
    message = str(caught.value)
    assert "s3cr3" not in message and "tpw" not in message
    assert message.startswith("invalid database DSN: ")


@pytest.mark.parametrize(
    "dsn",
    [
        "",
        "host=/tmp port=5432 dbname=app",
        "postgresql://app:pw@db:5432/app?sslmode=require&connect_timeout=3",
        "postgresql:///app?host=/var/run/postgresql",
        "host=a,b port=5432,5433",
        "host=db port=",
    ],
)
def test_a_wellformed_dsn_passes(dsn: str) -> None:
    parse_dsn(dsn)


async def test_the_library_entry_points_check_the_dsn_before_connecting() -> None:
    dsn = "host=127.0.0.1 port=1 password=s3cr3 tpw"  # libpq's own message quotes "tpw"
    with pytest.raises(InvalidDsnError, match="is not a key=value pair") as caught:
        async with PostgresHistoryRepository.from_dsn(dsn):
            pass
    assert "tpw" not in str(caught.value)
    for call in (migrations.apply, migrations.status, migrations.rollback):
        with pytest.raises(InvalidDsnError) as caught:
            call(dsn)
        assert "tpw" not in str(caught.value)
