-- LangGraph checkpoints (agentcore.integrations.langgraph.AgentcoreSaver).
-- A thread is an agentcore conversation: (agent_name, session_id = thread_id)
-- in conversation_sessions, and the messages of its messages channels are
-- rows of conversation_history, each written once. A checkpoint keeps its
-- other channels' values per version, written only when the version changes,
-- and for a messages channel the seq ranges of the conversation's rows that
-- make up that version's list (docs/integrations.md). Every table points at
-- the conversation ON DELETE CASCADE: deleting or purging the conversation
-- (agentcore's idle purge) deletes its checkpoints.
-- depends: 0007_scoped_state

CREATE TABLE langgraph_checkpoints (
    agent_name varchar(255) NOT NULL,
    thread_id varchar(255) NOT NULL,
    checkpoint_ns text NOT NULL DEFAULT '',
    checkpoint_id text NOT NULL,
    parent_checkpoint_id text,
    -- The checkpoint without the channel values stored in
    -- langgraph_checkpoint_blobs (None, str, int, float and bool stay inline).
    checkpoint jsonb NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (agent_name, thread_id, checkpoint_ns, checkpoint_id),
    FOREIGN KEY (agent_name, thread_id)
        REFERENCES conversation_sessions (agent_name, session_id) ON DELETE CASCADE
);

CREATE TABLE langgraph_checkpoint_blobs (
    agent_name varchar(255) NOT NULL,
    thread_id varchar(255) NOT NULL,
    checkpoint_ns text NOT NULL DEFAULT '',
    channel text NOT NULL,
    version text NOT NULL,
    -- The serializer's type tag; 'empty' for a channel without a value, and
    -- 'agentcore.messages' for a list of messages kept as conversation rows.
    type text NOT NULL,
    blob bytea,
    -- For 'agentcore.messages': the seq ranges of the conversation's rows
    -- that make up the list, in order.
    messages int8multirange,
    PRIMARY KEY (agent_name, thread_id, checkpoint_ns, channel, version),
    FOREIGN KEY (agent_name, thread_id)
        REFERENCES conversation_sessions (agent_name, session_id) ON DELETE CASCADE
);

CREATE TABLE langgraph_checkpoint_writes (
    agent_name varchar(255) NOT NULL,
    thread_id varchar(255) NOT NULL,
    checkpoint_ns text NOT NULL DEFAULT '',
    checkpoint_id text NOT NULL,
    task_id text NOT NULL,
    idx integer NOT NULL,
    channel text NOT NULL,
    type text,
    blob bytea NOT NULL,
    task_path text NOT NULL DEFAULT '',
    PRIMARY KEY (agent_name, thread_id, checkpoint_ns, checkpoint_id, task_id, idx),
    FOREIGN KEY (agent_name, thread_id)
        REFERENCES conversation_sessions (agent_name, session_id) ON DELETE CASCADE
);
