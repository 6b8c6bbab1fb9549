-- Conversation metadata: a small JSON object per conversation that the
-- application sets (a title, the owning user under the key "owner", tags),
-- and an index to list one owner's conversations of an agent, most recently
-- written first, in the order list_sessions pages them.
-- depends: 0002_session_scoped_history

-- A constant default: no table rewrite, whatever the table's size.
ALTER TABLE conversation_sessions
    ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb;

-- Partial: conversations without an owner cost nothing here. The key order
-- is the page order (updated_at DESC, then session_id in code point order),
-- so a page is one index range scan with no sort.
CREATE INDEX ix_conversation_sessions_owner
    ON conversation_sessions (
        agent_name, (metadata ->> 'owner'), updated_at DESC, session_id COLLATE "C"
    )
    WHERE (metadata ->> 'owner') IS NOT NULL;

-- A partial index gets no statistics of its expression: without these the
-- planner guesses how many conversations an owner has (0.5% of the agent's),
-- and for a busy owner it would sort all of them instead of reading the
-- first page in index order. Collected by ANALYZE (autovacuum), PostgreSQL 14+.
CREATE STATISTICS st_conversation_sessions_owner
    ON (metadata ->> 'owner') FROM conversation_sessions;
