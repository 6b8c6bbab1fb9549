"""Control characters and line separators in ids: refused for new data, alike on every
repository; reads and deletes still accept them, to reach conversations stored earlier
(tests/integration/test_legacy_identifiers.py stores such rows with SQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentcore import (
    MAX_ID_BYTES,
    HistoryRepository,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidMessageError,
)
from agentcore.repository import HistoryEditing, HistoryImport, SessionLifecycle, TurnStore
from tests.contract.conftest import StoreLegacy

pytestmark = pytest.mark.port.with_args(TurnStore, HistoryEditing, SessionLifecycle, HistoryImport)

A = "support-bot"
USER = {"role": "user", "content": "x"}

CONTROL = [
    ("a\nb", "U+000A at index 1"),
    ("\tab", "U+0009 at index 0"),
    ("ab\r", "U+000D at index 2"),
    ("a\x01b", "U+0001 at index 1"),
    ("a\x1bb", "U+001B at index 1"),
    ("a\x7fb", "U+007F at index 1"),
    ("a\x85b", "U+0085 at index 1"),
    ("a\x9fb", "U+009F at index 1"),
    ("a\u2028b", "U+2028 at index 1"),
    ("a\u2029b", "U+2029 at index 1"),
]
RULE = "must not contain control characters or line separators (found "


async def test_writes_refuse_control_characters_in_every_id(repo: HistoryRepository) -> None:
    for value, found in CONTROL:
        cases = [
            (repo.append_messages(value, "s", [USER]), InvalidIdentifierError, "agent_name "),
            (repo.append_messages(A, value, [USER]), InvalidIdentifierError, "session_id "),
            (repo.save_full_history(A, value, [USER]), InvalidIdentifierError, "session_id "),
            (
                repo.append_messages(A, "s", [{**USER, "id": value}]),
                InvalidMessageError,
                "messages[0].id ",
            ),
        ]
        for call, error, what in cases:
            with pytest.raises(error) as raised:
                await call
            assert str(raised.value) == f"{what}{RULE}{found})"
    assert await repo.list_sessions(A) == []


async def test_reads_and_deletes_accept_ids_stored_before_the_rule(
    repo: HistoryRepository,
) -> None:
    for value in ["a\nb", "a\x1bb", "a\u2028b"]:
        assert await repo.load_history(value, value) == []
        assert await repo.get_message(value, value, value) is None
        assert await repo.list_sessions(value) == []
        assert await repo.clear_session(value, value) == 0


async def test_printable_and_format_characters_stay_accepted(repo: HistoryRepository) -> None:
    for value in ["a b", "ünï ☃", "nbsp\u00a0zero\u200bwidth", "rtl\u200f\u202e", "__legacy__"]:
        assert await repo.append_messages(value, value, [{**USER, "id": value}]) == 1
        [stored] = await repo.load_history(value, value)
        assert stored.id == value


def astral(count: int, start: int = 0) -> str:
    """``count`` different 4-byte characters (CJK extension B), so nothing compresses."""
    return "".join(chr(0x20000 + (start + i) * 7919 % 0xA6D0) for i in range(count))


AT_LIMIT = MAX_ID_BYTES // 4  # 192 four-byte characters: exactly MAX_ID_BYTES
OVER = 769


async def test_ids_at_the_byte_limit_are_stored_and_read_back(repo: HistoryRepository) -> None:
    agent, session, message_id, owner, target = (astral(AT_LIMIT, n * 1000) for n in range(5))
    assert len(agent.encode()) == MAX_ID_BYTES == 768
    assert await repo.append_messages(agent, session, [{**USER, "id": message_id}]) == 1
    assert await repo.set_session_metadata(agent, session, {"owner": owner}) == {"owner": owner}
    [stored] = await repo.load_history(agent, session)
    assert stored.id == message_id
    assert await repo.get_message(agent, session, message_id) == stored
    page = await repo.list_sessions_page(agent, owner=owner)
    assert [s.session_id for s in page.sessions] == [session]
    assert await repo.copy_session(agent, session, target) == 1
    assert [m.id for m in await repo.load_history(agent, target)] == [message_id]
    imported = astral(AT_LIMIT, 6000)
    assert await repo.import_session(agent, imported, [{**USER, "id": message_id}]) == 1
    listed = {s.session_id for s in await repo.list_sessions(agent)}
    assert listed == {session, target, imported}


async def test_ids_one_byte_over_the_limit_are_refused_naming_the_field(
    repo: HistoryRepository,
) -> None:
    over = astral(AT_LIMIT - 1) + "abcde"  # 196 characters, 769 bytes
    worst = astral(255)  # the case: 255 four-byte characters, 1,020 bytes
    assert len(over.encode()) == OVER
    await repo.append_messages(A, "s", [USER])
    for value, size in [(over, OVER), (worst, 1020)]:
        cases = [
            (repo.append_messages(value, "s", [USER]), InvalidIdentifierError, "agent_name"),
            (repo.append_messages(A, value, [USER]), InvalidIdentifierError, "session_id"),
            (repo.save_full_history(A, value, [USER]), InvalidIdentifierError, "session_id"),
            (
                repo.append_messages(A, "s", [{**USER, "id": value}]),
                InvalidMessageError,
                "messages[0].id",
            ),
            (repo.copy_session(A, "s", value), InvalidIdentifierError, "target_session_id"),
            (repo.import_session(A, value, [USER]), InvalidIdentifierError, "session_id"),
            (
                repo.set_session_metadata(A, "s", {"owner": value}),
                InvalidInputError,
                "metadata['owner']",
            ),
        ]
        for call, error, what in cases:
            with pytest.raises(error) as raised:
                await call
            assert str(raised.value) == (
                f"{what} is {size} bytes long in UTF-8; the limit is 768 bytes "
                "(an index entry of PostgreSQL holds three ids)"
            )
    assert [s.session_id for s in await repo.list_sessions(A)] == ["s"]
    assert await repo.get_session(A, "s") is not None
    assert (await repo.get_session(A, "s")).metadata == {}  # type: ignore[union-attr]
    assert len(await repo.load_history(A, "s")) == 1


async def test_reads_accept_ids_stored_before_the_byte_limit(
    repo: HistoryRepository, store_legacy: StoreLegacy
) -> None:
    when = datetime(2026, 5, 9, tzinfo=UTC)
    agent, session = astral(255), astral(255, 1000)  # 1,020 bytes each
    await store_legacy(agent, session, when)
    assert [m.content for m in await repo.load_history(agent, session)] == ["legacy"]
    assert [s.session_id for s in await repo.list_sessions(agent)] == [session]
    page = await repo.list_sessions_page(agent)
    assert [s.session_id for s in page.sessions] == [session]
    assert (await repo.get_session(agent, session)) is not None
    # An owner fits the index next to them while the three stay within 3 x 768 bytes.
    owner = astral(65, 2000)  # 260 bytes: 2,300 together
    await repo.set_session_metadata(agent, session, {"owner": owner})
    owned = await repo.list_sessions_page(agent, owner=owner)
    assert [s.session_id for s in owned.sessions] == [session]
    with pytest.raises(InvalidInputError, match="more than the owner index takes"):
        await repo.set_session_metadata(agent, session, {"owner": astral(67, 3000)})
    assert (await repo.get_session(agent, session)).metadata == {  # type: ignore[union-attr]
        "owner": owner
    }
    assert await repo.clear_session(agent, session) == 1
