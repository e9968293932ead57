//! How a workflow ends: completed when nothing remains, failed by a task, paused by its budget,
//! and what stopping does to the tasks not finished yet.

use serde_json::{json, Value};

use super::{Changes, TaskVersionState};
use crate::events::{EventKind, Json, NewEvent, TaskNames};
use crate::workflow::{Exhausted, TaskStatus, WorkflowStatus};

/// Whether a workflow is now complete: tasks of it settled just now, none remain, and it has not
/// ended otherwise (a paused workflow completes too).
pub fn completes(settled_now: i64, remaining: i64, status: WorkflowStatus) -> bool {
    settled_now > 0 && remaining == 0 && !status.is_terminal()
}

/// The event of a workflow that completed.
pub fn workflow_completed() -> NewEvent {
    NewEvent::new(EventKind::WorkflowCompleted)
}

/// A workflow that failed because `task_id` did (with `error`), having cancelled the running
/// attempts of `cancelled`: the reason it records, and its event.
pub fn workflow_failed(task_id: &str, error: Option<&Value>, cancelled: &[String]) -> (Value, NewEvent) {
    let reason = json!({ "task_id": task_id, "error": error });
    let e = EventKind::WorkflowFailed { task_id: task_id.into(), cancelled_tasks: cancelled.to_vec() };
    (reason, NewEvent::new(e))
}

/// A running workflow whose budget refused a request of `task_id` pauses: the reason it keeps
/// in its state (`pause_reason`), and its event.
pub fn budget_paused(task_id: &str, exhausted: &Exhausted) -> (Value, NewEvent) {
    let reason = json!({
        "reason": "budget_exhausted", "task_id": task_id, "budget": exhausted.budget,
        "limit": exhausted.limit, "used": exhausted.used,
    });
    let event = NewEvent::new(EventKind::WorkflowPaused { budget: Some(Json::of(&reason)) });
    (reason, event)
}

/// Why a workflow's unfinished tasks stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A task failed the workflow: what has not started is skipped.
    Failed,
    /// An operator cancelled it: what has not started is cancelled.
    Cancelled,
}

/// A task of a stopping workflow that has not finished (running, pending or retrying).
#[derive(Debug, Clone)]
pub struct Unfinished {
    pub task_id: String,
    pub agent_id: String,
    pub agent_type: String,
    pub status: TaskStatus,
    pub attempt: u32,
    pub error: Option<Value>,
}

/// What stopping a workflow's unfinished tasks does.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// Running attempts, now cancelled: (task id, attempt).
    pub cancelled: Vec<(String, u32)>,
    /// Tasks that will not start, and the status they take (`skipped` or `cancelled`).
    pub not_started: Vec<String>,
    pub not_started_status: TaskStatus,
    pub changes: Changes,
    pub events: Vec<NewEvent>,
}

impl Stopped {
    /// The tasks whose running attempts were cancelled.
    pub fn cancelled_tasks(&self) -> Vec<String> {
        self.cancelled.iter().map(|(t, _)| t.clone()).collect()
    }
}

/// The rule for stopping: running attempts are cancelled; the rest is skipped when the workflow
/// failed (each with a `task_skipped` event) or cancelled when it was cancelled.
pub fn stop(unfinished: Vec<Unfinished>, why: Stop) -> Stopped {
    let not_started = match why {
        Stop::Failed => TaskStatus::Skipped,
        Stop::Cancelled => TaskStatus::Cancelled,
    };
    let mut s = Stopped {
        cancelled: Vec::new(),
        not_started: Vec::new(),
        not_started_status: not_started,
        changes: Changes::new(),
        events: Vec::new(),
    };
    for t in unfinished {
        if t.status == TaskStatus::Running {
            s.changes.insert(t.task_id.clone(), TaskVersionState::bare(TaskStatus::Cancelled, t.attempt));
            s.cancelled.push((t.task_id, t.attempt));
            continue;
        }
        if why == Stop::Failed {
            let task = TaskNames::new(&t.task_id, &t.agent_id, &t.agent_type);
            s.events.push(NewEvent::new(EventKind::TaskSkipped { task }));
        }
        let state = TaskVersionState { error: t.error, ..TaskVersionState::bare(not_started, t.attempt) };
        s.changes.insert(t.task_id.clone(), state);
        s.not_started.push(t.task_id);
    }
    s
}
