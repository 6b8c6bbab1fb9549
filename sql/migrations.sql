-- name: can_take_migration_lock
-- Whether the current role may insert into yoyo's lock table %(lock_table)s
-- (NULL while the table does not exist yet): without that right yoyo would
-- retry for the whole lock timeout instead of failing.
SELECT CASE
    WHEN to_regclass(%(lock_table)s) IS NULL THEN NULL
    ELSE has_table_privilege(%(lock_table)s, 'INSERT')
END;

-- name: migration_log_exists
-- Whether yoyo's log table %(log_table)s exists (it does once yoyo has run here).
SELECT to_regclass(%(log_table)s) IS NOT NULL;

-- name: newest_migration_operation
-- yoyo's newest logged operation: 'apply', 'rollback', 'mark' or 'unmark'.
SELECT operation FROM _yoyo_log ORDER BY created_at_utc DESC LIMIT 1;

-- name: count_session_conversations
-- How many conversations and messages are stored, on the session-scoped schema (0002).
SELECT count(DISTINCT (agent_name, session_id)), count(*) FROM conversation_history;

-- name: count_legacy_conversations
-- The same on the pre-session schema (0001 only), where each agent has one conversation.
SELECT count(DISTINCT agent_name), count(*) FROM conversation_history;

-- name: can_read_migration_state
-- Whether the current role may read yoyo's bookkeeping (tables %(tables)s: its
-- version, migrations and log), which says what is applied without yoyo's lock.
SELECT coalesce(bool_and(CASE
    WHEN to_regclass(t) IS NULL THEN false
    ELSE has_table_privilege(t, 'SELECT')
END), false)
FROM unnest(%(tables)s::text[]) AS t;
