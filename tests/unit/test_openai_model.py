from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from agentcore import (
    AgentConfig,
    InvalidInputError,
    Message,
    ModelClient,
    ModelError,
    OpenAIChatModel,
)

Handler = Callable[[httpx.Request], httpx.Response]
CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q":1}'}}


def completion(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "served-model",
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
    }


class Server:
    """An OpenAI-compatible endpoint inside the test, via httpx.MockTransport."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self._respond = respond

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._respond(request)

    def client(self) -> openai.AsyncOpenAI:
        # Any: openai 1.x annotates httpx's client, later ones httpx2's; both accept httpx's.
        http_client: Any = httpx.AsyncClient(transport=httpx.MockTransport(self.handle))
        return openai.AsyncOpenAI(
            api_key="test-key",
            base_url="http://models.test/v1",
            max_retries=0,
            http_client=http_client,
        )

    def body(self, index: int = 0) -> Any:
        return json.loads(self.requests[index].content)


async def test_sends_the_conversation_and_parses_the_reply() -> None:
    server = Server(
        lambda _: httpx.Response(200, json=completion({"role": "assistant", "content": "hi there"}))
    )
    model = OpenAIChatModel("default-model", client=server.client())
    conversation = [
        Message(role="system", content="Be brief."),
        Message(role="user", content="look it up"),
        Message(role="assistant", content=None, tool_calls=[CALL]),
        Message(role="tool", tool_call_id="call_1", content="42", metadata={"secret": "x"}),
        Message(role="user", content="thanks", id="m1"),
    ]

    reply = await model.complete(conversation, config=AgentConfig(name="a", model="gpt-test"))

    assert reply == Message(role="assistant", content="hi there")
    request = server.requests[0]
    assert request.method == "POST"
    assert request.url == "http://models.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer test-key"
    assert server.body() == {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "look it up"},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
            {"role": "user", "content": "thanks"},
        ],
    }


async def test_uses_its_default_model_when_the_agent_names_none() -> None:
    server = Server(
        lambda _: httpx.Response(200, json=completion({"role": "assistant", "content": "ok"}))
    )
    model = OpenAIChatModel(
        "default-model", client=server.client(), request_options={"temperature": 0}
    )

    await model.complete([Message(role="user", content="x")], config=AgentConfig(name="a"))

    assert server.body()["model"] == "default-model"
    assert server.body()["temperature"] == 0


async def test_a_tool_call_reply_keeps_its_tool_calls() -> None:
    server = Server(
        lambda _: httpx.Response(
            200, json=completion({"role": "assistant", "content": None, "tool_calls": [CALL]})
        )
    )
    model = OpenAIChatModel("m", client=server.client())

    reply = await model.complete([Message(role="user", content="x")], config=AgentConfig(name="a"))

    assert reply.role == "assistant"
    assert reply.content is None
    assert reply.tool_calls == [CALL]


@pytest.mark.parametrize(
    ("status", "retryable"), [(401, False), (429, True), (500, True), (400, False)]
)
async def test_http_errors_become_model_errors_naming_the_status(
    status: int, retryable: bool
) -> None:
    server = Server(
        lambda _: httpx.Response(
            status, json={"error": {"message": f"failure {status}", "type": "x"}}
        )
    )
    model = OpenAIChatModel("m", client=server.client())

    with pytest.raises(ModelError) as caught:
        await model.complete([Message(role="user", content="x")], config=AgentConfig(name="a"))

    assert caught.value.status == status
    assert f"HTTP {status}" in str(caught.value)
    assert f"failure {status}" in str(caught.value)
    assert caught.value.retryable is retryable
    assert isinstance(caught.value.__cause__, openai.APIStatusError)


async def test_an_unreachable_server_is_a_model_error_without_status() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    model = OpenAIChatModel("m", client=Server(refuse).client())

    with pytest.raises(ModelError, match="could not reach model server") as caught:
        await model.complete([Message(role="user", content="x")], config=AgentConfig(name="a"))
    assert caught.value.status is None


async def test_a_reply_without_choices_is_a_model_error() -> None:
    body = completion({"role": "assistant", "content": "x"}) | {"choices": []}
    model = OpenAIChatModel("m", client=Server(lambda _: httpx.Response(200, json=body)).client())

    with pytest.raises(ModelError, match="no choices"):
        await model.complete([Message(role="user", content="x")], config=AgentConfig(name="a"))


@pytest.mark.parametrize(
    "respond",
    [
        lambda: httpx.Response(200, json={"choices": "x"}),
        lambda: httpx.Response(200, json={"choices": [{}]}),
        lambda: httpx.Response(200, json=[1, 2]),
        lambda: httpx.Response(200, text="{not json", headers={"content-type": "application/json"}),
        lambda: httpx.Response(200, json=completion({"role": "assistant", "content": 5})),
        lambda: httpx.Response(200, json=completion({"role": "assistant", "tool_calls": "zz"})),
        lambda: httpx.Response(
            200, json=completion({"role": "assistant", "tool_calls": [{"foo": 1}]})
        ),
    ],
    ids=[
        "choices-str",
        "empty-choice",
        "json-list",
        "broken-json",
        "content-int",
        "tool-calls-str",
        "tool-call-without-id",
    ],
)
async def test_a_malformed_reply_is_a_model_error(respond: Callable[[], httpx.Response]) -> None:
    model = OpenAIChatModel("m", client=Server(lambda _: respond()).client())

    with pytest.raises(ModelError, match=r"model server http://models\.test/v1/"):
        await model.complete([Message(role="user", content="x")], config=AgentConfig(name="a"))


def test_request_options_cannot_override_model_or_messages() -> None:
    with pytest.raises(InvalidInputError, match="must not set messages, model"):
        OpenAIChatModel(
            "m",
            base_url="http://x/v1",
            api_key="k",
            request_options={"model": "other", "messages": []},
        )


def test_a_malformed_base_url_is_an_input_error() -> None:
    with pytest.raises(InvalidInputError, match="cannot create an OpenAI client"):
        OpenAIChatModel("m", base_url="::::", api_key="k")


async def test_no_model_name_anywhere_is_rejected_before_any_request() -> None:
    server = Server(lambda _: httpx.Response(500))
    model = OpenAIChatModel(client=server.client())

    with pytest.raises(InvalidInputError, match="no model name"):
        await model.complete([Message(role="user", content="x")], config=AgentConfig(name="a"))
    assert server.requests == []


async def test_builds_and_closes_its_own_client_from_base_url_and_api_key() -> None:
    async with OpenAIChatModel(
        "m", base_url="http://127.0.0.1:9/v1", api_key="k", max_retries=0, timeout=2
    ) as model:
        assert isinstance(model, ModelClient)
        with pytest.raises(ModelError, match=r"127\.0\.0\.1:9"):
            await model.complete([Message(role="user", content="x")], config=AgentConfig(name="a"))


def test_client_and_connection_settings_are_exclusive() -> None:
    with pytest.raises(InvalidInputError, match="either a client or"):
        OpenAIChatModel(
            "m", client=Server(lambda _: httpx.Response(500)).client(), base_url="http://x/v1"
        )


def test_agentcore_imports_without_the_openai_package() -> None:
    code = (
        "import sys; sys.modules['openai'] = None\n"
        "import agentcore\n"
        "try:\n"
        "    agentcore.OpenAIChatModel('m', base_url='http://x/v1', api_key='k')\n"
        "except agentcore.MissingDependencyError as exc:\n"
        "    print('missing:', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert (
        "missing: OpenAIChatModel needs the 'openai' extra: "
        "pip install 'agentcore-history[openai]' (from a checkout of agentcore: "
        "pip install '.[openai]')"
    ) in done.stdout
