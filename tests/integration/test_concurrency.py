"""Concurrent writers lose nothing, duplicate nothing, keep order, never deadlock.

Every test is bounded by ``asyncio.wait_for``: a deadlock fails the test
instead of hanging the run.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import textwrap
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from agentcore import PostgresHistoryRepository
from tests.integration.conftest import FIGURES
from tests.integration.storage_checks import assert_counters_match_rows

A = "support-bot"
TASKS = 64
TURNS = 100
DEADLINE = 180.0
ROOT = Path(__file__).resolve().parents[2]


def turn(tag: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"{tag}:q"}, {"role": "assistant", "content": f"{tag}:a"}]


async def bounded(*calls: Awaitable[Any]) -> list[Any]:
    return await asyncio.wait_for(asyncio.gather(*calls), DEADLINE)


class SideTraffic:
    """Replaces, clears and listings on other sessions while the writers run."""

    def __init__(self, repo: PostgresHistoryRepository, watched: list[str]) -> None:
        self.repo = repo
        self.watched = watched
        self.done = asyncio.Event()
        self.last: dict[str, list[str]] = {}
        self.operations = 0

    async def run(self, worker: int) -> None:
        rng = random.Random(worker)
        n = 0
        while not self.done.is_set():
            session = f"side-{worker}-{rng.randrange(3)}"
            n += 1
            if rng.random() < 0.5:
                batch = [f"{session}:r{n}:{i}" for i in range(rng.randrange(1, 6))]
                await self.repo.save_full_history(
                    A, session, [{"role": "user", "content": c} for c in batch]
                )
                self.last[session] = batch
            else:
                await self.repo.clear_session(A, session)
                self.last[session] = []
            for info in await self.repo.list_sessions(A, limit=1000):
                # An append of a pair is atomic: a listing never sees half of one.
                if info.session_id in self.watched:
                    assert info.message_count % 2 == 0, info
            self.operations += 2

    def check(self, stored: dict[tuple[str, str], list[str | None]]) -> None:
        for session, batch in self.last.items():
            assert stored.get((A, session), []) == batch, session
        FIGURES["concurrency: side operations (replace/clear + list)"] += self.operations


def check_writer_order(stored: list[str | None], writer: str, turns: int) -> None:
    mine = [s for s in stored if s is not None and s.startswith(f"{writer}/")]
    assert mine == [f"{writer}/{t}:{x}" for t in range(turns) for x in ("q", "a")], writer


async def test_64_tasks_appending_to_one_session_lose_and_duplicate_nothing(
    pg_pool: AsyncConnectionPool[Any], database_dsn: str
) -> None:
    repo = PostgresHistoryRepository(pg_pool)
    side = SideTraffic(repo, watched=["hot"])

    async def writer(w: int) -> None:
        for t in range(TURNS):
            # Half the writers give ids (the locked path), half do not.
            batch = turn(f"w{w}/{t}")
            if w % 2:
                batch = [m | {"id": f"w{w}-{t}-{i}"} for i, m in enumerate(batch)]
            assert await repo.append_messages(A, "hot", batch) == 2

    async def writers() -> None:
        await asyncio.gather(*(writer(w) for w in range(TASKS)))
        side.done.set()

    await bounded(writers(), *(side.run(k) for k in range(2)))

    stored = assert_counters_match_rows(database_dsn)
    hot = stored[(A, "hot")]
    assert len(hot) == TASKS * TURNS * 2 and len(set(hot)) == len(hot)
    for w in range(TASKS):
        check_writer_order(hot, f"w{w}", TURNS)
    for i in range(0, len(hot), 2):  # every turn's pair is adjacent
        q, a = hot[i], hot[i + 1]
        assert q is not None and a is not None and q.endswith(":q") and a == q[:-1] + "a"
    side.check(stored)
    FIGURES["concurrency: appends"] += TASKS * TURNS


async def test_64_tasks_on_64_sessions_keep_every_session_to_itself(
    pg_pool: AsyncConnectionPool[Any], database_dsn: str
) -> None:
    repo = PostgresHistoryRepository(pg_pool)
    sessions = [f"session-{w}" for w in range(TASKS)]
    side = SideTraffic(repo, watched=sessions)

    async def writer(w: int) -> None:
        for t in range(TURNS):
            assert await repo.append_messages(A, sessions[w], turn(f"w{w}/{t}")) == 2
            if t % 25 == 0:
                window = await repo.load_history(A, sessions[w], limit=2)
                assert [m.content for m in window] == [f"w{w}/{t}:q", f"w{w}/{t}:a"]

    async def writers() -> None:
        await asyncio.gather(*(writer(w) for w in range(TASKS)))
        side.done.set()

    await bounded(writers(), *(side.run(k) for k in range(2)))

    stored = assert_counters_match_rows(database_dsn)
    for w, session in enumerate(sessions):
        conversation = stored[(A, session)]
        # Exactly this writer's turns, in order: nothing lost, duplicated or foreign.
        assert conversation == [f"w{w}/{t}:{x}" for t in range(TURNS) for x in ("q", "a")]
    side.check(stored)
    FIGURES["concurrency: appends"] += TASKS * TURNS


async def test_appends_racing_replaces_and_clears_on_one_session(
    pg_pool: AsyncConnectionPool[Any], database_dsn: str
) -> None:
    """The session ends as the last replace (or clear) plus whole turns appended after it."""
    repo = PostgresHistoryRepository(pg_pool)
    writers_count, turns = 16, 40
    spans: dict[str, tuple[float, float]] = {}
    destructive: list[tuple[float, float, list[str]]] = []
    done = asyncio.Event()

    async def writer(w: int) -> None:
        for t in range(turns):
            tag = f"w{w}/{t}"
            started = time.monotonic()
            await repo.append_messages(A, "mixed", turn(tag))
            spans[tag] = (started, time.monotonic())

    async def wrecker() -> None:
        rng = random.Random(7)
        n = 0
        while not done.is_set():
            n += 1
            started = time.monotonic()
            if rng.random() < 0.6:
                batch = [f"R{n}:{i}" for i in range(rng.randrange(1, 5))]
                await repo.save_full_history(
                    A, "mixed", [{"role": "system", "content": c} for c in batch]
                )
            else:
                batch = []
                await repo.clear_session(A, "mixed")
            destructive.append((started, time.monotonic(), batch))
            await asyncio.sleep(rng.random() / 100)

    async def writers() -> None:
        await asyncio.gather(*(writer(w) for w in range(writers_count)))
        done.set()

    await bounded(writers(), wrecker())

    stored = assert_counters_match_rows(database_dsn).get((A, "mixed"), [])
    check_last_write_wins(stored, destructive[-1], spans, writers_count)
    FIGURES["concurrency: appends"] += writers_count * turns
    FIGURES["concurrency: side operations (replace/clear + list)"] += len(destructive)


def check_last_write_wins(
    stored: list[str | None],
    last: tuple[float, float, list[str]],
    spans: dict[str, tuple[float, float]],
    writers_count: int,
) -> None:
    """``stored`` is the last replace's batch, then whole turns; none lost, none resurrected."""
    last_start, last_end, last_batch = last
    assert stored[: len(last_batch)] == last_batch
    appended = stored[len(last_batch) :]
    assert len(appended) % 2 == 0 and len(set(appended)) == len(appended)
    present = set()
    for i in range(0, len(appended), 2):
        q, a = appended[i], appended[i + 1]
        assert q is not None and a is not None and q.endswith(":q") and a == q[:-1] + "a"
        present.add(q[:-2])
    for tag, (started, ended) in spans.items():
        if started > last_end:
            assert tag in present, f"{tag} was appended after the last replace and is lost"
        if ended < last_start:
            assert tag not in present, f"{tag} survived a later replace"
    for w in range(writers_count):  # surviving turns of a writer keep their order
        mine = [int(t.split("/")[1]) for t in present if t.startswith(f"w{w}/")]
        assert [s for s in appended if s and s.startswith(f"w{w}/") and s.endswith("q")] == [
            f"w{w}/{t}:q" for t in sorted(mine)
        ]


WRITER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from agentcore import PostgresHistoryRepository

    async def main(dsn, name, turns, with_ids):
        async with PostgresHistoryRepository.from_dsn(dsn, max_size=4) as repo:
            async def one(t):
                batch = [{"role": "user", "content": f"{name}/{t}:q"},
                         {"role": "assistant", "content": f"{name}/{t}:a"}]
                if with_ids:
                    batch = [m | {"id": f"{name}-{t}-{i}"} for i, m in enumerate(batch)]
                assert await repo.append_messages("support-bot", "shared", batch) == 2
            for t in range(turns):
                await one(t)

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "ids"))
    """
)


async def test_two_processes_appending_to_one_session(database_dsn: str, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT)
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    turns = 300

    async def process(name: str, ids: str) -> None:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            database_dsn,
            name,
            str(turns),
            ids,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await child.communicate()
        assert child.returncode == 0, err.decode()

    await bounded(process("p1", "ids"), process("p2", "no-ids"))

    stored = assert_counters_match_rows(database_dsn)[(A, "shared")]
    assert len(stored) == 2 * turns * 2 and len(set(stored)) == len(stored)
    for name in ("p1", "p2"):
        check_writer_order(stored, name, turns)
    FIGURES["concurrency: appends from two OS processes"] += 2 * turns
