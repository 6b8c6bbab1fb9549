-- Back to 0002: conversations lose their metadata (the messages are kept).

DROP STATISTICS st_conversation_sessions_owner;
DROP INDEX ix_conversation_sessions_owner;
ALTER TABLE conversation_sessions DROP COLUMN metadata;
