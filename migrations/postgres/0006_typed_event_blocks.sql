-- Event blocks of format 3 hold their events as bytes (`data`: a format byte and a zstd frame of
-- the typed events encoded by postcard). Blocks written before keep their JSON text in `events`
-- and are read as they are. Each block has exactly one of the two. The bytes are compressed
-- already: the server stores them as they are.

ALTER TABLE event_blocks ADD COLUMN data BYTEA, ALTER COLUMN events DROP NOT NULL;
ALTER TABLE event_blocks ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE event_blocks ADD CONSTRAINT event_blocks_one_content CHECK ((events IS NULL) <> (data IS NULL));
