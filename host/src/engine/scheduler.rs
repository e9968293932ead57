//! The claim loop: whenever slots are free and tasks are ready, claim them in a batch and start
//! them. It sleeps until woken (a task became ready, a slot freed) or the next retry is due.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::{task, Inner};
use crate::clock::now_us;
use crate::store::ClaimedTask;

/// Longest sleep without a wake-up: a safety net for work made ready by other hosts.
const MAX_IDLE: Duration = Duration::from_secs(1);

/// Start claimed tasks, each in a slot of `permits` (taken from its end). They are all among the
/// running attempts before the first one runs, so that one's outcome can interrupt the others
/// (its workflow failed) wherever [`Inner::interrupt`] is called from.
pub(super) fn start(inner: &Arc<Inner>, tasks: Vec<ClaimedTask>, permits: &mut Vec<OwnedSemaphorePermit>) {
    let mut started = Vec::with_capacity(tasks.len());
    {
        let mut running = inner.running.lock().unwrap_or_else(|e| e.into_inner());
        for t in tasks {
            let Some(permit) = permits.pop() else {
                tracing::error!("claimed more tasks than slots; the lease will expire and retry it");
                continue;
            };
            let token = CancellationToken::new();
            running.insert((t.workflow_id.clone(), t.task_id.to_string()), (t.attempt, token.clone()));
            started.push((t, permit, token));
        }
    }
    for (t, permit, token) in started {
        inner.metrics.attempt_started(&t.agent_type, t.queue_time);
        inner.caps.started(&t.agent_type);
        inner.tasks.spawn(task::run(inner.clone(), t, permit, token));
    }
}

pub(super) async fn run(inner: Arc<Inner>) {
    loop {
        if inner.shutdown.is_cancelled() {
            return;
        }
        // The slots are taken before the claim: a submission may take free ones meanwhile.
        let mut permits = inner.free_slots(inner.config.claim_batch);
        let mut more_ready = false;
        if !permits.is_empty() {
            match inner.store.claim(inner.claim(permits.len())).await {
                Ok(claimed) => {
                    more_ready = claimed.more_ready;
                    let tasks = claimed.tasks;
                    // Watchers hear of the new attempts once per workflow.
                    let workflows: std::collections::BTreeSet<String> =
                        tasks.iter().map(|t| t.workflow_id.clone()).collect();
                    start(&inner, tasks, &mut permits);
                    drop(permits);
                    for id in &workflows {
                        inner.notify(id, false);
                    }
                }
                Err(e) => {
                    drop(permits);
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
