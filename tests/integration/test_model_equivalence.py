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

from agentcore import (
    AgentcoreError,
    InMemoryHistoryRepository,
    Message,
    PostgresHistoryRepository,
    SessionInfo,
)
from agentcore.models import HistoryPage, SessionPage
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
OWNERS = ["alice", HOSTILE[0]]
session_metadata = st.one_of(
    st.dictionaries(texts, json_values, max_size=3),
    st.fixed_dictionaries({"owner": st.sampled_from(OWNERS)}, optional={"title": texts}),
    st.sampled_from([{"owner": 7}, {"owner": ""}, ["no"], {"x": "y" * 17_000}]),
)


async def _streamed(repo: Any, agent: str, session: str) -> tuple[Any, ...]:
    """What an export reads: every session (sorted: key orders differ), one's messages."""
    sessions = sorted(
        [
            (s.agent_name, s.session_id, s.message_count)
            async for s in repo.iter_sessions(batch_size=2)
        ]
    )
    messages = [m async for m in repo.iter_history(agent, session, batch_size=2)]
    return ("streamed", sessions, await outcome(_value(messages)))


def outcome_of(result: Any) -> tuple[Any, ...]:
    if isinstance(result, SessionPage):
        return ("page", [_session(s) for s in result.sessions], result.next_cursor is not None)
    return result  # type: ignore[no-any-return]


async def _page_or_error(call: Coroutine[Any, Any, Any]) -> Any:
    try:
        return await call
    except AgentcoreError as exc:
        return ("raised", type(exc).__name__, str(exc))


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
    if isinstance(result, list) and result and isinstance(result[0], SessionInfo):
        return ("sessions", [_session(s) for s in result])
    if isinstance(result, SessionPage):
        return ("page", [_session(s) for s in result.sessions], result.next_cursor is not None)
    if isinstance(result, SessionInfo):
        return ("session", _session(result))
    if isinstance(result, HistoryPage):
        return ("history", await outcome(_value(result.messages)), result.next_cursor is not None)
    if isinstance(result, dict):
        return ("value", json.dumps(result, ensure_ascii=False))
    return ("value", result)


async def _value(value: Any) -> Any:
    return value


def _session(s: SessionInfo) -> tuple[Any, ...]:
    return (s.agent_name, s.session_id, s.message_count, json.dumps(s.metadata, ensure_ascii=False))


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

    def both(self, method: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        got: tuple[Any, ...]
        if method == "_streamed":
            want = self.runner.run(outcome(_streamed(self.memory, *args)))
            got = self.runner.run(outcome(_streamed(self.postgres, *args)))
        else:
            want = self.runner.run(outcome(getattr(self.memory, method)(*args, **kwargs)))
            got = self.runner.run(outcome(getattr(self.postgres, method)(*args, **kwargs)))
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

    @rule(agent=st.sampled_from(AGENTS), session=st.sampled_from(SESSIONS))
    def pop(self, agent: str, session: str | None) -> None:
        self.both("pop_message", agent, session)

    @rule(
        agent=st.sampled_from(AGENTS),
        session=st.sampled_from(SESSIONS),
        count=st.integers(0, 3),
        seed=st.lists(messages(), min_size=1, max_size=3),
        batch=batches,
        change=st.sampled_from(["none", "none", "content", "doubled", "dicts", "again"]),
        bad=st.none() | st.none() | st.none() | st.sampled_from(INVALID_MESSAGES),
    )
    def replace_tail(
        self,
        agent: str,
        session: str | None,
        count: int,
        seed: list[Any],
        batch: list[Any],
        change: str,
        bad: Any,
    ) -> None:
        """replace_last_messages with the tail each repository read itself (or a stale one).

        ``seed`` is appended first, so that the conversation often has a tail.
        ``again``: the tail is put back in its own place, ahead of the batch
        (its ids may be stored again).
        """
        self.both("append_messages", agent, session, seed)
        if bad is not None:
            batch.insert(count % (len(batch) + 1), bad)
        results = []
        for repo in (self.memory, self.postgres):
            tail: list[Any] = self.runner.run(repo.load_history(agent, session, count))
            replacement = [*tail, *batch] if change == "again" else batch
            if change == "content" and tail:
                tail[0] = tail[0].model_copy(update={"content": "changed"})
            elif change == "doubled":
                tail = [*tail, *tail]
            elif change == "dicts":
                tail = [m.model_dump() for m in tail]
            call = repo.replace_last_messages(agent, session, tail, replacement)  # type: ignore[arg-type]
            results.append(self.runner.run(outcome(call)))
        FIGURES["model-based: operations run on each repository"] += 1
        want, got = results
        assert got == want, f"replace_last_messages: postgres gave {got!r}, memory gave {want!r}"

    @rule(agent=st.sampled_from(AGENTS), limit=st.sampled_from([0, 1, 3, 100, None, -1, "2"]))
    def list_sessions(self, agent: str, limit: Any) -> None:
        self.both("list_sessions", agent, limit)

    # --- lifecycle operations ---------------------------------------------------------

    @rule(
        agent=st.sampled_from(AGENTS),
        session=st.sampled_from(SESSIONS),
        metadata=session_metadata,
        merge=st.booleans(),
    )
    def set_metadata(self, agent: str, session: str | None, metadata: Any, merge: bool) -> None:
        self.both("set_session_metadata", agent, session, metadata, merge=merge)

    @rule(
        agent=st.sampled_from(AGENTS),
        owner=st.sampled_from([None, *OWNERS, ""]),
        limit=st.sampled_from([1, 2, 5, 0]),
    )
    def walk_sessions(self, agent: str, owner: str | None, limit: int) -> None:
        # Each repository pages with its own cursors (they carry its times).
        cursors: dict[str, str | None] = {"memory": None, "postgres": None}
        for _ in range(20):
            results = {}
            for name, repo in (("memory", self.memory), ("postgres", self.postgres)):
                call = repo.list_sessions_page(agent, owner=owner, limit=limit, after=cursors[name])
                page = self.runner.run(_page_or_error(call))
                results[name] = page
            want, got = (outcome_of(results["memory"]), outcome_of(results["postgres"]))
            assert got == want, f"list_sessions_page: postgres gave {got!r}, memory gave {want!r}"
            if not isinstance(results["memory"], SessionPage) or not results["memory"].next_cursor:
                return
            cursors = {n: p.next_cursor for n, p in results.items()}

    @rule(
        agent=st.sampled_from(AGENTS),
        session=st.sampled_from(SESSIONS[:-1]),
        limit=st.sampled_from([1, 2, 3, 100]),
    )
    def walk_history_backwards(self, agent: str, session: str, limit: int) -> None:
        cursors: dict[str, str | None] = {"memory": None, "postgres": None}
        for _ in range(60):
            pages = {}
            for name, repo in (("memory", self.memory), ("postgres", self.postgres)):
                call = repo.load_history_page(agent, session, limit=limit, before=cursors[name])
                pages[name] = self.runner.run(call)
            want, got = (
                self.runner.run(outcome(_value(pages["memory"]))),
                self.runner.run(outcome(_value(pages["postgres"]))),
            )
            assert got == want, f"load_history_page: postgres gave {got!r}, memory gave {want!r}"
            # Same positions: the cursors themselves are equal.
            assert pages["memory"].next_cursor == pages["postgres"].next_cursor
            if pages["memory"].next_cursor is None:
                return
            cursors = {n: p.next_cursor for n, p in pages.items()}

    @rule(
        agent=st.sampled_from(AGENTS),
        source=st.sampled_from(SESSIONS),
        dest=st.sampled_from(SESSIONS),
        up_to=st.sampled_from([None, 1, 2, 100, 0, *MESSAGE_IDS[:3], "missing"]),
    )
    def copy(self, agent: str, source: Any, dest: Any, up_to: Any) -> None:
        self.both("copy_session", agent, source, dest, up_to=up_to)

    @rule(
        agent=st.sampled_from([None, *AGENTS]),
        idle_for=st.sampled_from([timedelta(0), timedelta(days=1), timedelta(days=-1)]),
        batch_size=st.sampled_from([1, 3, 500]),
        dry_run=st.booleans(),
    )
    def purge(self, agent: str | None, idle_for: timedelta, batch_size: int, dry_run: bool) -> None:
        self.both(
            "purge_idle_sessions",
            idle_for,
            agent_name=agent,
            batch_size=batch_size,
            pause=0,
            dry_run=dry_run,
        )

    @rule(
        agent=st.sampled_from(AGENTS),
        session=st.sampled_from(SESSIONS[:-1]),
        batch=batches,
        metadata=session_metadata,
        old=st.booleans(),
    )
    def import_conversation(
        self, agent: str, session: str, batch: list[Any], metadata: Any, old: bool
    ) -> None:
        updated_at = datetime(2024, 6, 1, 12, 30, tzinfo=UTC) if old else None
        self.both("import_session", agent, session, batch, metadata=metadata, updated_at=updated_at)

    @rule(agent=st.sampled_from(AGENTS), session=st.sampled_from(SESSIONS))
    def get_session(self, agent: str, session: Any) -> None:
        self.both("get_session", agent, session)

    @rule(agent=st.sampled_from(AGENTS), session=st.sampled_from(SESSIONS[:-1]))
    def stream_out(self, agent: str, session: str) -> None:
        self.both("_streamed", agent, session)

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
