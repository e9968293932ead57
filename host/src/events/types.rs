//! Event types and shapes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

macro_rules! event_types {
    ($($variant:ident => $text:literal),+ $(,)?) => {
        /// Type of a coordination event.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum EventType { $($variant),+ }

        impl EventType {
            /// Every event type.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),+];

            /// Name as stored and served.
            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $text),+ }
            }

            /// Parse a stored or requested name.
            pub fn parse(s: &str) -> Option<EventType> {
                match s { $($text => Some(EventType::$variant),)+ _ => None }
            }
        }
    };
}

event_types!(
    Handoff => "handoff",
    ExecutionStart => "execution_start",
    ExecutionEnd => "execution_end",
    Failure => "failure",
    Retry => "retry",
    WorkflowCreated => "workflow_created",
    WorkflowStarted => "workflow_started",
    WorkflowCompleted => "workflow_completed",
    WorkflowFailed => "workflow_failed",
    WorkflowCancelled => "workflow_cancelled",
    WorkflowPaused => "workflow_paused",
    WorkflowResumed => "workflow_resumed",
    WorkflowRolledBack => "workflow_rolled_back",
    WorkflowBudgetChanged => "workflow_budget_changed",
    TaskCreated => "task_created",
    TaskStarted => "task_started",
    TaskCompleted => "task_completed",
    TaskFailed => "task_failed",
    TaskSkipped => "task_skipped",
    TaskRetrying => "task_retrying",
    Egress => "egress",
);

impl EventType {
    /// The timeline group of this type: lifecycle, tasks, handoffs or failures.
    pub fn group(self) -> &'static str {
        use EventType::*;
        match self {
            Handoff => "handoffs",
            Failure | Retry | TaskFailed | WorkflowFailed => "failures",
            TaskCreated | TaskStarted | TaskCompleted | TaskSkipped | TaskRetrying | ExecutionStart | ExecutionEnd
            | Egress => "tasks",
            _ => "lifecycle",
        }
    }
}

/// Error carried by an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventError {
    pub error_type: String,
    pub message: String,
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub detail: Option<Value>,
}

/// Timing of a task attempt.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Performance {
    pub queue_time_ms: f64,
    pub execution_time_ms: f64,
    pub total_time_ms: f64,
}

/// A stored coordination event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub event_id: String,
    pub event_type: EventType,
    pub workflow_id: String,
    /// Position in the workflow's event log (1, 2, ...): the order of events.
    pub seq: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// RFC 3339, UTC, microseconds.
    pub timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<EventError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub metadata: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub context: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performance: Option<Performance>,
}

/// Format microseconds since the epoch as RFC 3339 UTC with microseconds.
pub fn rfc3339(us: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (year, month, day) = t.to_calendar_date();
    let (hour, minute, second, micro) = t.to_hms_micro();
    format!("{year:04}-{:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{micro:06}Z", month as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_groups() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(EventType::ALL.len(), 21);
        assert_eq!(EventType::Handoff.group(), "handoffs");
        assert_eq!(EventType::TaskFailed.group(), "failures");
    }

    #[test]
    fn timestamps_are_rfc3339_micro() {
        assert_eq!(rfc3339(1_700_000_000_123_456), "2023-11-14T22:13:20.123456Z");
    }
}
