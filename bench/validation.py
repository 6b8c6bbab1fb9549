"""Client CPU of the write-side validation, per message (no database).

    python -m bench.validation [--number 20000] [--repeat 7] [--case NAME]

Times ``prepare_messages`` on already validated :class:`Message` objects (the
common case: the agent's turn, or a caller appending models it built), for a
plain message, one with small metadata and one with tool calls. Prints the best
of ``--repeat`` runs in microseconds per message. On a busy machine, count
instructions instead (deterministic), with and without the calls::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python -m bench.validation --case plain --number 2000 --repeat 1
    # minus the same with --number 0, divided by 2000 x the case's message count

The figures are in bench/NOTES.md.
"""

from __future__ import annotations

import argparse
import time

from agentcore.models import Message
from agentcore.validation import DEFAULT_MAX_CONTENT_CHARS, prepare_messages

CASES = {
    "plain": [
        Message(role="user", content="What is the capital of France? " * 6),
        Message(role="assistant", content="Paris is the capital of France. " * 18),
    ],
    "metadata": [
        Message(
            role="user",
            content="hello " * 30,
            id="req-7f3a9c1e-turn-1",
            metadata={"trace": "abc123", "tokens": 12, "tags": ["a", "b"]},
        ),
    ],
    "tool_calls": [
        Message(
            role="assistant",
            content=None,
            tool_calls=[
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": "paris"}'},
                }
            ],
        ),
    ],
}


def per_message_us(batch: list[Message], number: int, repeat: int) -> float:
    best = float("inf")  # the least disturbed run
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            prepare_messages(batch, max_content_chars=DEFAULT_MAX_CONTENT_CHARS)
        best = min(best, time.perf_counter() - start)
    return best / number / len(batch) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20000, help="calls per run")
    parser.add_argument("--repeat", type=int, default=7, help="runs; the best is kept")
    parser.add_argument("--case", choices=sorted(CASES), help="only this case")
    args = parser.parse_args()
    for name, batch in CASES.items():
        if args.case in (None, name):
            us = per_message_us(batch, args.number, args.repeat) if args.number else 0.0
            print(f"{name:<12} {len(batch)} message(s) {us:6.2f} µs/message")


if __name__ == "__main__":
    main()
