-- Variants of agentcore's statements that were measured and not adopted
-- (bench/append_cpu.py; bench/NOTES.md says what they cost).

-- name: append_plain_update_first
-- append_plain_messages with its counter as a plain UPDATE, and an
-- INSERT ... ON CONFLICT only when the conversation has no row yet: no
-- conflict check and tuple lock before the update of an existing row.
WITH upd AS (
    UPDATE conversation_sessions AS s
    SET next_seq = s.next_seq + %(message_count)s,
        updated_at = CASE
            WHEN s.updated_at < now() - interval '1 minute' THEN now() ELSE s.updated_at
        END
    WHERE s.agent_name = %(agent_name)s AND s.session_id = %(session_id)s
    RETURNING s.next_seq - %(message_count)s AS first_seq
), ins AS (
    INSERT INTO conversation_sessions AS s (agent_name, session_id, next_seq)
    SELECT %(agent_name)s, %(session_id)s, %(message_count)s
    WHERE NOT EXISTS (SELECT FROM upd)
    ON CONFLICT (agent_name, session_id) DO UPDATE
        SET next_seq = s.next_seq + excluded.next_seq
    RETURNING s.next_seq - %(message_count)s AS first_seq
), counter AS (
    SELECT first_seq FROM upd UNION ALL SELECT first_seq FROM ins
)
INSERT INTO conversation_history (agent_name, session_id, seq, role, content)
SELECT %(agent_name)s, %(session_id)s, counter.first_seq + m.n, m.role, m.content
FROM counter
CROSS JOIN (
    VALUES (0, %(role_0)s::text, %(content_0)s::text), (1, %(role_1)s::text, %(content_1)s::text)
) AS m (n, role, content)
WHERE m.n < %(message_count)s;

-- name: append_plain_update_only
-- append_plain_messages with its counter as a plain UPDATE and nothing else:
-- it stores nothing when the conversation has no row yet (its first append
-- would then go as append_plain_messages, a second round trip).
WITH counter AS (
    UPDATE conversation_sessions AS s
    SET next_seq = s.next_seq + %(message_count)s,
        updated_at = CASE
            WHEN s.updated_at < now() - interval '1 minute' THEN now() ELSE s.updated_at
        END
    WHERE s.agent_name = %(agent_name)s AND s.session_id = %(session_id)s
    RETURNING s.next_seq - %(message_count)s AS first_seq
)
INSERT INTO conversation_history (agent_name, session_id, seq, role, content)
SELECT %(agent_name)s, %(session_id)s, counter.first_seq + m.n, m.role, m.content
FROM counter
CROSS JOIN (
    VALUES (0, %(role_0)s::text, %(content_0)s::text), (1, %(role_1)s::text, %(content_1)s::text)
) AS m (n, role, content)
WHERE m.n < %(message_count)s;
