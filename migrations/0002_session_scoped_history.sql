-- Session-scoped history: every message belongs to (agent_name, session_id) and
-- has a gap-free position seq in its conversation. Rows written before sessions
-- existed are kept under the session id '__legacy__', in their original order.
-- depends: 0001_conversation_history

-- The rows are written once, numbered, into a new table that then takes the
-- old one's name: an in-place UPDATE of every row was 5x slower (it visits
-- rows in random order and leaves the table twice its size until VACUUM).
-- docs/migrations.md has the figures (bench/migration.py).

SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';
-- Enough memory to number and index a few million rows without spilling.
SET LOCAL work_mem = '256MB';
SET LOCAL maintenance_work_mem = '256MB';

CREATE TABLE conversation_sessions (
    agent_name varchar(255) NOT NULL,
    session_id varchar(255) NOT NULL,
    -- Messages stored so far; the next message's seq. Every writer of the
    -- conversation moves it under the conversation's advisory lock.
    next_seq bigint NOT NULL CHECK (next_seq >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_name, session_id)
);

-- list_sessions: an agent's conversations, most recently written first.
CREATE INDEX ix_conversation_sessions_recent
    ON conversation_sessions (agent_name, updated_at DESC);

ALTER TABLE conversation_history RENAME TO conversation_history_0001;

-- What the rebuild cannot carry over is refused before any row is copied:
-- columns that 0001 does not define, triggers, row security policies and
-- publications. Views and foreign keys on the table make the DROP below fail.
DO $$
DECLARE
    found text;
BEGIN
    SELECT string_agg(what, ', ') INTO found FROM (
        SELECT format('column %I', attname) AS what
        FROM pg_attribute
        WHERE attrelid = 'conversation_history_0001'::regclass AND attnum > 0
          AND NOT attisdropped
          AND attname NOT IN ('id', 'agent_name', 'role', 'content', 'created_at')
        UNION ALL
        SELECT format('trigger %I', tgname) FROM pg_trigger
        WHERE tgrelid = 'conversation_history_0001'::regclass AND NOT tgisinternal
        UNION ALL
        SELECT format('policy %I', polname) FROM pg_policy
        WHERE polrelid = 'conversation_history_0001'::regclass
        UNION ALL
        SELECT format('publication %I', p.pubname)
        FROM pg_publication_rel AS r JOIN pg_publication AS p ON p.oid = r.prpubid
        WHERE r.prrelid = 'conversation_history_0001'::regclass
    ) AS attached;
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'migration 0002 rebuilds conversation_history and cannot carry over: %', found
            USING HINT = 'remove them, apply the migration, then add them back (docs/migrations.md)';
    END IF;
END
$$;

-- The 0001 columns keep their exact types (a predecessor's table may differ).
CREATE TABLE conversation_history (LIKE conversation_history_0001);
ALTER TABLE conversation_history RENAME COLUMN id TO legacy_id;
-- The old surrogate id is kept only for the legacy rows (so a rollback gives
-- them back unchanged); new rows leave it NULL and pay nothing for it.
ALTER TABLE conversation_history
    ALTER COLUMN legacy_id DROP NOT NULL,
    ALTER COLUMN created_at SET DEFAULT now(),
    ADD COLUMN session_id varchar(255) NOT NULL,
    ADD COLUMN seq bigint NOT NULL,
    ADD COLUMN name text,
    ADD COLUMN tool_calls jsonb,
    ADD COLUMN tool_call_id text,
    ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN message_id varchar(255),
    ALTER COLUMN content DROP NOT NULL,
    ADD CONSTRAINT conversation_history_role_check
        CHECK (role IN ('system', 'user', 'assistant', 'tool'));

-- The 0001 schema accepted any role, any agent name and any time; agentcore
-- reads back only valid messages under addressable names. A row's role is
-- read case- and space-insensitively: the synonyms of assistant (ai, bot,
-- model) become assistant, system stays system, anything else (function,
-- human, and tool, since 0001 rows carry no tool_call_id) becomes user; a
-- changed role is kept in metadata.legacy_role. An agent name that is empty or
-- only whitespace (Python's notion of it, which agentcore applies to names)
-- moves to '__legacy_unnamed__', kept in metadata.legacy_agent_name. Python
-- reads years 1 to 9999 only: a time outside what agentcore accepts
-- (infinity, year 0001-01-01, BC dates...) is clamped into that range, kept
-- as text in metadata.legacy_created_at (UTC, ISO style). The rows are
-- numbered in their true order: one legacy conversation per agent, in the
-- order they were written. The rollback restores all of it.
INSERT INTO conversation_history (
    legacy_id, agent_name, role, content, created_at, session_id, seq, metadata
)
SELECT
    o.id,
    n.agent,
    CASE
        WHEN o.role IN ('system', 'user', 'assistant') THEN o.role
        WHEN lower(btrim(o.role)) IN ('assistant', 'ai', 'bot', 'model') THEN 'assistant'
        WHEN lower(btrim(o.role)) = 'system' THEN 'system'
        ELSE 'user'
    END,
    o.content,
    least(greatest(o.created_at, '0001-01-08 00:00:00+00'), '9999-12-24 00:00:00+00'),
    '__legacy__',
    n.seq,
    CASE
        WHEN o.role IN ('system', 'user', 'assistant') AND n.agent = o.agent_name AND n.in_range
        THEN '{}'::jsonb
        ELSE jsonb_strip_nulls(jsonb_build_object(
            'legacy_role', CASE WHEN o.role NOT IN ('system', 'user', 'assistant') THEN o.role END,
            'legacy_agent_name', CASE WHEN n.agent <> o.agent_name THEN o.agent_name END,
            'legacy_created_at', CASE WHEN NOT n.in_range THEN o.created_at::text END
        ))
    END
FROM conversation_history_0001 AS o
JOIN (
    -- Numbered on the narrow columns only: sorting whole rows spilled the
    -- table's size to temporary files. Partitions compare names byte for
    -- byte: the same groups as the database's collation, sorted faster.
    SELECT
        id,
        agent,
        in_range,
        row_number() OVER (PARTITION BY agent COLLATE "C" ORDER BY created_at, id) - 1 AS seq
    FROM (
        SELECT
            id,
            created_at,
            CASE
                WHEN agent_name ~ '^[\t\n\v\f\r\x1c-\x1f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$'
                THEN '__legacy_unnamed__'
                ELSE agent_name
            END AS agent,
            created_at BETWEEN '0001-01-08 00:00:00+00' AND '9999-12-24 00:00:00+00' AS in_range
        FROM conversation_history_0001
    ) AS keys
) AS n ON n.id = o.id;

INSERT INTO conversation_sessions (agent_name, session_id, next_seq, created_at, updated_at)
SELECT agent_name, '__legacy__', count(*), min(created_at), max(created_at)
FROM conversation_history
GROUP BY agent_name;

-- A new table is a new object: the old one's owner, rights (an application
-- role's grants, docs/operations.md), comments and storage options move to it.
DO $$
DECLARE
    old_table constant regclass := 'conversation_history_0001'::regclass;
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
        SELECT CASE a.attname WHEN 'id' THEN 'legacy_id' ELSE a.attname END AS name, d.description
        FROM pg_description AS d
        JOIN pg_attribute AS a ON a.attrelid = d.objoid AND a.attnum = d.objsubid
        WHERE d.classoid = 'pg_class'::regclass AND d.objoid = old_table AND d.objsubid > 0
    LOOP
        EXECUTE format('COMMENT ON COLUMN conversation_history.%I IS %L', r.name, r.description);
    END LOOP;
    FOR r IN SELECT unnest(reloptions) AS option FROM pg_class WHERE oid = old_table LOOP
        EXECUTE format('ALTER TABLE conversation_history SET (%s)', r.option);
    END LOOP;
END
$$;

-- The sequence outlives the old table, for the rollback.
ALTER SEQUENCE conversation_history_id_seq OWNED BY NONE;
DROP TABLE conversation_history_0001;

ALTER TABLE conversation_history
    ADD CONSTRAINT conversation_history_pkey PRIMARY KEY (agent_name, session_id, seq);

-- A client-chosen message id is stored at most once per conversation.
CREATE UNIQUE INDEX ux_conversation_history_message_id
    ON conversation_history (agent_name, session_id, message_id)
    WHERE message_id IS NOT NULL;
