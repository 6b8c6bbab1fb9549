-- Scoped state: key/value state kept per conversation, per owner (a user) of
-- an agent's conversations, and per agent, beside the conversations
-- themselves. Google ADK's session, user: and app: state live here
-- (agentcore.integrations.google_adk), through the ScopedStateStore port that
-- both repositories implement (agentcore/scoped_state.py). An event and the
-- state change it carries commit in one transaction (sql/scoped_state.sql).
-- A conversation's own state points at the conversation ON DELETE CASCADE:
-- deleting, clearing or purging the conversation (agentcore's idle purge)
-- deletes it; an owner's and an agent's state are shared and stay.
-- New tables only: no existing table is rewritten (the foreign key takes a
-- SHARE ROW EXCLUSIVE lock on conversation_sessions while it is added, on an
-- empty new table: no row to check).
-- depends: 0006_cached_role_check

-- One row per conversation that has scoped state: its own state, its owner
-- (the user whose user state it sees), a revision that every write with state
-- moves by one (a writer holding an older one is refused), and the caller's
-- own update time (a float, as ADK keeps it: double precision keeps a Python
-- float exactly).
CREATE TABLE session_state (
    agent_name varchar(255) NOT NULL,
    session_id varchar(255) NOT NULL,
    owner varchar(255) NOT NULL,
    state jsonb NOT NULL DEFAULT '{}'::jsonb,
    revision bigint NOT NULL DEFAULT 0 CHECK (revision >= 0),
    update_time double precision NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_name, session_id),
    FOREIGN KEY (agent_name, session_id)
        REFERENCES conversation_sessions (agent_name, session_id) ON DELETE CASCADE
);

-- Listing an agent's (or one owner's) sessions in update order reads one
-- range of this index.
CREATE INDEX ix_session_state_owner
    ON session_state (agent_name, owner, update_time, session_id COLLATE "C");

CREATE INDEX ix_session_state_recent
    ON session_state (agent_name, update_time, owner COLLATE "C", session_id COLLATE "C");

-- State shared by all the conversations of one owner of an agent.
CREATE TABLE owner_state (
    agent_name varchar(255) NOT NULL,
    owner varchar(255) NOT NULL,
    state jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (agent_name, owner)
);

-- State shared by all the conversations of an agent.
CREATE TABLE agent_state (
    agent_name varchar(255) NOT NULL PRIMARY KEY,
    state jsonb NOT NULL DEFAULT '{}'::jsonb
);
