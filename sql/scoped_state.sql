-- Scoped state (migration 0007): a conversation's own state (session_state),
-- its owner's (owner_state) and its agent's (agent_state). A write of an
-- event with its state change runs in one READ COMMITTED transaction that
-- holds the conversation's lock (lock_session in sql/history.sql): the
-- revision check, the message, and the three states commit together or not
-- at all. Merges are jsonb's ||: the delta's keys replace the stored ones.

-- name: create_scoped_conversation
-- The conversation's counter row, empty, its metadata naming the owner. No
-- row when the conversation already exists (the caller refuses then).
INSERT INTO conversation_sessions (agent_name, session_id, next_seq, metadata)
VALUES (%(agent_name)s, %(session_id)s, 0, jsonb_build_object('owner', %(owner)s::text))
ON CONFLICT (agent_name, session_id) DO NOTHING
RETURNING created_at;

-- name: create_session_state
-- The conversation's own state, at revision 0.
INSERT INTO session_state (agent_name, session_id, owner, state, update_time, created_at)
VALUES (%(agent_name)s, %(session_id)s, %(owner)s, %(state)s::jsonb, %(update_time)s,
        %(created_at)s);

-- name: lock_session_state
-- The conversation's state row, locked until commit: what an append checks
-- (owner, revision) before it writes.
SELECT s.owner, s.revision, s.update_time
FROM session_state AS s
WHERE s.agent_name = %(agent_name)s AND s.session_id = %(session_id)s
FOR UPDATE;

-- name: update_session_state
-- Merge the delta into the conversation's state, move its revision by one and
-- set its update time.
UPDATE session_state
SET state = state || %(state)s::jsonb, revision = revision + 1, update_time = %(update_time)s
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s
RETURNING state::text, revision;

-- name: merge_owner_state
-- Merge a delta into an owner's state, creating it.
INSERT INTO owner_state AS o (agent_name, owner, state)
VALUES (%(agent_name)s, %(owner)s, %(user_state)s::jsonb)
ON CONFLICT (agent_name, owner) DO UPDATE SET state = o.state || excluded.state;

-- name: merge_agent_state
-- Merge a delta into an agent's state, creating it.
INSERT INTO agent_state AS a (agent_name, state)
VALUES (%(agent_name)s, %(app_state)s::jsonb)
ON CONFLICT (agent_name) DO UPDATE SET state = a.state || excluded.state;

-- name: get_scoped_session
-- One conversation's scoped state, its owner's and its agent's, when
-- %(owner)s owns it: three primary-key lookups.
SELECT s.state::text, s.revision, s.update_time, s.created_at,
    coalesce(o.state, '{}'::jsonb)::text, coalesce(a.state, '{}'::jsonb)::text
FROM session_state AS s
LEFT JOIN owner_state AS o ON o.agent_name = s.agent_name AND o.owner = s.owner
LEFT JOIN agent_state AS a ON a.agent_name = s.agent_name
WHERE s.agent_name = %(agent_name)s AND s.session_id = %(session_id)s
  AND s.owner = %(owner)s;

-- name: load_last_messages_since
-- The last %(limit)s messages (all when NULL) written at or after %(since)s,
-- newest first: a backward scan of the primary key that stops at the limit.
-- Columns as load_last_messages (sql/history.sql).
SELECT role, content, name, tool_calls::text, tool_call_id, metadata::text, message_id, created_at,
    item::text
FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s AND created_at >= %(since)s
ORDER BY seq DESC
LIMIT (SELECT %(limit)s::bigint);

-- name: list_owner_scoped_sessions
-- The conversations of one owner, least recently updated first, with their
-- state, the owner's and the agent's (one range of ix_session_state_owner);
-- no message is read.
SELECT s.session_id, s.owner, s.state::text, s.revision, s.update_time, s.created_at,
    coalesce(o.state, '{}'::jsonb)::text, coalesce(a.state, '{}'::jsonb)::text
FROM session_state AS s
LEFT JOIN owner_state AS o ON o.agent_name = s.agent_name AND o.owner = s.owner
LEFT JOIN agent_state AS a ON a.agent_name = s.agent_name
WHERE s.agent_name = %(agent_name)s AND s.owner = %(owner)s
ORDER BY s.update_time, s.session_id COLLATE "C";

-- name: list_scoped_sessions
-- Every conversation of an agent with scoped state, least recently updated
-- first (ties by owner, then session id), with the states as
-- list_owner_scoped_sessions; no message is read.
SELECT s.session_id, s.owner, s.state::text, s.revision, s.update_time, s.created_at,
    coalesce(o.state, '{}'::jsonb)::text, coalesce(a.state, '{}'::jsonb)::text
FROM session_state AS s
LEFT JOIN owner_state AS o ON o.agent_name = s.agent_name AND o.owner = s.owner
LEFT JOIN agent_state AS a ON a.agent_name = s.agent_name
WHERE s.agent_name = %(agent_name)s
ORDER BY s.update_time, s.owner COLLATE "C", s.session_id COLLATE "C";

-- name: get_owner_state
-- One owner's state (no row: none stored).
SELECT state::text FROM owner_state
WHERE agent_name = %(agent_name)s AND owner = %(owner)s;

-- name: get_agent_state
-- An agent's state (no row: none stored).
SELECT state::text FROM agent_state WHERE agent_name = %(agent_name)s;

-- name: delete_session_state
-- Remove the conversation's state row, when %(owner)s owns it; the messages
-- and counter go in the same transaction (delete_session, delete_messages).
DELETE FROM session_state
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s AND owner = %(owner)s;

-- name: rollback_scoped_write
-- End a write whose checks failed (no such conversation, or a stale
-- revision) after its statements were sent: nothing of it stays.
ROLLBACK;
