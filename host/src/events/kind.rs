//! What happened: one variant per event type, with the fields that type has. Each is built where
//! the step that makes it is decided (submission, claim, the attempt's run, its outcome, control),
//! stored as it is (derived encoding, [`super::blocks`]) and turned into the served [`Event`] in
//! one place ([`EventKind::into_event`]).
//!
//! The stored encoding is positional: **variants and fields are only ever appended**, never
//! reordered or removed (a test pins the bytes of every variant).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::types::{rfc3339, Event, EventError, EventType, Performance};
use crate::workflow::LlmUsage;

/// The task (and its agent) an event is about. The names are shared: every event of a task's
/// attempt carries the same ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskNames {
    pub task_id: Arc<str>,
    pub agent_id: Arc<str>,
    pub agent_type: Arc<str>,
}

impl TaskNames {
    /// Names made from text.
    pub fn new(task_id: &str, agent_id: &str, agent_type: &str) -> TaskNames {
        TaskNames { task_id: task_id.into(), agent_id: agent_id.into(), agent_type: agent_type.into() }
    }
}

/// JSON whose shape is not the host's (error details, a request's record, a budget), kept as
/// text inside an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Json(pub String);

impl Json {
    /// The text of `value`.
    pub fn of(value: &impl Serialize) -> Json {
        Json(serde_json::to_string(value).unwrap_or_else(|_| "null".into()))
    }

    /// The value (null if the text is not JSON, which the host never writes).
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
}

/// The error of a failed attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptError {
    pub error_type: String,
    pub message: String,
    pub detail: Option<Json>,
}

/// Timing of a completed attempt, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    pub queue_us: u64,
    pub execution_us: u64,
    /// From the task's first attempt's start.
    pub total_us: u64,
}

/// When a retried task runs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPlan {
    pub delay_us: u64,
    pub max_attempts: u32,
}

/// One event's kind and fields. Durations are whole microseconds, the precision of every time
/// the host takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventKind {
    /// Stored; `started` when it runs at once.
    WorkflowCreated {
        started: bool,
        name: Option<String>,
        task_count: u32,
        max_parallel_tasks: u32,
    },
    WorkflowStarted,
    WorkflowCompleted,
    /// Failed because `task_id` did; the running attempts of `cancelled_tasks` were stopped.
    WorkflowFailed {
        task_id: Arc<str>,
        cancelled_tasks: Vec<String>,
    },
    WorkflowCancelled {
        cancelled_tasks: Vec<String>,
    },
    /// Paused by an operator (`budget` none) or by its budget (why, as kept in its state).
    WorkflowPaused {
        budget: Option<Json>,
    },
    WorkflowResumed,
    WorkflowRolledBack {
        to_version: i64,
        from_version: i64,
    },
    /// The budget before and after, and the usage then.
    WorkflowBudgetChanged {
        change: Json,
    },
    TaskCreated {
        task: TaskNames,
        dependencies: Vec<String>,
    },
    TaskStarted {
        task: TaskNames,
        attempt: u32,
        worker_id: Arc<str>,
    },
    ExecutionStart {
        task: TaskNames,
        attempt: u32,
        timeout_ms: u64,
    },
    ExecutionEnd {
        task: TaskNames,
        attempt: u32,
        ok: bool,
        duration_us: u64,
        plugin_digest: Arc<str>,
    },
    /// One outbound request: its outcome (`allowed`, `denied`, ...) and its record.
    Egress {
        task: TaskNames,
        attempt: u32,
        outcome: String,
        duration_us: u64,
        request: Json,
    },
    /// The handoff from `source` to the event's task, checked by the handoff schema or the
    /// target's validator plugin, which found `issues` (accepted when there are none).
    Handoff {
        task: TaskNames,
        attempt: u32,
        source: TaskNames,
        handoff_id: String,
        by_validator: bool,
        issues: Json,
        task_description: Json,
    },
    TaskCompleted {
        task: TaskNames,
        attempt: u32,
        timing: Timing,
    },
    Failure {
        task: TaskNames,
        attempt: u32,
        error: AttemptError,
    },
    TaskRetrying {
        task: TaskNames,
        attempt: u32,
        error: AttemptError,
        retry: RetryPlan,
    },
    Retry {
        task: TaskNames,
        attempt: u32,
        retry: RetryPlan,
    },
    TaskFailed {
        task: TaskNames,
        attempt: u32,
        error: AttemptError,
        duration_us: u64,
        allow_failure: bool,
    },
    TaskSkipped {
        task: TaskNames,
    },
}

/// Milliseconds of `us` microseconds: as text a few digits, not seventeen.
pub(super) fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl EventKind {
    /// The type, as served.
    pub fn event_type(&self) -> EventType {
        use EventKind::*;
        match self {
            WorkflowCreated { .. } => EventType::WorkflowCreated,
            WorkflowStarted => EventType::WorkflowStarted,
            WorkflowCompleted => EventType::WorkflowCompleted,
            WorkflowFailed { .. } => EventType::WorkflowFailed,
            WorkflowCancelled { .. } => EventType::WorkflowCancelled,
            WorkflowPaused { .. } => EventType::WorkflowPaused,
            WorkflowResumed => EventType::WorkflowResumed,
            WorkflowRolledBack { .. } => EventType::WorkflowRolledBack,
            WorkflowBudgetChanged { .. } => EventType::WorkflowBudgetChanged,
            TaskCreated { .. } => EventType::TaskCreated,
            TaskStarted { .. } => EventType::TaskStarted,
            ExecutionStart { .. } => EventType::ExecutionStart,
            ExecutionEnd { .. } => EventType::ExecutionEnd,
            Egress { .. } => EventType::Egress,
            Handoff { .. } => EventType::Handoff,
            TaskCompleted { .. } => EventType::TaskCompleted,
            Failure { .. } => EventType::Failure,
            TaskRetrying { .. } => EventType::TaskRetrying,
            Retry { .. } => EventType::Retry,
            TaskFailed { .. } => EventType::TaskFailed,
            TaskSkipped { .. } => EventType::TaskSkipped,
        }
    }

    /// The task the event is about, if any.
    pub fn task(&self) -> Option<&TaskNames> {
        use EventKind::*;
        match self {
            TaskCreated { task, .. }
            | TaskStarted { task, .. }
            | ExecutionStart { task, .. }
            | ExecutionEnd { task, .. }
            | Egress { task, .. }
            | Handoff { task, .. }
            | TaskCompleted { task, .. }
            | Failure { task, .. }
            | TaskRetrying { task, .. }
            | Retry { task, .. }
            | TaskFailed { task, .. }
            | TaskSkipped { task } => Some(task),
            _ => None,
        }
    }

    /// The id of the task the event is about (a workflow's failure names the task that failed it).
    pub fn task_id(&self) -> Option<&str> {
        match self {
            EventKind::WorkflowFailed { task_id, .. } => Some(task_id),
            _ => self.task().map(|t| &*t.task_id),
        }
    }

    /// The agent that sent the handoff, for a handoff.
    fn source_agent(&self) -> Option<&str> {
        match self {
            EventKind::Handoff { source, .. } => Some(&source.agent_id),
            _ => None,
        }
    }

    /// Whether `agent` took part: as the task's agent, or as a handoff's source (its target is
    /// the task's agent).
    pub fn involves(&self, agent: &str) -> bool {
        self.task().is_some_and(|t| &*t.agent_id == agent) || self.source_agent() == Some(agent)
    }

    /// The agents taking part (the task's, then a handoff's source).
    pub fn agents(&self) -> impl Iterator<Item = &str> {
        self.task().map(|t| &*t.agent_id).into_iter().chain(self.source_agent())
    }

    /// The status, as served.
    pub fn status(&self) -> Option<&str> {
        use EventKind::*;
        Some(match self {
            WorkflowCreated { started: true, .. } => "running",
            WorkflowCreated { started: false, .. } | TaskCreated { .. } => "pending",
            WorkflowStarted | WorkflowResumed | TaskStarted { .. } | ExecutionStart { .. } => "running",
            WorkflowCompleted | TaskCompleted { .. } | ExecutionEnd { ok: true, .. } => "completed",
            WorkflowFailed { .. } | ExecutionEnd { ok: false, .. } | Failure { .. } | TaskFailed { .. } => "failed",
            WorkflowCancelled { .. } => "cancelled",
            WorkflowPaused { .. } | WorkflowRolledBack { .. } => "paused",
            WorkflowBudgetChanged { .. } => return None,
            Egress { outcome, .. } => outcome,
            Handoff { issues, .. } => match issues.0.as_str() {
                "[]" => "accepted",
                _ => "rejected",
            },
            TaskRetrying { .. } | Retry { .. } => "retrying",
            TaskSkipped { .. } => "skipped",
        })
    }

    /// The duration (µs) the event reports: an attempt's, a plugin call's or a request's.
    pub fn duration_us(&self) -> Option<u64> {
        use EventKind::*;
        match self {
            ExecutionEnd { duration_us, .. } | Egress { duration_us, .. } | TaskFailed { duration_us, .. } => {
                Some(*duration_us)
            }
            TaskCompleted { timing, .. } => Some(timing.execution_us),
            _ => None,
        }
    }

    /// The attempt an event about a task's attempt belongs to.
    pub fn attempt(&self) -> Option<u32> {
        use EventKind::*;
        match self {
            TaskStarted { attempt, .. }
            | ExecutionStart { attempt, .. }
            | ExecutionEnd { attempt, .. }
            | Egress { attempt, .. }
            | Handoff { attempt, .. }
            | TaskCompleted { attempt, .. }
            | Failure { attempt, .. }
            | TaskRetrying { attempt, .. }
            | Retry { attempt, .. }
            | TaskFailed { attempt, .. } => Some(*attempt),
            _ => None,
        }
    }

    /// The LLM usage an outbound request's response reported.
    pub fn llm_usage(&self) -> Option<LlmUsage> {
        #[derive(Deserialize)]
        struct Request {
            llm_usage: Option<LlmUsage>,
        }
        match self {
            EventKind::Egress { request, .. } => serde_json::from_str::<Request>(&request.0).ok()?.llm_usage,
            _ => None,
        }
    }

    /// The event as served: `seq` and the derived `event_id` are its place in the workflow, `ts`
    /// its time (µs).
    pub fn into_event(self, workflow_id: &str, seq: i64, event_id: String, ts: i64) -> Event {
        let mut e = Event {
            event_id,
            event_type: self.event_type(),
            workflow_id: workflow_id.to_string(),
            seq,
            task_id: self.task_id().map(str::to_string),
            timestamp: rfc3339(ts),
            agent_id: self.task().map(|t| t.agent_id.to_string()),
            agent_type: self.task().map(|t| t.agent_type.to_string()),
            source_agent: self.source_agent().map(str::to_string),
            target_agent: None,
            status: self.status().map(str::to_string),
            duration_ms: self.duration_us().map(ms),
            error: None,
            metadata: None,
            context: None,
            performance: None,
        };
        self.fill(&mut e);
        e
    }

    /// The served event's error, metadata, context and performance.
    fn fill(self, e: &mut Event) {
        use EventKind::*;
        let error = |error: AttemptError, attempt: u32| EventError {
            error_type: error.error_type,
            message: error.message,
            attempt,
            detail: error.detail.map(|d| d.value()),
        };
        let retry = |attempt: u32, r: RetryPlan| {
            json!({ "attempt": attempt, "next_attempt": attempt + 1, "delay_ms": ms(r.delay_us),
                "max_attempts": r.max_attempts })
        };
        e.metadata = match self {
            WorkflowCreated { name, task_count, max_parallel_tasks, .. } => {
                Some(json!({ "name": name, "task_count": task_count, "max_parallel_tasks": max_parallel_tasks }))
            }
            WorkflowStarted | WorkflowCompleted | WorkflowResumed => None,
            WorkflowFailed { task_id, cancelled_tasks } => {
                Some(json!({ "failed_task": task_id, "cancelled_tasks": cancelled_tasks }))
            }
            WorkflowCancelled { cancelled_tasks } => Some(json!({ "cancelled_tasks": cancelled_tasks })),
            WorkflowPaused { budget } => budget.map(|b| b.value()),
            WorkflowRolledBack { to_version, from_version } => {
                Some(json!({ "to_version": to_version, "from_version": from_version }))
            }
            WorkflowBudgetChanged { change } => Some(change.value()),
            TaskCreated { dependencies, .. } => {
                (!dependencies.is_empty()).then(|| json!({ "dependencies": dependencies }))
            }
            TaskStarted { attempt, worker_id, .. } => Some(json!({ "attempt": attempt, "worker_id": worker_id })),
            ExecutionStart { attempt, timeout_ms, .. } => Some(json!({ "attempt": attempt, "timeout_ms": timeout_ms })),
            ExecutionEnd { attempt, plugin_digest, .. } => {
                Some(json!({ "attempt": attempt, "plugin_digest": plugin_digest }))
            }
            Egress { attempt, request, .. } => {
                let mut meta = request.value();
                if let Value::Object(map) = &mut meta {
                    map.insert("attempt".into(), attempt.into());
                }
                Some(meta)
            }
            Handoff { task, attempt, source, handoff_id, by_validator, issues, task_description } => {
                e.target_agent = Some(task.agent_id.to_string());
                e.context = Some(json!({ "task_description": task_description.value() }));
                Some(json!({
                    "handoff_id": handoff_id, "source_task": source.task_id, "target_task": task.task_id,
                    "source_agent_type": source.agent_type,
                    "checked_by": if by_validator { "validator" } else { "schema" },
                    "attempt": attempt, "issues": issues.value(),
                }))
            }
            TaskCompleted { attempt, timing, .. } => {
                e.performance = Some(Performance {
                    queue_time_ms: ms(timing.queue_us),
                    execution_time_ms: ms(timing.execution_us),
                    total_time_ms: ms(timing.total_us),
                });
                Some(json!({ "attempt": attempt }))
            }
            Failure { attempt, error: err, .. } => {
                e.error = Some(error(err, attempt));
                None
            }
            TaskRetrying { attempt, error: err, retry: plan, .. } => {
                e.error = Some(error(err, attempt));
                Some(retry(attempt, plan))
            }
            Retry { attempt, retry: plan, .. } => Some(retry(attempt, plan)),
            TaskFailed { attempt, error: err, allow_failure, .. } => {
                e.error = Some(error(err, attempt));
                Some(json!({ "attempt": attempt, "allow_failure": allow_failure }))
            }
            TaskSkipped { .. } => Some(json!({ "reason": "the workflow failed" })),
        };
    }
}

/// An event to append: what happened and when (µs since the epoch; 0 means "when stored"). The
/// store numbers it and derives its id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub at_us: i64,
    pub kind: EventKind,
}

impl NewEvent {
    /// `kind`, happening now.
    pub fn new(kind: EventKind) -> NewEvent {
        NewEvent::at(kind, crate::clock::now_us())
    }

    /// `kind`, having happened at `at_us` (µs since the epoch).
    pub fn at(kind: EventKind, at_us: i64) -> NewEvent {
        NewEvent { at_us, kind }
    }
}

/// Whole microseconds of `d`, rounded.
pub fn micros(d: std::time::Duration) -> u64 {
    ((d.as_nanos() + 500) / 1000) as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_keep_microseconds() {
        assert_eq!(super::micros(std::time::Duration::from_nanos(9_044_735_999)), 9_044_736);
        assert_eq!(super::micros(std::time::Duration::from_nanos(230_791)), 231);
        assert_eq!(serde_json::to_string(&super::ms(9_044_736)).unwrap(), "9044.736");
    }
}
