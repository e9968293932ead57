//! The end of an attempt: completed, retried, or failed for good, and what that settles.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::TaskVersionState;
use crate::events::{micros, AttemptError, EventKind, Json, NewEvent, RetryPlan, TaskNames, Timing};
use crate::workflow::{Exhausted, LogLine, RetryPolicy, TaskFailure, TaskStatus, Usage};

/// What an attempt produced.
#[derive(Debug, Clone)]
pub enum AttemptResult {
    /// Output as JSON text.
    Completed(String),
    Failed(TaskFailure),
    /// An operator reset the task while this attempt held it (`reason` says who and why): the
    /// attempt does not count against the retry policy and the task runs again at once.
    Reset {
        reason: String,
    },
}

/// The outcome of one attempt, as a worker reports it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub workflow_id: String,
    pub task_id: String,
    /// The fence: the attempt number of the claim.
    pub attempt: u32,
    pub result: AttemptResult,
    /// Digest of the plugin version that ran.
    pub plugin_digest: Option<Arc<str>>,
    pub log: Vec<LogLine>,
    pub queue_time: Duration,
    pub execution_time: Duration,
    /// Events observed while running the attempt (handoffs, execution start and end).
    pub events: Vec<NewEvent>,
    /// What the attempt spent on outbound requests, added to the workflow's usage.
    pub usage: Usage,
    /// The workflow's budget refused one of the attempt's requests: the attempt does not count,
    /// the task waits to run again, and the workflow pauses.
    pub exhausted: Option<Exhausted>,
    /// The plugin's peak linear memory in bytes (0 when it did not run).
    pub peak_memory: u64,
}

/// The outcome of an attempt whose worker is gone (it stopped, or its lease expired): a
/// retryable `worker_lost` failure, retried like any other.
pub fn lost_attempt(workflow_id: String, task_id: String, attempt: u32, owner: Option<&str>) -> Outcome {
    let failure = TaskFailure {
        error_type: "worker_lost".into(),
        message: format!(
            "the worker running this attempt ({}) stopped before reporting a result",
            owner.unwrap_or("unknown")
        ),
        retryable: true,
        detail: None,
    };
    Outcome {
        workflow_id,
        task_id,
        attempt,
        result: AttemptResult::Failed(failure),
        plugin_digest: None,
        log: Vec::new(),
        queue_time: Duration::ZERO,
        execution_time: Duration::ZERO,
        events: Vec::new(),
        usage: Usage::default(),
        exhausted: None,
        peak_memory: 0,
    }
}

/// The outcome of an attempt an operator reset: the task is taken from it (fenced: the attempt's
/// own result, if it ever comes, is refused) and runs again.
pub fn reset_attempt(workflow_id: String, task_id: String, attempt: u32, reason: String) -> Outcome {
    Outcome { result: AttemptResult::Reset { reason }, ..lost_attempt(workflow_id, task_id, attempt, None) }
}

/// What the store knows of the task an attempt held, read where it found the attempt's fence
/// still holding.
#[derive(Debug, Clone)]
pub struct Held {
    pub agent_id: String,
    pub agent_type: String,
    pub dependents: Vec<String>,
    pub allow_failure: bool,
    pub policy: RetryPolicy,
    /// When its first attempt started (µs).
    pub first_started: Option<i64>,
    /// Attempts a budget refused, which the retry policy does not count.
    pub uncounted: u32,
}

/// How the task's row changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskUpdate {
    /// Completed with the attempt's output.
    Completed,
    /// Waits for its next attempt, due at `ready_at` (µs). `uncounted`: the workflow's budget
    /// refused this attempt, so the retry policy does not count it.
    Retrying { ready_at: i64, uncounted: bool },
    /// Failed for good.
    Failed,
}

/// What the end of an attempt does.
#[derive(Debug, Clone)]
pub struct AttemptEnded {
    pub update: TaskUpdate,
    /// The error recorded on the task and on the attempt (none when it completed).
    pub error: Option<Value>,
    /// The task counts as done for its dependents and for the workflow (completed, or failed
    /// with `allow_failure`).
    pub settled: bool,
    /// The task failed for good without `allow_failure`: the workflow fails.
    pub fails_workflow: bool,
    /// The task's state in the version this makes.
    pub change: TaskVersionState,
    pub events: Vec<NewEvent>,
}

impl AttemptEnded {
    /// The task's status after it.
    pub fn task_status(&self) -> TaskStatus {
        match self.update {
            TaskUpdate::Completed => TaskStatus::Completed,
            TaskUpdate::Retrying { .. } => TaskStatus::Retrying,
            TaskUpdate::Failed => TaskStatus::Failed,
        }
    }

    /// The attempt's own status: `completed` or `failed` (a retried task's attempt failed).
    pub fn attempt_status(&self) -> &'static str {
        match self.update {
            TaskUpdate::Completed => "completed",
            _ => "failed",
        }
    }

    /// When the retry becomes due (µs), for one waiting out a delay.
    pub fn retry_at(&self) -> Option<i64> {
        match self.update {
            TaskUpdate::Retrying { ready_at, uncounted: false } => Some(ready_at),
            _ => None,
        }
    }
}

/// The rule for the end of an attempt `o` of the task `held`, at `now` (µs). Events are built
/// only when `tracking`, except the failure itself, which is always recorded.
pub fn attempt_ended(o: &Outcome, held: &Held, now: i64, tracking: bool) -> AttemptEnded {
    match &o.result {
        AttemptResult::Completed(output) => {
            let mut events = Vec::new();
            if tracking {
                let execution_us = micros(o.execution_time);
                let timing = Timing {
                    queue_us: micros(o.queue_time),
                    execution_us,
                    total_us: held.first_started.map_or(execution_us, |s| (now - s).max(0) as u64),
                };
                let kind = EventKind::TaskCompleted { task: names(o, held), attempt: o.attempt, timing };
                events.push(NewEvent::at(kind, now));
            }
            let output = serde_json::from_str(output).unwrap_or(Value::Null);
            let change =
                TaskVersionState { output: Some(output), ..TaskVersionState::bare(TaskStatus::Completed, o.attempt) };
            AttemptEnded {
                update: TaskUpdate::Completed,
                error: None,
                settled: true,
                fails_workflow: false,
                change,
                events,
            }
        }
        AttemptResult::Failed(f) => failed(o, f, held, now),
        AttemptResult::Reset { reason } => reset(o, reason, held, now),
    }
}

/// An attempt an operator reset: recorded as a `reset` failure, not counted, the task ready now.
fn reset(o: &Outcome, reason: &str, held: &Held, now: i64) -> AttemptEnded {
    let error = json!({ "error_type": RESET, "message": reason, "attempt": o.attempt, "retryable": true });
    let kind = EventKind::Failure {
        task: names(o, held),
        attempt: o.attempt,
        error: AttemptError { error_type: RESET.into(), message: reason.into(), detail: None },
    };
    AttemptEnded {
        update: TaskUpdate::Retrying { ready_at: now, uncounted: true },
        error: Some(error),
        settled: false,
        fails_workflow: false,
        change: TaskVersionState::bare(TaskStatus::Retrying, o.attempt),
        events: vec![NewEvent::at(kind, now)],
    }
}

/// The error type of an attempt an operator reset.
pub const RESET: &str = "reset";

/// An attempt that failed: retried while its policy allows (a budget's refusal is not counted),
/// else the task fails, and the workflow with it unless the task may fail.
fn failed(o: &Outcome, f: &TaskFailure, held: &Held, now: i64) -> AttemptEnded {
    let error = json!({
        "error_type": f.error_type, "message": f.message, "attempt": o.attempt,
        "retryable": f.retryable, "detail": f.detail,
    });
    let event_error = AttemptError {
        error_type: f.error_type.clone(),
        message: f.message.clone(),
        detail: f.detail.as_ref().map(Json::of),
    };
    let (task, attempt) = (names(o, held), o.attempt);
    let at = |kind| NewEvent::at(kind, now);
    let mut events = vec![at(EventKind::Failure { task: task.clone(), attempt, error: event_error.clone() })];
    let counted = o.attempt.saturating_sub(held.uncounted);
    let (update, change_error) = if o.exhausted.is_some() {
        // Ready at once: it is claimed when the workflow runs again.
        (TaskUpdate::Retrying { ready_at: now, uncounted: true }, None)
    } else if f.retryable && counted < held.policy.max_attempts {
        let delay = held.policy.delay(o.attempt);
        let retry = RetryPlan { delay_us: micros(delay), max_attempts: held.policy.max_attempts };
        events.push(at(EventKind::TaskRetrying { task: task.clone(), attempt, error: event_error, retry }));
        events.push(at(EventKind::Retry { task, attempt, retry }));
        (TaskUpdate::Retrying { ready_at: now + delay.as_micros() as i64, uncounted: false }, Some(error.clone()))
    } else {
        let (duration_us, allow_failure) = (micros(o.execution_time), held.allow_failure);
        events.push(at(EventKind::TaskFailed { task, attempt, error: event_error, duration_us, allow_failure }));
        (TaskUpdate::Failed, Some(error.clone()))
    };
    let failed = update == TaskUpdate::Failed;
    let status = if failed { TaskStatus::Failed } else { TaskStatus::Retrying };
    AttemptEnded {
        update,
        error: Some(error),
        settled: failed && held.allow_failure,
        fails_workflow: failed && !held.allow_failure,
        change: TaskVersionState { error: change_error, ..TaskVersionState::bare(status, o.attempt) },
        events,
    }
}

/// The task's names, shared by the events that recording makes: those of the attempt's own
/// events (the claim's), else new ones.
fn names(o: &Outcome, held: &Held) -> TaskNames {
    o.events
        .iter()
        .find_map(|e| e.kind.task().cloned())
        .unwrap_or_else(|| TaskNames::new(&o.task_id, &held.agent_id, &held.agent_type))
}
