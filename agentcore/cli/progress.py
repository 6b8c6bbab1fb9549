"""A progress bar on a terminal, nothing elsewhere."""

from __future__ import annotations

import time
from typing import TextIO

from agentcore.cli.render import counted


class ProgressBar:
    """One status line redrawn in place (``\\r``) on ``stream``, only if it is a terminal.

    Args:
        stream: Where to draw (the CLI uses stderr, so stdout stays clean).
        what: The unit counted, in the singular (``conversation``).
        total: How many are expected, when known: then a bar and a percentage.
    """

    WIDTH = 30
    _INTERVAL = 0.1  # seconds between redraws: a fast loop must not flood the terminal

    def __init__(self, stream: TextIO, what: str, total: int | None = None) -> None:
        self._stream = stream
        self._what = what
        self._total = total
        self._enabled = stream.isatty()
        self._drawn = 0.0
        self._width = 0

    def update(self, done: int, detail: str = "", *, force: bool = False) -> None:
        """Show ``done`` of the total (redrawn at most ten times a second unless ``force``)."""
        if not self._enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn < self._INTERVAL:
            return
        self._drawn = now
        if self._total:
            share = min(1.0, done / self._total)
            filled = round(share * self.WIDTH)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            text = f"[{bar}] {share:4.0%} {done:,}/{counted(self._total, self._what, grouped=True)}"
        else:
            text = counted(done, self._what, grouped=True)
        if detail:
            text += f", {detail}"
        self._stream.write("\r" + text.ljust(self._width))
        self._width = len(text)
        self._stream.flush()

    def clear(self) -> None:
        """Erase the status line, so that a message can be printed; the next update redraws it."""
        if self._enabled and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0
            self._drawn = 0.0

    def close(self) -> None:
        """End the status line (a newline), if anything was drawn."""
        if self._enabled and self._width:
            self._stream.write("\n")
            self._stream.flush()
