-- The narrow reference turn (contender "narrow"): the narrowest correct
-- hand-written design, in its own table. Order within a conversation comes
-- from the identity column (one sequence, no per-conversation counter row);
-- seq is kept as a plain column, as a caller would store it. No ids, no
-- metadata, no tool calls: it shows what agentcore's schema and SQL cost.

-- name: narrow_create_table
-- The narrow design's table (created once per bench database).
CREATE TABLE IF NOT EXISTS bench_narrow_history (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_name text NOT NULL,
    session_id text NOT NULL,
    seq integer NOT NULL,
    role text NOT NULL,
    content text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- name: narrow_create_index
-- Its one secondary index: a conversation's messages in insertion order.
CREATE INDEX IF NOT EXISTS ix_bench_narrow_history_session
    ON bench_narrow_history (agent_name, session_id, id);

-- name: narrow_seed
-- %(history)s alternating user/assistant messages per session '0'..'(sessions-1)'.
INSERT INTO bench_narrow_history (agent_name, session_id, seq, role, content)
SELECT
    %(agent_name)s,
    s::text,
    g,
    CASE WHEN mod(g, 2) = 0 THEN 'user' ELSE 'assistant' END,
    CASE WHEN mod(g, 2) = 0 THEN %(user_content)s::text ELSE %(assistant_content)s::text END
FROM generate_series(0, %(sessions)s - 1) AS s
CROSS JOIN generate_series(0, %(history)s - 1) AS g;

-- name: narrow_analyze
-- Planner statistics after seeding.
ANALYZE bench_narrow_history;

-- name: narrow_load
-- The last %(limit)s messages of the session, newest first (one backward index scan).
SELECT seq, role, content, created_at
FROM bench_narrow_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s
ORDER BY id DESC
LIMIT %(limit)s;

-- name: narrow_append
-- The turn's two messages, in one two-row INSERT.
INSERT INTO bench_narrow_history (agent_name, session_id, seq, role, content)
VALUES
    (%(agent_name)s, %(session_id)s, %(user_seq)s, 'user', %(user_content)s),
    (%(agent_name)s, %(session_id)s, %(assistant_seq)s, 'assistant', %(assistant_content)s);
