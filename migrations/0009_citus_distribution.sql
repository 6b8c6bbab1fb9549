-- On a Citus cluster, shard agentcore's tables by conversation: both tables
-- are distributed by session_id and co-located, so that everything about one
-- conversation (its row in conversation_sessions, every message in
-- conversation_history) lives on one shard, and every statement on one
-- conversation (it names agent_name and session_id, sql/history.sql) is a
-- router query: one shard, one task. Every unique key already holds
-- session_id ((agent_name, session_id), (agent_name, session_id, seq),
-- (agent_name, session_id, message_id)): no key changes. Why session_id and
-- not the agent, and what that costs: docs/scaling.md.
-- Without the citus extension in this database nothing changes at all: the
-- tables stay plain PostgreSQL tables. Create the extension (and add the
-- workers) before this migration runs; on a database migrated before it,
-- docs/scaling.md says how to distribute afterwards.
-- depends: 0008_langgraph_checkpoints

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        RETURN;
    END IF;
    -- Already distributed (by hand, as docs/scaling.md shows): nothing to do.
    IF EXISTS (
        SELECT FROM pg_dist_partition WHERE logicalrelid = 'conversation_sessions'::regclass
    ) THEN
        RETURN;
    END IF;
    PERFORM create_distributed_table('conversation_sessions', 'session_id');
    PERFORM create_distributed_table(
        'conversation_history', 'session_id', colocate_with => 'conversation_sessions'
    );
    -- create_distributed_table copied existing rows into the shards; the
    -- coordinator's own copies are no longer read and are removed.
    PERFORM truncate_local_data_after_distributing_table('conversation_history');
    PERFORM truncate_local_data_after_distributing_table('conversation_sessions');
END
$$;
