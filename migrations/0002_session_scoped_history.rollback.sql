-- Back to the pre-session schema. Every row is kept: legacy rows get their
-- original id back; rows written with sessions get new ids, in write order,
-- and become part of their agent's single history (that is all 0001 can
-- express). Fields 0001 has no column for (name, tool calls, metadata, ids)
-- are dropped; a NULL content becomes ''.

DROP INDEX ux_conversation_history_message_id;
ALTER TABLE conversation_history DROP CONSTRAINT conversation_history_role_check;

-- Rows get back the role 0002 had to change (also where the application
-- rewrote a legacy conversation, carrying its metadata along); rows from
-- before the upgrade also get back their agent name and their time.
UPDATE conversation_history
SET role = metadata ->> 'legacy_role'
WHERE metadata ? 'legacy_role' AND length(metadata ->> 'legacy_role') <= 50;

SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';
UPDATE conversation_history
SET agent_name = coalesce(metadata ->> 'legacy_agent_name', agent_name),
    created_at = coalesce((metadata ->> 'legacy_created_at')::timestamptz, created_at)
WHERE legacy_id IS NOT NULL
  AND (metadata ? 'legacy_agent_name' OR metadata ? 'legacy_created_at');

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
