"""Google ADK's Runner keeps a conversation in PostgreSQL through AgentcoreSessionService.

A real run with a stub model (a tool call included) is stored; a new process
resumes it. And an event's state delta commits with the event or not at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncGenerator

import psycopg
import pytest
from google.adk.agents.llm_agent import LlmAgent
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.tools.tool_context import ToolContext
from google.genai import types

from agentcore import PostgresHistoryRepository, StorageError
from agentcore.integrations.google_adk import AgentcoreSessionService
from tests.conftest import pool_for

APP = "weather-app"


class StubModel(BaseLlm):
    """Asks for the weather tool once per question, then answers from its result.

    Its answer counts the user messages it was given, so a resumed
    conversation shows that the earlier turn reached the model.
    """

    model: str = "stub"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        last = llm_request.contents[-1]
        parts = last.parts or []
        users = sum(
            1
            for c in llm_request.contents
            if c.role == "user" and any(p.text for p in c.parts or [])
        )
        response = next((p.function_response for p in parts if p.function_response), None)
        if response is None:
            call = types.FunctionCall(
                id=f"call-{users}", name="get_weather", args={"city": "Paris"}
            )
            yield LlmResponse(
                content=types.Content(role="model", parts=[types.Part(function_call=call)])
            )
            return
        text = f"{response.response['result']} (question {users})"  # type: ignore[index]
        yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text=text)]))


def get_weather(city: str, tool_context: ToolContext) -> str:
    """The weather in a city."""
    tool_context.state["user:last_city"] = city
    tool_context.state["temp:scratch"] = "never stored"
    tool_context.state["asked"] = tool_context.state.get("asked", 0) + 1
    return f"22.5C and sunny in {city}"


def runner_for(service: AgentcoreSessionService) -> Runner:
    agent = LlmAgent(name="weather", model=StubModel(), tools=[get_weather])
    return Runner(app_name=APP, agent=agent, session_service=service)


async def ask(runner: Runner, text: str) -> list[Event]:
    message = types.Content(role="user", parts=[types.Part(text=text)])
    return [e async for e in runner.run_async(user_id="u1", session_id="s1", new_message=message)]


RESUME = textwrap.dedent(
    """
    import asyncio, json, sys
    from agentcore import PostgresHistoryRepository
    from agentcore.integrations.google_adk import AgentcoreSessionService
    from tests.integration.test_google_adk_runner import ask, runner_for

    async def main() -> None:
        async with PostgresHistoryRepository.from_dsn(sys.argv[1]) as repo:
            service = AgentcoreSessionService(repo)
            before = await service.get_session(app_name="weather-app", user_id="u1",
                                               session_id="s1")
            events = await ask(runner_for(service), "And now?")
            after = await service.get_session(app_name="weather-app", user_id="u1",
                                              session_id="s1")
            print(json.dumps({
                "before": len(before.events), "after": len(after.events),
                "reply": events[-1].content.parts[0].text, "state": after.state,
            }))

    asyncio.run(main())
    """
)


async def test_a_run_with_a_tool_call_is_stored_and_a_new_process_resumes_it(
    database_dsn: str,
) -> None:
    async with pool_for(database_dsn) as pool:
        service = AgentcoreSessionService(PostgresHistoryRepository(pool))
        await service.create_session(app_name=APP, user_id="u1", session_id="s1")
        events = await ask(runner_for(service), "Weather in Paris?")
        stored = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
    assert stored is not None
    # What the runner yielded is what was stored, after the user's message.
    assert stored.events[1:] == events
    calls = [e for e in stored.events if e.get_function_calls()]
    responses = [e for e in stored.events if e.get_function_responses()]
    assert len(calls) == 1 and len(responses) == 1
    assert events[-1].content is not None and events[-1].content.parts is not None
    assert events[-1].content.parts[0].text == "22.5C and sunny in Paris (question 1)"
    assert stored.events[-1].id == events[-1].id
    assert stored.state == {"user:last_city": "Paris", "asked": 1}

    done = subprocess.run(
        [sys.executable, "-c", RESUME, database_dsn],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    resumed = json.loads(done.stdout.strip().splitlines()[-1])
    assert resumed["before"] == len(stored.events) == 4  # user, call, response, answer
    assert resumed["after"] == 8
    assert resumed["reply"] == "22.5C and sunny in Paris (question 2)"
    assert resumed["state"] == {"user:last_city": "Paris", "asked": 2}


@pytest.mark.parametrize("table", ["session_state", "owner_state", "agent_state"])
async def test_a_failing_state_write_leaves_neither_event_nor_state(
    database_dsn: str, table: str
) -> None:
    async with pool_for(database_dsn) as pool:
        service = AgentcoreSessionService(PostgresHistoryRepository(pool))
        session = await service.create_session(
            app_name=APP,
            user_id="u1",
            session_id="s1",
            state={"k": 0, "user:u": 0, "app:a": 0},
        )
        with psycopg.connect(database_dsn, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'injected fault'; END $$"
            )
            conn.execute(
                f"CREATE TRIGGER fault BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION fail()"
            )
        event = Event(
            invocation_id="inv",
            author="agent",
            timestamp=session.last_update_time + 1,
            content=types.Content(role="model", parts=[types.Part(text="hello")]),
            actions=EventActions(state_delta={"k": 1, "user:u": 1, "app:a": 1}),
        )
        with pytest.raises(StorageError, match="injected fault"):
            await service.append_event(session, event)
        stored = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
        assert stored is not None
        assert stored.events == []
        assert stored.state == {"k": 0, "user:u": 0, "app:a": 0}
        async with await psycopg.AsyncConnection.connect(database_dsn) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM conversation_history WHERE session_id = 's1'"
            )
            assert await cur.fetchone() == (0,)
        with psycopg.connect(database_dsn, autocommit=True) as conn:
            conn.execute(f"DROP TRIGGER fault ON {table}")
        # The same session object writes once the fault is gone.
        await service.append_event(session, event)
        final = await service.get_session(app_name=APP, user_id="u1", session_id="s1")
        assert final is not None and len(final.events) == 1
        assert final.state == {"k": 1, "user:u": 1, "app:a": 1}
