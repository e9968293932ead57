//! Operations on a whole workflow: pause, resume, cancel and rollback.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::outcome::stop_remaining;
use super::rows::History;
use super::tx::{NewRows, WriteTx};
use super::tx_any::AnyTx;
use super::versions::parse_status;
use super::{Dialect, Result, Store, StoreError};
use crate::clock::now_us;
use crate::events::{EventKind, Json, NewEvent};
use crate::lifecycle::{self, Changes, Control, ControlStep, Refusal, Stop, TaskShape, TaskVersionState, WorkflowView};
use crate::workflow::{Budget, Usage, WorkflowStatus};

/// What an operation did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ControlOutcome {
    pub workflow_id: String,
    pub status: WorkflowStatus,
    pub version: i64,
    /// Whether anything changed (pausing a paused workflow changes nothing).
    pub changed: bool,
    /// Tasks whose running attempts were cancelled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cancelled_tasks: Vec<String>,
}

/// A workflow's budget and what it has spent.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BudgetState {
    pub workflow_id: String,
    pub status: WorkflowStatus,
    pub budget: Budget,
    pub usage: Usage,
}

impl Store {
    /// Replace a workflow's budget (an empty one removes every limit). Refused with
    /// [`StoreError::Conflict`] once the workflow has ended. Resuming is a separate operation.
    pub async fn set_budget(&self, workflow_id: &str, budget: Budget) -> Result<BudgetState> {
        let mut tx = self.begin_write().await?;
        let row =
            sqlx::query("SELECT status, budget, egress_requests, llm_tokens FROM workflows WHERE workflow_id = $1")
                .bind(workflow_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::WorkflowNotFound(workflow_id.to_string()))?;
        let status = parse_status(&row.try_get::<String, _>(0)?)?;
        if status.is_terminal() {
            return Err(StoreError::Conflict(format!(
                "workflow `{workflow_id}` is {status}: its budget can no longer change"
            )));
        }
        let before: Option<Budget> =
            row.try_get::<Option<String>, _>(1)?.map(|b| serde_json::from_str(&b)).transpose()?;
        let usage =
            Usage { egress_requests: row.try_get::<i64, _>(2)? as u64, llm_tokens: row.try_get::<i64, _>(3)? as u64 };
        let stored = (!budget.is_unlimited()).then(|| serde_json::to_string(&budget)).transpose()?;
        sqlx::query("UPDATE workflows SET budget = $2 WHERE workflow_id = $1")
            .bind(workflow_id)
            .bind(stored)
            .execute(&mut *tx)
            .await?;
        let change = Json::of(&json!({ "from": before.unwrap_or_default(), "to": budget, "usage": usage }));
        let mut history = History::default();
        history.events(workflow_id, vec![NewEvent::new(EventKind::WorkflowBudgetChanged { change })]);
        let flushed =
            history.flush(&mut AnyTx::new(&mut tx, self.dialect), NewRows::default(), self.events_enabled()).await?;
        tx.commit().await?;
        self.count_events(flushed.events);
        Ok(BudgetState { workflow_id: workflow_id.to_string(), status, budget, usage })
    }

    /// Apply an operation, as [`lifecycle::control`] rules. Refused with [`StoreError::Conflict`]
    /// when the workflow's status does not allow it.
    pub async fn control(&self, workflow_id: &str, op: Control) -> Result<ControlOutcome> {
        let mut tx = self.begin_write().await?;
        let view = self.control_view(&mut tx, workflow_id).await?;
        let step = lifecycle::control(workflow_id, op, &view).map_err(|r| match r {
            Refusal::Conflict(message) => StoreError::Conflict(message),
            Refusal::NoVersion(v) => StoreError::VersionNotFound(workflow_id.to_string(), v),
        })?;
        let outcome = |status, version, changed, cancelled_tasks| ControlOutcome {
            workflow_id: workflow_id.to_string(),
            status,
            version,
            changed,
            cancelled_tasks,
        };
        let Some((status, reason)) = step.outcome() else {
            return Ok(outcome(view.status, view.version, false, Vec::new()));
        };
        let now = now_us();
        let mut changes = Changes::new();
        let mut events = Vec::new();
        let mut cancelled = Vec::new();
        match step {
            ControlStep::Resume { .. } => self.mark_roots_ready(&mut tx, workflow_id, now).await?,
            ControlStep::Cancel => {
                let mut stop_tx = AnyTx::new(&mut tx, self.dialect);
                let stopped = stop_remaining(&mut stop_tx, workflow_id, Stop::Cancelled).await?;
                stop_tx.end_workflow(workflow_id, WorkflowStatus::Cancelled, None, now).await?;
                cancelled = stopped.cancelled_tasks();
                changes = stopped.changes;
                events = stopped.events;
            }
            ControlStep::Rollback { to, .. } => {
                let target = self.state_at_on(&mut tx, workflow_id, to).await?;
                changes = self.restore(&mut tx, workflow_id, &target.tasks).await?;
            }
            ControlStep::Pause | ControlStep::Unchanged => {}
        }
        events.extend(step.event(&cancelled));
        sqlx::query(
            "UPDATE workflows SET status = $2, pause_reason = $3, started_at = COALESCE(started_at, $4) \
             WHERE workflow_id = $1",
        )
        .bind(workflow_id)
        .bind(status.as_str())
        .bind(step.pause_reason().map(|r| r.to_string()))
        .bind(matches!(step, ControlStep::Resume { .. }).then_some(now))
        .execute(&mut *tx)
        .await?;
        let mut history = History::default();
        history.version(workflow_id, status, reason, changes);
        history.events(workflow_id, events);
        let mut history_tx = AnyTx::new(&mut tx, self.dialect);
        let flushed = history.flush(&mut history_tx, NewRows::default(), self.events_enabled()).await?;
        let version = flushed.versions.first().map(|(_, v)| *v).unwrap_or(view.version + 1);
        if matches!(step, ControlStep::Rollback { .. }) {
            super::rows::write_snapshot(&mut history_tx, workflow_id, version, status).await?;
        }
        super::rows::notify_hosts(&mut history_tx, &self.origin, vec![(workflow_id, true)]).await?;
        tx.commit().await?;
        self.count_events(flushed.events);
        Ok(outcome(status, version, true, cancelled))
    }

    /// What a control needs of its workflow, its rows locked on PostgreSQL.
    async fn control_view(&self, conn: &mut AnyConnection, workflow_id: &str) -> Result<WorkflowView> {
        let lock = if self.dialect == Dialect::Postgres { " FOR UPDATE" } else { "" };
        if self.dialect == Dialect::Postgres {
            // Lock in the order every other writer uses (task rows, then the workflow row), so a
            // concurrent outcome or claim waits instead of deadlocking.
            sqlx::query("SELECT task_id FROM tasks WHERE workflow_id = $1 ORDER BY task_id FOR UPDATE")
                .bind(workflow_id)
                .fetch_all(&mut *conn)
                .await?;
        }
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT status, version, running, started_at FROM workflows WHERE workflow_id = $1{lock}"
        )))
        .bind(workflow_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::WorkflowNotFound(workflow_id.to_string()))?;
        Ok(WorkflowView {
            status: parse_status(&row.try_get::<String, _>(0)?)?,
            version: row.try_get(1)?,
            running: row.try_get(2)?,
            started: row.try_get::<Option<i64>, _>(3)?.is_some(),
        })
    }

    /// Pending tasks whose dependencies have all settled become ready.
    async fn mark_roots_ready(&self, conn: &mut AnyConnection, workflow_id: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE tasks SET ready_at = $2, ready_since = $2 WHERE workflow_id = $1 AND status = 'pending' \
             AND deps_remaining = 0 AND ready_at IS NULL",
        )
        .bind(workflow_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Set every task to its state in `target`, as [`lifecycle::rollback`] rules. Returns the
    /// version's task changes.
    async fn restore(
        &self,
        conn: &mut AnyConnection,
        workflow_id: &str,
        target: &BTreeMap<String, TaskVersionState>,
    ) -> Result<Changes> {
        let rows = sqlx::query("SELECT task_id, dependencies, allow_failure FROM tasks WHERE workflow_id = $1")
            .bind(workflow_id)
            .fetch_all(&mut *conn)
            .await?;
        let mut tasks = Vec::with_capacity(rows.len());
        for r in rows {
            tasks.push(TaskShape {
                task_id: r.try_get(0)?,
                dependencies: serde_json::from_str(&r.try_get::<String, _>(1)?)?,
                allow_failure: r.try_get::<i64, _>(2)? != 0,
            });
        }
        let restored = lifecycle::rollback(target, tasks);
        let mut changes = Changes::new();
        for (task_id, state, waiting) in restored.tasks {
            sqlx::query(
                "UPDATE tasks SET status = $3, output = $4, error = $5, deps_remaining = $6, ready_at = NULL, \
                 ready_since = NULL, lease_owner = NULL, lease_expires = NULL, \
                 finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE finished_at END \
                 WHERE workflow_id = $1 AND task_id = $2",
            )
            .bind(workflow_id)
            .bind(&task_id)
            .bind(state.status.as_str())
            .bind(state.output.as_ref().map(|v| v.to_string()))
            .bind(state.error.as_ref().map(|v| v.to_string()))
            .bind(waiting as i64)
            .execute(&mut *conn)
            .await?;
            changes.insert(task_id, state);
        }
        sqlx::query(
            "UPDATE workflows SET running = 0, remaining = $2, finished_at = NULL, error = NULL WHERE workflow_id = $1",
        )
        .bind(workflow_id)
        .bind(restored.remaining)
        .execute(&mut *conn)
        .await?;
        Ok(changes)
    }
}
