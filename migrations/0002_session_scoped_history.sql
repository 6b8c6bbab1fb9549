-- Session-scoped history: every message belongs to (agent_name, session_id) and
-- has a gap-free position seq in its conversation. Rows written before sessions
-- existed are kept under the session id '__legacy__', in their original order.
-- depends: 0001_conversation_history

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

ALTER TABLE conversation_history
    ADD COLUMN session_id varchar(255),
    ADD COLUMN seq bigint,
    ADD COLUMN name text,
    ADD COLUMN tool_calls jsonb,
    ADD COLUMN tool_call_id text,
    ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN message_id varchar(255),
    ALTER COLUMN content DROP NOT NULL;

-- The 0001 schema accepted any role, any agent name and any time; agentcore
-- reads back only valid messages under addressable names. A row's role is
-- read case- and space-insensitively: the synonyms of assistant (ai, bot,
-- model) become assistant, system stays system, anything else (function,
-- human, and tool, since 0001 rows carry no tool_call_id) becomes user; a
-- changed role is kept in metadata.legacy_role. An agent name that is empty or
-- only whitespace (Python's notion of it, which agentcore applies to names)
-- moves to '__legacy_unnamed__', kept in metadata.legacy_agent_name. The
-- rollback restores both.
UPDATE conversation_history
SET metadata = jsonb_build_object('legacy_role', role),
    role = CASE
        WHEN lower(btrim(role)) IN ('assistant', 'ai', 'bot', 'model') THEN 'assistant'
        WHEN lower(btrim(role)) = 'system' THEN 'system'
        ELSE 'user'
    END
WHERE role NOT IN ('system', 'user', 'assistant');

UPDATE conversation_history
SET metadata = metadata || jsonb_build_object('legacy_agent_name', agent_name),
    agent_name = '__legacy_unnamed__'
WHERE agent_name ~ '^[\t\n\v\f\r\x1c-\x1f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$';

ALTER TABLE conversation_history
    ADD CONSTRAINT conversation_history_role_check
    CHECK (role IN ('system', 'user', 'assistant', 'tool'));

-- Keep the pre-session rows: one legacy conversation per agent, in the order
-- they were written.
UPDATE conversation_history AS h
SET session_id = '__legacy__', seq = o.seq
FROM (
    SELECT id, row_number() OVER (PARTITION BY agent_name ORDER BY created_at, id) - 1 AS seq
    FROM conversation_history
) AS o
WHERE h.id = o.id;

-- Python reads years 1 to 9999 only: a time outside what agentcore accepts
-- (infinity, year 0001-01-01, BC dates...) is clamped into that range, after
-- the rows were numbered in their true order, and kept as text in
-- metadata.legacy_created_at (UTC, ISO style) for the rollback.
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO';
UPDATE conversation_history
SET metadata = metadata || jsonb_build_object('legacy_created_at', created_at::text),
    created_at = least(greatest(created_at, '0001-01-08 00:00:00+00'), '9999-12-24 00:00:00+00')
WHERE created_at NOT BETWEEN '0001-01-08 00:00:00+00' AND '9999-12-24 00:00:00+00';

INSERT INTO conversation_sessions (agent_name, session_id, next_seq, created_at, updated_at)
SELECT agent_name, '__legacy__', count(*), min(created_at), max(created_at)
FROM conversation_history
GROUP BY agent_name;

-- The old surrogate id is kept only for the legacy rows (so a rollback gives
-- them back unchanged); new rows leave it NULL and pay nothing for it.
ALTER TABLE conversation_history DROP CONSTRAINT conversation_history_pkey;
ALTER TABLE conversation_history ALTER COLUMN id DROP NOT NULL;
ALTER TABLE conversation_history ALTER COLUMN id DROP DEFAULT;
ALTER TABLE conversation_history RENAME COLUMN id TO legacy_id;
ALTER SEQUENCE conversation_history_id_seq OWNED BY NONE;
DROP INDEX ix_conversation_history_agent_name;

ALTER TABLE conversation_history
    ALTER COLUMN session_id SET NOT NULL,
    ALTER COLUMN seq SET NOT NULL,
    ADD CONSTRAINT conversation_history_pkey PRIMARY KEY (agent_name, session_id, seq);

-- A client-chosen message id is stored at most once per conversation.
CREATE UNIQUE INDEX ux_conversation_history_message_id
    ON conversation_history (agent_name, session_id, message_id)
    WHERE message_id IS NOT NULL;
