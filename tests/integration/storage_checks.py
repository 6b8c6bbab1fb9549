"""Checks on what is really stored, read straight from agentcore's tables."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import psycopg


def stored_rows(dsn: str) -> dict[tuple[str, str], list[tuple[int, str | None, str | None]]]:
    """Every conversation's rows as ``(seq, content, message_id)``, in seq order."""
    rows: dict[tuple[str, str], list[tuple[int, str | None, str | None]]] = defaultdict(list)
    with psycopg.connect(dsn) as conn:
        for agent, session, seq, content, message_id in conn.execute(
            "SELECT agent_name, session_id, seq, content, message_id"
            " FROM conversation_history ORDER BY agent_name, session_id, seq"
        ):
            rows[(agent, session)].append((seq, content, message_id))
    return dict(rows)


def assert_counters_match_rows(dsn: str) -> dict[tuple[str, str], list[str | None]]:
    """seq is 0..n-1 in every conversation and its counter says n; returns the contents."""
    rows = stored_rows(dsn)
    with psycopg.connect(dsn) as conn:
        counters = {
            (agent, session): next_seq
            for agent, session, next_seq in conn.execute(
                "SELECT agent_name, session_id, next_seq FROM conversation_sessions"
            )
        }
    for key, conversation in rows.items():
        assert [seq for seq, _, _ in conversation] == list(range(len(conversation))), key
        assert counters.get(key) == len(conversation), (key, counters.get(key), len(conversation))
    for key, next_seq in counters.items():
        assert next_seq == len(rows.get(key, [])), (key, next_seq)
    return {key: [content for _, content, _ in conversation] for key, conversation in rows.items()}


def table_dump(dsn: str) -> tuple[list[Any], list[Any]]:
    """Both tables, every column, in a fixed order: equal dumps mean nothing changed."""
    with psycopg.connect(dsn) as conn:
        sessions = conn.execute(
            "SELECT * FROM conversation_sessions ORDER BY agent_name, session_id"
        ).fetchall()
        history = conn.execute(
            "SELECT * FROM conversation_history ORDER BY agent_name, session_id, seq"
        ).fetchall()
    return sessions, history
