"""bench/append_cpu.py keeps running, and its ways append what they claim.

bench/NOTES.md quotes this entry point; the smoke test runs each way a
few times on the test database and checks that every way stored two messages
per append (agentcore's statement and its variant in agentcore's tables, in
order; the narrow one in its own table), so a way that silently wrote nothing
would fail here, not in a published figure.
"""

from __future__ import annotations

import psycopg

from bench.append_cpu import measure, ways


def test_every_way_appends_two_messages_per_call(database_dsn: str) -> None:
    found = measure(database_dsn, appends=5, rounds=1)

    assert set(found) == set(ways()) == {"append_plain_messages", "update_first", "narrow"}
    assert all(len(rows) == 1 and rows[0][0] >= 0 and rows[0][1] > 0 for rows in found.values())
    with psycopg.connect(database_dsn) as conn:
        for way in ("append_plain_messages", "update_first"):
            rows = conn.execute(
                "SELECT seq, role FROM conversation_history"
                " WHERE agent_name = 'bench-append-cpu' AND session_id = %s ORDER BY seq",
                [f"{way}-0"],
            ).fetchall()
            # 50 untimed appends, then 5 timed ones: 55 turns of a user and an assistant message.
            assert [seq for seq, _ in rows] == list(range(110))
            assert [role for _, role in rows[:2]] == ["user", "assistant"]
        narrow = conn.execute(
            "SELECT count(*) FROM bench_narrow_history WHERE session_id = 'narrow-0'"
        ).fetchone()
        assert narrow == (110,)

