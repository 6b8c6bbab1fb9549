"""Conversations stored as an older agentcore could store them, on any repository.

Ids with control characters (other than NUL) were accepted before agentcore
refused them for new data; reads, exports and imports must still take them.
No write of today's API stores one, so this helper stores the rows itself: with
SQL on PostgreSQL (as tests/integration/test_input_rules.py does), in the
fake's own dict in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from agentcore import InMemoryHistoryRepository, Message, PostgresHistoryRepository
from agentcore.memory import _Conversation
from agentcore.rows import message_to_copy_row
from agentcore.validation import MessageStream, check_session_metadata

LEGACY_IDS = ["bot\x01", "line\nbreak", "tab\there", "c1\x85", "sep\u2028", "del\x7f"]
"""Ids an older version accepted and today's writes refuse."""


def _underlying(repo: Any) -> Any:
    """The repository behind the contract suite's sync wrappers."""
    while not isinstance(repo, InMemoryHistoryRepository | PostgresHistoryRepository):
        repo = repo._sync._repository if hasattr(repo, "_sync") else repo._repository
    return repo


async def store_legacy_conversation(
    repo: Any,
    agent_name: str,
    session_id: str,
    messages: Sequence[Message],
    *,
    metadata: dict[str, Any] | None = None,
    when: datetime = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
) -> None:
    """Store a conversation under ids no write accepts today, as a version before the rule.

    ``messages`` are stored as given (each needs its ``created_at``); the
    conversation must not exist yet.
    """
    target = _underlying(repo)
    stream = MessageStream(max_content_chars=target.max_content_chars)  # as stored
    stamped = [
        stream.check(m.model_copy(update={"created_at": m.created_at or when})) for m in messages
    ]
    if isinstance(target, InMemoryHistoryRepository):
        with target._lock:
            key = (agent_name, session_id)
            assert key not in target._conversations
            target._conversations[key] = _Conversation(
                created_at=when,
                updated_at=when,
                messages=stamped,
                metadata=check_session_metadata(metadata or {}),  # as jsonb keeps it
                ids={m.id: n for n, m in enumerate(stamped) if m.id is not None},
            )
        return
    conninfo = target._pool.conninfo

    def insert() -> None:
        with psycopg.connect(conninfo) as conn:
            conn.execute(
                "INSERT INTO conversation_sessions"
                " (agent_name, session_id, next_seq, metadata, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (agent_name, session_id, len(stamped), Jsonb(metadata or {}), when, when),
            )
            for seq, message in enumerate(stamped):
                conn.execute(
                    "INSERT INTO conversation_history (agent_name, session_id, seq, role,"
                    " content, name, tool_calls, tool_call_id, metadata, message_id,"
                    " created_at, item)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::json)",
                    message_to_copy_row(agent_name, session_id, seq, message, when),
                )

    await asyncio.to_thread(insert)
