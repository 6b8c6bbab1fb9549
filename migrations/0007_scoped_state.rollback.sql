-- Back to 0006: the scoped state tables and what they hold are dropped (the
-- conversations and their messages stay).

DROP TABLE agent_state;
DROP TABLE owner_state;
DROP TABLE session_state;
