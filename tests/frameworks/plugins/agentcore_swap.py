"""A pytest plugin that runs a framework's own tests on agentcore's bridges.

Loaded with ``-p agentcore_swap`` into a pytest run of the OpenAI Agents SDK's
or langchain-core's released test files (see tests/frameworks/). Before their
test modules are imported it replaces the framework's reference store by a
subclass of agentcore's bridge, over the repository named by
``AGENTCORE_BACKEND`` (``memory``; ``postgres`` or ``postgres-sync``, a
:class:`SyncHistoryRepository`, with ``AGENTCORE_DSN``):

- OpenAI Agents SDK: ``SQLiteSession`` and ``AsyncSQLiteSession`` become
  :class:`AgentcoreSession`. Sessions on the same ``db_path`` within one test
  share a conversation, as they share the SQLite file; ``:memory:`` ones do
  not, as in SQLite.
- langchain-core: ``InMemoryChatMessageHistory`` becomes
  :class:`AgentcoreChatMessageHistory`, one conversation per instance.
- Google ADK: the session tests' ``get_session_service`` (parametrised over
  ADK's service kinds) returns an :class:`AgentcoreSessionService` for every
  kind, over a new in-memory repository per test, or over PostgreSQL whose
  tables are emptied before each test (ADK's tests reuse app and session ids).

It writes the node ids of the tests that built a swapped object to
``AGENTCORE_SWAP_REPORT``, so that the caller can tell the tests that reached
agentcore from the others in the same files.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import weakref
from pathlib import Path
from typing import Any

import pytest

from agentcore import (
    InMemoryHistoryRepository,
    PostgresHistoryRepository,
    SyncHistoryRepository,
)

FRAMEWORK = os.environ["AGENTCORE_FRAMEWORK"]
BACKEND = os.environ["AGENTCORE_BACKEND"]
_current_test = "collection"
_reached: set[str] = set()
_counter = itertools.count()


class _PoolPerEventLoop:
    """A PostgreSQL repository for code that runs many event loops (one per test).

    An asyncio pool belongs to the loop that opened it; the frameworks' tests
    start a loop per test, and some start their own in threads. Each loop gets
    a pool that connects per call (a null pool), so a closed loop leaves no
    connection behind.
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._repos: weakref.WeakKeyDictionary[Any, PostgresHistoryRepository] = (
            weakref.WeakKeyDictionary()
        )

    async def _repo(self) -> PostgresHistoryRepository:
        from psycopg_pool import AsyncNullConnectionPool

        loop = asyncio.get_running_loop()
        repo = self._repos.get(loop)
        if repo is None:
            pool: AsyncNullConnectionPool[Any] = AsyncNullConnectionPool(
                self._dsn, max_size=8, kwargs={"autocommit": True}, open=False
            )
            await pool.open(wait=True)
            repo = self._repos[loop] = PostgresHistoryRepository(pool)
        return repo

    def __getattr__(self, name: str) -> Any:
        if name.startswith("iter_"):  # not a coroutine: an async iterator

            async def iterate(*args: Any, **kwargs: Any) -> Any:
                async for item in getattr(await self._repo(), name)(*args, **kwargs):
                    yield item

            return iterate

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await getattr(await self._repo(), name)(*args, **kwargs)

        return call


def _repository() -> Any:
    global _SYNC
    if BACKEND == "memory":
        return _MEMORY
    if BACKEND == "postgres-sync":
        if _SYNC is None:
            _SYNC = SyncHistoryRepository.from_dsn(os.environ["AGENTCORE_DSN"])
        return _SYNC
    return _POSTGRES


_MEMORY = InMemoryHistoryRepository()
_SYNC: SyncHistoryRepository | None = None
_POSTGRES = _PoolPerEventLoop(os.environ.get("AGENTCORE_DSN", ""))


def _store(db_path: object) -> str:
    """An agent name standing for one SQLite database of the current test."""
    where = str(db_path)
    if where == ":memory:":
        where = f":memory:{next(_counter)}"
    else:
        where = str(Path(where).resolve())
    _reached.add(_current_test)
    digest = hashlib.sha256(f"{_current_test}\x00{where}".encode()).hexdigest()[:32]
    return f"{FRAMEWORK}-{digest}"


def _swap_openai_agents() -> None:
    import agents
    import agents.extensions.memory
    import agents.extensions.memory.async_sqlite_session as async_sqlite
    import agents.memory
    import agents.memory.sqlite_session as sqlite

    from agentcore.integrations.openai_agents import AgentcoreSession

    class SQLiteSession(AgentcoreSession):
        """``SQLiteSession(session_id, db_path, ...)`` on agentcore."""

        def __init__(
            self,
            session_id: str,
            db_path: str | Path = ":memory:",
            sessions_table: str = "agent_sessions",
            messages_table: str = "agent_messages",
            session_settings: Any = None,
        ) -> None:
            super().__init__(
                session_id,
                _repository(),
                agent_name=_store(db_path),
                session_settings=session_settings,
            )

        def close(self) -> None:
            """Nothing to close: the repository belongs to the plugin."""

    class AsyncSQLiteSession(SQLiteSession):
        async def close(self) -> None:  # type: ignore[override]
            """Nothing to close: the repository belongs to the plugin."""

    for module in (agents, agents.memory, sqlite):
        module.SQLiteSession = SQLiteSession  # type: ignore[attr-defined]
    for module in (agents.extensions.memory, async_sqlite):
        module.AsyncSQLiteSession = AsyncSQLiteSession  # type: ignore[attr-defined]


def _swap_langchain() -> None:
    import langchain_core.chat_history as chat_history

    from agentcore.integrations.langchain import AgentcoreChatMessageHistory

    class InMemoryChatMessageHistory(AgentcoreChatMessageHistory):
        """``InMemoryChatMessageHistory()`` on agentcore: a new conversation each."""

        def __init__(self, messages: Any = None, **_: Any) -> None:
            super().__init__(f"s{next(_counter)}", _repository(), agent_name=_store(":memory:"))
            if messages:
                self.add_messages(messages)

        def __eq__(self, other: object) -> bool:
            # The in-memory class is a pydantic model, equal when its messages
            # are: the tests compare stores that way. These are read back from
            # agentcore.
            if not isinstance(other, AgentcoreChatMessageHistory):
                return NotImplemented
            return self.messages == other.messages

        __hash__ = None  # type: ignore[assignment]

    chat_history.InMemoryChatMessageHistory = InMemoryChatMessageHistory  # type: ignore[assignment,misc]


def _adk_session_service(*_: Any, **__: Any) -> Any:
    """``get_session_service(service_type, tmp_path)`` of ADK's tests, on agentcore."""
    from agentcore.integrations.google_adk import AgentcoreSessionService

    class SwappedSessionService(AgentcoreSessionService):
        async def __aenter__(self) -> SwappedSessionService:
            return self

        async def __aexit__(self, *_: object) -> None:
            """Nothing to close: the repository belongs to the plugin."""

    _reached.add(_current_test)
    repository = InMemoryHistoryRepository() if BACKEND == "memory" else _repository()
    return SwappedSessionService(repository)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if FRAMEWORK != "google-adk":
        return
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and hasattr(module, "get_session_service"):
            module.get_session_service = _adk_session_service


def pytest_runtest_setup(item: pytest.Item) -> None:
    if FRAMEWORK == "google-adk" and BACKEND != "memory":
        import psycopg

        with psycopg.connect(os.environ["AGENTCORE_DSN"], autocommit=True) as conn:
            conn.execute(
                "TRUNCATE conversation_sessions, conversation_history, session_state,"
                " owner_state, agent_state"
            )


def _server_uri() -> str:
    """The test server as a URI a database name can be appended to (LangGraph's tests do)."""
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(os.environ["AGENTCORE_DSN"])
    host = quote(str(params.get("host", "localhost")), safe="")
    user = quote(str(params.get("user", "postgres")), safe="")
    password = params.get("password")
    auth = f"{user}:{quote(str(password), safe='')}" if password else user
    return f"postgresql://{auth}@{host}:{params.get('port', 5432)}/"


def _swap_langgraph() -> None:  # noqa: C901 - the two swapped classes, kept together
    """``AsyncPostgresSaver`` and ``PostgresSaver`` become AgentcoreSaver.

    Their tests hand the saver a connection or a pool and call ``setup()``:
    the swapped classes open an AsyncConnectionPool on the same database,
    and ``setup()`` applies agentcore's migrations there. The sync one runs
    an AgentcoreSaver on an event loop of its own thread (the sync methods
    then call it from the test's thread, as ``graph.invoke`` callers do).
    """
    import threading
    from collections.abc import AsyncIterator, Iterator
    from contextlib import asynccontextmanager, contextmanager

    import langgraph.checkpoint.postgres as sync_module
    import langgraph.checkpoint.postgres.aio as aio_module
    from psycopg_pool import AsyncNullConnectionPool

    from agentcore import migrations
    from agentcore.integrations.langgraph import AgentcoreSaver

    class LazyPool(AsyncNullConnectionPool):
        """Opens on first use (a saver's constructor cannot await) and keeps no
        connection between calls, so the tests can drop their database."""

        @asynccontextmanager
        async def connection(self, timeout: float | None = None) -> AsyncIterator[Any]:
            if self.closed:
                await self.open(wait=True)
            async with super().connection(timeout) as conn:
                yield conn

    def dsn_of(conn: Any) -> str:
        if isinstance(conn, str):
            return conn
        if hasattr(conn, "conninfo"):  # a pool
            return str(conn.conninfo)
        return str(conn.info.dsn)

    def lazy_pool(dsn: str) -> LazyPool:
        return LazyPool(dsn, kwargs={"autocommit": True}, open=False)

    class AsyncPostgresSaver(AgentcoreSaver):
        def __init__(self, conn: Any, pipe: Any = None, serde: Any = None) -> None:
            self._dsn = dsn_of(conn)
            self._own_pool = lazy_pool(self._dsn)
            super().__init__(self._own_pool, serde=serde)
            _reached.add(_current_test)

        @classmethod
        @asynccontextmanager
        async def from_conn_string(
            cls, conn_string: str, *, pipeline: bool = False, serde: Any = None
        ) -> AsyncIterator[AsyncPostgresSaver]:
            saver = cls(conn_string, serde=serde)
            try:
                yield saver
            finally:
                await saver._own_pool.close()

        async def setup(self) -> None:
            await asyncio.to_thread(migrations.apply, self._dsn)

    class PostgresSaver(AgentcoreSaver):
        def __init__(self, conn: Any, pipe: Any = None, serde: Any = None) -> None:
            self._dsn = dsn_of(conn)
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, daemon=True).start()

            async def make() -> None:
                self._own_pool = lazy_pool(self._dsn)
                AgentcoreSaver.__init__(self, self._own_pool, serde=serde)

            asyncio.run_coroutine_threadsafe(make(), loop).result()
            _reached.add(_current_test)

        @classmethod
        @contextmanager
        def from_conn_string(
            cls, conn_string: str, *, pipeline: bool = False, serde: Any = None
        ) -> Iterator[PostgresSaver]:
            saver = cls(conn_string, serde=serde)
            try:
                yield saver
            finally:
                asyncio.run_coroutine_threadsafe(saver._own_pool.close(), saver.loop).result()

        def setup(self) -> None:
            migrations.apply(self._dsn)

    aio_module.AsyncPostgresSaver = AsyncPostgresSaver  # type: ignore[assignment,misc]
    sync_module.PostgresSaver = PostgresSaver  # type: ignore[assignment,misc]

    import tests.conftest as their_conftest  # the suite's own, on PYTHONPATH first

    their_conftest.DEFAULT_POSTGRES_URI = _server_uri()  # type: ignore[attr-defined]
    their_conftest.DEFAULT_URI = _server_uri() + "postgres"  # type: ignore[attr-defined]


if FRAMEWORK == "openai-agents":
    _swap_openai_agents()
elif FRAMEWORK == "langgraph":
    _swap_langgraph()
elif FRAMEWORK == "langchain":
    _swap_langchain()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    global _current_test
    _current_test = item.nodeid
    try:
        return (yield)
    finally:
        _current_test = "between tests"


def pytest_sessionfinish(session: pytest.Session) -> None:
    report = os.environ.get("AGENTCORE_SWAP_REPORT")
    if report:
        reached = sorted(t for t in _reached if "::" in t)
        Path(report).write_text("\n".join(reached) + "\n", encoding="utf-8")
