//! Operations on a whole workflow: pause, resume, cancel and rollback.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use super::outcome::stop_remaining;
use super::rows::{notices, History};
use super::tx::{NewRows, Transaction, WriteTx};
use super::versions::state_at_in;
use super::{Result, Store, StoreError};
use crate::clock::now_us;
use crate::events::{EventKind, Json, NewEvent};
use crate::lifecycle::{self, Changes, Control, ControlStep, Refusal, Stop, TaskVersionState};
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
        let op = SetBudget { workflow_id: workflow_id.to_string(), budget, tracking: self.events_enabled() };
        let (state, events) = self.transact(op).await?;
        self.count_events(events);
        Ok(state)
    }

    /// Apply an operation, as [`lifecycle::control`] rules. Refused with [`StoreError::Conflict`]
    /// when the workflow's status does not allow it.
    pub async fn control(&self, workflow_id: &str, op: Control) -> Result<ControlOutcome> {
        let op = ApplyControl {
            workflow_id: workflow_id.to_string(),
            op,
            tracking: self.events_enabled(),
            origin: self.origin.clone(),
        };
        let (outcome, events) = self.transact(op).await?;
        self.count_events(events);
        Ok(outcome)
    }
}

/// The transaction of [`Store::set_budget`].
struct SetBudget {
    workflow_id: String,
    budget: Budget,
    tracking: bool,
}

impl Transaction for SetBudget {
    /// The budget's state and how many events were written.
    type Output = (BudgetState, u64);

    async fn run<T: WriteTx>(self, tx: &mut T) -> Result<Self::Output> {
        let SetBudget { workflow_id, budget, tracking } = self;
        let (status, before, usage) =
            tx.budget_row(&workflow_id).await?.ok_or_else(|| StoreError::WorkflowNotFound(workflow_id.clone()))?;
        if status.is_terminal() {
            return Err(StoreError::Conflict(format!(
                "workflow `{workflow_id}` is {status}: its budget can no longer change"
            )));
        }
        let before: Option<Budget> = before.map(|b| serde_json::from_str(&b)).transpose()?;
        let stored = (!budget.is_unlimited()).then(|| serde_json::to_string(&budget)).transpose()?;
        tx.set_budget(&workflow_id, stored.as_deref()).await?;
        let change = Json::of(&json!({ "from": before.unwrap_or_default(), "to": budget, "usage": usage }));
        let mut history = History::default();
        history.events(&workflow_id, vec![NewEvent::new(EventKind::WorkflowBudgetChanged { change })]);
        let flushed = history.flush(tx, NewRows::default(), tracking).await?;
        Ok((BudgetState { workflow_id, status, budget, usage }, flushed.events))
    }
}

/// The transaction of [`Store::control`].
struct ApplyControl {
    workflow_id: String,
    op: Control,
    tracking: bool,
    origin: Arc<str>,
}

/// What a control step changed: task changes, events, cancelled tasks.
type StepChanges = (Changes, Vec<NewEvent>, Vec<String>);

impl Transaction for ApplyControl {
    /// What the operation did and how many events were written.
    type Output = (ControlOutcome, u64);

    async fn run<T: WriteTx>(self, tx: &mut T) -> Result<Self::Output> {
        let workflow_id = self.workflow_id.as_str();
        let view =
            tx.control_view(workflow_id).await?.ok_or_else(|| StoreError::WorkflowNotFound(workflow_id.into()))?;
        let step = lifecycle::control(workflow_id, self.op, &view).map_err(|r| match r {
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
            return Ok((outcome(view.status, view.version, false, Vec::new()), 0));
        };
        let now = now_us();
        let (changes, mut events, cancelled) = apply_step(tx, workflow_id, &step, now).await?;
        events.extend(step.event(&cancelled));
        let resumed = matches!(step, ControlStep::Resume { .. }).then_some(now);
        let pause_reason = step.pause_reason().map(|r| r.to_string());
        tx.set_status(workflow_id, status, pause_reason.as_deref(), resumed).await?;
        let mut history = History::default();
        history.version(workflow_id, status, reason, changes);
        history.events(workflow_id, events);
        let rows = NewRows { notices: notices(&self.origin, vec![(workflow_id, true)]), ..NewRows::default() };
        let flushed = history.flush(tx, rows, self.tracking).await?;
        let version = flushed.versions.first().map(|(_, v)| *v).unwrap_or(view.version + 1);
        if matches!(step, ControlStep::Rollback { .. }) {
            super::rows::write_snapshot(tx, workflow_id, version, status).await?;
        }
        Ok((outcome(status, version, true, cancelled), flushed.events))
    }
}

/// Change the tasks as a control step says: roots ready on resume, everything stopped on cancel,
/// every task restored on rollback.
async fn apply_step<T: WriteTx>(tx: &mut T, workflow_id: &str, step: &ControlStep, now: i64) -> Result<StepChanges> {
    match step {
        ControlStep::Resume { .. } => tx.mark_roots_ready(workflow_id, now).await?,
        ControlStep::Cancel => {
            let stopped = stop_remaining(tx, workflow_id, Stop::Cancelled).await?;
            tx.end_workflow(workflow_id, WorkflowStatus::Cancelled, None, now).await?;
            let cancelled = stopped.cancelled_tasks();
            return Ok((stopped.changes, stopped.events, cancelled));
        }
        ControlStep::Rollback { to, .. } => {
            let target = state_at_in(tx, workflow_id, *to).await?;
            return Ok((restore(tx, workflow_id, &target.tasks).await?, Vec::new(), Vec::new()));
        }
        ControlStep::Pause | ControlStep::Unchanged => {}
    }
    Ok((Changes::new(), Vec::new(), Vec::new()))
}

/// Set every task to its state in `target`, as [`lifecycle::rollback`] rules. Returns the
/// version's task changes.
async fn restore<T: WriteTx>(
    tx: &mut T,
    workflow_id: &str,
    target: &BTreeMap<String, TaskVersionState>,
) -> Result<Changes> {
    let restored = lifecycle::rollback(target, tx.task_shapes(workflow_id).await?);
    let mut changes = Changes::new();
    for (task_id, state, waiting) in restored.tasks {
        tx.restore_task(workflow_id, &task_id, &state, waiting as i64).await?;
        changes.insert(task_id, state);
    }
    tx.restore_counters(workflow_id, restored.remaining).await?;
    Ok(changes)
}
