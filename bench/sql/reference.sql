-- The minimal hand-written turn (contender "raw psycopg"), also run by pgbench:
-- the same two statements, the same schema, the same guarantees as agentcore's
-- append (gap-free per-session seq from the conversation's counter row, whose
-- upsert also serializes writers of one session). Only the JSON batch, the
-- message-id dedupe and the library's layers are left out.

-- name: reference_load
-- The last %(limit)s messages of the session, newest first (one backward PK scan).
SELECT role, content, name, tool_calls, tool_call_id, metadata, message_id, created_at
FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s
ORDER BY seq DESC
LIMIT %(limit)s;

-- name: reference_append
-- Append one user and one assistant message after the last one, in one statement.
WITH counter AS (
    INSERT INTO conversation_sessions AS s (agent_name, session_id, next_seq)
    VALUES (%(agent_name)s, %(session_id)s, 2)
    ON CONFLICT (agent_name, session_id) DO UPDATE
        SET next_seq = s.next_seq + 2, updated_at = now()
    RETURNING s.next_seq - 2 AS first_seq
)
INSERT INTO conversation_history (agent_name, session_id, seq, role, content, created_at)
SELECT %(agent_name)s, %(session_id)s, counter.first_seq + v.n, v.role, v.content, now()
FROM counter CROSS JOIN (
    VALUES (0, 'user', %(user_content)s::text), (1, 'assistant', %(assistant_content)s::text)
) AS v (n, role, content);

-- name: reference_copy
-- Bulk-load rows with a raw COPY (the baseline for save_full_history), same columns.
COPY conversation_history (
    agent_name, session_id, seq, role, content, name, tool_calls, tool_call_id,
    metadata, message_id, created_at
) FROM STDIN;
