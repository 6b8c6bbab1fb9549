-- bench/langgraph_saver.py: what a checkpointer wrote.

-- name: lg_relation_bytes
-- Bytes on disk (heap, indexes, TOAST) of the named tables that exist.
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY(%(tables)s::text[]);

-- name: lg_wal_lsn
-- The server's current WAL position.
SELECT pg_current_wal_lsn()::text;

-- name: lg_wal_bytes_since
-- WAL bytes written since %(start)s.
SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %(start)s::pg_lsn)::bigint;

-- name: lg_make_idle
-- Make every conversation of %(agent_name)s look idle for two days.
UPDATE conversation_sessions SET updated_at = now() - interval '2 days'
WHERE agent_name = %(agent_name)s AND session_id = ANY(%(session_ids)s::text[]);
