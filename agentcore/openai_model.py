"""A model client for any OpenAI-compatible chat-completions server.

Needs the optional ``openai`` package (``pip install 'agentcore-history[openai]'``); it
is imported only when an :class:`OpenAIChatModel` is created, so ``import
agentcore`` works without it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

from agentcore.errors import InvalidInputError, MissingDependencyError, ModelError
from agentcore.models import AgentConfig, Message

if TYPE_CHECKING:
    from openai import AsyncOpenAI
    from openai.types.chat import ChatCompletion


def _openai() -> ModuleType:
    try:
        return importlib.import_module("openai")
    except ImportError as exc:
        raise MissingDependencyError.for_extra("OpenAIChatModel", "openai") from exc


class OpenAIChatModel:
    """Replies through the official ``openai`` SDK's chat-completions API.

    Pass either ``client`` (an ``openai.AsyncOpenAI`` you own and close) or the
    connection settings, from which this model creates its own client; close
    that one with :meth:`aclose` or ``async with``.

    Args:
        model: The default model name; ``AgentConfig.model`` overrides it.
        base_url: The server's API root (e.g. ``http://localhost:11434/v1``).
        api_key: The API key (local servers usually accept any string).
        client: An ``openai.AsyncOpenAI`` to use instead of creating one.
        timeout: Seconds before a request is abandoned (own client only).
        max_retries: How often the SDK retries 429/5xx/connection errors (own client only).
        request_options: Extra ``chat.completions.create`` arguments sent on
            every call (``temperature``, ``tools``...).

    Raises:
        MissingDependencyError: the ``openai`` package is not installed.
        InvalidInputError: both ``client`` and connection settings were given,
            ``request_options`` sets ``model`` or ``messages``, or the SDK
            refuses the settings (a malformed ``base_url``...).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: AsyncOpenAI | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        request_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._sdk = _openai()
        if client is not None and (base_url is not None or api_key is not None):
            raise InvalidInputError(
                "give OpenAIChatModel either a client or base_url/api_key, not both"
            )
        reserved = {"model", "messages"} & set(request_options or {})
        if reserved:
            raise InvalidInputError(
                f"request_options must not set {', '.join(sorted(reserved))}: "
                "the model comes from model= or AgentConfig.model, the messages from the agent"
            )
        self._owns_client = client is None
        try:
            self._client: AsyncOpenAI = client or self._sdk.AsyncOpenAI(
                base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries
            )
        except Exception as exc:  # the SDK raises httpx's and its own errors here
            raise InvalidInputError(
                f"cannot create an OpenAI client for base_url={base_url!r}: {exc}"
            ) from exc
        self._model = model
        self._request_options = dict(request_options or {})
        self._base_url = str(self._client.base_url)

    async def complete(self, messages: Sequence[Message], *, config: AgentConfig) -> Message:
        """Send the conversation to ``/chat/completions`` and return the first choice.

        Args:
            messages: The conversation, sent as chat messages (``to_chat_dict``).
            config: The agent; its ``model`` (else this client's ``model``) is used.

        Returns:
            The reply as an assistant :class:`Message` (``tool_calls`` kept verbatim).

        Raises:
            InvalidInputError: no model name is configured.
            ModelError: the server answered with an HTTP error (``status`` set),
                could not be reached, or sent an unusable reply.
        """
        model = config.model or self._model
        if not model:
            raise InvalidInputError(
                f"agent {config.name!r} has no model name: set AgentConfig.model "
                "or OpenAIChatModel(model=...)"
            )
        sdk = self._sdk
        try:
            completion = await self._client.chat.completions.create(
                model=model,
                messages=[m.to_chat_dict() for m in messages],  # type: ignore[misc]
                **self._request_options,
            )
        except sdk.APIStatusError as exc:
            raise ModelError(
                f"model server {self._base_url} answered HTTP {exc.status_code} "
                f"for model {model!r}: {exc.message}",
                status=exc.status_code,
            ) from exc
        except sdk.APIConnectionError as exc:
            raise ModelError(
                f"could not reach model server {self._base_url}: {exc.message}"
            ) from exc
        except sdk.OpenAIError as exc:
            raise ModelError(f"model server {self._base_url} failed: {exc}") from exc
        except ValueError as exc:  # e.g. a body that is not JSON
            raise ModelError(
                f"model server {self._base_url} sent a reply that is not a chat completion: {exc}"
            ) from exc
        try:
            return _reply_message(completion, self._base_url)
        except (AttributeError, TypeError, ValueError) as exc:  # a malformed completion
            raise ModelError(
                f"model server {self._base_url} sent an unusable reply: {exc}"
            ) from exc

    async def aclose(self) -> None:
        """Close the SDK client if this model created it (an injected one is left open)."""
        if self._owns_client:
            await self._client.close()

    async def __aenter__(self) -> OpenAIChatModel:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def _reply_message(completion: ChatCompletion, base_url: str) -> Message:
    if not completion.choices:
        raise ModelError(f"model server {base_url} returned no choices")
    reply = completion.choices[0].message
    tool_calls = (
        [call.model_dump(mode="json", exclude_none=True) for call in reply.tool_calls]
        if reply.tool_calls
        else None
    )
    for call in tool_calls or []:
        function = call.get("function")
        if not call.get("id") or not isinstance(function, dict) or not function.get("name"):
            raise ModelError(
                f"model server {base_url} sent a tool call without an id or a function name: "
                f"{call!r}"
            )
    content = reply.content
    if content is None and not tool_calls:
        content = reply.refusal or ""
    return Message(role="assistant", content=content, tool_calls=tool_calls)
