"""The repository contract with blocking methods: :class:`SyncHistoryRepository`.

It is not a second implementation: it runs an async repository (PostgreSQL or
the in-memory fake) on an event loop of its own, in a thread of its own, and
waits for each call. The SQL, the parameter handling, the validation and the
errors are the async repository's, so both faces keep one contract (the
contract suite runs on both). A call costs one hand-over between threads on
top of the async call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

from agentcore.errors import RepositoryClosedError, StorageError
from agentcore.models import HistoryPage, Message, PurgeReport, SessionInfo, SessionPage
from agentcore.repository import HistoryRepository
from agentcore.validation import (
    DEFAULT_PURGE_BATCH_SIZE,
    DEFAULT_PURGE_MAX_IMPACT,
    DEFAULT_PURGE_PAUSE,
    MessageInput,
)

_T = TypeVar("_T")
DEFAULT_CLOSE_TIMEOUT = 30.0
"""Seconds :meth:`SyncHistoryRepository.close` waits for calls in flight by default."""
_CANCEL_GRACE = 5.0  # seconds a cancelled call gets to roll back before the loop stops
Opener = Callable[[], AbstractAsyncContextManager[HistoryRepository]]


class SyncHistoryRepository:
    """Blocking ``HistoryRepository`` methods, safe to call from any number of threads.

    Build it with :meth:`from_dsn` (a PostgreSQL pool opened on the
    repository's own event loop) or :meth:`over` (a repository bound to no
    event loop, such as :class:`~agentcore.InMemoryHistoryRepository`). Close
    it (or use it as a context manager) to close the pool and stop its thread:
    :meth:`close` lets the calls in flight finish (up to a bound), and every
    call after it raises :class:`~agentcore.RepositoryClosedError` at once.

    Every method has the signature, the validation and the errors of the
    :class:`~agentcore.HistoryRepository` method of the same name. Calling one
    from the repository's own event loop thread (from inside one of its own
    calls) raises :class:`~agentcore.StorageError` at once instead of waiting
    for itself.

    Args:
        open_repository: Called once, on the repository's event loop: an async
            context manager yielding the async repository to run, closed by
            :meth:`close`.
    """

    def __init__(self, open_repository: Opener) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="agentcore-sync-repository", daemon=True
        )
        self._thread.start()
        self._stack = AsyncExitStack()
        self._closed = False
        # Guards _closed and _in_flight: a call is either refused or counted
        # before close() starts draining, never lost between the two.
        self._state = threading.Lock()
        self._closing = threading.Lock()
        self._in_flight: set[concurrent.futures.Future[Any]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        try:
            self._repository = self._call(self._stack.enter_async_context(open_repository()))
        except BaseException:
            self._stop()
            raise

    @classmethod
    def from_dsn(cls, dsn: str, **pool_options: Any) -> SyncHistoryRepository:
        """A sync repository over a PostgreSQL pool on ``dsn`` (PgBouncer's too: nothing to set).

        Args:
            dsn: A libpq connection string or ``postgresql://`` URL.
            **pool_options: As for :meth:`PostgresHistoryRepository.from_dsn`
                (``min_size``, ``max_size``, ``timeout``, ``max_content_chars``).

        Raises:
            DatabaseUnavailableError: the database cannot be reached.
        """
        from agentcore.postgres import PostgresHistoryRepository

        return cls(lambda: PostgresHistoryRepository.from_dsn(dsn, **pool_options))

    @classmethod
    def over(cls, repository: HistoryRepository) -> SyncHistoryRepository:
        """A sync face for ``repository``, which must not be bound to another event loop.

        Use it for the in-memory fake. A PostgreSQL repository whose pool was
        opened on another loop fails on its first call: use :meth:`from_dsn`.
        """

        @asynccontextmanager
        async def given() -> Any:
            yield repository

        return cls(given)

    @property
    def max_content_chars(self) -> int:
        """The largest message ``content`` the repository accepts, in characters."""
        return int(getattr(self._repository, "max_content_chars"))  # noqa: B009

    def load_history(
        self, agent_name: str, session_id: str | None, limit: int | None = None
    ) -> list[Message]:
        """See :meth:`HistoryRepository.load_history`."""
        return self._call(self._repository.load_history(agent_name, session_id, limit))

    def append_messages(
        self, agent_name: str, session_id: str | None, messages: Sequence[MessageInput]
    ) -> int:
        """See :meth:`HistoryRepository.append_messages`."""
        return self._call(self._repository.append_messages(agent_name, session_id, messages))

    def save_full_history(
        self, agent_name: str, session_id: str | None, history: Sequence[MessageInput]
    ) -> None:
        """See :meth:`HistoryRepository.save_full_history`."""
        self._call(self._repository.save_full_history(agent_name, session_id, history))

    def get_message(self, agent_name: str, session_id: str, message_id: str) -> Message | None:
        """See :meth:`HistoryRepository.get_message`."""
        return self._call(self._repository.get_message(agent_name, session_id, message_id))

    def clear_session(self, agent_name: str, session_id: str) -> int:
        """See :meth:`HistoryRepository.clear_session`."""
        return self._call(self._repository.clear_session(agent_name, session_id))

    def pop_message(self, agent_name: str, session_id: str) -> Message | None:
        """See :meth:`HistoryRepository.pop_message`."""
        return self._call(self._repository.pop_message(agent_name, session_id))

    def replace_last_messages(
        self,
        agent_name: str,
        session_id: str,
        expected: Sequence[Message],
        messages: Sequence[MessageInput],
    ) -> bool:
        """See :meth:`HistoryRepository.replace_last_messages`."""
        return self._call(
            self._repository.replace_last_messages(agent_name, session_id, expected, messages)
        )

    def list_sessions(self, agent_name: str, limit: int | None = 100) -> list[SessionInfo]:
        """See :meth:`HistoryRepository.list_sessions`."""
        return self._call(self._repository.list_sessions(agent_name, limit))

    def list_sessions_page(
        self,
        agent_name: str,
        *,
        owner: str | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> SessionPage:
        """See :meth:`HistoryRepository.list_sessions_page`."""
        return self._call(
            self._repository.list_sessions_page(agent_name, owner=owner, limit=limit, after=after)
        )

    def get_session(self, agent_name: str, session_id: str) -> SessionInfo | None:
        """See :meth:`HistoryRepository.get_session`."""
        return self._call(self._repository.get_session(agent_name, session_id))

    def set_session_metadata(
        self, agent_name: str, session_id: str, metadata: Mapping[str, Any], *, merge: bool = True
    ) -> dict[str, Any]:
        """See :meth:`HistoryRepository.set_session_metadata`."""
        return self._call(
            self._repository.set_session_metadata(agent_name, session_id, metadata, merge=merge)
        )

    def load_history_page(
        self, agent_name: str, session_id: str, *, limit: int = 100, before: str | None = None
    ) -> HistoryPage:
        """See :meth:`HistoryRepository.load_history_page`."""
        return self._call(
            self._repository.load_history_page(agent_name, session_id, limit=limit, before=before)
        )

    def copy_session(
        self,
        agent_name: str,
        source_session_id: str,
        target_session_id: str,
        *,
        up_to: int | str | None = None,
    ) -> int:
        """See :meth:`HistoryRepository.copy_session`."""
        return self._call(
            self._repository.copy_session(
                agent_name, source_session_id, target_session_id, up_to=up_to
            )
        )

    def purge_idle_sessions(
        self,
        idle_for: timedelta,
        *,
        agent_name: str | None = None,
        batch_size: int = DEFAULT_PURGE_BATCH_SIZE,
        pause: float = DEFAULT_PURGE_PAUSE,
        max_impact: float = DEFAULT_PURGE_MAX_IMPACT,
        dry_run: bool = False,
        on_progress: Callable[[PurgeReport], None] | None = None,
    ) -> PurgeReport:
        """See :meth:`HistoryRepository.purge_idle_sessions` (``on_progress`` runs on
        the repository's thread)."""
        return self._call(
            self._repository.purge_idle_sessions(
                idle_for,
                agent_name=agent_name,
                batch_size=batch_size,
                pause=pause,
                max_impact=max_impact,
                dry_run=dry_run,
                on_progress=on_progress,
            )
        )

    def iter_sessions(
        self, agent_name: str | None = None, *, batch_size: int = 1000
    ) -> Iterator[SessionInfo]:
        """See :meth:`HistoryRepository.iter_sessions`."""
        return self._iterate(self._repository.iter_sessions(agent_name, batch_size=batch_size))

    def iter_history(
        self, agent_name: str, session_id: str, *, batch_size: int = 1000
    ) -> Iterator[Message]:
        """See :meth:`HistoryRepository.iter_history`."""
        return self._iterate(
            self._repository.iter_history(agent_name, session_id, batch_size=batch_size)
        )

    def import_session(
        self,
        agent_name: str,
        session_id: str,
        messages: AsyncIterable[MessageInput] | Iterable[MessageInput],
        *,
        metadata: Mapping[str, Any] | None = None,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
    ) -> int:
        """See :meth:`HistoryRepository.import_session` (a sync iterable is read on the
        repository's thread)."""
        return self._call(
            self._repository.import_session(
                agent_name,
                session_id,
                messages,
                metadata=metadata,
                created_at=created_at,
                updated_at=updated_at,
            )
        )

    def _iterate(self, items: AsyncIterator[_T]) -> Iterator[_T]:
        async def next_item() -> _T:
            return await anext(items)

        try:
            while True:
                try:
                    yield self._call(next_item())
                except StopAsyncIteration:
                    return
        finally:
            closing = getattr(items, "aclose", None)
            if closing is not None and not self._closed:
                self._call(closing())

    def close(self, timeout: float = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Close the repository (and its pool) and stop its thread. Idempotent.

        Calls made after ``close`` began raise :class:`~agentcore.RepositoryClosedError`
        at once. Calls already in flight (in any thread) get up to ``timeout``
        seconds to finish and return as usual; those still running then are
        cancelled, and their callers get ``RepositoryClosedError`` (such a
        call may or may not have been stored; each write is atomic). No
        caller is left waiting: ``close`` returns within about ``timeout``
        seconds plus 5 for cancelled calls to roll back, plus the pool's own
        close.

        Args:
            timeout: Seconds to wait for the calls in flight (default 30).
        """
        with self._closing:  # a second close() waits for the first one
            with self._state:
                if self._closed:
                    return
                self._closed = True
            try:
                future = asyncio.run_coroutine_threadsafe(self._shut_down(timeout), self._loop)
                future.result()
            finally:
                self._stop()

    async def _shut_down(self, timeout: float) -> None:
        tasks = set(self._tasks)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=max(0.0, timeout))
            for task in late:
                task.cancel()
            if late:  # let them roll back, within a bound of their own
                await asyncio.wait(late, timeout=_CANCEL_GRACE)
        await self._stack.aclose()

    def __enter__(self) -> SyncHistoryRepository:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, call: Coroutine[Any, Any, _T]) -> _T:
        if threading.get_ident() == self._thread.ident:
            call.close()
            raise StorageError(
                "a SyncHistoryRepository method was called from its own event loop thread, "
                "where it would wait for itself: use the async repository there"
            )
        with self._state:
            if self._closed:
                call.close()
                raise RepositoryClosedError("this SyncHistoryRepository is closed")
            future = asyncio.run_coroutine_threadsafe(self._counted(call), self._loop)
            self._in_flight.add(future)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            if not self._closed:
                raise
            raise RepositoryClosedError(
                "this SyncHistoryRepository was closed while the call was in flight and "
                "the call did not finish in time; it may or may not have been stored"
            ) from None
        finally:
            with self._state:
                self._in_flight.discard(future)

    async def _counted(self, call: Coroutine[Any, Any, _T]) -> _T:
        # The task is counted before close()'s drain runs: both are scheduled
        # on the loop in the order the threads submitted them.
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            return await call
        finally:
            self._tasks.discard(task)

    def _stop(self) -> None:
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        with self._state:
            stranded = list(self._in_flight)
        for future in stranded:  # a call whose task could not even be cancelled
            future.cancel()
        self._loop.close()
