-- Statements over an agent's conversations (conversation_sessions). Pages are
-- keyset pages in one order: updated_at DESC, then session id in code point
-- order (COLLATE "C"), whatever the database's collation, as the in-memory
-- repository orders them. A page asks for one row more than it returns, to
-- know whether another page follows.

-- name: list_sessions
-- An agent's conversations, most recently written first (index on
-- agent_name, updated_at DESC); a conversation's message count is its counter.
SELECT session_id, next_seq, created_at, updated_at, metadata::text
FROM conversation_sessions
WHERE agent_name = %(agent_name)s
ORDER BY updated_at DESC, session_id COLLATE "C"
LIMIT %(limit)s;

-- name: list_sessions_after
-- The page of list_sessions after the row (%(after_time)s, %(after_session)s):
-- the index range from after_time down, the tie on after_time settled by
-- session id.
SELECT session_id, next_seq, created_at, updated_at, metadata::text
FROM conversation_sessions
WHERE agent_name = %(agent_name)s
  AND updated_at <= %(after_time)s
  AND (updated_at < %(after_time)s OR session_id COLLATE "C" > %(after_session)s)
ORDER BY updated_at DESC, session_id COLLATE "C"
LIMIT %(limit)s;

-- name: list_owner_sessions
-- The conversations whose metadata owner is %(owner)s, most recently written
-- first: one range of ix_conversation_sessions_owner, already in page order.
SELECT session_id, next_seq, created_at, updated_at, metadata::text
FROM conversation_sessions
WHERE agent_name = %(agent_name)s AND (metadata ->> 'owner') = %(owner)s
ORDER BY updated_at DESC, session_id COLLATE "C"
LIMIT %(limit)s;

-- name: list_owner_sessions_after
-- The page of list_owner_sessions after the row (%(after_time)s, %(after_session)s).
SELECT session_id, next_seq, created_at, updated_at, metadata::text
FROM conversation_sessions
WHERE agent_name = %(agent_name)s AND (metadata ->> 'owner') = %(owner)s
  AND updated_at <= %(after_time)s
  AND (updated_at < %(after_time)s OR session_id COLLATE "C" > %(after_session)s)
ORDER BY updated_at DESC, session_id COLLATE "C"
LIMIT %(limit)s;

-- name: lock_session_metadata
-- The conversation's metadata, its row locked until the transaction ends so
-- that a merge (read, merge in Python, write) loses no concurrent update.
SELECT metadata::text
FROM conversation_sessions
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s
FOR UPDATE;

-- name: set_session_metadata
-- Store the conversation's metadata (already merged and checked). Not a
-- write of the conversation: updated_at stays.
UPDATE conversation_sessions
SET metadata = %(metadata)s::jsonb
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s;

-- name: get_session
-- One conversation's summary, by its primary key.
SELECT session_id, next_seq, created_at, updated_at, metadata::text
FROM conversation_sessions
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s;
