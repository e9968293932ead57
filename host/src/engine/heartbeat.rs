//! The worker's pulse: heartbeats, lease renewal, and taking over the attempts of lost workers.

use std::sync::Arc;

use super::Inner;
use crate::store::Applied;

pub(super) async fn run(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(inner.config.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = inner.shutdown.cancelled() => return,
        }
        let serves = inner.sandbox.served().unwrap_or_default();
        if let Err(e) = inner.store.heartbeat(&inner.worker_id, &serves).await {
            tracing::warn!(error = %e, "heartbeat failed");
            continue;
        }
        if let Err(e) = inner.store.renew_leases(&inner.worker_id, inner.config.lease).await {
            tracing::warn!(error = %e, "renewing leases failed");
        }
        match inner.store.reap_lost_attempts(&inner.worker_id, inner.config.miss_threshold, None).await {
            Ok(applied) if !applied.is_empty() => {
                tracing::warn!(attempts = applied.len(), "took over attempts of a lost worker");
                inner.metrics.attempts_lost(applied.iter().filter(|a| matches!(a, Applied::Recorded { .. })).count());
                for a in applied {
                    if let Applied::Recorded { retry_at: Some(at), .. } = a {
                        inner.due_at(at);
                    }
                }
                inner.wake.notify_one();
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "looking for lost attempts failed"),
        }
    }
}
