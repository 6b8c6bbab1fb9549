"""The behaviour every HistoryRepository keeps, run against each implementation."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from agentcore import (
    HistoryRepository,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidMessageError,
    Message,
)
from agentcore.repository import HistoryEditing, HistoryImport, SessionLifecycle, TurnStore

pytestmark = pytest.mark.port.with_args(
    TurnStore, HistoryEditing, uses=(SessionLifecycle, HistoryImport)
)

A = "support-bot"


def user(text: str, **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": text, **extra}


def texts(messages: list[Message]) -> list[str | None]:
    return [m.content for m in messages]


async def seed(repo: HistoryRepository, session: str, n: int, agent: str = A) -> None:
    await repo.append_messages(agent, session, [user(f"m{i}") for i in range(n)])


# --- reading -----------------------------------------------------------------


async def test_unknown_conversation_loads_empty(repo: HistoryRepository) -> None:
    assert await repo.load_history(A, "nobody") == []


async def test_load_returns_all_messages_oldest_first(repo: HistoryRepository) -> None:
    await seed(repo, "s", 5)
    assert texts(await repo.load_history(A, "s")) == ["m0", "m1", "m2", "m3", "m4"]


async def test_window_returns_latest_n_oldest_first(repo: HistoryRepository) -> None:
    await seed(repo, "s", 5)
    assert texts(await repo.load_history(A, "s", limit=2)) == ["m3", "m4"]


async def test_limit_larger_than_history_returns_everything(repo: HistoryRepository) -> None:
    await seed(repo, "s", 3)
    assert texts(await repo.load_history(A, "s", limit=50)) == ["m0", "m1", "m2"]


async def test_limit_zero_returns_nothing(repo: HistoryRepository) -> None:
    await seed(repo, "s", 3)
    assert await repo.load_history(A, "s", limit=0) == []


@pytest.mark.parametrize("limit", [-1, 1.5, "3", True])
async def test_bad_limit_is_rejected(repo: HistoryRepository, limit: Any) -> None:
    with pytest.raises(InvalidInputError, match="limit"):
        await repo.load_history(A, "s", limit=limit)


async def test_reading_a_window_never_deletes_older_messages(repo: HistoryRepository) -> None:
    await seed(repo, "s", 5)
    await repo.load_history(A, "s", limit=1)
    await repo.append_messages(A, "s", [user("m5")])
    assert len(await repo.load_history(A, "s")) == 6


# --- no session: warn, never fall back to a shared conversation --------------


async def test_load_without_session_warns_and_returns_empty(
    repo: HistoryRepository, caplog: pytest.LogCaptureFixture
) -> None:
    await seed(repo, "s", 2)
    with caplog.at_level(logging.WARNING, logger="agentcore"):
        assert await repo.load_history(A, None) == []
    assert "without a session_id" in caplog.text


async def test_append_without_session_warns_and_stores_nothing(
    repo: HistoryRepository, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="agentcore"):
        assert await repo.append_messages(A, None, [user("lost")]) == 0
    assert "without a session_id" in caplog.text
    assert await repo.list_sessions(A) == []


async def test_save_without_session_warns_and_stores_nothing(
    repo: HistoryRepository, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="agentcore"):
        await repo.save_full_history(A, None, [user("lost")])
    assert "without a session_id" in caplog.text
    assert await repo.list_sessions(A) == []


# --- appending ---------------------------------------------------------------


async def test_append_adds_after_existing_messages(repo: HistoryRepository) -> None:
    await seed(repo, "s", 2)
    assert await repo.append_messages(A, "s", [user("x"), user("y")]) == 2
    assert texts(await repo.load_history(A, "s")) == ["m0", "m1", "x", "y"]


async def test_empty_append_stores_nothing(repo: HistoryRepository) -> None:
    assert await repo.append_messages(A, "s", []) == 0
    assert await repo.list_sessions(A) == []


async def test_append_with_known_id_is_a_no_op(repo: HistoryRepository) -> None:
    turn = [user("q", id="t1-user"), {"role": "assistant", "content": "a", "id": "t1-reply"}]
    assert await repo.append_messages(A, "s", turn) == 2
    assert await repo.append_messages(A, "s", turn) == 0  # a retry after a timeout
    assert texts(await repo.load_history(A, "s")) == ["q", "a"]


async def test_append_skips_only_the_known_ids(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [user("q", id="1")])
    assert await repo.append_messages(A, "s", [user("q", id="1"), user("r", id="2")]) == 1
    assert texts(await repo.load_history(A, "s")) == ["q", "r"]


async def test_same_id_in_another_session_is_stored(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s1", [user("q", id="1")])
    assert await repo.append_messages(A, "s2", [user("q", id="1")]) == 1


async def test_repeated_id_within_one_batch_is_rejected(repo: HistoryRepository) -> None:
    with pytest.raises(InvalidMessageError, match="repeats"):
        await repo.append_messages(A, "s", [user("a", id="1"), user("b", id="1")])
    assert await repo.load_history(A, "s") == []


async def test_invalid_message_rejects_the_whole_batch(repo: HistoryRepository) -> None:
    await seed(repo, "s", 1)
    with pytest.raises(InvalidMessageError, match=r"messages\[1\].*role"):
        await repo.append_messages(A, "s", [user("ok"), {"role": "robot", "content": "x"}])
    assert texts(await repo.load_history(A, "s")) == ["m0"]


async def test_concurrent_appends_lose_and_duplicate_nothing(repo: HistoryRepository) -> None:
    async def writer(w: int) -> None:
        for t in range(10):
            await repo.append_messages(A, "s", [user(f"{w}:{t}:q"), user(f"{w}:{t}:a")])

    await asyncio.gather(*(writer(w) for w in range(8)))
    stored = texts(await repo.load_history(A, "s"))
    assert len(stored) == 160 and len(set(stored)) == 160
    for w in range(8):  # each writer's turns stay in order, each turn's pair adjacent
        mine = [s for s in stored if s is not None and s.startswith(f"{w}:")]
        assert mine == [f"{w}:{t}:{x}" for t in range(10) for x in ("q", "a")]
        for t in range(10):
            i = stored.index(f"{w}:{t}:q")
            assert stored[i + 1] == f"{w}:{t}:a"


# --- replacing ---------------------------------------------------------------


async def test_save_full_history_replaces_the_conversation(repo: HistoryRepository) -> None:
    await seed(repo, "s", 4)
    await repo.save_full_history(A, "s", [user("only")])
    assert texts(await repo.load_history(A, "s")) == ["only"]
    await repo.append_messages(A, "s", [user("next")])
    assert texts(await repo.load_history(A, "s")) == ["only", "next"]


async def test_save_full_history_creates_a_conversation(repo: HistoryRepository) -> None:
    await repo.save_full_history(A, "new", [user("a"), user("b")])
    assert texts(await repo.load_history(A, "new")) == ["a", "b"]
    [info] = await repo.list_sessions(A)
    assert (info.session_id, info.message_count) == ("new", 2)


async def test_save_empty_history_forgets_the_conversation(repo: HistoryRepository) -> None:
    await seed(repo, "s", 3)
    await repo.save_full_history(A, "s", [])
    assert await repo.load_history(A, "s") == []
    assert await repo.list_sessions(A) == []


async def test_invalid_replacement_leaves_old_conversation_whole(repo: HistoryRepository) -> None:
    await seed(repo, "s", 3)
    with pytest.raises(InvalidMessageError):
        await repo.save_full_history(A, "s", [user("new"), {"role": "user"}])
    assert texts(await repo.load_history(A, "s")) == ["m0", "m1", "m2"]


async def test_ids_reset_with_a_replace(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [user("old", id="1")])
    await repo.save_full_history(A, "s", [user("new", id="2")])
    assert await repo.append_messages(A, "s", [user("old again", id="1")]) == 1
    assert await repo.append_messages(A, "s", [user("dup", id="2")]) == 0


# --- clearing and listing ----------------------------------------------------


async def test_clear_session_returns_count_and_forgets(repo: HistoryRepository) -> None:
    await seed(repo, "s", 3)
    await seed(repo, "keep", 1)
    assert await repo.clear_session(A, "s") == 3
    assert await repo.load_history(A, "s") == []
    assert [s.session_id for s in await repo.list_sessions(A)] == ["keep"]
    assert await repo.clear_session(A, "s") == 0


async def test_cleared_session_starts_over(repo: HistoryRepository) -> None:
    await seed(repo, "s", 3)
    await repo.clear_session(A, "s")
    await repo.append_messages(A, "s", [user("fresh")])
    assert texts(await repo.load_history(A, "s")) == ["fresh"]


async def test_list_sessions_most_recently_written_first(repo: HistoryRepository) -> None:
    # Last written hours apart (updated_at moves only when a minute old).
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    for n, name in enumerate(("first", "second", "third")):
        when = long_ago + timedelta(hours=n)
        await repo.import_session(A, name, [user("m0")], created_at=when, updated_at=when)
    await repo.append_messages(A, "first", [user("again")])
    infos = await repo.list_sessions(A)
    assert [(i.session_id, i.message_count) for i in infos] == [
        ("first", 2),
        ("third", 1),
        ("second", 1),
    ]
    assert all(i.agent_name == A and i.created_at <= i.updated_at for i in infos)
    assert infos[0].updated_at > infos[0].created_at


async def test_list_sessions_respects_limit(repo: HistoryRepository) -> None:
    for i in range(5):
        await seed(repo, f"s{i}", 1)
    assert [s.session_id for s in await repo.list_sessions(A, limit=2)] == ["s4", "s3"]
    assert await repo.list_sessions(A, limit=0) == []
    with pytest.raises(InvalidInputError):
        await repo.list_sessions(A, limit=-1)


async def test_list_sessions_only_shows_that_agents_sessions(repo: HistoryRepository) -> None:
    await seed(repo, "mine", 1)
    await seed(repo, "theirs", 1, agent="other-agent")
    assert [s.session_id for s in await repo.list_sessions(A)] == ["mine"]


# --- isolation ---------------------------------------------------------------


async def test_sessions_of_one_agent_are_isolated(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "alice", [user("alice's secret")])
    await repo.append_messages(A, "bob", [user("bob's question")])
    assert texts(await repo.load_history(A, "alice")) == ["alice's secret"]
    assert texts(await repo.load_history(A, "bob")) == ["bob's question"]


async def test_same_session_id_under_another_agent_is_isolated(repo: HistoryRepository) -> None:
    await repo.append_messages("agent-a", "shared-id", [user("for a")])
    await repo.append_messages("agent-b", "shared-id", [user("for b")])
    await repo.save_full_history("agent-b", "shared-id", [user("b replaced")])
    assert await repo.clear_session("agent-b", "shared-id") == 1
    assert texts(await repo.load_history("agent-a", "shared-id")) == ["for a"]


# --- identifiers -------------------------------------------------------------

BAD_IDS: list[Any] = ["", "   ", "x" * 256, "nul\x00byte", None, 42, b"bytes"]


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_bad_agent_name_is_rejected_everywhere(repo: HistoryRepository, bad: Any) -> None:
    calls = [
        repo.load_history(bad, "s"),
        repo.append_messages(bad, "s", [user("x")]),
        repo.save_full_history(bad, "s", [user("x")]),
        repo.clear_session(bad, "s"),
        repo.list_sessions(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidIdentifierError, match="agent_name"):
            await call


@pytest.mark.parametrize("bad", [b for b in BAD_IDS if b is not None])
async def test_bad_session_id_is_rejected_everywhere(repo: HistoryRepository, bad: Any) -> None:
    calls = [
        repo.load_history(A, bad),
        repo.append_messages(A, bad, [user("x")]),
        repo.save_full_history(A, bad, [user("x")]),
        repo.clear_session(A, bad),
    ]
    for call in calls:
        with pytest.raises(InvalidIdentifierError, match="session_id"):
            await call
    assert await repo.list_sessions(A) == []


@pytest.mark.parametrize(
    "odd",
    [
        "'; DROP TABLE conversation_history; --",
        "%s",
        "%(x)s",
        "$1",
        "a\\b",
        "q\"uo'te",
        "ünïcødé ☃ 🎉",
        "\u200fRTL",
        "x" * 255,
        " padded ",
    ],
)
async def test_unusual_ids_are_stored_verbatim(repo: HistoryRepository, odd: str) -> None:
    await repo.append_messages(odd, odd, [user(odd)])
    assert texts(await repo.load_history(odd, odd)) == [odd]
    assert [s.session_id for s in await repo.list_sessions(odd)] == [odd]
    assert await repo.load_history(A, odd) == []


async def test_message_id_must_be_a_valid_identifier(repo: HistoryRepository) -> None:
    with pytest.raises(InvalidMessageError, match="id"):
        await repo.append_messages(A, "s", [user("x", id="x" * 256)])


# --- message content ---------------------------------------------------------


async def test_every_message_field_round_trips(repo: HistoryRepository) -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    sent: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": "Weather in Oslo?",
            "name": "alice",
            "id": "u1",
            "metadata": {"client": {"ip": "10.0.0.1", "tags": ["a", 1, 2.5, None, True]}},
            "created_at": when,
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "content": '{"temp": -3}', "tool_call_id": "call_1", "name": "weather"},
        {"role": "assistant", "content": "It is -3 °C."},
    ]
    await repo.append_messages(A, "s", sent)
    loaded = await repo.load_history(A, "s")
    for got, want in zip(loaded, sent, strict=True):
        assert got.model_dump(exclude={"created_at"}) == Message.model_validate(want).model_dump(
            exclude={"created_at"}
        )
        assert got.created_at is not None
    assert loaded[1].created_at == when
    assert [m.to_chat_dict() for m in loaded][2]["content"] is None


async def test_created_at_is_set_once_per_write(repo: HistoryRepository) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    await repo.append_messages(A, "s", [user("a"), user("b")])
    a, b = await repo.load_history(A, "s")
    assert a.created_at == b.created_at
    assert a.created_at is not None and a.created_at > before


async def test_unicode_and_large_content_round_trip(repo: HistoryRepository) -> None:
    big = "Ωmega ☃ 🎉 \u200f" * 40_000  # ~400k characters
    await repo.append_messages(A, "s", [user(big), user("'; DROP TABLE x; -- %s $1 \\")])
    loaded = await repo.load_history(A, "s")
    assert texts(loaded) == [big, "'; DROP TABLE x; -- %s $1 \\"]


async def test_oversized_content_is_rejected(repo: HistoryRepository) -> None:
    with pytest.raises(InvalidMessageError, match="limit"):
        await repo.append_messages(A, "s", [user("x" * 1_000_001)])
    assert await repo.list_sessions(A) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"role": "user", "content": "nul\x00"},
        {"role": "user", "content": "x", "metadata": {"k": "nul\x00"}},
        {"role": "user", "content": "x", "metadata": {"k": float("nan")}},
        {"role": "user"},
        {"role": "tool", "content": "result without call id"},
        {"role": "user", "content": "x", "tool_calls": [{"id": "c"}]},
        {"role": "user", "content": "x", "unknown_field": 1},
        {"role": "user", "content": 42},
        {"role": "user", "content": "x", "created_at": "2024-01-01T00:00:00"},
        "not a dict",
    ],
)
async def test_malformed_messages_are_rejected(repo: HistoryRepository, bad: Any) -> None:
    with pytest.raises(InvalidMessageError, match=r"messages\[0\]"):
        await repo.append_messages(A, "s", [bad])
    assert await repo.list_sessions(A) == []


async def test_loaded_messages_are_independent_copies(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [user("x", metadata={"k": [1]})])
    [first] = await repo.load_history(A, "s")
    first.metadata["k"].append(2)  # type: ignore[union-attr]
    [again] = await repo.load_history(A, "s")
    assert again.metadata == {"k": [1]}


# --- edges where PostgreSQL's limits meet Python's ----------------------------


async def test_created_at_with_an_offset_comes_back_as_the_same_instant_in_utc(
    repo: HistoryRepository,
) -> None:
    given = datetime(2020, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=5)))
    await repo.append_messages(A, "s", [user("x", created_at=given)])
    [got] = await repo.load_history(A, "s")
    assert got.created_at == given
    assert got.created_at is not None and got.created_at.tzinfo is UTC
    assert got.created_at.isoformat() == "2020-01-01T07:00:00+00:00"


@pytest.mark.parametrize(
    "when",
    [
        datetime(1, 1, 1, 3, tzinfo=timezone(timedelta(hours=5))),  # before year 1 in UTC
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),  # year 10000 in UTC
        datetime(9999, 12, 28, tzinfo=UTC),  # too close to the end for every time zone
        datetime(1, 1, 5, tzinfo=UTC),  # too close to the start for every time zone
    ],
)
async def test_created_at_outside_the_readable_range_is_rejected(
    repo: HistoryRepository, when: datetime
) -> None:
    with pytest.raises(InvalidMessageError, match=r"created_at must lie between"):
        await repo.append_messages(A, "s", [user("ok"), user("x", created_at=when)])
    assert await repo.list_sessions(A) == []


async def test_limits_beyond_a_bigint_are_rejected(repo: HistoryRepository) -> None:
    await seed(repo, "s", 2)
    assert len(await repo.load_history(A, "s", limit=2**63 - 1)) == 2
    with pytest.raises(InvalidInputError, match="at most"):
        await repo.load_history(A, "s", limit=2**63)
    with pytest.raises(InvalidInputError, match="at most"):
        await repo.list_sessions(A, limit=10**20)


async def test_huge_integers_in_metadata_are_rejected(repo: HistoryRepository) -> None:
    with pytest.raises(InvalidMessageError, match="more than 4000 digits"):
        await repo.append_messages(A, "s", [user("x", metadata={"n": 10**5000})])
    await repo.append_messages(A, "s", [user("x", metadata={"n": 10**3999})])
    [got] = await repo.load_history(A, "s")
    assert got.metadata == {"n": 10**3999}


async def test_a_message_that_skipped_validation_is_checked_again(
    repo: HistoryRepository,
) -> None:
    unchecked = [
        Message.model_construct(role="function", content="x"),  # type: ignore[arg-type]
        Message.model_construct(role="tool", content="no call id"),
        Message.model_construct(role="user", content=None),
    ]
    for message in unchecked:
        with pytest.raises(InvalidMessageError, match=r"messages\[0\] is invalid"):
            await repo.append_messages(A, "s", [message])
        with pytest.raises(InvalidMessageError):
            await repo.save_full_history(A, "s", [message])
    assert await repo.list_sessions(A) == []
