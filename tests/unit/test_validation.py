from __future__ import annotations

import logging
from typing import Any

import pytest

from agentcore import InvalidIdentifierError, InvalidInputError, InvalidMessageError, Message
from agentcore.validation import (
    MAX_ID_LENGTH,
    check_identifier,
    check_limit,
    conversation_key,
    prepare_messages,
)


@pytest.mark.parametrize("ok", ["a", "x" * MAX_ID_LENGTH, " spaced ", "ü🎉", "%s", "'; --"])
def test_identifiers_accepted_verbatim(ok: str) -> None:
    assert check_identifier(ok, "session_id") == ok


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "empty"),
        (" \t\n", "whitespace"),
        ("x" * 256, "256 characters long; the limit is 255"),
        ("a\x00b", "NUL"),
        (None, "must be a string, got NoneType"),
        (7, "got int"),
    ],
)
def test_identifier_errors_say_what_is_wrong(bad: Any, reason: str) -> None:
    with pytest.raises(InvalidIdentifierError, match=f"session_id.*{reason}"):
        check_identifier(bad, "session_id")


def test_limit_accepts_none_and_non_negative_ints() -> None:
    assert [check_limit(v) for v in (None, 0, 20)] == [None, 0, 20]
    for bad in (-1, True, 2.0, "1"):
        with pytest.raises(InvalidInputError):
            check_limit(bad)


def test_missing_session_warns_and_yields_no_key(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agentcore.history"):
        assert conversation_key("bot", None, "append_messages") is None
    assert "append_messages for agent 'bot' called without a session_id: nothing is stored" in (
        caplog.text
    )
    assert conversation_key("bot", "s", "load_history") == ("bot", "s")


def test_prepare_messages_accepts_messages_and_dicts_in_order() -> None:
    batch = prepare_messages(
        [Message(role="system", content="s"), {"role": "user", "content": "u"}],
        max_content_chars=10,
    )
    assert [(m.role, m.content) for m in batch] == [("system", "s"), ("user", "u")]


@pytest.mark.parametrize(
    ("batch", "error"),
    [
        ({"role": "user", "content": "x"}, "must be a list"),
        ("text", "must be a list"),
        ([{"role": "user", "content": "12345678901"}], r"messages\[0\].content is 11 characters"),
        ([{"role": "user", "content": "ok"}, 3], r"messages\[1\] must be a Message or a dict"),
        ([{"role": "assistant"}], "content is required"),
        ([{"role": "tool", "content": "r"}], "tool_call_id"),
        ([{"role": "user", "content": "x", "tool_calls": []}], "only an assistant"),
        (
            [{"role": "user", "content": "x", "metadata": {"a\x00": 1}}],
            "metadata must not contain a NUL",
        ),
        ([{"role": "user", "content": "x", "metadata": {"a": [float("inf")]}}], "NaN or Infinity"),
        ([{"role": "user", "content": "x", "id": ""}], r"messages\[0\].id must not be empty"),
        (
            [{"role": "user", "content": "x", "nmae": "typo"}],
            "nmae: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_batches_are_rejected_with_the_reason(batch: Any, error: str) -> None:
    with pytest.raises(InvalidMessageError, match=error):
        prepare_messages(batch, max_content_chars=10)


def test_to_chat_dict_is_the_openai_shape() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    message = Message(role="assistant", content=None, tool_calls=[call], id="m", metadata={"k": 1})
    assert message.to_chat_dict() == {"role": "assistant", "content": None, "tool_calls": [call]}
    assert Message(role="user", content="hi", name="al").to_chat_dict() == {
        "role": "user",
        "content": "hi",
        "name": "al",
    }
