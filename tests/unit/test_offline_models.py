from __future__ import annotations

import pytest

from agentcore import AgentConfig, EchoModel, Message, ModelClient, ModelError, ScriptedModel

CONFIG = AgentConfig(name="a")


def user(text: str) -> Message:
    return Message(role="user", content=text)


async def test_echo_quotes_the_input_and_says_it_remembers_nothing_new() -> None:
    reply = await EchoModel().complete(
        [Message(role="system", content="sys"), user("hello")], config=CONFIG
    )
    assert reply.role == "assistant"
    assert reply.content == 'echo: "hello" (I remember no earlier messages)'


async def test_echo_counts_earlier_messages_and_quotes_the_first_user_message() -> None:
    conversation = [
        Message(role="system", content="sys"),
        user("my name is Ada"),
        Message(role="assistant", content="hi"),
        user("what is my name?"),
    ]
    reply = await EchoModel().complete(conversation, config=CONFIG)
    assert reply.content == (
        'echo: "what is my name?" (I remember 2 earlier messages; you first said "my name is Ada")'
    )


async def test_echo_is_deterministic_and_shortens_long_quotes() -> None:
    long = "x" * 200
    first = await EchoModel().complete([user(long)], config=CONFIG)
    second = await EchoModel().complete([user(long)], config=CONFIG)
    assert first == second
    assert first.content is not None
    assert '"' + "x" * 79 + '…"' in first.content


async def test_scripted_model_replies_in_order_and_records_calls() -> None:
    model = ScriptedModel(["one", Message(role="assistant", content="two")])
    first = await model.complete([user("a")], config=CONFIG)
    second = await model.complete([user("a"), user("b")], config=CONFIG)

    assert (first.content, second.content) == ("one", "two")
    assert [[m.content for m in call] for call in model.calls] == [["a"], ["a", "b"]]
    assert model.configs == [CONFIG, CONFIG]


async def test_scripted_model_raises_scripted_exceptions_and_runs_out_loudly() -> None:
    model = ScriptedModel([ValueError("scripted")])
    with pytest.raises(ValueError, match="scripted"):
        await model.complete([user("a")], config=CONFIG)
    with pytest.raises(ModelError, match="no reply left: it was given 1 and this is call 2"):
        await model.complete([user("a")], config=CONFIG)


def test_offline_models_satisfy_the_model_client_protocol() -> None:
    assert isinstance(EchoModel(), ModelClient)
    assert isinstance(ScriptedModel([]), ModelClient)
