"""``get_message``: a stored message found by its id, on every repository."""

from __future__ import annotations

from typing import Any

import pytest

from agentcore import HistoryRepository, InvalidIdentifierError
from agentcore.repository import HistoryEditing, SessionLifecycle, TurnStore

pytestmark = pytest.mark.port.with_args(TurnStore, uses=(HistoryEditing, SessionLifecycle))

A = "support-bot"


async def test_get_message_returns_the_stored_message_as_load_history_does(
    repo: HistoryRepository,
) -> None:
    await repo.append_messages(
        A,
        "s",
        [
            {"role": "user", "content": "first", "id": "m1"},
            {"role": "assistant", "content": "plain"},
            {"role": "user", "content": "third", "id": "m3", "metadata": {"b": 1, "a": [2]}},
        ],
    )
    loaded = await repo.load_history(A, "s")

    assert await repo.get_message(A, "s", "m1") == loaded[0]
    assert await repo.get_message(A, "s", "m3") == loaded[2]


async def test_get_message_finds_a_message_beyond_any_window(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [{"role": "user", "content": "old", "id": "old"}])
    await repo.append_messages(A, "s", [{"role": "user", "content": f"m{i}"} for i in range(30)])

    found = await repo.get_message(A, "s", "old")

    assert found is not None and found.content == "old"


async def test_get_message_is_none_for_unknown_ids_sessions_and_agents(
    repo: HistoryRepository,
) -> None:
    await repo.append_messages(A, "s", [{"role": "user", "content": "x", "id": "m1"}])

    assert await repo.get_message(A, "s", "m2") is None
    assert await repo.get_message(A, "other", "m1") is None
    assert await repo.get_message("other-agent", "s", "m1") is None


async def test_get_message_follows_a_replace_and_a_clear(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [{"role": "user", "content": "x", "id": "m1"}])
    await repo.save_full_history(
        A,
        "s",
        [{"role": "user", "content": "new", "id": "m2"}, {"role": "user", "content": "y"}],
    )
    assert await repo.get_message(A, "s", "m1") is None
    found = await repo.get_message(A, "s", "m2")
    assert found is not None and found.content == "new"

    await repo.clear_session(A, "s")
    assert await repo.get_message(A, "s", "m2") is None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("", "s", "m"), "agent_name must not be empty"),
        ((A, None, "m"), "session_id must be a string, got NoneType"),
        ((A, "s", ""), "message_id must not be empty"),
        ((A, "s", "m" * 256), "message_id is 256 characters long"),
        ((A, "s", "m\x00"), "message_id must not contain a NUL byte"),
        ((A, "s", 5), "message_id must be a string, got int"),
    ],
)
async def test_get_message_rejects_bad_ids(
    repo: HistoryRepository, args: tuple[Any, ...], says: str
) -> None:
    with pytest.raises(InvalidIdentifierError) as raised:
        await repo.get_message(*args)
    assert says in str(raised.value)


async def test_list_sessions_without_limit_lists_every_session(repo: HistoryRepository) -> None:
    for i in range(101):
        await repo.append_messages(A, f"s{i:03}", [{"role": "user", "content": "x"}])

    assert len(await repo.list_sessions(A)) == 100  # the default bound
    assert len(await repo.list_sessions(A, limit=None)) == 101
