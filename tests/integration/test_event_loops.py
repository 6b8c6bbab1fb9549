"""Repositories used from several threads or event loops work, or fail at once; never hang."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, cast

import psycopg
import pytest

from agentcore import (
    InMemoryHistoryRepository,
    PostgresHistoryRepository,
    RepositoryClosedError,
    StorageError,
    SyncHistoryRepository,
)
from tests.conftest import pool_for

A = "loops"


def in_another_thread(call: Any) -> tuple[BaseException | None, float]:
    """Run ``call()`` in a new thread (with its own event loop); its error and duration."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        began = time.monotonic()
        try:
            call()
        except BaseException as exc:
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - began

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the call hung"
    return outcome.get("error"), outcome["seconds"]


async def test_async_pool_used_from_a_second_event_loop_fails_at_once(database_dsn: str) -> None:
    async with pool_for(database_dsn) as pool:
        repo = PostgresHistoryRepository(pool)
        await repo.append_messages(A, "s", [{"role": "user", "content": "hi"}])

        def elsewhere() -> None:
            asyncio.run(asyncio.wait_for(repo.load_history(A, "s"), timeout=20))

        error, seconds = await asyncio.to_thread(in_another_thread, elsewhere)
        assert isinstance(error, StorageError), error
        assert "belongs to another event loop" in str(error)
        assert seconds < 5
        # The pool still serves its own loop.
        assert len(await repo.load_history(A, "s")) == 1


def test_sync_repository_serves_many_threads_at_once(database_dsn: str) -> None:
    with SyncHistoryRepository.from_dsn(database_dsn, max_size=4) as repo:

        def writer(n: int) -> None:
            for i in range(10):
                repo.append_messages(A, "s", [{"role": "user", "content": f"{n}-{i}"}])

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        stored = [m.content for m in repo.load_history(A, "s")]
        assert sorted(cast(list[str], stored)) == sorted(
            f"{n}-{i}" for n in range(8) for i in range(10)
        )
        for n in range(8):  # each thread's messages in its order
            assert [c for c in stored if c and c.startswith(f"{n}-")] == [
                f"{n}-{i}" for i in range(10)
            ]


async def test_sync_repository_works_from_inside_an_event_loop(database_dsn: str) -> None:
    repo = await asyncio.to_thread(SyncHistoryRepository.from_dsn, database_dsn)
    try:
        # A blocking call from async code: it blocks this loop, but completes.
        repo.append_messages(A, "s", [{"role": "user", "content": "from a coroutine"}])
        assert [m.content for m in repo.load_history(A, "s")] == ["from a coroutine"]
    finally:
        repo.close()


def test_sync_repository_over_a_pool_of_another_loop_fails_at_once(database_dsn: str) -> None:
    async def opened_elsewhere() -> tuple[Any, PostgresHistoryRepository]:
        pool_context = pool_for(database_dsn)
        pool = await pool_context.__aenter__()
        return pool_context, PostgresHistoryRepository(pool)

    loop = asyncio.new_event_loop()
    try:
        context, foreign = loop.run_until_complete(opened_elsewhere())
        with SyncHistoryRepository.over(foreign) as repo:
            began = time.monotonic()
            with pytest.raises(StorageError, match="belongs to another event loop"):
                repo.load_history(A, "s")
            assert time.monotonic() - began < 5
        loop.run_until_complete(context.__aexit__(None, None, None))
    finally:
        loop.close()


def test_sync_repository_called_from_its_own_loop_fails_instead_of_waiting() -> None:
    with SyncHistoryRepository.over(InMemoryHistoryRepository()) as repo:

        async def reentrant() -> None:
            repo.load_history(A, "s")

        future = asyncio.run_coroutine_threadsafe(reentrant(), repo._loop)
        with pytest.raises(StorageError, match="its own event loop thread"):
            future.result(timeout=10)


def test_closed_sync_repository_fails_clearly() -> None:
    repo = SyncHistoryRepository.over(InMemoryHistoryRepository())
    repo.close()
    repo.close()  # idempotent
    with pytest.raises(RepositoryClosedError, match="closed"):
        repo.load_history(A, "s")


async def test_langchain_sync_methods_over_an_async_pool_fail_at_once(database_dsn: str) -> None:
    from langchain_core.messages import HumanMessage

    from agentcore.integrations.langchain import AgentcoreChatMessageHistory

    async with pool_for(database_dsn) as pool:
        history = AgentcoreChatMessageHistory("s", PostgresHistoryRepository(pool))
        await history.aadd_messages([HumanMessage("async works")])
        began = time.monotonic()
        with pytest.raises(StorageError, match="belongs to another event loop"):
            history.add_messages([HumanMessage("sync cannot use this pool")])
        assert time.monotonic() - began < 5
        assert [m.content for m in await history.aget_messages()] == ["async works"]


class HeldRepository(InMemoryHistoryRepository):
    """The fake, whose appends wait (on the repository's loop) until released."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    async def append_messages(self, *args: Any, **kwargs: Any) -> int:
        self.entered.set()
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        return await super().append_messages(*args, **kwargs)


def call_in_thread(call: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Start ``call()`` in a daemon thread; the dict gets its ``result`` or ``error``."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_close_lets_a_call_in_flight_finish_and_return() -> None:
    held = HeldRepository()
    repo = SyncHistoryRepository.over(held)
    caller, outcome = call_in_thread(
        lambda: repo.append_messages(A, "s", [{"role": "user", "content": "in flight"}])
    )
    assert held.entered.wait(10)
    closer, closed = call_in_thread(repo.close)
    time.sleep(0.2)
    assert closer.is_alive(), "close() returned while a call was in flight"
    with pytest.raises(RepositoryClosedError, match="closed"):  # new calls: refused at once
        repo.load_history(A, "s")
    held.release.set()
    caller.join(10)
    closer.join(10)
    assert not caller.is_alive(), "the caller was stranded by close()"
    assert not closer.is_alive()
    assert outcome == {"result": 1}
    assert closed == {"result": None}
    assert [m.content for m in asyncio.run(held.load_history(A, "s"))] == ["in flight"]


def test_close_fails_a_call_that_outlives_its_timeout_with_a_typed_error() -> None:
    held = HeldRepository()
    repo = SyncHistoryRepository.over(held)
    caller, outcome = call_in_thread(
        lambda: repo.append_messages(A, "s", [{"role": "user", "content": "never"}])
    )
    assert held.entered.wait(10)
    began = time.monotonic()
    repo.close(timeout=0.3)
    assert time.monotonic() - began < 5
    caller.join(10)
    assert not caller.is_alive(), "the caller was stranded by close()"
    assert isinstance(outcome.get("error"), RepositoryClosedError), outcome
    assert "may or may not have been stored" in str(outcome["error"])
    with pytest.raises(RepositoryClosedError):
        repo.append_messages(A, "s", [{"role": "user", "content": "after"}])


def test_close_waits_for_a_postgres_call_blocked_on_the_conversation_lock(
    database_dsn: str,
) -> None:
    repo = SyncHistoryRepository.from_dsn(database_dsn)
    repo.append_messages(A, "s", [{"role": "user", "content": "first"}])
    with psycopg.connect(database_dsn) as holder:
        holder.execute(
            "SELECT 1 FROM conversation_sessions WHERE agent_name = %s AND session_id = %s"
            " FOR UPDATE",
            (A, "s"),
        )
        caller, outcome = call_in_thread(
            lambda: repo.append_messages(A, "s", [{"role": "user", "content": "second"}])
        )
        time.sleep(0.5)  # the append now waits for the row lock
        closer, _ = call_in_thread(repo.close)
        time.sleep(0.3)
        assert caller.is_alive() and closer.is_alive()
        holder.commit()
        caller.join(20)
        closer.join(20)
        assert not caller.is_alive(), "the caller was stranded by close()"
        assert not closer.is_alive()
    assert outcome == {"result": 1}
    with SyncHistoryRepository.from_dsn(database_dsn) as again:
        assert [m.content for m in again.load_history(A, "s")] == ["first", "second"]


def test_close_timeout_fails_a_postgres_call_blocked_on_the_conversation_lock(
    database_dsn: str,
) -> None:
    repo = SyncHistoryRepository.from_dsn(database_dsn)
    repo.append_messages(A, "s", [{"role": "user", "content": "first"}])
    with psycopg.connect(database_dsn) as holder:
        holder.execute(
            "SELECT 1 FROM conversation_sessions WHERE agent_name = %s AND session_id = %s"
            " FOR UPDATE",
            (A, "s"),
        )
        caller, outcome = call_in_thread(
            lambda: repo.append_messages(A, "s", [{"role": "user", "content": "second"}])
        )
        time.sleep(0.5)
        began = time.monotonic()
        repo.close(timeout=0.5)
        assert time.monotonic() - began < 15
        caller.join(10)
        assert not caller.is_alive(), "the caller was stranded by close()"
        holder.rollback()
    assert isinstance(outcome.get("error"), RepositoryClosedError), outcome
