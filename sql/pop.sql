-- Removing a conversation's last message (the frameworks' "pop"): two
-- statements run in one round trip after lock_session, so one implicit
-- transaction. Each statement of it takes a new snapshot, which is why the
-- counter and the row are two statements, not one: pop_last_message must see
-- the rows of any append that pop_counter waited for.
-- On a Citus cluster pop_counter_distributed and pop_message_at_distributed
-- (sql/distributed.sql) run instead, in two round trips.

-- name: pop_counter
-- Count one message less, if there is any. The row lock waits for in-flight
-- appends (which lock the counter row, not lock_session) and holds off the
-- next ones until commit, so a concurrent pop counts down from this one's value.
-- updated_at moves only when more than a minute old, as on every write
-- (append_new_messages): the update stays HOT.
-- The choice is an array subscript, not a CASE: Citus refuses a non-immutable
-- function (now()) inside a CASE in an UPDATE of a distributed table; outside
-- one it evaluates now() on the coordinator (docs/scaling.md).
UPDATE conversation_sessions
SET next_seq = next_seq - 1,
    updated_at = (ARRAY[updated_at, now()])[
        1 + (now() - updated_at > interval '1 minute')::int
    ]
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s AND next_seq > 0;

-- name: pop_last_message
-- Delete and return the message at the counter's new value (the last one): a
-- primary key lookup, whatever the conversation's length. Nothing when
-- pop_counter found no message. The counter is a scalar subquery, not a
-- join: without statistics on a young table the planner joined the other
-- way round and scanned the whole conversation (38 ms at 10,000 messages).
DELETE FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s
  AND seq = (
      SELECT next_seq FROM conversation_sessions
      WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s
  )
RETURNING role, content, name, tool_calls::text, tool_call_id, metadata::text, message_id,
    created_at, item::text;
