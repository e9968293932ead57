//! Claims: a ready task starts its next attempt under a lease, within its workflow's slots.

use std::sync::Arc;

use super::TaskVersionState;
use crate::events::{EventKind, NewEvent, TaskNames};
use crate::workflow::TaskStatus;

/// How many of the `taken` slots a claim gives back: taking them brought the workflow's running
/// attempts to `running`, over its `max_parallel` when another host claimed meanwhile.
pub fn excess_claims(running: i64, max_parallel: i64, taken: i64) -> i64 {
    (running - max_parallel).clamp(0, taken)
}

/// A claimed task starts `attempt` on `worker` at `now` (µs): its state in the claim's version,
/// and its `task_started` event when its `names` are given (tracking).
pub fn started(
    names: Option<TaskNames>,
    attempt: u32,
    worker: &Arc<str>,
    now: i64,
) -> (TaskVersionState, Option<NewEvent>) {
    let event =
        names.map(|task| NewEvent::at(EventKind::TaskStarted { task, attempt, worker_id: worker.clone() }, now));
    (TaskVersionState::bare(TaskStatus::Running, attempt), event)
}
