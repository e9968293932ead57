//! [`WorkflowTx`] on the writer's connection: submissions, budgets and controls.

use rusqlite::OptionalExtension;

use super::write::SqliteTx;
use crate::lifecycle::{TaskShape, TaskVersionState, WorkflowView};
use crate::store::tx::WorkflowTx;
use crate::store::versions::parse_status;
use crate::store::{Result, Submitted};
use crate::workflow::{TaskStatus, Usage, ValidTask, ValidWorkflow, WorkflowStatus};

impl WorkflowTx for SqliteTx<'_> {
    async fn submitted_with(&mut self, key: &str) -> Result<Option<(Submitted, Option<String>)>> {
        // One writer at a time on SQLite: no other submission can slip in before the commit.
        let mut select = self.conn.prepare_cached(
            "SELECT workflow_id, status, version, idempotency_fingerprint FROM workflows WHERE idempotency_key = ?1",
        )?;
        let found =
            select.query_row([key], |r| Ok((r.get(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?))).optional()?;
        let Some((workflow_id, status, version, fingerprint)) = found else { return Ok(None) };
        Ok(Some((Submitted { workflow_id, status: parse_status(&status)?, version, existing: true }, fingerprint)))
    }

    async fn insert_workflow(
        &mut self,
        workflow_id: &str,
        wf: &ValidWorkflow,
        status: WorkflowStatus,
        now: i64,
    ) -> Result<()> {
        let n = wf.tasks.len() as i64;
        let budget = wf.budget.map(|b| serde_json::to_string(&b)).transpose()?;
        self.conn
            .prepare_cached(
                "INSERT INTO workflows (workflow_id, name, status, version, max_parallel, running, remaining, \
                 task_count, snapshot_every, event_seq, variables, context, idempotency_key, created_at, \
                 updated_at, started_at, budget, idempotency_fingerprint, traceparent) \
                 VALUES (?1, ?2, ?3, 0, ?4, 0, ?5, ?5, ?6, 0, ?7, ?8, ?9, ?10, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(rusqlite::params![
                workflow_id,
                wf.name,
                status.as_str(),
                wf.max_parallel_tasks,
                n,
                n.max(64),
                serde_json::Value::Object(wf.variables.clone()).to_string(),
                serde_json::Value::Object(wf.context.clone()).to_string(),
                wf.idempotency_key,
                now,
                wf.start.then_some(now),
                budget,
                wf.fingerprint,
                wf.traceparent,
            ])?;
        Ok(())
    }

    async fn insert_tasks(&mut self, workflow_id: &str, tasks: &[ValidTask], start: bool, now: i64) -> Result<()> {
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO tasks (workflow_id, task_id, position, agent_id, agent_type, dependencies, dependents, \
             input, retry_policy, timeout_ms, allow_failure, metadata, status, deps_remaining, attempt, \
             ready_at, ready_since) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'pending', ?13, 0, ?14, ?14)",
        )?;
        for t in tasks {
            let ready = (start && t.dependencies.is_empty()).then_some(now);
            insert.execute(rusqlite::params![
                workflow_id,
                t.task_id,
                t.position as i64,
                t.agent_id,
                t.agent_type,
                serde_json::to_string(&t.dependencies)?,
                serde_json::to_string(&t.dependents)?,
                t.input.to_string(),
                serde_json::to_string(&t.retry_policy)?,
                t.timeout.map(|d| d.as_millis() as i64),
                t.allow_failure as i64,
                serde_json::Value::Object(t.metadata.clone()).to_string(),
                t.dependencies.len() as i64,
                ready,
            ])?;
        }
        Ok(())
    }

    async fn budget_row(&mut self, workflow_id: &str) -> Result<Option<(WorkflowStatus, Option<String>, Usage)>> {
        let mut select = self.conn.prepare_cached(
            "SELECT status, budget, egress_requests, llm_tokens FROM workflows WHERE workflow_id = ?1",
        )?;
        let row = select
            .query_row([workflow_id], |r| {
                let usage =
                    Usage { egress_requests: r.get::<_, i64>(2)? as u64, llm_tokens: r.get::<_, i64>(3)? as u64 };
                Ok((r.get::<_, String>(0)?, r.get(1)?, usage))
            })
            .optional()?;
        row.map(|(status, budget, usage)| Ok((parse_status(&status)?, budget, usage))).transpose()
    }

    async fn set_budget(&mut self, workflow_id: &str, budget: Option<&str>) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE workflows SET budget = ?2 WHERE workflow_id = ?1")?
            .execute((workflow_id, budget))?;
        Ok(())
    }

    async fn control_view(&mut self, workflow_id: &str) -> Result<Option<WorkflowView>> {
        let mut select = self
            .conn
            .prepare_cached("SELECT status, version, running, started_at FROM workflows WHERE workflow_id = ?1")?;
        let row = select
            .query_row([workflow_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get::<_, Option<i64>>(3)?.is_some()))
            })
            .optional()?;
        row.map(|(status, version, running, started)| {
            Ok(WorkflowView { status: parse_status(&status)?, version, running, started })
        })
        .transpose()
    }

    async fn set_status(
        &mut self,
        workflow_id: &str,
        status: WorkflowStatus,
        pause_reason: Option<&str>,
        started_at: Option<i64>,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE workflows SET status = ?2, pause_reason = ?3, started_at = COALESCE(started_at, ?4) \
                 WHERE workflow_id = ?1",
            )?
            .execute((workflow_id, status.as_str(), pause_reason, started_at))?;
        Ok(())
    }

    async fn mark_roots_ready(&mut self, workflow_id: &str, now: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE tasks SET ready_at = ?2, ready_since = ?2 WHERE workflow_id = ?1 AND status = 'pending' \
                 AND deps_remaining = 0 AND ready_at IS NULL",
            )?
            .execute((workflow_id, now))?;
        Ok(())
    }

    async fn snapshot_at(&mut self, workflow_id: &str, version: i64) -> Result<Option<(i64, String)>> {
        let mut select = self.conn.prepare_cached(
            "SELECT version, state FROM workflow_snapshots WHERE workflow_id = ?1 AND version <= ?2 \
             ORDER BY version DESC LIMIT 1",
        )?;
        Ok(select.query_row((workflow_id, version), |r| Ok((r.get(0)?, r.get(1)?))).optional()?)
    }

    async fn versions_between(
        &mut self,
        workflow_id: &str,
        after: i64,
        upto: i64,
    ) -> Result<Vec<(i64, String, String)>> {
        let mut select = self.conn.prepare_cached(
            "SELECT version, status, changes FROM workflow_versions WHERE workflow_id = ?1 AND version > ?2 \
             AND version <= ?3 ORDER BY version",
        )?;
        let rows = select.query_map((workflow_id, after, upto), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    async fn task_shapes(&mut self, workflow_id: &str) -> Result<Vec<TaskShape>> {
        let mut select = self
            .conn
            .prepare_cached("SELECT task_id, dependencies, allow_failure FROM tasks WHERE workflow_id = ?1")?;
        let rows = select.query_map([workflow_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)? != 0))
        })?;
        let mut tasks = Vec::new();
        for row in rows {
            let (task_id, dependencies, allow_failure) = row?;
            tasks.push(TaskShape { task_id, dependencies: serde_json::from_str(&dependencies)?, allow_failure });
        }
        Ok(tasks)
    }

    async fn restore_task(
        &mut self,
        workflow_id: &str,
        task_id: &str,
        state: &TaskVersionState,
        waiting: i64,
    ) -> Result<()> {
        let pending = state.status == TaskStatus::Pending;
        self.conn
            .prepare_cached(
                "UPDATE tasks SET status = ?3, output = ?4, error = ?5, deps_remaining = ?6, ready_at = NULL, \
                 ready_since = NULL, lease_owner = NULL, lease_expires = NULL, \
                 finished_at = CASE WHEN ?7 THEN NULL ELSE finished_at END \
                 WHERE workflow_id = ?1 AND task_id = ?2",
            )?
            .execute(rusqlite::params![
                workflow_id,
                task_id,
                state.status.as_str(),
                state.output.as_ref().map(|v| v.to_string()),
                state.error.as_ref().map(|v| v.to_string()),
                waiting,
                pending,
            ])?;
        Ok(())
    }

    async fn restore_counters(&mut self, workflow_id: &str, remaining: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE workflows SET running = 0, remaining = ?2, finished_at = NULL, error = NULL \
                 WHERE workflow_id = ?1",
            )?
            .execute((workflow_id, remaining))?;
        Ok(())
    }
}
