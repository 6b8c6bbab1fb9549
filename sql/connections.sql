-- Statements on a connection's own settings, never on data.

-- name: use_utf8_client_encoding
-- Talk UTF-8 on this connection, whatever client_encoding the DSN, the role or
-- the database chose: agentcore's text is Unicode, and psycopg encodes and
-- decodes it in the connection's client encoding.
SET client_encoding TO 'UTF8';

-- name: embedded_privacy_settings
-- What keeps the embedded server private, as it runs: checked after each start.
SELECT current_setting('listen_addresses'),
       current_setting('unix_socket_directories'),
       current_setting('unix_socket_permissions'),
       current_setting('hba_file'),
       current_setting('ident_file');

-- name: discard_prepared_statements
-- Forget every statement prepared on this connection, on the server and (psycopg
-- notices the command) in psycopg's cache: after a schema change made one of
-- their plans stale. Only on that failure path, never on a call that succeeds.
DEALLOCATE ALL;

-- name: server_backend_pid
-- The process id of the server backend this statement runs on. A connection
-- pooler between agentcore and the server (PgBouncer...) gives the client a
-- process id of its own, so a different one means statements must not be
-- prepared (their server session is not the client's).
SELECT pg_backend_pid();
