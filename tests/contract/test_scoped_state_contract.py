"""The ScopedStateStore port (migration 0007), on the in-memory fake and PostgreSQL.

A conversation's own state, its owner's and its agent's; messages and state
deltas written together or not at all; revisions that refuse a stale writer;
windows of messages read by count and time; listings that read no message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentcore import (
    InMemoryHistoryRepository,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidMessageError,
    Message,
    NotFoundError,
    PostgresHistoryRepository,
    ScopedStateStore,
    SessionExistsError,
    StaleStateError,
)
from agentcore.repository import HistoryEditing, SessionLifecycle, TurnStore
from tests.conftest import pool_for
from tests.contract.conftest import make_idle
from tests.support import AppRoleServer, PgServer, reused_database

pytestmark = pytest.mark.port.with_args(
    ScopedStateStore, uses=(TurnStore, SessionLifecycle, HistoryEditing)
)

A = "app"
T0 = 1_700_000_000.123456789


@pytest.fixture(params=["memory", "postgres", "postgres-app-role", "postgres-citus"])
async def store(request: pytest.FixtureRequest, pg_server: PgServer) -> AsyncIterator[Any]:
    """The fake, PostgreSQL (as the owner, and as the app role), and a Citus
    cluster's coordinator (session_state co-located with the conversations,
    owner_state and agent_state reference tables: migration 0009)."""
    if request.param == "memory":
        yield InMemoryHistoryRepository()
        return
    if request.param == "postgres-citus":
        async with pool_for(request.getfixturevalue("citus_dsn")) as pool:
            yield PostgresHistoryRepository(pool)
        return
    if request.param == "postgres-app-role":
        app: AppRoleServer = request.getfixturevalue("app_role_server")
        with app.database() as app_dsn:
            async with pool_for(app_dsn) as pool:
                yield PostgresHistoryRepository(pool)
        return
    with reused_database(pg_server) as dsn:
        async with pool_for(dsn) as pool:
            yield PostgresHistoryRepository(pool)


def user(text: str, at: datetime | None = None) -> Message:
    return Message(role="user", content=text, created_at=at)


async def test_both_repositories_are_scoped_state_stores(store: Any) -> None:
    assert isinstance(store, ScopedStateStore)


async def test_create_then_get_gives_the_three_scopes(store: Any) -> None:
    created = await store.create_scoped_session(
        A,
        "s1",
        owner="u1",
        update_time=T0,
        state={"k": 1},
        owner_state={"name": "Ann"},
        agent_state={"v": [1, "x"]},
    )
    assert (created.state, created.owner_state, created.agent_state) == (
        {"k": 1},
        {"name": "Ann"},
        {"v": [1, "x"]},
    )
    assert (created.revision, created.update_time, created.owner) == (0, T0, "u1")
    found = await store.get_scoped_session(A, "s1", owner="u1")
    assert found is not None
    assert found == (created, [])
    info = await store.get_session(A, "s1")
    assert info is not None and info.metadata == {"owner": "u1"} and info.message_count == 0


async def test_create_refuses_an_existing_conversation(store: Any) -> None:
    await store.create_scoped_session(A, "s1", owner="u1", update_time=T0)
    with pytest.raises(SessionExistsError):
        await store.create_scoped_session(A, "s1", owner="u2", update_time=T0)
    await store.append_messages(A, "plain", [user("hi")])
    with pytest.raises(SessionExistsError):
        await store.create_scoped_session(A, "plain", owner="u1", update_time=T0)
    assert await store.get_scoped_session(A, "plain", owner="u1") is None


async def test_append_writes_messages_and_all_deltas(store: Any) -> None:
    await store.create_scoped_session(A, "s1", owner="u1", update_time=T0, state={"a": 1})
    await store.create_scoped_session(A, "s2", owner="u1", update_time=T0)
    await store.create_scoped_session(A, "s3", owner="u2", update_time=T0)
    written = await store.append_with_state(
        A,
        "s1",
        [user("one"), user("two")],
        owner="u1",
        update_time=T0 + 1,
        expected_revision=0,
        state={"b": 2, "a": None},
        owner_state={"seen": True},
        agent_state={"count": 1},
    )
    assert (written.revision, written.update_time) == (1, T0 + 1)
    assert written.state == {"a": None, "b": 2}
    found = await store.get_scoped_session(A, "s1", owner="u1")
    assert found is not None
    scoped, messages = found
    assert scoped == written
    assert [m.content for m in messages] == ["one", "two"]
    same_owner = await store.get_scoped_session(A, "s2", owner="u1")
    other_owner = await store.get_scoped_session(A, "s3", owner="u2")
    assert same_owner is not None and other_owner is not None
    assert same_owner[0].owner_state == {"seen": True} and same_owner[0].state == {}
    assert other_owner[0].owner_state == {}
    assert other_owner[0].agent_state == same_owner[0].agent_state == {"count": 1}
    assert await store.get_owner_state(A, "u1") == {"seen": True}
    assert await store.get_agent_state(A) == {"count": 1}
    assert await store.get_agent_state("other") == {}


async def test_a_stale_revision_writes_nothing(store: Any) -> None:
    await store.create_scoped_session(A, "s1", owner="u1", update_time=T0)
    await store.append_with_state(
        A, "s1", [user("one")], owner="u1", update_time=T0 + 1, expected_revision=0, state={"k": 1}
    )
    with pytest.raises(StaleStateError, match="revision 1, not 0"):
        await store.append_with_state(
            A,
            "s1",
            [user("late")],
            owner="u1",
            update_time=T0 + 2,
            expected_revision=0,
            state={"k": 2},
            owner_state={"x": 1},
            agent_state={"y": 1},
        )
    found = await store.get_scoped_session(A, "s1", owner="u1")
    assert found is not None
    assert [m.content for m in found[1]] == ["one"]
    assert (found[0].state, found[0].revision, found[0].update_time) == ({"k": 1}, 1, T0 + 1)
    assert (found[0].owner_state, found[0].agent_state) == ({}, {})
    # Without an expected revision, the write goes through.
    after = await store.append_with_state(
        A, "s1", [], owner="u1", update_time=T0 + 3, state={"k": 3}
    )
    assert (after.revision, after.state) == (2, {"k": 3})


async def test_another_owner_sees_nothing_and_writes_nothing(store: Any) -> None:
    await store.create_scoped_session(A, "s1", owner="u1", update_time=T0)
    assert await store.get_scoped_session(A, "s1", owner="u2") is None
    with pytest.raises(NotFoundError):
        await store.append_with_state(A, "s1", [user("x")], owner="u2", update_time=T0)
    with pytest.raises(NotFoundError):
        await store.append_with_state(A, "none", [user("x")], owner="u1", update_time=T0)
    assert await store.delete_scoped_session(A, "s1", owner="u2") is False
    assert await store.load_history(A, "s1") == []
    assert await store.get_session(A, "none") is None


async def test_windows_by_count_and_time(store: Any) -> None:
    await store.create_scoped_session(A, "s1", owner="u1", update_time=T0)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    batch = [user(str(i), base + timedelta(seconds=i)) for i in range(6)]
    await store.append_with_state(A, "s1", batch, owner="u1", update_time=T0)

    async def window(**kwargs: Any) -> list[str | None]:
        found = await store.get_scoped_session(A, "s1", owner="u1", **kwargs)
        assert found is not None
        return [m.content for m in found[1]]

    assert await window() == ["0", "1", "2", "3", "4", "5"]
    assert await window(limit=0) == []
    assert await window(limit=2) == ["4", "5"]
    assert await window(since=base + timedelta(seconds=3)) == ["3", "4", "5"]
    assert await window(since=base + timedelta(seconds=3), limit=1) == ["5"]
    assert await window(since=base + timedelta(days=1)) == []


async def test_listing_orders_by_update_time_and_reads_states(store: Any) -> None:
    await store.create_scoped_session(A, "b", owner="u2", update_time=T0, state={"n": "b"})
    await store.create_scoped_session(A, "a", owner="u2", update_time=T0)
    await store.create_scoped_session(A, "c", owner="u1", update_time=T0)
    await store.create_scoped_session(A, "old", owner="u2", update_time=T0 - 5)
    await store.create_scoped_session("other", "x", owner="u1", update_time=T0)
    await store.append_with_state(
        A,
        "a",
        [user("x")],
        owner="u2",
        update_time=T0 + 1,
        owner_state={"u": 2},
        agent_state={"g": 1},
    )
    listed = await store.list_scoped_sessions(A)
    assert [(s.owner, s.session_id) for s in listed] == [
        ("u2", "old"),
        ("u1", "c"),
        ("u2", "b"),
        ("u2", "a"),
    ]
    assert listed[2].state == {"n": "b"} and listed[2].owner_state == {"u": 2}
    assert all(s.agent_state == {"g": 1} for s in listed)
    mine = await store.list_scoped_sessions(A, owner="u2")
    assert [s.session_id for s in mine] == ["old", "b", "a"]
    assert await store.list_scoped_sessions(A, owner="nobody") == []


async def test_delete_removes_the_conversation_and_keeps_shared_state(store: Any) -> None:
    await store.create_scoped_session(
        A, "s1", owner="u1", update_time=T0, owner_state={"o": 1}, agent_state={"a": 1}
    )
    await store.append_with_state(A, "s1", [user("x")], owner="u1", update_time=T0)
    assert await store.delete_scoped_session(A, "s1", owner="u1") is True
    assert await store.get_scoped_session(A, "s1", owner="u1") is None
    assert await store.get_session(A, "s1") is None
    assert await store.load_history(A, "s1") == []
    assert await store.list_scoped_sessions(A) == []
    assert await store.get_owner_state(A, "u1") == {"o": 1}
    assert await store.get_agent_state(A) == {"a": 1}
    assert await store.delete_scoped_session(A, "s1", owner="u1") is False
    # The id is free again.
    again = await store.create_scoped_session(A, "s1", owner="u1", update_time=T0)
    assert again.state == {} and again.owner_state == {"o": 1}


async def test_a_purged_conversation_loses_its_state_and_shared_state_stays(store: Any) -> None:
    # "talk" has messages (the purge's walk in heap order finds it), "quiet"
    # has none (only its pass in updated_at order does); "active" is recent.
    for session in ("talk", "quiet", "active"):
        await store.create_scoped_session(
            A,
            session,
            owner="u1",
            update_time=T0,
            state={"own": session},
            owner_state={"o": 1},
            agent_state={"a": 1},
        )
    await store.append_with_state(A, "talk", [user("x"), user("y")], owner="u1", update_time=T0)
    await store.append_with_state(A, "active", [user("z")], owner="u1", update_time=T0 + 1)
    await make_idle(store, A, "talk")
    await make_idle(store, A, "quiet")
    report = await store.purge_idle_sessions(timedelta(days=1), pause=0)
    assert (report.sessions, report.messages) == (2, 2)
    for session in ("talk", "quiet"):
        assert await store.get_scoped_session(A, session, owner="u1") is None
        assert await store.get_session(A, session) is None
    assert [s.session_id for s in await store.list_scoped_sessions(A)] == ["active"]
    assert [s.session_id for s in await store.list_scoped_sessions(A, owner="u1")] == ["active"]
    found = await store.get_scoped_session(A, "active", owner="u1")
    assert found is not None
    assert found[0].state == {"own": "active"} and [m.content for m in found[1]] == ["z"]
    assert await store.get_owner_state(A, "u1") == {"o": 1}
    assert await store.get_agent_state(A) == {"a": 1}
    # The purged ids are free again, with no state left over.
    again = await store.create_scoped_session(A, "quiet", owner="u2", update_time=T0)
    assert (again.state, again.revision, again.owner_state) == ({}, 0, {})
    with pytest.raises(NotFoundError):
        await store.append_with_state(A, "talk", [user("late")], owner="u1", update_time=T0)
    assert await store.get_session(A, "talk") is None


async def test_clearing_a_conversation_removes_its_state(store: Any) -> None:
    # clear_session deletes the conversation (its row and messages), and its
    # own state with it; an empty save_full_history is a clear.
    for session in ("cleared", "emptied", "kept"):
        await store.create_scoped_session(
            A, session, owner="u1", update_time=T0, state={"k": 1}, owner_state={"o": 1}
        )
        await store.append_with_state(A, session, [user("x")], owner="u1", update_time=T0)
    assert await store.clear_session(A, "cleared") == 1
    await store.save_full_history(A, "emptied", [])
    assert await store.get_scoped_session(A, "cleared", owner="u1") is None
    assert await store.get_scoped_session(A, "emptied", owner="u1") is None
    assert [s.session_id for s in await store.list_scoped_sessions(A)] == ["kept"]
    assert await store.get_owner_state(A, "u1") == {"o": 1}
    again = await store.create_scoped_session(A, "cleared", owner="u1", update_time=T0)
    assert (again.state, again.revision) == ({}, 0)


async def test_states_come_back_as_jsonb_keeps_them(store: Any) -> None:
    await store.create_scoped_session(
        A, "s1", owner="u1", update_time=T0, state={"bb": 1, "a": {"zz": 1e16, "y": -0.0}}
    )
    found = await store.get_scoped_session(A, "s1", owner="u1")
    assert found is not None
    state = found[0].state
    assert list(state) == ["a", "bb"] and list(state["a"]) == ["y", "zz"]
    assert state["a"]["zz"] == 10**16 and type(state["a"]["zz"]) is int


@pytest.mark.parametrize(
    ("field", "bad", "error", "words"),
    [
        ("state", {"k": "a\x00b"}, InvalidInputError, "NUL byte"),
        ("owner_state", {"k": float("nan")}, InvalidInputError, "NaN"),
        ("agent_state", {1: "x"}, InvalidInputError, "keys must be strings"),
        ("state", ["not", "a", "dict"], InvalidInputError, "must be a dict"),
    ],
)
async def test_bad_input_writes_nothing(
    store: Any, field: str, bad: Any, error: type[Exception], words: str
) -> None:
    await store.create_scoped_session(A, "s1", owner="u1", update_time=T0, state={"k": 0})
    with pytest.raises(error, match=words):
        await store.append_with_state(
            A, "s1", [user("x")], owner="u1", update_time=T0 + 1, **{field: bad}
        )
    with pytest.raises(error, match=words):
        await store.create_scoped_session(A, "s2", owner="u1", update_time=T0, **{field: bad})
    found = await store.get_scoped_session(A, "s1", owner="u1")
    assert found is not None
    assert found[1] == [] and found[0].state == {"k": 0} and found[0].revision == 0
    assert await store.get_session(A, "s2") is None


async def test_bad_messages_ids_and_numbers_are_refused(store: Any) -> None:
    await store.create_scoped_session(A, "s1", owner="u1", update_time=T0)
    with pytest.raises(InvalidMessageError):
        await store.append_with_state(
            A, "s1", [{"role": "nobody"}], owner="u1", update_time=T0, state={"k": 1}
        )
    with pytest.raises(InvalidIdentifierError):
        await store.create_scoped_session(A, "", owner="u1", update_time=T0)
    with pytest.raises(InvalidIdentifierError):
        await store.create_scoped_session(A, "s2", owner=" ", update_time=T0)
    with pytest.raises(InvalidInputError, match="update_time must be finite"):
        await store.append_with_state(A, "s1", [], owner="u1", update_time=float("inf"))
    with pytest.raises(InvalidInputError, match="expected_revision"):
        await store.append_with_state(A, "s1", [], owner="u1", update_time=T0, expected_revision=-1)
    found = await store.get_scoped_session(A, "s1", owner="u1")
    assert found is not None and found[0].revision == 0 and found[0].state == {}


async def test_exact_items_round_trip_with_state(store: Any) -> None:
    await store.create_scoped_session(A, "s1", owner="u1", update_time=T0)
    item = {"id": "e1", "text": "nul \x00 and lone \ud800", "n": 1.5}
    await store.append_with_state(
        A, "s1", [{"role": "assistant", "item": item}], owner="u1", update_time=T0, state={"k": "v"}
    )
    found = await store.get_scoped_session(A, "s1", owner="u1")
    assert found is not None
    assert found[1][0].item == item
