-- Event blocks of format 3 hold their events as bytes (`data`: a format byte and a zstd frame of
-- the typed events encoded by postcard). Blocks written before keep their JSON text in `events`
-- and are read as they are. Each block has exactly one of the two. (SQLite cannot drop a NOT NULL
-- constraint in place: the table is made again.)

CREATE TABLE event_blocks_v3 (
    workflow_id TEXT NOT NULL,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    first_ts    INTEGER NOT NULL,
    last_ts     INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    events      TEXT,
    data        BLOB,
    PRIMARY KEY (workflow_id, first_seq),
    CHECK ((events IS NULL) <> (data IS NULL))
);
INSERT INTO event_blocks_v3 (workflow_id, first_seq, last_seq, first_ts, last_ts, event_count, events)
    SELECT workflow_id, first_seq, last_seq, first_ts, last_ts, event_count, events FROM event_blocks;
DROP TABLE event_blocks;
ALTER TABLE event_blocks_v3 RENAME TO event_blocks;
CREATE INDEX event_blocks_by_time ON event_blocks (first_ts);
