-- The seed plan's design (contender "seed rewrite"): read the window, then
-- replace the whole conversation with the window plus the new messages. It
-- keeps no counter: positions are renumbered 0..n-1 on every save.

-- name: rewrite_delete
-- Delete every message of the conversation (first half of the rewrite).
DELETE FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s;

-- name: rewrite_insert
-- Insert one message at position %(seq)s (run once per message, pipelined by executemany).
INSERT INTO conversation_history (
    agent_name, session_id, seq, role, content, name, tool_calls, tool_call_id,
    metadata, message_id, created_at
) VALUES (
    %(agent_name)s, %(session_id)s, %(seq)s, %(role)s, %(content)s, %(name)s,
    %(tool_calls)s, %(tool_call_id)s, %(metadata)s, %(message_id)s, %(created_at)s
);
