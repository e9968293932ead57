//! The rules of a workflow's life, as plain code (no I/O, no SQL): what a claim, the end of an
//! attempt, a stop (failure or cancel) and an operator's control do to tasks and to the workflow.
//!
//! Each rule takes what it needs to know and returns a transition: the task changes, the version
//! they make, the events to append. The store reads that state and applies the transition in one
//! transaction; it decides nothing itself. The engine only hands the store what attempts did.

mod attempt;
mod claim;
mod control;
mod stop;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::workflow::TaskStatus;

pub use attempt::{
    attempt_ended, lost_attempt, reset_attempt, AttemptEnded, AttemptResult, Held, Outcome, TaskUpdate, RESET,
};
pub use claim::{excess_claims, started};
pub use control::{control, rollback, Control, ControlStep, Refusal, Restored, TaskShape, WorkflowView};
pub use stop::{budget_paused, completes, stop, workflow_completed, workflow_failed, Stop, Stopped, Unfinished};

/// The part of a task's state that versions record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskVersionState {
    pub status: TaskStatus,
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

impl TaskVersionState {
    /// A state with neither output nor error.
    pub fn bare(status: TaskStatus, attempt: u32) -> TaskVersionState {
        TaskVersionState { status, attempt, output: None, error: None }
    }
}

/// Task changes of one version, by task id.
pub type Changes = BTreeMap<String, TaskVersionState>;
