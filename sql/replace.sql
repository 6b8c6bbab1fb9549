-- Replacing a conversation's last messages if they are unchanged
-- (replace_last_messages, a compare-and-swap for compaction). One READ
-- COMMITTED transaction, begun with begin_read_committed, in two round trips:
--   1. lock_session, lock_counter, load_last_messages: the stored tail, read
--      under both locks that writers of the conversation take;
--   2. when it equals the expected one: cut_last_messages, then the append
--      statements of sql/history.sql (one per part of the batch), then commit.
-- Each statement takes a new snapshot, which is why the counter's lock and the
-- read are two statements (as in sql/pop.sql): the read must see the rows of
-- the appends that lock_counter waited for.
-- On a Citus cluster the write is sql/distributed.sql's (set_counter_distributed,
-- delete_messages_from_distributed, the new rows), after the same read.

-- name: lock_counter
-- Lock the conversation's counter row until the transaction ends. A plain
-- append (append_new_messages) locks this row, not lock_session: this waits
-- for the ones in flight and holds off the next ones, which then count on
-- from the replaced tail. Nothing is locked when the conversation is not stored.
SELECT next_seq
FROM conversation_sessions
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s
FOR UPDATE;

-- name: cut_last_messages
-- Remove the conversation's last %(message_count)s messages and count them
-- off, so that the appends that follow store their replacement in their place
-- (seq stays gap-free). Only after lock_counter and the caller's check that
-- there are that many. updated_at moves as an append moves it.
WITH counter AS (
    UPDATE conversation_sessions AS s
    SET next_seq = s.next_seq - %(message_count)s,
        updated_at = CASE
            WHEN s.updated_at < now() - interval '1 minute' THEN now() ELSE s.updated_at
        END
    WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s
    RETURNING s.next_seq
)
DELETE FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s
  AND seq >= (SELECT next_seq FROM counter);
