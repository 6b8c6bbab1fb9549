"""A turn is exactly-once per input message id, on every repository.

A caller that retries ``execute_agent`` / ``run_agent`` with the same input
``Message(id=...)`` (after a timeout or a lost connection) gets the stored
reply back, and the model is not called again; racing retries store one turn.
"""

from __future__ import annotations

import asyncio

import pytest

from agentcore import (
    Agent,
    AgentConfig,
    ExecutionFacade,
    HistoryRepository,
    InvalidInputError,
    Message,
    ScriptedModel,
)
from agentcore.agent import MODEL_REPLY_ID_KEY, reply_id_for
from agentcore.repository import TurnStore

pytestmark = pytest.mark.port.with_args(TurnStore)

A = "support-bot"


def config(history_limit: int | None = 50) -> AgentConfig:
    return AgentConfig(name=A, include_history=True, history_limit=history_limit)


def roles_and_ids(messages: list[Message]) -> list[tuple[str, str | None]]:
    return [(m.role, m.id) for m in messages]


async def test_a_retried_turn_returns_the_stored_reply_without_calling_the_model(
    repo: HistoryRepository,
) -> None:
    model = ScriptedModel(["first reply", "second reply"])
    agent = Agent(config(), model, repo)
    question = Message(role="user", content="what time is it?", id="req-1")

    first = await agent.execute_agent(question, session_id="s")
    retry = await agent.execute_agent(question, session_id="s")

    assert len(model.calls) == 1
    stored = await repo.load_history(A, "s")
    assert roles_and_ids(stored) == [("user", "req-1"), ("assistant", "req-1#reply")]
    assert retry.output == first.output == "first reply"
    assert retry.messages[1] == stored[1]
    assert first.messages[1].id == "req-1#reply"


async def test_a_retry_finds_its_turn_beyond_the_history_window(
    repo: HistoryRepository,
) -> None:
    model = ScriptedModel(["the reply", *(f"later {i}" for i in range(5)), "never"])
    agent = Agent(config(history_limit=2), model, repo)
    question = Message(role="user", content="remember this", id="req-old")
    first = await agent.execute_agent(question, session_id="s")
    for i in range(5):
        await agent.execute_agent(f"later question {i}", session_id="s")

    retry = await agent.execute_agent(question, session_id="s")

    assert len(model.calls) == 6
    assert retry.output == first.output == "the reply"
    assert len(await repo.load_history(A, "s")) == 12


@pytest.mark.parametrize("racers", [2, 8])
async def test_racing_identical_turns_store_one_turn_and_all_return_its_reply(
    repo: HistoryRepository, racers: int
) -> None:
    model = ScriptedModel([f"reply {i}" for i in range(racers)])
    facade = ExecutionFacade([config()], model, repo)
    question = Message(role="user", content="once please", id="req-race")

    results = await asyncio.gather(
        *(facade.run_agent(A, question, session_id="s") for _ in range(racers))
    )

    stored = await repo.load_history(A, "s")
    assert roles_and_ids(stored) == [("user", "req-race"), ("assistant", "req-race#reply")]
    for result in results:
        assert result.output == stored[1].content
        assert result.messages[1].model_dump(exclude={"created_at"}) == stored[1].model_dump(
            exclude={"created_at"}
        )


async def test_a_retry_racing_the_original_returns_the_originals_reply(
    repo: HistoryRepository,
) -> None:
    release = asyncio.Event()
    calls = 0

    class SlowFirst:
        async def complete(self, messages: object, *, config: AgentConfig) -> Message:
            nonlocal calls
            calls += 1
            mine = calls
            if mine == 1:
                await release.wait()  # the original is slow; the retry overtakes it
            return Message(role="assistant", content=f"reply of call {mine}")

    agent = Agent(config(), SlowFirst(), repo)
    question = Message(role="user", content="hello", id="req-slow")
    original = asyncio.create_task(agent.execute_agent(question, session_id="s"))
    while calls == 0:
        await asyncio.sleep(0)
    retry = await agent.execute_agent(question, session_id="s")
    release.set()
    first = await original

    stored = await repo.load_history(A, "s")
    assert [m.content for m in stored] == ["hello", "reply of call 2"]
    assert first.output == retry.output == "reply of call 2"


async def test_input_without_id_runs_every_time(repo: HistoryRepository) -> None:
    model = ScriptedModel(["one", "two"])
    agent = Agent(config(), model, repo)

    await agent.execute_agent("same words", session_id="s")
    await agent.execute_agent(Message(role="user", content="same words"), session_id="s")

    assert len(model.calls) == 2
    stored = await repo.load_history(A, "s")
    assert [(m.role, m.content, m.id) for m in stored] == [
        ("user", "same words", None),
        ("assistant", "one", None),
        ("user", "same words", None),
        ("assistant", "two", None),
    ]


async def test_the_models_own_reply_id_is_kept_in_metadata(repo: HistoryRepository) -> None:
    reply = Message(role="assistant", content="hi", id="chatcmpl-42", metadata={"tokens": 3})
    agent = Agent(config(), ScriptedModel([reply]), repo)

    await agent.execute_agent(Message(role="user", content="hi", id="q"), session_id="s")

    [_, stored] = await repo.load_history(A, "s")
    assert stored.id == "q#reply"
    assert stored.metadata == {"tokens": 3, MODEL_REPLY_ID_KEY: "chatcmpl-42"}


async def test_long_input_ids_give_a_hashed_reply_id_within_the_limit(
    repo: HistoryRepository,
) -> None:
    long_id = "i" * 255
    agent = Agent(config(), ScriptedModel(["ok", "never"]), repo)
    question = Message(role="user", content="hi", id=long_id)

    await agent.execute_agent(question, session_id="s")
    await agent.execute_agent(question, session_id="s")

    [_, stored] = await repo.load_history(A, "s")
    assert stored.id == reply_id_for(long_id)
    assert stored.id.startswith("reply-sha256:") and len(stored.id) == 77


async def test_an_input_id_near_the_byte_limit_gives_a_hashed_reply_id(
    repo: HistoryRepository,
) -> None:
    long_id = "😀" * 191  # 764 bytes: with "#reply" 770, over the 768-byte id limit
    agent = Agent(config(), ScriptedModel(["ok", "never"]), repo)
    question = Message(role="user", content="hi", id=long_id)

    await agent.execute_agent(question, session_id="s")
    await agent.execute_agent(question, session_id="s")

    [_, stored] = await repo.load_history(A, "s")
    assert stored.id == reply_id_for(long_id)
    assert stored.id.startswith("reply-sha256:")


async def test_a_reply_id_taken_by_another_message_is_an_input_error(
    repo: HistoryRepository,
) -> None:
    await repo.append_messages(A, "s", [Message(role="user", content="x", id="q#reply")])
    model = ScriptedModel(["never"])

    with pytest.raises(InvalidInputError, match=r"reply id 'q#reply' derived from input id 'q'"):
        await Agent(config(), model, repo).execute_agent(
            Message(role="user", content="hi", id="q"), session_id="s"
        )
    assert model.calls == []
