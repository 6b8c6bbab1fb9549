-- Untimed set-up: give sessions '0'..'(sessions-1)' of one agent a stored history.

-- name: seed_history
-- %(history)s alternating user/assistant messages per session, seq 0..history-1.
INSERT INTO conversation_history (agent_name, session_id, seq, role, content, created_at)
SELECT
    %(agent_name)s,
    s::text,
    g,
    CASE WHEN mod(g, 2) = 0 THEN 'user' ELSE 'assistant' END,
    CASE WHEN mod(g, 2) = 0 THEN %(user_content)s::text ELSE %(assistant_content)s::text END,
    now()
FROM generate_series(0, %(sessions)s - 1) AS s
CROSS JOIN generate_series(0, %(history)s - 1) AS g;

-- name: seed_history_with_ids
-- The same, each message with an id, as a caller that always sends ids stores it.
INSERT INTO conversation_history (
    agent_name, session_id, seq, role, content, message_id, created_at
)
SELECT
    %(agent_name)s,
    s::text,
    g,
    CASE WHEN mod(g, 2) = 0 THEN 'user' ELSE 'assistant' END,
    CASE WHEN mod(g, 2) = 0 THEN %(user_content)s::text ELSE %(assistant_content)s::text END,
    'seeded-' || g,
    now()
FROM generate_series(0, %(sessions)s - 1) AS s
CROSS JOIN generate_series(0, %(history)s - 1) AS g;

-- name: seed_sessions
-- The matching counter rows (none when the history is empty).
INSERT INTO conversation_sessions (agent_name, session_id, next_seq)
SELECT %(agent_name)s, s::text, %(history)s
FROM generate_series(0, %(sessions)s - 1) AS s
WHERE %(history)s > 0;

-- name: analyze_history
-- Refresh planner statistics after seeding (the same for every contender).
ANALYZE conversation_history, conversation_sessions;

-- name: wal_position
-- The current WAL insert position, to measure WAL bytes written per turn.
SELECT pg_current_wal_insert_lsn();

-- name: wal_bytes_since
-- WAL bytes written since %(start)s.
SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %(start)s::pg_lsn)::bigint;

-- name: server_setting
-- One server setting, for the report.
SELECT current_setting(%(name)s);
