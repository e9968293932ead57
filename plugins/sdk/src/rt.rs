//! Glue between the generated bindings and the SDK traits. Used by the export macros only.

use crate::bindings::exports::hyphae::plugin::{executor, metadata, validator};
use crate::bindings::hyphae::plugin::types as wit;
use crate::{Agent, DependencyStatus, ErrorKind, Executor, Info, PreviousResult, TaskContext};
use crate::{TaskError, Validator};
use serde_json::Value;

pub use crate::bindings;
pub use executor::Guest as ExecutorGuest;
pub use metadata::Guest as MetadataGuest;
pub use validator::Guest as ValidatorGuest;
pub use wit::{Issue as WitIssue, PluginInfo as WitPluginInfo};
pub use wit::{TaskContext as WitTaskContext, TaskError as WitTaskError};
pub use wit_bindgen;

/// Component-type metadata of each world, encoded by `build.rs`.
pub const EXECUTOR_WORLD: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/executor-plugin.bin"));
pub const VALIDATOR_WORLD: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/validator-plugin.bin"));
pub const AGENT_WORLD: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/agent-plugin.bin"));

/// Copies `bytes` into an array, for the `static` holding a world's custom section.
pub const fn world_bytes<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Native builds of a plugin (unit tests) only check that the plugin type fits its macro.
pub fn assert_executor<T: Executor>() {}
pub fn assert_validator<T: Validator>() {}

/// Installs the panic hook once per instance: a panic message goes to the host log at error
/// level (wasm32-unknown-unknown has no stderr), then the panic aborts, which traps.
fn init() {
    #[cfg(target_arch = "wasm32")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                let msg = info.payload_as_str().unwrap_or("Box<dyn Any>");
                let message = match info.location() {
                    Some(l) => format!("panicked at {}:{}:{}: {msg}", l.file(), l.line(), l.column()),
                    None => format!("panicked: {msg}"),
                };
                crate::log::write(crate::log::Level::Error, &message);
            }))
        });
    }
}

pub fn describe(info: Info, version: &str, description: &str) -> WitPluginInfo {
    init();
    let or = |s: String, default: &str| if s.is_empty() { default.to_string() } else { s };
    WitPluginInfo {
        agent_type: info.agent_type,
        version: or(info.version, version),
        description: or(info.description, description),
    }
}

pub fn execute<T: Executor>(ctx: WitTaskContext) -> Result<String, WitTaskError> {
    init();
    let ctx = parse_context(ctx).map_err(wit_error)?;
    let output = T::execute(ctx).map_err(wit_error)?;
    Ok(output.to_string())
}

pub fn validate<T: Validator>(handoff: String) -> Result<(), Vec<WitIssue>> {
    init();
    let handoff = serde_json::from_str(&handoff)
        .map_err(|e| vec![WitIssue { path: String::new(), message: format!("not JSON: {e}") }])?;
    T::validate(handoff).map_err(|issues| {
        let issue = |i: crate::Issue| WitIssue { path: i.path, message: i.message };
        issues.into_iter().map(issue).collect()
    })
}

fn json(field: &str, text: &str) -> Result<Value, TaskError> {
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| TaskError::fatal("invalid_context", format!("{field} is not JSON: {e}")))
}

fn agent(a: wit::Agent) -> Agent {
    Agent { id: a.id, agent_type: a.agent_type }
}

fn parse_context(c: WitTaskContext) -> Result<TaskContext, TaskError> {
    let opt = |field: &str, text: Option<String>| text.map(|t| json(field, &t)).transpose();
    let previous_results = c
        .previous_results
        .into_iter()
        .map(|r| {
            Ok(PreviousResult {
                output: opt("previous result output", r.output)?,
                error: opt("previous result error", r.error)?,
                task_id: r.task_id,
                agent: agent(r.agent),
                status: match r.status {
                    wit::DependencyStatus::Completed => DependencyStatus::Completed,
                    wit::DependencyStatus::Failed => DependencyStatus::Failed,
                },
            })
        })
        .collect::<Result<_, TaskError>>()?;
    let handoffs = c.handoffs.iter().map(|h| json("handoff", h)).collect::<Result<_, _>>()?;
    Ok(TaskContext {
        input: json("input", &c.input)?,
        variables: json("variables", &c.variables)?,
        context: json("context", &c.context)?,
        metadata: json("metadata", &c.metadata)?,
        workflow_id: c.workflow_id,
        task_id: c.task_id,
        agent: agent(c.agent),
        attempt: c.attempt,
        previous_results,
        handoffs,
    })
}

fn wit_error(e: TaskError) -> WitTaskError {
    WitTaskError {
        kind: match e.kind {
            ErrorKind::Retryable => wit::ErrorKind::Retryable,
            ErrorKind::Fatal => wit::ErrorKind::Fatal,
        },
        error_type: e.error_type,
        message: e.message,
        detail: e.detail.map(|d| d.to_string()),
    }
}
