"""A split append is atomic, and the jsonb size bound it relies on holds on the server."""

from __future__ import annotations

import json

import psycopg
import pytest

from agentcore import PostgresHistoryRepository, StorageError, postgres
from agentcore.rows import JSONB_BYTES_PER_JSON_CHAR
from tests.conftest import pool_for

A, S = "support-bot", "s"
N = 20_000

# JSON texts that cost jsonb the most bytes per character: small numbers,
# empty containers and strings, literals, short keys, deep nesting, astral
# characters; and an ordinary batch.
SHAPES = {
    "digits": [1] * N,
    "zeros": [0] * N,
    "negative": [-7] * N,
    "halves": [0.5] * N,
    "tiny floats": [1e-300] * N,
    "long ints": [10**40] * N,
    "empty arrays": [[]] * N,
    "empty objects": [{}] * N,
    "empty strings": [""] * N,
    "literals": [True, False, None] * N,
    "short keys": {f"{i:x}": 1 for i in range(N)},
    "deep": json.loads("[" * 500 + "]" * 500),
    "astral": ["\U0001f600" * 50] * 200,
    "messages": [
        {"role": "user", "content": f"m{i}", "metadata": {"k": [1, 2], "v": None}}
        for i in range(N // 10)
    ],
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_jsonb_takes_at_most_the_bounded_bytes_per_json_character(
    database_dsn: str, shape: str
) -> None:
    for separators in ((",", ":"), (", ", ": ")):
        text = json.dumps(SHAPES[shape], ensure_ascii=False, separators=separators)
        with psycopg.connect(database_dsn) as conn:
            row = conn.execute("SELECT pg_column_size(%s::jsonb)", (text,)).fetchone()
        assert row is not None
        assert row[0] <= JSONB_BYTES_PER_JSON_CHAR * len(text), (row[0] / len(text), shape)


async def test_a_split_batch_is_stored_in_one_transaction(
    database_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "APPEND_CHUNK_JSONB_BYTES", 2_000)
    with psycopg.connect(database_dsn, autocommit=True) as admin:
        # A server-side failure that validation cannot foresee, in the last part.
        admin.execute(
            "ALTER TABLE conversation_history ADD CONSTRAINT no_poison CHECK (content <> 'poison')"
        )
    async with pool_for(database_dsn, max_size=1) as pool:
        repo = PostgresHistoryRepository(pool)
        batch = [{"role": "user", "content": f"m{i} " * 20, "id": f"m{i}"} for i in range(60)]
        with pytest.raises(StorageError, match="no_poison"):
            await repo.append_messages(A, S, [*batch, {"role": "user", "content": "poison"}])
        assert await repo.load_history(A, S) == []
        assert await repo.list_sessions(A) == []
        assert await repo.append_messages(A, S, batch) == 60
        assert [m.id for m in await repo.load_history(A, S)] == [m["id"] for m in batch]
