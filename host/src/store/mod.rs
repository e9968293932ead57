//! Persistence: workflows, tasks, attempts, versions and events, on SQLite (default) or PostgreSQL.
//!
//! The store decides nothing: [`crate::lifecycle`] rules what a change does; the store reads what
//! a rule needs and applies what it returns. Write transactions (submitting, claiming, recording
//! outcomes, controls, upkeep) are written once ([`tx::Transaction`]), generic over
//! [`tx::WriteTx`], the statements they ask of a database, which each database implements with
//! its own SQL: [`sqlite`] on rusqlite, each transaction whole on the one writer connection's own
//! thread; [`postgres`] on sqlx's PostgreSQL driver. Reads are written once as SQL with `$n`
//! parameters and rows read by column name ([`columns`]). Timestamps are microseconds since the
//! Unix epoch on both databases, JSON is stored as text.

mod access;
mod claim;
mod columns;
mod connect;
mod control;
mod events;
mod installs;
mod outcome;
mod postgres;
mod read;
mod rows;
mod runbook;
mod sqlite;
mod stats;
mod submit;
mod tx;
mod versions;
mod workers;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use columns::{Arg, Columns};

/// Most tasks (outcomes recorded, tasks claimed) of a step run on the caller's thread on
/// SQLite ([`Store::transact_step`]).
const SMALL_STEP: usize = 2;

pub use access::{AuditEntry, AuditRecord, TokenRecord};
pub use claim::{Claim, Claimed, ClaimedTask};
pub use connect::{redact_url, SqliteSync};
pub use control::{BudgetState, ControlOutcome};
pub use installs::InstalledPlugin;
pub use outcome::Applied;
pub use read::{
    AttemptRecord, Page, TaskFilter, TaskResultRow, TaskState, WorkflowFilter, WorkflowState, WorkflowSummary,
};
pub use rows::parse_notice;
pub use runbook::{AgentTypeStats, Failure, FailureCursor, FailureFilter, OutcomeBucket, StuckTask, TaskReset};
pub use submit::Submitted;
pub use versions::{VersionInfo, VersionState};
pub use workers::{Serves, Unserved, WorkerHealth, WorkerRecord};

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the database's connection thread stopped (the host is stopping, or an operation failed unexpectedly)")]
    Stopped,
    #[error("could not start a database connection's thread: {0}")]
    Thread(std::io::Error),
    #[error("could not apply database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database url `{0}`: use a file path, `sqlite://PATH` or `postgres://...`")]
    UnsupportedUrl(String),
    #[error("stored data is corrupt ({0})")]
    Corrupt(String),
    #[error("could not encode events: {0}")]
    Events(#[from] crate::events::blocks::BlockError),
    #[error("workflow `{0}` not found")]
    WorkflowNotFound(String),
    #[error("workflow `{0}` has no version {1}")]
    VersionNotFound(String, i64),
    #[error("{0}")]
    Conflict(String),
    #[error("the idempotency key `{key}` was used by an earlier submission with a different request (workflow {workflow_id}): use a new key for a new workflow")]
    IdempotencyKeyReused { key: String, workflow_id: String },
}

impl StoreError {
    /// Whether the database could not be reached, is shutting down, or is out of resources
    /// (connections, disk): the same operation may succeed later.
    pub fn is_unavailable(&self) -> bool {
        let e = match self {
            StoreError::Database(e) => e,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => return sqlite_unavailable(e.code),
            StoreError::Stopped => return true,
            _ => return false,
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| unavailable_code(&code)),
            _ => false,
        }
    }
}

/// PostgreSQL SQLSTATE classes 08 (connection), 53 (insufficient resources) and 57 (operator
/// intervention: shutdown, terminated); SQLite's busy, locked, I/O error, full and cannot-open.
fn unavailable_code(code: &str) -> bool {
    if code.len() == 5 {
        return ["08", "53", "57"].iter().any(|class| code.starts_with(class));
    }
    code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 10 | 13 | 14))
}

/// SQLite's busy, locked, I/O error, full and cannot-open, as rusqlite names them.
fn sqlite_unavailable(code: rusqlite::ErrorCode) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(code, DatabaseBusy | DatabaseLocked | SystemIoFailure | DiskFull | CannotOpen)
}

impl From<crate::workflow::UnknownStatus> for StoreError {
    fn from(e: crate::workflow::UnknownStatus) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// Result alias of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database of a store, on its own driver.
#[derive(Clone)]
enum Db {
    Sqlite(sqlite::Sqlite),
    /// The pool, and the connection kept for the engine's steps.
    Postgres(postgres::Pool, Arc<postgres::Kept>),
}

/// Handle on the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Db,
    url: Arc<str>,
    /// Whether coordination events are recorded (benchmarks turn it off to measure its cost).
    events_enabled: Arc<AtomicBool>,
    /// Events written (committed) through this store.
    events_written: Arc<std::sync::atomic::AtomicU64>,
    /// Tells this store's own change notices from other hosts' (PostgreSQL).
    origin: Arc<str>,
}

impl Store {
    /// Identity of this store in the change notices it sends (unique per [`Store::connect`]).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The database this store talks to.
    pub fn dialect(&self) -> Dialect {
        match self.db {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(..) => Dialect::Postgres,
        }
    }

    /// The connection url, as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Turn recording of coordination events on or off (on by default).
    pub fn set_events_enabled(&self, on: bool) {
        self.events_enabled.store(on, Ordering::Relaxed);
    }

    /// Events this store has written (committed) since it was opened.
    pub fn events_written(&self) -> u64 {
        self.events_written.load(Ordering::Relaxed)
    }

    pub(crate) fn count_events(&self, n: u64) {
        self.events_written.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn events_enabled(&self) -> bool {
        self.events_enabled.load(Ordering::Relaxed)
    }

    /// Run a write transaction: on SQLite whole on the writer's thread (the only writer), on
    /// PostgreSQL on a pooled connection.
    pub(crate) async fn transact<Op: tx::Transaction>(&self, op: Op) -> Result<Op::Output> {
        match &self.db {
            Db::Sqlite(db) => db.write(op).await,
            Db::Postgres(pool, _) => postgres::transact(pool, op).await,
        }
    }

    /// [`Store::transact`] for a step of the engine (recording outcomes, claiming) of at most
    /// `tasks` tasks: on SQLite, a small one runs on the caller's thread, blocked meanwhile,
    /// instead of the writer's. Two thread hand-offs cost about as much as a one-task step's
    /// transaction; a large one would hold an async worker too long (the plugin calls it would
    /// run meanwhile wait), so it goes to the writer's thread. On PostgreSQL, steps run on a
    /// connection kept for them ([`postgres::step`]).
    pub(crate) async fn transact_step<Op: tx::Transaction>(&self, op: Op, tasks: usize) -> Result<Op::Output> {
        match &self.db {
            Db::Sqlite(db) if tasks <= SMALL_STEP => db.write_soon(op).await,
            Db::Sqlite(db) => db.write(op).await,
            Db::Postgres(pool, kept) => postgres::step(pool, kept, op).await,
        }
    }

    /// Run `op`, which only reads, in a transaction of its own: what it reads is one snapshot.
    pub(crate) async fn read<Op: tx::Transaction>(&self, op: Op) -> Result<Op::Output> {
        match &self.db {
            Db::Sqlite(db) => db.read(op).await,
            Db::Postgres(pool, _) => postgres::read_only(pool, op).await,
        }
    }

    /// Run the read `sql` (`$n` parameters, bound from `args`) and turn each row into a record
    /// with `map`.
    pub(crate) async fn rows<R: Send + 'static>(
        &self,
        sql: &str,
        args: Vec<Arg>,
        map: impl Fn(&dyn Columns) -> Result<R> + Send + 'static,
    ) -> Result<Vec<R>> {
        match &self.db {
            Db::Sqlite(db) => db.rows(sql, args, map).await,
            Db::Postgres(pool, _) => postgres::rows(pool, sql, args, map).await,
        }
    }

    /// The first row of [`Store::rows`], if any.
    pub(crate) async fn row<R: Send + 'static>(
        &self,
        sql: &str,
        args: Vec<Arg>,
        map: impl Fn(&dyn Columns) -> Result<R> + Send + 'static,
    ) -> Result<Option<R>> {
        Ok(self.rows(sql, args, map).await?.into_iter().next())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        self.rows("SELECT 1", Vec::new(), |_| Ok(())).await.map(drop)
    }

    /// Close the database's connections; later operations fail with [`StoreError::Stopped`]
    /// (SQLite) or a closed pool (PostgreSQL).
    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite(db) => db.close(),
            Db::Postgres(pool, kept) => {
                // Closing waits for every connection out of the pool: the kept one goes back.
                let closed = pool.close();
                kept.release().await;
                closed.await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    fn sqlite_error(code: i32) -> StoreError {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None))
    }

    #[test]
    fn busy_and_full_sqlite_are_unavailable_not_a_constraint() {
        assert!(sqlite_error(rusqlite::ffi::SQLITE_BUSY).is_unavailable());
        assert!(sqlite_error(rusqlite::ffi::SQLITE_FULL).is_unavailable());
        assert!(sqlite_error(rusqlite::ffi::SQLITE_IOERR_SHMMAP).is_unavailable());
        assert!(!sqlite_error(rusqlite::ffi::SQLITE_CONSTRAINT).is_unavailable());
        assert!(StoreError::Stopped.is_unavailable());
    }
}
