//! The single writer of outcomes: drains every outcome waiting and records them in one
//! transaction (group commit). In the same transaction it claims ready tasks for the slots the
//! finished attempts give back, and starts them, so a dependent starts without another round trip;
//! the scheduler is woken only when slots are left over or more tasks were ready than claimed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use super::{scheduler, Inner};
use crate::lifecycle::Outcome;
use crate::store::Applied;

/// An outcome to record, the slot its attempt held, and where to send what recording did.
pub(super) type Job = (Outcome, OwnedSemaphorePermit, oneshot::Sender<Option<Applied>>);

pub(super) async fn run(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let max = inner.config.write_batch.max(1);
    let mut batch: Vec<Job> = Vec::with_capacity(max);
    loop {
        tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, max) => if n == 0 { return },
            _ = inner.shutdown.cancelled() => {
                // Stop once every attempt still running here has been recorded. An attempt
                // started after that (by a claim under way at shutdown) records its own outcome.
                if rx.is_empty() && inner.running.lock().map(|r| r.is_empty()).unwrap_or(true) {
                    rx.close();
                    // What was sent before the close is recorded first; then `recv_many` says 0.
                    continue;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut permits = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for (o, p, r) in batch.drain(..) {
            outcomes.push(o);
            permits.push(p);
            replies.push(r);
        }
        let claim = (!inner.shutdown.is_cancelled()).then(|| inner.claim(permits.len().min(inner.config.claim_batch)));
        match inner.store.record_and_claim(&outcomes, claim).await {
            Ok((applied, claimed)) => {
                // The scheduler is needed only if slots are left over or ready tasks were left.
                let wake = claimed.more_ready || claimed.tasks.len() < permits.len();
                // The claimed tasks take over the slots of the attempts just recorded.
                scheduler::start(&inner, claimed.tasks, &mut permits);
                drop(permits);
                for (reply, a) in replies.into_iter().zip(applied) {
                    let _ = reply.send(Some(a));
                }
                if wake {
                    inner.wake.notify_one();
                }
            }
            Err(e) => {
                // One bad outcome must not sink the others: record them one by one.
                tracing::warn!(error = %e, outcomes = outcomes.len(), "batched write failed; writing one by one");
                drop(permits);
                for (o, reply) in outcomes.into_iter().zip(replies) {
                    let _ = reply.send(record_alone(&inner, o).await);
                }
                inner.wake.notify_one();
            }
        }
    }
}

/// Record one outcome in a transaction of its own, trying three times.
pub(super) async fn record_alone(inner: &Inner, o: Outcome) -> Option<Applied> {
    for attempt in 0..3u32 {
        match inner.store.record_outcomes(std::slice::from_ref(&o)).await {
            Ok(mut a) => return a.pop(),
            Err(e) => {
                tracing::error!(error = %e, workflow_id = %o.workflow_id, task_id = %o.task_id,
                    "recording an outcome failed; the attempt is retried when its lease expires if this persists");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
        }
    }
    None
}
