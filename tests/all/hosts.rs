//! Several hosts on one database, crashes and fences: two in-process hosts share work on
//! PostgreSQL; a `hyphae serve` process is SIGKILLed mid-run and another host finishes its work.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyphae::engine::EngineConfig;
use hyphae::lifecycle::{AttemptResult, Outcome};
use hyphae::store::Applied;
use hyphae::workflow::WorkflowStatus;
use serde_json::{json, Value};

use crate::harness::{assert_status, database, plugins_dir, test_config, Backend, Host};
use crate::support;

fn shared_config() -> EngineConfig {
    EngineConfig { exclusive: false, heartbeat_interval: Duration::from_secs(1), ..test_config() }
}

fn sleep_task(id: &str, ms: u64) -> Value {
    json!({"task_id": id, "agent_type": "testkit", "input": {"action": "sleep", "ms": ms}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_complete_200_workflows_once() {
    let (url, _d) = database(Backend::Postgres).await;
    let a = Host::start(&url, shared_config()).await;
    let b = Host::start(&url, shared_config()).await;
    let mut ids = Vec::new();
    for i in 0..200 {
        let host = if i % 2 == 0 { &a } else { &b };
        ids.push(
            host.submit(json!({"tasks": [
            {"task_id": "x", "agent_type": "fib", "input": {"n": 8}},
            {"task_id": "y", "agent_type": "echo", "dependencies": ["x"]}]}))
                .await,
        );
    }
    for id in &ids {
        assert_status(&a.settle(id).await, WorkflowStatus::Completed);
    }
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let per_worker: Vec<(String, i64)> = sqlx::query_as("SELECT worker_id, COUNT(*) FROM attempts GROUP BY worker_id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let total: i64 = per_worker.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 400, "every task ran exactly once: {per_worker:?}");
    assert_eq!(per_worker.len(), 2, "both hosts took work: {per_worker:?}");
    // Two hosts write at once: every workflow's history is still numbered without
    // gaps or repeats, and its counters name its last version and event.
    let misnumbered: Vec<(String, i64, i64, String, String)> = sqlx::query_as(
        "SELECT w.workflow_id, w.version, w.event_seq, \
         (SELECT count(*) || ' ' || max(version) FROM workflow_versions v WHERE v.workflow_id = w.workflow_id), \
         (SELECT sum(event_count) || ' ' || max(last_seq) FROM event_blocks b WHERE b.workflow_id = w.workflow_id) \
         FROM workflows w",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .filter(|(_, version, seq, versions, events)| {
        *versions != format!("{version} {version}") || *events != format!("{seq} {seq}")
    })
    .collect();
    assert!(
        misnumbered.is_empty(),
        "(workflow, version, event_seq, versions and last, events and last): {misnumbered:?}"
    );
}

/// A cancel made on one host stops the attempt running on the other at once (the change notice
/// says attempts were stopped), not when the attempt would have ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_on_one_host_stops_the_attempt_on_the_other() {
    let (url, _d) = database(Backend::Postgres).await;
    let a = Host::start(&url, shared_config()).await;
    let b = Host::start(&url, shared_config()).await;
    let id = a.submit(json!({"tasks": [sleep_task("long", 60_000)]})).await;
    let started = Instant::now();
    let (runner, other) = loop {
        match (a.engine.running_tasks(), b.engine.running_tasks()) {
            (1, _) => break (&a, &b),
            (_, 1) => break (&b, &a),
            _ => {}
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the task never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    other.engine.control(&id, hyphae::lifecycle::Control::Cancel).await.expect("cancel");
    let cancelled = Instant::now();
    while runner.engine.running_tasks() > 0 {
        assert!(cancelled.elapsed() < Duration::from_secs(10), "the attempt on the other host kept running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_status(&a.settle(&id).await, WorkflowStatus::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_result_of_a_fenced_attempt_is_refused() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (url, _d) = database(backend).await;
        let h = Host::start(&url, shared_config()).await;
        let s = h.run(json!({"tasks": [{"task_id": "a", "agent_type": "echo"}]})).await;
        assert_status(&s, WorkflowStatus::Completed);
        let late = Outcome {
            workflow_id: s.workflow_id.clone(),
            task_id: "a".into(),
            attempt: 1,
            result: AttemptResult::Completed("{\"late\":true}".into()),
            plugin_digest: None,
            log: Vec::new(),
            queue_time: Duration::ZERO,
            execution_time: Duration::ZERO,
            events: Vec::new(),
            usage: Default::default(),
            exhausted: None,
            peak_memory: 0,
        };
        let applied = h.engine.store().record_outcomes(&[late]).await.unwrap();
        assert_eq!(applied, vec![Applied::Fenced], "{backend:?}");
        let after = h.engine.store().workflow(&s.workflow_id).await.unwrap();
        assert_eq!(after.version, s.version, "nothing written");
        assert_eq!(after.tasks[0].output, s.tasks[0].output);
    }
}

/// A `hyphae serve` process on `db`, with quick heartbeats.
pub(crate) fn spawn_host(db: &str, plugins: &std::path::Path, dir: &std::path::Path, port: u16) -> Child {
    let config = dir.join(format!("hyphae-{port}.toml"));
    std::fs::write(&config, "heartbeat_interval = 0.2\nmiss_threshold = 3\n").unwrap();
    Command::new(env!("CARGO_BIN_EXE_hyphae"))
        .args(["serve", "--db", db, "--listen", &format!("127.0.0.1:{port}")])
        .arg("--plugins-dir")
        .arg(plugins)
        .arg("--config")
        .arg(&config)
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("hyphae serve starts")
}

async fn killed_host_work_is_finished(backend: Backend, port: u16) {
    let (url, _d) = database(backend).await;
    let work = tempfile::tempdir().unwrap();
    let plugins = plugins_dir();
    let mut child = spawn_host(&url, plugins.path(), work.path(), port);
    support::wait_ready(port).await;
    let tasks: Vec<Value> = (0..8).map(|i| sleep_task(&format!("s{i}"), 1500)).collect();
    let spec = json!({"max_parallel_tasks": 4, "tasks": tasks});
    let resp: Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/workflows"))
        .json(&spec)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = resp["workflow_id"].as_str().expect("workflow id").to_string();
    // Kill it while tasks run.
    let store = hyphae::store::Store::connect(&url).await.unwrap();
    let started = Instant::now();
    loop {
        let st = store.workflow(&id).await.unwrap();
        if st.tasks.iter().any(|t| t.status.as_str() == "running") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no task started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let config = if backend == Backend::Postgres { shared_config() } else { test_config() };
    let h = Host::start(&url, config).await;
    let s = h.settle(&id).await;
    assert_status(&s, WorkflowStatus::Completed);
    assert!(s.tasks.iter().all(|t| t.status.as_str() == "completed"), "nothing stays running");
    assert!(s.tasks.iter().any(|t| t.attempt >= 2), "attempts in flight at the kill were retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_then_restart_on_sqlite() {
    killed_host_work_is_finished(Backend::Sqlite, 18731).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_one_host_the_other_finishes_on_postgres() {
    killed_host_work_is_finished(Backend::Postgres, 18732).await;
}
