//! The claim loop: whenever slots are free and tasks are ready, claim them in a batch and start
//! them. It sleeps until woken (a task became ready, a slot freed) or the next retry is due.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;

use super::{task, Inner};
use crate::clock::now_us;
use crate::store::ClaimedTask;

/// Longest sleep without a wake-up: a safety net for work made ready by other hosts.
const MAX_IDLE: Duration = Duration::from_secs(1);

/// Start a claimed task in the slot `permit` holds.
pub(super) fn start(inner: &Arc<Inner>, t: ClaimedTask, permit: OwnedSemaphorePermit) {
    inner.metrics.attempt_started(&t.agent_type, t.queue_time);
    inner.caps.started(&t.agent_type);
    inner.tasks.spawn(task::run(inner.clone(), t, permit));
}

pub(super) async fn run(inner: Arc<Inner>) {
    loop {
        if inner.shutdown.is_cancelled() {
            return;
        }
        let free = inner.slots.available_permits();
        let want = free.min(inner.config.claim_batch);
        let mut more_ready = false;
        if want > 0 {
            match inner.store.claim(inner.claim(want)).await {
                Ok(claimed) => {
                    more_ready = claimed.more_ready;
                    let tasks = claimed.tasks;
                    // Watchers hear of the new attempts once per workflow.
                    let workflows: std::collections::BTreeSet<String> =
                        tasks.iter().map(|t| t.workflow_id.clone()).collect();
                    for t in tasks {
                        let Ok(permit) = inner.slots.clone().try_acquire_owned() else {
                            tracing::error!(
                                "no free slot for a claimed task; it will be retried when its lease expires"
                            );
                            continue;
                        };
                        start(&inner, t, permit);
                    }
                    for id in &workflows {
                        inner.notify(id, false);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "claiming ready tasks failed; trying again shortly");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        if more_ready && inner.slots.available_permits() > 0 {
            continue;
        }
        let wait = {
            let mut next = inner.next_due.lock().unwrap_or_else(|e| e.into_inner());
            let now = now_us();
            match *next {
                Some(at) if at <= now => {
                    *next = None;
                    Duration::ZERO
                }
                Some(at) => Duration::from_micros((at - now) as u64).min(MAX_IDLE),
                None => MAX_IDLE,
            }
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = inner.shutdown.cancelled() => return,
        }
    }
}
