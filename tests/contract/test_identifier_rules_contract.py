"""Control characters and line separators in ids: refused for new data, alike on every
repository; reads and deletes still accept them, to reach conversations stored earlier
(tests/integration/test_legacy_identifiers.py stores such rows with SQL)."""

from __future__ import annotations

import pytest

from agentcore import HistoryRepository, InvalidIdentifierError, InvalidMessageError

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
