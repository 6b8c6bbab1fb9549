"""``agentcore chat``: one turn, or an interactive loop, in one session."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable

from agentcore.cli.render import describe
from agentcore.errors import AgentcoreError, InvalidInputError
from agentcore.facade import ExecutionFacade
from agentcore.model_client import ModelClient
from agentcore.models import AgentConfig
from agentcore.offline_models import EchoModel
from agentcore.openai_model import OpenAIChatModel
from agentcore.repository import HistoryRepository

EXIT_COMMANDS = frozenset({"/exit", "/quit"})


def build_model(kind: str, model_name: str) -> ModelClient:
    """The model client ``--model`` names.

    Raises:
        InvalidInputError: ``openai`` without ``OPENAI_API_KEY``.
        MissingDependencyError: ``openai`` without the ``openai`` extra.
    """
    if kind == "echo":
        return EchoModel()
    api_key = os.environ.get("OPENAI_API_KEY")
    if not api_key:
        raise InvalidInputError(
            "--model openai needs OPENAI_API_KEY (any non-empty string for a local server)"
        )
    return OpenAIChatModel(
        model=model_name, base_url=os.environ.get("OPENAI_BASE_URL") or None, api_key=api_key
    )


async def run_chat(
    history: HistoryRepository,
    model: ModelClient,
    config: AgentConfig,
    session_id: str,
    message: str | None,
    out: Callable[[str], None],
) -> None:
    """Send ``message`` and print the reply; without one, loop over stdin lines.

    The loop ends at end of input or on ``/exit``. Empty lines are skipped. A
    line that fails (a refused input, a model or database error) prints one
    error line on stderr and the loop goes on; if any did, the command fails
    at the end.
    """
    facade = ExecutionFacade([config], model, history=history)
    if message is not None:
        result = await facade.run_agent(config.name, message, session_id=session_id)
        out(result.output)
        return
    interactive = sys.stdin.isatty()
    if interactive:
        out(f"Session {session_id!r} of agent {config.name!r}. /exit or Ctrl-D ends it.")
    failed = 0
    while True:
        line = await asyncio.to_thread(_read_line, "you> " if interactive else "")
        if line is None or line.strip() in EXIT_COMMANDS:
            break
        if not line.strip():
            continue
        try:
            result = await facade.run_agent(config.name, line, session_id=session_id)
        except AgentcoreError as exc:
            failed += 1
            print(f"agentcore: error: {describe(exc)}", file=sys.stderr, flush=True)
            continue
        out(f"{config.name}> {result.output}" if interactive else result.output)
    if failed:
        raise AgentcoreError(f"{failed} input line(s) failed (see above); the others were sent")


def _read_line(prompt: str) -> str | None:
    try:
        return input(prompt)
    except EOFError:
        return None
