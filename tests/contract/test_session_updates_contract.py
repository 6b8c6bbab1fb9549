"""updated_at moves only when it is more than a minute old, in both repositories.

Moving it on every write made every update of PostgreSQL's conversation row a
non-HOT update (updated_at is indexed). Listing order and idleness are
therefore exact to the minute, and a purge never removes a conversation
written within ``idle_for``, however small ``idle_for`` is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agentcore import HistoryRepository, Message
from agentcore.models import PurgeReport
from agentcore.repository import HistoryEditing, HistoryImport, SessionLifecycle, TurnStore

pytestmark = pytest.mark.port.with_args(
    SessionLifecycle, uses=(TurnStore, HistoryEditing, HistoryImport)
)

A = "agent"
LONG_AGO = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def user(text: str) -> Message:
    return Message(role="user", content=text)


async def test_writes_within_a_minute_keep_updated_at(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s", [user("one")])
    info = await repo.get_session(A, "s")
    assert info is not None
    await repo.append_messages(A, "s", [user("two")])
    await repo.save_full_history(A, "s", [user("one"), user("two"), user("three")])
    stored = await repo.load_history(A, "s")
    assert await repo.replace_last_messages(A, "s", stored[-1:], [user("3")])
    popped = await repo.pop_message(A, "s")
    assert popped is not None and popped.content == "3"
    again = await repo.get_session(A, "s")
    assert again is not None
    assert (again.message_count, again.updated_at) == (2, info.updated_at)


@pytest.mark.parametrize("write", ["append", "save_full_history", "pop", "replace"])
async def test_a_write_moves_updated_at_older_than_a_minute(
    repo: HistoryRepository, write: str
) -> None:
    await repo.import_session(A, "s", [user("old")], updated_at=LONG_AGO)
    before = datetime.now(UTC)
    if write == "append":
        await repo.append_messages(A, "s", [user("new")])
    elif write == "pop":
        assert await repo.pop_message(A, "s") is not None
    elif write == "replace":
        stored = await repo.load_history(A, "s")
        assert await repo.replace_last_messages(A, "s", stored, [user("new")])
    else:
        await repo.save_full_history(A, "s", [user("new")])
    info = await repo.get_session(A, "s")
    assert info is not None
    assert info.updated_at >= before - timedelta(seconds=5)  # the server's clock may lag a bit


@pytest.mark.parametrize("idle_for", [timedelta(0), timedelta(seconds=30), timedelta(seconds=59)])
async def test_a_conversation_written_within_idle_for_is_never_purged(
    repo: HistoryRepository, idle_for: timedelta
) -> None:
    # updated_at 50 s old, and written again just now (which keeps it): the
    # conversation is not idle, even though its updated_at is older than idle_for.
    recent = datetime.now(UTC) - timedelta(seconds=50)
    await repo.import_session(A, "busy", [user("a")], updated_at=recent)
    await repo.append_messages(A, "busy", [user("b")])
    await repo.import_session(A, "idle", [user("a")], updated_at=LONG_AGO)
    assert await repo.purge_idle_sessions(idle_for, pause=0) == PurgeReport(
        sessions=1, messages=1
    )
    assert [m.content for m in await repo.load_history(A, "busy")] == ["a", "b"]
    assert await repo.get_session(A, "idle") is None
