"""A real Pydantic AI ``Agent`` run keeps its history in PostgreSQL, and a new process resumes it.

The model is Pydantic AI's ``FunctionModel`` (no network): it calls a tool on
the first turn, answers from the tool's result, and on later turns reports
what it was sent, so the test can see the history the model saw.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)

from agentcore import PostgresHistoryRepository, SyncHistoryRepository
from agentcore.integrations.pydantic_ai import (
    AgentcoreMessageHistory,
    SyncAgentcoreMessageHistory,
)

# The model and the agent, the same in this process and in the resuming one.
AGENT_SOURCE = textwrap.dedent(
    """
    import json

    from pydantic_ai import Agent
    from pydantic_ai.messages import (
        ModelMessage, ModelMessagesTypeAdapter, ModelResponse, TextPart, ToolCallPart,
        ToolReturnPart,
    )
    from pydantic_ai.models.function import AgentInfo, FunctionModel


    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        last = messages[-1].parts[-1]
        if isinstance(last, ToolReturnPart):
            return ModelResponse(parts=[TextPart(f"It is {last.content} in Paris.")])
        if len(messages) == 1:  # the first turn: look the weather up
            return ModelResponse(
                parts=[ToolCallPart("get_weather", {"city": "Paris"}, tool_call_id="call-1")]
            )
        seen = ModelMessagesTypeAdapter.dump_python(messages[:-1], mode="json")
        return ModelResponse(parts=[TextPart(json.dumps(seen))])


    agent = Agent(FunctionModel(model), instructions="Answer briefly.")


    @agent.tool_plain
    def get_weather(city: str) -> str:
        return "22.5 \\N{DEGREE SIGN}C\\x00"
    """
)

RESUME = AGENT_SOURCE + textwrap.dedent(
    """
    import asyncio
    import os
    import sys

    from agentcore import PostgresHistoryRepository
    from agentcore.integrations.pydantic_ai import AgentcoreMessageHistory


    async def main() -> None:
        async with PostgresHistoryRepository.from_dsn(os.environ["AGENTCORE_DSN"]) as repo:
            history = AgentcoreMessageHistory("user-42", repo)
            result = await agent.run("What did we say?", message_history=await history.load())
            await history.append(result.new_messages())
            sys.stdout.write(result.output)


    asyncio.run(main())
    """
)


def agent_here() -> Agent[None, str]:
    namespace: dict[str, object] = {}
    exec(compile(AGENT_SOURCE, "agent source", "exec"), namespace)
    agent = namespace["agent"]
    assert isinstance(agent, Agent)
    return agent


def parts(messages: list[ModelMessage]) -> list[tuple[str, str]]:
    """Each part's kind and what it says: the history as the model reads it."""
    found = []
    for message in messages:
        for part in message.parts:
            said = getattr(part, "content", None) or getattr(part, "args", None)
            found.append((type(part).__name__, json.dumps(said)))
    return found


async def test_a_new_process_resumes_the_conversation_with_its_tool_call(
    database_dsn: str,
) -> None:
    agent = agent_here()
    async with PostgresHistoryRepository.from_dsn(database_dsn) as repo:
        history = AgentcoreMessageHistory("user-42", repo)
        first = await agent.run("Weather in Paris?", message_history=await history.load())
        await history.append(first.new_messages())
        assert first.output == "It is 22.5 °C\x00 in Paris."
        stored = await history.load()
        assert ModelMessagesTypeAdapter.dump_json(stored) == ModelMessagesTypeAdapter.dump_json(
            first.all_messages()
        )
        assert [type(m) for m in stored] == [ModelRequest, ModelResponse] * 2

        done = subprocess.run(
            [sys.executable, "-c", RESUME],
            env={**os.environ, "AGENTCORE_DSN": database_dsn},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        # The resumed model was sent the whole first turn, tool call and result included.
        seen = ModelMessagesTypeAdapter.validate_python(json.loads(done.stdout))
        assert parts(seen) == parts(stored)
        assert ("ToolCallPart", json.dumps({"city": "Paris"})) in parts(seen)
        assert ("ToolReturnPart", json.dumps("22.5 °C\x00")) in parts(seen)

        # The second process stored its turn after the first one's.
        everything = await history.load()
        assert len(everything) == 6
        assert ModelMessagesTypeAdapter.dump_json(everything[:4]) == (
            ModelMessagesTypeAdapter.dump_json(stored)
        )
        question = everything[4].parts[-1]
        assert isinstance(question, UserPromptPart) and question.content == "What did we say?"


@pytest.fixture
def event_loop_of_run_sync() -> Iterator[None]:
    """The loop ``agent.run_sync`` runs on, closed afterwards.

    Pydantic AI's ``run_sync`` runs on the thread's event loop and, when there
    is none, sets a new one that it never closes; this test closes it.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.mark.usefixtures("event_loop_of_run_sync")
def test_run_sync_code_keeps_its_history_through_the_sync_face(database_dsn: str) -> None:
    agent = agent_here()
    with SyncHistoryRepository.from_dsn(database_dsn) as repo:
        history = SyncAgentcoreMessageHistory("user-7", repo)
        first = agent.run_sync("Weather in Paris?", message_history=history.load())
        history.append(first.new_messages())
        second = agent.run_sync("What did we say?", message_history=history.load())
        history.append(second.new_messages())
        seen = ModelMessagesTypeAdapter.validate_python(json.loads(second.output))
        assert parts(seen) == parts(first.all_messages())
        stored = history.load()
        assert ModelMessagesTypeAdapter.dump_json(stored) == ModelMessagesTypeAdapter.dump_json(
            second.all_messages()
        )
        # A window cut inside the tool round starts at the next request a provider takes.
        window = history.load(4)
        assert isinstance(window[0], ModelRequest)
        assert not any(isinstance(p, ToolReturnPart) for p in window[0].parts)
        assert any(isinstance(p, ToolCallPart) for m in stored for p in m.parts)
        assert isinstance(stored[-1].parts[0], TextPart)
        history.clear()
        assert history.load() == []


async def test_the_async_and_sync_faces_share_conversations(database_dsn: str) -> None:
    message = ModelRequest(parts=[UserPromptPart("hello")])
    async with PostgresHistoryRepository.from_dsn(database_dsn) as repo:
        await AgentcoreMessageHistory("shared", repo).append([message])
    with SyncHistoryRepository.from_dsn(database_dsn) as sync_repo:
        loaded = SyncAgentcoreMessageHistory("shared", sync_repo).load()
    assert ModelMessagesTypeAdapter.dump_json(loaded) == ModelMessagesTypeAdapter.dump_json(
        [message]
    )


def test_the_sync_face_over_the_in_memory_fake() -> None:
    from agentcore import InMemoryHistoryRepository

    with SyncHistoryRepository.over(InMemoryHistoryRepository()) as repo:
        history = SyncAgentcoreMessageHistory("s", repo)
        history.append([ModelResponse(parts=[TextPart("orphan reply")])])
        assert len(history.load()) == 1  # no limit: the whole conversation, as stored
        assert history.load(1) == []  # a window starts with a request
