-- Back to the pre-session schema. Every row is kept: legacy rows get their
-- original id back; rows written with sessions get new ids, in write order,
-- and become part of their agent's single history (that is all 0001 can
-- express). Fields 0001 has no column for (name, tool calls, metadata, ids)
-- are dropped; a NULL content becomes ''.
-- The table is changed in place: after an upgrade few rows differ from their
-- 0001 form, and only those are rewritten (bench/migration.py).

SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';
-- Enough memory to index a few million rows without spilling.
SET LOCAL maintenance_work_mem = '256MB';

DROP INDEX ux_conversation_history_message_id;
ALTER TABLE conversation_history DROP CONSTRAINT conversation_history_role_check;
ALTER TABLE conversation_history DROP CONSTRAINT conversation_history_pkey;

-- Rows get back the role 0002 had to change (also where the application
-- rewrote a legacy conversation, carrying its metadata along); rows from
-- before the upgrade also get back their agent name and their time; a NULL
-- content becomes ''; rows written with sessions get new ids, in write order.
-- One pass finds the rows to change, which are then rewritten by address.
ALTER TABLE conversation_history RENAME COLUMN legacy_id TO id;
ALTER SEQUENCE conversation_history_id_seq OWNED BY conversation_history.id;

UPDATE conversation_history AS h
SET role = CASE
        WHEN h.metadata ? 'legacy_role' AND length(h.metadata ->> 'legacy_role') <= 50
        THEN h.metadata ->> 'legacy_role'
        ELSE h.role
    END,
    agent_name = CASE
        WHEN h.id IS NOT NULL THEN coalesce(h.metadata ->> 'legacy_agent_name', h.agent_name)
        ELSE h.agent_name
    END,
    created_at = CASE
        WHEN h.id IS NOT NULL
        THEN coalesce((h.metadata ->> 'legacy_created_at')::timestamptz, h.created_at)
        ELSE h.created_at
    END,
    content = coalesce(h.content, ''),
    id = coalesce(h.id, n.new_id)
FROM (
    SELECT
        row_address,
        CASE WHEN id IS NULL THEN nextval('conversation_history_id_seq') END AS new_id
    FROM (
        SELECT ctid AS row_address, id
        FROM conversation_history
        WHERE id IS NULL
           OR metadata ?| ARRAY['legacy_role', 'legacy_agent_name', 'legacy_created_at']
           OR content IS NULL
        ORDER BY created_at, agent_name, session_id, seq
    ) AS ordered
) AS n
WHERE h.ctid = n.row_address;

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
