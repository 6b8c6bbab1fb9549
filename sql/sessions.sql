-- name: list_sessions
-- An agent's conversations, most recently written first (index on
-- agent_name, updated_at DESC); a conversation's message count is its counter.
-- Ties break by session id in code point order (COLLATE "C"), whatever the
-- database's collation, as the in-memory repository orders them.
SELECT session_id, next_seq, created_at, updated_at
FROM conversation_sessions
WHERE agent_name = %(agent_name)s
ORDER BY updated_at DESC, session_id COLLATE "C"
LIMIT %(limit)s;
