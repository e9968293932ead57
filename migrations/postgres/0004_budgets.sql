-- Workflow budgets: the limits (JSON), what the workflow's attempts spent, and why it is paused.
-- A task's attempts paused by a budget are not counted against its retry policy.

ALTER TABLE workflows ADD COLUMN budget TEXT;
ALTER TABLE workflows ADD COLUMN egress_requests BIGINT NOT NULL DEFAULT 0;
ALTER TABLE workflows ADD COLUMN llm_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE workflows ADD COLUMN pause_reason TEXT;
ALTER TABLE tasks ADD COLUMN uncounted_attempts BIGINT NOT NULL DEFAULT 0;
