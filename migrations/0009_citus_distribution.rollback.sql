-- Back to plain tables on the coordinator: the shards' rows are copied back
-- into conversation_history and conversation_sessions, which then stop being
-- distributed. Nothing happens where they were never distributed.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        RETURN;
    END IF;
    IF EXISTS (
        SELECT FROM pg_dist_partition WHERE logicalrelid = 'conversation_history'::regclass
    ) THEN
        PERFORM undistribute_table('conversation_history');
    END IF;
    IF EXISTS (
        SELECT FROM pg_dist_partition WHERE logicalrelid = 'conversation_sessions'::regclass
    ) THEN
        PERFORM undistribute_table('conversation_sessions');
    END IF;
END
$$;
