-- Tasks of a workflow in submission order, for reading them page by page.

CREATE INDEX tasks_by_position ON tasks (workflow_id, position);
