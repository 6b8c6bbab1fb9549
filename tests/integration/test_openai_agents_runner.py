"""The OpenAI Agents SDK's Runner keeps a conversation in PostgreSQL through AgentcoreSession."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.testing import ScriptedModel, assistant_message, function_call

from agentcore import PostgresHistoryRepository
from agentcore.integrations.openai_agents import AgentcoreSession
from tests.conftest import pool_for

TOOL_CALLS: list[str] = []
set_tracing_disabled(True)  # no trace export (it would need an API key)


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    TOOL_CALLS.append(city)
    return f"22.5C and sunny in {city}"


def kinds(items: list[Any]) -> list[str]:
    return [str(i.get("type") or i.get("role")) for i in items]


RESUME = textwrap.dedent(
    """
    import asyncio, json, sys
    from agents import Agent, Runner, set_tracing_disabled
    from agents.testing import ScriptedModel, assistant_message
    from agentcore import PostgresHistoryRepository
    from agentcore.integrations.openai_agents import AgentcoreSession

    async def main() -> None:
        set_tracing_disabled(True)
        model = ScriptedModel([[assistant_message("Tomorrow: rain in Paris.")]])
        agent = Agent(name="weather", model=model)
        async with PostgresHistoryRepository.from_dsn(sys.argv[1]) as repo:
            session = AgentcoreSession("user-42", repo)
            result = await Runner.run(agent, "And tomorrow?", session=session)
            print(json.dumps({"output": result.final_output, "seen": model.calls[0].input,
                              "stored": await session.get_items()}))

    asyncio.run(main())
    """
)


async def test_runner_holds_a_conversation_with_a_tool_call_and_resumes_it_elsewhere(
    database_dsn: str,
) -> None:
    model = ScriptedModel(
        [
            [function_call("get_weather", {"city": "Paris"}, call_id="call_1")],
            [assistant_message("It is 22.5C and sunny in Paris.")],
            [assistant_message("You asked about Paris.")],
        ]
    )
    agent = Agent(name="weather", model=model, tools=[get_weather])
    async with pool_for(database_dsn) as pool:
        session = AgentcoreSession("user-42", PostgresHistoryRepository(pool))
        first = await Runner.run(agent, "Weather in Paris?", session=session)
        second = await Runner.run(agent, "What did I ask?", session=session)
        stored = await session.get_items()

    assert first.final_output == "It is 22.5C and sunny in Paris."
    assert second.final_output == "You asked about Paris."
    assert TOOL_CALLS == ["Paris"]
    assert kinds(stored) == [
        "user",
        "function_call",
        "function_call_output",
        "message",
        "user",
        "message",
    ]
    # The model's third call saw the whole first turn, tool call included.
    assert kinds(list(model.calls[2].input)) == kinds(stored[:5])

    resumed = subprocess.run(
        [sys.executable, "-c", RESUME, database_dsn],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    found = json.loads(resumed.stdout)
    assert found["output"] == "Tomorrow: rain in Paris."
    # The new process's model saw exactly what this one stored, then the new input.
    assert found["seen"] == [*stored, {"role": "user", "content": "And tomorrow?"}]
    assert kinds(found["stored"]) == [*kinds(stored), "user", "message"]
