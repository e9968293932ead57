//! Checkpoints off the write path: the write connection does not checkpoint
//! (`wal_autocheckpoint = 0`); a thread of its own copies the WAL back into the database file
//! every [`INTERVAL`] while writes come in, with `PRAGMA wal_checkpoint(PASSIVE)`, which waits
//! for no reader or writer.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages, fsync
//! included: about one engine step in eighty paid it (4 % of a chain's CPU samples).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

use crate::store::{Result, StoreError};

/// How often the WAL is checkpointed while writes come in.
pub(crate) const INTERVAL: Duration = Duration::from_millis(100);

/// The checkpointing thread of a database. It ends on [`Checkpointer::stop`] or when the last
/// clone is dropped.
#[derive(Clone)]
pub(crate) struct Checkpointer {
    /// Write transactions committed so far: the thread checkpoints only when this moved.
    commits: Arc<AtomicU64>,
    stop: flume::Sender<()>,
}

impl Checkpointer {
    /// Open a connection to `path`, set up by `pragmas`, on a thread named `name`.
    pub(crate) fn start(path: &Path, pragmas: &str, name: &str) -> Result<Checkpointer> {
        let conn = Connection::open(path)?;
        conn.execute_batch(pragmas)?;
        let commits = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = flume::bounded(1);
        let seen = commits.clone();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || run(conn, &seen, &stopped))
            .map_err(StoreError::Thread)?;
        Ok(Checkpointer { commits, stop })
    }

    /// A write transaction was committed.
    pub(crate) fn committed(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
    }

    /// End the thread after a last checkpoint.
    pub(crate) fn stop(&self) {
        let _ = self.stop.try_send(());
    }
}

fn run(conn: Connection, commits: &AtomicU64, stopped: &flume::Receiver<()>) {
    let mut done = 0;
    loop {
        let stop = !matches!(stopped.recv_timeout(INTERVAL), Err(flume::RecvTimeoutError::Timeout));
        let now = commits.load(Ordering::Relaxed);
        if now != done {
            done = now;
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "checkpointing the SQLite WAL failed; trying again shortly");
            }
        }
        if stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rusqlite::Connection;

    use super::Checkpointer;

    #[test]
    fn the_thread_copies_the_wal_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer.execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;").unwrap();
        let checkpoints = Checkpointer::start(&path, "PRAGMA busy_timeout = 1000;", "test-checkpoint").unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        let before = size();
        writer.execute_batch("CREATE TABLE t (x BLOB); INSERT INTO t VALUES (zeroblob(1000000));").unwrap();
        // Only a checkpoint writes the rows into the database file.
        std::thread::sleep(super::INTERVAL * 3);
        assert_eq!(size(), before, "nothing checkpoints before a commit is reported");
        checkpoints.committed();
        let started = Instant::now();
        while size() < 1_000_000 {
            assert!(started.elapsed() < Duration::from_secs(10), "the WAL was not checkpointed");
            std::thread::sleep(Duration::from_millis(10));
        }
        checkpoints.stop();
    }
}
