"""An import stopped by an unreadable line keeps its pooled connection.

The line may be read inside a conversation's COPY (a message line, or the
look-ahead after it): the COPY is abandoned and rolled back, the connection
left idle and reused, not discarded as after an unexpected error.
"""

from __future__ import annotations

import io

import pytest
from psycopg_pool import AsyncConnectionPool

from agentcore import ImportLineError, PostgresHistoryRepository
from agentcore.transfer import import_jsonl

HEADER = b'{"format":"agentcore-history","version":1}\n'


def conversation(session: str, count: int) -> bytes:
    key = f'"agent_name":"a","session_id":"{session}"'
    head = f'{{"type":"session",{key},"message_count":{count}}}\n'.encode()
    message = f'{{"type":"message",{key},"message":{{"role":"user","content":"x"}}}}\n'
    return head + message.encode() * count


BAD = {
    "not UTF-8": b'{"type":"message\xff"}\n',
    "nested 5,000 deep": b"[" * 5000 + b"]" * 5000 + b"\n",
    "cut short": b'{"type":"mess\n',
}


@pytest.mark.parametrize("where", ["after a complete conversation", "inside a conversation"])
@pytest.mark.parametrize("bad", list(BAD))
async def test_an_unreadable_line_leaves_the_pool_its_connection(
    database_dsn: str, bad: str, where: str
) -> None:
    # "inside": the session line announces 3 messages, the bad line is the third.
    interrupted = b"".join(conversation("cut", 3).splitlines(keepends=True)[:3])
    body = conversation("first", 2) + (b"" if where.startswith("after") else interrupted)
    async with AsyncConnectionPool(database_dsn, min_size=1, max_size=1, open=False) as pool:
        await pool.open(wait=True, timeout=30)
        repo = PostgresHistoryRepository(pool)
        before = pool.get_stats()
        for _ in range(3):
            with pytest.raises(ImportLineError):
                await import_jsonl(repo, io.BytesIO(HEADER + body + BAD[bad]))
        after = pool.get_stats()
        assert after.get("connections_num") == before.get("connections_num")
        assert after.get("returns_bad", 0) == before.get("returns_bad", 0)
        assert [s.session_id async for s in repo.iter_sessions()] == ["first"]
