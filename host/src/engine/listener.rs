//! PostgreSQL only: listen for changes made by other hosts, so ready tasks start at once on some
//! host, event streams on every host see new events, and cancelled attempts stop wherever they run.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;

use super::Inner;
use crate::workflow::TaskStatus;

pub(super) async fn run(inner: Arc<Inner>) {
    let url = inner.store.url().to_string();
    loop {
        let mut listener = match PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "could not listen for changes from other hosts; retrying");
                if wait_or_stop(&inner, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        if let Err(e) = listener.listen("hyphae").await {
            tracing::warn!(error = %e, "LISTEN failed; retrying");
            continue;
        }
        loop {
            tokio::select! {
                n = listener.recv() => match n {
                    Ok(n) => match crate::store::parse_notice(n.payload()) {
                        // This host's own changes were acted on where they were made.
                        Some((origin, _, _)) if origin == inner.store.origin() => {}
                        Some((_, stopped, workflow_id)) => changed(&inner, workflow_id, stopped).await,
                        None => tracing::debug!(payload = n.payload(), "ignoring a notice of another format"),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the notification connection; reconnecting");
                        break;
                    }
                },
                _ = inner.shutdown.cancelled() => return,
            }
        }
    }
}

async fn changed(inner: &Inner, workflow_id: &str, stopped: bool) {
    inner.notify(workflow_id, true);
    inner.wake.notify_one();
    if !stopped {
        return;
    }
    let local: Vec<String> = {
        let running = inner.running.lock().unwrap_or_else(|e| e.into_inner());
        running.keys().filter(|(w, _)| w == workflow_id).map(|(_, t)| t.clone()).collect()
    };
    if local.is_empty() {
        return;
    }
    // Attempts here whose task is no longer running (cancelled elsewhere) are interrupted.
    if let Ok(rows) = inner.store.task_results(workflow_id, &local).await {
        let stopped: Vec<String> =
            rows.into_iter().filter(|r| r.status != TaskStatus::Running).map(|r| r.task_id).collect();
        inner.interrupt(workflow_id, &stopped);
    }
}

/// Sleep, unless the engine stops first (then `true`).
async fn wait_or_stop(inner: &Inner, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = inner.shutdown.cancelled() => true,
    }
}
