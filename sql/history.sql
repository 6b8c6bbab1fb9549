-- Statements on one conversation, always named by (agent_name, session_id):
-- every statement carries the full key, so the tables can be sharded by
-- session_id later without changing a query.
-- updated_at never moves backwards: now() is when a transaction began, and a
-- writer that waited for the conversation's lock began before the one it
-- waited for committed. It moves only when it is more than a minute old
-- (the same rule in agentcore/memory.py): updated_at is indexed, so moving it
-- on every turn made every update of the counter row a non-HOT update (a new
-- index entry in each of three indexes, a dead tuple); now the updates of a
-- minute are HOT (fillfactor 90, migration 0005).
-- In an upsert's DO UPDATE the rule reads "excluded.updated_at -
-- s.updated_at > 1 minute", excluded.updated_at being the inserted row's
-- default, now(): the same test as "s.updated_at < now() - 1 minute", but
-- written with immutable operators only, which Citus requires in DO UPDATE
-- SET on a distributed table (docs/scaling.md).
-- On a Citus cluster load_last_messages and the appends have the forms of
-- sql/distributed.sql instead.

-- name: begin_read_committed
-- Start a multi-statement write's transaction at READ COMMITTED, whatever
-- default_transaction_isolation a DBA set: each statement must see the rows
-- of every writer that committed before it took the conversation's lock
-- (under REPEATABLE READ the snapshot predates the lock, so the "already
-- stored?" check and the deletes would miss them, and the counter update
-- fails with a serialization error). Read-only defaults still apply.
BEGIN ISOLATION LEVEL READ COMMITTED;

-- name: commit
-- End a write started with begin_read_committed.
COMMIT;

-- name: lock_session
-- Serialize the writers of one conversation until the transaction ends. Taken
-- before any write so the next statement's snapshot sees every earlier writer.
-- Two conversations whose hashes collide only wait for each other.
SELECT pg_advisory_xact_lock(hashtext(%(agent_name)s), hashtext(%(session_id)s));

-- name: load_last_messages
-- The last %(limit)s messages (all when NULL), newest first: one backward scan
-- of the primary key. The caller reverses them to oldest-first. The jsonb
-- columns come back as text: decoding them in Python is cheaper than psycopg's
-- generic jsonb loader, and an empty metadata object costs no decoding at all.
-- The limit is a subquery, not a bare parameter, so that the prepared
-- statement runs on one generic plan: the planner estimates a LIMIT it
-- cannot see as a tenth of the rows, in the generic plan only when it is a
-- parameter (so that plan always looked dearer than a custom one, and every
-- execution was planned again: a third of a load's server instructions, counted
-- by python -m bench.server_count), and in every plan when it is a subquery.
SELECT role, content, name, tool_calls::text, tool_call_id, metadata::text, message_id, created_at,
    item::text
FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s
ORDER BY seq DESC
LIMIT (SELECT %(limit)s::bigint);

-- name: append_messages
-- Append a JSON array of messages after the last one, in order. Messages whose
-- id is already stored in this conversation are skipped; the counter in
-- conversation_sessions advances by the number actually inserted, so seq stays
-- gap-free. The counter upsert locks the conversation's row against other
-- writers; when the batch carries ids, lock_session runs first in the same
-- transaction so that the "already stored?" check sees every earlier writer.
-- The array is json, not jsonb, so that an exact item keeps its text. An item
-- holding U+0000 or a lone surrogate (escapes that -> cannot decode) comes
-- as its JSON text in a string, item_json (agentcore/exact_json.py).
WITH batch AS (
    SELECT m.value AS msg, m.ordinality AS ord
    FROM json_array_elements(%(messages)s::json) WITH ORDINALITY AS m
),
fresh AS (
    SELECT b.msg, row_number() OVER (ORDER BY b.ord) AS n
    FROM batch AS b
    -- A lateral lookup with LIMIT, not NOT EXISTS: the planner may turn NOT
    -- EXISTS into a hash anti-join that reads every stored row of the
    -- conversation (it did, in the generic plan of the prepared statement:
    -- 11-60x slower at 200,000 messages). A correlated LIMIT 1 subquery can
    -- only run as a nested loop, once per new message, and the cheapest
    -- inner path for three equalities is the unique index
    -- ux_conversation_history_message_id, whatever the parameters.
    LEFT JOIN LATERAL (
        SELECT true AS stored
        FROM conversation_history AS h
        WHERE h.agent_name = %(agent_name)s
          AND h.session_id = %(session_id)s
          AND h.message_id = b.msg ->> 'id'
        LIMIT 1
    ) AS known ON true
    WHERE known.stored IS NULL
),
counter AS (
    INSERT INTO conversation_sessions AS s (agent_name, session_id, next_seq)
    SELECT %(agent_name)s, %(session_id)s, count(*) FROM fresh HAVING count(*) > 0
    ON CONFLICT (agent_name, session_id) DO UPDATE
        SET next_seq = s.next_seq + excluded.next_seq,
            updated_at = CASE
                WHEN excluded.updated_at - s.updated_at > interval '1 minute' THEN excluded.updated_at
                ELSE s.updated_at
            END
    RETURNING s.next_seq - (SELECT count(*) FROM fresh) AS first_seq
)
INSERT INTO conversation_history (
    agent_name, session_id, seq, role, content, name, tool_calls, tool_call_id,
    metadata, message_id, created_at, item
)
SELECT
    %(agent_name)s,
    %(session_id)s,
    counter.first_seq + fresh.n - 1,
    fresh.msg ->> 'role',
    fresh.msg ->> 'content',
    fresh.msg ->> 'name',
    (fresh.msg -> 'tool_calls')::jsonb,
    fresh.msg ->> 'tool_call_id',
    coalesce((fresh.msg -> 'metadata')::jsonb, '{}'::jsonb),
    fresh.msg ->> 'id',
    coalesce((fresh.msg ->> 'created_at')::timestamptz, now()),
    coalesce(fresh.msg -> 'item', (fresh.msg ->> 'item_json')::json)
FROM fresh CROSS JOIN counter;

-- name: append_new_messages
-- Append a JSON array of %(message_count)s messages that carry no id after the
-- last one, in order (the common case: a turn). Nothing to deduplicate, so it
-- reads no stored message: the counter upsert alone advances seq and locks the
-- conversation's row against other writers until commit. Measured at about
-- half the server time of append_messages (docs/performance.md). The array is
-- json, not jsonb, so that an exact item keeps its text; item_json as in
-- append_messages.
WITH counter AS (
    INSERT INTO conversation_sessions AS s (agent_name, session_id, next_seq)
    VALUES (%(agent_name)s, %(session_id)s, %(message_count)s)
    ON CONFLICT (agent_name, session_id) DO UPDATE
        SET next_seq = s.next_seq + excluded.next_seq,
            updated_at = CASE
                WHEN excluded.updated_at - s.updated_at > interval '1 minute' THEN excluded.updated_at
                ELSE s.updated_at
            END
    RETURNING s.next_seq - %(message_count)s AS first_seq
)
INSERT INTO conversation_history (
    agent_name, session_id, seq, role, content, name, tool_calls, tool_call_id,
    metadata, created_at, item
)
SELECT
    %(agent_name)s,
    %(session_id)s,
    counter.first_seq + m.ordinality - 1,
    m.value ->> 'role',
    m.value ->> 'content',
    m.value ->> 'name',
    (m.value -> 'tool_calls')::jsonb,
    m.value ->> 'tool_call_id',
    coalesce((m.value -> 'metadata')::jsonb, '{}'::jsonb),
    coalesce((m.value ->> 'created_at')::timestamptz, now()),
    coalesce(m.value -> 'item', (m.value ->> 'item_json')::json)
FROM counter
CROSS JOIN json_array_elements(%(messages)s::json) WITH ORDINALITY AS m;

-- name: append_plain_messages
-- Append %(message_count)s messages (one or two) that carry only a role and a
-- text, after the last one, in order: most turns (an input and its reply).
-- append_new_messages with the texts as plain parameters instead of a JSON
-- array, which the client need not encode nor the server parse
-- (docs/performance.md); the columns not given take their defaults ('{}'
-- metadata, now() as created_at), as append_new_messages stores them.
WITH counter AS (
    INSERT INTO conversation_sessions AS s (agent_name, session_id, next_seq)
    VALUES (%(agent_name)s, %(session_id)s, %(message_count)s)
    ON CONFLICT (agent_name, session_id) DO UPDATE
        SET next_seq = s.next_seq + excluded.next_seq,
            updated_at = CASE
                WHEN excluded.updated_at - s.updated_at > interval '1 minute' THEN excluded.updated_at
                ELSE s.updated_at
            END
    RETURNING s.next_seq - %(message_count)s AS first_seq
)
INSERT INTO conversation_history (agent_name, session_id, seq, role, content)
SELECT %(agent_name)s, %(session_id)s, counter.first_seq + m.n, m.role, m.content
FROM counter
CROSS JOIN (
    VALUES (0, %(role_0)s::text, %(content_0)s::text), (1, %(role_1)s::text, %(content_1)s::text)
) AS m (n, role, content)
WHERE m.n < %(message_count)s;

-- name: reset_session
-- Point the conversation's counter at %(message_count)s messages, creating the
-- row if needed. Its row lock makes in-flight appends finish first, so the
-- delete_messages that follows sees their rows.
INSERT INTO conversation_sessions AS s (agent_name, session_id, next_seq)
VALUES (%(agent_name)s, %(session_id)s, %(message_count)s)
ON CONFLICT (agent_name, session_id) DO UPDATE
    SET next_seq = excluded.next_seq,
        updated_at = CASE
            WHEN excluded.updated_at - s.updated_at > interval '1 minute' THEN excluded.updated_at
            ELSE s.updated_at
        END;

-- name: transaction_time
-- The transaction's time (now()), used for messages that carry none: a
-- statement of its own, not a RETURNING now() of the write beside it, which
-- Citus refuses on a distributed table (docs/scaling.md). It reads no table.
SELECT now();

-- name: delete_session
-- Remove the conversation's counter row. Like reset_session, it waits for
-- in-flight appends, so the delete_messages that follows sees their rows.
DELETE FROM conversation_sessions
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s;

-- name: delete_messages
-- Remove every message of the conversation. Runs after reset_session or
-- delete_session in the same transaction, never before them.
DELETE FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s;

-- name: copy_messages
-- Bulk-load a replaced conversation's rows, after delete_messages.
COPY conversation_history (
    agent_name, session_id, seq, role, content, name, tool_calls, tool_call_id,
    metadata, message_id, created_at, item
) FROM STDIN;

-- name: get_message
-- The message with client-chosen id %(message_id)s, if stored: a point lookup
-- on the unique index ux_conversation_history_message_id, whatever the
-- conversation's length.
SELECT role, content, name, tool_calls::text, tool_call_id, metadata::text, message_id, created_at,
    item::text
FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s AND message_id = %(message_id)s;
