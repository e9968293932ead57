//! One reader per followed workflow. All event streams of a workflow share its tail: a task that
//! reads each new event from the store once, encodes it once and hands it to every stream. A
//! stream reads the store itself only to catch up (its history, or after falling behind), so
//! what a new event costs does not grow with the number of watchers or with the history.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::engine::{Engine, Notice};
use crate::events::{Event, EventQuery};

/// Events read from the store per round.
pub(super) const BATCH: i64 = 500;
/// Longest wait for a notice before looking again (changes made by other hosts).
const POLL: Duration = Duration::from_secs(1);
/// Updates a tail keeps for streams that have not taken them yet; a stream further behind goes
/// back to reading the store.
const BACKLOG: usize = 64;
/// Most encoded bytes in one update, so the backlog stays small whatever the events hold.
const UPDATE_BYTES: usize = 256 << 10;

/// An event as a stream sends it: its position and its JSON.
#[derive(Debug)]
pub struct Encoded {
    pub seq: i64,
    pub json: String,
}

impl Encoded {
    pub fn new(e: &Event) -> Encoded {
        Encoded { seq: e.seq, json: serde_json::to_string(e).unwrap_or_else(|_| "{}".into()) }
    }
}

/// What a tail hands to its streams.
#[derive(Debug)]
pub enum Update {
    /// New events, in order.
    Events(Vec<Encoded>),
    /// The workflow is terminal and every event has been handed out.
    End { status: String, last_seq: i64 },
}

/// The tails of the workflows followed now.
pub struct Tails {
    engine: Engine,
    open: Mutex<HashMap<String, broadcast::Sender<Arc<Update>>>>,
}

impl Tails {
    pub fn new(engine: Engine) -> Arc<Tails> {
        Arc::new(Tails { engine, open: Mutex::new(HashMap::new()) })
    }

    /// Updates of workflow `id` from now on, starting its tail if none runs. Updates may repeat
    /// events the caller has already read; their positions tell.
    pub fn follow(self: &Arc<Self>, id: &str) -> broadcast::Receiver<Arc<Update>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tail) = open.get(id) {
            return tail.subscribe();
        }
        let (tx, rx) = broadcast::channel(BACKLOG);
        open.insert(id.to_string(), tx.clone());
        // Subscribed before the tail reads where the log ends, so no change is missed.
        let notices = self.engine.subscribe();
        tokio::spawn(self.clone().run(id.to_string(), tx, notices));
        rx
    }

    /// The tail of `id`: read what is new after each notice, until the workflow has ended or
    /// nobody follows it.
    async fn run(
        self: Arc<Self>,
        id: String,
        tx: broadcast::Sender<Arc<Update>>,
        mut notices: broadcast::Receiver<Notice>,
    ) {
        let store = self.engine.store().clone();
        let mut pos = match store.last_event_seq(&id).await {
            Ok(pos) => pos,
            Err(e) => return self.stop(&id, &tx, Some(&e.to_string())),
        };
        let mut terminal_seen = false;
        // Whether the workflow's status may have changed since it was last read.
        let mut status_may_change = true;
        loop {
            let q = EventQuery { after: pos, limit: BATCH, ..Default::default() };
            let batch = match store.workflow_events(&id, &q).await {
                Ok(batch) => batch,
                Err(e) => return self.stop(&id, &tx, Some(&e.to_string())),
            };
            let full = batch.len() as i64 == BATCH;
            if let Some(last) = batch.last() {
                pos = last.seq;
            }
            for update in updates(&batch) {
                let _ = tx.send(Arc::new(update));
            }
            if full {
                continue;
            }
            if terminal_seen {
                // Status was terminal before this read: every event has been handed out.
                let status = store.workflow_status(&id).await.map(|s| s.to_string()).unwrap_or_default();
                let _ = tx.send(Arc::new(Update::End { status, last_seq: pos }));
                return self.stop(&id, &tx, None);
            }
            if status_may_change {
                match store.workflow_status(&id).await {
                    Ok(status) if status.is_terminal() => {
                        terminal_seen = true;
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => return self.stop(&id, &tx, Some(&e.to_string())),
                }
            }
            if self.unfollowed(&id, &tx) {
                return;
            }
            status_may_change = wait_for_change(&mut notices, &id).await;
        }
    }

    /// Whether nobody follows `id` any more; if so the tail is gone from the map (checked under
    /// its lock, so a stream that follows meanwhile finds none and starts a new one).
    fn unfollowed(&self, id: &str, tx: &broadcast::Sender<Arc<Update>>) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if tx.receiver_count() > 0 {
            return false;
        }
        forget(&mut open, id, tx);
        true
    }

    /// Take the tail of `id` out of the map: its streams see it closed and read the store
    /// themselves (where they meet the same error, if there was one).
    fn stop(&self, id: &str, tx: &broadcast::Sender<Arc<Update>>, error: Option<&str>) {
        if let Some(error) = error {
            tracing::warn!(workflow_id = %id, "event stream tail stopped: {error}");
        }
        forget(&mut self.open.lock().unwrap_or_else(|e| e.into_inner()), id, tx);
    }

    /// Workflows followed now.
    pub fn followed(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Remove the tail of `id` from `open` if it is still `tx` (not a newer one).
fn forget(open: &mut HashMap<String, broadcast::Sender<Arc<Update>>>, id: &str, tx: &broadcast::Sender<Arc<Update>>) {
    if open.get(id).is_some_and(|t| t.same_channel(tx)) {
        open.remove(id);
    }
}

/// `batch` encoded, cut into updates of at most [`UPDATE_BYTES`] (one event at least).
fn updates(batch: &[Event]) -> Vec<Update> {
    let mut out = Vec::new();
    let (mut current, mut bytes) = (Vec::new(), 0);
    for e in batch {
        let encoded = Encoded::new(e);
        if !current.is_empty() && bytes + encoded.json.len() > UPDATE_BYTES {
            out.push(Update::Events(std::mem::take(&mut current)));
            bytes = 0;
        }
        bytes += encoded.json.len();
        current.push(encoded);
    }
    if !current.is_empty() {
        out.push(Update::Events(current));
    }
    out
}

/// Wait for a notice about workflow `id` (or any lag), at most [`POLL`], then take every notice
/// already queued too: one read of the store answers them all. Returns whether the workflow's
/// status may have changed: a notice says so, or none came (a lag, a change made by another
/// host, a stopped engine).
pub(super) async fn wait_for_change(notices: &mut broadcast::Receiver<Notice>, id: &str) -> bool {
    let waited = tokio::time::timeout(POLL, async {
        loop {
            match notices.recv().await {
                Ok(n) if n.workflow_id == id => return n.status_changed,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => return true,
                Err(broadcast::error::RecvError::Closed) => {
                    // Engine stopped: fall back to polling.
                    tokio::time::sleep(POLL).await;
                    return true;
                }
            }
        }
    })
    .await;
    let mut status_changed = waited.unwrap_or(true);
    loop {
        match notices.try_recv() {
            Ok(n) => status_changed |= n.workflow_id == id && n.status_changed,
            Err(broadcast::error::TryRecvError::Lagged(_)) => status_changed = true,
            Err(_) => return status_changed,
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::broadcast;

    use super::wait_for_change;
    use crate::engine::Notice;

    fn notice(id: &str, status_changed: bool) -> Notice {
        Notice { workflow_id: id.to_string(), status_changed }
    }

    #[tokio::test]
    async fn a_burst_of_notices_is_taken_at_once_and_says_whether_the_status_changed() {
        let (tx, mut rx) = broadcast::channel(16);
        for n in [notice("w", false), notice("v", true), notice("w", false)] {
            tx.send(n).unwrap();
        }
        // Another workflow's status change is not this one's.
        assert!(!wait_for_change(&mut rx, "w").await);
        assert!(rx.is_empty(), "the queued notices were taken");
        for n in [notice("w", false), notice("w", true), notice("w", false)] {
            tx.send(n).unwrap();
        }
        assert!(wait_for_change(&mut rx, "w").await);
        assert!(rx.is_empty());
        // Notices lost: the status may have changed.
        for _ in 0..20 {
            tx.send(notice("w", false)).unwrap();
        }
        assert!(wait_for_change(&mut rx, "w").await);
    }
}
