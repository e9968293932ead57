//! The workflow model: what a client submits, the statuses, and DAG validation (pure, no I/O).

mod attempt;
mod budget;
mod model;
mod status;
mod validate;

pub use attempt::{LogLine, TaskFailure};
pub use budget::{Budget, Exhausted, LlmUsage, Usage};
pub use model::{RetryPolicy, TaskSpec, WorkflowSpec, DEFAULT_MAX_PARALLEL_TASKS};
pub use status::{TaskStatus, UnknownStatus, WorkflowStatus};
pub use validate::{id_problem, validate, ValidTask, ValidWorkflow, ValidationError, MAX_ID_BYTES};
