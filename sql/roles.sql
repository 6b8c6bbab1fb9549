-- Roles of the CLI's embedded database (never run on a database given by DSN).

-- name: create_embedded_app_role
-- The embedded database's least-privilege role for applications, made once; it
-- logs in by peer authentication (only the account that started the server may),
-- so it has no password.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'agentcore_app') THEN
        CREATE ROLE agentcore_app LOGIN;
    END IF;
END
$$;

-- name: grant_embedded_app_role
-- The rights of docs/operations.md's least-privilege role, on the embedded
-- database (its database is postgres): rows of agentcore's tables, and reading
-- yoyo's bookkeeping; granting again changes nothing.
GRANT CONNECT ON DATABASE postgres TO agentcore_app;
GRANT USAGE ON SCHEMA public TO agentcore_app;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON conversation_sessions, conversation_history, session_state, owner_state, agent_state
    TO agentcore_app;
GRANT SELECT ON _yoyo_migration, _yoyo_log, _yoyo_version, yoyo_lock TO agentcore_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO agentcore_app;
