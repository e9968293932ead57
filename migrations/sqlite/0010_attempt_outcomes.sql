-- What the runbook's queries ask of attempts: the error type of a failed one (copied out of its
-- error JSON, so failures filter and group on a column), the plugin's peak memory (bytes), and an
-- index by end time (failures newest first, outcome series and agent-type statistics over a window).
ALTER TABLE attempts ADD COLUMN error_type TEXT;
ALTER TABLE attempts ADD COLUMN peak_memory INTEGER;
UPDATE attempts SET error_type = json_extract(error, '$.error_type') WHERE json_valid(error);
CREATE INDEX attempts_by_finished ON attempts (finished_at) WHERE finished_at IS NOT NULL;
