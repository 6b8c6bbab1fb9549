-- Back to the pre-session schema. Every row is kept: legacy rows get their
-- original id back; rows written with sessions get new ids, in write order,
-- and become part of their agent's single history (that is all 0001 can
-- express). Fields 0001 has no column for (name, tool calls, metadata, ids)
-- are dropped; a NULL content becomes ''.

DROP INDEX ux_conversation_history_message_id;
ALTER TABLE conversation_history DROP CONSTRAINT conversation_history_role_check;

-- Legacy rows get back the role and agent name 0002 had to change.
UPDATE conversation_history
SET role = coalesce(metadata ->> 'legacy_role', role),
    agent_name = coalesce(metadata ->> 'legacy_agent_name', agent_name)
WHERE legacy_id IS NOT NULL
  AND (metadata ? 'legacy_role' OR metadata ? 'legacy_agent_name');
ALTER TABLE conversation_history DROP CONSTRAINT conversation_history_pkey;

ALTER TABLE conversation_history RENAME COLUMN legacy_id TO id;
ALTER SEQUENCE conversation_history_id_seq OWNED BY conversation_history.id;

UPDATE conversation_history AS h
SET id = n.id
FROM (
    SELECT agent_name, session_id, seq, nextval('conversation_history_id_seq') AS id
    FROM (
        SELECT agent_name, session_id, seq
        FROM conversation_history
        WHERE id IS NULL
        ORDER BY created_at, agent_name, session_id, seq
    ) AS ordered
) AS n
WHERE h.agent_name = n.agent_name AND h.session_id = n.session_id AND h.seq = n.seq;

UPDATE conversation_history SET content = '' WHERE content IS NULL;

ALTER TABLE conversation_history
    DROP COLUMN session_id,
    DROP COLUMN seq,
    DROP COLUMN name,
    DROP COLUMN tool_calls,
    DROP COLUMN tool_call_id,
    DROP COLUMN metadata,
    DROP COLUMN message_id,
    ALTER COLUMN content SET NOT NULL,
    ALTER COLUMN id SET NOT NULL,
    ALTER COLUMN id SET DEFAULT nextval('conversation_history_id_seq'::regclass),
    ADD CONSTRAINT conversation_history_pkey PRIMARY KEY (id);

CREATE INDEX ix_conversation_history_agent_name ON conversation_history (agent_name);

DROP TABLE conversation_sessions;
