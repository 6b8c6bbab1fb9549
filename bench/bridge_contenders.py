"""The contenders of ``bench.bridges``: one framework turn, through each store.

An OpenAI Agents SDK turn is what ``Runner.run(agent, input, session=...)``
asks of its session in openai-agents 0.24.0 (traced with a counting session):
``get_items()`` with the session's ``SessionSettings.limit`` (``None`` by
default: every item), then ``add_items([input])`` and, once the model has
answered, ``add_items([reply])``. A LangChain turn is what
``RunnableWithMessageHistory`` with a ``history_messages_key`` asks of its
history: read the messages, then add the input and the reply in one call.

Every contender is an object with ``seed(session, count)`` (untimed: puts
``count`` items in), ``turn(session, n)``, ``pop(session)`` where the store
has one, and ``close()``; ``sync`` says whether ``turn`` blocks (run from
threads) or is a coroutine (run from tasks of one event loop). A contender
owns what it opened (pools, engines, files) and is opened once per timed run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from agentcore import InMemoryHistoryRepository, PostgresHistoryRepository, SyncHistoryRepository
from bench.contenders import ASSISTANT_CONTENT, USER_CONTENT
from bench.turns import _pool

SEED_BATCH = 1000
LANGCHAIN_TABLE = "bench_langchain_postgres"
_SESSION_IDS = uuid.UUID("6f1d0f3e-2b55-4d55-9d0c-6a9c1f0e8b21")


def session_id(name: str) -> str:
    """A UUID for ``name``: langchain-postgres takes nothing else, the others take it too."""
    return str(uuid.uuid5(_SESSION_IDS, name))


def sdk_user_item(n: int = 0) -> dict[str, Any]:
    """The item ``Runner.run`` stores for a string input."""
    return {"content": USER_CONTENT, "role": "user"}


def sdk_reply_item(n: int = 0) -> dict[str, Any]:
    """The item ``Runner.run`` stores for a model's text reply (as the SDK builds it)."""
    return {
        "id": f"msg_{n}",
        "content": [
            {"annotations": [], "text": ASSISTANT_CONTENT, "type": "output_text", "logprobs": []}
        ],
        "role": "assistant",
        "status": "completed",
        "type": "message",
    }


def sdk_items(count: int) -> list[dict[str, Any]]:
    return [sdk_user_item(i) if i % 2 == 0 else sdk_reply_item(i) for i in range(count)]


def langchain_messages(count: int) -> list[Any]:
    from langchain_core.messages import AIMessage, HumanMessage

    return [
        HumanMessage(USER_CONTENT) if i % 2 == 0 else AIMessage(ASSISTANT_CONTENT)
        for i in range(count)
    ]


class Contender:
    """What every contender has; see the module docstring."""

    sync = False
    can_pop = False

    async def seed(self, session: str, count: int) -> None:
        raise NotImplementedError

    async def turn(self, session: str, n: int) -> None:
        raise NotImplementedError

    async def pop(self, session: str) -> Any:
        raise NotImplementedError

    def sync_turn(self, session: str, n: int) -> None:
        raise NotImplementedError

    def prepare(self, sessions: Sequence[str]) -> None:
        """Anything to do for these sessions before the clock starts."""

    async def count(self, session: str) -> int:
        """How many items the session holds (checks, after the clock, that turns stored)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release what the contender opened."""


class SdkSessions(Contender):
    """An SDK ``Session`` per conversation, built on first use; the SDK's turn on it."""

    can_pop = True
    limit: int | None = None
    """``SessionSettings.limit`` of the sessions: what a turn's ``get_items()`` reads."""

    def __init__(self) -> None:
        self._sessions: dict[str, Any] = {}

    def make(self, session: str, limit: int | None) -> Any:
        raise NotImplementedError

    def session(self, session: str) -> Any:
        found = self._sessions.get(session)
        if found is None:
            found = self._sessions[session] = self.make(session_id(session), self.limit)
        return found

    def prepare(self, sessions: Sequence[str]) -> None:
        """Build the sessions' objects before the clock starts (SQLite's makes its schema)."""
        for session in sessions:
            self.session(session)

    async def seed(self, session: str, count: int) -> None:
        store = self.session(session)
        items = sdk_items(count)
        for start in range(0, count, SEED_BATCH):
            await store.add_items(items[start : start + SEED_BATCH])

    async def turn(self, session: str, n: int) -> None:
        store = self.session(session)
        await store.get_items()
        await store.add_items([sdk_user_item(n)])
        await store.add_items([sdk_reply_item(n)])

    async def pop(self, session: str) -> Any:
        return await self.session(session).pop_item()

    async def count(self, session: str) -> int:
        store = self.make(session_id(session), None)
        try:
            return len(await store.get_items())
        finally:
            if isinstance(self, SqliteSdk):
                store.close()

    async def put_back(self, session: str, n: int) -> None:
        await self.session(session).add_items([sdk_reply_item(n)])


class AgentcoreSdk(SdkSessions):
    """``AgentcoreSession`` over ``PostgresHistoryRepository`` (or the in-memory fake)."""

    def __init__(self, dsn: str | None, concurrency: int) -> None:
        super().__init__()
        self._dsn = dsn
        self._concurrency = concurrency
        self._pool: AsyncConnectionPool[Any] | None = None
        self._repo: PostgresHistoryRepository | InMemoryHistoryRepository = (
            InMemoryHistoryRepository()
        )

    async def open(self) -> AgentcoreSdk:
        if self._dsn is not None:
            self._pool = _pool(self._dsn, "agentcore", self._concurrency)
            await self._pool.open(wait=True, timeout=120)
            self._repo = PostgresHistoryRepository(self._pool)
        return self

    def over(self, repo: InMemoryHistoryRepository) -> AgentcoreSdk:
        """Share one fake between runs (it holds the seeded sessions)."""
        self._repo = repo
        return self

    def make(self, session: str, limit: int | None) -> Any:
        from agentcore.integrations.openai_agents import AgentcoreSession

        return AgentcoreSession(
            session, self._repo, agent_name="bench-sdk", session_settings={"limit": limit}
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


class SqlAlchemySdk(SdkSessions):
    """The SDK's ``SQLAlchemySession`` on an async engine (``postgresql+psycopg``).

    Its tables are made once (:meth:`create_tables`); the sessions then use
    ``create_tables=False``, the SDK's advice for production.
    """

    def __init__(self, dsn: str, concurrency: int, *, create_tables: bool = False) -> None:
        super().__init__()
        from sqlalchemy.ext.asyncio import create_async_engine

        self._create_tables = create_tables
        # The engine connects through psycopg with the bench's libpq DSN as is.
        self._engine = create_async_engine(
            "postgresql+psycopg://",
            async_creator=lambda: psycopg.AsyncConnection.connect(dsn),
            pool_size=concurrency,
            max_overflow=0,
        )

    async def open(self) -> SqlAlchemySdk:
        return self

    @classmethod
    async def create_tables(cls, dsn: str) -> None:
        made = cls(dsn, 1, create_tables=True)
        try:
            await made.session("create-tables").get_items()
        finally:
            await made.close()

    def make(self, session: str, limit: int | None) -> Any:
        from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession

        return SQLAlchemySession(
            session,
            engine=self._engine,
            create_tables=self._create_tables,
            session_settings={"limit": limit},
        )

    async def close(self) -> None:
        await self._engine.dispose()


class SqliteSdk(SdkSessions):
    """The SDK's ``SQLiteSession`` on a file (WAL; its calls run in worker threads)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path

    async def open(self) -> SqliteSdk:
        return self

    def make(self, session: str, limit: int | None) -> Any:
        from agents import SQLiteSession

        return SQLiteSession(session, self._path, session_settings={"limit": limit})

    async def close(self) -> None:
        for store in self._sessions.values():
            store.close()


class LangChainHistories(Contender):
    """A LangChain chat history per turn; read every message, add the two new ones."""

    def history(self, session: str) -> Any:
        raise NotImplementedError

    async def turn(self, session: str, n: int) -> None:
        history = self.history(session)
        await history.aget_messages()
        await history.aadd_messages(langchain_messages(2))

    def sync_turn(self, session: str, n: int) -> None:
        history = self.history(session)
        history.messages  # noqa: B018 - the read is the point
        history.add_messages(langchain_messages(2))


class AgentcoreLangChain(LangChainHistories):
    """``AgentcoreChatMessageHistory``: async over PostgreSQL, or sync over its sync face."""

    def __init__(self, dsn: str, concurrency: int, *, sync: bool) -> None:
        self.sync = sync
        self._dsn = dsn
        self._concurrency = concurrency
        self._pool: AsyncConnectionPool[Any] | None = None
        self._repo: PostgresHistoryRepository | SyncHistoryRepository | None = None

    async def open(self) -> AgentcoreLangChain:
        if self.sync:
            size = self._concurrency
            self._repo = await asyncio.to_thread(
                SyncHistoryRepository.from_dsn, self._dsn, min_size=size, max_size=size
            )
        else:
            self._pool = _pool(self._dsn, "agentcore", self._concurrency)
            await self._pool.open(wait=True, timeout=120)
            self._repo = PostgresHistoryRepository(self._pool)
        return self

    def history(self, session: str) -> Any:
        from agentcore.integrations.langchain import AgentcoreChatMessageHistory

        assert self._repo is not None
        return AgentcoreChatMessageHistory(
            session_id(session), self._repo, agent_name="bench-langchain"
        )

    async def seed(self, session: str, count: int) -> None:
        messages = langchain_messages(count)
        for start in range(0, count, SEED_BATCH):
            await self.history(session).aadd_messages(messages[start : start + SEED_BATCH])

    async def count(self, session: str) -> int:
        history = self.history(session)
        if self.sync:
            return await asyncio.to_thread(lambda: len(history.messages))
        return len(await history.aget_messages())

    async def close(self) -> None:
        if isinstance(self._repo, SyncHistoryRepository):
            await asyncio.to_thread(self._repo.close)
        if self._pool is not None:
            await self._pool.close()


class LangChainPostgres(LangChainHistories):
    """langchain-postgres's ``PostgresChatMessageHistory``, a pooled connection per turn.

    It takes one connection and commits on it; a pool in its default
    (transactional) mode hands each turn one, as an application serving many
    sessions must.
    """

    def __init__(self, dsn: str, concurrency: int, *, sync: bool) -> None:
        self.sync = sync
        size = concurrency
        self._apool: AsyncConnectionPool[Any] | None = None
        self._spool: ConnectionPool[Any] | None = None
        if sync:
            self._spool = ConnectionPool(dsn, min_size=size, max_size=size, open=False)
        else:
            self._apool = AsyncConnectionPool(dsn, min_size=size, max_size=size, open=False)

    async def open(self) -> LangChainPostgres:
        if self._spool is not None:
            await asyncio.to_thread(self._spool.open, wait=True, timeout=120)
        if self._apool is not None:
            await self._apool.open(wait=True, timeout=120)
        return self

    @staticmethod
    async def create_table(dsn: str) -> None:
        from langchain_postgres import PostgresChatMessageHistory

        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            await PostgresChatMessageHistory.acreate_tables(conn, LANGCHAIN_TABLE)

    def _history(self, session: str, conn: Any, sync: bool) -> Any:
        from langchain_postgres import PostgresChatMessageHistory

        given = {"sync_connection": conn} if sync else {"async_connection": conn}
        return PostgresChatMessageHistory(LANGCHAIN_TABLE, session_id(session), **given)

    async def seed(self, session: str, count: int) -> None:
        messages = langchain_messages(count)
        if self._apool is None:
            await asyncio.to_thread(self._seed_sync, session, messages)
            return
        async with self._apool.connection() as conn:
            history = self._history(session, conn, sync=False)
            for start in range(0, count, SEED_BATCH):
                await history.aadd_messages(messages[start : start + SEED_BATCH])

    async def count(self, session: str) -> int:
        if self._apool is None:
            return await asyncio.to_thread(self._count_sync, session)
        async with self._apool.connection() as conn:
            return len(await self._history(session, conn, sync=False).aget_messages())

    def _count_sync(self, session: str) -> int:
        assert self._spool is not None
        with self._spool.connection() as conn:
            return len(self._history(session, conn, sync=True).messages)

    def _seed_sync(self, session: str, messages: Sequence[Any]) -> None:
        assert self._spool is not None
        with self._spool.connection() as conn:
            history = self._history(session, conn, sync=True)
            for start in range(0, len(messages), SEED_BATCH):
                history.add_messages(messages[start : start + SEED_BATCH])

    async def turn(self, session: str, n: int) -> None:
        assert self._apool is not None
        async with self._apool.connection() as conn:
            history = self._history(session, conn, sync=False)
            await history.aget_messages()
            await history.aadd_messages(langchain_messages(2))

    def sync_turn(self, session: str, n: int) -> None:
        assert self._spool is not None
        with self._spool.connection() as conn:
            history = self._history(session, conn, sync=True)
            history.messages  # noqa: B018 - the read is the point
            history.add_messages(langchain_messages(2))

    async def close(self) -> None:
        if self._spool is not None:
            await asyncio.to_thread(self._spool.close)
        if self._apool is not None:
            await self._apool.close()
