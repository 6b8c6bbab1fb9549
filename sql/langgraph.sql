-- LangGraph checkpoints (agentcore/checkpoints.py, for
-- agentcore.integrations.langgraph.AgentcoreSaver). A thread is the
-- conversation (agent_name, session_id = thread_id); the messages of its
-- messages channels are that conversation's rows, written once, and a
-- checkpoint's messages channel names the seq ranges of its list.

-- name: lg_put_checkpoint
-- Save one checkpoint in one statement: advance the thread's conversation
-- counter by %(message_count)s (locking the thread against other writers),
-- append the new messages after the last row, write the channel versions not
-- stored yet (a messages channel's ranges: its base plus the rows appended
-- for it), then the checkpoint. Returns the first appended message's seq.
WITH counter AS (
    INSERT INTO conversation_sessions AS s (agent_name, session_id, next_seq)
    VALUES (%(agent_name)s, %(thread_id)s, %(message_count)s)
    ON CONFLICT (agent_name, session_id) DO UPDATE
        SET next_seq = s.next_seq + excluded.next_seq,
            updated_at = CASE
                WHEN excluded.updated_at - s.updated_at > interval '1 minute' THEN excluded.updated_at
                ELSE s.updated_at
            END
    RETURNING s.next_seq - %(message_count)s AS first_seq
),
appended AS (
    INSERT INTO conversation_history (agent_name, session_id, seq, role, content, item)
    SELECT %(agent_name)s, %(thread_id)s, counter.first_seq + m.ordinality - 1,
        m.value ->> 'role', m.value ->> 'content', m.value -> 'item'
    FROM counter
    CROSS JOIN json_array_elements(%(messages)s::json) WITH ORDINALITY AS m
),
versions AS (
    INSERT INTO langgraph_checkpoint_blobs (
        agent_name, thread_id, checkpoint_ns, channel, version, type, blob, messages
    )
    SELECT %(agent_name)s, %(thread_id)s, %(checkpoint_ns)s, b.channel, b.version, b.type, b.blob,
        CASE WHEN b.base IS NOT NULL THEN
            b.base::int8multirange + int8multirange(
                int8range(counter.first_seq + b.start, counter.first_seq + b.start + b.count)
            )
        END
    FROM counter
    CROSS JOIN unnest(
        %(channels)s::text[], %(versions)s::text[], %(types)s::text[], %(blobs)s::bytea[],
        %(bases)s::text[], %(starts)s::int8[], %(counts)s::int8[]
    ) AS b (channel, version, type, blob, base, start, count)
    ON CONFLICT (agent_name, thread_id, checkpoint_ns, channel, version) DO NOTHING
),
saved AS (
    INSERT INTO langgraph_checkpoints (
        agent_name, thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint,
        metadata
    )
    VALUES (
        %(agent_name)s, %(thread_id)s, %(checkpoint_ns)s, %(checkpoint_id)s,
        %(parent_checkpoint_id)s, %(checkpoint)s, %(metadata)s
    )
    ON CONFLICT (agent_name, thread_id, checkpoint_ns, checkpoint_id) DO UPDATE
        SET checkpoint = excluded.checkpoint, metadata = excluded.metadata
)
-- The first seq is the outer SELECT's, not the checkpoint INSERT's RETURNING
-- (SELECT ... FROM counter): Citus refuses a subquery inside an INSERT.
SELECT first_seq FROM counter;

-- name: lg_list_checkpoints
-- Checkpoints newest first, each with its channel values and pending writes:
-- of one thread (%(thread_id)s, or every thread when NULL), one namespace
-- (or all when NULL), one checkpoint id (or all), whose metadata contains
-- %(filter)s, before the id %(before)s, at most %(limit)s (all when NULL).
-- A messages channel's value comes as the JSON array of its rows' items, in
-- seq order, with its ranges. Unprepared (the caller's prepare=False): the
-- optional filters are planned knowing which are set.
SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.checkpoint,
    c.metadata,
    (
        SELECT array_agg(array[
            bl.channel::bytea, bl.type::bytea,
            CASE WHEN bl.messages IS NULL THEN bl.blob ELSE convert_to((
                SELECT coalesce(json_agg(h.item ORDER BY h.seq), '[]'::json)::text
                FROM unnest(bl.messages) AS r
                JOIN conversation_history AS h
                    ON h.agent_name = c.agent_name AND h.session_id = c.thread_id
                    AND h.seq >= lower(r) AND h.seq < upper(r)
            ), 'UTF8') END,
            convert_to(bl.messages::text, 'UTF8')
        ])
        FROM jsonb_each_text(c.checkpoint -> 'channel_versions') AS v
        JOIN langgraph_checkpoint_blobs AS bl
            ON bl.agent_name = c.agent_name AND bl.thread_id = c.thread_id
            AND bl.checkpoint_ns = c.checkpoint_ns AND bl.channel = v.key
            AND bl.version = v.value
    ) AS channel_values,
    (
        SELECT array_agg(array[
            w.task_id::bytea, w.channel::bytea, w.type::bytea, w.blob,
            convert_to(w.task_path, 'UTF8'), w.idx::text::bytea
        ])
        FROM langgraph_checkpoint_writes AS w
        WHERE w.agent_name = c.agent_name AND w.thread_id = c.thread_id
            AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id
    ) AS pending_writes
FROM langgraph_checkpoints AS c
WHERE c.agent_name = %(agent_name)s
    AND (%(thread_id)s::text IS NULL OR c.thread_id = %(thread_id)s)
    AND (%(checkpoint_ns)s::text IS NULL OR c.checkpoint_ns = %(checkpoint_ns)s)
    AND (%(checkpoint_id)s::text IS NULL OR c.checkpoint_id = %(checkpoint_id)s)
    AND (%(filter)s::jsonb IS NULL OR c.metadata @> %(filter)s::jsonb)
    AND (%(before)s::text IS NULL OR c.checkpoint_id < %(before)s)
ORDER BY c.checkpoint_id DESC
LIMIT %(limit)s;

-- name: lg_list_checkpoints_distributed
-- lg_list_checkpoints on a Citus cluster (the citus extension installed,
-- migration 0009), whose planner fails on a set-returning function over an
-- outer column in these correlated subqueries (Citus 13.0: "invalid attnum").
-- The same rows without one: a checkpoint's channel versions are the thread's
-- blobs whose version its channel_versions names, and a messages channel's
-- rows are the thread's rows whose seq its ranges contain. Each reads every
-- blob, and every row, of the thread instead of an index range per version
-- and per range: on a cluster only, where this statement runs on the
-- thread's shard. Unprepared, like lg_list_checkpoints.
SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.checkpoint,
    c.metadata,
    (
        SELECT array_agg(array[
            bl.channel::bytea, bl.type::bytea,
            CASE WHEN bl.messages IS NULL THEN bl.blob ELSE convert_to((
                SELECT coalesce(json_agg(h.item ORDER BY h.seq), '[]'::json)::text
                FROM conversation_history AS h
                WHERE h.agent_name = c.agent_name AND h.session_id = c.thread_id
                    AND bl.messages @> h.seq
            ), 'UTF8') END,
            convert_to(bl.messages::text, 'UTF8')
        ])
        FROM langgraph_checkpoint_blobs AS bl
        WHERE bl.agent_name = c.agent_name AND bl.thread_id = c.thread_id
            AND bl.checkpoint_ns = c.checkpoint_ns
            AND bl.version = c.checkpoint -> 'channel_versions' ->> bl.channel
    ) AS channel_values,
    (
        SELECT array_agg(array[
            w.task_id::bytea, w.channel::bytea, w.type::bytea, w.blob,
            convert_to(w.task_path, 'UTF8'), w.idx::text::bytea
        ])
        FROM langgraph_checkpoint_writes AS w
        WHERE w.agent_name = c.agent_name AND w.thread_id = c.thread_id
            AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id
    ) AS pending_writes
FROM langgraph_checkpoints AS c
WHERE c.agent_name = %(agent_name)s
    AND (%(thread_id)s::text IS NULL OR c.thread_id = %(thread_id)s)
    AND (%(checkpoint_ns)s::text IS NULL OR c.checkpoint_ns = %(checkpoint_ns)s)
    AND (%(checkpoint_id)s::text IS NULL OR c.checkpoint_id = %(checkpoint_id)s)
    AND (%(filter)s::jsonb IS NULL OR c.metadata @> %(filter)s::jsonb)
    AND (%(before)s::text IS NULL OR c.checkpoint_id < %(before)s)
ORDER BY c.checkpoint_id DESC
LIMIT %(limit)s;

-- name: lg_put_writes
-- Store a task's writes to a checkpoint, replacing a write already stored
-- under the same (task, idx) (the caller's replace=True, as LangGraph's own
-- savers do for special channels). The thread's conversation is created if
-- it is new, and otherwise left as it is: no update of its row, only the
-- foreign key's share lock on it. The parameters are typed: Citus plans the
-- CTE and the INSERT apart, where neither tells the other a parameter's type.
WITH thread AS (
    INSERT INTO conversation_sessions (agent_name, session_id, next_seq)
    VALUES (%(agent_name)s::text, %(thread_id)s::text, 0)
    ON CONFLICT (agent_name, session_id) DO NOTHING
)
INSERT INTO langgraph_checkpoint_writes AS w (
    agent_name, thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel,
    type, blob
)
SELECT %(agent_name)s::text, %(thread_id)s::text, %(checkpoint_ns)s::text,
    %(checkpoint_id)s::text, %(task_id)s::text, %(task_path)s::text, x.idx, x.channel, x.type,
    x.blob
FROM unnest(%(idxs)s::int[], %(channels)s::text[], %(types)s::text[], %(blobs)s::bytea[])
    AS x (idx, channel, type, blob)
ON CONFLICT (agent_name, thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE
    SET channel = excluded.channel, type = excluded.type, blob = excluded.blob;

-- name: lg_put_writes_keeping
-- lg_put_writes keeping a write already stored under the same (task, idx)
-- (replace=False). Two statements, not a parameter in the conflict's WHERE:
-- Citus sends that parameter to the worker without its type, which refuses it.
WITH thread AS (
    INSERT INTO conversation_sessions (agent_name, session_id, next_seq)
    VALUES (%(agent_name)s::text, %(thread_id)s::text, 0)
    ON CONFLICT (agent_name, session_id) DO NOTHING
)
INSERT INTO langgraph_checkpoint_writes AS w (
    agent_name, thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel,
    type, blob
)
SELECT %(agent_name)s::text, %(thread_id)s::text, %(checkpoint_ns)s::text,
    %(checkpoint_id)s::text, %(task_id)s::text, %(task_path)s::text, x.idx, x.channel, x.type,
    x.blob
FROM unnest(%(idxs)s::int[], %(channels)s::text[], %(types)s::text[], %(blobs)s::bytea[])
    AS x (idx, channel, type, blob)
ON CONFLICT (agent_name, thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING;

-- name: lg_delete_threads
-- Delete threads: their conversations (the checkpoint tables follow by
-- ON DELETE CASCADE) and the conversations' messages.
WITH threads AS (
    DELETE FROM conversation_sessions
    WHERE agent_name = %(agent_name)s AND session_id = ANY(%(thread_ids)s::text[])
)
DELETE FROM conversation_history
WHERE agent_name = %(agent_name)s AND session_id = ANY(%(thread_ids)s::text[]);

-- name: lg_delete_for_runs
-- Delete the checkpoints whose metadata names one of %(run_ids)s as its
-- run_id, with their pending writes. Channel versions and messages stay
-- (a later checkpoint of the thread may still use them).
WITH deleted AS (
    DELETE FROM langgraph_checkpoints
    WHERE agent_name = %(agent_name)s AND metadata ->> 'run_id' = ANY(%(run_ids)s::text[])
    RETURNING thread_id, checkpoint_ns, checkpoint_id
)
DELETE FROM langgraph_checkpoint_writes AS w
USING deleted AS d
WHERE w.agent_name = %(agent_name)s AND w.thread_id = d.thread_id
    AND w.checkpoint_ns = d.checkpoint_ns AND w.checkpoint_id = d.checkpoint_id;

-- name: lg_copy_thread
-- Copy every checkpoint, channel version, write and message of thread
-- %(source)s to thread %(target)s. The messages go after the target's last
-- row, and the copied ranges move with them.
WITH source AS (
    SELECT next_seq FROM conversation_sessions
    WHERE agent_name = %(agent_name)s AND session_id = %(source)s
),
counter AS (
    INSERT INTO conversation_sessions AS s (agent_name, session_id, next_seq)
    SELECT %(agent_name)s, %(target)s, next_seq FROM source
    ON CONFLICT (agent_name, session_id) DO UPDATE
        SET next_seq = s.next_seq + excluded.next_seq, updated_at = excluded.updated_at
    RETURNING s.next_seq - (SELECT next_seq FROM source) AS shift
),
messages AS (
    INSERT INTO conversation_history (
        agent_name, session_id, seq, role, content, name, tool_calls, tool_call_id,
        metadata, message_id, created_at, item
    )
    SELECT h.agent_name, %(target)s, h.seq + counter.shift, h.role, h.content, h.name,
        h.tool_calls, h.tool_call_id, h.metadata, h.message_id, h.created_at, h.item
    FROM conversation_history AS h CROSS JOIN counter
    WHERE h.agent_name = %(agent_name)s AND h.session_id = %(source)s
),
versions AS (
    INSERT INTO langgraph_checkpoint_blobs (
        agent_name, thread_id, checkpoint_ns, channel, version, type, blob, messages
    )
    SELECT b.agent_name, %(target)s, b.checkpoint_ns, b.channel, b.version, b.type, b.blob,
        CASE WHEN b.messages IS NOT NULL THEN coalesce((
            SELECT range_agg(int8range(lower(r) + counter.shift, upper(r) + counter.shift))
            FROM unnest(b.messages) AS r
        ), '{}'::int8multirange) END
    FROM langgraph_checkpoint_blobs AS b CROSS JOIN counter
    WHERE b.agent_name = %(agent_name)s AND b.thread_id = %(source)s
    ON CONFLICT (agent_name, thread_id, checkpoint_ns, channel, version) DO NOTHING
),
writes AS (
    INSERT INTO langgraph_checkpoint_writes (
        agent_name, thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx,
        channel, type, blob
    )
    SELECT w.agent_name, %(target)s, w.checkpoint_ns, w.checkpoint_id, w.task_id,
        w.task_path, w.idx, w.channel, w.type, w.blob
    FROM langgraph_checkpoint_writes AS w CROSS JOIN counter
    WHERE w.agent_name = %(agent_name)s AND w.thread_id = %(source)s
    ON CONFLICT DO NOTHING
)
INSERT INTO langgraph_checkpoints (
    agent_name, thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint,
    metadata
)
SELECT c.agent_name, %(target)s, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id,
    c.checkpoint, c.metadata
FROM langgraph_checkpoints AS c CROSS JOIN counter
WHERE c.agent_name = %(agent_name)s AND c.thread_id = %(source)s
ON CONFLICT DO NOTHING;

-- name: lg_prune_keep_latest
-- Keep only the latest checkpoint of each namespace of the threads
-- %(thread_ids)s: delete the others, their pending writes, and the channel
-- versions that no kept checkpoint uses. The conversations' messages stay
-- (they are the threads' conversations; the kept checkpoints use them).
WITH kept AS MATERIALIZED (
    SELECT DISTINCT ON (thread_id, checkpoint_ns) thread_id, checkpoint_ns, checkpoint_id,
        checkpoint -> 'channel_versions' AS versions
    FROM langgraph_checkpoints
    WHERE agent_name = %(agent_name)s AND thread_id = ANY(%(thread_ids)s::text[])
    ORDER BY thread_id, checkpoint_ns, checkpoint_id DESC
),
checkpoints AS (
    DELETE FROM langgraph_checkpoints AS c
    WHERE c.agent_name = %(agent_name)s AND c.thread_id = ANY(%(thread_ids)s::text[])
        AND NOT EXISTS (
            SELECT 1 FROM kept AS k
            WHERE k.thread_id = c.thread_id AND k.checkpoint_ns = c.checkpoint_ns
                AND k.checkpoint_id = c.checkpoint_id
        )
    RETURNING c.thread_id, c.checkpoint_ns, c.checkpoint_id
),
-- The writes of the checkpoints deleted: a run saves a step's writes in the
-- background, where they may commit before their checkpoint does, and those
-- stay.
writes AS (
    DELETE FROM langgraph_checkpoint_writes AS w
    USING checkpoints AS d
    WHERE w.agent_name = %(agent_name)s AND w.thread_id = d.thread_id
        AND w.checkpoint_ns = d.checkpoint_ns AND w.checkpoint_id = d.checkpoint_id
),
parents AS (
    UPDATE langgraph_checkpoints AS c SET parent_checkpoint_id = NULL
    FROM kept AS k
    WHERE c.agent_name = %(agent_name)s AND c.thread_id = k.thread_id
        AND c.checkpoint_ns = k.checkpoint_ns AND c.checkpoint_id = k.checkpoint_id
        AND c.parent_checkpoint_id IS NOT NULL
)
DELETE FROM langgraph_checkpoint_blobs AS b
WHERE b.agent_name = %(agent_name)s AND b.thread_id = ANY(%(thread_ids)s::text[])
    AND NOT EXISTS (
        SELECT 1 FROM kept AS k
        WHERE k.thread_id = b.thread_id AND k.checkpoint_ns = b.checkpoint_ns
            AND k.versions ->> b.channel = b.version
    );
