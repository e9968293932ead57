//! Sandboxed WebAssembly plugins: executors and handoff validators, loaded per agent type.
//!
//! The engine sees only [`Runtime`]: call an executor or a validator, with limits. Everything about
//! wasmtime lives below this module.

mod bindings;
mod cache;
mod call;
mod capture;
mod check;
mod connect;
mod engine;
mod error;
mod imports;
mod loader;
pub mod manifest;
mod memory;
mod outbound;
mod registry;
mod runtime;
mod sandbox;
pub mod secrets;
mod state;
mod status;
mod watch;

use std::sync::Arc;
use std::time::Duration;

pub use crate::workflow::{LogLine, TaskFailure};
pub use cache::{default_cache_dir, CacheOutcome, DEFAULT_CACHE_MAX_BYTES};
pub use check::check_file;
pub use connect::{OutboundTls, TlsError};
pub use engine::Allocation;
pub use error::PluginError;
pub use imports::{allowed_import, allowed_imports_text, ALLOWED_IMPORTS};
pub use manifest::{HostPattern, ManifestError, Policy};
pub use memory::MemoryBudget;
pub use outbound::{Egress, EgressBudget, EgressOutcome, HttpLimits, LlmUsage};
pub use registry::{valid_agent_type, Prepared, Registry};
pub use runtime::{Runtime, RuntimeConfig, DEFAULT_MAX_ERROR_BYTES, DEFAULT_MAX_INSTANCES, DEFAULT_MEMORY_LIMIT};
pub use secrets::{SecretError, SecretSource, Secrets};
pub use status::{world_of, PluginInfo, PluginReport, PluginState, PluginStatus, Role};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// How a direct dependency ended, as a task sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyStatus {
    /// Completed; `output` is set.
    Completed,
    /// Failed for good with `allow_failure`; `error` is set.
    Failed,
}

/// Result of one direct dependency, handed to the executor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviousResult {
    pub task_id: String,
    pub agent_id: String,
    pub agent_type: String,
    pub status: DependencyStatus,
    /// Output as JSON text.
    pub output: Option<String>,
    /// Error as JSON text.
    pub error: Option<String>,
}

/// Everything an executor gets for one attempt (mirrors `task-context` in the WIT package).
/// JSON fields are text, parsed once by the guest.
#[derive(Debug, Clone)]
pub struct TaskContext {
    pub workflow_id: String,
    pub task_id: String,
    pub agent_id: String,
    pub agent_type: String,
    pub attempt: u32,
    pub input: String,
    pub variables: String,
    pub context: String,
    pub metadata: String,
    pub previous_results: Vec<PreviousResult>,
    pub handoffs: Vec<String>,
}

/// Limits and controls of one call.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Wall-clock deadline of the call; the guest is interrupted inside the sandbox when it passes.
    pub timeout: Option<Duration>,
    /// Cancelling it stops the guest at its next yield point (within about a millisecond).
    pub cancel: Option<CancellationToken>,
    /// What the call's outbound requests may still spend (a workflow's budget); none: no limit.
    pub budget: Option<std::sync::Arc<dyn EgressBudget>>,
}

/// What one executor call produced.
#[derive(Debug, Clone)]
pub struct Execution {
    /// Content digest (`sha256:...`) of the plugin version that ran; empty when none was loaded.
    pub digest: Arc<str>,
    /// Output (JSON text) or failure.
    pub result: Result<String, TaskFailure>,
    /// The failure is the plugin's own error: its `error_type` is the plugin's choice, not one of
    /// the host's.
    pub plugin_error: bool,
    /// Log lines, progress reports and captured stdout/stderr.
    pub log: Vec<LogLine>,
    /// Outbound HTTP requests of the call, in the order they were made.
    pub egress: Vec<Egress>,
    /// Time spent inside the call, instantiation included (waiting for a free slot excluded).
    pub duration: Duration,
    /// Time to instantiate the component for this call (absent when it was not instantiated).
    pub instantiation: Option<Duration>,
    /// Most linear memory (all of the instance's memories together) the call held, in bytes.
    pub peak_memory: usize,
}

/// A problem a validator found in a handoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

/// What a validator call decided.
#[derive(Debug, Clone)]
pub enum Validation {
    /// No validator is loaded for the agent type.
    NoValidator,
    Accepted,
    Rejected(Vec<Issue>),
    /// The validator itself failed (trap, timeout ...).
    Failed(TaskFailure),
}

/// What the engine needs from the plugin runtime. [`Runtime`] implements it; tests may use fakes.
pub trait Sandbox: Send + Sync + 'static {
    /// Whether an executor is loaded for `agent_type`.
    fn has_executor(&self, agent_type: &str) -> bool;
    /// The agent types with an executor loaded, with each one's digest; `None`: this sandbox
    /// runs whatever it is given (a test's fake), so claims are not filtered.
    fn served(&self) -> Option<std::collections::BTreeMap<String, String>> {
        None
    }
    /// The per-attempt time limit the agent type's manifest sets, if any.
    fn manifest_timeout(&self, _agent_type: &str) -> Option<Duration> {
        None
    }
    /// Run one attempt of a task in a fresh sandbox.
    fn execute(&self, ctx: TaskContext, opts: CallOptions) -> futures::future::BoxFuture<'_, Execution>;
    /// Ask the validator of `agent_type` (if one is loaded) about a handoff (JSON text).
    fn validate<'a>(
        &'a self,
        agent_type: &'a str,
        handoff: &'a str,
        opts: CallOptions,
    ) -> futures::future::BoxFuture<'a, Validation>;
}
