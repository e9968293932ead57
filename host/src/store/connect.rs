//! Opening a store: url parsing, pools, pragmas and migrations.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

use super::postgres::IDLE_BEFORE_PING;
use super::sqlite::Sqlite;
use super::{Db, Result, Store, StoreError};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Pragmas of every SQLite connection but `synchronous` ([`SqliteSync`]).
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
     PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;";

/// When a SQLite commit is on disk (PostgreSQL decides its own durability).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// `synchronous = NORMAL` in WAL mode: a commit survives a crash of the host process; the
    /// last commits before a power loss or an operating-system crash may be lost (the database
    /// stays consistent). No disk sync per commit.
    #[default]
    Normal,
    /// `synchronous = FULL`: each commit is synced to disk before it is acknowledged, so it
    /// survives a power loss too; a sync per commit (per batch of outcomes) costs time.
    Full,
}

impl SqliteSync {
    fn pragma(self) -> (&'static str, SqliteSynchronous) {
        match self {
            SqliteSync::Normal => ("PRAGMA synchronous = NORMAL;", SqliteSynchronous::Normal),
            SqliteSync::Full => ("PRAGMA synchronous = FULL;", SqliteSynchronous::Full),
        }
    }
}

/// Batched statements differ in their number of rows, so a connection sees a few hundred
/// distinct texts: keep them all prepared (the default of 100 would re-prepare most of them).
const STATEMENT_CACHE: usize = 1024;

/// `url` with a statement cache of [`STATEMENT_CACHE`], unless it sets its own.
fn with_statement_cache(url: &str) -> String {
    if url.contains("statement-cache-capacity=") {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}statement-cache-capacity={STATEMENT_CACHE}")
}

impl Store {
    /// Open (creating if needed) the database at `url` and bring its schema up to date.
    ///
    /// `url` is a file path or `sqlite://PATH` for SQLite, `postgres://...` for PostgreSQL.
    pub async fn connect(url: &str) -> Result<Store> {
        Store::connect_with(url, SqliteSync::default()).await
    }

    /// [`Store::connect`], with SQLite commits as durable as `sync` says.
    pub async fn connect_with(url: &str, sync: SqliteSync) -> Result<Store> {
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(&with_statement_cache(url))?;
            let mut conn = opts.connect().await?;
            POSTGRES_MIGRATIONS.run(&mut conn).await?;
            conn.close().await?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                // A request waits this long for a connection before it is answered 503.
                .acquire_timeout(Duration::from_secs(10))
                // A connection is checked (one round trip) only after resting a while: one in
                // use answered a moment ago, and checking it cost each step of a workflow a
                // round trip. A connection the server dropped meanwhile fails its statement,
                // is closed, and the writer records its outcomes again.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for > IDLE_BEFORE_PING {
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(opts)
                .await?;
            Db::Postgres(pool, Arc::default())
        } else {
            let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
            if path.contains("://") {
                return Err(StoreError::UnsupportedUrl(url.to_string()));
            }
            let opts = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(sync.pragma().1)
                .foreign_keys(true);
            let mut conn = opts.connect().await?;
            SQLITE_MIGRATIONS.run(&mut conn).await?;
            conn.close().await?;
            let pragmas = format!("{SQLITE_PRAGMAS} {}", sync.pragma().0);
            Db::Sqlite(Sqlite::open(Path::new(path), 4, &pragmas)?)
        };
        Ok(Store {
            db,
            url: Arc::from(url),
            events_enabled: Arc::new(AtomicBool::new(true)),
            events_written: Default::default(),
            origin: Arc::from(uuid::Uuid::new_v4().simple().to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{with_statement_cache, Db, SqliteSync, Store};

    /// `PRAGMA synchronous` of the writer's and a reader's connection: 1 is NORMAL, 2 is FULL.
    async fn synchronous(store: &Store) -> (i64, i64) {
        let Db::Sqlite(db) = &store.db else { panic!("a SQLite store") };
        db.pragma("synchronous").await.unwrap()
    }

    #[tokio::test]
    async fn sqlite_commits_are_as_durable_as_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::connect(path.to_str().unwrap()).await.unwrap();
        assert_eq!(synchronous(&store).await, (1, 1));
        store.close().await;
        let store = Store::connect_with(path.to_str().unwrap(), SqliteSync::Full).await.unwrap();
        assert_eq!(synchronous(&store).await, (2, 2));
    }

    #[tokio::test]
    async fn the_writer_leaves_checkpoints_to_their_thread() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(dir.path().join("t.db").to_str().unwrap()).await.unwrap();
        let Db::Sqlite(db) = &store.db else { panic!("a SQLite store") };
        assert_eq!(db.pragma("wal_autocheckpoint").await.unwrap(), (0, 1000));
        // Commits are reported to the checkpointer: the tasks reach the database file.
        let size = || std::fs::metadata(dir.path().join("t.db")).unwrap().len();
        let before = size();
        let tasks: Vec<_> = (0..200)
            .map(|i| json!({"task_id": format!("t{i}"), "agent_type": "a", "input": {"pad": "x".repeat(2000)}}))
            .collect();
        let spec = serde_json::from_value(json!({ "tasks": tasks })).unwrap();
        store.submit(crate::workflow::validate(spec, |_| true).unwrap()).await.unwrap();
        let started = std::time::Instant::now();
        while size() < before + 400_000 {
            assert!(started.elapsed() < std::time::Duration::from_secs(10), "the WAL was not checkpointed");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn statement_cache_is_added_unless_set() {
        assert_eq!(with_statement_cache("postgres://h/db"), "postgres://h/db?statement-cache-capacity=1024");
        assert_eq!(
            with_statement_cache("postgres://h/db?sslmode=disable"),
            "postgres://h/db?sslmode=disable&statement-cache-capacity=1024"
        );
        assert_eq!(
            with_statement_cache("postgres://h/db?statement-cache-capacity=5"),
            "postgres://h/db?statement-cache-capacity=5"
        );
    }
}

/// A database URL fit to show or log: its password, in the user part or a `password` query
/// parameter, replaced by `***`. A SQLite path is shown as given.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = reqwest::Url::parse(url) else { return url.to_string() };
    if !matches!(u.scheme(), "postgres" | "postgresql") {
        return url.to_string();
    }
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if u.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" { "***".to_string() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

#[cfg(test)]
mod redaction_tests {
    use super::redact_url;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(
            redact_url("postgresql://u@h/db?sslmode=require&password=pw"),
            "postgresql://u@h/db?sslmode=require&password=***"
        );
        assert_eq!(redact_url("postgres://postgres@127.0.0.1/x"), "postgres://postgres@127.0.0.1/x");
        assert_eq!(redact_url("bench.db"), "bench.db");
        assert_eq!(redact_url("/tmp/a:b@c.db"), "/tmp/a:b@c.db");
    }
}
