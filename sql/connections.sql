-- Statements on a connection's own settings, never on data.

-- name: use_utf8_client_encoding
-- Talk UTF-8 on this connection, whatever client_encoding the DSN, the role or
-- the database chose: agentcore's text is Unicode, and psycopg encodes and
-- decodes it in the connection's client encoding.
SET client_encoding TO 'UTF8';
