"""Guarantees of PostgresHistoryRepository that need a real server to prove."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from agentcore import DatabaseUnavailableError, PostgresHistoryRepository, StorageError
from agentcore.validation import EARLIEST, LATEST

A = "agent"


def user(text: str, **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": text, **extra}


async def stored_rows(pool: AsyncConnectionPool[Any], session: str) -> list[tuple[int, str]]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT seq, content FROM conversation_history"
            " WHERE agent_name = %s AND session_id = %s ORDER BY seq",
            (A, session),
        )
        rows: list[tuple[int, str]] = await cur.fetchall()
        return rows


async def counter(pool: AsyncConnectionPool[Any], session: str) -> int | None:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT next_seq FROM conversation_sessions WHERE agent_name = %s AND session_id = %s",
            (A, session),
        )
        row = await cur.fetchone()
        return None if row is None else int(row[0])


@pytest.mark.parametrize("with_ids", [False, True], ids=["plain", "with-ids"])
async def test_64_tasks_x_50_turns_on_one_session_lose_nothing(
    pg_pool: AsyncConnectionPool[Any], with_ids: bool
) -> None:
    repo = PostgresHistoryRepository(pg_pool)

    async def task(t: int) -> None:
        for turn in range(50):
            ids = [{"id": f"{t}-{turn}-{k}"} if with_ids else {} for k in ("q", "a")]
            await repo.append_messages(
                A, "hot", [user(f"{t}:{turn}:q", **ids[0]), user(f"{t}:{turn}:a", **ids[1])]
            )

    await asyncio.wait_for(asyncio.gather(*(task(t) for t in range(64))), timeout=240)

    rows = await stored_rows(pg_pool, "hot")
    assert [seq for seq, _ in rows] == list(range(64 * 50 * 2))  # gap-free, nothing lost
    contents = [c for _, c in rows]
    assert len(set(contents)) == len(contents)  # nothing duplicated
    for i in range(0, len(contents), 2):  # the two messages of a turn stay adjacent
        assert contents[i].endswith(":q") and contents[i + 1] == contents[i][:-1] + "a"
    assert await counter(pg_pool, "hot") == len(rows)


async def test_concurrent_retries_of_one_append_store_it_once(
    pg_pool: AsyncConnectionPool[Any],
) -> None:
    repo = PostgresHistoryRepository(pg_pool)
    turn = [user("q", id="turn-1-q"), user("a", id="turn-1-a")]
    stored = await asyncio.gather(*(repo.append_messages(A, "s", turn) for _ in range(32)))
    assert sorted(stored) == [0] * 31 + [2]
    assert [c for _, c in await stored_rows(pg_pool, "s")] == ["q", "a"]


async def test_replace_and_append_never_interleave(pg_pool: AsyncConnectionPool[Any]) -> None:
    repo = PostgresHistoryRepository(pg_pool)
    replacement = [user(f"r{i}") for i in range(300)]

    async def appender(w: int) -> None:
        for i in range(40):
            await repo.append_messages(A, "s", [user(f"a{w}-{i}"), user(f"b{w}-{i}")])

    async def replacer() -> None:
        for _ in range(10):
            await repo.save_full_history(A, "s", replacement)

    await asyncio.wait_for(
        asyncio.gather(replacer(), *(appender(w) for w in range(8))), timeout=240
    )
    rows = await stored_rows(pg_pool, "s")
    contents = [c for _, c in rows]
    assert [seq for seq, _ in rows] == list(range(len(rows)))
    assert await counter(pg_pool, "s") == len(rows)
    # The last replace's 300 messages are contiguous (no append landed inside),
    # followed only by whole turns appended after it.
    start = contents.index("r0")
    assert contents[start : start + 300] == [m["content"] for m in replacement]
    assert start == 0
    tail = contents[300:]
    assert all(
        tail[i][0] == "a" and tail[i + 1] == "b" + tail[i][1:] for i in range(0, len(tail), 2)
    )


async def test_failure_in_the_middle_of_a_replace_keeps_the_old_conversation(
    pg_pool: AsyncConnectionPool[Any], database_dsn: str
) -> None:
    repo = PostgresHistoryRepository(pg_pool)
    await repo.append_messages(A, "s", [user("old-1"), user("old-2")])
    with psycopg.connect(database_dsn, autocommit=True) as conn:  # a fault only the server sees
        conn.execute(
            "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'injected failure'; END$$"
        )
        conn.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON conversation_history FOR EACH ROW"
            " WHEN (NEW.content = 'boom') EXECUTE FUNCTION boom()"
        )

    with pytest.raises(StorageError, match="injected failure") as caught:
        await repo.save_full_history(A, "s", [user("new-1"), user("boom"), user("new-3")])
    assert isinstance(caught.value.__cause__, psycopg.Error)
    with pytest.raises(StorageError):
        await repo.append_messages(A, "s", [user("fine"), user("boom")])

    assert [c for _, c in await stored_rows(pg_pool, "s")] == ["old-1", "old-2"]
    assert await counter(pg_pool, "s") == 2
    assert [m.content for m in await repo.load_history(A, "s")] == ["old-1", "old-2"]


async def test_replace_of_ten_thousand_messages(pg_pool: AsyncConnectionPool[Any]) -> None:
    repo = PostgresHistoryRepository(pg_pool)
    await repo.save_full_history(A, "big", [user(f"m{i}") for i in range(10_000)])
    assert [m.content for m in await repo.load_history(A, "big", limit=2)] == ["m9998", "m9999"]
    assert await counter(pg_pool, "big") == 10_000


async def test_non_autocommit_pool_gives_the_same_results(database_dsn: str) -> None:
    async with AsyncConnectionPool(database_dsn, min_size=1, max_size=2, open=False) as pool:
        await pool.wait()
        repo = PostgresHistoryRepository(pool)
        assert await repo.append_messages(A, "s", [user("a", id="1"), user("b")]) == 2
        assert await repo.append_messages(A, "s", [user("a", id="1")]) == 0
        await repo.save_full_history(A, "t", [user("x")])
        assert await repo.clear_session(A, "t") == 1
        assert [m.content for m in await repo.load_history(A, "s")] == ["a", "b"]
        async with pool.connection() as conn:
            assert conn.autocommit is False  # handed back as the caller configured it


@pytest.mark.parametrize("with_ids", [False, True], ids=["plain", "with-ids"])
async def test_clears_racing_appends_leave_no_orphans(
    pg_pool: AsyncConnectionPool[Any], with_ids: bool
) -> None:
    repo = PostgresHistoryRepository(pg_pool)

    async def appender(w: int) -> None:
        for i in range(60):
            extra = {"id": f"{w}-{i}"} if with_ids else {}
            await repo.append_messages(A, "s", [user(f"{w}-{i}", **extra)])

    async def clearer() -> None:
        for _ in range(30):
            await repo.clear_session(A, "s")
            await asyncio.sleep(0)

    await asyncio.wait_for(asyncio.gather(clearer(), *(appender(w) for w in range(6))), timeout=240)
    rows = await stored_rows(pg_pool, "s")
    assert [seq for seq, _ in rows] == list(range(len(rows)))
    assert await counter(pg_pool, "s") == (len(rows) or None)
    cleared = await repo.clear_session(A, "s")
    assert cleared == len(rows)
    assert await stored_rows(pg_pool, "s") == []


async def test_a_statement_timeout_is_a_storage_error_and_is_not_retried(
    database_dsn: str,
) -> None:
    async with AsyncConnectionPool(
        database_dsn,
        min_size=1,
        max_size=2,
        kwargs={"autocommit": True, "options": "-c statement_timeout=200"},
        open=False,
    ) as pool:
        await pool.wait()
        repo = PostgresHistoryRepository(pool)
        await repo.load_history(A, "s")  # the pool's one question (is Citus there?) first
        async with await psycopg.AsyncConnection.connect(database_dsn) as blocker:
            await blocker.execute("LOCK TABLE conversation_history IN ACCESS EXCLUSIVE MODE")
            before = pool.get_stats().get("requests_num", 0)
            with pytest.raises(StorageError, match="statement timeout") as caught:
                await repo.load_history(A, "s")
            assert not isinstance(caught.value, DatabaseUnavailableError)
            assert pool.get_stats().get("requests_num", 0) - before == 1  # one attempt only
        assert await repo.load_history(A, "s") == []  # the pool still serves


@pytest.mark.parametrize(
    "zone", ["Europe/London", "Pacific/Kiritimati", "<+100>-100", "Etc/GMT+12"]
)
async def test_times_come_back_equal_and_in_utc_whatever_the_server_time_zone(
    database_dsn: str, zone: str
) -> None:
    given = [
        datetime(2024, 10, 27, 1, 30, tzinfo=UTC),  # London's repeated hour (fold=1 there)
        EARLIEST,
        LATEST,
    ]
    async with AsyncConnectionPool(
        database_dsn,
        min_size=1,
        max_size=1,
        kwargs={"autocommit": True, "options": f"-c TimeZone={zone}"},
        open=False,
    ) as pool:
        await pool.wait()
        repo = PostgresHistoryRepository(pool)
        await repo.append_messages(
            A, "s", [user(f"m{i}", created_at=t) for i, t in enumerate(given)]
        )
        loaded = await repo.load_history(A, "s")
        [info] = await repo.list_sessions(A)
    assert [m.created_at for m in loaded] == given
    assert all(m.created_at is not None and m.created_at.tzinfo is UTC for m in loaded)
    assert info.created_at.tzinfo is UTC and info.updated_at.tzinfo is UTC
