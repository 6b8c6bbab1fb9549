-- Untimed set-up and measurements of bench/lifecycle.py (retention, paging,
-- export and import at scale). Stores are built set-based, with generate_series.

-- name: lc_drop_session_indexes
-- Build a large conversation_sessions without maintaining its secondary
-- indexes row by row; lc_create_session_indexes rebuilds them (same definitions
-- as migrations 0002 and 0003).
DROP INDEX ix_conversation_sessions_recent, ix_conversation_sessions_owner;

-- name: lc_create_recent_index
-- The index of list_sessions (migration 0002).
CREATE INDEX ix_conversation_sessions_recent
    ON conversation_sessions (agent_name, updated_at DESC);

-- name: lc_create_owner_index
-- The index of one owner's sessions (migration 0003).
CREATE INDEX ix_conversation_sessions_owner
    ON conversation_sessions (
        agent_name, (metadata ->> 'owner'), updated_at DESC, session_id COLLATE "C"
    )
    WHERE (metadata ->> 'owner') IS NOT NULL;

-- name: lc_build_sessions
-- %(sessions)s conversations over %(agents)s agents ('agent-0'...), updated_at
-- spread over a year in a shuffled order; 30%% of them owned by one of
-- %(owners)s users ('user-0'...), and 'heavy' owns every 1000th conversation.
INSERT INTO conversation_sessions (
    agent_name, session_id, next_seq, created_at, updated_at, metadata
)
SELECT
    'agent-' || (i %% %(agents)s),
    'session-' || i,
    10,
    timestamptz '2025-01-01' + (i * interval '3 seconds'),
    timestamptz '2025-01-01' + ((i::bigint * 7919) %% %(sessions)s) * interval '3 seconds',
    CASE
        WHEN i %% 1000 = 7 THEN '{"owner": "heavy"}'::jsonb
        WHEN (i / %(agents)s) %% 10 < 3 THEN jsonb_build_object('owner', 'user-' || (i %% %(owners)s))
        ELSE '{}'::jsonb
    END
FROM generate_series(1, %(sessions)s) AS i;

-- name: lc_build_conversations
-- %(sessions)s conversations of agent %(agent_name)s with %(messages)s
-- messages each (user/assistant alternating, ids 'm-N'), last written
-- %(idle_days)s days ago.
WITH s AS (
    INSERT INTO conversation_sessions (agent_name, session_id, next_seq, created_at, updated_at)
    SELECT %(agent_name)s, 'session-' || i, %(messages)s,
           now() - (%(idle_days)s + 1) * interval '1 day',
           now() - %(idle_days)s * interval '1 day'
    FROM generate_series(1, %(sessions)s) AS i
    RETURNING 1
)
INSERT INTO conversation_history (
    agent_name, session_id, seq, role, content, message_id, created_at
)
SELECT
    %(agent_name)s,
    'session-' || i,
    n,
    CASE WHEN n %% 2 = 0 THEN 'user' ELSE 'assistant' END,
    CASE WHEN n %% 2 = 0 THEN %(user_content)s::text ELSE %(assistant_content)s::text END,
    'm-' || n,
    now() - (%(idle_days)s + 1) * interval '1 day' + n * interval '1 second'
FROM generate_series(1, %(sessions)s) AS i
CROSS JOIN generate_series(0, %(messages)s - 1) AS n;

-- name: lc_build_long_conversation
-- One conversation of %(messages)s messages, every field used: ids, names,
-- metadata on every tenth, tool calls on every hundredth.
WITH s AS (
    INSERT INTO conversation_sessions (agent_name, session_id, next_seq, metadata)
    VALUES (%(agent_name)s, %(session_id)s, %(messages)s, '{"owner": "bench", "title": "long"}')
    RETURNING 1
)
INSERT INTO conversation_history (
    agent_name, session_id, seq, role, content, name, tool_calls, metadata, message_id, created_at
)
SELECT
    %(agent_name)s,
    %(session_id)s,
    n,
    CASE WHEN n %% 2 = 0 THEN 'user' ELSE 'assistant' END,
    %(content)s::text || n,
    CASE WHEN n %% 7 = 0 THEN 'ann' END,
    CASE WHEN n %% 100 = 1
         THEN jsonb_build_array(jsonb_build_object('id', 'c' || n, 'type', 'function')) END,
    CASE WHEN n %% 10 = 0 THEN jsonb_build_object('n', n, 'tags', jsonb_build_array('a', 1.5))
         ELSE '{}'::jsonb END,
    'm-' || n,
    timestamptz '2025-01-01 00:00:00.000001+00' + n * interval '1.000001 second'
FROM generate_series(0, %(messages)s - 1) AS n;

-- name: lc_analyze
-- Planner statistics (and the visibility map) after a build.
VACUUM (ANALYZE) conversation_sessions, conversation_history;

-- name: lc_session_at
-- The page position (updated_at, session_id) of the agent's session at
-- %(offset)s in list_sessions' order: where a deep page starts (untimed).
SELECT updated_at, session_id
FROM conversation_sessions
WHERE agent_name = %(agent_name)s
ORDER BY updated_at DESC, session_id COLLATE "C"
OFFSET %(offset)s
LIMIT 1;

-- name: lc_owner_session_at
-- The same for one owner's sessions.
SELECT updated_at, session_id
FROM conversation_sessions
WHERE agent_name = %(agent_name)s AND (metadata ->> 'owner') = %(owner)s
ORDER BY updated_at DESC, session_id COLLATE "C"
OFFSET %(offset)s
LIMIT 1;

-- name: lc_wal_lsn
-- The current WAL write position.
SELECT pg_current_wal_lsn();

-- name: lc_wal_bytes
-- WAL bytes between two positions.
SELECT pg_wal_lsn_diff(%(end)s::pg_lsn, %(start)s::pg_lsn)::bigint;

-- name: lc_counts
-- Conversations and messages stored (a purge's check).
SELECT (SELECT count(*) FROM conversation_sessions), (SELECT count(*) FROM conversation_history);

-- name: lc_table_sizes
-- The size of agentcore's tables with their indexes.
SELECT pg_total_relation_size('conversation_sessions'), pg_total_relation_size('conversation_history');

-- name: lc_checkpoint
-- Start the next measurement right after a checkpoint: every page's first
-- change after one writes a full-page image to the WAL, so runs compare.
CHECKPOINT;

-- name: lc_wal_compressions
-- The wal_compression methods this server was built with.
SELECT enumvals FROM pg_settings WHERE name = 'wal_compression';

-- name: lc_build_interleaved
-- %(sessions)s conversations of agent %(agent_name)s with %(messages)s
-- messages each, stored the way live traffic writes them: conversations
-- appended in turn, %(together)s at a time (two messages per turn), so each
-- heap page holds rows of about %(together)s conversations. Even-numbered
-- conversations were last written 60 to 90 days ago (idle: a 30-day purge
-- takes them, in an order that follows neither the session id nor the heap),
-- odd-numbered ones an hour ago (active: the turns write them), side by side
-- on the same pages under the same agent.
WITH s AS (
    INSERT INTO conversation_sessions (agent_name, session_id, next_seq, created_at, updated_at)
    SELECT %(agent_name)s, 'session-' || i, %(messages)s,
           now() - interval '91 days',
           CASE WHEN i %% 2 = 0
                THEN now() - interval '60 days'
                     - ((i::bigint * 7919) %% %(sessions)s) * (interval '30 days' / %(sessions)s)
                ELSE now() - interval '1 hour' END
    FROM generate_series(1, %(sessions)s) AS i
    RETURNING 1
)
INSERT INTO conversation_history (
    agent_name, session_id, seq, role, content, message_id, created_at
)
SELECT
    %(agent_name)s,
    'session-' || i,
    n,
    CASE WHEN n %% 2 = 0 THEN 'user' ELSE 'assistant' END,
    CASE WHEN n %% 2 = 0 THEN %(user_content)s::text ELSE %(assistant_content)s::text END,
    'm-' || n,
    now() - interval '91 days' + n * interval '1 second'
FROM generate_series(1, %(sessions)s) AS i
CROSS JOIN generate_series(0, %(messages)s - 1) AS n
ORDER BY i / %(together)s, n / 2, i, n;

-- name: lc_conversations_per_page
-- How many conversations share a heap page of conversation_history, on
-- average over the first %(pages)s pages (the layout check).
SELECT avg(c)::float8
FROM (
    SELECT count(DISTINCT session_id) AS c
    FROM conversation_history
    WHERE ctid < format('(%%s,0)', %(pages)s::int)::tid
    GROUP BY (ctid::text::point)[0]
) AS per_page;
