"""Ctrl-C in an interactive ``agentcore chat`` stops it at once, exit 130, no half turn stored.

The command runs on a real terminal (a pty that is its controlling terminal), and
the test types ``^C`` on it: the terminal sends SIGINT, as it does for a person.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from agentcore import PostgresHistoryRepository
from agentcore.models import Message
from tests.integration.test_cli import ROOT

CTRL_C = b"\x03"
PROMPT = "you> "
QUICK = 5.0
"""Seconds within which Ctrl-C must have ended the command (it takes well under one)."""

# The child makes the pty its controlling terminal (it leads a new session), so
# that ^C typed on the terminal reaches it as SIGINT; then it becomes agentcore.
_ON_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, '-m', 'agentcore', *sys.argv[1:]])"
)


class Terminal:
    """``agentcore`` running on a pty: type on it, read what it shows."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        controller, terminal = os.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ON_TERMINAL, *argv],
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        os.close(terminal)
        self._controller = controller
        self.shown = ""

    def type(self, keys: bytes) -> None:
        os.write(self._controller, keys)

    def wait_for(self, text: str, *, after: int = 0, timeout: float = 60.0) -> None:
        """Read until ``text`` is shown past position ``after``."""
        deadline = time.monotonic() + timeout
        while text not in self.shown[after:]:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} never shown; the terminal shows:\n{self.shown}"
            if not self._read(left):
                raise AssertionError(f"ended before {text!r}; it showed:\n{self.shown}")

    def wait_for_exit(self, timeout: float) -> int | None:
        """The exit status, or ``None`` if it is still running after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.05)
        code = self.process.poll()
        while code is not None and self._read(0.05):
            pass
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        os.close(self._controller)

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self._controller], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self._controller, 65536)
        except OSError:  # EIO: the other end is closed
            return False
        self.shown += data.decode("utf-8", "replace").replace("\r\n", "\n")
        return bool(data)


@contextmanager
def chat_on_a_terminal(dsn: str, *options: str, **env: str) -> Iterator[Terminal]:
    base = {k: v for k, v in os.environ.items() if k != "AGENTCORE_DATABASE_URL"}
    terminal = Terminal(
        ["chat", "--agent", "a", "--session", "s", *options],
        {**base, "AGENTCORE_DATABASE_URL": dsn, **env},
    )
    try:
        terminal.wait_for(PROMPT)
        yield terminal
    finally:
        terminal.close()


def stored(dsn: str) -> list[Message]:
    async def load() -> list[Message]:
        async with PostgresHistoryRepository.from_dsn(dsn) as repository:
            return await repository.load_history("a", "s")

    return asyncio.run(load())


def test_ctrl_c_at_the_prompt_stops_at_once_with_130(database_dsn: str) -> None:
    with chat_on_a_terminal(database_dsn) as terminal:
        terminal.type(b"hello\n")
        seen = len(terminal.shown)
        terminal.wait_for('echo: "hello"', after=seen)
        terminal.wait_for(PROMPT, after=seen)
        terminal.type(b"half a line")  # typed, never sent: Ctrl-C discards it
        started = time.monotonic()
        terminal.type(CTRL_C)
        code = terminal.wait_for_exit(QUICK)
        took = time.monotonic() - started
        assert code == 130, f"after {took:.1f} s, exit {code}; it showed:\n{terminal.shown}"
        assert terminal.shown.endswith("\nagentcore: interrupted\n"), terminal.shown
        assert "Traceback" not in terminal.shown
    assert [(m.role, m.content) for m in stored(database_dsn)][:1] == [("user", "hello")]
    assert len(stored(database_dsn)) == 2  # the one turn sent, whole


class _SlowChatCompletions(BaseHTTPRequestHandler):
    """An OpenAI-compatible server that answers only once ``release`` is set."""

    arrived: ClassVar[threading.Event] = threading.Event()
    release: ClassVar[threading.Event] = threading.Event()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).arrived.set()
        type(self).release.wait(60)
        reply = json.dumps(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "too late"},
                    }
                ],
            }
        ).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
        except OSError:  # the client is gone
            pass

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_ctrl_c_while_a_turn_runs_stores_nothing_of_it(database_dsn: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowChatCompletions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with chat_on_a_terminal(
            database_dsn,
            "--model",
            "openai",
            OPENAI_API_KEY="sk-local",
            OPENAI_BASE_URL=f"http://127.0.0.1:{server.server_port}/v1",
        ) as terminal:
            terminal.type(b"are you there?\n")
            assert _SlowChatCompletions.arrived.wait(60), terminal.shown
            terminal.type(CTRL_C)
            code = terminal.wait_for_exit(QUICK)
            assert code == 130, f"exit {code}; it showed:\n{terminal.shown}"
            assert terminal.shown.endswith("agentcore: interrupted\n"), terminal.shown
            assert "Traceback" not in terminal.shown
    finally:
        _SlowChatCompletions.release.set()
        server.shutdown()
        server.server_close()
    assert stored(database_dsn) == []


def test_chat_reads_its_lines_from_a_pipe_a_file_and_dev_null(
    database_dsn: str, tmp_path: Path
) -> None:
    argv = [sys.executable, "-m", "agentcore", "chat", "--agent", "a", "--session", "s"]
    env = {**os.environ, "AGENTCORE_DATABASE_URL": database_dsn}
    piped = subprocess.run(
        argv,
        input="grüße\r\n\nnext",
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.splitlines() == [
        'echo: "grüße" (I remember no earlier messages)',
        'echo: "next" (I remember 2 earlier messages; you first said "grüße")',
    ]
    lines = tmp_path / "lines.txt"
    lines.write_text("third\n", encoding="utf-8")
    with lines.open("rb") as file:
        from_file = subprocess.run(
            argv, stdin=file, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout.startswith('echo: "third" (I remember 4 earlier messages')
    nothing = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (nothing.returncode, nothing.stdout, nothing.stderr) == (0, "", "")
    assert len(stored(database_dsn)) == 6
