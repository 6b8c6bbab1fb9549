-- The pre-session schema agentcore grew from: history keyed by agent name only.
-- IF NOT EXISTS: on a database the predecessor created, this records the table
-- as agentcore's and 0002 then keeps its rows (under the session '__legacy__').
CREATE TABLE IF NOT EXISTS conversation_history (
    id bigserial PRIMARY KEY,
    agent_name varchar(255) NOT NULL,
    role varchar(50) NOT NULL,
    content text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS ix_conversation_history_agent_name ON conversation_history (agent_name);
