-- Statements on one conversation, always named by (agent_name, session_id):
-- every statement carries the full key, so the tables can be sharded by
-- session_id later without changing a query.

-- name: lock_session
-- Serialize the writers of one conversation until the transaction ends. Taken
-- before any write so the next statement's snapshot sees every earlier writer.
-- Two conversations whose hashes collide only wait for each other.
SELECT pg_advisory_xact_lock(hashtext(%(agent_name)s), hashtext(%(session_id)s));

-- name: lock_session_counter
-- Wait for, then hold, the conversation's counter row. An append without ids
-- takes only this row lock (not lock_session), so a replace or a clear takes
-- it before deleting: the next statement's snapshot then holds every append
-- committed meanwhile, and none of their rows is left behind.
SELECT 1
FROM conversation_sessions
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s
FOR UPDATE;

-- name: load_last_messages
-- The last %(limit)s messages (all when NULL), newest first: one backward scan
-- of the primary key. The caller reverses them to oldest-first.
SELECT role, content, name, tool_calls, tool_call_id, metadata, message_id, created_at
FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s
ORDER BY seq DESC
LIMIT %(limit)s;

-- name: append_messages
-- Append a JSON array of messages after the last one, in order. Messages whose
-- id is already stored in this conversation are skipped; the counter in
-- conversation_sessions advances by the number actually inserted, so seq stays
-- gap-free. Runs after lock_session, in the same transaction.
WITH batch AS (
    SELECT m.value AS msg, m.ordinality AS ord
    FROM jsonb_array_elements(%(messages)s::jsonb) WITH ORDINALITY AS m
),
fresh AS (
    SELECT b.msg, row_number() OVER (ORDER BY b.ord) AS n
    FROM batch AS b
    WHERE NOT EXISTS (
        SELECT 1
        FROM conversation_history AS h
        WHERE h.agent_name = %(agent_name)s
          AND h.session_id = %(session_id)s
          AND h.message_id = b.msg ->> 'id'
    )
),
counter AS (
    INSERT INTO conversation_sessions AS s (agent_name, session_id, next_seq)
    SELECT %(agent_name)s, %(session_id)s, count(*) FROM fresh HAVING count(*) > 0
    ON CONFLICT (agent_name, session_id) DO UPDATE
        SET next_seq = s.next_seq + excluded.next_seq, updated_at = now()
    RETURNING s.next_seq - (SELECT count(*) FROM fresh) AS first_seq
)
INSERT INTO conversation_history (
    agent_name, session_id, seq, role, content, name, tool_calls, tool_call_id,
    metadata, message_id, created_at
)
SELECT
    %(agent_name)s,
    %(session_id)s,
    counter.first_seq + fresh.n - 1,
    fresh.msg ->> 'role',
    fresh.msg ->> 'content',
    fresh.msg ->> 'name',
    fresh.msg -> 'tool_calls',
    fresh.msg ->> 'tool_call_id',
    coalesce(fresh.msg -> 'metadata', '{}'::jsonb),
    fresh.msg ->> 'id',
    coalesce((fresh.msg ->> 'created_at')::timestamptz, now())
FROM fresh CROSS JOIN counter;

-- name: delete_messages
-- Remove every message of the conversation (the first half of a replace).
-- Runs after lock_session and lock_session_counter.
DELETE FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s;

-- name: reset_session
-- Point the conversation's counter at %(message_count)s messages, creating the
-- row if needed; returns the transaction's time, used for messages without one.
INSERT INTO conversation_sessions AS s (agent_name, session_id, next_seq)
VALUES (%(agent_name)s, %(session_id)s, %(message_count)s)
ON CONFLICT (agent_name, session_id) DO UPDATE
    SET next_seq = excluded.next_seq, updated_at = now()
RETURNING now();

-- name: copy_messages
-- Bulk-load a replaced conversation's rows (the second half of a replace).
COPY conversation_history (
    agent_name, session_id, seq, role, content, name, tool_calls, tool_call_id,
    metadata, message_id, created_at
) FROM STDIN;

-- name: delete_session
-- Forget a conversation: its counter row and all its messages. Runs after
-- lock_session and lock_session_counter; returns how many messages it had.
WITH counter AS (
    DELETE FROM conversation_sessions
    WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s
),
removed AS (
    DELETE FROM conversation_history
    WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s
    RETURNING 1
)
SELECT count(*) FROM removed;
