"""A conversation's life beyond its turns, on every repository: metadata, pages,
copies, purges, and the streams that export and import use."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentcore import (
    HistoryRepository,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidMessageError,
    Message,
    NotFoundError,
)
from agentcore.errors import SessionExistsError
from agentcore.models import PurgeReport
from agentcore.repository import (
    HistoryEditing,
    HistoryExport,
    HistoryImport,
    SessionLifecycle,
    TurnStore,
)

pytestmark = pytest.mark.port.with_args(
    SessionLifecycle, HistoryExport, HistoryImport, uses=(TurnStore, HistoryEditing)
)

A = "support-bot"
T0 = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def user(text: str, **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": text, **extra}


def texts(messages: list[Message]) -> list[str | None]:
    return [m.content for m in messages]


async def seed(repo: HistoryRepository, session: str, n: int, agent: str = A) -> None:
    await repo.append_messages(agent, session, [user(f"{session}-{i}") for i in range(n)])


async def walk(repo: HistoryRepository, agent: str = A, **kwargs: Any) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = await repo.list_sessions_page(agent, after=cursor, **kwargs)
        pages.append([s.session_id for s in page.sessions])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


# --- session metadata ----------------------------------------------------------


async def test_metadata_is_empty_until_set_then_listed(repo: HistoryRepository) -> None:
    await seed(repo, "s", 1)
    assert [s.metadata for s in await repo.list_sessions(A)] == [{}]
    stored = await repo.set_session_metadata(A, "s", {"title": "Refund", "tags": ["a", 1]})
    assert stored == {"tags": ["a", 1], "title": "Refund"}
    [info] = await repo.list_sessions(A)
    assert info.metadata == {"title": "Refund", "tags": ["a", 1]}
    assert list(info.metadata) == ["tags", "title"]  # as jsonb orders keys


async def test_metadata_merges_by_default_and_replaces_on_request(repo: HistoryRepository) -> None:
    await seed(repo, "s", 1)
    await repo.set_session_metadata(A, "s", {"title": "x", "owner": "u1"})
    assert await repo.set_session_metadata(A, "s", {"title": "y"}) == {"owner": "u1", "title": "y"}
    assert await repo.set_session_metadata(A, "s", {"tags": []}, merge=False) == {"tags": []}
    assert (await repo.list_sessions(A))[0].metadata == {"tags": []}


async def test_metadata_survives_writes_and_dies_with_the_conversation(
    repo: HistoryRepository,
) -> None:
    await seed(repo, "s", 1)
    await repo.set_session_metadata(A, "s", {"title": "kept"})
    await seed(repo, "s", 2)
    await repo.save_full_history(A, "s", [user("replaced")])
    assert (await repo.list_sessions(A))[0].metadata == {"title": "kept"}
    await repo.clear_session(A, "s")
    await seed(repo, "s", 1)
    assert (await repo.list_sessions(A))[0].metadata == {}


async def test_setting_metadata_does_not_count_as_a_write(repo: HistoryRepository) -> None:
    await seed(repo, "old", 1)
    await seed(repo, "new", 1)
    before = await repo.list_sessions(A)
    await repo.set_session_metadata(A, "old", {"title": "renamed"})
    after = await repo.list_sessions(A)
    assert [s.session_id for s in after] == ["new", "old"]
    assert [s.updated_at for s in after] == [s.updated_at for s in before]


async def test_metadata_of_an_unknown_conversation_is_not_found(repo: HistoryRepository) -> None:
    with pytest.raises(NotFoundError, match="agent 'support-bot' has no session 'nope'"):
        await repo.set_session_metadata(A, "nope", {"title": "x"})


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        (["not", "a", "dict"], "must be a dict"),
        ({1: "x"}, "keys must be strings"),
        ({"x": float("nan")}, "NaN"),
        ({"x": object()}, "not JSON"),
        ({"owner": 42}, "owner"),
        ({"owner": ""}, "owner"),
        ({"owner": "x" * 256}, "owner"),
        ({"x": "y" * 20_000}, "the limit is 16384"),
        ({"x": "nul\x00"}, "NUL"),
    ],
)
async def test_bad_metadata_is_rejected_and_nothing_changes(
    repo: HistoryRepository, metadata: Any, fragment: str
) -> None:
    await seed(repo, "s", 1)
    await repo.set_session_metadata(A, "s", {"title": "before"})
    with pytest.raises(InvalidInputError, match=fragment):
        await repo.set_session_metadata(A, "s", metadata)
    assert (await repo.list_sessions(A))[0].metadata == {"title": "before"}


async def test_a_merge_that_grows_too_large_is_rejected(repo: HistoryRepository) -> None:
    await seed(repo, "s", 1)
    await repo.set_session_metadata(A, "s", {"a": "x" * 9000})
    with pytest.raises(InvalidInputError, match="the limit is 16384"):
        await repo.set_session_metadata(A, "s", {"b": "y" * 9000})
    assert (await repo.list_sessions(A))[0].metadata == {"a": "x" * 9000}


async def test_concurrent_merges_lose_no_key(repo: HistoryRepository) -> None:
    await seed(repo, "s", 1)
    await asyncio.gather(*(repo.set_session_metadata(A, "s", {f"k{i}": i}) for i in range(8)))
    assert (await repo.list_sessions(A))[0].metadata == {f"k{i}": i for i in range(8)}


# --- listing sessions by page ----------------------------------------------------


async def test_pages_walk_every_session_once_in_list_order(repo: HistoryRepository) -> None:
    for i in range(7):
        await seed(repo, f"s{i}", 1)
    everything = [s.session_id for s in await repo.list_sessions(A)]
    pages = await walk(repo, limit=3)
    assert pages == [everything[0:3], everything[3:6], everything[6:7]]


async def test_an_exact_last_page_has_no_cursor(repo: HistoryRepository) -> None:
    for i in range(4):
        await seed(repo, f"s{i}", 1)
    page = await repo.list_sessions_page(A, limit=4)
    assert len(page.sessions) == 4 and page.next_cursor is None
    assert (await repo.list_sessions_page("nobody")).sessions == []


async def test_pages_break_ties_by_session_id_in_code_point_order(repo: HistoryRepository) -> None:
    # Imports with one given updated_at: both stores keep it exactly.
    ids = ["b", "a", "Z", "é", "a b", "10", "9"]
    for sid in ids:
        await repo.import_session(A, sid, [user("x")], updated_at=T0)
    assert await walk(repo, limit=2) == [["10", "9"], ["Z", "a"], ["a b", "b"], ["é"]]


async def test_a_session_written_between_pages_is_not_listed_twice(
    repo: HistoryRepository,
) -> None:
    for i in range(6):
        await repo.import_session(A, f"s{i}", [user("x")], updated_at=T0 + timedelta(hours=i))
    first = await repo.list_sessions_page(A, limit=3)
    await seed(repo, first.sessions[-1].session_id, 1)  # moves to the front
    second = await repo.list_sessions_page(A, limit=3, after=first.next_cursor)
    seen = [s.session_id for s in first.sessions + second.sessions]
    assert len(seen) == len(set(seen)) == 6


async def test_one_owners_sessions_most_recent_first(repo: HistoryRepository) -> None:
    for i in range(5):
        owner = "alice" if i % 2 else "bob"
        await repo.import_session(
            A, f"s{i}", [user("x")], metadata={"owner": owner}, updated_at=T0 + timedelta(hours=i)
        )
    await seed(repo, "s1", 1)  # alice's most recent
    await seed(repo, "x", 1, agent="other")
    await repo.set_session_metadata("other", "x", {"owner": "alice"})
    assert await walk(repo, owner="alice", limit=1) == [["s1"], ["s3"]]
    assert await walk(repo, owner="bob", limit=10) == [["s4", "s2", "s0"]]
    assert await walk(repo, owner="carol") == [[]]


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "nonsense",
        "!!!",
        "eyJhIjogMX0",
        "W10",
        "WzEsImgiLDNd",
        "WzIsInMiLCJ4IiwieSJd",
        "x" * 3000,
    ],
)
async def test_a_cursor_not_made_by_list_sessions_page_is_rejected(
    repo: HistoryRepository, cursor: str
) -> None:
    with pytest.raises(
        InvalidInputError, match="after is not a cursor returned by list_sessions_page"
    ):
        await repo.list_sessions_page(A, after=cursor)


@pytest.mark.parametrize("limit", [0, -1, 10_001, "3", None, True])
async def test_bad_page_sizes_are_rejected(repo: HistoryRepository, limit: Any) -> None:
    with pytest.raises(InvalidInputError, match="limit must be"):
        await repo.list_sessions_page(A, limit=limit)
    with pytest.raises(InvalidInputError, match="limit must be"):
        await repo.load_history_page(A, "s", limit=limit)


async def test_bad_owner_is_rejected(repo: HistoryRepository) -> None:
    with pytest.raises(InvalidIdentifierError, match="owner"):
        await repo.list_sessions_page(A, owner="")


# --- reading a conversation backwards ------------------------------------------


async def test_history_pages_go_backwards_to_the_first_message(repo: HistoryRepository) -> None:
    await seed(repo, "s", 7)
    pages, cursor = [], None
    while True:
        page = await repo.load_history_page(A, "s", limit=3, before=cursor)
        pages.append(texts(page.messages))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == [["s-4", "s-5", "s-6"], ["s-1", "s-2", "s-3"], ["s-0"]]


async def test_appends_do_not_shift_older_history_pages(repo: HistoryRepository) -> None:
    await seed(repo, "s", 5)
    first = await repo.load_history_page(A, "s", limit=2)
    await repo.append_messages(A, "s", [user("new")])
    older = await repo.load_history_page(A, "s", limit=2, before=first.next_cursor)
    assert texts(older.messages) == ["s-1", "s-2"]


async def test_history_page_of_unknown_session_is_empty(repo: HistoryRepository) -> None:
    page = await repo.load_history_page(A, "nobody")
    assert page.messages == [] and page.next_cursor is None


async def test_a_session_cursor_is_not_a_history_cursor(repo: HistoryRepository) -> None:
    for i in range(3):
        await seed(repo, f"s{i}", 1)
    session_cursor = (await repo.list_sessions_page(A, limit=1)).next_cursor
    with pytest.raises(InvalidInputError, match="before is not a cursor returned by load_history"):
        await repo.load_history_page(A, "s0", before=session_cursor)
    await seed(repo, "h", 3)
    history_cursor = (await repo.load_history_page(A, "h", limit=1)).next_cursor
    with pytest.raises(InvalidInputError, match="after is not a cursor"):
        await repo.list_sessions_page(A, after=history_cursor)


# --- copying a conversation -------------------------------------------------------


FULL: list[dict[str, Any]] = [
    {"role": "system", "content": "be brief", "metadata": {"k": [1, 2.5]}, "id": "m0"},
    {"role": "user", "content": "hi", "name": "ann", "id": "m1", "created_at": T0},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}],
        "id": "m2",
    },
    {"role": "tool", "content": "42", "tool_call_id": "c1", "id": "m3"},
    {"role": "assistant", "content": "done"},
]


async def test_copy_keeps_every_field_and_the_metadata(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "src", FULL)
    await repo.set_session_metadata(A, "src", {"owner": "u1", "title": "t"})
    assert await repo.copy_session(A, "src", "dst") == 5
    assert await repo.load_history(A, "dst") == await repo.load_history(A, "src")
    infos = {s.session_id: s for s in await repo.list_sessions(A)}
    assert infos["dst"].metadata == {"owner": "u1", "title": "t"}
    assert infos["dst"].message_count == 5
    assert infos["dst"].updated_at >= infos["src"].updated_at
    # The copy goes on by itself; the source is untouched.
    await repo.append_messages(A, "dst", [user("only in dst", id="m1")])  # id stored: skipped
    await repo.append_messages(A, "dst", [user("only in dst")])
    assert len(await repo.load_history(A, "src")) == 5
    assert texts(await repo.load_history(A, "dst", limit=1)) == ["only in dst"]


async def test_copy_up_to_a_count_or_a_message_id(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "src", FULL)
    assert await repo.copy_session(A, "src", "first2", up_to=2) == 2
    assert [m.id for m in await repo.load_history(A, "first2")] == ["m0", "m1"]
    assert await repo.copy_session(A, "src", "to-m2", up_to="m2") == 3
    assert [m.id for m in await repo.load_history(A, "to-m2")] == ["m0", "m1", "m2"]
    assert await repo.copy_session(A, "src", "all", up_to=99) == 5
    await repo.append_messages(A, "first2", [user("branch")])
    assert texts(await repo.load_history(A, "first2")) == ["be brief", "hi", "branch"]


async def test_copy_refuses_an_existing_target_and_changes_nothing(
    repo: HistoryRepository,
) -> None:
    await seed(repo, "src", 2)
    await seed(repo, "dst", 1)
    with pytest.raises(SessionExistsError, match="already has a session 'dst'"):
        await repo.copy_session(A, "src", "dst")
    with pytest.raises(SessionExistsError):
        await repo.copy_session(A, "src", "src")
    assert texts(await repo.load_history(A, "dst")) == ["dst-0"]


async def test_copy_of_a_missing_source_or_message_is_not_found(repo: HistoryRepository) -> None:
    with pytest.raises(NotFoundError, match="has no session 'ghost'"):
        await repo.copy_session(A, "ghost", "dst")
    await seed(repo, "src", 2)
    with pytest.raises(NotFoundError, match="no message with id 'nope'"):
        await repo.copy_session(A, "src", "dst", up_to="nope")
    assert [s.session_id for s in await repo.list_sessions(A)] == ["src"]


@pytest.mark.parametrize("up_to", [0, -3, 1.5, True, "", ["m1"]])
async def test_copy_rejects_a_bad_bound(repo: HistoryRepository, up_to: Any) -> None:
    await seed(repo, "src", 2)
    with pytest.raises(InvalidInputError, match="up_to"):
        await repo.copy_session(A, "src", "dst", up_to=up_to)


async def test_concurrent_copies_to_one_target_create_it_once(repo: HistoryRepository) -> None:
    await seed(repo, "a", 2)
    await seed(repo, "b", 3)
    results = await asyncio.gather(
        repo.copy_session(A, "a", "t"), repo.copy_session(A, "b", "t"), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["SessionExistsError", "int"]
    count = next(r for r in results if isinstance(r, int))
    assert len(await repo.load_history(A, "t")) == count


# --- purging idle conversations ----------------------------------------------------


async def test_purge_deletes_idle_sessions_and_reports_them(repo: HistoryRepository) -> None:
    await repo.import_session(A, "old1", [user("a"), user("b")], updated_at=T0)
    await repo.import_session(A, "old2", [user("c")], updated_at=T0 + timedelta(seconds=1))
    await repo.import_session("other", "old3", [user("d")], updated_at=T0)
    await seed(repo, "fresh", 4)
    idle = timedelta(days=30)
    assert await repo.purge_idle_sessions(idle, dry_run=True) == PurgeReport(sessions=3, messages=4)
    assert len(await repo.list_sessions(A)) == 3  # the dry run deleted nothing
    progress: list[PurgeReport] = []
    report = await repo.purge_idle_sessions(
        idle, agent_name=A, batch_size=1, pause=0, on_progress=progress.append
    )
    assert report == PurgeReport(sessions=2, messages=3)
    assert progress[-1] == report and len(progress) >= 2
    assert [s.session_id for s in await repo.list_sessions(A)] == ["fresh"]
    assert await repo.load_history(A, "old1") == []
    assert [s.session_id for s in await repo.list_sessions("other")] == ["old3"]
    assert await repo.purge_idle_sessions(idle, pause=0) == PurgeReport(sessions=1, messages=1)
    assert await repo.purge_idle_sessions(idle, pause=0) == PurgeReport()


async def test_a_purged_session_id_can_be_used_again(repo: HistoryRepository) -> None:
    await repo.import_session(A, "s", [user("old")], updated_at=T0)
    await repo.purge_idle_sessions(timedelta(days=1), pause=0)
    await seed(repo, "s", 2)
    assert texts(await repo.load_history(A, "s")) == ["s-0", "s-1"]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"idle_for": -timedelta(seconds=1)}, "idle_for must not be negative"),
        ({"idle_for": 30}, "idle_for must be a timedelta"),
        ({"idle_for": timedelta.max}, "idle_for must be at most 36525 days"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"pause": -1}, "pause must be"),
        ({"pause": float("inf")}, "pause must be"),
        ({"max_impact": 0}, "max_impact must be above 0 and at most 1, got 0"),
        ({"max_impact": 1.5}, "max_impact must be above 0 and at most 1, got 1.5"),
        ({"max_impact": float("nan")}, "max_impact must be above 0"),
        ({"max_impact": True}, "max_impact must be a number above 0 and at most 1, got bool"),
        ({"agent_name": ""}, "agent_name"),
    ],
)
async def test_purge_rejects_bad_arguments(
    repo: HistoryRepository, kwargs: dict[str, Any], fragment: str
) -> None:
    await repo.import_session(A, "s", [user("old")], updated_at=T0)
    call = {"idle_for": timedelta(days=1)} | kwargs
    with pytest.raises(InvalidInputError, match=fragment):
        await repo.purge_idle_sessions(**call)
    assert len(await repo.list_sessions(A)) == 1


# --- streams: export and import ----------------------------------------------------


async def test_iter_history_reads_everything_in_order_in_batches(repo: HistoryRepository) -> None:
    await seed(repo, "s", 7)
    got = [m async for m in repo.iter_history(A, "s", batch_size=3)]
    assert got == await repo.load_history(A, "s")
    assert [m async for m in repo.iter_history(A, "nobody")] == []


async def test_iter_sessions_visits_every_session_of_one_or_all_agents(
    repo: HistoryRepository,
) -> None:
    for i in range(5):
        await seed(repo, f"s{i}", 1)
    await seed(repo, "x", 2, agent="other")
    mine = [s.session_id async for s in repo.iter_sessions(A, batch_size=2)]
    assert sorted(mine) == ["s0", "s1", "s2", "s3", "s4"]
    everything = [(s.agent_name, s.session_id) async for s in repo.iter_sessions(batch_size=2)]
    assert sorted(everything) == sorted([(A, f"s{i}") for i in range(5)] + [("other", "x")])


async def test_import_round_trips_every_field(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "src", FULL)
    original = await repo.load_history(A, "src")

    async def stream() -> Any:
        for message in original:
            yield message

    count = await repo.import_session(
        A, "copy", stream(), metadata={"owner": "u"}, created_at=T0, updated_at=T0
    )
    assert count == 5
    assert await repo.load_history(A, "copy") == original
    info = next(s for s in await repo.list_sessions(A) if s.session_id == "copy")
    assert (info.created_at, info.updated_at, info.metadata) == (T0, T0, {"owner": "u"})
    assert info.message_count == 5
    await repo.append_messages(A, "copy", [user("next")])
    assert (await repo.load_history(A, "copy", limit=1))[0].content == "next"


async def test_import_refuses_an_existing_session_without_reading(
    repo: HistoryRepository,
) -> None:
    await seed(repo, "s", 1)
    read: list[int] = []

    def messages() -> Any:
        read.append(1)
        yield user("x")

    with pytest.raises(SessionExistsError):
        await repo.import_session(A, "s", messages())
    assert read == []
    assert texts(await repo.load_history(A, "s")) == ["s-0"]


@pytest.mark.parametrize(
    "bad",
    [
        [user("ok"), {"role": "robot", "content": "x"}],
        [user("ok"), user("nul\x00")],
    ],
)
async def test_a_bad_message_anywhere_imports_nothing(repo: HistoryRepository, bad: Any) -> None:
    with pytest.raises(InvalidMessageError, match=r"messages\[1\]"):
        await repo.import_session(A, "s", bad)
    assert await repo.list_sessions(A) == []
    assert await repo.import_session(A, "s", [user("ok")]) == 1


async def test_an_id_repeated_anywhere_in_an_import_stores_nothing(
    repo: HistoryRepository,
) -> None:
    messages = [user("a", id="m"), *(user(f"x{i}") for i in range(50)), user("b", id="m")]
    with pytest.raises(InvalidMessageError, match="a message id appears twice"):
        await repo.import_session(A, "s", messages)
    assert await repo.list_sessions(A) == []


async def test_importing_no_messages_stores_the_conversation_empty(
    repo: HistoryRepository,
) -> None:
    # As pop_message or replace_last_messages can leave one: its metadata and times kept.
    assert (
        await repo.import_session(A, "s", [], metadata={"owner": "u"}, created_at=T0, updated_at=T0)
        == 0
    )
    info = await repo.get_session(A, "s")
    assert info is not None
    assert (info.message_count, info.metadata, info.created_at, info.updated_at) == (
        0, {"owner": "u"}, T0, T0
    )  # fmt: skip
    assert await repo.append_messages(A, "s", [user("next")]) == 1
    assert texts(await repo.load_history(A, "s")) == ["next"]


async def test_get_session_returns_one_summary_or_none(repo: HistoryRepository) -> None:
    assert await repo.get_session(A, "s") is None
    await seed(repo, "s", 2)
    await repo.set_session_metadata(A, "s", {"title": "t"})
    info = await repo.get_session(A, "s")
    assert info is not None
    assert (info.session_id, info.message_count, info.metadata) == ("s", 2, {"title": "t"})
    assert info == (await repo.list_sessions(A))[0]
    with pytest.raises(InvalidIdentifierError):
        await repo.get_session(A, "")
