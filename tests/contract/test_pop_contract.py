"""pop_message: remove and return a conversation's last message, atomically."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from agentcore import HistoryRepository, InvalidIdentifierError
from agentcore.repository import HistoryEditing, HistoryImport, SessionLifecycle, TurnStore

pytestmark = pytest.mark.port.with_args(
    HistoryEditing, uses=(TurnStore, SessionLifecycle, HistoryImport)
)

A = "support-bot"


def user(text: str, **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": text, **extra}


async def contents(repo: HistoryRepository, session: str) -> list[str | None]:
    return [m.content for m in await repo.load_history(A, session)]


async def test_pop_of_an_unknown_conversation_returns_none(repo: HistoryRepository) -> None:
    assert await repo.pop_message(A, "nobody") is None


async def test_pop_returns_the_last_message_and_removes_it(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [user("m0"), user("m1"), user("m2")])
    popped = await repo.pop_message(A, "s")
    assert popped is not None and popped.content == "m2"
    assert await contents(repo, "s") == ["m0", "m1"]


async def test_popped_message_equals_the_stored_one(repo: HistoryRepository) -> None:
    await repo.append_messages(
        A,
        "s",
        [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}],
                "metadata": {"b": 1.5, "a": [1, "x"]},
                "id": "msg-1",
                "name": "bot",
            }
        ],
    )
    [stored] = await repo.load_history(A, "s")
    assert await repo.pop_message(A, "s") == stored


async def test_popping_everything_then_more_returns_none(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [user("m0"), user("m1")])
    popped = [await repo.pop_message(A, "s") for _ in range(3)]
    assert [m.content if m else None for m in popped] == ["m1", "m0", None]
    assert await repo.load_history(A, "s") == []
    [info] = await repo.list_sessions(A)
    assert (info.session_id, info.message_count) == ("s", 0)


async def test_append_after_pop_continues_in_order(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [user("m0"), user("m1")])
    await repo.pop_message(A, "s")
    await repo.append_messages(A, "s", [user("m2"), user("m3")])
    assert await contents(repo, "s") == ["m0", "m2", "m3"]
    [info] = await repo.list_sessions(A)
    assert info.message_count == 3


async def test_a_popped_id_can_be_stored_again(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [user("m0", id="x")])
    await repo.pop_message(A, "s")
    assert await repo.append_messages(A, "s", [user("again", id="x")]) == 1
    assert await contents(repo, "s") == ["again"]


async def test_pop_touches_only_its_conversation(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s1", [user("a")])
    await repo.append_messages(A, "s2", [user("b")])
    await repo.append_messages("other-agent", "s1", [user("c")])
    await repo.pop_message(A, "s1")
    assert await contents(repo, "s2") == ["b"]
    assert [m.content for m in await repo.load_history("other-agent", "s1")] == ["c"]


async def test_pop_moves_an_idle_conversation_to_most_recent(repo: HistoryRepository) -> None:
    # A write moves updated_at once it is more than a minute old (as an append
    # does, test_session_updates_contract.py), so the pop reorders the listing.
    long_ago = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    await repo.import_session(A, "old", [user("a"), user("b")], updated_at=long_ago)
    await repo.append_messages(A, "new", [user("c")])
    await repo.pop_message(A, "old")
    assert [s.session_id for s in await repo.list_sessions(A)] == ["old", "new"]


@pytest.mark.parametrize(
    ("agent", "session", "what"),
    [
        ("", "s", "agent_name"),
        (A, "", "session_id"),
        (A, None, "session_id"),
        (A, "x\x00", "session_id"),
    ],
)
async def test_pop_rejects_bad_ids(
    repo: HistoryRepository, agent: Any, session: Any, what: str
) -> None:
    with pytest.raises(InvalidIdentifierError, match=what):
        await repo.pop_message(agent, session)


async def test_concurrent_pops_return_distinct_messages(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [user(f"m{i}") for i in range(12)])
    popped = await asyncio.gather(*(repo.pop_message(A, "s") for _ in range(16)))
    got = [m.content for m in popped if m is not None]
    assert sorted(cast(list[str], got)) == sorted(f"m{i}" for i in range(12))
    assert popped.count(None) == 4
    assert await repo.load_history(A, "s") == []


async def test_appends_racing_pops_are_never_lost(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [user(f"seed{i}") for i in range(8)])
    added = [f"new{i}" for i in range(8)]

    async def pop() -> list[str | None]:
        message = await repo.pop_message(A, "s")
        return [] if message is None else [message.content]

    async def append(text: str) -> list[str | None]:
        await repo.append_messages(A, "s", [user(text)])
        return []

    calls = [c for i in range(8) for c in (pop(), append(added[i]))]
    popped = [text for result in await asyncio.gather(*calls) for text in result]
    remaining = await contents(repo, "s")
    everything = [f"seed{i}" for i in range(8)] + added
    assert sorted(cast(list[str], [*popped, *remaining])) == sorted(everything)
    assert len(popped) == 8
    [info] = await repo.list_sessions(A)
    assert info.message_count == len(remaining) == 8
    # The counter and the rows agree: the next append lands after the rest.
    await repo.append_messages(A, "s", [user("last")])
    assert (await contents(repo, "s"))[-1] == "last"
