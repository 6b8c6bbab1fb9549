"""Hostile and bad input through the public API.

Every rejected call raises a typed agentcore error (the same one from the fake)
and leaves both tables exactly as they were; every accepted hostile-looking
value is stored verbatim and stays in its own conversation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import psycopg
import pytest

from agentcore import (
    HistoryRepository,
    InMemoryHistoryRepository,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidMessageError,
    Message,
    PostgresHistoryRepository,
)
from tests.conftest import pool_for
from tests.integration.conftest import FIGURES
from tests.integration.storage_checks import stored_rows, table_dump
from tests.support import PgServer, fresh_database

A = "support-bot"
LIMIT = 300  # max_content_chars for these tests: a configurable limit


def user(text: Any = "hello", **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": text, **extra}


Call = Callable[[HistoryRepository], Awaitable[Any]]
R = TypeVar("R", bound=HistoryRepository)


@dataclass(frozen=True)
class Rejected:
    name: str
    call: Call
    error: type[Exception]
    says: str  # a fragment the error message must contain


def append(agent: Any = A, session: Any = "s", messages: Any = None) -> Call:
    return lambda repo: repo.append_messages(
        agent, session, [user()] if messages is None else messages
    )


def replace(agent: Any = A, session: Any = "seeded", messages: Any = None) -> Call:
    return lambda repo: repo.save_full_history(
        agent, session, [user()] if messages is None else messages
    )


REJECTED = [
    Rejected("agent empty", append(agent=""), InvalidIdentifierError, "agent_name"),
    Rejected("agent whitespace", replace(agent="   "), InvalidIdentifierError, "whitespace"),
    Rejected(
        "agent 256 chars", lambda r: r.load_history("x" * 256, "s"), InvalidIdentifierError, "255"
    ),
    Rejected(
        "agent NUL", lambda r: r.clear_session("a\x00b", "seeded"), InvalidIdentifierError, "NUL"
    ),
    Rejected(
        "agent None", lambda r: r.list_sessions(cast(Any, None)), InvalidIdentifierError, "string"
    ),
    Rejected("agent int", append(agent=42), InvalidIdentifierError, "string"),
    Rejected("agent bytes", append(agent=b"support-bot"), InvalidIdentifierError, "string"),
    Rejected("session empty", append(session=""), InvalidIdentifierError, "session_id"),
    Rejected("session whitespace", replace(session="\t\n "), InvalidIdentifierError, "whitespace"),
    Rejected("session 256 chars", append(session="y" * 256), InvalidIdentifierError, "255"),
    Rejected(
        "session NUL", lambda r: r.clear_session(A, "seeded\x00"), InvalidIdentifierError, "NUL"
    ),
    Rejected(
        "session float",
        lambda r: r.load_history(A, cast(Any, 3.14)),
        InvalidIdentifierError,
        "string",
    ),
    Rejected("session list", append(session=["seeded"]), InvalidIdentifierError, "string"),
    Rejected(
        "session lone surrogate", append(session="s\udc80"), InvalidIdentifierError, "surrogate"
    ),
    Rejected(
        "clear without session",
        lambda r: r.clear_session(A, cast(Any, None)),
        InvalidIdentifierError,
        "session_id",
    ),
    Rejected("message id empty", append(messages=[user(id="")]), InvalidMessageError, "id"),
    Rejected(
        "message id 256 chars", append(messages=[user(id="i" * 256)]), InvalidMessageError, "255"
    ),
    Rejected(
        "unknown role",
        append(messages=[{"role": "robot", "content": "x"}]),
        InvalidMessageError,
        "role",
    ),
    Rejected("missing role", append(messages=[{"content": "x"}]), InvalidMessageError, "role"),
    Rejected("content NUL", append(messages=[user("a\x00b")]), InvalidMessageError, "NUL"),
    Rejected("name NUL", append(messages=[user(name="bob\x00")]), InvalidMessageError, "name"),
    Rejected(
        "tool_call_id NUL",
        append(messages=[{"role": "tool", "content": "r", "tool_call_id": "c\x00"}]),
        InvalidMessageError,
        "tool_call_id",
    ),
    Rejected(
        "metadata key NUL",
        append(messages=[user(metadata={"k\x00": 1})]),
        InvalidMessageError,
        "NUL",
    ),
    Rejected(
        "metadata NaN",
        append(messages=[user(metadata={"k": float("nan")})]),
        InvalidMessageError,
        "NaN",
    ),
    Rejected(
        "metadata Infinity",
        append(messages=[user(metadata={"k": [float("inf")]})]),
        InvalidMessageError,
        "Infinity",
    ),
    Rejected(
        "content lone surrogate",
        append(messages=[user("\ud83d")]),
        InvalidMessageError,
        "surrogate",
    ),
    Rejected(
        "content over the limit",
        append(messages=[user("x" * (LIMIT + 1))]),
        InvalidMessageError,
        f"limit is {LIMIT}",
    ),
    Rejected("content not a string", append(messages=[user(42)]), InvalidMessageError, "content"),
    Rejected(
        "content missing", append(messages=[{"role": "user"}]), InvalidMessageError, "content"
    ),
    Rejected(
        "unknown field", append(messages=[user(sql="DROP TABLE x")]), InvalidMessageError, "sql"
    ),
    Rejected(
        "tool without call id",
        append(messages=[{"role": "tool", "content": "r"}]),
        InvalidMessageError,
        "tool_call_id",
    ),
    Rejected(
        "tool_calls on a user message",
        append(messages=[user(tool_calls=[{"id": "c"}])]),
        InvalidMessageError,
        "tool_calls",
    ),
    Rejected(
        "naive created_at",
        append(messages=[user(created_at="2024-01-01T00:00:00")]),
        InvalidMessageError,
        "created_at",
    ),
    Rejected("message a string", append(messages=["hello"]), InvalidMessageError, "dict"),
    Rejected("messages a dict", append(messages=user()), InvalidMessageError, "list"),
    Rejected("messages a string", append(messages="hello"), InvalidMessageError, "list"),
    Rejected(
        "duplicate id in a batch",
        append(messages=[user(id="d"), user(id="d")]),
        InvalidMessageError,
        "repeats",
    ),
    Rejected(
        "valid then invalid",
        append(messages=[user("ok"), user("a\x00")]),
        InvalidMessageError,
        "messages[1]",
    ),
    Rejected(
        "bad replacement",
        replace(messages=[user("new"), {"role": "user"}]),
        InvalidMessageError,
        "messages[1]",
    ),
    Rejected(
        "limit negative", lambda r: r.load_history(A, "seeded", limit=-1), InvalidInputError, ">= 0"
    ),
    Rejected(
        "limit float",
        lambda r: r.load_history(A, "seeded", limit=cast(Any, 2.5)),
        InvalidInputError,
        "int",
    ),
    Rejected(
        "limit string",
        lambda r: r.load_history(A, "seeded", limit=cast(Any, "10")),
        InvalidInputError,
        "int",
    ),
    Rejected(
        "limit bool", lambda r: r.load_history(A, "seeded", limit=True), InvalidInputError, "int"
    ),
    Rejected(
        "list limit negative", lambda r: r.list_sessions(A, limit=-5), InvalidInputError, ">= 0"
    ),
    Rejected(
        "session with a newline and a tab",
        append(session="line\nbreak\ttab"),
        InvalidIdentifierError,
        "session_id must not contain control characters or line separators (found U+000A",
    ),
    Rejected(
        "agent with ESC",
        replace(agent="a\x1b[2Kb"),
        InvalidIdentifierError,
        "agent_name must not contain control characters or line separators (found U+001B",
    ),
    Rejected(
        "session with U+2028",
        append(session="a\u2028b"),
        InvalidIdentifierError,
        "found U+2028 at index 1",
    ),
    Rejected(
        "message id with a C1 control",
        append(messages=[user(id="m\x85")]),
        InvalidMessageError,
        "found U+0085 at index 1",
    ),
    # Messages built with model_construct skip pydantic: checked again, same errors.
    Rejected(
        "unvalidated int content",
        append(messages=[Message.model_construct(role="user", content=cast(Any, 42))]),
        InvalidMessageError,
        "content must be a string or None, got int",
    ),
    Rejected(
        "unvalidated bytes in metadata",
        replace(
            messages=[
                Message.model_construct(role="user", content="x", metadata=cast(Any, {"b": b""}))
            ]
        ),
        InvalidMessageError,
        "metadata['b'] holds a value of type bytes",
    ),
    Rejected(
        "unvalidated tool_calls dict",
        append(
            messages=[
                Message.model_construct(
                    role="assistant", content=None, tool_calls=cast(Any, {"id": "c"})
                )
            ]
        ),
        InvalidMessageError,
        "tool_calls must be a list",
    ),
    Rejected(
        "unvalidated string created_at",
        append(
            messages=[
                Message.model_construct(
                    role="user", content="x", created_at=cast(Any, "2024-01-01T00:00Z")
                )
            ]
        ),
        InvalidMessageError,
        "created_at must be a datetime",
    ),
]

HOSTILE = [
    "'; DROP TABLE conversation_history; --",
    "Robert'); DELETE FROM conversation_sessions; --",
    "%s",
    "%(agent_name)s",
    "$1",
    "\\",
    "\\'; SELECT pg_sleep(10); --",
    "'",
    '"',
    "ünïcødé ☃ 🎉👩‍👩‍👧",
    "\u200fRTL\u202eoverride",
    " padded ",
    "x" * 255,
    "nbsp\u00a0and\u200bzero-width",  # not control characters: stored verbatim
]


async def seeded(repo: R) -> R:
    await repo.append_messages(A, "seeded", [user("one", id="u1"), user("two")])
    await repo.append_messages("other-agent", "seeded", [user("theirs")])
    return repo


@pytest.fixture(scope="module")
def module_dsn(pg_server: PgServer) -> Iterator[str]:
    """One database for the module (a clone per case would cost more than the case)."""
    with fresh_database(pg_server) as dsn:
        yield dsn


@pytest.fixture
def database_dsn(module_dsn: str) -> str:
    with psycopg.connect(module_dsn) as conn:
        conn.execute("DELETE FROM conversation_history")
        conn.execute("DELETE FROM conversation_sessions")
    return module_dsn


@pytest.fixture
async def repo(database_dsn: str) -> AsyncIterator[PostgresHistoryRepository]:
    async with pool_for(database_dsn, max_size=2) as pool:
        yield await seeded(PostgresHistoryRepository(pool, max_content_chars=LIMIT))


@pytest.mark.parametrize("case", REJECTED, ids=[c.name for c in REJECTED])
async def test_bad_input_is_rejected_and_changes_nothing(
    case: Rejected, repo: PostgresHistoryRepository, database_dsn: str
) -> None:
    before = table_dump(database_dsn)
    with pytest.raises(case.error) as raised:
        await case.call(repo)
    assert case.says in str(raised.value)
    assert table_dump(database_dsn) == before
    # The fake refuses it with the same error and message.
    fake = await seeded(InMemoryHistoryRepository(max_content_chars=LIMIT))
    with pytest.raises(case.error) as from_fake:
        await case.call(fake)
    assert str(from_fake.value) == str(raised.value)
    FIGURES["hostile input: rejected cases (database unchanged)"] += 1


@pytest.mark.parametrize("value", HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
async def test_hostile_strings_are_stored_verbatim_and_isolated(
    value: str, repo: PostgresHistoryRepository, database_dsn: str
) -> None:
    before = stored_rows(database_dsn)
    message = {
        "role": "tool",
        "content": value,
        "name": value[:100],
        "tool_call_id": value,
        "id": value,
        "metadata": {value: [value]},
    }
    assert await repo.append_messages(value, value, [message]) == 1
    await repo.save_full_history(A, value, [user(value, id=value)])

    [stored] = await repo.load_history(value, value)
    assert stored.model_dump(exclude={"created_at"}) == message | {"tool_calls": None, "item": None}
    assert [m.content for m in await repo.load_history(A, value)] == [value]
    assert [s.session_id for s in await repo.list_sessions(value)] == [value]
    after = stored_rows(database_dsn)
    assert after[(value, value)] == [(0, value, value)]
    # Nothing else moved, and both tables are still there.
    assert {k: v for k, v in after.items() if value not in k} == before
    assert await repo.clear_session(value, value) == 1
    assert await repo.load_history(value, value) == []
    assert [m.content for m in await repo.load_history(A, "seeded")] == ["one", "two"]
    FIGURES["hostile input: hostile strings stored verbatim"] += 1
