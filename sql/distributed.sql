-- The statements on one conversation that a Citus cluster runs instead of
-- the single-server ones (docs/scaling.md). The repository picks them once,
-- when the citus extension is in the database (citus_installed).
--
-- Citus plans a prepared statement once for every execution (a generic plan)
-- only when it is a single-table statement whose WHERE names the distribution
-- column (session_id) with a value: a "fast path" router query, sent whole
-- to the one shard that holds the conversation, or an INSERT ... VALUES. A
-- subquery, a CTE or an INSERT ... SELECT gets no generic plan, and the
-- appends' CTE feeding INSERT ... SELECT went through the coordinator
-- (pulled there, then copied back). So here every statement reads or writes
-- one table of one conversation, and what the single-server statements
-- compute inside one statement (the counter's value for the new rows, the
-- position of the last message) comes back to the client in the first round
-- trip of a transaction and is sent with the second. The counter row's lock,
-- taken by the first statement that writes it, holds off every other writer
-- of the conversation until commit, as on one server.

-- name: load_last_messages_distributed
-- load_last_messages with the limit as a plain parameter: on a coordinator
-- the subquery form gets no generic plan at all, and the limit costs the
-- coordinator's plan nothing (its choice is the shard, not the scan).
SELECT role, content, name, tool_calls::text, tool_call_id, metadata::text, message_id, created_at,
    item::text
FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s
ORDER BY seq DESC
LIMIT %(limit)s;

-- name: load_messages_before_distributed
-- load_messages_before with the limit as a plain parameter (see
-- load_last_messages_distributed).
SELECT role, content, name, tool_calls::text, tool_call_id, metadata::text, message_id,
       created_at, item::text, seq
FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s AND seq < %(before)s
ORDER BY seq DESC
LIMIT %(limit)s;

-- name: load_messages_from_distributed
-- load_messages_from (an export's batch) with the limit as a plain parameter
-- (see load_last_messages_distributed).
SELECT role, content, name, tool_calls::text, tool_call_id, metadata::text, message_id,
       created_at, item::text
FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s AND seq >= %(start)s
ORDER BY seq
LIMIT %(limit)s;

-- name: claim_counter_distributed
-- The first write of an append: count %(message_count)s messages more
-- (creating the conversation's row if needed) and return the position of the
-- first of them. The row stays locked until commit, so no other writer
-- counts from the same value. With 0 (an append whose ids are checked
-- first) it only creates or locks the row and returns the counter; updated_at
-- moves only with messages counted, when more than a minute old (as in
-- append_new_messages).
INSERT INTO conversation_sessions AS s (agent_name, session_id, next_seq)
VALUES (%(agent_name)s, %(session_id)s, %(message_count)s)
ON CONFLICT (agent_name, session_id) DO UPDATE
    SET next_seq = s.next_seq + excluded.next_seq,
        updated_at = CASE
            WHEN excluded.next_seq > 0 AND excluded.updated_at - s.updated_at > interval '1 minute'
                THEN excluded.updated_at
            ELSE s.updated_at
        END
RETURNING s.next_seq - %(message_count)s;

-- name: set_counter_distributed
-- Point the conversation's counter, locked by this transaction's earlier
-- statement, at %(next_seq)s: after an append whose ids were checked, or a
-- replacement of the last messages. updated_at moves as an append moves it
-- (an array subscript, not a CASE: see pop_counter).
UPDATE conversation_sessions
SET next_seq = %(next_seq)s,
    updated_at = (ARRAY[updated_at, now()])[
        1 + (now() - updated_at > interval '1 minute')::int
    ]
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s;

-- name: stored_message_ids_distributed
-- Which of the ids %(message_ids)s this conversation already stores, and
-- where: an append skips them (exactly-once), a replacement skips those
-- before the tail it cuts. After lock_session, so every earlier writer's rows
-- are seen.
SELECT message_id, seq
FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s
  AND message_id = ANY(%(message_ids)s::text[]);

-- name: insert_plain_message_distributed
-- One plain message (a role and a text) at position %(seq)s; the columns not
-- given take their defaults, as in append_plain_messages.
INSERT INTO conversation_history (agent_name, session_id, seq, role, content)
VALUES (%(agent_name)s, %(session_id)s, %(seq)s::bigint, %(role_0)s::text, %(content_0)s::text);

-- name: insert_plain_messages_distributed
-- Two plain messages at positions %(seq)s and the next: a turn's input and
-- its reply, one statement.
INSERT INTO conversation_history (agent_name, session_id, seq, role, content)
VALUES
    (%(agent_name)s, %(session_id)s, %(seq)s::bigint, %(role_0)s::text, %(content_0)s::text),
    (%(agent_name)s, %(session_id)s, %(seq)s::bigint + 1, %(role_1)s::text, %(content_1)s::text);

-- name: pop_counter_distributed
-- pop_counter returning the counter's new value: the position of the message
-- that pop_message_at_distributed deletes. No row when there is no message.
UPDATE conversation_sessions
SET next_seq = next_seq - 1,
    updated_at = (ARRAY[updated_at, now()])[
        1 + (now() - updated_at > interval '1 minute')::int
    ]
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s AND next_seq > 0
RETURNING next_seq;

-- name: pop_message_at_distributed
-- Delete and return the message at position %(seq)s: a primary key lookup.
DELETE FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s AND seq = %(seq)s
RETURNING role, content, name, tool_calls::text, tool_call_id, metadata::text, message_id,
    created_at, item::text;

-- name: delete_messages_from_distributed
-- Remove the conversation's messages from position %(start)s on: the tail a
-- replacement cuts, under lock_counter, after set_counter_distributed.
DELETE FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s AND seq >= %(start)s;
