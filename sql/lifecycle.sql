-- A conversation's life beyond its turns: read backwards page by page, copy,
-- purge when idle, export and import. Every statement on one conversation
-- names it by (agent_name, session_id), like sql/history.sql.

-- name: load_messages_before
-- Up to %(limit)s messages before position %(before)s, newest first, with
-- their positions: one backward range scan of the primary key. The limit is
-- a subquery so that one generic plan serves (see load_last_messages).
SELECT role, content, name, tool_calls::text, tool_call_id, metadata::text, message_id,
       created_at, item::text, seq
FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s AND seq < %(before)s
ORDER BY seq DESC
LIMIT (SELECT %(limit)s::bigint);

-- name: load_messages_from
-- Up to %(limit)s messages from position %(start)s on, oldest first: one
-- forward range scan of the primary key (an export's batch). The limit is a
-- subquery so that one generic plan serves (see load_last_messages).
SELECT role, content, name, tool_calls::text, tool_call_id, metadata::text, message_id,
       created_at, item::text
FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s AND seq >= %(start)s
ORDER BY seq
LIMIT (SELECT %(limit)s::bigint);

-- name: copy_session
-- Copy a conversation's messages (every column but the key) and its metadata
-- to the new conversation %(session_id)s (whose advisory lock lock_session
-- took first, for appends that deduplicate by id), all in this one statement.
-- The messages are those of the statement's snapshot, a gap-free prefix
-- (appends to one conversation commit in seq order), cut at %(up_to_count)s
-- messages or at the message %(up_to_id)s when given. An existing target
-- inserts nothing (ON CONFLICT waits for a concurrent creator). Reports
-- whether the source and the message up_to_id exist, and what was inserted.
WITH source AS (
    SELECT metadata
    FROM conversation_sessions
    WHERE agent_name = %(agent_name)s AND session_id = %(source_session_id)s
),
cut AS (
    SELECT seq
    FROM conversation_history
    WHERE agent_name = %(agent_name)s AND session_id = %(source_session_id)s
      AND message_id = %(up_to_id)s
),
picked AS (
    SELECT h.*
    FROM conversation_history AS h
    WHERE h.agent_name = %(agent_name)s AND h.session_id = %(source_session_id)s
      AND h.seq < coalesce(%(up_to_count)s::bigint, 9223372036854775807)
      AND (%(up_to_id)s::text IS NULL OR h.seq <= (SELECT seq FROM cut))
),
target AS (
    INSERT INTO conversation_sessions (agent_name, session_id, next_seq, metadata)
    SELECT %(agent_name)s, %(session_id)s, (SELECT count(*) FROM picked), source.metadata
    FROM source
    WHERE %(up_to_id)s::text IS NULL OR EXISTS (SELECT 1 FROM cut)
    ON CONFLICT (agent_name, session_id) DO NOTHING
    RETURNING next_seq
),
copied AS (
    INSERT INTO conversation_history (
        agent_name, session_id, seq, role, content, name, tool_calls, tool_call_id,
        metadata, message_id, created_at, item
    )
    SELECT p.agent_name, %(session_id)s, p.seq, p.role, p.content, p.name, p.tool_calls,
           p.tool_call_id, p.metadata, p.message_id, p.created_at, p.item
    FROM picked AS p
    CROSS JOIN target
    RETURNING 1
)
SELECT
    EXISTS (SELECT 1 FROM source),
    %(up_to_id)s::text IS NULL OR EXISTS (SELECT 1 FROM cut),
    EXISTS (SELECT 1 FROM target),
    (SELECT count(*) FROM copied);

-- name: idle_cutoff
-- The time before which a conversation last written counts as idle, on the
-- server's clock (the one updated_at is written with). updated_at lags the
-- last write by up to a minute (it moves only when more than a minute old):
-- a minute more keeps a conversation written within idle_for, whatever
-- idle_for (0 included), from ever being purged.
SELECT now() - %(idle_for)s::interval - interval '1 minute';

-- name: list_agents
-- Every agent that has a conversation: a loose index scan of the primary
-- key (one index descent per agent, not a scan of every conversation).
WITH RECURSIVE agents AS (
    (SELECT agent_name FROM conversation_sessions ORDER BY agent_name LIMIT 1)
    UNION ALL
    SELECT (
        SELECT s.agent_name
        FROM conversation_sessions AS s
        WHERE s.agent_name > agents.agent_name
        ORDER BY s.agent_name
        LIMIT 1
    )
    FROM agents
    WHERE agents.agent_name IS NOT NULL
)
SELECT agent_name FROM agents WHERE agent_name IS NOT NULL;

-- name: count_idle_sessions
-- How many of the agent's conversations, and messages, were last written
-- before %(cutoff)s: a purge's dry run, and its progress total.
SELECT count(*), coalesce(sum(next_seq), 0)
FROM conversation_sessions
WHERE agent_name = %(agent_name)s AND updated_at < %(cutoff)s;

-- name: purge_idle_sessions
-- Delete up to %(batch_size)s of the agent's conversation rows idle since
-- before %(cutoff)s, oldest first, after the position (%(after_time)s,
-- %(after_session)s) of the previous batch. A row some writer holds is
-- skipped (SKIP LOCKED), and so is a conversation whose advisory lock is
-- held; a row written since the scan's snapshot is re-checked against the
-- cutoff under its lock (READ COMMITTED re-reads it) and kept. Returns the
-- deleted keys and message counts, and the position reached.
WITH candidates AS MATERIALIZED (
    SELECT agent_name, session_id, updated_at
    FROM conversation_sessions
    WHERE agent_name = %(agent_name)s
      AND updated_at < %(cutoff)s
      AND updated_at >= %(after_time)s
      AND (updated_at, session_id) > (%(after_time)s, %(after_session)s)
    ORDER BY updated_at, session_id
    LIMIT %(batch_size)s
    FOR UPDATE SKIP LOCKED
),
unlocked AS MATERIALIZED (
    SELECT agent_name, session_id
    FROM candidates
    WHERE pg_try_advisory_xact_lock(hashtext(agent_name), hashtext(session_id))
),
deleted AS (
    DELETE FROM conversation_sessions AS s
    USING unlocked AS u
    WHERE s.agent_name = u.agent_name AND s.session_id = u.session_id
    RETURNING s.session_id, s.next_seq
)
SELECT
    (SELECT array_agg(session_id) FROM deleted),
    (SELECT coalesce(sum(next_seq), 0) FROM deleted),
    (SELECT max(updated_at) FROM candidates),
    (SELECT max(session_id) FROM candidates WHERE updated_at = (SELECT max(updated_at) FROM candidates));

-- name: purge_heap_blocks
-- How many pages conversation_history has now: where a purge's walk in
-- physical order ends (rows written later are found by the final pass).
SELECT pg_relation_size('conversation_history') / current_setting('block_size')::bigint;

-- name: purge_idle_in_heap_order
-- Delete up to %(batch_size)s conversations idle since before %(cutoff)s (of
-- agent %(agent_name)s, or of every agent when it is null) whose first message
-- lies in the pages after the heap position %(after)s and before page
-- %(before)s, in the order of those first messages on the heap. Live traffic
-- writes conversations side by side, so consecutive batches delete rows of
-- the same pages and each page is changed by one or two batches in a row,
-- not by several batches scattered over the purge (each of which would write
-- the page's full image to the WAL after a checkpoint). Rows are locked and
-- re-checked like purge_idle_sessions (SKIP LOCKED, the advisory lock,
-- READ COMMITTED re-reads a row written since the snapshot). Returns the
-- deleted keys and message counts, and the position reached: the last first
-- message locked when the batch is full, else null (the range is done).
-- A conversation it does not find (no message at position 0, skipped, or
-- written beyond the pages walked) is left to purge_idle_sessions. The pages
-- are read with a TID range scan (starts names no agent: with one, a generic
-- plan would read all of the agent's rows through the primary key instead).
WITH starts AS MATERIALIZED (
    SELECT h.ctid AS at, h.agent_name, h.session_id
    FROM conversation_history AS h
    WHERE h.ctid > %(after)s::tid
      AND h.ctid < ('(' || %(before)s::bigint || ',0)')::tid
      AND h.seq = 0
),
candidates AS MATERIALIZED (
    SELECT s.agent_name, s.session_id, st.at
    FROM starts AS st
    JOIN conversation_sessions AS s
      ON s.agent_name = st.agent_name AND s.session_id = st.session_id
    WHERE s.updated_at < %(cutoff)s
      AND (%(agent_name)s::text IS NULL OR s.agent_name = %(agent_name)s::text)
    ORDER BY st.at
    LIMIT %(batch_size)s
    FOR UPDATE OF s SKIP LOCKED
),
unlocked AS MATERIALIZED (
    SELECT agent_name, session_id
    FROM candidates
    WHERE pg_try_advisory_xact_lock(hashtext(agent_name), hashtext(session_id))
),
deleted AS (
    DELETE FROM conversation_sessions AS s
    USING unlocked AS u
    WHERE s.agent_name = u.agent_name AND s.session_id = u.session_id
    RETURNING s.agent_name, s.session_id, s.next_seq
)
SELECT
    (SELECT array_agg(agent_name) FROM deleted),
    (SELECT array_agg(session_id) FROM deleted),
    (SELECT coalesce(sum(next_seq), 0) FROM deleted),
    CASE WHEN (SELECT count(*) FROM candidates) >= %(batch_size)s
         THEN (SELECT max(at) FROM candidates)::text END;

-- name: purge_messages_in_heap_order
-- The messages of the conversations purge_idle_in_heap_order just deleted
-- (of any agent), in the same transaction: its own snapshot, taken after the
-- rows were locked, sees every append that committed before. One range of
-- the primary key per conversation; the batch's conversations lie side by
-- side, so their ranges reach the same few heap pages.
DELETE FROM conversation_history AS h
USING unnest(%(agent_names)s::varchar[], %(session_ids)s::varchar[]) AS k (agent_name, session_id)
WHERE h.agent_name = k.agent_name AND h.session_id = k.session_id;

-- name: purge_without_flush
-- A purge's transaction does not wait for its WAL to reach the disk: a
-- batch lost in a crash is only conversations that a purge deletes again.
SET LOCAL synchronous_commit = off;

-- name: purge_session_messages
-- The messages of the conversations purge_idle_sessions just deleted, in
-- the same transaction. Its own snapshot, taken after the rows were locked,
-- sees every append that committed before: none is left behind.
DELETE FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = ANY(%(session_ids)s::varchar[]);

-- name: list_sessions_by_key
-- Up to %(limit)s of the agent's conversations after %(after_session)s in
-- primary key order (stable while conversations are written, unlike
-- list_sessions' order): an export's walk.
SELECT session_id, next_seq, created_at, updated_at, metadata::text
FROM conversation_sessions
WHERE agent_name = %(agent_name)s AND session_id > %(after_session)s
ORDER BY session_id
LIMIT %(limit)s;

-- name: create_imported_session
-- Create an imported conversation's row, empty, with its metadata and times
-- (now() when not given). An existing conversation inserts nothing and
-- returns no row (the import refuses it); the new row stays locked until the
-- import commits.
INSERT INTO conversation_sessions (
    agent_name, session_id, next_seq, metadata, created_at, updated_at
)
VALUES (
    %(agent_name)s, %(session_id)s, 0, %(metadata)s::jsonb,
    coalesce(%(created_at)s::timestamptz, now()), coalesce(%(updated_at)s::timestamptz, now())
)
ON CONFLICT (agent_name, session_id) DO NOTHING
RETURNING true;

-- name: finish_imported_session
-- Set an imported conversation's counter to the %(message_count)s messages
-- copied into it.
UPDATE conversation_sessions
SET next_seq = %(message_count)s
WHERE agent_name = %(agent_name)s AND session_id = %(session_id)s;

-- name: citus_installed
-- Whether the citus extension is in this database: its tables are then
-- distributed (migration 0009), and the statements over many conversations
-- that Citus cannot run (a recursive CTE, FOR UPDATE over every shard) are
-- replaced by the *_distributed ones below (docs/scaling.md). Asked once per
-- repository, on the first such call.
SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus');

-- name: list_agents_distributed
-- list_agents on a Citus cluster, where a recursive CTE over a distributed
-- table is refused: every shard returns its distinct agents (from the primary
-- key's index), which the coordinator merges.
SELECT DISTINCT agent_name FROM conversation_sessions ORDER BY agent_name;

-- name: purge_candidates_distributed
-- purge_idle_sessions' candidates on a Citus cluster: up to %(batch_size)s of
-- the agent's conversations idle since before %(cutoff)s, oldest first, after
-- the position (%(after_time)s, %(after_session)s), read from every shard
-- without a lock (Citus takes no FOR UPDATE over several shards).
SELECT session_id, updated_at
FROM conversation_sessions
WHERE agent_name = %(agent_name)s
  AND updated_at < %(cutoff)s
  AND updated_at >= %(after_time)s
  AND (updated_at, session_id) > (%(after_time)s, %(after_session)s)
ORDER BY updated_at, session_id
LIMIT %(batch_size)s;

-- name: purge_listed_sessions_distributed
-- Delete the candidates' rows that are still idle: the DELETE waits for a
-- writer that holds one (instead of skipping it) and, at READ COMMITTED,
-- re-checks the cutoff on the row as that writer left it, so a conversation
-- written since the candidates were read is kept. One transaction with
-- purge_session_messages, committed on every shard it touched at once
-- (Citus' two-phase commit). Returns the deleted keys and message counts.
WITH deleted AS (
    DELETE FROM conversation_sessions
    WHERE agent_name = %(agent_name)s
      AND session_id = ANY(%(session_ids)s::varchar[])
      AND updated_at < %(cutoff)s
    RETURNING session_id, next_seq
)
SELECT (SELECT array_agg(session_id) FROM deleted), (SELECT coalesce(sum(next_seq), 0) FROM deleted);
