-- Events are stored in blocks: the events one transaction appends to a workflow are one row, a
-- JSON array of [seq, event_id, event_type, task_id, agent_id, agent_type, source_agent,
-- target_agent, status, duration_ms, ts, body] in seq order. event_agents names, per agent (as
-- actor, source or target), the blocks it takes part in, with its earliest event time there.

CREATE TABLE event_blocks (
    workflow_id TEXT NOT NULL,
    first_seq   BIGINT NOT NULL,
    last_seq    BIGINT NOT NULL,
    first_ts    BIGINT NOT NULL,
    last_ts     BIGINT NOT NULL,
    event_count BIGINT NOT NULL,
    events      TEXT NOT NULL,
    PRIMARY KEY (workflow_id, first_seq)
);
CREATE INDEX event_blocks_by_time ON event_blocks (first_ts);
-- Blocks are large and written on the engine's path: lz4 compresses them far faster than the
-- default pglz (kept where the server was built without lz4).
DO $$ BEGIN
    ALTER TABLE event_blocks ALTER COLUMN events SET COMPRESSION lz4;
EXCEPTION WHEN OTHERS THEN NULL;
END $$;

CREATE TABLE event_agents (
    agent_id    TEXT NOT NULL,
    first_ts    BIGINT NOT NULL,
    workflow_id TEXT NOT NULL,
    first_seq   BIGINT NOT NULL,
    PRIMARY KEY (agent_id, first_ts, workflow_id, first_seq)
);

-- Existing events: one block per workflow.
INSERT INTO event_blocks (workflow_id, first_seq, last_seq, first_ts, last_ts, event_count, events)
SELECT workflow_id, MIN(seq), MAX(seq), MIN(ts), MAX(ts), COUNT(*),
       json_agg(json_build_array(seq, event_id, event_type, task_id, agent_id, agent_type, source_agent,
                                   target_agent, status, duration_ms, ts, body::json) ORDER BY seq)::text
FROM events GROUP BY workflow_id;

INSERT INTO event_agents (agent_id, first_ts, workflow_id, first_seq)
SELECT r.agent, MIN(r.ts), r.workflow_id, b.first_seq
FROM (SELECT workflow_id, ts, agent_id AS agent FROM events WHERE agent_id IS NOT NULL
      UNION ALL SELECT workflow_id, ts, source_agent FROM events WHERE source_agent IS NOT NULL
      UNION ALL SELECT workflow_id, ts, target_agent FROM events WHERE target_agent IS NOT NULL) r
JOIN event_blocks b ON b.workflow_id = r.workflow_id
GROUP BY r.agent, r.workflow_id, b.first_seq;

DROP TABLE events;
