"""Export to JSON Lines and import back, on every repository (agentcore.transfer)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from agentcore import (
    HistoryRepository,
    ImportLineError,
    InMemoryHistoryRepository,
    InvalidIdentifierError,
    InvalidInputError,
    InvalidMessageError,
    LineTooLongError,
)
from agentcore.repository import (
    HistoryEditing,
    HistoryExport,
    HistoryImport,
    SessionLifecycle,
    TurnStore,
)
from agentcore.transfer import (
    FORMAT_VERSION,
    ImportRefusal,
    TransferReport,
    export_jsonl,
    import_jsonl,
    max_line_bytes,
)

pytestmark = pytest.mark.port.with_args(
    HistoryExport, HistoryImport, uses=(TurnStore, HistoryEditing, SessionLifecycle)
)

A, B = "support-bot", "sales-bot"
T0 = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)

CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "be brief", "metadata": {"k": [1, 2.5, None, 10**30]}},
    {"role": "user", "content": 'héllo\n"quoted" ☃', "name": "ann", "id": "m1", "created_at": T0},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "x": 1e300}}],
        "id": "m2",
    },
    {"role": "tool", "content": "42", "tool_call_id": "c1", "id": "m3"},
]


async def fill(repo: HistoryRepository) -> None:
    await repo.append_messages(A, "s1", CONVERSATION)
    await repo.set_session_metadata(A, "s1", {"owner": "u1", "title": "Refund"})
    await repo.append_messages(A, "s2", [{"role": "user", "content": f"m{i}"} for i in range(5)])
    await repo.append_messages(B, "s1", [{"role": "user", "content": "other agent"}])


async def state(repo: HistoryRepository) -> dict[tuple[str, str], Any]:
    found = {}
    async for info in repo.iter_sessions():
        found[info.agent_name, info.session_id] = (
            info.model_dump(),
            [m.model_dump() for m in await repo.load_history(info.agent_name, info.session_id)],
        )
    return found


async def export_text(repo: HistoryRepository, **kwargs: Any) -> str:
    out = io.StringIO()
    await export_jsonl(repo, out, batch_size=2, **kwargs)
    return out.getvalue()


async def test_export_then_import_restores_every_field(repo: HistoryRepository) -> None:
    await fill(repo)
    before = await state(repo)
    text = await export_text(repo)
    for agent, session in before:
        await repo.clear_session(agent, session)
    report = await import_jsonl(repo, io.StringIO(text))
    assert report == TransferReport(sessions=3, messages=10)
    assert await state(repo) == before  # times, metadata, ids, tool calls: all equal


async def test_import_into_the_other_kind_of_repository(repo: HistoryRepository) -> None:
    source = InMemoryHistoryRepository()
    await fill(source)
    await import_jsonl(repo, io.StringIO(await export_text(source)))
    assert await state(repo) == await state(source)
    back = InMemoryHistoryRepository()
    await import_jsonl(back, io.StringIO(await export_text(repo)))
    assert await state(back) == await state(source)


async def test_importing_twice_stores_nothing_twice(repo: HistoryRepository) -> None:
    await fill(repo)
    text = await export_text(repo)
    before = await state(repo)
    report = await import_jsonl(repo, io.StringIO(text))
    assert report == TransferReport(sessions=0, messages=0, skipped_sessions=3)
    assert await state(repo) == before


async def test_the_format_is_a_header_then_session_and_message_lines(
    repo: HistoryRepository,
) -> None:
    await fill(repo)
    lines = [json.loads(line) for line in (await export_text(repo, agent_name=A)).splitlines()]
    assert lines[0] == {"format": "agentcore-history", "version": FORMAT_VERSION}
    assert [line.get("type") for line in lines[1:]] == ["session"] + ["message"] * 4 + [
        "session"
    ] + ["message"] * 5
    assert lines[1]["metadata"] == {"owner": "u1", "title": "Refund"}
    assert lines[1]["message_count"] == 4
    assert lines[3] == {
        "type": "message",
        "agent_name": A,
        "session_id": "s1",
        "message": {
            "role": "user",
            "content": 'héllo\n"quoted" ☃',
            "name": "ann",
            "metadata": {},
            "id": "m1",
            "created_at": "2025-01-02T03:04:05.123456+00:00",
        },
    }


async def test_export_of_one_session(repo: HistoryRepository) -> None:
    await fill(repo)
    lines = (await export_text(repo, agent_name=A, session_id="s2")).splitlines()
    assert len(lines) == 1 + 1 + 5
    assert (await export_text(repo, agent_name=A, session_id="nope")).count("\n") == 1
    with pytest.raises(InvalidInputError, match="needs its agent_name"):
        await export_text(repo, session_id="s2")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "line 1: not an agentcore export"),
        ('{"format": "agentcore-history", "version": 2}\n', "line 1: export format version 2"),
        ('{"format": "agentcore-history", "version": 1}\nnot json\n', "line 2: not JSON"),
        (
            '{"format": "agentcore-history", "version": 1}\n'
            '{"type": "message", "agent_name": "a", "session_id": "s", "message": {}}\n',
            "line 2: expected a session line",
        ),
        (
            '{"format": "agentcore-history", "version": 1}\n'
            '{"type": "session", "agent_name": "a", "session_id": "s"}\n'
            '{"type": "message", "agent_name": "a", "session_id": "OTHER",'
            ' "message": {"role": "user", "content": "ok"}}\n',
            "line 3: a message of session 'OTHER'",
        ),
    ],
)
async def test_an_unreadable_file_stops_the_import_at_the_line_it_names(
    repo: HistoryRepository, text: str, fragment: str
) -> None:
    with pytest.raises(ImportLineError, match=f"^{fragment}"):
        await import_jsonl(repo, io.StringIO(text))
    assert [s async for s in repo.iter_sessions()] == []


def _conversation(session: str, *messages: str, agent: str = "a") -> str:
    head = f'{{"type":"session","agent_name":"{agent}","session_id":"{session}"}}\n'
    return head + "".join(
        f'{{"type":"message","agent_name":"{agent}","session_id":"{session}",'
        f'"message":{message}}}\n'
        for message in messages
    )


async def test_a_refused_conversation_is_reported_and_the_import_goes_on(
    repo: HistoryRepository,
) -> None:
    ok = '{"role":"user","content":"ok"}'
    text = (
        '{"format":"agentcore-history","version":1}\n'
        + _conversation("first", ok)  # lines 2-3
        + _conversation("robot", ok, '{"role":"robot","content":"x"}', ok)  # 4-7
        + _conversation("blank", ok, agent="")  # 8-9
        + _conversation("nul\\u0000", ok)  # 10-11
        + _conversation("twice", '{"role":"user","content":"a","id":"m"}', ok,
                        '{"role":"user","content":"b","id":"m"}')  # 12-15
        + _conversation("last", ok, ok)  # 16-18
    )  # fmt: skip
    refusals: list[ImportRefusal] = []
    report = await import_jsonl(repo, io.StringIO(text), on_refused=refusals.append)

    assert report == TransferReport(sessions=2, messages=3, refused_sessions=4)
    assert [s.session_id async for s in repo.iter_sessions()] == ["first", "last"]
    assert [(r.line_number, r.session_id, type(r.error)) for r in refusals] == [
        (6, "robot", InvalidMessageError),
        (8, "blank", InvalidIdentifierError),
        (10, "nul\x00", InvalidIdentifierError),
        (12, "twice", InvalidMessageError),  # found by the store: the session line
    ]
    assert str(refusals[0]).startswith("line 6: session 'robot' of agent 'a' refused: messages[1]")


async def test_a_refused_conversation_before_an_unreadable_line_is_counted_then_the_line_raised(
    repo: HistoryRepository,
) -> None:
    text = (
        '{"format":"agentcore-history","version":1}\n'
        + _conversation("robot", '{"role":"robot","content":"x"}')
        + "not json\n"
    )
    refusals: list[ImportRefusal] = []
    with pytest.raises(ImportLineError, match=r"^line 4: not JSON"):
        await import_jsonl(repo, io.StringIO(text), on_refused=refusals.append)
    assert [r.line_number for r in refusals] == [3]


def _padded_lines(length: int) -> bytes:
    """An export whose second conversation's message line is ``length`` bytes (JSON padded
    with spaces), the first conversation ordinary."""
    header = b'{"format":"agentcore-history","version":1}\n'
    ok = (
        b'{"type":"session","agent_name":"a","session_id":"ok"}\n'
        b'{"type":"message","agent_name":"a","session_id":"ok",'
        b'"message":{"role":"user","content":"fine"}}\n'
    )
    message = (
        b'{"type":"message","agent_name":"a","session_id":"big",'
        b'"message":{"role":"user","content":"padded"}}'
    )
    big = b'{"type":"session","agent_name":"a","session_id":"big"}\n' + message.ljust(length, b" ")
    return header + ok + big + b"\n"


@pytest.mark.parametrize("form", ["bytes", "text"])
async def test_a_line_longer_than_any_export_line_is_refused_with_its_number(
    repo: HistoryRepository, form: str
) -> None:
    limit = max_line_bytes(repo.max_content_chars)  # type: ignore[attr-defined]
    data = _padded_lines(limit + 1)
    source = io.BytesIO(data) if form == "bytes" else io.StringIO(data.decode())
    with pytest.raises(LineTooLongError) as caught:
        await import_jsonl(repo, source)
    assert (caught.value.line_number, caught.value.limit) == (5, limit)
    assert str(caught.value).startswith(f"line 5: longer than {limit:,} bytes")
    assert isinstance(caught.value, ImportLineError)
    assert isinstance(caught.value, InvalidInputError)
    # The conversation before it is stored; the one it belongs to is not.
    assert [s.session_id async for s in repo.iter_sessions()] == ["ok"]


@pytest.mark.parametrize("form", ["bytes", "text", "list"])
async def test_a_line_of_exactly_the_limit_is_imported(repo: HistoryRepository, form: str) -> None:
    limit = max_line_bytes(repo.max_content_chars)  # type: ignore[attr-defined]
    data = _padded_lines(limit)
    text = data.decode()
    source: Any = {
        "bytes": io.BytesIO(data),
        "text": io.StringIO(text),
        "list": text.splitlines(keepends=True),
    }[form]
    report = await import_jsonl(repo, source)
    assert report == TransferReport(sessions=2, messages=2)
    assert [m.content for m in await repo.load_history("a", "big")] == ["padded"]


async def test_a_line_is_measured_in_utf8_bytes_not_characters(repo: HistoryRepository) -> None:
    limit = max_line_bytes(repo.max_content_chars)  # type: ignore[attr-defined]
    # Three bytes a character: a third of the limit in characters is just over it in bytes.
    line = '{"type":"session","agent_name":"a","session_id":"s","metadata":{"x":"' + "€" * (
        limit // 3
    )
    text = '{"format":"agentcore-history","version":1}\n' + line + '"}}\n'
    with pytest.raises(LineTooLongError, match=r"^line 2: "):
        await import_jsonl(repo, [text.splitlines(keepends=True)[0], text.splitlines()[1]])
    with pytest.raises(LineTooLongError, match=r"^line 2: "):
        await import_jsonl(repo, io.BytesIO(text.encode()))
