"""The lifecycle operations (issue 12) under production conditions (issue 10's class).

Issue 10 proved three guarantees for the original operations; this file proves
them for the operations issue 12 added (pages, get_session,
set_session_metadata, copy_session, purge_idle_sessions, iter_sessions,
iter_history, import_session, JSON Lines export and import):

- a server setting (DateStyle, TimeZone, ...) set on the database or the role
  changes no result: each operation gives what the in-memory fake gives (on
  the lifecycle branch, 57a2c51, ``DateStyle = 'SQL, DMY'`` or ``German`` made
  purge and import fail: they read a timestamptz as text);
- a stricter ``default_transaction_isolation`` loses no update and leaks no
  serialization failure when these writes race each other and appends;
- a write interrupted while it waits for the conversation's lock (task
  cancelled, statement_timeout, lock_timeout), at the execution where psycopg
  prepares its statements and at others, leaves nothing partial and a pool
  whose every call works.
"""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from agentcore import (
    HistoryRepository,
    InMemoryHistoryRepository,
    InvalidMessageError,
    NotFoundError,
    PostgresHistoryRepository,
    PurgeReport,
    SessionExistsError,
)
from agentcore.transfer import export_jsonl, import_jsonl
from tests.integration.storage_checks import (
    assert_counters_match_rows,
    stored_rows,
    table_dump,
)
from tests.integration.test_interrupted_writes import (
    INTERRUPTS,
    PREPARING,
    conversation_locked,
    every_operation_works,
    interrupt_while_it_waits,
    one_connection_pool,
)
from tests.integration.test_model_equivalence import outcome
from tests.integration.test_server_settings import GIVEN, IDS, SETTINGS, repository_under
from tests.integration.test_write_isolation import repository_at
from tests.support import PgServer

OLD = datetime(2001, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)
"""When the idle conversations were last written: long before any cutoff."""

IDLE = timedelta(days=30)

A = "support-bot"  # the conversation test_interrupted_writes locks
S = "interrupted"
SOURCE = "source"


async def _listed(items: AsyncIterator[Any]) -> Any:
    return [item async for item in items]


async def _export(repo: HistoryRepository, agent: str) -> str:
    out = io.StringIO()
    await export_jsonl(repo, out, agent_name=agent, batch_size=2)
    return out.getvalue()


async def _pages(repo: HistoryRepository, agent: str, owner: str | None) -> list[Any]:
    """Every page of the agent's (or the owner's) conversations, by cursor."""
    pages, after = [], None
    while True:
        page = await repo.list_sessions_page(agent, owner=owner, limit=2, after=after)
        pages.append(await outcome(_value(page)))
        if page.next_cursor is None:
            return pages
        after = page.next_cursor


async def _history_pages(repo: HistoryRepository, agent: str, session: str) -> list[Any]:
    """A conversation read backwards, page by page."""
    pages, before = [], None
    while True:
        page = await repo.load_history_page(agent, session, limit=2, before=before)
        pages.append(await outcome(_value(page)))
        if page.next_cursor is None:
            return pages
        before = page.next_cursor


async def _times(repo: HistoryRepository, agent: str, session: str) -> list[str]:
    """A conversation's given times and its newest message's, exactly, in UTC."""
    info = await repo.get_session(agent, session)
    newest = await repo.load_history(agent, session, limit=1)
    if info is None or not newest:
        return ["missing"]
    times = [info.created_at, info.updated_at, newest[0].created_at]
    assert all(t is not None and t.tzinfo is UTC for t in times)
    return [t.isoformat() for t in times if t is not None]


async def _value(value: Any) -> Any:
    return value


def _messages(tag: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "role": "user" if i % 2 == 0 else "assistant",
            "content": f"{tag} {i} 🙂 ¤ \\ ''",
            "id": f"{tag}-{i}",
            "created_at": GIVEN + timedelta(minutes=i),
            "metadata": {"price": 0.1, "big": 12345678901234567890},
        }
        for i in range(count)
    ]


async def every_lifecycle_operation(repo: HistoryRepository) -> list[Any]:
    """Each lifecycle operation (and the reads that show its effect), as outcomes."""
    a, s, archive = "agent-é", "session-✓", "archive"
    got: list[Any] = []
    got.append(
        await outcome(
            repo.import_session(
                a,
                s,
                _messages("m", 5),
                metadata={"title": "first", "owner": "user-1"},
                created_at=GIVEN,
                updated_at=GIVEN + timedelta(days=1),
            )
        )
    )
    got.append(await outcome(repo.import_session(a, s, _messages("again", 1))))
    for i in range(4):  # idle conversations, some of user-1
        owner = {"owner": "user-1"} if i % 2 else {}
        got.append(
            await outcome(
                repo.import_session(
                    a,
                    f"idle-{i}",
                    _messages(f"idle-{i}", i + 1),
                    metadata=owner,
                    created_at=OLD,
                    updated_at=OLD + timedelta(hours=i),
                )
            )
        )
    for i in range(3):  # conversations whose times are all given (exported exactly)
        got.append(
            await outcome(
                repo.import_session(
                    archive,
                    f"kept-{i}",
                    _messages(f"kept-{i}", 3),
                    metadata={"n": i, "f": 1.5e-7},
                    created_at=GIVEN,
                    updated_at=GIVEN + timedelta(seconds=i),
                )
            )
        )
    got.append(await outcome(repo.get_session(a, s)))
    got.append(await outcome(repo.get_session(a, "missing")))
    got.append(await _times(repo, a, s))
    got.append(await outcome(repo.set_session_metadata(a, s, {"tag": "x", "n": 1.25})))
    got.append(await outcome(repo.set_session_metadata(a, s, {"tag": None, "more": [1, "é"]})))
    got.append(await outcome(repo.set_session_metadata(a, "idle-0", {"only": True}, merge=False)))
    got.append(await outcome(repo.set_session_metadata(a, "missing", {"x": 1})))
    got.append(await outcome(repo.copy_session(a, s, "copy-all")))
    got.append(await outcome(repo.copy_session(a, s, "copy-2", up_to=2)))
    got.append(await outcome(repo.copy_session(a, s, "copy-id", up_to="m-3")))
    got.append(await outcome(repo.copy_session(a, s, "copy-2")))  # exists
    got.append(await outcome(repo.copy_session(a, s, "copy-x", up_to="no-such-id")))
    got.append(await outcome(repo.copy_session(a, "missing", "copy-y")))
    got.append(await _times(repo, a, s))
    for copy in ("copy-all", "copy-2", "copy-id"):
        got.append(await outcome(repo.load_history(a, copy)))
        got.append(await outcome(repo.get_session(a, copy)))
    got.append(await _times(repo, archive, "kept-2"))
    got.append(await _pages(repo, a, None))
    got.append(await _pages(repo, a, "user-1"))
    got.append(await _history_pages(repo, a, s))
    got.append(await outcome(_listed(repo.iter_sessions(a, batch_size=2))))
    got.append(await outcome(_listed(repo.iter_sessions(batch_size=3))))
    got.append(await outcome(_listed(repo.iter_history(a, s, batch_size=2))))

    exported = await _export(repo, archive)
    got.append(exported)
    got.append(await outcome(import_jsonl(repo, io.StringIO(exported))))  # all skipped
    got.append(await outcome(repo.clear_session(archive, "kept-1")))
    got.append(await outcome(import_jsonl(repo, io.StringIO(exported))))  # kept-1 again
    got.append((await _export(repo, archive)) == exported)

    progress: list[Any] = []
    got.append(await outcome(repo.purge_idle_sessions(IDLE, agent_name=a, dry_run=True)))
    got.append(await outcome(repo.purge_idle_sessions(IDLE, dry_run=True)))
    got.append(
        await outcome(
            repo.purge_idle_sessions(
                IDLE, agent_name=a, batch_size=2, pause=0, on_progress=progress.append
            )
        )
    )
    got.append(progress)
    got.append(await outcome(repo.purge_idle_sessions(IDLE, agent_name=a)))  # nothing left
    got.append(await outcome(repo.list_sessions(a)))
    got.append(await outcome(repo.load_history(a, "idle-3")))
    got.append(await outcome(repo.purge_idle_sessions(IDLE, batch_size=1, pause=0)))  # archive
    got.append(await outcome(repo.list_sessions(archive)))
    return got


@pytest.mark.parametrize("scope", ["database", "role"])
@pytest.mark.parametrize(("name", "value"), SETTINGS, ids=IDS)
async def test_every_lifecycle_operation_gives_what_the_fake_gives_under_a_server_setting(
    pg_server: PgServer, name: str, value: str, scope: str
) -> None:
    want = await every_lifecycle_operation(InMemoryHistoryRepository())
    async with repository_under(pg_server, name, value, scope) as repo:
        assert await every_lifecycle_operation(repo) == want


TASKS = 6
ROUNDS = 10


@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "not-autocommit"])
async def test_lifecycle_writes_race_under_a_stricter_default_isolation(
    database_dsn: str, isolation: str, autocommit: bool
) -> None:
    async with repository_at(database_dsn, isolation, autocommit, TASKS + 4) as repo:
        await asyncio.wait_for(copies_racing_appends(repo), 120)
        await asyncio.wait_for(metadata_merges_racing(repo), 120)
        await asyncio.wait_for(purge_racing_appends(repo, database_dsn), 120)
        await asyncio.wait_for(imports_of_one_target_racing(repo), 120)
        assert_counters_match_rows(database_dsn)


async def copies_racing_appends(repo: PostgresHistoryRepository) -> None:
    """Each copy is a prefix of the source, whole, while appends go on."""
    await repo.import_session(A, "source", _messages("base", 4), metadata={"title": "t"})

    async def appender(w: int) -> None:
        for c in range(ROUNDS):
            await repo.append_messages(A, "source", [{"role": "user", "content": f"p{w}-{c}"}])
            batch = [{"role": "user", "content": f"i{w}-{c}", "id": f"i{w}-{c}"}]
            await repo.append_messages(A, "source", batch)

    async def copier(k: int) -> int:
        copied = await repo.copy_session(A, "source", f"copy-{k}")
        await asyncio.sleep(0)
        return copied

    *_, counts = await asyncio.gather(
        appender(0),
        appender(1),
        asyncio.gather(*(copier(k) for k in range(TASKS))),
    )
    source = [(m.content, m.id) for m in await repo.load_history(A, "source")]
    assert len(source) == 4 + 2 * 2 * ROUNDS
    for k, copied in enumerate(counts):
        copy = [(m.content, m.id) for m in await repo.load_history(A, f"copy-{k}")]
        assert copy == source[:copied]
        info = await repo.get_session(A, f"copy-{k}")
        assert info is not None and info.message_count == copied >= 4
        assert info.metadata == {"title": "t"}
        # The copy's counter is right: an append lands after its last message.
        await repo.append_messages(A, f"copy-{k}", [{"role": "user", "content": "after"}])
        assert [m.content for m in await repo.load_history(A, f"copy-{k}", limit=2)][-1] == "after"


async def metadata_merges_racing(repo: PostgresHistoryRepository) -> None:
    """Merges of distinct keys into one conversation's metadata lose none."""
    await repo.append_messages(A, "meta", [{"role": "user", "content": "hi"}])

    async def merger(w: int) -> None:
        for c in range(ROUNDS):
            await repo.set_session_metadata(A, "meta", {f"k{w}-{c}": c})

    await asyncio.gather(*(merger(w) for w in range(TASKS)))
    info = await repo.get_session(A, "meta")
    assert info is not None
    assert info.metadata == {f"k{w}-{c}": c for w in range(TASKS) for c in range(ROUNDS)}


async def purge_racing_appends(repo: PostgresHistoryRepository, dsn: str) -> None:
    """A purge deletes only conversations idle all along, and loses no message."""
    agent = "purged"
    sessions = [f"idle-{i:02}" for i in range(40)]
    for s in sessions:
        await repo.import_session(agent, s, _messages(s, 2), created_at=OLD, updated_at=OLD)
    written: set[str] = set()
    rng = random.Random(0)

    async def writer(w: int) -> None:
        for c in range(ROUNDS):
            s = rng.choice(sessions)
            await repo.append_messages(agent, s, [{"role": "user", "content": f"w{w}-{c}"}])
            written.add(s)
            await asyncio.sleep(0)

    purge = repo.purge_idle_sessions(IDLE, agent_name=agent, batch_size=3, pause=0)
    report, *_ = await asyncio.gather(purge, *(writer(w) for w in range(3)))
    assert isinstance(report, PurgeReport)
    rows = {s: [c for _, c, _ in r] for (a, s), r in stored_rows(dsn).items() if a == agent}
    appended = [f"w{w}-{c}" for w in range(3) for c in range(ROUNDS)]
    stored = [c for contents in rows.values() for c in contents]
    assert sorted(c for c in stored if c is not None and c.startswith("w")) == sorted(appended)
    assert len(stored) == 2 * len(sessions) + len(appended) - report.messages
    assert set(rows) <= written  # only written conversations are left
    assert report.sessions == len(sessions) - sum(
        1 for s in rows if rows[s][:1] == [f"{s} 0 🙂 ¤ \\ ''"]
    )


async def imports_of_one_target_racing(repo: PostgresHistoryRepository) -> None:
    """Imports of one new conversation: exactly one stores it, the others are refused."""

    async def importer(w: int) -> int | str:
        try:
            return await repo.import_session(A, "imported", _messages(f"w{w}", 3 + w))
        except SessionExistsError:
            return "exists"

    results = await asyncio.gather(*(importer(w) for w in range(TASKS)))
    [winner] = [w for w, r in enumerate(results) if r != "exists"]
    assert results[winner] == 3 + winner
    stored = [m.content for m in await repo.load_history(A, "imported")]
    assert stored == [m["content"] for m in _messages(f"w{winner}", 3 + winner)]


WRITES = ["copy_session", "set_session_metadata", "import_session", "purge_batch"]


@asynccontextmanager
async def advisory_locked(admin: psycopg.AsyncConnection[Any]) -> AsyncIterator[None]:
    """Hold the conversation's advisory lock only: its row stays absent (a copy's or
    an import's target)."""
    await admin.execute(b"BEGIN")
    await admin.execute(b"SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (A, S))
    try:
        yield
    finally:
        await admin.execute(b"COMMIT")


@asynccontextmanager
async def messages_locked(admin: psycopg.AsyncConnection[Any]) -> AsyncIterator[None]:
    """Hold the conversation's message rows, which a purge must delete with it.

    A purge skips a conversation whose advisory lock or counter row is held;
    another transaction holding its messages (a reader's ``FOR SHARE``, say)
    makes the purge's batch wait, after it deleted the counter row.
    """
    await admin.execute(b"BEGIN")
    await admin.execute(
        b"SELECT 1 FROM conversation_history WHERE agent_name = %s AND session_id = %s FOR SHARE",
        (A, S),
    )
    try:
        yield
    finally:
        await admin.execute(b"COMMIT")


def _lifecycle_write(
    repo: PostgresHistoryRepository, kind: str, tag: str
) -> Callable[[], Awaitable[Any]]:
    """One call of the lifecycle write ``kind`` on the conversation S, repeatable."""
    if kind == "copy_session":
        return lambda: repo.copy_session(A, SOURCE, S, up_to=2)
    if kind == "set_session_metadata":
        return lambda: repo.set_session_metadata(A, S, {tag: True})
    if kind == "import_session":
        return lambda: repo.import_session(A, S, _messages(tag, 3), created_at=OLD)
    return lambda: repo.purge_idle_sessions(IDLE, agent_name=A, batch_size=1, pause=0)


async def _warm_up(repo: PostgresHistoryRepository, kind: str, n: int) -> None:
    """A call of ``kind`` that runs its statements once more on the connection."""
    if kind == "copy_session":
        assert await repo.copy_session(A, SOURCE, f"warm-{n}", up_to=2) == 2
    elif kind == "set_session_metadata":
        await repo.set_session_metadata(A, S, {f"warm-{n}": n})
    elif kind == "import_session":
        assert await repo.import_session(A, f"warm-{n}", _messages(f"warm-{n}", 2)) == 2
    else:  # one idle conversation purged: each purge statement runs once more
        await repo.import_session(A, f"warm-{n}", _messages("w", 1), updated_at=OLD)
        assert await repo.purge_idle_sessions(
            IDLE, agent_name=A, batch_size=1, pause=0
        ) == PurgeReport(sessions=1, messages=1)


async def every_lifecycle_operation_works(repo: PostgresHistoryRepository, tag: str) -> None:
    """50 calls of each lifecycle operation, each checked, on a pool just interrupted."""
    for i in range(50):
        t = f"{tag}-{i}"
        assert await repo.copy_session(A, SOURCE, f"{t}-copy", up_to=2) == 2
        assert await repo.set_session_metadata(A, f"{t}-copy", {"i": i}) == {"title": "t", "i": i}
        assert await repo.import_session(A, f"{t}-idle", _messages(t, 2), updated_at=OLD) == 2
        info = await repo.get_session(A, f"{t}-copy")
        assert info is not None and info.message_count == 2
        page = await repo.list_sessions_page(A, limit=1)
        assert page.next_cursor is not None
        assert len((await repo.list_sessions_page(A, limit=1, after=page.next_cursor)).sessions)
        history = await repo.load_history_page(A, f"{t}-idle", limit=1)
        assert history.next_cursor is not None
        older = await repo.load_history_page(A, f"{t}-idle", limit=1, before=history.next_cursor)
        assert [m.id for m in older.messages] == [f"{t}-0"]
        assert len(await _listed(repo.iter_history(A, f"{t}-copy", batch_size=1))) == 2
        report = await repo.purge_idle_sessions(IDLE, agent_name=A, batch_size=1, pause=0)
        assert report == PurgeReport(sessions=1, messages=2)
        if i % 10 == 0:  # refusals, and a walk of every conversation
            with pytest.raises(SessionExistsError):
                await repo.copy_session(A, SOURCE, f"{t}-copy")
            with pytest.raises(SessionExistsError):
                await repo.import_session(A, f"{t}-copy", _messages(t, 1))
            assert len(await _listed(repo.iter_sessions(A, batch_size=7))) > i


# Each interruption at the preparing execution, on both kinds of pool; a
# cancellation (which psycopg handles on the client) at others as well.
CASES = [
    (pool_kind, write, interrupt, PREPARING)
    for pool_kind in ("autocommit", "not-autocommit")
    for write in WRITES
    for interrupt in INTERRUPTS
] + [("autocommit", write, "cancelled", uses) for write in WRITES for uses in (0, PREPARING + 2)]


@pytest.mark.slow
@pytest.mark.parametrize(("pool_kind", "write", "interrupt", "uses"), CASES)
async def test_an_interrupted_lifecycle_write_leaves_nothing_and_a_working_pool(
    database_dsn: str, pool_kind: str, write: str, interrupt: str, uses: int
) -> None:
    async with (
        await psycopg.AsyncConnection.connect(database_dsn, autocommit=True) as admin,
        await psycopg.AsyncConnection.connect(database_dsn, autocommit=True) as checker,
        one_connection_pool(database_dsn, pool_kind, interrupt) as pool,
    ):
        repo = PostgresHistoryRepository(pool)
        await repo.import_session(A, SOURCE, _messages("source", 4), metadata={"title": "t"})
        if write == "set_session_metadata":
            await repo.import_session(A, S, _messages("s", 3))
        for n in range(uses):  # the statements' executions so far on this connection
            await _warm_up(repo, write, n)
        if write == "purge_batch":  # the only idle conversation
            await repo.import_session(A, S, _messages("s", 3), created_at=OLD, updated_at=OLD)
        before = table_dump(database_dsn)
        interrupted = _lifecycle_write(repo, write, "interrupted")
        locked = {
            "copy_session": advisory_locked,
            "import_session": advisory_locked,
            "set_session_metadata": conversation_locked,
            "purge_batch": messages_locked,
        }[write]

        async with locked(admin):
            await interrupt_while_it_waits(interrupted, interrupt, checker)
        assert table_dump(database_dsn) == before, "the interrupted write left something"

        # A retry does the write; the next one finds it done.
        done = await interrupted()
        if write in ("copy_session", "import_session"):
            assert done == (2 if write == "copy_session" else 3)
            with pytest.raises(SessionExistsError):
                await interrupted()
        elif write == "set_session_metadata":
            assert done["interrupted"] is True
        else:
            assert done == PurgeReport(sessions=1, messages=3)
            assert await interrupted() == PurgeReport()
        assert_counters_match_rows(database_dsn)

        await every_lifecycle_operation_works(repo, f"{write}-{interrupt}")
        await every_operation_works(repo, f"{write}-{interrupt}")


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "not-autocommit"])
async def test_a_refused_lifecycle_write_keeps_its_connection(
    database_dsn: str, autocommit: bool
) -> None:
    """A refusal (no I/O failed) costs no new connection: a second import refuses every one."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        database_dsn, min_size=1, max_size=1, kwargs={"autocommit": autocommit}, open=False
    )
    await pool.open(wait=True, timeout=30)
    try:
        repo = PostgresHistoryRepository(pool)
        for s in ("a", "b", "c"):
            await repo.import_session(A, s, _messages(s, 2), metadata={"title": s})
        exported = await _export(repo, A)
        backend = await _backend(pool)
        for _ in range(7):  # across the execution where psycopg prepares
            report = await import_jsonl(repo, io.StringIO(exported))
            assert (report.sessions, report.skipped_sessions) == (0, 3)
            with pytest.raises(SessionExistsError):
                await repo.copy_session(A, "a", "b")
            with pytest.raises(NotFoundError):
                await repo.set_session_metadata(A, "missing", {"x": 1})
            with pytest.raises(InvalidMessageError):  # refused mid-COPY
                await repo.import_session(A, "new", [*_messages("n", 2), {"role": "nobody"}])
        assert await _backend(pool) == backend
        assert await repo.get_session(A, "new") is None
        assert await _export(repo, A) == exported
        assert_counters_match_rows(database_dsn)
    finally:
        await pool.close()


async def _backend(pool: AsyncConnectionPool[Any]) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute(b"SELECT pg_backend_pid()")
        row = await cur.fetchone()
        assert row is not None
        if not conn.autocommit:
            await conn.commit()
        return int(row[0])
