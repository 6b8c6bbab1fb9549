"""Hostile import files: one typed error naming the bad line, everything before it stored.

A file that is not UTF-8, holds a line nested thousands of levels deep, or a
line cut short stops the import with :class:`ImportLineError` (line numbers
from 1), on every repository alike: the conversations complete before the line
stay stored, the one it interrupts is not, and the repository keeps working. A
generator corrupts valid exports at random lines and positions.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentcore import HistoryRepository, ImportLineError, InMemoryHistoryRepository
from agentcore.repository import HistoryEditing, HistoryExport, HistoryImport, TurnStore
from agentcore.transfer import MAX_JSON_DEPTH, export_jsonl, import_jsonl

pytestmark = pytest.mark.port.with_args(
    HistoryImport, uses=(TurnStore, HistoryEditing, HistoryExport)
)

HEADER = b'{"format":"agentcore-history","version":1}\n'
USER = {"role": "user", "content": "x"}
T0 = "2025-01-02T03:04:05.123456+00:00"


def conversation(session: str, count: int = 1) -> bytes:
    """A conversation's lines, as an export writes them (with its message_count)."""
    key = f'"agent_name":"a","session_id":"{session}"'
    times = f'"created_at":"{T0}","updated_at":"{T0}"'
    head = f'{{"type":"session",{key},"metadata":{{}},{times},"message_count":{count}}}\n'
    return head.encode() + b"".join(
        f'{{"type":"message",{key},"message":{{"role":"user","content":"m{n}",'
        f'"metadata":{{}},"created_at":"{T0}"}}}}\n'.encode()
        for n in range(count)
    )


async def stored(repo: HistoryRepository) -> list[str]:
    return [s.session_id async for s in repo.iter_sessions()]


async def still_works(repo: HistoryRepository) -> None:
    """The repository (and its pool) serves the next calls."""
    assert await repo.append_messages("a", "after-the-error", [USER]) == 1
    assert len(await repo.load_history("a", "after-the-error")) == 1
    await repo.clear_session("a", "after-the-error")


DEEP = b"[" * 5000 + b"]" * 5000
BAD_LINES = {
    "not UTF-8": b'{"type":"session","agent_name":"a","session_id":"b\xff"}\n',
    "a lone surrogate in UTF-8": (
        b'{"type":"session","agent_name":"a","session_id":"\xed\xa0\x80"}\n'
    ),
    "nested 5,000 deep": b'{"type":"session","agent_name":"a","session_id":"b","metadata":{"x":'
    + DEEP
    + b"}}\n",
    "an array nested 5,000 deep": DEEP + b"\n",
    "cut short": b'{"type":"session","agent_name":"a","sess\n',
    "cut short at the end": b'{"type":"session","agent_name":"a","sess',
}


@pytest.mark.parametrize("form", ["bytes", "text"])
async def test_a_header_that_is_not_utf8_is_one_typed_error(
    repo: HistoryRepository, form: str
) -> None:
    data = b'{"format":"agentcore-history\xff","version":1}\n' + conversation("ok")
    source: Any = io.BytesIO(data)
    if form == "text":
        source = io.TextIOWrapper(source, encoding="utf-8")
    with pytest.raises(ImportLineError, match=r"^line 1: not UTF-8") as caught:
        await import_jsonl(repo, source)
    assert caught.value.line_number == 1
    assert await stored(repo) == []
    await still_works(repo)


@pytest.mark.parametrize("bad", list(BAD_LINES))
@pytest.mark.parametrize("form", ["bytes", "list"])
async def test_an_unreadable_line_keeps_the_complete_conversations_before_it(
    repo: HistoryRepository, bad: str, form: str
) -> None:
    data = HEADER + conversation("first", 2) + conversation("second", 1) + BAD_LINES[bad]
    data += conversation("after")
    if form == "list":
        if b"\xff" in data or b"\xed" in data:
            return  # text holds no invalid UTF-8
        source: Any = data.decode().splitlines(keepends=True)
    else:
        source = io.BytesIO(data)
    with pytest.raises(ImportLineError) as caught:
        await import_jsonl(repo, source)
    assert caught.value.line_number == 7, caught.value
    assert str(caught.value).startswith("line 7: ")
    assert await stored(repo) == ["first", "second"]
    await still_works(repo)


async def test_a_text_file_names_the_line_its_decoder_failed_on(repo: HistoryRepository) -> None:
    # The decoder reads ahead (8 KiB): the error names a line at or before the bad bytes.
    filler = b"".join(conversation(f"c{n:03}", 3) for n in range(100))
    data = HEADER + filler + BAD_LINES["not UTF-8"] + conversation("after")
    bad_line = data[: data.index(b"\xff")].count(b"\n") + 1
    with pytest.raises(ImportLineError, match="not UTF-8") as caught:
        await import_jsonl(repo, io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    named = caught.value.line_number
    assert 1 < named <= bad_line
    complete = [n for n in range(100) if 2 + 4 * n + 3 < named]  # every line before it
    assert await stored(repo) == [f"c{n:03}" for n in complete]
    await still_works(repo)


async def test_a_conversation_interrupted_by_an_unreadable_line_is_not_stored(
    repo: HistoryRepository,
) -> None:
    # Its session line announces 3 messages; the second is not UTF-8.
    lines = (HEADER + conversation("first") + conversation("cut", 3)).splitlines(keepends=True)
    lines[5] = lines[5].replace(b'"m1"', b'"m\xff"')
    with pytest.raises(ImportLineError, match=r"^line 6: not UTF-8"):
        await import_jsonl(repo, io.BytesIO(b"".join(lines)))
    assert await stored(repo) == ["first"]
    await still_works(repo)


async def test_json_nested_within_the_parser_limit_is_refused_alike(
    repo: HistoryRepository,
) -> None:
    # Just within MAX_JSON_DEPTH: parsed, then the repository refuses the
    # metadata (nothing agentcore stores nests so deep); the import goes on.
    depth = MAX_JSON_DEPTH - 3
    deep = b'{"x":' + b"[" * depth + b"]" * depth + b"}"
    data = HEADER + conversation("deep").replace(b'"metadata":{}', b'"metadata":' + deep)
    report = await import_jsonl(repo, io.BytesIO(data + conversation("ok")))
    assert (report.sessions, report.refused_sessions) == (1, 1)
    assert await stored(repo) == ["ok"]


# The generator: valid exports, corrupted at a random line and position.

SESSION_IDS = ["s1", "s2", "s3", "s4"]


@st.composite
def hostile_files(draw: st.DrawFn) -> tuple[list[bytes], int, str]:
    """An export's lines with line ``bad`` (from 1) corrupted, and the export of the
    conversations complete before it."""
    counts = draw(st.lists(st.integers(0, 3), min_size=1, max_size=4))
    lines = HEADER.splitlines(keepends=True)
    ends: list[tuple[str, int]] = []  # each conversation's last line
    for session, count in zip(SESSION_IDS, counts, strict=False):
        lines += conversation(session, count).splitlines(keepends=True)
        ends.append((session, len(lines)))
    bad = draw(st.integers(1, len(lines)))
    line = lines[bad - 1].rstrip(b"\n")
    kind = draw(st.sampled_from(["utf8", "deep", "cut"]))
    if kind == "utf8":
        at = draw(st.integers(0, len(line)))
        junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88", b"\x80"]))
        line = line[:at] + junk + line[at:]
    elif kind == "deep":
        depth = draw(st.integers(MAX_JSON_DEPTH + 1, 6000))
        nested = b"[" * depth + b"]" * depth
        line = draw(st.sampled_from([nested, line[:-1] + b',"deep":' + nested + b"}"]))
    else:
        line = line[: draw(st.integers(1, len(line) - 1))]
    last = bad == len(lines) and kind == "cut" and draw(st.booleans())
    intact = max([end for _, end in ends if end < bad], default=1)
    expected = b"".join(lines[:intact])
    lines[bad - 1] = line + (b"" if last else b"\n")
    return lines, bad, expected.decode()


@settings(
    max_examples=40,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
)
@given(case=hostile_files())
async def test_a_hostile_file_stops_at_its_bad_line_with_everything_before_stored(
    repo: HistoryRepository, case: tuple[list[bytes], int, str]
) -> None:
    lines, bad, complete = case
    for session in await stored(repo):
        await repo.clear_session("a", session)
    with pytest.raises(ImportLineError) as caught:
        await import_jsonl(repo, io.BytesIO(b"".join(lines)))
    assert caught.value.line_number == bad, caught.value
    # Exactly the conversations complete before the line: their export is the file's start.
    assert await export_text(repo) == complete
    fake = InMemoryHistoryRepository()
    with pytest.raises(type(caught.value), match=f"^{re.escape(str(caught.value))}$"):
        await import_jsonl(fake, io.BytesIO(b"".join(lines)))
    assert await export_text(fake) == complete
    await still_works(repo)


async def export_text(repo: HistoryRepository) -> str:
    out = io.StringIO()
    await export_jsonl(repo, out)
    return out.getvalue()
