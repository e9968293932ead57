-- Claims read each running workflow's ready tasks in order, up to its free slots, rather than
-- every ready task of every workflow.
CREATE INDEX tasks_ready_by_workflow ON tasks (workflow_id, ready_at, position) WHERE ready_at IS NOT NULL;
