//! Claims: a ready task starts its next attempt under a lease, within its workflow's slots.

use std::sync::Arc;

use super::TaskVersionState;
use crate::events::{AttemptMeta, EventType, NewEvent};
use crate::workflow::TaskStatus;

/// How many of the `taken` slots a claim gives back: taking them brought the workflow's running
/// attempts to `running`, over its `max_parallel` when another host claimed meanwhile.
pub fn excess_claims(running: i64, max_parallel: i64, taken: i64) -> i64 {
    (running - max_parallel).clamp(0, taken)
}

/// A claimed task starts `attempt` on `worker` at `now` (µs): its state in the claim's version,
/// and its `task_started` event when `tracking`.
pub fn started(
    names: (&Arc<str>, &Arc<str>, &Arc<str>),
    attempt: u32,
    worker: &Arc<str>,
    now: i64,
    tracking: bool,
) -> (TaskVersionState, Option<NewEvent>) {
    let event = tracking.then(|| {
        let mut e = NewEvent::of_task(EventType::TaskStarted, now, names, "running");
        e.metadata = Some(AttemptMeta { attempt, worker_id: Some(worker.clone()), ..Default::default() }.into());
        e
    });
    (TaskVersionState::bare(TaskStatus::Running, attempt), event)
}
