"""Cursors: every cursor a page returns is accepted by the next call, legacy ids
included; every other string is an InvalidInputError, never another exception.

Generated with hypothesis on every repository: conversation ids (control
characters, 4-byte characters, up to 255 characters) stored as legacy rows,
bypassing the rules for new ids (SQL on PostgreSQL), and cursor strings.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agentcore import HistoryRepository, InvalidInputError
from agentcore.paging import session_cursor
from agentcore.repository import SessionLifecycle
from agentcore.validation import EARLIEST, LATEST
from tests.contract.conftest import StoreLegacy

pytestmark = pytest.mark.port.with_args(SessionLifecycle)

EXAMPLES = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

legacy_ids = st.one_of(
    st.text(
        st.characters(exclude_characters="\x00", exclude_categories=["Cs"])
        | st.sampled_from(["\x01", "\n", "\x1b", "\x7f", "\x85", "\u2028", '"', "\\", "😀"]),
        min_size=1,
        max_size=255,
    ).filter(lambda s: bool(s.strip())),
    st.sampled_from(["\x01" * 255, "😀" * 255, "a\x1b" * 127, "\u2028" * 255, " ", ""]),
)
"""Ids a stored row may have: no NUL, valid UTF-8, at most 255 characters (reads accept
the ones that are not empty or only whitespace; any program may have written the rest)."""

offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
row_times = st.sampled_from(
    [
        EARLIEST,
        datetime(2026, 5, 9, 12, 0, tzinfo=UTC),
        datetime(2026, 5, 9, 12, 0, 0, 1, tzinfo=UTC),
        LATEST,
    ]
)
"""Few distinct times, so that pages break ties by session id."""


def encoded(payload: object) -> str:
    text = json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(text).decode("ascii").rstrip("=")


iso_times = st.one_of(
    st.datetimes(timezones=st.none() | offsets).map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "0001-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59.999999-14:00",
            "9999-12-31T23:59:59-00:01",
            "2026-05-09",
            "",
        ]
    ),
    st.text(max_size=40),
)
json_leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
cursor_strings = st.one_of(
    st.text(max_size=60),
    st.binary(max_size=200).map(lambda b: base64.urlsafe_b64encode(b).decode("ascii")),
    st.tuples(
        st.sampled_from([1, 0, 2, True, 1.0, "1"]),
        st.sampled_from(["s", "h", "x", ""]),
        iso_times | json_leaves,
        legacy_ids | st.text(max_size=300) | json_leaves,
    ).map(lambda t: encoded(list(t))),
    st.lists(json_leaves, max_size=5).map(encoded),
    st.integers(1, 3000).map(lambda n: encoded("[" * n)),
    st.just("A" * 5000),
)


@EXAMPLES
@given(
    rows=st.lists(
        st.tuples(legacy_ids, row_times), min_size=1, max_size=6, unique_by=lambda r: r[0]
    ),
    size=st.integers(1, 3),
)
async def test_paging_visits_every_conversation_once_whatever_its_id(
    repo: HistoryRepository,
    store_legacy: StoreLegacy,
    rows: list[tuple[str, datetime]],
    size: int,
) -> None:
    agent = f"walk-{uuid.uuid4()}"
    for session, when in rows:
        await store_legacy(agent, session, when)
    seen: list[str] = []
    after: str | None = None
    while True:
        page = await repo.list_sessions_page(agent, limit=size, after=after)
        seen += [s.session_id for s in page.sessions]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    expected = await repo.list_sessions(agent, limit=None)
    assert seen == [s.session_id for s in expected]
    assert sorted(seen) == sorted(session for session, _ in rows)


@EXAMPLES
@given(when=st.datetimes(timezones=offsets), session=legacy_ids)
async def test_every_cursor_agentcore_issues_is_accepted(
    repo: HistoryRepository, when: datetime, session: str
) -> None:
    try:
        when.astimezone(UTC)
    except OverflowError:  # no stored row has a time outside Python's range in UTC
        return
    page = await repo.list_sessions_page("agent", after=session_cursor(when, session))
    assert page.sessions == []


@settings(EXAMPLES, max_examples=60)
@given(cursor=cursor_strings)
@example(cursor=encoded([1, "s", "0001-01-01T00:00:00+14:00", "s"]))
@example(cursor=encoded("[" * 1500))  # nested deeper than json's recursion limit
@example(cursor=session_cursor(LATEST, "\x01" * 255))
@example(cursor=session_cursor(EARLIEST, "a\nb"))
async def test_every_other_cursor_string_is_accepted_or_an_invalid_input_error(
    repo: HistoryRepository, cursor: str
) -> None:
    try:
        await repo.list_sessions_page("agent", after=cursor)
    except InvalidInputError as error:
        assert str(error) == "after is not a cursor returned by list_sessions_page"
    try:
        await repo.load_history_page("agent", "s", before=cursor)
    except InvalidInputError as error:
        assert str(error) == "before is not a cursor returned by load_history_page"


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59.999999-14:00",
    ],
)
async def test_a_cursor_time_outside_pythons_range_in_utc_is_an_invalid_input_error(
    repo: HistoryRepository, when: str
) -> None:
    with pytest.raises(InvalidInputError, match="after is not a cursor"):
        await repo.list_sessions_page("agent", after=encoded([1, "s", when, "s"]))


async def test_a_page_ending_on_a_legacy_id_hands_on_to_the_next(
    repo: HistoryRepository, store_legacy: StoreLegacy
) -> None:
    when = datetime(2026, 5, 9, 12, 0, tzinfo=UTC)
    for session in ["a\x1bb", "c\nd", "😀" * 255]:
        await store_legacy("legacy", session, when)
    first = await repo.list_sessions_page("legacy", limit=1)
    assert [s.session_id for s in first.sessions] == ["a\x1bb"]
    assert first.next_cursor is not None
    second = await repo.list_sessions_page("legacy", limit=1, after=first.next_cursor)
    assert [s.session_id for s in second.sessions] == ["c\nd"]
    assert second.next_cursor is not None
    third = await repo.list_sessions_page("legacy", limit=1, after=second.next_cursor)
    assert [s.session_id for s in third.sessions] == ["😀" * 255]
    assert third.next_cursor is None
