-- Workflow budgets: the limits (JSON), what the workflow's attempts spent, and why it is paused.
-- A task's attempts paused by a budget are not counted against its retry policy.

ALTER TABLE workflows ADD COLUMN budget TEXT;
ALTER TABLE workflows ADD COLUMN egress_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workflows ADD COLUMN llm_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workflows ADD COLUMN pause_reason TEXT;
ALTER TABLE tasks ADD COLUMN uncounted_attempts INTEGER NOT NULL DEFAULT 0;
