-- On a Citus cluster, shard agentcore's tables by conversation: every table
-- about one conversation is distributed by its session id and co-located with
-- conversation_sessions, so that everything about one conversation (its row
-- in conversation_sessions, its messages in conversation_history, its ADK
-- state in session_state, its LangGraph checkpoints, channel versions and
-- writes, whose thread_id is the session id) lives on one shard, and every
-- statement on one conversation (it names agent_name and session_id,
-- sql/history.sql) is a router query: one shard, one task. Every unique key
-- and every foreign key between these tables already holds the session id, as
-- Citus requires: no key changes. owner_state (an owner's state, shared by
-- the owner's conversations) and agent_state (an agent's) belong to no one
-- conversation: they become reference tables, a copy on every node, so that
-- a conversation's shard joins them locally (sql/scoped_state.sql) and an
-- ADK append writes them in the conversation's transaction. Why, and what
-- that costs: docs/scaling.md.
-- Without the citus extension in this database nothing changes at all: the
-- tables stay plain PostgreSQL tables. Create the extension (and add the
-- workers) before this migration runs; on a database migrated before it,
-- docs/scaling.md says how to distribute afterwards.
-- depends: 0008_langgraph_checkpoints

DO $$
DECLARE
    tables text[] := ARRAY[
        'conversation_history', 'session_state', 'langgraph_checkpoints',
        'langgraph_checkpoint_blobs', 'langgraph_checkpoint_writes'
    ];
    item text;
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
    FOREACH item IN ARRAY tables LOOP
        PERFORM create_distributed_table(
            item,
            CASE WHEN item LIKE 'langgraph_%' THEN 'thread_id' ELSE 'session_id' END,
            colocate_with => 'conversation_sessions'
        );
    END LOOP;
    PERFORM create_reference_table('owner_state');
    PERFORM create_reference_table('agent_state');
    -- create_distributed_table and create_reference_table copied existing rows
    -- into the shards; the coordinator's own copies are no longer read and
    -- are removed, the referencing tables first.
    FOREACH item IN ARRAY tables || ARRAY['conversation_sessions', 'owner_state', 'agent_state']
    LOOP
        PERFORM truncate_local_data_after_distributing_table(item);
    END LOOP;
END
$$;
