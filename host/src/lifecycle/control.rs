//! An operator's control of a workflow: pause, resume, cancel, roll back to a version.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};

use super::TaskVersionState;
use crate::events::{EventKind, NewEvent};
use crate::workflow::{TaskStatus, WorkflowStatus};

/// An operation on a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Cancel,
    /// Roll back to this version.
    Rollback(i64),
}

/// What a control needs to know of its workflow.
#[derive(Debug, Clone, Copy)]
pub struct WorkflowView {
    pub status: WorkflowStatus,
    pub version: i64,
    /// Attempts running now.
    pub running: i64,
    /// Whether it ever ran.
    pub started: bool,
}

/// Why a control is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The workflow's status does not allow it (the message says what would).
    Conflict(String),
    /// Rollback to a version the workflow does not have.
    NoVersion(i64),
}

/// What a control does, once allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlStep {
    /// Nothing: the workflow is already so.
    Unchanged,
    /// No new task starts; running ones finish.
    Pause,
    /// Ready tasks start again; `first` when the workflow never ran.
    Resume { first: bool },
    /// Running attempts are cancelled, the rest will not start, the workflow ends.
    Cancel,
    /// Tasks go back to their state at version `to`, the workflow paused; from `from`.
    Rollback { to: i64, from: i64 },
}

/// The rule for `op` on a workflow in `view`.
pub fn control(workflow_id: &str, op: Control, view: &WorkflowView) -> Result<ControlStep, Refusal> {
    use WorkflowStatus::*;
    let status = view.status;
    let refuse = |what: &str, hint: &str| {
        Err(Refusal::Conflict(format!("workflow `{workflow_id}` is {status}: it cannot be {what}{hint}")))
    };
    match (op, status) {
        (Control::Pause, Paused) | (Control::Resume, Running) | (Control::Cancel, Cancelled) => {
            Ok(ControlStep::Unchanged)
        }
        (Control::Pause, Running | Pending) => Ok(ControlStep::Pause),
        (Control::Pause, _) => refuse("paused", ""),
        (Control::Resume, Paused | Pending) => Ok(ControlStep::Resume { first: status == Pending && !view.started }),
        (Control::Resume, _) => refuse("resumed", ": roll it back to a version first"),
        (Control::Cancel, Running | Paused | Pending) => Ok(ControlStep::Cancel),
        (Control::Cancel, _) => refuse("cancelled", ""),
        (Control::Rollback(_), Running) => refuse("rolled back", ": pause it first"),
        (Control::Rollback(_), _) if view.running > 0 => Err(Refusal::Conflict(format!(
            "workflow `{workflow_id}` still has {} running task(s): wait for them to finish, then roll back",
            view.running
        ))),
        (Control::Rollback(to), _) if to < 1 || to > view.version => Err(Refusal::NoVersion(to)),
        (Control::Rollback(to), _) => Ok(ControlStep::Rollback { to, from: view.version }),
    }
}

impl ControlStep {
    /// The workflow's status after the step and the reason its version records; none when the
    /// step changes nothing.
    pub fn outcome(self) -> Option<(WorkflowStatus, &'static str)> {
        Some(match self {
            ControlStep::Unchanged => return None,
            ControlStep::Pause => (WorkflowStatus::Paused, "paused"),
            ControlStep::Resume { .. } => (WorkflowStatus::Running, "resumed"),
            ControlStep::Cancel => (WorkflowStatus::Cancelled, "cancelled"),
            ControlStep::Rollback { .. } => (WorkflowStatus::Paused, "rolled_back"),
        })
    }

    /// Why the workflow is paused after the step, kept in its state; none when it is not paused.
    pub fn pause_reason(self) -> Option<Value> {
        match self {
            ControlStep::Pause => Some(json!({ "reason": "requested" })),
            ControlStep::Rollback { .. } => Some(json!({ "reason": "rolled_back" })),
            _ => None,
        }
    }

    /// The step's own event (after any the stopped tasks made); `cancelled` are the tasks whose
    /// running attempts a cancel stopped.
    pub fn event(self, cancelled: &[String]) -> Option<NewEvent> {
        Some(NewEvent::new(match self {
            ControlStep::Unchanged => return None,
            ControlStep::Pause => EventKind::WorkflowPaused { budget: None },
            ControlStep::Resume { first: true } => EventKind::WorkflowStarted,
            ControlStep::Resume { first: false } => EventKind::WorkflowResumed,
            ControlStep::Cancel => EventKind::WorkflowCancelled { cancelled_tasks: cancelled.to_vec() },
            ControlStep::Rollback { to, from } => EventKind::WorkflowRolledBack { to_version: to, from_version: from },
        }))
    }
}

/// What a rollback needs of each task: its id, dependencies and whether it may fail.
#[derive(Debug, Clone)]
pub struct TaskShape {
    pub task_id: String,
    pub dependencies: Vec<String>,
    pub allow_failure: bool,
}

/// The tasks after a rollback: each one's state and dependencies still unsettled, and how many
/// tasks remain to be done.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    pub tasks: Vec<(String, TaskVersionState, usize)>,
    pub remaining: i64,
}

/// The rule for rolling back to a version whose task states are `target`: what was done there
/// (completed, or failed with `allow_failure`) stays done; everything else is pending again,
/// waiting for its unsettled dependencies.
pub fn rollback(target: &BTreeMap<String, TaskVersionState>, tasks: Vec<TaskShape>) -> Restored {
    let states: Vec<TaskVersionState> = tasks
        .iter()
        .map(|t| {
            let state = target.get(&t.task_id);
            let attempt = state.map_or(0, |s| s.attempt);
            match state {
                Some(s) if s.status == TaskStatus::Completed || (s.status == TaskStatus::Failed && t.allow_failure) => {
                    s.clone()
                }
                _ => TaskVersionState::bare(TaskStatus::Pending, attempt),
            }
        })
        .collect();
    let settled: HashSet<&str> = tasks
        .iter()
        .zip(&states)
        .filter(|(_, s)| s.status != TaskStatus::Pending)
        .map(|(t, _)| t.task_id.as_str())
        .collect();
    let mut restored = Restored::default();
    for (t, state) in tasks.iter().zip(states) {
        let waiting = t.dependencies.iter().filter(|d| !settled.contains(d.as_str())).count();
        restored.remaining += (state.status == TaskStatus::Pending) as i64;
        restored.tasks.push((t.task_id.clone(), state, waiting));
    }
    restored
}
