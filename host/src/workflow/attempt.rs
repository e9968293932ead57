//! What an attempt reports besides its output: why it failed, and what it logged.

use serde::{Deserialize, Serialize};

/// Why a call did not produce an output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskFailure {
    /// `error_type`: the guest's own type for errors it reports, else one of `timeout`, `trap`,
    /// `out_of_memory`, `output_too_large`, `cancelled`, `no_plugin`, `invalid_output`.
    pub error_type: String,
    pub message: String,
    /// Whether the engine may retry.
    pub retryable: bool,
    /// Extra detail (trap kind, guest backtrace, captured stderr, validator issues ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// One line a plugin logged (or a progress report, with `level = "progress"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLine {
    /// Microseconds since the Unix epoch.
    pub at_us: i64,
    pub level: String,
    pub message: String,
}
