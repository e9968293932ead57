//! Connections that each live on their own thread and run whole operations there.
//!
//! Through sqlx every statement is a hand-off to the connection's worker thread and back, about
//! 70 us each here (`host/experiments/sqlite_handoff`); an operation sent here as one closure
//! pays one hand-off, however many statements it runs. A caller for whom even that hand-off is
//! too much (the engine's step) runs its operation on its own thread with [`Connections::call_soon`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::store::{Result, StoreError};

/// Prepared statements kept per connection (rusqlite keeps 16 by default; a write transaction
/// uses about twenty).
const STATEMENTS: usize = 64;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A set of connections to one database file, each on its own thread, sharing one queue of
/// operations: an operation runs on whichever connection is free. Cheap to clone; the threads
/// end (closing their connections) on [`Connections::close`] or when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct Connections {
    jobs: flume::Sender<Job>,
    /// The connections, each locked by its thread while it runs an operation; a thread that
    /// ends takes its connection out (closing it).
    conns: Arc<[Arc<Mutex<Option<Connection>>>]>,
    closed: Arc<AtomicBool>,
}

impl Connections {
    /// Open `n` connections to `path`, each set up by `pragmas`, on threads named `name-i`.
    pub(crate) fn open(path: &Path, n: usize, pragmas: &str, name: &str) -> Result<Connections> {
        let (jobs, queue) = flume::unbounded::<Job>();
        let closed = Arc::new(AtomicBool::new(false));
        let mut conns = Vec::with_capacity(n);
        for i in 0..n {
            let conn = Connection::open(path)?;
            conn.execute_batch(pragmas)?;
            conn.set_prepared_statement_cache_capacity(STATEMENTS);
            let conn = Arc::new(Mutex::new(Some(conn)));
            conns.push(conn.clone());
            let (queue, closed) = (queue.clone(), closed.clone());
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    for job in queue.iter() {
                        // A panic ends that operation (its caller gets an error), not the thread.
                        if let Some(c) = lock(&conn).as_mut() {
                            let _ = catch_unwind(AssertUnwindSafe(|| job(c)));
                        }
                        if closed.load(Ordering::Acquire) {
                            break;
                        }
                    }
                    lock(&conn).take();
                })
                .map_err(StoreError::Thread)?;
        }
        Ok(Connections { jobs, conns: conns.into(), closed })
    }

    /// Refuse new operations and end the threads once they finish the operations sent before.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for _ in 0..self.conns.len() {
            // Wakes a thread that waits for work, so that it sees the flag and ends.
            let _ = self.jobs.send(Box::new(|_| {}));
        }
    }

    /// Run `op` on a free connection and wait for what it returns.
    pub(crate) async fn call<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Stopped);
        }
        let job: Job = Box::new(move |conn| {
            let _ = done.send(op(conn));
        });
        self.jobs.send(job).map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }

    /// Run `op` on the first connection, on the caller's thread if that connection is free now
    /// (no hand-off to its thread and back; the caller is blocked while `op` runs, so `op` must
    /// be short), else on its thread after the operation it runs.
    pub(crate) async fn call_soon<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        match self.try_here(op) {
            Ok(done) => done,
            Err(op) => self.call(op).await,
        }
    }

    /// Run `op` on the first connection on this thread if it is free now; `op` back if not.
    fn try_here<T, F: FnOnce(&mut Connection) -> Result<T>>(&self, op: F) -> std::result::Result<Result<T>, F> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(Err(StoreError::Stopped));
        }
        let Some(conn) = self.conns.first() else { return Ok(Err(StoreError::Stopped)) };
        let mut conn = match conn.try_lock() {
            Ok(conn) => conn,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(op),
        };
        let Some(conn) = conn.as_mut() else { return Ok(Err(StoreError::Stopped)) };
        // As on the threads: a panic ends the operation (an error for its caller), not the caller.
        Ok(catch_unwind(AssertUnwindSafe(|| op(conn))).unwrap_or(Err(StoreError::Stopped)))
    }
}

/// The connection behind `conn`; one whose operation panicked is still sound (SQLite rolls an
/// unfinished transaction back when the next one begins), so a poisoned lock is taken anyway.
fn lock(conn: &Mutex<Option<Connection>>) -> std::sync::MutexGuard<'_, Option<Connection>> {
    conn.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::Connections;
    use crate::store::StoreError;

    fn open(n: usize) -> (tempfile::TempDir, Connections) {
        let dir = tempfile::tempdir().unwrap();
        let conns = Connections::open(&dir.path().join("t.db"), n, "PRAGMA journal_mode = WAL;", "test").unwrap();
        (dir, conns)
    }

    #[tokio::test]
    async fn operations_run_on_the_connections_threads() {
        let (_dir, conns) = open(2);
        let name = conns.call(|_| Ok(std::thread::current().name().map(str::to_string))).await.unwrap();
        assert!(name.is_some_and(|n| n.starts_with("test-")));
        conns.call(|c| Ok(c.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7);")?)).await.unwrap();
        let x: i64 = conns.call(|c| Ok(c.query_row("SELECT x FROM t", [], |r| r.get(0))?)).await.unwrap();
        assert_eq!(x, 7);
    }

    #[tokio::test]
    async fn a_panicking_operation_fails_alone() {
        let (_dir, conns) = open(1);
        let failed = conns.call(|_| -> crate::store::Result<()> { panic!("boom") }).await;
        assert!(matches!(failed, Err(StoreError::Stopped)), "{failed:?}");
        // The one thread still serves.
        assert_eq!(conns.call(|_| Ok(5)).await.unwrap(), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn operations_run_soon_on_the_callers_thread_when_the_connection_is_free() {
        let (_dir, conns) = open(1);
        conns
            .call(|c| Ok(c.execute_batch("CREATE TEMP TABLE t (x INTEGER); INSERT INTO t VALUES (3);")?))
            .await
            .unwrap();
        // A temporary table is seen by its own connection only.
        let x: i64 = conns.call_soon(|c| Ok(c.query_row("SELECT x FROM t", [], |r| r.get(0))?)).await.unwrap();
        assert_eq!(x, 3);
        // The thread answers before it lets go of the connection: wait until it has.
        while conns.conns[0].try_lock().is_err() {
            tokio::task::yield_now().await;
        }
        let here = std::thread::current().id();
        assert_eq!(conns.call_soon(|_| Ok(std::thread::current().id())).await.unwrap(), here);
        // While the connection's thread runs an operation, the next one waits for it there.
        let (started, start) = std::sync::mpsc::channel();
        let (finish, finished) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let conns = conns.clone();
            async move {
                conns
                    .call(move |_| {
                        started.send(()).unwrap();
                        finished.recv().unwrap();
                        Ok(std::thread::current().id())
                    })
                    .await
            }
        });
        start.recv().unwrap();
        let queued = tokio::spawn({
            let conns = conns.clone();
            async move { conns.call_soon(|_| Ok(std::thread::current().id())).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        finish.send(()).unwrap();
        assert_eq!(queued.await.unwrap().unwrap(), busy.await.unwrap().unwrap());
        let failed = conns.call_soon(|_| -> crate::store::Result<()> { panic!("boom") }).await;
        assert!(matches!(failed, Err(StoreError::Stopped)), "{failed:?}");
        assert_eq!(conns.call(|_| Ok(5)).await.unwrap(), 5);
        conns.close();
        assert!(matches!(conns.call_soon(|_| Ok(1)).await, Err(StoreError::Stopped)));
    }

    #[tokio::test]
    async fn closed_connections_refuse_operations() {
        let (_dir, conns) = open(2);
        assert_eq!(conns.call(|_| Ok(1)).await.unwrap(), 1);
        conns.close();
        assert!(matches!(conns.call(|_| Ok(1)).await, Err(StoreError::Stopped)));
    }

    #[tokio::test]
    async fn sql_errors_say_what_failed() {
        let (_dir, conns) = open(1);
        let e = conns.call(|c| Ok(c.execute_batch("SELECT * FROM nowhere")?)).await.unwrap_err();
        assert!(e.to_string().contains("no such table: nowhere"), "{e}");
    }
}
