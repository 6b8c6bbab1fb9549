-- conversation_history.role checked by a domain instead of a table CHECK.
-- The same rule (one of system, user, assistant, tool), checked on every
-- insert and update as before, but cheaper: PostgreSQL reads a table CHECK's
-- expression from its stored text (stringToNode) and plans it again on every
-- INSERT statement, about 35,000 server instructions per append (a seventh of
-- a turn's append, counted by python -m bench.server_count --statements),
-- while a domain's check is read and planned once per connection and kept in
-- its type cache.
-- No table rewrite and no scan, whatever the table's size: the column changes
-- to a domain over its own type while the domain has no constraint yet
-- (binary-coercible, so only the catalog changes), and the constraint is then
-- added NOT VALID: every stored row already passed the identical CHECK that
-- this drops (ALTER DOMAIN ... VALIDATE CONSTRAINT would only confirm it).
-- ALTER TABLE holds the table's ACCESS EXCLUSIVE lock until commit, for a moment.
-- depends: 0005_hot_session_updates

CREATE DOMAIN message_role AS varchar(50);

ALTER TABLE conversation_history DROP CONSTRAINT conversation_history_role_check;

ALTER TABLE conversation_history ALTER COLUMN role TYPE message_role;

ALTER DOMAIN message_role ADD CONSTRAINT message_role_check
    CHECK (VALUE IN ('system', 'user', 'assistant', 'tool')) NOT VALID;
