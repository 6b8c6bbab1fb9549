-- The pre-session schema agentcore grew from: history keyed by agent name only.
CREATE TABLE conversation_history (
    id bigserial PRIMARY KEY,
    agent_name varchar(255) NOT NULL,
    role varchar(50) NOT NULL,
    content text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX ix_conversation_history_agent_name ON conversation_history (agent_name);
