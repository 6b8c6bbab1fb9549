-- Back to the pre-session schema. Every row is kept: legacy rows get their
-- original id back; rows written with sessions get new ids, in write order,
-- and become part of their agent's single history (that is all 0001 can
-- express). Fields 0001 has no column for (name, tool calls, metadata, ids)
-- are dropped; a NULL content becomes ''. Like the upgrade, the rows are
-- written once into a new table that takes the old one's name.

SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';

ALTER TABLE conversation_history RENAME TO conversation_history_0002;

DO $$
DECLARE
    found text;
BEGIN
    SELECT string_agg(what, ', ') INTO found FROM (
        SELECT format('column %I', attname) AS what
        FROM pg_attribute
        WHERE attrelid = 'conversation_history_0002'::regclass AND attnum > 0
          AND NOT attisdropped
          AND attname NOT IN (
              'legacy_id', 'agent_name', 'role', 'content', 'created_at', 'session_id', 'seq',
              'name', 'tool_calls', 'tool_call_id', 'metadata', 'message_id'
          )
        UNION ALL
        SELECT format('trigger %I', tgname) FROM pg_trigger
        WHERE tgrelid = 'conversation_history_0002'::regclass AND NOT tgisinternal
        UNION ALL
        SELECT format('policy %I', polname) FROM pg_policy
        WHERE polrelid = 'conversation_history_0002'::regclass
        UNION ALL
        SELECT format('publication %I', p.pubname)
        FROM pg_publication_rel AS r JOIN pg_publication AS p ON p.oid = r.prpubid
        WHERE r.prrelid = 'conversation_history_0002'::regclass
    ) AS attached;
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'rolling back 0002 rebuilds conversation_history and cannot carry over: %', found
            USING HINT = 'remove them, roll back, then add them back (docs/migrations.md)';
    END IF;
END
$$;

-- The 0001 columns, with the types 0002 kept.
CREATE TABLE conversation_history AS
SELECT legacy_id AS id, agent_name, role, content, created_at
FROM conversation_history_0002
WITH NO DATA;

ALTER TABLE conversation_history
    ALTER COLUMN id SET NOT NULL,
    ALTER COLUMN id SET DEFAULT nextval('conversation_history_id_seq'::regclass),
    ALTER COLUMN agent_name SET NOT NULL,
    ALTER COLUMN role SET NOT NULL,
    ALTER COLUMN content SET NOT NULL,
    ALTER COLUMN created_at SET NOT NULL,
    ALTER COLUMN created_at SET DEFAULT now();

-- Rows get back the role 0002 had to change (also where the application
-- rewrote a legacy conversation, carrying its metadata along); rows from
-- before the upgrade also get back their id, agent name and time.
INSERT INTO conversation_history (id, agent_name, role, content, created_at)
SELECT
    legacy_id,
    coalesce(metadata ->> 'legacy_agent_name', agent_name),
    CASE
        WHEN metadata ? 'legacy_role' AND length(metadata ->> 'legacy_role') <= 50
        THEN metadata ->> 'legacy_role'
        ELSE role
    END,
    coalesce(content, ''),
    coalesce((metadata ->> 'legacy_created_at')::timestamptz, created_at)
FROM conversation_history_0002
WHERE legacy_id IS NOT NULL;

-- Rows written with sessions get new ids in write order.
INSERT INTO conversation_history (id, agent_name, role, content, created_at)
SELECT nextval('conversation_history_id_seq'), agent_name, role, content, created_at
FROM (
    SELECT
        agent_name,
        CASE
            WHEN metadata ? 'legacy_role' AND length(metadata ->> 'legacy_role') <= 50
            THEN metadata ->> 'legacy_role'
            ELSE role
        END AS role,
        coalesce(content, '') AS content,
        created_at
    FROM conversation_history_0002
    WHERE legacy_id IS NULL
    ORDER BY created_at, agent_name, session_id, seq
) AS ordered;

-- A new table is a new object: the old one's owner, rights, comments and
-- storage options move to it.
DO $$
DECLARE
    old_table constant regclass := 'conversation_history_0002'::regclass;
    r record;
BEGIN
    EXECUTE format('ALTER TABLE conversation_history OWNER TO %s',
                   (SELECT relowner::regrole FROM pg_class WHERE oid = old_table));
    FOR r IN
        SELECT a.privilege_type, a.is_grantable,
               CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS grantee
        FROM pg_class AS c, aclexplode(c.relacl) AS a
        WHERE c.oid = old_table
    LOOP
        EXECUTE format('GRANT %s ON conversation_history TO %s%s', r.privilege_type, r.grantee,
                       CASE WHEN r.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    EXECUTE format('COMMENT ON TABLE conversation_history IS %L', obj_description(old_table, 'pg_class'));
    FOR r IN
        SELECT CASE a.attname WHEN 'legacy_id' THEN 'id' ELSE a.attname END AS name, d.description
        FROM pg_description AS d
        JOIN pg_attribute AS a ON a.attrelid = d.objoid AND a.attnum = d.objsubid
        WHERE d.classoid = 'pg_class'::regclass AND d.objoid = old_table AND d.objsubid > 0
          AND a.attname IN ('legacy_id', 'agent_name', 'role', 'content', 'created_at')
    LOOP
        EXECUTE format('COMMENT ON COLUMN conversation_history.%I IS %L', r.name, r.description);
    END LOOP;
    FOR r IN SELECT unnest(reloptions) AS option FROM pg_class WHERE oid = old_table LOOP
        EXECUTE format('ALTER TABLE conversation_history SET (%s)', r.option);
    END LOOP;
END
$$;

DROP TABLE conversation_history_0002;
ALTER SEQUENCE conversation_history_id_seq OWNED BY conversation_history.id;

ALTER TABLE conversation_history ADD CONSTRAINT conversation_history_pkey PRIMARY KEY (id);
CREATE INDEX ix_conversation_history_agent_name ON conversation_history (agent_name);

DROP TABLE conversation_sessions;

ANALYZE conversation_history;
