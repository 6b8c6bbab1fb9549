"""Checkpoint storage for agent frameworks, in agentcore's conversations.

The I/O half of ``agentcore.integrations.langgraph.AgentcoreSaver``: it knows
PostgreSQL and nothing of LangGraph (values arrive serialized). A thread is
the conversation ``(agent_name, session_id=thread_id)``; the messages of a
messages channel are that conversation's rows, each written once, and a
channel version of such a channel is the list of seq ranges of its rows
(``docs/integrations.md`` has the schema and why).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg.rows import dict_row, tuple_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from agentcore.errors import InvalidIdentifierError, InvalidInputError
from agentcore.postgres import _check_pool, _db_errors
from agentcore.sql import Queries, Query, load_queries

MESSAGES_TYPE = "agentcore.messages"
"""The type tag of a channel version kept as conversation rows."""

MAX_THREAD_ID_LENGTH = 255
"""A thread id is a conversation's session id: at most this many characters."""


@functools.cache
def _queries() -> Queries:
    return load_queries()


@dataclass(frozen=True, slots=True)
class ChannelVersion:
    """One channel version to store with a checkpoint.

    Attributes:
        channel: The channel's name.
        version: The version, as text.
        type: The serializer's type tag (``"empty"`` for no value), or
            :data:`MESSAGES_TYPE` for a list of messages.
        blob: The serialized value (``None`` for messages, or no value).
        base: For messages: the ranges (multirange text, ``"{}"`` for none)
            of the stored rows the list starts with.
        start: For messages: the index, in the checkpoint's ``messages``, of
            this channel's first new message.
        count: For messages: how many new messages this channel appends.
    """

    channel: str
    version: str
    type: str
    blob: bytes | None = None
    base: str | None = None
    start: int = 0
    count: int = 0


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message appended to the thread's conversation.

    Attributes:
        role: agentcore's role (system, user, assistant or tool).
        content: The text agentcore readers see.
        item: The framework's exact record of it (JSON-serializable).
    """

    role: str
    content: str
    item: Any


@dataclass(slots=True)
class StoredCheckpoint:
    """A checkpoint row as read back, its values still serialized.

    ``channel_values`` holds ``(channel, type, data, ranges)``: ``data`` is
    the blob, or for :data:`MESSAGES_TYPE` the JSON array of the rows' items
    with ``ranges`` their multirange text.
    """

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    checkpoint: dict[str, Any]
    metadata: dict[str, Any]
    channel_values: list[tuple[str, str, bytes | None, str | None]] = field(default_factory=list)
    pending_writes: list[tuple[str, str, str, bytes, str, int]] = field(default_factory=list)


def check_thread_id(thread_id: object) -> str:
    """Return ``thread_id`` as a conversation's session id, or raise.

    Raises:
        InvalidIdentifierError: empty, longer than 255 characters, or holding
            U+0000 (PostgreSQL's text cannot).
    """
    text = str(thread_id)
    if not text or len(text) > MAX_THREAD_ID_LENGTH or "\x00" in text:
        raise InvalidIdentifierError(
            f"thread_id {text[:80]!r} cannot name a conversation: it must be 1 to "
            f"{MAX_THREAD_ID_LENGTH} characters without U+0000"
        )
    return text


class PostgresCheckpointStore:
    """Checkpoints, channel versions and pending writes of threads, in PostgreSQL.

    Args:
        pool: An open ``psycopg_pool.AsyncConnectionPool``, owned by the caller.
        agent_name: The agent under whose name the threads' conversations are kept.

    Raises:
        InvalidInputError: ``pool`` is not an ``AsyncConnectionPool``.
    """

    def __init__(self, pool: AsyncConnectionPool[Any], *, agent_name: str = "langgraph") -> None:
        self._pool = _check_pool(pool)
        if not agent_name or len(agent_name) > MAX_THREAD_ID_LENGTH:
            raise InvalidInputError(f"agent_name {agent_name!r} must be 1 to 255 characters")
        self.agent_name = agent_name
        self._sql = _queries()
        self._citus: bool | None = None

    async def put_checkpoint(
        self,
        *,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        parent_checkpoint_id: str | None,
        checkpoint: dict[str, Any],
        metadata: dict[str, Any],
        versions: Sequence[ChannelVersion],
        messages: Sequence[NewMessage],
    ) -> int:
        """Store a checkpoint, its new channel versions and messages, atomically.

        Returns:
            The seq of the first appended message (the counter before the append).
        """
        params = {
            "agent_name": self.agent_name,
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
            "parent_checkpoint_id": parent_checkpoint_id,
            "checkpoint": Jsonb(checkpoint),
            "metadata": Jsonb(metadata),
            "message_count": len(messages),
            "messages": json.dumps(
                [{"role": m.role, "content": m.content, "item": m.item} for m in messages],
                separators=(",", ":"),
            ),
            "channels": [v.channel for v in versions],
            "versions": [v.version for v in versions],
            "types": [v.type for v in versions],
            "blobs": [v.blob for v in versions],
            "bases": [v.base for v in versions],
            "starts": [v.start for v in versions],
            "counts": [v.count for v in versions],
        }
        with _db_errors(self._pool):
            async with self._pool.connection() as conn:
                # A tuple row whatever row factory the caller's pool sets.
                cur = conn.cursor(row_factory=tuple_row)
                await cur.execute(self._sql["lg_put_checkpoint"].text, params)
                row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def list_checkpoints(
        self,
        *,
        thread_id: str | None,
        checkpoint_ns: str | None = None,
        checkpoint_id: str | None = None,
        filter: dict[str, Any] | None = None,
        before: str | None = None,
        limit: int | None = None,
    ) -> list[StoredCheckpoint]:
        """Checkpoints newest first, with their channel values and pending writes."""
        params = {
            "agent_name": self.agent_name,
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
            "filter": Jsonb(filter) if filter else None,
            "before": before,
            "limit": limit,
        }
        query = (
            self._sql["lg_list_checkpoints_distributed"]
            if await self._on_citus()
            else self._sql["lg_list_checkpoints"]
        )
        return [_stored(row) for row in await self._rows(query, params)]

    async def put_writes(
        self,
        *,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        task_id: str,
        task_path: str,
        writes: Sequence[tuple[int, str, str, bytes]],
        replace: bool,
    ) -> None:
        """Store a task's writes ``(idx, channel, type, blob)`` to a checkpoint."""
        params = {
            "agent_name": self.agent_name,
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
            "task_id": task_id,
            "task_path": task_path,
            "idxs": [w[0] for w in writes],
            "channels": [w[1] for w in writes],
            "types": [w[2] for w in writes],
            "blobs": [w[3] for w in writes],
        }
        query = self._sql["lg_put_writes"] if replace else self._sql["lg_put_writes_keeping"]
        await self._run(query, params)

    async def delete_threads(self, thread_ids: Sequence[str]) -> None:
        """Delete threads: checkpoints, versions, writes and their conversations."""
        await self._run(self._sql["lg_delete_threads"], {"thread_ids": list(thread_ids)})

    async def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) of these runs."""
        await self._run(self._sql["lg_delete_for_runs"], {"run_ids": list(run_ids)})

    async def copy_thread(self, source: str, target: str) -> None:
        """Copy a thread's checkpoints, versions, writes and messages to another."""
        await self._run(self._sql["lg_copy_thread"], {"source": source, "target": target})

    async def prune_keep_latest(self, thread_ids: Sequence[str]) -> None:
        """Keep only each namespace's latest checkpoint of these threads."""
        await self._run(self._sql["lg_prune_keep_latest"], {"thread_ids": list(thread_ids)})

    async def _on_citus(self) -> bool:
        """Whether the database has the citus extension (migration 0009); asked once."""
        if self._citus is None:
            with _db_errors(self._pool):
                async with self._pool.connection() as conn:
                    cur = conn.cursor(row_factory=tuple_row)
                    await cur.execute(self._sql["citus_installed"].text)
                    row = await cur.fetchone()
            self._citus = bool(row and row[0])
        return self._citus

    async def _rows(self, query: Query, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The rows of an unprepared statement (its optional filters planned knowing which
        are set), as dicts whatever row factory the caller's pool sets."""
        with _db_errors(self._pool):
            async with self._pool.connection() as conn:
                cur = conn.cursor(row_factory=dict_row, binary=True)
                await cur.execute(query.text, params, prepare=False)
                rows: list[dict[str, Any]] = await cur.fetchall()
        return rows

    async def _run(self, query: Query, params: dict[str, Any]) -> None:
        with _db_errors(self._pool):
            async with self._pool.connection() as conn:
                await conn.execute(query.text, {"agent_name": self.agent_name, **params})


def _stored(row: dict[str, Any]) -> StoredCheckpoint:
    values = [
        (
            bytes(c).decode(),
            bytes(t).decode(),
            None if d is None else bytes(d),
            None if r is None else bytes(r).decode(),
        )
        for c, t, d, r in row["channel_values"] or []
    ]
    writes = [
        (
            bytes(task).decode(),
            bytes(channel).decode(),
            bytes(kind).decode(),
            bytes(blob),
            bytes(path).decode(),
            int(bytes(idx)),
        )
        for task, channel, kind, blob, path, idx in row["pending_writes"] or []
    ]
    return StoredCheckpoint(
        thread_id=row["thread_id"],
        checkpoint_ns=row["checkpoint_ns"],
        checkpoint_id=row["checkpoint_id"],
        parent_checkpoint_id=row["parent_checkpoint_id"],
        checkpoint=row["checkpoint"],
        metadata=row["metadata"],
        channel_values=values,
        pending_writes=writes,
    )
