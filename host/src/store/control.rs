//! Operations on a whole workflow: pause, resume, cancel and rollback.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::inserts::Inserts;
use super::rows::{change, Changes, History, TaskVersionState};
use super::versions::parse_status;
use super::{now_us, Dialect, Result, Store, StoreError};
use crate::events::{EventType, NewEvent};
use crate::workflow::{Budget, TaskStatus, Usage, WorkflowStatus};

/// An operation on a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Cancel,
    /// Roll back to this version.
    Rollback(i64),
}

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
        let mut tx = self.write.begin().await?;
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
        let meta = json!({ "from": before.unwrap_or_default(), "to": budget, "usage": usage });
        let mut history = History::default();
        history.events(workflow_id, vec![NewEvent::new(EventType::WorkflowBudgetChanged).metadata(meta)]);
        let flushed = history.flush(&mut tx, Inserts::new(self.dialect), self.events_enabled()).await?;
        tx.commit().await?;
        self.count_events(flushed.events);
        Ok(BudgetState { workflow_id: workflow_id.to_string(), status, budget, usage })
    }

    /// Apply an operation. Refused with [`StoreError::Conflict`] when the workflow's status does
    /// not allow it.
    pub async fn control(&self, workflow_id: &str, op: Control) -> Result<ControlOutcome> {
        let mut tx = self.write.begin().await?;
        let lock = if self.dialect == Dialect::Postgres { " FOR UPDATE" } else { "" };
        if self.dialect == Dialect::Postgres {
            // Lock in the order every other writer uses (task rows, then the workflow row), so a
            // concurrent outcome or claim waits instead of deadlocking.
            sqlx::query("SELECT task_id FROM tasks WHERE workflow_id = $1 ORDER BY task_id FOR UPDATE")
                .bind(workflow_id)
                .fetch_all(&mut *tx)
                .await?;
        }
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT status, version, running FROM workflows WHERE workflow_id = $1{lock}"
        )))
        .bind(workflow_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::WorkflowNotFound(workflow_id.to_string()))?;
        let status = parse_status(&row.try_get::<String, _>(0)?)?;
        let version: i64 = row.try_get(1)?;
        let running: i64 = row.try_get(2)?;
        let unchanged = |status| ControlOutcome {
            workflow_id: workflow_id.to_string(),
            status,
            version,
            changed: false,
            cancelled_tasks: Vec::new(),
        };
        let refuse = |what: &str, hint: &str| {
            Err(StoreError::Conflict(format!("workflow `{workflow_id}` is {status}: it cannot be {what}{hint}")))
        };
        let mut changes = Changes::new();
        let mut events = Vec::new();
        let mut cancelled = Vec::new();
        let now = now_us();
        let (new_status, reason) = match op {
            Control::Pause => match status {
                WorkflowStatus::Paused => return Ok(unchanged(status)),
                WorkflowStatus::Running | WorkflowStatus::Pending => {
                    events.push(NewEvent::new(EventType::WorkflowPaused).status("paused"));
                    (WorkflowStatus::Paused, "paused")
                }
                _ => return refuse("paused", ""),
            },
            Control::Resume => match status {
                WorkflowStatus::Running => return Ok(unchanged(status)),
                WorkflowStatus::Paused | WorkflowStatus::Pending => {
                    self.mark_roots_ready(&mut tx, workflow_id, now).await?;
                    let first = status == WorkflowStatus::Pending
                        && sqlx::query_scalar::<_, Option<i64>>(
                            "SELECT started_at FROM workflows WHERE workflow_id = $1",
                        )
                        .bind(workflow_id)
                        .fetch_one(&mut *tx)
                        .await?
                        .is_none();
                    let t = if first { EventType::WorkflowStarted } else { EventType::WorkflowResumed };
                    sqlx::query("UPDATE workflows SET started_at = COALESCE(started_at, $2) WHERE workflow_id = $1")
                        .bind(workflow_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    events.push(NewEvent::new(t).status("running"));
                    (WorkflowStatus::Running, "resumed")
                }
                _ => return refuse("resumed", ": roll it back to a version first"),
            },
            Control::Cancel => match status {
                WorkflowStatus::Cancelled => return Ok(unchanged(status)),
                WorkflowStatus::Running | WorkflowStatus::Paused | WorkflowStatus::Pending => {
                    cancelled = self
                        .stop_remaining(&mut tx, workflow_id, TaskStatus::Cancelled, &mut changes, &mut events)
                        .await?;
                    self.end_workflow(&mut tx, workflow_id, WorkflowStatus::Cancelled, None, now).await?;
                    let meta = json!({ "cancelled_tasks": cancelled });
                    events.push(NewEvent::new(EventType::WorkflowCancelled).status("cancelled").metadata(meta));
                    (WorkflowStatus::Cancelled, "cancelled")
                }
                _ => return refuse("cancelled", ""),
            },
            Control::Rollback(to) => {
                if status == WorkflowStatus::Running {
                    return refuse("rolled back", ": pause it first");
                }
                if running > 0 {
                    return Err(StoreError::Conflict(format!(
                        "workflow `{workflow_id}` still has {running} running task(s): wait for them to finish, then roll back"
                    )));
                }
                if to < 1 || to > version {
                    return Err(StoreError::VersionNotFound(workflow_id.to_string(), to));
                }
                let target = self.state_at_on(&mut tx, workflow_id, to).await?;
                self.restore(&mut tx, workflow_id, &target.tasks, &mut changes).await?;
                let meta = json!({ "to_version": to, "from_version": version });
                events.push(NewEvent::new(EventType::WorkflowRolledBack).status("paused").metadata(meta));
                (WorkflowStatus::Paused, "rolled_back")
            }
        };
        // Why it is paused, in its state; none once it runs or ends.
        let pause_reason = (new_status == WorkflowStatus::Paused)
            .then(|| json!({ "reason": if reason == "paused" { "requested" } else { reason } }).to_string());
        sqlx::query("UPDATE workflows SET status = $2, pause_reason = $3 WHERE workflow_id = $1")
            .bind(workflow_id)
            .bind(new_status.as_str())
            .bind(pause_reason)
            .execute(&mut *tx)
            .await?;
        let mut history = History::default();
        history.version(workflow_id, new_status, reason, changes);
        history.events(workflow_id, events);
        let flushed = history.flush(&mut tx, Inserts::new(self.dialect), self.events_enabled()).await?;
        let version = flushed.versions.first().map(|(_, v)| *v).unwrap_or(version + 1);
        if matches!(op, Control::Rollback(_)) {
            super::rows::write_snapshot(&mut tx, workflow_id, version, new_status).await?;
        }
        super::rows::notify_hosts(&mut tx, self.dialect, &self.origin, vec![(workflow_id, true)]).await?;
        tx.commit().await?;
        self.count_events(flushed.events);
        Ok(ControlOutcome {
            workflow_id: workflow_id.to_string(),
            status: new_status,
            version,
            changed: true,
            cancelled_tasks: cancelled,
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

    /// Set every task to its state in `target`; what was not done there becomes `pending` again.
    async fn restore(
        &self,
        conn: &mut AnyConnection,
        workflow_id: &str,
        target: &std::collections::BTreeMap<String, TaskVersionState>,
        changes: &mut Changes,
    ) -> Result<()> {
        let rows = sqlx::query("SELECT task_id, dependencies, allow_failure, status FROM tasks WHERE workflow_id = $1")
            .bind(workflow_id)
            .fetch_all(&mut *conn)
            .await?;
        let mut tasks = Vec::with_capacity(rows.len());
        for r in rows {
            let task_id: String = r.try_get(0)?;
            let deps: Vec<String> = serde_json::from_str(&r.try_get::<String, _>(1)?)?;
            let allow_failure = r.try_get::<i64, _>(2)? != 0;
            let state = target.get(&task_id).cloned().unwrap_or(TaskVersionState {
                status: TaskStatus::Pending,
                attempt: 0,
                output: None,
                error: None,
            });
            let keep = state.status == TaskStatus::Completed || (state.status == TaskStatus::Failed && allow_failure);
            let state = if keep {
                state
            } else {
                TaskVersionState { status: TaskStatus::Pending, attempt: state.attempt, output: None, error: None }
            };
            tasks.push((task_id, deps, allow_failure, state));
        }
        let settled: HashMap<&str, bool> =
            tasks.iter().map(|(id, _, _, s)| (id.as_str(), s.status != TaskStatus::Pending)).collect();
        let mut remaining = 0i64;
        for (task_id, deps, _, state) in &tasks {
            let deps_remaining = deps.iter().filter(|d| !settled.get(d.as_str()).copied().unwrap_or(false)).count();
            if state.status == TaskStatus::Pending {
                remaining += 1;
            }
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
            .bind(deps_remaining as i64)
            .execute(&mut *conn)
            .await?;
            change(changes, task_id, state.clone());
        }
        sqlx::query(
            "UPDATE workflows SET running = 0, remaining = $2, finished_at = NULL, error = NULL WHERE workflow_id = $1",
        )
        .bind(workflow_id)
        .bind(remaining)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
