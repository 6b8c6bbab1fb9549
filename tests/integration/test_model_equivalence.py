"""The fake and PostgreSQL agree: random operation sequences through both at once.

A hypothesis state machine sends every call to an ``InMemoryHistoryRepository``
and a ``PostgresHistoryRepository`` and demands the same observable result
after every step: the same messages (every field, ``created_at`` exactly when
the caller gave one; compared as JSON text so key order and int/float matter),
the same counts, the same sessions in the same order, and the same error type
and message.

The "ci" profile (the default) runs 300 sequences of up to 20 steps; run
``pytest --hypothesis-profile=long`` for 3000 sequences of up to 50 steps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from psycopg_pool import AsyncConnectionPool

from agentcore import AgentcoreError, InMemoryHistoryRepository, Message, PostgresHistoryRepository
from tests.conftest import open_pool
from tests.integration.conftest import FIGURES
from tests.support import PgServer, fresh_database

MAX_CONTENT = 40
"""A small content limit, so that oversized content is one of the things tried."""

HOSTILE = [
    "'; DROP TABLE conversation_history; --",
    "%s",
    "%(agent_name)s",
    "$1",
    "a\\b\\\\",
    "q\"uo'te",
    "ünïcødé ☃ 🎉",
    "\u200fRTL\u202e",
    " padded ",
]
AGENTS = ["support-bot", HOSTILE[0]]
SESSIONS: list[str | None] = ["s1", "s2", HOSTILE[1], HOSTILE[7], " padded ", "x" * 255, None]
MESSAGE_IDS = ["m1", "m2", "m3", HOSTILE[3], HOSTILE[5]]

texts = st.one_of(
    st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=12),
    st.sampled_from(HOSTILE),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([10**3999, -(10**4000)])  # the longest accepted, one too long
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
metadata = st.dictionaries(texts, json_values, max_size=3)
optional_id = st.none() | st.sampled_from(MESSAGE_IDS)
tool_calls = st.lists(
    st.fixed_dictionaries(
        {"id": st.sampled_from(["call_1", "call_2"]), "type": st.just("function")},
        optional={"function": st.dictionaries(texts, json_values, max_size=2)},
    ),
    min_size=1,
    max_size=2,
)


# Times a caller may give, in any fixed UTC offset, up to the edges of what
# Python can represent (some fall outside what agentcore accepts: both must
# reject them alike). None falls near "now", so a stamped time is never taken
# for a given one (see outcome()).
offsets = st.builds(
    timezone,
    st.timedeltas(
        min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
    ),
)
created_ats = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(2025, 12, 31), timezones=offsets
) | st.datetimes(
    min_value=datetime(2100, 1, 1), max_value=datetime(9999, 12, 31, 23, 59), timezones=offsets
)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    """A valid message dict (content may still exceed MAX_CONTENT)."""
    role = draw(st.sampled_from(["system", "user", "assistant", "tool"]))
    message: dict[str, Any] = {"role": role, "content": draw(texts | st.just("x" * 41))}
    if role == "assistant" and draw(st.booleans()):
        message["tool_calls"] = draw(tool_calls)
        message["content"] = draw(st.none() | texts)
    if role == "tool":
        message["tool_call_id"] = draw(st.sampled_from(["call_1", "call_2", HOSTILE[0]]))
    if draw(st.booleans()):
        message["name"] = draw(texts)
    if draw(st.booleans()):
        message["metadata"] = draw(metadata)
    message_id = draw(optional_id)
    if message_id is not None:
        message["id"] = message_id
    if draw(st.booleans()):
        message["created_at"] = draw(created_ats)
    if draw(st.integers(0, 3)) == 0:  # an exact item, often instead of the text
        message["item"] = draw(metadata)
        if draw(st.booleans()):
            message.pop("content")
            message.pop("tool_call_id", None)
    return message


batches = st.lists(messages(), max_size=4)
INVALID_MESSAGES: list[Any] = [
    {"role": "robot", "content": "x"},
    {"role": "user", "content": "nul\x00"},
    {"role": "user", "content": "lone \ud800"},
    {"role": "user", "content": "x", "metadata": {"k": float("nan")}},
    {"role": "user", "item": {"k": [float("inf")]}},
    {"role": "user", "item": ["not", "an", "object"]},
    {"role": "user"},
    {"role": "tool", "content": "no call id"},
    {"role": "user", "content": "x", "extra": 1},
    {"role": "user", "content": "x", "id": ""},
    "not a message",
]
BAD_LIMITS: list[Any] = [-1, 1.5, "3", True, 2**63]


class Runner:
    """One event loop and one pool for a whole hypothesis run (sync -> async)."""

    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.pool: AsyncConnectionPool[Any] = self.run(open_pool(dsn, max_size=2))

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    async def reset(self) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM conversation_history")
            await conn.execute("DELETE FROM conversation_sessions")

    def close(self) -> None:
        self.run(self.pool.close())
        self.loop.close()


async def outcome(call: Coroutine[Any, Any, Any]) -> tuple[Any, ...]:
    """A call's observable result, errors included, in comparable form."""
    try:
        result = await call
    except AgentcoreError as exc:
        return ("raised", type(exc).__name__, str(exc))
    if isinstance(result, Message):
        result = [result]
    if isinstance(result, list) and result and isinstance(result[0], Message):
        dumped = [
            m.model_dump(mode="json", exclude={"created_at"}) | {"created_at": _given(m)}
            for m in result
        ]
        return ("messages", json.dumps(dumped, ensure_ascii=False))
    if isinstance(result, list) and result:
        return ("sessions", [(s.agent_name, s.session_id, s.message_count) for s in result])
    return ("value", result)


def _given(message: Message) -> str:
    """A caller's created_at exactly (offset included); a stamped one as "now"."""
    when = message.created_at
    assert when is not None
    if abs(when - datetime.now(UTC)) < timedelta(days=1):
        return "now"
    return when.isoformat()


class HistoryMachine(RuleBasedStateMachine):
    runner: Runner

    def __init__(self) -> None:
        super().__init__()
        self.runner.run(self.runner.reset())
        self.memory = InMemoryHistoryRepository(max_content_chars=MAX_CONTENT)
        self.postgres = PostgresHistoryRepository(self.runner.pool, max_content_chars=MAX_CONTENT)
        FIGURES["model-based: sequences run"] += 1

    def both(self, method: str, *args: Any) -> tuple[Any, ...]:
        want = self.runner.run(outcome(getattr(self.memory, method)(*args)))
        got = self.runner.run(outcome(getattr(self.postgres, method)(*args)))
        FIGURES["model-based: operations run on each repository"] += 1
        assert got == want, f"{method}{args!r}: postgres gave {got!r}, memory gave {want!r}"
        return got

    @rule(agent=st.sampled_from(AGENTS), session=st.sampled_from(SESSIONS), batch=batches)
    def append(self, agent: str, session: str | None, batch: list[dict[str, Any]]) -> None:
        self.both("append_messages", agent, session, batch)

    @rule(agent=st.sampled_from(AGENTS), session=st.sampled_from(SESSIONS), batch=batches)
    def append_twice(self, agent: str, session: str | None, batch: list[dict[str, Any]]) -> None:
        # A retry of the same batch: messages with ids are stored once.
        self.both("append_messages", agent, session, batch)
        self.both("append_messages", agent, session, batch)

    @rule(agent=st.sampled_from(AGENTS), session=st.sampled_from(SESSIONS), batch=batches)
    def replace(self, agent: str, session: str | None, batch: list[dict[str, Any]]) -> None:
        self.both("save_full_history", agent, session, batch)

    @rule(
        agent=st.sampled_from(AGENTS),
        session=st.sampled_from(SESSIONS),
        batch=batches,
        bad=st.sampled_from(INVALID_MESSAGES),
        where=st.integers(0, 4),
        replace=st.booleans(),
    )
    def rejected_write(
        self,
        agent: str,
        session: str | None,
        batch: list[Any],
        bad: Any,
        where: int,
        replace: bool,
    ) -> None:
        batch.insert(min(where, len(batch)), bad)
        self.both("save_full_history" if replace else "append_messages", agent, session, batch)

    @rule(
        agent=st.sampled_from(AGENTS),
        session=st.sampled_from(SESSIONS),
        limit=st.sampled_from([None, 0, 1, 2, 3, 1000, 2**63 - 1, *BAD_LIMITS]),
    )
    def load(self, agent: str, session: str | None, limit: Any) -> None:
        self.both("load_history", agent, session, limit)

    @rule(
        agent=st.sampled_from(AGENTS),
        session=st.sampled_from(SESSIONS),
        message_id=st.sampled_from([*MESSAGE_IDS, "", "m\x00", "a\nb"]),
    )
    def get_message(self, agent: str, session: str | None, message_id: str) -> None:
        self.both("get_message", agent, session, message_id)

    @rule(agent=st.sampled_from(AGENTS), session=st.sampled_from(SESSIONS))
    def clear(self, agent: str, session: str | None) -> None:
        self.both("clear_session", agent, session)

    @rule(agent=st.sampled_from(AGENTS), limit=st.sampled_from([0, 1, 3, 100, None, -1, "2"]))
    def list_sessions(self, agent: str, limit: Any) -> None:
        self.both("list_sessions", agent, limit)

    @invariant()
    def same_sessions(self) -> None:
        for agent in AGENTS:
            self.both("list_sessions", agent)

    def teardown(self) -> None:
        # The whole state, conversation by conversation.
        for agent in AGENTS:
            for info in self.runner.run(self.memory.list_sessions(agent)):
                self.both("load_history", agent, info.session_id)


@pytest.fixture
def runner(pg_server: PgServer) -> Iterator[Runner]:
    with fresh_database(pg_server) as dsn:
        runner = Runner(dsn)
        try:
            yield runner
        finally:
            runner.close()


def test_fake_and_postgres_agree_on_random_operation_sequences(runner: Runner) -> None:
    HistoryMachine.runner = runner
    run_state_machine_as_test(HistoryMachine, settings=settings())
