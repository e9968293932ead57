//! What a client submits: a workflow of tasks.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Default of `max_parallel_tasks`.
pub const DEFAULT_MAX_PARALLEL_TASKS: u32 = 10;

/// A workflow as submitted (API body or CLI file).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSpec {
    /// Human-readable name.
    #[serde(default)]
    pub name: Option<String>,
    /// The tasks: nodes of the DAG.
    pub tasks: Vec<TaskSpec>,
    /// Workflow variables, given to every task.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Map<String, Value>,
    /// Workflow context, given to every task and carried in handoffs.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub context: Map<String, Value>,
    /// Tasks of this workflow that may run at once (default 10).
    #[serde(default)]
    pub max_parallel_tasks: Option<u32>,
    /// Start at once (default true); otherwise the workflow stays `pending` until resumed.
    #[serde(default)]
    pub start: Option<bool>,
    /// Submitting twice with the same key returns the first workflow instead of a new one.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Limits on the workflow's outbound requests and language-model tokens; reaching one pauses
    /// the workflow (`pause_reason.reason` = `budget_exhausted`) until it is raised and resumed.
    #[serde(default)]
    pub budget: Option<super::Budget>,
}

/// One task of a workflow.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub task_id: String,
    /// The agent that runs the task; defaults to the agent type.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Agent type: selects the executor plugin.
    pub agent_type: String,
    /// Tasks that must settle before this one runs.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Input given to the executor (any JSON; default `{}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub input: Option<Value>,
    #[serde(default, deserialize_with = "object_only")]
    pub retry_policy: Option<RetryPolicy>,
    /// Seconds per attempt (at least 0.001, at most 7 days).
    #[serde(default)]
    pub timeout: Option<f64>,
    /// When the task fails for good, dependents still run and the workflow can complete.
    #[serde(default)]
    pub allow_failure: bool,
    /// Free-form metadata; `metadata.requirements` becomes `target.requirements` of incoming handoffs.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// A JSON object (or null) as `T`: serde would otherwise take `[]` for a struct of defaults.
fn object_only<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v @ Value::Object(_) => serde_json::from_value(v).map(Some).map_err(D::Error::custom),
        other => Err(D::Error::custom(format!(
            "expected an object such as {{\"max_attempts\": 3}}, found {}",
            match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                _ => "a boolean",
            }
        ))),
    }
}

/// Most attempts a retry policy may allow.
pub const MAX_ATTEMPTS: u32 = 100;

/// When and how often a failed task is retried.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 to 100).
    pub max_attempts: u32,
    /// Seconds before the first retry.
    pub initial_delay: f64,
    /// Upper bound of a wait, in seconds.
    pub max_delay: f64,
    /// Growth factor of the wait (>= 1).
    pub exponential_base: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 3, initial_delay: 1.0, max_delay: 60.0, exponential_base: 2.0 }
    }
}

impl RetryPolicy {
    /// The wait before retry `n` (1 for the first retry): `min(initial_delay * base^(n-1), max_delay)`.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(1024) as i32;
        let secs = (self.initial_delay * self.exponential_base.powi(exp)).min(self.max_delay);
        Duration::from_secs_f64(secs.max(0.0))
    }

    /// What is wrong with the policy, if anything.
    pub fn problem(&self) -> Option<String> {
        let finite = [self.initial_delay, self.max_delay, self.exponential_base].iter().all(|v| v.is_finite());
        if self.max_attempts == 0 {
            Some("max_attempts must be at least 1 (it counts the first attempt)".into())
        } else if self.max_attempts > MAX_ATTEMPTS {
            Some(format!("max_attempts must be at most {MAX_ATTEMPTS}"))
        } else if !finite || self.initial_delay < 0.0 || self.max_delay < 0.0 {
            Some("initial_delay and max_delay must be finite numbers of seconds >= 0".into())
        } else if self.max_delay > 86_400.0 {
            Some("max_delay must be at most 86400 seconds".into())
        } else if self.exponential_base < 1.0 {
            Some("exponential_base must be >= 1".into())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_policy_is_an_object_with_bounded_attempts() {
        let task = |policy: Value| {
            serde_json::from_value::<TaskSpec>(serde_json::json!({
                "task_id": "a", "agent_type": "echo", "retry_policy": policy,
            }))
        };
        let e = task(serde_json::json!([])).unwrap_err().to_string();
        assert!(e.contains("expected an object such as {\"max_attempts\": 3}, found an array"), "{e}");
        assert_eq!(task(Value::Null).unwrap().retry_policy, None);
        let p = task(serde_json::json!({"max_attempts": 2})).unwrap().retry_policy.unwrap();
        assert_eq!((p.max_attempts, p.initial_delay), (2, 1.0));
        assert!(task(serde_json::json!({"max_attempts": 2, "x": 1})).is_err(), "unknown keys are refused");
        let many = RetryPolicy { max_attempts: MAX_ATTEMPTS + 1, ..Default::default() };
        assert_eq!(many.problem().unwrap(), "max_attempts must be at most 100");
    }

    #[test]
    fn delays_follow_the_formula() {
        let p = RetryPolicy { max_attempts: 5, initial_delay: 0.5, max_delay: 3.0, exponential_base: 2.0 };
        let d: Vec<f64> = (1..=5).map(|n| p.delay(n).as_secs_f64()).collect();
        assert_eq!(d, vec![0.5, 1.0, 2.0, 3.0, 3.0]);
    }

    #[test]
    fn policy_problems_are_named() {
        let bad = RetryPolicy { max_attempts: 0, ..Default::default() };
        assert!(bad.problem().unwrap().contains("max_attempts"));
        let bad = RetryPolicy { exponential_base: 0.5, ..Default::default() };
        assert!(bad.problem().unwrap().contains("exponential_base"));
        assert!(RetryPolicy::default().problem().is_none());
    }
}
