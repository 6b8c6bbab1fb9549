-- Back to 0005: the table CHECK on conversation_history.role, and no domain.
-- Unlike 0006 itself, this rewrites conversation_history (under an ACCESS
-- EXCLUSIVE lock, for as long as copying the table takes): PostgreSQL cannot
-- turn a column of a domain over varchar(50) back into varchar(50) in place.

ALTER TABLE conversation_history ALTER COLUMN role TYPE varchar(50);

ALTER TABLE conversation_history ADD CONSTRAINT conversation_history_role_check
    CHECK (role IN ('system', 'user', 'assistant', 'tool'));

DROP DOMAIN message_role;
