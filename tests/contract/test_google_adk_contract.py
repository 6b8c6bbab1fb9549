"""agentcore.integrations.google_adk.AgentcoreSessionService on both repositories.

ADK's own session-service tests run on it too (tests/integration/test_framework_suites.py);
these check what the issue asks beyond them: exact events, the state scopes,
windows and staleness, on the in-memory fake and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from agentcore import InMemoryHistoryRepository, PostgresHistoryRepository, ScopedStateStore
from agentcore.integrations.google_adk import AgentcoreSessionService, conversation_id
from agentcore.repository import SessionLifecycle
from tests.conftest import pool_for
from tests.contract.conftest import make_idle
from tests.support import PgServer, fresh_database

pytestmark = pytest.mark.port.with_args(ScopedStateStore, uses=(SessionLifecycle,))

APP = "app"


@pytest.fixture(params=["memory", "postgres", "postgres-citus"])
async def service(
    request: pytest.FixtureRequest, pg_server: PgServer
) -> AsyncIterator[AgentcoreSessionService]:
    if request.param == "memory":
        yield AgentcoreSessionService(InMemoryHistoryRepository())
        return
    if request.param == "postgres-citus":  # a Citus cluster's coordinator (tests/citus.py)
        async with pool_for(request.getfixturevalue("citus_dsn")) as pool:
            yield AgentcoreSessionService(PostgresHistoryRepository(pool))
        return
    with fresh_database(pg_server) as dsn:
        async with pool_for(dsn) as pool:
            yield AgentcoreSessionService(PostgresHistoryRepository(pool))


def rich_event(n: int, *, delta: dict[str, Any] | None = None) -> Event:
    """An event with every kind of part ADK stores, and actions."""
    return Event(
        invocation_id=f"inv-{n}",
        author="agent",
        timestamp=1_700_000_000.0 + n + 0.123456,
        content=types.Content(
            role="model",
            parts=[
                types.Part(text=f"text {n} \u00e9 \U0001f600"),
                types.Part(
                    function_call=types.FunctionCall(
                        id=f"call-{n}", name="lookup", args={"q": "x", "n": [1, 2.5, None]}
                    )
                ),
                types.Part(
                    function_response=types.FunctionResponse(
                        id=f"call-{n}", name="lookup", response={"result": {"ok": True}}
                    )
                ),
                types.Part(inline_data=types.Blob(mime_type="image/png", data=b"\x89PNG\x00\xff")),
            ],
        ),
        actions=EventActions(
            state_delta=delta or {}, artifact_delta={"f.txt": 2}, transfer_to_agent="other"
        ),
        branch="root.sub",
        long_running_tool_ids={"call-9"},
    )


def user_event(text: str, ts: float) -> Event:
    return Event(
        invocation_id="inv",
        author="user",
        timestamp=ts,
        content=types.Content(role="user", parts=[types.Part(text=text)]),
    )


async def test_events_round_trip_exactly(service: AgentcoreSessionService) -> None:
    session = await service.create_session(app_name=APP, user_id="u", session_id="s")
    appended = [rich_event(1), user_event("hi", 1_700_000_010.5), rich_event(2)]
    for event in appended:
        await service.append_event(session, event)
    got = await service.get_session(app_name=APP, user_id="u", session_id="s")
    assert got is not None
    assert got.events == appended
    assert got.events[0].content is not None and got.events[0].content.parts is not None
    blob = got.events[0].content.parts[3].inline_data
    assert blob is not None and blob.data == b"\x89PNG\x00\xff"
    assert got.last_update_time == appended[-1].timestamp


async def test_state_scopes_as_adk_defines_them(service: AgentcoreSessionService) -> None:
    first = await service.create_session(
        app_name=APP,
        user_id="u1",
        session_id="s1",
        state={"k": 1, "user:name": "Ann", "app:flag": True, "temp:t": 9},
    )
    assert first.state == {"k": 1, "user:name": "Ann", "app:flag": True}
    other = await service.create_session(app_name=APP, user_id="u1", session_id="s2")
    stranger = await service.create_session(app_name=APP, user_id="u2", session_id="s3")
    assert other.state == {"user:name": "Ann", "app:flag": True}
    assert stranger.state == {"app:flag": True}
    event = rich_event(1, delta={"k": 2, "user:name": "Bo", "app:n": 1, "temp:scratch": "x"})
    await service.append_event(first, event)
    assert first.state["temp:scratch"] == "x"  # in the live session only
    assert event.actions.state_delta == {"k": 2, "user:name": "Bo", "app:n": 1}
    again = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
    assert again is not None
    assert again.state == {"k": 2, "user:name": "Bo", "app:flag": True, "app:n": 1}
    assert again.events[0].actions.state_delta == {"k": 2, "user:name": "Bo", "app:n": 1}
    s3 = await service.get_session(app_name=APP, user_id="u2", session_id="s3")
    assert s3 is not None and s3.state == {"app:flag": True, "app:n": 1}
    assert await service.get_user_state(app_name=APP, user_id="u1") == {"name": "Bo"}
    assert await service.get_user_state(app_name=APP, user_id="nobody") == {}


async def test_windows_are_read_in_sql(service: AgentcoreSessionService) -> None:
    session = await service.create_session(app_name=APP, user_id="u", session_id="s")
    for i in range(10):
        await service.append_event(session, user_event(str(i), 1_000.0 + i))

    async def texts(config: GetSessionConfig) -> list[str]:
        got = await service.get_session(app_name=APP, user_id="u", session_id="s", config=config)
        assert got is not None
        return [e.content.parts[0].text or "" for e in got.events if e.content and e.content.parts]

    assert await texts(GetSessionConfig(num_recent_events=3)) == ["7", "8", "9"]
    assert await texts(GetSessionConfig(num_recent_events=0)) == []
    assert await texts(GetSessionConfig(after_timestamp=1_006.0)) == ["6", "7", "8", "9"]
    assert await texts(GetSessionConfig(after_timestamp=1_005.5, num_recent_events=2)) == [
        "8",
        "9",
    ]


async def test_list_sessions_has_no_events_and_merged_state(
    service: AgentcoreSessionService,
) -> None:
    a = await service.create_session(
        app_name=APP, user_id="u1", session_id="a", state={"user:x": 1}
    )
    await service.create_session(app_name=APP, user_id="u2", session_id="b")
    await service.append_event(a, user_event("later", a.last_update_time + 100))
    listed = await service.list_sessions(app_name=APP, user_id="u1")
    assert [(s.id, s.events, s.state) for s in listed.sessions] == [("a", [], {"user:x": 1})]
    everyone = await service.list_sessions(app_name=APP)
    assert [s.id for s in everyone.sessions] == ["b", "a"]
    assert (await service.list_sessions(app_name="none")).sessions == []


async def test_a_stale_session_is_refused_and_nothing_is_stored(
    service: AgentcoreSessionService,
) -> None:
    await service.create_session(app_name=APP, user_id="u", session_id="s")
    one = await service.get_session(app_name=APP, user_id="u", session_id="s")
    two = await service.get_session(app_name=APP, user_id="u", session_id="s")
    assert one is not None and two is not None
    await service.append_event(one, user_event("first", 2_000.0))
    with pytest.raises(StaleSessionError):
        await service.append_event(two, rich_event(5, delta={"k": "lost"}))
    stored = await service.get_session(app_name=APP, user_id="u", session_id="s")
    assert stored is not None
    assert len(stored.events) == 1 and "k" not in stored.state
    # The writer that reads again may write.
    await service.append_event(stored, rich_event(6, delta={"k": "kept"}))
    final = await service.get_session(app_name=APP, user_id="u", session_id="s")
    assert final is not None and final.state == {"k": "kept"} and len(final.events) == 2


async def test_create_delete_and_missing_sessions(service: AgentcoreSessionService) -> None:
    session = await service.create_session(app_name=APP, user_id="u", session_id=" s ")
    assert session.id == "s"
    with pytest.raises(AlreadyExistsError):
        await service.create_session(app_name=APP, user_id="u", session_id="s")
    generated = await service.create_session(app_name=APP, user_id="u")
    assert generated.id and generated.id != "s"
    assert await service.get_session(app_name=APP, user_id="other", session_id="s") is None
    await service.delete_session(app_name=APP, user_id="u", session_id="s")
    assert await service.get_session(app_name=APP, user_id="u", session_id="s") is None
    with pytest.raises(SessionNotFoundError):
        await service.append_event(session, user_event("x", 3_000.0))
    partial = user_event("p", 3_001.0)
    partial.partial = True
    assert await service.append_event(generated, partial) is partial
    got = await service.get_session(app_name=APP, user_id="u", session_id=generated.id)
    assert got is not None and got.events == []


async def test_a_purged_session_is_gone_from_adk(service: AgentcoreSessionService) -> None:
    old = await service.create_session(
        app_name=APP, user_id="u", session_id="old", state={"k": 1, "user:u": 1, "app:a": 1}
    )
    new = await service.create_session(app_name=APP, user_id="u", session_id="new")
    await service.append_event(old, user_event("then", old.last_update_time + 1))
    await service.append_event(new, user_event("now", new.last_update_time + 1))
    repository = service._store
    await make_idle(repository, APP, conversation_id("u", "old"))
    report = await repository.purge_idle_sessions(timedelta(days=1), pause=0)  # type: ignore[attr-defined]
    assert report.sessions == 1
    assert await service.get_session(app_name=APP, user_id="u", session_id="old") is None
    for listed in (
        await service.list_sessions(app_name=APP, user_id="u"),
        await service.list_sessions(app_name=APP),
    ):
        assert [s.id for s in listed.sessions] == ["new"]
        assert listed.sessions[0].state == {"user:u": 1, "app:a": 1}
    kept = await service.get_session(app_name=APP, user_id="u", session_id="new")
    assert kept is not None and len(kept.events) == 1
    # The id can name a new session, which starts with no state of its own.
    again = await service.create_session(app_name=APP, user_id="u", session_id="old")
    assert again.state == {"user:u": 1, "app:a": 1} and again.events == []


async def test_a_repository_without_scoped_state_is_refused() -> None:
    with pytest.raises(TypeError, match="keeps no scoped state"):
        AgentcoreSessionService(object())  # type: ignore[arg-type]


async def test_two_users_may_have_sessions_of_the_same_id(service: AgentcoreSessionService) -> None:
    mine = await service.create_session(app_name=APP, user_id="a:1", session_id="s", state={"k": 1})
    await service.append_event(mine, user_event("mine", 5_000.0))
    theirs = await service.create_session(app_name=APP, user_id="a", session_id="1:s")
    assert (theirs.id, theirs.user_id, theirs.state) == ("1:s", "a", {})
    got = await service.get_session(app_name=APP, user_id="a:1", session_id="s")
    other = await service.get_session(app_name=APP, user_id="a", session_id="1:s")
    assert got is not None and other is not None
    assert (got.id, len(got.events), other.id, len(other.events)) == ("s", 1, "1:s", 0)
    listed = await service.list_sessions(app_name=APP)
    assert sorted((s.user_id, s.id) for s in listed.sessions) == [("a", "1:s"), ("a:1", "s")]
