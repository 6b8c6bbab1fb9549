"""``agentcore chat``: one turn, or an interactive loop, in one session."""

from __future__ import annotations

import asyncio
import codecs
import os
import sys
from collections.abc import Callable
from typing import TextIO

from agentcore.cli.render import counted, describe
from agentcore.errors import AgentcoreError, InvalidInputError
from agentcore.facade import ExecutionFacade
from agentcore.model_client import ModelClient
from agentcore.models import AgentConfig
from agentcore.offline_models import EchoModel
from agentcore.openai_model import OpenAIChatModel
from agentcore.repository import TurnStore

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
    history: TurnStore,
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
    lines = StdinLines(sys.stdin)
    failed = 0
    while True:
        line = await _next_line(lines, interactive=interactive, out=out)
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
        raise AgentcoreError(
            f"{counted(failed, 'input line')} failed (see above); the others were sent"
        )


async def _next_line(
    lines: StdinLines, *, interactive: bool, out: Callable[[str], None]
) -> str | None:
    if not interactive:
        return await lines.read_line()
    sys.stdout.write("you> ")
    sys.stdout.flush()
    try:
        return await lines.read_line()
    except asyncio.CancelledError:  # Ctrl-C: end the prompt's line before "interrupted"
        out("")
        raise


class StdinLines:
    """Lines of standard input, read on the event loop rather than in a thread.

    A thread blocked in ``input()`` cannot be interrupted: Ctrl-C cancels the
    command's task at once, but ``asyncio.run`` then waits for its worker
    threads, that is for Enter. Here the loop waits until the descriptor is
    readable, so a cancellation ends the wait immediately. A regular file (which
    the loop cannot watch, and which never blocks) is read directly, and so is a
    stream without a descriptor (a test's ``StringIO``).
    """

    _CHUNK = 65536

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        try:
            self._fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None
        decoder = codecs.getincrementaldecoder(getattr(stream, "encoding", None) or "utf-8")
        self._decoder = decoder(errors=getattr(stream, "errors", None) or "strict")
        self._pending = ""
        self._ended = False

    async def read_line(self) -> str | None:
        """The next line without its line break; ``None`` at end of input."""
        if self._fd is None:
            text = self._stream.readline()
            return text.removesuffix("\n") if text else None
        while "\n" not in self._pending and not self._ended:
            chunk = await self._read_chunk(self._fd)
            self._ended = not chunk
            self._pending += self._decoder.decode(chunk, final=self._ended)
        if not self._pending:
            return None
        line, _, self._pending = self._pending.partition("\n")
        return line.removesuffix("\r")

    async def _read_chunk(self, fd: int) -> bytes:
        loop = asyncio.get_running_loop()
        readable = loop.create_future()

        def ready() -> None:
            if not readable.done():
                readable.set_result(None)

        try:
            loop.add_reader(fd, ready)
        except (PermissionError, ValueError):  # a regular file: epoll refuses it, reads never wait
            return os.read(fd, self._CHUNK)
        try:
            await readable
        finally:
            loop.remove_reader(fd)
        return os.read(fd, self._CHUNK)
