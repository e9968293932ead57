//! The SDK's view of the contract: WIT records with their JSON text already parsed.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// An agent: the actor that runs a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// Agent id, as given in the workflow (`agent_id`).
    pub id: String,
    /// Agent type: the name under which the plugin is loaded (`agent_type`).
    pub agent_type: String,
}

/// How a direct dependency of the task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyStatus {
    /// Completed; [`PreviousResult::output`] holds its output.
    Completed,
    /// Failed for good with `allow_failure`; [`PreviousResult::error`] holds its error.
    Failed,
}

/// The result of one direct dependency of the task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PreviousResult {
    /// Task id of the dependency.
    pub task_id: String,
    /// Agent that ran the dependency.
    pub agent: Agent,
    /// How the dependency ended.
    pub status: DependencyStatus,
    /// Output of the dependency, when it completed.
    pub output: Option<Value>,
    /// Error of the dependency (`{error_type, message, ...}`), when it failed.
    pub error: Option<Value>,
}

/// Everything an executor is given to perform one attempt of a task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskContext {
    /// Id of the workflow the task belongs to.
    pub workflow_id: String,
    /// Id of the task.
    pub task_id: String,
    /// The agent that runs the task.
    pub agent: Agent,
    /// Attempt number, starting at 1.
    pub attempt: u32,
    /// Task input; [`TaskContext::input`] deserializes it into your own type.
    pub input: Value,
    /// Workflow variables (a JSON object).
    pub variables: Value,
    /// Workflow context (a JSON object).
    pub context: Value,
    /// Task metadata (a JSON object).
    pub metadata: Value,
    /// Results of the direct dependencies, in the order of the task's `dependencies`.
    pub previous_results: Vec<PreviousResult>,
    /// The handoff message of each incoming edge, in the order of `previous_results`.
    pub handoffs: Vec<Value>,
}

impl TaskContext {
    /// A context for unit tests: attempt 1 of task `test` of workflow `test`, agent `test` of type
    /// `test`, the given input, empty variables, context and metadata, no dependencies.
    ///
    /// ```
    /// use hyphae_plugin_sdk::{json, TaskContext};
    /// let ctx = TaskContext::for_test(json!({"n": 10})).with_previous_output("fetch", json!({"text": "hi"}));
    /// assert_eq!(ctx.previous_outputs().count(), 1);
    /// ```
    pub fn for_test(input: Value) -> TaskContext {
        let agent = Agent { id: "test".into(), agent_type: "test".into() };
        let empty = || Value::Object(Default::default());
        TaskContext {
            workflow_id: "test".into(),
            task_id: "test".into(),
            agent,
            attempt: 1,
            input,
            variables: empty(),
            context: empty(),
            metadata: empty(),
            previous_results: Vec::new(),
            handoffs: Vec::new(),
        }
    }

    /// Adds a completed dependency `task_id` (agent and type `test`) with `output`, and an empty
    /// handoff for its edge.
    pub fn with_previous_output(mut self, task_id: &str, output: Value) -> TaskContext {
        self.previous_results.push(PreviousResult {
            task_id: task_id.into(),
            agent: Agent { id: "test".into(), agent_type: "test".into() },
            status: DependencyStatus::Completed,
            output: Some(output),
            error: None,
        });
        self.handoffs.push(Value::Object(Default::default()));
        self
    }

    /// Deserializes the task input. On mismatch: a fatal `invalid_input` error naming the problem.
    pub fn input<T: DeserializeOwned>(&self) -> Result<T, TaskError> {
        T::deserialize(&self.input).map_err(|e| TaskError::invalid_input(format!("input: {e}")))
    }

    /// Deserializes workflow variable `name`; `None` when it is absent or does not fit `T`.
    pub fn variable<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        T::deserialize(self.variables.get(name)?).ok()
    }

    /// Outputs of the dependencies that completed, in dependency order.
    pub fn previous_outputs(&self) -> impl Iterator<Item = &Value> {
        self.previous_results.iter().filter_map(|r| r.output.as_ref())
    }
}

/// Whether the host may retry a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Transient: the host retries according to the task's retry policy.
    Retryable,
    /// Permanent: no retry.
    Fatal,
}

/// An error reported by an executor.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskError {
    /// Retryable or fatal.
    pub kind: ErrorKind,
    /// Short machine-readable type such as `invalid_input` (recorded as `error_type`).
    pub error_type: String,
    /// Human-readable message.
    pub message: String,
    /// Optional details.
    pub detail: Option<Value>,
}

impl TaskError {
    /// A transient error: the host retries the task according to its retry policy.
    pub fn retryable(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Retryable, error_type, message)
    }

    /// A permanent error: the host does not retry.
    pub fn fatal(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Fatal, error_type, message)
    }

    /// A fatal `invalid_input` error.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::fatal("invalid_input", message)
    }

    /// Attaches details (any JSON) to the error.
    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    fn new(kind: ErrorKind, error_type: impl Into<String>, message: impl Into<String>) -> Self {
        let (error_type, message) = (error_type.into(), message.into());
        Self { kind, error_type, message, detail: None }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl std::error::Error for TaskError {}

/// One problem a validator found in a handoff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// JSON pointer of the offending value, such as `/context/task_description`.
    pub path: String,
    /// What is wrong, and what is expected instead.
    pub message: String,
}

impl Issue {
    /// An issue at JSON pointer `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }
}

/// What a plugin says about itself. Empty `version` and `description` are filled in from the
/// plugin crate's `Cargo.toml`; leave `agent_type` `None` so the file name decides the agent type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// Agent type the plugin serves; `None`: the host uses the file name.
    pub agent_type: Option<String>,
    /// Version, for humans.
    pub version: String,
    /// One-line description.
    pub description: String,
}
