-- Tasks of a workflow in submission order, for reading them page by page, and for nothing else.
-- As a plain index on (workflow_id, position) it was also a way to look one task up by
-- (workflow_id, task_id): read the workflow's tasks and filter. A plan made while the table was
-- small (the statistics say a workflow has a task or two) costs that as much as the primary key,
-- picks the smaller index, and keeps it once the workflow has 10,000 tasks: 50 ms per lookup.
-- The predicate is true of every row (positions start at 0), but only a query that states it
-- (the paging read says `position >= 0`) can use the index, so lookups by key have one way.

DROP INDEX tasks_by_position;
CREATE INDEX tasks_by_position ON tasks (workflow_id, position) WHERE position >= 0;
