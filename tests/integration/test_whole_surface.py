"""A generator over agentcore's whole public surface, fake against PostgreSQL (issue 19).

A hypothesis state machine drives one :class:`InMemoryHistoryRepository` and
one :class:`PostgresHistoryRepository` side by side, through every face a user
has: the async repository, the :class:`SyncHistoryRepository` over each (a
pool of its own for PostgreSQL), the OpenAI Agents SDK session and the
LangChain history, export/import, pages and cursors, conversations stored
by an older version (rows inserted with SQL) and calls interrupted mid-way.
Values come from the hostile-but-valid edges (and one step past them): every
Unicode code point (NUL, lone surrogates, 4-byte characters, U+2028, bidi
controls), ids of 255 characters and of 768 bytes, content, names and JSON
fields at their limits (8 MiB, sometimes), nesting at pydantic's depth, times
at the calendar's ends in any offset, ``-0.0``, ``1e308``, 4000-digit ints.

tests/integration/test_model_equivalence.py is its narrower elder (the async
repository with gentler values and many more sequences); this one reuses its
runner, times and invalid inputs, and adds the other faces and the edges.

After every step:

* both give the same result, or the same error type and message (results
  compared as exact JSON text, so key order, ``-0.0`` and surrogates count);
* every error is an :class:`~agentcore.AgentcoreError` (anything else fails);
* the whole state is the same (every conversation, its metadata and messages);
* export → import into an empty store → export is byte-identical, for both
  (and importing PostgreSQL's export into the fake gives the same bytes);
* both pools still serve calls (no call leaves a connection that fails a later one).

Most writes are drawn valid (each field from the hostile values it accepts),
so that sequences reach deep states; an eighth of the batches and about one
id in sixteen are drawn from anything. A rule pages over the agents that have
conversations under legacy ids, with the first page sized to end on one.

Budget: a twentieth of the profile's sequences at twice its steps (``ci``: 15
of up to 40 steps, about 25 s on 2 cores); ``pytest
--hypothesis-profile=long tests/integration/test_whole_surface.py`` runs 150
of up to 100.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, Coroutine, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from typing import Any

import pytest
from agents import set_tracing_disabled
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_to_dict,
)

from agentcore import (
    AgentcoreError,
    InMemoryHistoryRepository,
    Message,
    PostgresHistoryRepository,
    SessionInfo,
    SyncHistoryRepository,
)
from agentcore.exact_json import exact_json
from agentcore.integrations.langchain import AgentcoreChatMessageHistory
from agentcore.integrations.openai_agents import AgentcoreSession
from agentcore.models import HistoryPage, PurgeReport, SessionPage
from agentcore.transfer import TransferReport, export_jsonl, import_jsonl
from agentcore.validation import (
    EARLIEST,
    LATEST,
    MAX_ID_BYTES,
    MAX_ID_LENGTH,
    MAX_JSON_FIELD_BYTES,
    MAX_TEXT_FIELD_CHARS,
    MessageStream,
)
from tests.contract.legacy_rows import LEGACY_IDS, store_legacy_conversation
from tests.integration.conftest import FIGURES
from tests.integration.test_model_equivalence import (
    BAD_LIMITS,
    INVALID_MESSAGES,
    Runner,
    created_ats,
    offsets,
)
from tests.support import PgServer, fresh_database

set_tracing_disabled(True)  # the SDK's session needs no trace export

MAX_CONTENT = 300
"""Both repositories' content limit: small, so that it is reached (and passed) often."""

# --- values at the edges -------------------------------------------------------------

EDGE_CHARACTERS = [
    "\x00",  # PostgreSQL's text and jsonb refuse it; json and items take it
    "\ud800",  # lone surrogates: UTF-8 cannot encode them
    "\udfff",
    "\U0001f600",  # 4 bytes in UTF-8
    "\U0010ffff",
    "\u2028",  # line and paragraph separators
    "\u2029",
    "\u202e",  # bidi controls
    "\u2066",
    "\u200f",
    "\ufeff",
    "\x1b",
    "\x7f",
    "\x85",
    "\x01",
    '"',
    "\\",
    "\n",
    "%s",
    "é",
    "\u0800",  # the first 3-byte character
]
any_character = (
    st.sampled_from(EDGE_CHARACTERS) | st.characters() | st.integers(0xD800, 0xDFFF).map(chr)
)
hostile_text = st.lists(any_character, max_size=8).map("".join)
"""Any text at all: what an item (and the bridges) must store exactly."""
clean_text = st.lists(
    st.characters(exclude_characters="\x00", exclude_categories=["Cs"])
    | st.sampled_from(
        [c for c in EDGE_CHARACTERS if c != "\x00" and not "\ud800" <= c <= "\udfff"]
    ),
    max_size=8,
).map("".join)
"""Text that ``content``, ``name`` and ``tool_call_id`` accept (no NUL, no lone surrogate)."""


def rarely(
    usual: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], one_in: int = 20
) -> st.SearchStrategy[Any]:
    """``usual``, or ``rare`` about once in ``one_in`` draws (shrinking towards ``usual``).

    For values that cost a second or so (8 MiB), or that make a whole batch
    invalid: a sequence needs mostly valid steps to reach interesting states.
    """
    return st.sampled_from([False] * (one_in - 1) + [True]).flatmap(lambda r: rare if r else usual)


def at_length(text: str, length: int) -> str:
    """``text`` repeated to exactly ``length`` characters."""
    return (text * (length // len(text) + 1))[:length]


def long_text(base: st.SearchStrategy[str], lengths: list[int]) -> st.SearchStrategy[str]:
    return st.tuples(base.filter(bool), st.sampled_from(lengths)).map(lambda p: at_length(*p))


# Every field has two strategies: ``valid``, the hostile values it accepts
# (4-byte characters, bidi controls, its exact limits; NUL and lone surrogates
# only where it takes them), and ``hostile``, any value at all, one step past
# each limit included. Most batches are drawn valid throughout, so that most
# writes store something and sequences reach deep states (a diagnostic run of
# an earlier version, which drew every field from both, stored 4 appends of
# 40); an eighth are drawn hostile, for the error-equivalence check.
valid_content = rarely(clean_text, long_text(clean_text, [MAX_CONTENT]), one_in=8)
hostile_content = hostile_text | long_text(clean_text, [MAX_CONTENT, MAX_CONTENT + 1])
valid_field_text = rarely(
    clean_text, st.just(at_length("\U0001f600", MAX_TEXT_FIELD_CHARS)), one_in=200
)
hostile_field_text = rarely(
    hostile_text,
    st.sampled_from(
        [at_length("ü", MAX_TEXT_FIELD_CHARS), at_length("x", MAX_TEXT_FIELD_CHARS + 1)]
    ),
    one_in=8,
)

# Ids: a small pool, so that steps meet the same conversations again, with
# the limits (255 characters; 768 bytes: 192 four-byte characters) and one
# past each, and what only reads accept (control characters) or nothing does.
AGENTS = ["bot", "\U0001f600" * 192, "ünï ☃ \u202e"]
SESSIONS = [
    "s1",
    "s2",
    "x" * MAX_ID_LENGTH,
    "\u0800" * MAX_ID_LENGTH,  # 765 bytes
    "\U0001f600" * (MAX_ID_BYTES // 4),
    "rtl\u202e\u2066",
    "%(agent_name)s",
]
BAD_SESSIONS: list[Any] = [
    "x" * (MAX_ID_LENGTH + 1),
    "\U0001f600" * (MAX_ID_BYTES // 4 + 1),
    "sep\u2028",
    "nul\x00",
    "\ud800",
    " ",
    None,
    7,
]
# Mostly a few keys, so that steps meet the same conversations (pages need
# several of one agent). Writes take an id that only reads (legacy) or
# nothing accepts about once in sixteen; reads a third of the time.
sessions = rarely(
    rarely(st.sampled_from(SESSIONS[:3]), st.sampled_from(SESSIONS), one_in=3),
    st.sampled_from([*BAD_SESSIONS, *LEGACY_IDS]),
    one_in=16,
)
"""Session ids for writes."""
read_sessions = rarely(
    st.sampled_from(SESSIONS[:3]),
    st.sampled_from([*SESSIONS, *BAD_SESSIONS, *LEGACY_IDS]),
    one_in=3,
)
"""Session ids for reads, which accept the legacy ids."""
agents = rarely(
    rarely(st.just("bot"), st.sampled_from(AGENTS[1:]), one_in=4),
    st.sampled_from(LEGACY_IDS[:2]),
    one_in=16,
)
MESSAGE_IDS = ["m1", "m2", "\U0001f600" * 192, "x" * 255, "x" * 256, "a\u2028b", "q\x01"]
valid_message_ids = rarely(
    st.integers(0, 10_000).map("m{}".format), st.sampled_from(MESSAGE_IDS[:4]), one_in=3
)
"""Mostly fresh ids: an id a conversation already holds makes the batch invalid."""


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def json_values(text: st.SearchStrategy[str], *, valid: bool = False) -> st.SearchStrategy[Any]:
    """JSON at its edges: -0.0, 1e308, 4000-digit ints, deep nesting (and one step past)."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)
        | st.sampled_from([10**3999, -(10**3999), 2**63, -(2**63) - 1])
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.sampled_from([-0.0, 1e308, -1e308, 5e-324, 1e16, 1.5e300])
        | text
    )
    trees = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
        max_leaves=6,
    )
    # Under two levels (a tool call in its list, a field in its object), 250
    # is still valid; 254 is the deepest a metadata field takes.
    depths = (64, 250) if valid else (64, 250, 254, 255, 256, 600)
    edges = st.sampled_from([*(nested(d) for d in depths), *([] if valid else [10**4000])])
    return rarely(trees, edges, one_in=20)


def json_of_bytes(size: int) -> dict[str, Any]:
    """An object whose exact JSON text is ``size`` bytes (4-byte characters, one ASCII tail)."""
    overhead = len('{"k":""}')
    quads, rest = divmod(size - overhead, 4)
    return {"k": "\U0001f600" * quads + "x" * rest}


def objects(text: st.SearchStrategy[str], *, valid: bool = False) -> st.SearchStrategy[Any]:
    """JSON objects; ``valid``: 8 MiB exactly, very rarely (it is stored, and costs)."""
    if valid:
        huge = [json_of_bytes(MAX_JSON_FIELD_BYTES)]
        one_in = 300
    else:
        huge = [json_of_bytes(MAX_JSON_FIELD_BYTES), json_of_bytes(MAX_JSON_FIELD_BYTES + 1)]
        one_in = 20
    return rarely(
        st.dictionaries(text, json_values(text, valid=valid), max_size=3),
        st.sampled_from(huge),
        one_in=one_in,
    )


valid_jsonb_objects = objects(clean_text, valid=True)
"""For ``metadata`` and ``tool_calls`` (jsonb: no NUL, no lone surrogate)."""
hostile_jsonb_objects = objects(hostile_text)
valid_items = objects(hostile_text, valid=True)
"""For ``item`` (json: any text)."""
hostile_items = objects(hostile_text)

# The ends of the calendar (agentcore takes 0001-01-08 to 9999-12-24 UTC), in
# the widest offsets, just inside and just outside, and past Python's range in UTC.
EDGE_OFFSETS = [
    timezone(timedelta(hours=23, minutes=59)),
    timezone(-timedelta(hours=23, minutes=59)),
]
VALID_EDGE_TIMES = [
    EARLIEST,
    LATEST,
    EARLIEST.astimezone(EDGE_OFFSETS[1]),
    LATEST.astimezone(EDGE_OFFSETS[0]),
    datetime(2024, 2, 29, 12, tzinfo=timezone(timedelta(hours=14))),
]
PAST_EDGE_TIMES = [
    EARLIEST - timedelta(microseconds=1),
    LATEST + timedelta(microseconds=1),
    datetime(1, 1, 1, tzinfo=EDGE_OFFSETS[0]),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=EDGE_OFFSETS[1]),
]
valid_times = rarely(
    # Any offset moves a local time by less than a day: these stay in range.
    st.datetimes(min_value=datetime(1, 1, 9), max_value=datetime(9999, 12, 22), timezones=offsets),
    st.sampled_from(VALID_EDGE_TIMES),
    one_in=6,
)
any_times = rarely(valid_times, created_ats | st.sampled_from(PAST_EDGE_TIMES), one_in=3)
"""Times in and out of range."""
times = rarely(valid_times, created_ats | st.sampled_from(PAST_EDGE_TIMES), one_in=10)
"""``import_session``'s own times: mostly in range."""


@st.composite
def messages(draw: st.DrawFn, *, valid: bool = True) -> dict[str, Any]:
    """A message dict with every field at some edge: accepted, or (``valid=False``) any."""
    content, field_text = (
        (valid_content, valid_field_text) if valid else (hostile_content, hostile_field_text)
    )
    jsonb = valid_jsonb_objects if valid else hostile_jsonb_objects
    role = draw(st.sampled_from(["system", "user", "assistant", "tool"]))
    message: dict[str, Any] = {"role": role, "content": draw(content)}
    if role == "assistant" and draw(st.booleans()):
        message["tool_calls"] = draw(st.lists(jsonb, min_size=1, max_size=2))
        message["content"] = draw(st.none() | content)
    if role == "tool":
        message["tool_call_id"] = draw(field_text.filter(str.strip) | st.just("call_1"))
    for field, values in [
        ("name", field_text),
        ("metadata", jsonb),
        ("id", valid_message_ids if valid else st.sampled_from(MESSAGE_IDS)),
        ("created_at", valid_times if valid else any_times),
        ("item", valid_items if valid else hostile_items),
    ]:
        if draw(st.integers(0, 2)) == 0:
            message[field] = draw(values)
    if "item" in message and draw(st.booleans()):
        message.pop("content")
        message.pop("tool_call_id", None)
    return message


def without_repeated_ids(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``batch`` with an id that repeats an earlier one in it dropped (a batch refuses it)."""
    seen: set[Any] = set()
    for message in batch:
        if "id" in message and message["id"] in seen:
            del message["id"]
        seen.add(message.get("id"))
    return batch


valid_batches = st.lists(messages(), max_size=3).map(without_repeated_ids)
batches = rarely(
    valid_batches,
    st.lists(messages(valid=False), min_size=1, max_size=3)
    | st.tuples(valid_batches, st.sampled_from(INVALID_MESSAGES)).map(lambda p: [*p[0], p[1]]),
    one_in=8,
)
session_metadata = rarely(
    st.dictionaries(clean_text, json_values(clean_text, valid=True), max_size=3)
    | st.fixed_dictionaries(
        {"owner": st.sampled_from(["ann", "bö", "\U0001f600" * 192])},
        optional={"title": clean_text},
    )
    | st.just({"x": "y" * 16_370}),
    st.dictionaries(hostile_text, json_values(hostile_text), max_size=3)
    | st.fixed_dictionaries({"owner": st.sampled_from(["\U0001f600" * 193, "a\x01", ""])})
    | st.sampled_from([{"x": "y" * 16_380}, {"owner": 7}, ["no"]]),
    one_in=6,
)

# Items of the OpenAI Agents SDK and messages of LangChain, with any text anywhere.
sdk_items = st.one_of(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "developer"]), "content": hostile_text}
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("function_call_output"),
            "call_id": hostile_text,
            "output": hostile_text | long_text(hostile_text, [5000]),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("message"),
            "role": st.just("assistant"),
            "content": st.lists(
                st.fixed_dictionaries({"type": st.just("output_text"), "text": hostile_text}),
                max_size=2,
            ),
        },
        optional={"id": hostile_text, "extra": json_values(hostile_text)},
    ),
)
sdk_batches = rarely(st.lists(sdk_items, max_size=3), st.just(["not an item"]), one_in=8)


@st.composite
def langchain_messages(draw: st.DrawFn) -> BaseMessage:
    kind = draw(st.sampled_from(["human", "ai", "system", "tool"]))
    text = draw(hostile_text)
    extra: dict[str, Any] = {}
    if draw(st.booleans()):
        extra["id"] = draw(hostile_text)
    if kind == "human":
        return HumanMessage(content=text, **extra)
    if kind == "system":
        return SystemMessage(content=text, **extra)
    if kind == "ai":
        calls = draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "name": hostile_text,
                        "args": st.dictionaries(
                            hostile_text, json_values(hostile_text), max_size=2
                        ),
                        "id": hostile_text,
                    }
                ),
                max_size=2,
            )
        )
        return AIMessage(content=text, tool_calls=calls, **extra)
    artifact = draw(
        rarely(json_values(hostile_text), st.just(datetime(2024, 1, 1).date()), one_in=8)
    )  # a date is not JSON
    return ToolMessage(content=text, tool_call_id=draw(hostile_text), artifact=artifact, **extra)


# --- comparable outcomes ------------------------------------------------------------

NOW_WINDOW = timedelta(days=1)


def _given(when: datetime | None) -> str:
    """A caller's time exactly (offset included); a stamped one as "now"."""
    assert when is not None
    return "now" if abs(when - datetime.now(UTC)) < NOW_WINDOW else when.isoformat()


def _message(m: Message) -> str:
    return exact_json(m.model_dump(exclude={"created_at"}) | {"created_at": _given(m.created_at)})


def _session(s: SessionInfo) -> tuple[Any, ...]:
    times = (_given(s.created_at), _given(s.updated_at))
    return (s.agent_name, s.session_id, s.message_count, exact_json(s.metadata), times)


def comparable(result: Any) -> Any:
    """A result in a form that is equal for equal results, whatever the store's clock."""
    if isinstance(result, Message):
        return ("message", _message(result))
    if isinstance(result, SessionInfo):
        return ("session", _session(result))
    if isinstance(result, SessionPage):
        return ("page", [_session(s) for s in result.sessions], result.next_cursor is not None)
    if isinstance(result, HistoryPage):
        return ("history", [_message(m) for m in result.messages], result.next_cursor)
    if isinstance(result, list):
        return [comparable(item) for item in result]
    if isinstance(result, BaseMessage):
        return ("langchain", exact_json(message_to_dict(result)))
    if isinstance(result, dict):
        return ("json", exact_json(result))
    if isinstance(result, PurgeReport | TransferReport):
        return repr(result)
    return result


def observed(call: Callable[[], Any]) -> Any:
    """What a call gave, or the agentcore error it raised (any other exception fails)."""
    try:
        return comparable(call())
    except AgentcoreError as exc:
        FIGURES["whole surface: agentcore errors compared"] += 1
        return ("raised", type(exc).__name__, str(exc))


# --- the machine --------------------------------------------------------------------

WRITES = frozenset(
    {
        "append_messages",
        "save_full_history",
        "replace_last_messages",
        "import_session",
        "set_session_metadata",
        "copy_session",
        "add_items",
        "add_messages",
    }
)
"""The calls that store something, for the share of writes accepted (the figures)."""
BATCH_WRITES = frozenset(
    {"append_messages", "save_full_history", "replace_last_messages", "import_session"}
)


async def _replace_last(repo: Any, session: str, batch: list[Any]) -> bool:
    tail = await repo.load_history("bot", session, 1)
    return bool(await repo.replace_last_messages("bot", session, tail, batch))


INTERRUPTIBLE: dict[str, Callable[[Any, str, list[Any]], Coroutine[Any, Any, Any]]] = {
    "append": lambda repo, s, batch: repo.append_messages("bot", s, batch),
    "save": lambda repo, s, batch: repo.save_full_history("bot", s, batch),
    "replace": _replace_last,
    "pop": lambda repo, s, _: repo.pop_message("bot", s),
    "clear": lambda repo, s, _: repo.clear_session("bot", s),
    "copy": lambda repo, s, _: repo.copy_session("bot", s, "s1"),
    "metadata": lambda repo, s, _: repo.set_session_metadata("bot", s, {"owner": "ann"}),
    "import": lambda repo, s, batch: repo.import_session("bot", s, batch),
}
"""The writes an interruption is tried on, by name."""


def interruptible(repo: Any, operation: str, session: str, batch: list[Any]) -> Any:
    return INTERRUPTIBLE[operation](repo, session, batch)


class Stores:
    """The run's databases, pools, loop and sync faces (one for the whole hypothesis run)."""

    def __init__(self, dsn: str, restore_dsn: str) -> None:
        self.runner = Runner(dsn)
        self.restore = Runner(restore_dsn)
        self.dsn = dsn
        self.sync_postgres = SyncHistoryRepository.from_dsn(
            dsn, max_size=2, max_content_chars=MAX_CONTENT
        )

    def close(self) -> None:
        self.sync_postgres.close()
        self.restore.close()
        self.runner.close()


async def _exported(repo: Any) -> bytes:
    out = io.StringIO()
    await export_jsonl(repo, out, batch_size=2)
    return out.getvalue().encode("utf-8")


async def _round_trip(repo: Any) -> tuple[bytes, bytes, TransferReport]:
    """``repo``'s export, and the export of an empty fake that imported it."""
    first = await _exported(repo)
    fake = InMemoryHistoryRepository(max_content_chars=MAX_CONTENT)
    report = await import_jsonl(fake, io.BytesIO(first))
    return first, await _exported(fake), report


LEGACY_TIMES = [
    datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
    datetime(2099, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
]


legacy_conversations = st.tuples(
    agents,
    st.sampled_from(LEGACY_IDS),
    st.lists(messages(), max_size=3).map(without_repeated_ids),
    st.fixed_dictionaries({}, optional={"owner": st.sampled_from(["ann", "ü"])}),
    # Long idle (they sort after today's conversations), or last written in
    # the future (before them): either way some page ends on one.
    st.sampled_from(LEGACY_TIMES),
)
"""Conversations as an older version stored them: ids with control characters."""


class WholeSurface(RuleBasedStateMachine):
    stores: Stores

    def __init__(self) -> None:
        super().__init__()
        self.run = self.stores.runner.run
        self.run(self.stores.runner.reset())
        self.memory = InMemoryHistoryRepository(max_content_chars=MAX_CONTENT)
        self.postgres = PostgresHistoryRepository(
            self.stores.runner.pool, max_content_chars=MAX_CONTENT
        )
        self.sync_memory = SyncHistoryRepository.over(self.memory)
        self.legacy_keys: set[tuple[str, str]] = set()
        FIGURES["whole surface: sequences run"] += 1

    def teardown(self) -> None:
        self.sync_memory.close()

    # Each face of a store: (async repository, sync face).
    def faces(self) -> list[tuple[str, Any, SyncHistoryRepository]]:
        return [
            ("memory", self.memory, self.sync_memory),
            ("postgres", self.postgres, self.stores.sync_postgres),
        ]

    def awaited(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
        """A call of the async ``method``, run to its end on the run's loop."""
        return lambda: self.run(method(*args, **kwargs))

    def same(self, what: str, calls: Sequence[Callable[[], Any]]) -> Any:
        """Run one call per store (memory first) and demand the same outcome."""
        want, got = (observed(call) for call in calls)
        FIGURES["whole surface: operations run on each store"] += 1
        name = what.split("(", 1)[0]
        raised = isinstance(want, tuple) and want[:1] == ("raised",)
        event(f"{name}: {want[1] if raised else 'done'}")
        if name in WRITES:
            outcome = "refused" if raised else "accepted"
            FIGURES[f"whole surface: writes {outcome}"] += 1
            if name in BATCH_WRITES:
                FIGURES[f"whole surface: message batches {outcome}"] += 1
        assert got == want, f"{what}: postgres gave {got!r}, memory gave {want!r}"
        return got

    def both(self, method: str, *args: Any, sync: bool = False, **kwargs: Any) -> Any:
        """``method`` on both stores, through the async repository or the sync face."""
        calls: list[Callable[[], Any]]
        if sync:
            FIGURES["whole surface: calls through the sync face"] += 1
            calls = [partial(getattr(face, method), *args, **kwargs) for *_, face in self.faces()]
        else:
            calls = [
                self.awaited(getattr(repo, method), *args, **kwargs) for _, repo, _ in self.faces()
            ]
        return self.same(f"{method}{args!r}{kwargs!r}", calls)

    # --- turn operations ----------------------------------------------------------

    @rule(agent=agents, session=sessions, batch=batches, sync=st.booleans())
    def append(self, agent: Any, session: Any, batch: list[Any], sync: bool) -> None:
        self.both("append_messages", agent, session, batch, sync=sync)

    @rule(agent=agents, session=sessions, batch=batches, sync=st.booleans())
    def save_full_history(self, agent: Any, session: Any, batch: list[Any], sync: bool) -> None:
        self.both("save_full_history", agent, session, batch, sync=sync)

    @rule(
        agent=agents,
        session=read_sessions,
        limit=st.sampled_from([None, 0, 1, 2, 1000, 2**63 - 1, *BAD_LIMITS]),
        sync=st.booleans(),
    )
    def load(self, agent: Any, session: Any, limit: Any, sync: bool) -> None:
        self.both("load_history", agent, session, limit, sync=sync)

    @rule(
        agent=agents, session=read_sessions, message_id=st.sampled_from([*MESSAGE_IDS, "", "m\x00"])
    )
    def get_message(self, agent: Any, session: Any, message_id: str) -> None:
        self.both("get_message", agent, session, message_id)

    @rule(agent=agents, session=sessions, sync=st.booleans())
    def pop(self, agent: Any, session: Any, sync: bool) -> None:
        self.both("pop_message", agent, session, sync=sync)

    @rule(agent=agents, session=read_sessions, sync=st.booleans())
    def clear(self, agent: Any, session: Any, sync: bool) -> None:
        self.both("clear_session", agent, session, sync=sync)

    @rule(
        agent=agents,
        session=sessions,
        count=st.integers(0, 3),
        batch=batches,
        stale=st.booleans(),
    )
    def replace_last(
        self, agent: Any, session: Any, count: int, batch: list[Any], stale: bool
    ) -> None:
        """replace_last_messages with the tail each store read itself (or a changed one)."""

        def call(repo: Any) -> Callable[[], Any]:
            def replace() -> Any:
                tail = self.run(repo.load_history(agent, session, count))
                if stale and tail:
                    tail[-1] = tail[-1].model_copy(update={"content": "changed"})
                return self.run(repo.replace_last_messages(agent, session, tail, batch))

            return replace

        self.same("replace_last_messages", [call(self.memory), call(self.postgres)])

    # --- lifecycle ---------------------------------------------------------------

    @rule(
        agent=agents,
        session=read_sessions,
        metadata=session_metadata,
        merge=st.booleans(),
        sync=st.booleans(),
    )
    def set_metadata(
        self, agent: Any, session: Any, metadata: Any, merge: bool, sync: bool
    ) -> None:
        self.both("set_session_metadata", agent, session, metadata, merge=merge, sync=sync)

    @rule(agent=agents, session=read_sessions)
    def get_session(self, agent: Any, session: Any) -> None:
        self.both("get_session", agent, session)

    @rule(agent=agents, limit=st.sampled_from([None, 0, 1, 100, -1]), sync=st.booleans())
    def list_sessions(self, agent: Any, limit: Any, sync: bool) -> None:
        self.both("list_sessions", agent, limit, sync=sync)

    @rule(
        agent=agents,
        owner=st.sampled_from([None, "ann", "\U0001f600" * 192, "a\x01", ""]),
        limit=st.sampled_from([1, 1, 2, 10_000, 0, 10_001]),
        sync=st.booleans(),
    )
    def walk_sessions(self, agent: Any, owner: Any, limit: int, sync: bool) -> None:
        """Page to the end, each store with its own cursors (they carry its times)."""

        def page(name: str, cursor: str | None) -> Any:
            repo, face = {n: (r, f) for n, r, f in self.faces()}[name]
            kwargs = {"owner": owner, "limit": limit, "after": cursor}
            if sync:
                return face.list_sessions_page(agent, **kwargs)
            return self.run(repo.list_sessions_page(agent, **kwargs))

        self.walk("list_sessions_page", page, same_cursors=False)

    @rule(agent=agents, session=read_sessions, limit=st.sampled_from([1, 2, 100, 0]))
    def walk_history(self, agent: Any, session: Any, limit: int) -> None:
        """Read a conversation backwards; the cursors themselves are equal."""

        def page(name: str, cursor: str | None) -> Any:
            repo = self.memory if name == "memory" else self.postgres
            return self.run(repo.load_history_page(agent, session, limit=limit, before=cursor))

        self.walk("load_history_page", page, same_cursors=True)

    def walk(
        self, what: str, page: Callable[[str, str | None], Any], *, same_cursors: bool
    ) -> None:
        """Follow ``next_cursor`` to the last page, comparing every page."""
        cursors: dict[str, str | None] = {"memory": None, "postgres": None}
        pages: dict[str, Any] = {}
        for _ in range(60):
            pages.clear()

            def one(name: str, cursor: str | None) -> Callable[[], Any]:
                def call() -> Any:
                    pages[name] = page(name, cursor)
                    return pages[name]

                return call

            outcome = self.same(what, [one(name, cursor) for name, cursor in cursors.items()])
            # Every cursor agentcore issues is accepted (both stores refusing it agree, and fail).
            assert pages or cursors["memory"] is None, f"{what} refused its own cursor: {outcome}"
            if not pages or pages["memory"].next_cursor is None:
                return
            if same_cursors:
                assert pages["memory"].next_cursor == pages["postgres"].next_cursor
            FIGURES["whole surface: cursors followed"] += 1
            cursors = {name: p.next_cursor for name, p in pages.items()}

    @rule(
        agent=agents,
        source=read_sessions,
        dest=sessions,
        up_to=rarely(
            st.sampled_from([None, 1, 2, "m1"]),
            st.sampled_from([0, "\U0001f600" * 192, "missing", "q\x01"]),
            one_in=4,
        ),
        sync=st.booleans(),
    )
    def copy(self, agent: Any, source: Any, dest: Any, up_to: Any, sync: bool) -> None:
        self.both("copy_session", agent, source, dest, up_to=up_to, sync=sync)

    @rule(
        agent=st.none() | agents,
        idle_for=st.sampled_from([timedelta(0), timedelta(days=400), timedelta(days=36_526)]),
        batch_size=st.sampled_from([1, 500]),
        dry_run=st.booleans(),
    )
    def purge(self, agent: Any, idle_for: timedelta, batch_size: int, dry_run: bool) -> None:
        self.both(
            "purge_idle_sessions",
            idle_for,
            agent_name=agent,
            batch_size=batch_size,
            pause=0,
            dry_run=dry_run,
        )

    @rule(
        agent=agents,
        session=sessions,
        batch=batches,
        metadata=session_metadata,
        created_at=st.none() | times,
        updated_at=st.none() | times,
    )
    def import_session(
        self,
        agent: Any,
        session: Any,
        batch: list[Any],
        metadata: Any,
        created_at: Any,
        updated_at: Any,
    ) -> None:
        self.both(
            "import_session",
            agent,
            session,
            batch,
            metadata=metadata,
            created_at=created_at,
            updated_at=updated_at,
        )

    @initialize(conversations=st.lists(legacy_conversations, max_size=4))
    def start_with_legacy_rows(self, conversations: list[tuple[Any, ...]]) -> None:
        """Most sequences start from conversations an older version stored."""
        for conversation in conversations:
            self.store_legacy(*conversation)

    @rule(conversation=legacy_conversations)
    def legacy(self, conversation: tuple[Any, ...]) -> None:
        self.store_legacy(*conversation)

    def store_legacy(
        self, agent: str, session: str, batch: list[Any], metadata: Any, when: datetime
    ) -> None:
        """A conversation an older version stored (SQL on PostgreSQL), under ids writes refuse."""
        try:  # as stored: each message valid, ids unique, a time each
            stream = MessageStream(max_content_chars=MAX_CONTENT)
            stored = [stream.check(m) for m in batch]
        except AgentcoreError:
            return
        if self.run(self.memory.get_session(agent, session)):
            return
        stamped = [m.model_copy(update={"created_at": m.created_at or when}) for m in stored]
        for repo in (self.memory, self.postgres):
            self.run(
                store_legacy_conversation(
                    repo, agent, session, stamped, metadata=metadata, when=when
                )
            )
        self.legacy_keys.add((agent, session))
        FIGURES["whole surface: legacy conversations stored with SQL"] += 1

    @precondition(lambda self: self.legacy_keys)
    @rule(
        pick=st.integers(0, 2**16),
        owner=st.sampled_from([None, None, None, "ann"]),
        limit=st.sampled_from([1, 2]),
        sync=st.booleans(),
    )
    def walk_legacy(self, pick: int, owner: str | None, limit: int, sync: bool) -> None:
        """Page, to the end, over an agent's conversations so that a page ends on a legacy one.

        The page size is chosen so that the first page ends on a legacy
        conversation that has a successor (its cursor then holds a legacy id),
        when the agent has one; else pages of ``limit``. Then each legacy
        conversation is read backwards, a message a page.
        """
        keys = sorted(self.legacy_keys)
        agent = keys[pick % len(keys)][0]
        listed = self.run(self.memory.list_sessions_page(agent, owner=owner, limit=10_000))
        order = [s.session_id for s in listed.sessions]
        ends = [n + 1 for n, session in enumerate(order[:-1]) if (agent, session) in keys]
        if ends:
            limit = ends[pick % len(ends)]
            FIGURES["whole surface: pages ended on a legacy conversation"] += 1
        self.walk_sessions(agent, owner, limit, sync)
        for legacy_agent, session in keys:
            if legacy_agent == agent:
                self.walk_history(agent, session, 1)
        FIGURES["whole surface: pages walked over legacy conversations"] += 1

    # --- export / import ---------------------------------------------------------

    @rule()
    def restore_into_postgres(self) -> None:
        """PostgreSQL's export, imported into an empty PostgreSQL, exports the same bytes."""
        first = self.run(_exported(self.postgres))
        restore = self.stores.restore
        target = PostgresHistoryRepository(restore.pool, max_content_chars=MAX_CONTENT)
        try:
            report = restore.run(import_jsonl(target, io.BytesIO(first)))
            assert restore.run(_exported(target)) == first
            assert report.refused_sessions == 0, report
            again = restore.run(import_jsonl(target, io.BytesIO(first)))
            assert again.skipped_sessions == report.sessions, again
        finally:
            restore.run(restore.reset())
        FIGURES["whole surface: exports restored into an empty PostgreSQL"] += 1

    @rule(agent=st.none() | agents, session=st.none() | read_sessions)
    def export_some(self, agent: Any, session: Any) -> None:
        """An export of one agent or conversation: the same lines, but for the times."""

        def export(repo: Any) -> Callable[[], Any]:
            def lines() -> Any:
                out = io.StringIO()
                report = self.run(export_jsonl(repo, out, agent_name=agent, session_id=session))
                records = [json.loads(line) for line in out.getvalue().split("\n") if line]
                for record in records:
                    for key in ("created_at", "updated_at"):
                        if isinstance(record.get(key), str):
                            record[key] = _given(datetime.fromisoformat(record[key]))
                    message = record.get("message")
                    if message and message.get("created_at"):
                        message["created_at"] = _given(
                            datetime.fromisoformat(message["created_at"])
                        )
                return (report, exact_json(records))

            return lines

        self.same("export_jsonl", [export(self.memory), export(self.postgres)])

    # --- the bridges -------------------------------------------------------------

    @rule(session=sessions, items=sdk_batches, limit=st.sampled_from([None, -1, 0, 2]))
    def sdk_session(self, session: Any, items: list[Any], limit: Any) -> None:
        """The OpenAI Agents SDK's calls, as a run makes them."""
        bridges = [AgentcoreSession(session, repo, agent_name="bot") for _, repo, _ in self.faces()]
        self.same("add_items", [self.awaited(b.add_items, items) for b in bridges])
        self.same("get_items", [self.awaited(b.get_items, limit) for b in bridges])
        FIGURES["whole surface: SDK session calls"] += 2

    @rule(session=sessions, clear=st.booleans())
    def sdk_pop_or_clear(self, session: Any, clear: bool) -> None:
        bridges = [AgentcoreSession(session, repo, agent_name="bot") for _, repo, _ in self.faces()]
        method = "clear_session" if clear else "pop_item"
        self.same(method, [self.awaited(getattr(b, method)) for b in bridges])
        FIGURES["whole surface: SDK session calls"] += 1

    @rule(session=sessions, batch=st.lists(langchain_messages(), max_size=3), clear=st.booleans())
    def langchain_history(self, session: Any, batch: list[BaseMessage], clear: bool) -> None:
        """LangChain's sync calls, over each store's sync face."""
        histories = [
            AgentcoreChatMessageHistory(session, face, agent_name="bot")
            for _, _, face in self.faces()
        ]
        self.same("add_messages", [partial(h.add_messages, batch) for h in histories])
        self.same("messages", [partial(getattr, h, "messages") for h in histories])
        if clear:
            self.same("clear", [h.clear for h in histories])
        FIGURES["whole surface: LangChain history calls"] += 2 + clear

    # --- interrupted calls -------------------------------------------------------

    @rule(
        operation=st.sampled_from(sorted(INTERRUPTIBLE)),
        session=st.sampled_from(SESSIONS),
        batch=batches,
        after=st.sampled_from([0.0, 0.0005, 0.001, 0.003, 0.01]),
        yields=st.none() | st.integers(0, 30),
    )
    def interrupted(
        self, operation: str, session: str, batch: list[Any], after: float, yields: int | None
    ) -> None:
        """A PostgreSQL call cancelled mid-way: all or nothing, and the pool serves on.

        Cancelled by ``asyncio.wait_for`` after ``after`` seconds, or with
        ``task.cancel()`` after ``yields`` turns of the event loop.
        """

        def call(repo: Any) -> Any:
            return interruptible(repo, operation, session, batch)

        async def cancelled(turns: int) -> Any:
            task = asyncio.ensure_future(call(self.postgres))
            for _ in range(turns):
                await asyncio.sleep(0)
            task.cancel()
            try:
                return await task
            except asyncio.CancelledError:
                raise TimeoutError from None

        before = self.state(self.postgres)
        try:
            if yields is None:
                self.run(asyncio.wait_for(call(self.postgres), timeout=after))
            else:
                self.run(cancelled(yields))
            interrupted = False
        except TimeoutError:
            FIGURES["whole surface: PostgreSQL calls interrupted"] += 1
            interrupted = True
        except AgentcoreError:
            interrupted = False
        now = self.state(self.postgres)
        if interrupted and now == before:
            event("interrupted: nothing stored")
            return
        # Stored whole (or not interrupted at all): the fake does the same.
        observed(lambda: self.run(call(self.memory)))
        if interrupted:
            event("interrupted: stored whole")

    # --- invariants ----------------------------------------------------------------

    def state(self, repo: Any) -> Any:
        async def everything() -> Any:
            infos = sorted(
                [s async for s in repo.iter_sessions(batch_size=3)],
                key=lambda s: (s.agent_name, s.session_id),
            )
            return [
                (
                    _session(s),
                    [
                        _message(m)
                        async for m in repo.iter_history(s.agent_name, s.session_id, batch_size=2)
                    ],
                )
                for s in infos
            ]

        return self.run(everything())

    @invariant()
    def the_same_state_everywhere(self) -> None:
        want, got = self.state(self.memory), self.state(self.postgres)
        assert got == want, f"state: postgres {got!r}, memory {want!r}"

    @invariant()
    def export_import_export_is_exact(self) -> None:
        memory_file, memory_again, memory_report = self.run(_round_trip(self.memory))
        postgres_file, postgres_again, postgres_report = self.run(_round_trip(self.postgres))
        assert memory_again == memory_file
        assert postgres_again == postgres_file
        assert memory_report == postgres_report
        assert memory_report.refused_sessions == 0, memory_report
        FIGURES["whole surface: export-import-export round trips"] += 2

    @invariant()
    def every_pool_serves_the_next_call(self) -> None:
        for _ in range(3):  # the pool's two connections at least once each
            assert self.run(self.postgres.get_session("bot", "no such session")) is None
        assert self.stores.sync_postgres.get_session("bot", "no such session") is None
        stats = self.stores.runner.pool.get_stats()
        assert stats.get("pool_size", 0) <= 2, stats


@pytest.fixture
def stores(pg_server: PgServer) -> Iterator[Stores]:
    with fresh_database(pg_server) as dsn, fresh_database(pg_server) as restore_dsn:
        stores = Stores(dsn, restore_dsn)
        try:
            yield stores
        finally:
            stores.close()


def budget() -> settings:
    """A twentieth of the profile's sequences, twice its steps (``ci``: 15 of up to 40)."""
    profile = settings()
    return settings(
        profile,
        max_examples=max(1, profile.max_examples // 20),
        stateful_step_count=2 * profile.stateful_step_count,
    )


def test_every_face_of_the_fake_and_postgres_agrees_at_the_edges(stores: Stores) -> None:
    WholeSurface.stores = stores
    run_state_machine_as_test(WholeSurface, settings=budget())
