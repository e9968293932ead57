//! [`WorkflowTx`] on PostgreSQL: submissions, budgets and controls.

use sqlx::{AssertSqlSafe, Row};

use super::PgTx;
use crate::lifecycle::{TaskShape, TaskVersionState, WorkflowView};
use crate::store::tx::WorkflowTx;
use crate::store::versions::parse_status;
use crate::store::{Result, Submitted};
use crate::workflow::{TaskStatus, Usage, ValidTask, ValidWorkflow, WorkflowStatus};

const TASK_COLUMNS: usize = 17;
const TASK_CHUNK: usize = 200;

impl WorkflowTx for PgTx<'_> {
    async fn submitted_with(&mut self, key: &str) -> Result<Option<(Submitted, Option<String>)>> {
        // Held to the commit: a concurrent submission with this key waits here, then finds
        // the row this one inserted (READ COMMITTED reads it in its next statement).
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(key).execute(&mut *self.conn).await?;
        let found = sqlx::query(
            "SELECT workflow_id, status, version, idempotency_fingerprint FROM workflows WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(&mut *self.conn)
        .await?;
        let Some(r) = found else { return Ok(None) };
        let status = parse_status(&r.try_get::<String, _>(1)?)?;
        let submitted = Submitted { workflow_id: r.try_get(0)?, status, version: r.try_get(2)?, existing: true };
        Ok(Some((submitted, r.try_get(3)?)))
    }

    async fn insert_workflow(
        &mut self,
        workflow_id: &str,
        wf: &ValidWorkflow,
        status: WorkflowStatus,
        now: i64,
    ) -> Result<()> {
        let n = wf.tasks.len() as i64;
        sqlx::query(
            "INSERT INTO workflows (workflow_id, name, status, version, max_parallel, running, remaining, \
             task_count, snapshot_every, event_seq, variables, context, idempotency_key, created_at, updated_at, \
             started_at, budget, idempotency_fingerprint, traceparent) \
             VALUES ($1, $2, $3, 0, $4, 0, $5, $5, $6, 0, $7, $8, $9, $10, $10, $11, $12, $13, $14)",
        )
        .bind(workflow_id)
        .bind(wf.name.clone())
        .bind(status.as_str())
        .bind(wf.max_parallel_tasks as i64)
        .bind(n)
        .bind(n.max(64))
        .bind(serde_json::Value::Object(wf.variables.clone()).to_string())
        .bind(serde_json::Value::Object(wf.context.clone()).to_string())
        .bind(wf.idempotency_key.clone())
        .bind(now)
        .bind(wf.start.then_some(now))
        .bind(wf.budget.map(|b| serde_json::to_string(&b)).transpose()?)
        .bind(wf.fingerprint.clone())
        .bind(wf.traceparent.clone())
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn insert_tasks(&mut self, workflow_id: &str, tasks: &[ValidTask], start: bool, now: i64) -> Result<()> {
        for chunk in tasks.chunks(TASK_CHUNK) {
            let sql = format!(
                "INSERT INTO tasks (workflow_id, task_id, position, agent_id, agent_type, dependencies, dependents, \
                 input, retry_policy, timeout_ms, allow_failure, metadata, status, deps_remaining, attempt, \
                 ready_at, ready_since) VALUES {}",
                placeholders(chunk.len(), TASK_COLUMNS)
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for t in chunk {
                let ready = (start && t.dependencies.is_empty()).then_some(now);
                q = q
                    .bind(workflow_id)
                    .bind(&t.task_id)
                    .bind(t.position as i64)
                    .bind(&t.agent_id)
                    .bind(&t.agent_type)
                    .bind(serde_json::to_string(&t.dependencies)?)
                    .bind(serde_json::to_string(&t.dependents)?)
                    .bind(t.input.to_string())
                    .bind(serde_json::to_string(&t.retry_policy)?)
                    .bind(t.timeout.map(|d| d.as_millis() as i64))
                    .bind(t.allow_failure)
                    .bind(serde_json::Value::Object(t.metadata.clone()).to_string())
                    .bind(TaskStatus::Pending.as_str())
                    .bind(t.dependencies.len() as i64)
                    .bind(0i64)
                    .bind(ready)
                    .bind(ready);
            }
            q.execute(&mut *self.conn).await?;
        }
        Ok(())
    }

    async fn budget_row(&mut self, workflow_id: &str) -> Result<Option<(WorkflowStatus, Option<String>, Usage)>> {
        let sql = "SELECT status, budget, egress_requests, llm_tokens FROM workflows WHERE workflow_id = $1 FOR UPDATE";
        let row = sqlx::query(sql).bind(workflow_id).fetch_optional(&mut *self.conn).await?;
        let Some(row) = row else { return Ok(None) };
        let usage =
            Usage { egress_requests: row.try_get::<i64, _>(2)? as u64, llm_tokens: row.try_get::<i64, _>(3)? as u64 };
        Ok(Some((parse_status(&row.try_get::<String, _>(0)?)?, row.try_get(1)?, usage)))
    }

    async fn set_budget(&mut self, workflow_id: &str, budget: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE workflows SET budget = $2 WHERE workflow_id = $1")
            .bind(workflow_id)
            .bind(budget)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }

    async fn control_view(&mut self, workflow_id: &str) -> Result<Option<WorkflowView>> {
        // Lock in the order every other writer uses (task rows, then the workflow row), so a
        // concurrent outcome or claim waits instead of deadlocking.
        sqlx::query("SELECT task_id FROM tasks WHERE workflow_id = $1 ORDER BY task_id FOR UPDATE")
            .bind(workflow_id)
            .fetch_all(&mut *self.conn)
            .await?;
        let sql = "SELECT status, version, running, started_at FROM workflows WHERE workflow_id = $1 FOR UPDATE";
        let row = sqlx::query(sql).bind(workflow_id).fetch_optional(&mut *self.conn).await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(WorkflowView {
            status: parse_status(&row.try_get::<String, _>(0)?)?,
            version: row.try_get(1)?,
            running: row.try_get(2)?,
            started: row.try_get::<Option<i64>, _>(3)?.is_some(),
        }))
    }

    async fn set_status(
        &mut self,
        workflow_id: &str,
        status: WorkflowStatus,
        pause_reason: Option<&str>,
        started_at: Option<i64>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE workflows SET status = $2, pause_reason = $3, started_at = COALESCE(started_at, $4) \
             WHERE workflow_id = $1",
        )
        .bind(workflow_id)
        .bind(status.as_str())
        .bind(pause_reason)
        .bind(started_at)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn mark_roots_ready(&mut self, workflow_id: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE tasks SET ready_at = $2, ready_since = $2 WHERE workflow_id = $1 AND status = 'pending' \
             AND deps_remaining = 0 AND ready_at IS NULL",
        )
        .bind(workflow_id)
        .bind(now)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn snapshot_at(&mut self, workflow_id: &str, version: i64) -> Result<Option<(i64, String)>> {
        let row = sqlx::query(
            "SELECT version, state FROM workflow_snapshots WHERE workflow_id = $1 AND version <= $2 \
             ORDER BY version DESC LIMIT 1",
        )
        .bind(workflow_id)
        .bind(version)
        .fetch_optional(&mut *self.conn)
        .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    async fn versions_between(
        &mut self,
        workflow_id: &str,
        after: i64,
        upto: i64,
    ) -> Result<Vec<(i64, String, String)>> {
        let rows = sqlx::query(
            "SELECT version, status, changes FROM workflow_versions WHERE workflow_id = $1 AND version > $2 \
             AND version <= $3 ORDER BY version",
        )
        .bind(workflow_id)
        .bind(after)
        .bind(upto)
        .fetch_all(&mut *self.conn)
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
    }

    async fn task_shapes(&mut self, workflow_id: &str) -> Result<Vec<TaskShape>> {
        let rows = sqlx::query("SELECT task_id, dependencies, allow_failure FROM tasks WHERE workflow_id = $1")
            .bind(workflow_id)
            .fetch_all(&mut *self.conn)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TaskShape {
                    task_id: r.try_get(0)?,
                    dependencies: serde_json::from_str(&r.try_get::<String, _>(1)?)?,
                    allow_failure: r.try_get(2)?,
                })
            })
            .collect()
    }

    async fn restore_task(
        &mut self,
        workflow_id: &str,
        task_id: &str,
        state: &TaskVersionState,
        waiting: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE tasks SET status = $3, output = $4, error = $5, deps_remaining = $6, ready_at = NULL, \
             ready_since = NULL, lease_owner = NULL, lease_expires = NULL, \
             finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE finished_at END \
             WHERE workflow_id = $1 AND task_id = $2",
        )
        .bind(workflow_id)
        .bind(task_id)
        .bind(state.status.as_str())
        .bind(state.output.as_ref().map(|v| v.to_string()))
        .bind(state.error.as_ref().map(|v| v.to_string()))
        .bind(waiting)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn restore_counters(&mut self, workflow_id: &str, remaining: i64) -> Result<()> {
        sqlx::query(
            "UPDATE workflows SET running = 0, remaining = $2, finished_at = NULL, error = NULL WHERE workflow_id = $1",
        )
        .bind(workflow_id)
        .bind(remaining)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }
}

/// The VALUES list of a multi-row INSERT whose only parameters are these: `($1, $2), ($3, $4)`.
fn placeholders(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&(r * cols + c + 1).to_string());
        }
        s.push(')');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_number_across_rows() {
        assert_eq!(placeholders(2, 2), "($1, $2), ($3, $4)");
    }
}
