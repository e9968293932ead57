//! A database made by the last release (`tests/fixtures/last-release`, made by its `make.sh`) is
//! carried forward by this build's migrations: its workflows, tasks, attempts, versions, events
//! and workers read back as they were, and new work runs on it.

use std::borrow::Cow;

use hyphae::events::{AgentEventsQuery, EventQuery, EventType};
use hyphae::store::{Store, WorkflowFilter};
use hyphae::workflow::{TaskStatus, WorkflowStatus};
use serde_json::json;

use crate::harness::{assert_status, database, test_config, Backend, Host};
use crate::support::repo_root;

/// The last migration of each database that the release which made the fixtures had.
fn release_migrations(b: Backend) -> (&'static str, i64) {
    match b {
        Backend::Sqlite => ("sqlite", 5),
        Backend::Postgres => ("postgres", 6),
    }
}

/// A fresh database holding what the last release wrote.
async fn database_of_the_last_release(b: Backend) -> (String, Option<tempfile::TempDir>) {
    let (url, dir) = database(b).await;
    let (name, last) = release_migrations(b);
    let mut release = sqlx::migrate::Migrator::new(repo_root().join("migrations").join(name).as_path()).await.unwrap();
    release.migrations = Cow::Owned(release.migrations.iter().filter(|m| m.version <= last).cloned().collect());
    let data = std::fs::read_to_string(repo_root().join("tests/fixtures/last-release").join(format!("{name}.sql")))
        .expect("the fixture (tests/fixtures/last-release/make.sh)");
    // As if the release stopped just now: the workers list hides workers that stopped over a day ago.
    let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
    let workers = if b == Backend::Sqlite { "workers" } else { "public.workers" }; // pg_dump empties search_path
    let data = format!("{data}\nUPDATE {workers} SET last_beat = {now_us};\n");
    match b {
        Backend::Sqlite => {
            use sqlx::{ConnectOptions, Connection};
            let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&url).create_if_missing(true);
            let mut conn = opts.connect().await.unwrap();
            release.run(&mut conn).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(data)).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            release.run(&mut conn).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(data)).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    }
    (url, dir)
}

async fn workflows_of_the_last_release_read_back(b: Backend) {
    let (url, _dir) = database_of_the_last_release(b).await;
    let store = Store::connect(&url).await.expect("this build's migrations apply");
    let page = store.list_workflows(&WorkflowFilter { limit: 10, ..Default::default() }).await.unwrap();
    let mut names: Vec<_> = page.items.iter().map(|w| (w.name.clone().unwrap_or_default(), w.status)).collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(names, [("hello".into(), WorkflowStatus::Completed), ("retries".into(), WorkflowStatus::Completed)]);
    let id = &page.items.iter().find(|w| w.name.as_deref() == Some("retries")).unwrap().workflow_id;

    let wf = store.workflow(id).await.unwrap();
    let task = |t: &str| wf.tasks.iter().find(|x| x.task_id == t).unwrap();
    assert_eq!((task("optional").status, task("optional").allow_failure), (TaskStatus::Failed, true));
    assert!(!task("flaky").allow_failure);
    assert_eq!((task("flaky").status, task("flaky").attempt), (TaskStatus::Completed, 3));
    assert_eq!(task("slow").timeout, Some(5.0));
    assert_eq!(task("report").status, TaskStatus::Completed);
    assert_eq!(wf.task_counts.values().sum::<usize>(), 4);
    let flaky = store.task(id, "flaky").await.unwrap().unwrap();
    let attempts: Vec<_> = flaky.attempts.unwrap().iter().map(|a| a.status.clone()).collect();
    assert_eq!(attempts, ["failed", "failed", "completed"]);

    let events = store.workflow_events(id, &EventQuery { limit: 1000, ..Default::default() }).await.unwrap();
    assert_eq!(events.len() as i64, store.last_event_seq(id).await.unwrap());
    assert_eq!(events.first().map(|e| e.event_type), Some(EventType::WorkflowCreated));
    assert_eq!(events.last().map(|e| e.event_type), Some(EventType::WorkflowCompleted));
    let q = AgentEventsQuery { limit: 100, ..Default::default() };
    let (agent, _) = store.agent_events(&task("flaky").agent_id, &q).await.unwrap();
    assert!(agent.iter().any(|e| e.event_type == EventType::TaskRetrying));

    let versions = store.versions(id, 0, 1000).await.unwrap();
    let last = versions.last().unwrap();
    assert_eq!(last.status, WorkflowStatus::Completed);
    let state = store.state_at(id, last.version).await.unwrap();
    assert_eq!(state.tasks["optional"].status, TaskStatus::Failed);

    let workers = store.workers(3).await.unwrap();
    assert!(!workers.is_empty() && workers.iter().all(|w| w.stopped), "the release's workers stopped: {workers:?}");
    store.close().await;

    // New work runs on the migrated database, its yes/no columns written in the new types.
    let host = Host::start(&url, test_config()).await;
    let id = host
        .submit(json!({"tasks": [
            {"task_id": "a", "agent_type": "testkit", "input": {"action": "fatal"}, "allow_failure": true},
            {"task_id": "b", "agent_type": "echo", "dependencies": ["a"]}]}))
        .await;
    let wf = host.settle(&id).await;
    assert_status(&wf, WorkflowStatus::Completed);
    assert!(wf.tasks[0].allow_failure);
}

crate::on_both_backends!(workflows_of_the_last_release_read_back);
