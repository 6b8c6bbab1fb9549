-- Back to plain tables on the coordinator: the shards' rows (and the
-- reference tables' copy) are copied back into each table, which then stops
-- being distributed. The tables joined by foreign keys (conversation_sessions,
-- session_state, the LangGraph tables) go together (cascade_via_foreign_keys):
-- Citus undistributes none of them alone. Nothing happens where they were
-- never distributed.

DO $$
DECLARE
    item text;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        RETURN;
    END IF;
    FOREACH item IN ARRAY ARRAY[
        'conversation_sessions', 'conversation_history', 'owner_state', 'agent_state'
    ] LOOP
        IF EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = item::regclass) THEN
            PERFORM undistribute_table(item, cascade_via_foreign_keys => true);
        END IF;
    END LOOP;
END
$$;
