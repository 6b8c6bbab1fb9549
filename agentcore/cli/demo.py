"""``agentcore demo``: two sessions of one agent, concurrently, then resumed on the next run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from agentcore.cli.render import counted
from agentcore.facade import ExecutionFacade
from agentcore.models import AgentConfig, AgentResult
from agentcore.offline_models import EchoModel
from agentcore.repository import HistoryRepository, SessionLifecycle

AGENT = "demo-assistant"
SHOWN = 4
"""How many stored messages per session the demo prints (the latest)."""
WIDTH = 72
"""Stored messages are cut to this many characters."""


@dataclass(frozen=True)
class Speaker:
    """One demo session and what its user says on a first run and on later runs."""

    session_id: str
    first_run: tuple[str, str]
    later_runs: tuple[str, str]


SPEAKERS = (
    Speaker(
        "demo-alice",
        ("Hi, I'm Alice. My favourite colour is green.", "What is my favourite colour?"),
        ("Alice again. Do you remember me?", "Good. Bye for now!"),
    ),
    Speaker(
        "demo-bob",
        ("Hello, Bob here. I collect stamps.", "What do I collect?"),
        ("Bob is back. Still remember my hobby?", "Thanks, see you."),
    ),
)


async def run_demo(
    history: HistoryRepository,
    out: Callable[[str], None],
    *,
    again: str = "agentcore demo",
    where: str = "",
) -> None:
    """Run one demo round against ``history``, printing through ``out``.

    Two sessions of one agent run at the same time (each round's two turns are
    awaited together) and their stored transcripts are read back to show that
    neither saw the other. The sessions keep their ids between runs, so a later
    run resumes them.

    Args:
        history: Where the sessions are stored.
        out: Prints one line.
        again: The command that runs the demo again where the user stands
            (``python3 run.py demo`` from a checkout, ``agentcore demo``...).
        where: What running ``again`` needs to find the same database
            (``" with the same --dsn"``), or nothing.
    """
    config = AgentConfig(name=AGENT, include_history=True)
    facade = ExecutionFacade([config], EchoModel(), history=history)
    # Every read is bounded: the message counts come from list_sessions.
    run = (await _message_counts(history)).get(SPEAKERS[0].session_id, 0) // 4 + 1
    width = max(len(s.session_id) for s in SPEAKERS)

    if run == 1:
        out(f"Run 1: two sessions of agent {AGENT!r} talk at the same time, turns interleaved.")
    else:
        out(f"Run {run}: the same two sessions resume; they remember the earlier runs.")
    out("")
    for turn in range(2):
        lines = [s.first_run[turn] if run == 1 else s.later_runs[turn] for s in SPEAKERS]
        results: list[AgentResult] = await asyncio.gather(
            *(
                facade.run_agent(AGENT, line, session_id=s.session_id)
                for s, line in zip(SPEAKERS, lines, strict=True)
            )
        )
        for speaker, line in zip(SPEAKERS, lines, strict=True):
            out(f"  {speaker.session_id:<{width}}  you: {line}")
        for speaker, result in zip(SPEAKERS, results, strict=True):
            out(f"  {speaker.session_id:<{width}}  bot: {result.output}")

    out("")
    out("Stored history, read back from the database:")
    transcripts = {}
    counts = await _message_counts(history)
    for speaker in SPEAKERS:
        stored = await history.load_history(AGENT, speaker.session_id, config.history_limit)
        transcripts[speaker.session_id] = {m.content for m in stored}
        shown = stored[-SHOWN:]
        count = counts.get(speaker.session_id, len(stored))
        note = f", the last {len(shown)} shown" if len(shown) < count else ""
        out(f"  session {speaker.session_id} ({counted(count, 'message')}{note}):")
        for message in shown:
            out(f"    {message.role:>9}: {_cut(message.content or '')}")

    alice, bob = (transcripts[s.session_id] for s in SPEAKERS)
    shared = alice & bob
    out("")
    if shared:
        out(f"Isolation check FAILED: both sessions hold {sorted(map(str, shared))}")
        raise AssertionError("the demo sessions share messages")
    out("Isolation check: neither session's history holds a message of the other.")
    if run == 1:
        out(f"Run `{again}` again{where}: both sessions resume with what they remember.")
    else:
        out(
            "Each reply above counts the earlier messages it was shown (the last "
            f"{config.history_limit}) and quotes the first thing its user said in them."
        )


async def _message_counts(history: SessionLifecycle) -> dict[str, int]:
    return {s.session_id: s.message_count for s in await history.list_sessions(AGENT)}


def _cut(text: str) -> str:
    return text if len(text) <= WIDTH else text[: WIDTH - 1] + "…"
