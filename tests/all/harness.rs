//! Running engines for the tests: databases (a fresh SQLite file, or a fresh PostgreSQL database),
//! hosts with the example plugins, and helpers to wait for outcomes.

use std::sync::Arc;
use std::time::Duration;

use hyphae::engine::{Engine, EngineConfig};
use hyphae::plugins::Runtime;
use hyphae::store::{Store, WorkflowState};
use hyphae::telemetry::Metrics;
use hyphae::workflow::{WorkflowSpec, WorkflowStatus};
use serde_json::Value;

use crate::support;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Administrative connection to the PostgreSQL server the tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("HYPHAE_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh, empty database. The SQLite file lives in the returned directory.
pub async fn database(backend: Backend) -> (String, Option<tempfile::TempDir>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            (dir.path().join("hyphae.db").to_string_lossy().into_owned(), Some(dir))
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let admin = postgres_admin_url();
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                panic!("PostgreSQL tests need a server at {admin} (set HYPHAE_TEST_POSTGRES): {e}")
            });
            let name = format!("hyphae_test_{}", uuid::Uuid::new_v4().simple());
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin);
            (format!("{base}/{name}"), None)
        }
    }
}

/// A host: engine and plugin runtime on one database.
pub struct Host {
    pub engine: Engine,
    _plugins_dir: tempfile::TempDir,
}

/// The example plugins every test host loads, plus `schema-validator` paired with `text-stats`.
pub const PLUGINS: &[&str] = &["echo", "fib", "text-stats", "testkit", "reviewer", "schema-validator"];

/// A plugins directory with the example plugins.
pub fn plugins_dir() -> tempfile::TempDir {
    let dir = support::plugins_dir(PLUGINS);
    std::fs::write(dir.path().join("text-stats.validator.wasm"), support::component("schema-validator")).unwrap();
    dir
}

/// Engine settings for tests: quick heartbeats.
pub fn test_config() -> EngineConfig {
    EngineConfig { heartbeat_interval: Duration::from_millis(250), ..Default::default() }
}

impl Host {
    /// Start a host on `url` with the example plugins.
    pub async fn start(url: &str, config: EngineConfig) -> Host {
        Host::start_with(url, config, plugins_dir()).await
    }

    /// Start a host on `url` with the plugins (and manifests) in `dir`.
    pub async fn start_with(url: &str, config: EngineConfig, dir: tempfile::TempDir) -> Host {
        let mut rc = support::config(dir.path());
        // Compiled components are cached across hosts of the test run.
        rc.cache_dir = Some(support::repo_root().join("target").join("test-plugin-cache"));
        let runtime = Runtime::start(rc).await.expect("plugins load");
        let store = Store::connect(url).await.expect("database opens");
        let engine =
            Engine::start(config, store, Arc::new(runtime), Arc::new(Metrics::new())).await.expect("engine starts");
        Host { engine, _plugins_dir: dir }
    }

    /// Submit a workflow given as JSON; panics if refused.
    pub async fn submit(&self, spec: Value) -> String {
        let spec: WorkflowSpec = serde_json::from_value(spec).expect("spec parses");
        self.engine.submit(spec).await.expect("workflow accepted").workflow_id
    }

    /// Wait (at most a minute) until the workflow ends or pauses; return its state.
    pub async fn settle(&self, workflow_id: &str) -> WorkflowState {
        let status = tokio::time::timeout(Duration::from_secs(60), self.engine.wait_settled(workflow_id))
            .await
            .expect("workflow settles within a minute")
            .expect("status readable");
        let state = self.engine.store().workflow(workflow_id).await.unwrap();
        assert_eq!(state.status, status);
        state
    }

    /// Submit and wait for the end.
    pub async fn run(&self, spec: Value) -> WorkflowState {
        let id = self.submit(spec).await;
        self.settle(&id).await
    }
}

/// Statuses of the tasks, in submission order.
pub fn statuses(state: &WorkflowState) -> Vec<&'static str> {
    state.tasks.iter().map(|t| t.status.as_str()).collect()
}

/// Assert the workflow ended in `status`.
pub fn assert_status(state: &WorkflowState, status: WorkflowStatus) {
    assert_eq!(state.status, status, "workflow {} tasks: {:#?}", state.workflow_id, state.tasks);
}

/// Run each named `async fn(Backend)` of the calling module as a test on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Backend::Postgres).await
                }
            )+
        }
    };
}
