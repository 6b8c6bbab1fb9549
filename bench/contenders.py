"""The contenders of the "turns" workload: the same turn, written six ways.

One turn on session ``s`` of agent ``a``: load the last 20 messages (oldest
first), then store a ~200-character user message and a ~600-character
assistant message. Every Python contender is an object with ``turn(session,
n)``; pgbench runs the reference's two statements itself (see ``pgbench.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from agentcore import InMemoryHistoryRepository, Message, PostgresHistoryRepository
from agentcore.sql import Queries, load_queries

WINDOW = 20
USER_CONTENT = ("Could you summarise where we are with the quarterly report and the budget? " * 4)[
    :200
]
ASSISTANT_CONTENT = (
    "Here is where things stand: the draft report is done, two figures still need "
    "checking against the ledger, and the budget review moved to Thursday. " * 6
)[:600]

Turn = Callable[[str, int], Awaitable[None]]


def bench_queries() -> Queries:
    """The bench's own SQL (``bench/sql/*.sql``), parsed by agentcore's loader."""
    return load_queries(Path(__file__).parent / "sql")


class RepositoryTurn:
    """Contenders 1 and 6: ``load_history(limit=20)`` then ``append_messages``."""

    def __init__(
        self,
        repo: PostgresHistoryRepository | InMemoryHistoryRepository,
        agent: str,
        *,
        with_ids: bool = False,
    ) -> None:
        self._repo = repo
        self._agent = agent
        self._with_ids = with_ids

    async def __call__(self, session: str, n: int) -> None:
        await self._repo.load_history(self._agent, session, limit=WINDOW)
        # With ids (a caller that retries safely), the append also checks
        # which ids the conversation already holds.
        ids = (f"{session}-{n}-q", f"{session}-{n}-a") if self._with_ids else (None, None)
        await self._repo.append_messages(
            self._agent,
            session,
            [
                Message(role="user", content=USER_CONTENT, id=ids[0]),
                Message(role="assistant", content=ASSISTANT_CONTENT, id=ids[1]),
            ],
        )


class AgentTurn:
    """Contender 2: ``Agent.execute_agent`` with ``EchoModel`` over the repository.

    EchoModel's reply is about 190 characters, not 600: the agent stores what
    the model says.
    """

    def __init__(self, repo: PostgresHistoryRepository, agent: str) -> None:
        from agentcore.agent import Agent
        from agentcore.models import AgentConfig
        from agentcore.offline_models import EchoModel

        config = AgentConfig(name=agent, include_history=True, history_limit=WINDOW)
        self._agent = Agent(config, EchoModel(), repo)

    async def __call__(self, session: str, n: int) -> None:
        await self._agent.execute_agent(USER_CONTENT, session_id=session)


class ReferenceTurn:
    """Contender 4: the two statements by hand, one pool checkout per turn."""

    def __init__(self, pool: AsyncConnectionPool[Any], agent: str, sql: Queries) -> None:
        self._pool = pool
        self._agent = agent
        self._load = sql["reference_load"].text
        self._append = sql["reference_append"].text

    async def __call__(self, session: str, n: int) -> None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                self._load, {"agent_name": self._agent, "session_id": session, "limit": WINDOW}
            )
            window = await cur.fetchall()
            window.reverse()
            await conn.execute(
                self._append,
                {
                    "agent_name": self._agent,
                    "session_id": session,
                    "user_content": USER_CONTENT,
                    "assistant_content": ASSISTANT_CONTENT,
                },
            )


class RewriteTurn:
    """Contender 3: the seed plan's design, in raw psycopg.

    Load the last 20; then, in one transaction, delete the whole conversation
    and insert the window plus the two new messages (renumbered from 0). As in
    the seed, a window smaller than the history silently drops the rest.
    """

    def __init__(self, pool: AsyncConnectionPool[Any], agent: str, sql: Queries) -> None:
        self._pool = pool
        self._agent = agent
        self._load = sql["reference_load"].text
        self._delete = sql["rewrite_delete"].text
        self._insert = sql["rewrite_insert"].text

    async def __call__(self, session: str, n: int) -> None:
        key = {"agent_name": self._agent, "session_id": session}
        async with self._pool.connection() as conn:
            cur = await conn.execute(self._load, key | {"limit": WINDOW})
            rows = await cur.fetchall()
            rows.reverse()
            now = datetime.now(UTC)
            window = [
                {
                    "role": role,
                    "content": content,
                    "name": name,
                    "tool_calls": None if tool_calls is None else Jsonb(tool_calls),
                    "tool_call_id": tool_call_id,
                    "metadata": Jsonb(metadata),
                    "message_id": message_id,
                    "created_at": created_at,
                }
                for (
                    role,
                    content,
                    name,
                    tool_calls,
                    tool_call_id,
                    metadata,
                    message_id,
                    created_at,
                ) in rows
            ]
            for role, content in (("user", USER_CONTENT), ("assistant", ASSISTANT_CONTENT)):
                window.append(
                    {
                        "role": role,
                        "content": content,
                        "name": None,
                        "tool_calls": None,
                        "tool_call_id": None,
                        "metadata": Jsonb({}),
                        "message_id": None,
                        "created_at": now,
                    }
                )
            async with conn.transaction():
                await conn.execute(self._delete, key)
                async with conn.cursor() as cur:
                    # executemany runs the inserts in one pipeline (one round trip).
                    await cur.executemany(
                        self._insert,
                        [key | row | {"seq": seq} for seq, row in enumerate(window)],
                    )
