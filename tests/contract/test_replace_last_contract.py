"""replace_last_messages: replace a conversation's tail if it is unchanged (compare-and-swap)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentcore import (
    HistoryRepository,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidMessageError,
    Message,
)
from agentcore.repository import HistoryEditing, SessionLifecycle, TurnStore

pytestmark = pytest.mark.port.with_args(HistoryEditing, uses=(TurnStore, SessionLifecycle))

A = "support-bot"


def user(text: str, **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": text, **extra}


async def contents(repo: HistoryRepository, session: str) -> list[str | None]:
    return [m.content for m in await repo.load_history(A, session)]


async def state(repo: HistoryRepository, session: str) -> tuple[Any, ...]:
    """Everything observable about one conversation (messages, summary, metadata)."""
    return (await repo.load_history(A, session), await repo.get_session(A, session))


async def test_replaces_the_last_messages_in_their_place(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [user(f"m{i}") for i in range(5)])
    tail = await repo.load_history(A, "s", limit=2)
    assert await repo.replace_last_messages(A, "s", tail, [user("summary"), user("kept")])
    assert await contents(repo, "s") == ["m0", "m1", "m2", "summary", "kept"]
    info = await repo.get_session(A, "s")
    assert info is not None and info.message_count == 5
    # The counter and the rows agree: the next append lands last.
    await repo.append_messages(A, "s", [user("next")])
    assert await contents(repo, "s") == ["m0", "m1", "m2", "summary", "kept", "next"]


async def test_fewer_messages_than_replaced_shrink_the_conversation(
    repo: HistoryRepository,
) -> None:
    await repo.append_messages(A, "s", [user(f"m{i}") for i in range(6)])
    tail = await repo.load_history(A, "s", limit=4)
    assert await repo.replace_last_messages(A, "s", tail, [user("summary")])
    assert await contents(repo, "s") == ["m0", "m1", "summary"]
    [info] = await repo.list_sessions(A)
    assert info.message_count == 3
    await repo.append_messages(A, "s", [user("next"), user("after")])
    assert await contents(repo, "s") == ["m0", "m1", "summary", "next", "after"]
    page = await repo.load_history_page(A, "s", limit=2)
    assert [m.content for m in page.messages] == ["next", "after"]


async def test_no_messages_removes_the_tail(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [user(f"m{i}") for i in range(3)])
    tail = await repo.load_history(A, "s", limit=2)
    assert await repo.replace_last_messages(A, "s", tail, [])
    assert await contents(repo, "s") == ["m0"]
    assert await repo.pop_message(A, "s") is not None
    assert await repo.pop_message(A, "s") is None


async def test_the_whole_history_as_expected_replaces_the_conversation(
    repo: HistoryRepository,
) -> None:
    await repo.append_messages(A, "s", [user(f"m{i}") for i in range(4)])
    await repo.set_session_metadata(A, "s", {"owner": "alice"})
    everything = await repo.load_history(A, "s")
    assert await repo.replace_last_messages(A, "s", everything, [user("summary")])
    assert await contents(repo, "s") == ["summary"]
    info = await repo.get_session(A, "s")
    assert info is not None and info.metadata == {"owner": "alice"}
    # Emptying it leaves an empty conversation, as popping every message does.
    assert await repo.replace_last_messages(A, "s", await repo.load_history(A, "s"), [])
    assert await repo.load_history(A, "s") == []
    [info] = await repo.list_sessions(A)
    assert info.message_count == 0


async def test_nothing_expected_appends(repo: HistoryRepository) -> None:
    assert await repo.replace_last_messages(A, "new", [], [user("first")])
    assert await repo.replace_last_messages(A, "new", [], [user("second")])
    assert await contents(repo, "new") == ["first", "second"]
    assert await repo.replace_last_messages(A, "new", [], [])
    assert await repo.replace_last_messages(A, "none", [], [])
    assert await repo.get_session(A, "none") is None


async def test_a_stale_tail_changes_nothing(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [user(f"m{i}") for i in range(4)])
    tail = await repo.load_history(A, "s", limit=2)
    await repo.append_messages(A, "s", [user("newer")])
    before = await state(repo, "s")
    assert not await repo.replace_last_messages(A, "s", tail, [user("summary")])
    assert await state(repo, "s") == before


async def test_a_popped_tail_is_stale(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [user(f"m{i}") for i in range(4)])
    tail = await repo.load_history(A, "s", limit=2)
    await repo.pop_message(A, "s")
    before = await state(repo, "s")
    assert not await repo.replace_last_messages(A, "s", tail, [user("summary")])
    assert await state(repo, "s") == before


async def test_a_tail_replaced_by_another_caller_is_stale(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [user(f"m{i}") for i in range(4)])
    tail = await repo.load_history(A, "s", limit=2)
    # The same contents written again are other messages (other times).
    same = [m.model_copy(update={"created_at": None}) for m in tail]
    assert await repo.replace_last_messages(A, "s", tail, same)
    assert await contents(repo, "s") == ["m0", "m1", "m2", "m3"]
    before = await state(repo, "s")
    assert not await repo.replace_last_messages(A, "s", tail, [user("summary")])
    assert await state(repo, "s") == before


@pytest.mark.parametrize("change", ["content", "longer", "other-conversation", "reordered"])
async def test_an_expected_tail_that_is_not_the_stored_one_changes_nothing(
    repo: HistoryRepository, change: str
) -> None:
    await repo.append_messages(A, "s", [user(f"m{i}") for i in range(3)])
    await repo.append_messages(A, "t", [user(f"m{i}") for i in range(3)])
    tail = await repo.load_history(A, "s", limit=2)
    if change == "content":
        tail[0] = tail[0].model_copy(update={"content": "m1!"})
    elif change == "longer":
        tail = [*await repo.load_history(A, "s"), *tail]
    elif change == "other-conversation":
        tail = await repo.load_history(A, "t", limit=2)
    else:
        tail.reverse()
    before = await state(repo, "s")
    assert not await repo.replace_last_messages(A, "s", tail, [user("summary")])
    assert await state(repo, "s") == before


async def test_an_unknown_conversation_is_not_created(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [user("m0")])
    tail = await repo.load_history(A, "s")
    assert not await repo.replace_last_messages(A, "unknown", tail, [user("summary")])
    assert await repo.get_session(A, "unknown") is None
    assert not await repo.replace_last_messages("other-agent", "s", tail, [user("summary")])
    assert await repo.get_session("other-agent", "s") is None


async def test_replaced_ids_can_be_stored_again_and_kept_ids_are_skipped(
    repo: HistoryRepository,
) -> None:
    await repo.append_messages(A, "s", [user("m0", id="a"), user("m1", id="b")])
    tail = await repo.load_history(A, "s", limit=1)
    replacement = [user("kept-id", id="a"), user("again", id="b"), user("new", id="c")]
    assert await repo.replace_last_messages(A, "s", tail, replacement)
    assert await contents(repo, "s") == ["m0", "again", "new"]
    stored = await repo.get_message(A, "s", "b")
    assert stored is not None and stored.content == "again"
    # A retry of the same call is stale: the replacement is stored once.
    assert not await repo.replace_last_messages(A, "s", tail, replacement)
    assert await contents(repo, "s") == ["m0", "again", "new"]


async def test_the_replacement_keeps_every_field(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [user("m0"), user("m1")])
    item = {"type": "compaction", "encrypted_content": "x", "score": 1e16, "n": [1.0, 2]}
    given = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}],
        "metadata": {"b": 1.5},
        "id": "summary-1",
        "name": "bot",
        "item": item,
        "created_at": "2024-05-01T10:00:00+02:00",
    }
    assert await repo.replace_last_messages(A, "s", await repo.load_history(A, "s", 1), [given])
    [_, stored] = await repo.load_history(A, "s")
    assert stored == Message.model_validate(given)
    assert stored.item == item and isinstance(stored.item["score"], float)


async def test_a_tail_of_exact_items_compares_equal(repo: HistoryRepository) -> None:
    items = [
        {"role": "user", "item": {"role": "user", "content": "hi", "x": 1e16}},
        {"role": "assistant", "item": {"type": "reasoning", "summary": [], "f": 0.1}},
    ]
    await repo.append_messages(A, "s", items)
    tail = await repo.load_history(A, "s", limit=2)
    assert await repo.replace_last_messages(A, "s", tail, [{"role": "user", "item": {"k": 2.5}}])
    [only] = await repo.load_history(A, "s")
    assert only.item == {"k": 2.5}


async def test_replace_touches_only_its_conversation(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s1", [user("a"), user("b")])
    await repo.append_messages(A, "s2", [user("a"), user("b")])
    await repo.append_messages("other-agent", "s1", [user("a"), user("b")])
    assert await repo.replace_last_messages(A, "s1", await repo.load_history(A, "s1", 1), [])
    assert await contents(repo, "s2") == ["a", "b"]
    assert [m.content for m in await repo.load_history("other-agent", "s1")] == ["a", "b"]


@pytest.mark.parametrize(
    ("agent", "session", "what"),
    [
        ("", "s", "agent_name"),
        (A, "", "session_id"),
        (A, None, "session_id"),
        (A, "x\x00", "session_id"),
        (A, "line\nbreak", "session_id"),
        (7, "s", "agent_name"),
    ],
)
async def test_bad_ids_are_rejected(
    repo: HistoryRepository, agent: Any, session: Any, what: str
) -> None:
    with pytest.raises(InvalidIdentifierError, match=what):
        await repo.replace_last_messages(agent, session, [], [user("x")])


@pytest.mark.parametrize(
    ("expected", "error"),
    [
        ("m0", r"expected must be a list of Message objects \(as load_history returns them\)"),
        ({"role": "user"}, r"expected must be a list of Message objects .*got dict"),
        (None, r"expected must be a list of Message objects .*got NoneType"),
        ([{"role": "user", "content": "m0"}], r"expected\[0\] must be a Message .*got dict"),
    ],
)
async def test_a_bad_expected_tail_is_rejected_and_nothing_is_written(
    repo: HistoryRepository, expected: Any, error: str
) -> None:
    await repo.append_messages(A, "s", [user("m0")])
    before = await state(repo, "s")
    with pytest.raises(InvalidInputError, match=error):
        await repo.replace_last_messages(A, "s", expected, [user("summary")])
    assert await state(repo, "s") == before


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([user("ok"), {"role": "robot", "content": "x"}], r"messages\[1\] is invalid"),
        ([user("ok"), user("nul\x00")], r"messages\[1\]\.content"),
        ([user("a", id="x"), user("b", id="x")], r"messages\[1\]: id 'x' repeats messages\[0\]"),
        ("not a list", "messages must be a list of messages"),
    ],
)
async def test_bad_messages_are_rejected_and_nothing_is_written(
    repo: HistoryRepository, messages: Any, error: str
) -> None:
    await repo.append_messages(A, "s", [user("m0"), user("m1")])
    tail = await repo.load_history(A, "s", limit=1)
    before = await state(repo, "s")
    with pytest.raises(InvalidMessageError, match=error):
        await repo.replace_last_messages(A, "s", tail, messages)
    assert await state(repo, "s") == before


async def test_concurrent_replaces_of_one_tail_let_exactly_one_win(
    repo: HistoryRepository,
) -> None:
    await repo.append_messages(A, "s", [user(f"m{i}") for i in range(5)])
    tail = await repo.load_history(A, "s", limit=3)
    results = await asyncio.gather(
        *(repo.replace_last_messages(A, "s", tail, [user(f"summary{k}")]) for k in range(8))
    )
    assert results.count(True) == 1
    winner = results.index(True)
    assert await contents(repo, "s") == ["m0", "m1", f"summary{winner}"]


async def test_appends_racing_replaces_are_never_lost(repo: HistoryRepository) -> None:
    """Every appended message is still stored, or was in a tail that a replace saw."""
    await repo.append_messages(A, "s", [user(f"seed{i}") for i in range(4)])
    appended = [f"new{i}" for i in range(16)]
    summarised: list[str | None] = []

    async def compact(k: int) -> None:
        for attempt in range(6):
            tail = await repo.load_history(A, "s", limit=2)
            if await repo.replace_last_messages(A, "s", tail, [user(f"sum{k}-{attempt}")]):
                summarised.extend(m.content for m in tail)

    async def append(text: str) -> None:
        await repo.append_messages(A, "s", [user(text)])

    await asyncio.gather(*(append(t) for t in appended[:8]), compact(0), compact(1))
    await asyncio.gather(*(append(t) for t in appended[8:]), compact(2))
    remaining = await contents(repo, "s")
    for text in appended:
        assert (text in remaining) != (text in summarised), text
    [info] = await repo.list_sessions(A)
    assert info.message_count == len(remaining)
    await repo.append_messages(A, "s", [user("last")])
    assert (await contents(repo, "s"))[-1] == "last"


async def test_pops_racing_replaces_leave_a_consistent_conversation(
    repo: HistoryRepository,
) -> None:
    await repo.append_messages(A, "s", [user(f"m{i}") for i in range(12)])

    async def compact(k: int) -> bool:
        tail = await repo.load_history(A, "s", limit=2)
        return await repo.replace_last_messages(A, "s", tail, [user(f"sum{k}")])

    calls = [c for k in range(6) for c in (compact(k), repo.pop_message(A, "s"))]
    await asyncio.gather(*calls)
    remaining = await repo.load_history(A, "s")
    [info] = await repo.list_sessions(A)
    assert info.message_count == len(remaining)
    page = await repo.load_history_page(A, "s", limit=1000)
    assert page.messages == remaining
    await repo.append_messages(A, "s", [user("last")])
    assert (await contents(repo, "s"))[-1] == "last"
