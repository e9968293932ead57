//! The engine alone, on a real SQLite file, with a scripted sandbox (the real plugins are
//! exercised by the integration tests in `tests/all`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::{Engine, EngineConfig};
use crate::lifecycle::Control;
use crate::plugins::{CallOptions, Execution, Sandbox, TaskContext, TaskFailure, Validation};
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::workflow::{TaskStatus, WorkflowSpec, WorkflowStatus};

/// Runs `{"sleep_ms": n, "fail_until": k, "fatal": bool}` scripts; counts calls.
#[derive(Default)]
struct Script {
    calls: AtomicUsize,
}

impl Sandbox for Script {
    fn has_executor(&self, agent_type: &str) -> bool {
        agent_type == "script"
    }

    fn execute(&self, ctx: TaskContext, opts: CallOptions) -> BoxFuture<'_, Execution> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let input: Value = serde_json::from_str(&ctx.input).unwrap_or_default();
            let sleep = Duration::from_millis(input["sleep_ms"].as_u64().unwrap_or(0));
            let cancel = opts.cancel.clone().unwrap_or_default();
            let fail = |t: &str, retryable| {
                Err(TaskFailure { error_type: t.into(), message: t.into(), retryable, detail: None })
            };
            let result = tokio::select! {
                _ = tokio::time::sleep(sleep) => {
                    if input["fatal"].as_bool() == Some(true) {
                        fail("fatal_test", false)
                    } else if (ctx.attempt as u64) <= input["fail_until"].as_u64().unwrap_or(0) {
                        fail("flaky", true)
                    } else {
                        Ok(json!({"task": ctx.task_id, "deps": ctx.previous_results.len()}).to_string())
                    }
                }
                _ = cancel.cancelled() => fail("cancelled", false),
            };
            Execution {
                digest: "sha256:test".into(),
                result,
                plugin_error: false,
                log: Vec::new(),
                egress: Vec::new(),
                duration: sleep,
                instantiation: None,
                peak_memory: 0,
            }
        })
    }

    fn validate<'a>(&'a self, _: &'a str, _: &'a str, _: CallOptions) -> BoxFuture<'a, Validation> {
        Box::pin(async { Validation::NoValidator })
    }
}

async fn engine(dir: &tempfile::TempDir) -> (Engine, Arc<Script>) {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("debug,sqlx=warn").try_init();
    let store = Store::connect(dir.path().join("t.db").to_str().unwrap()).await.unwrap();
    let script = Arc::new(Script::default());
    let config = EngineConfig { heartbeat_interval: Duration::from_millis(200), ..Default::default() };
    let e = Engine::start(config, store, script.clone(), Arc::new(Metrics::new())).await.unwrap();
    (e, script)
}

fn spec(v: Value) -> WorkflowSpec {
    serde_json::from_value(v).unwrap()
}

fn task(id: &str, deps: &[&str], input: Value) -> Value {
    json!({"task_id": id, "agent_type": "script", "dependencies": deps, "input": input,
           "retry_policy": {"initial_delay": 0.01, "max_delay": 0.05}})
}

#[tokio::test]
async fn diamond_with_retry_completes_and_versions_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (e, script) = engine(&dir).await;
    let wf = spec(json!({"tasks": [
        task("a", &[], json!({})),
        task("b", &["a"], json!({"fail_until": 1})),
        task("c", &["a"], json!({})),
        task("d", &["b", "c"], json!({})),
    ]}));
    let s = e.submit(wf).await.unwrap();
    assert_eq!(e.wait_settled(&s.workflow_id).await.unwrap(), WorkflowStatus::Completed);
    let state = e.store().workflow(&s.workflow_id).await.unwrap();
    assert!(state.tasks.iter().all(|t| t.status == TaskStatus::Completed));
    assert_eq!(state.tasks[1].attempt, 2);
    assert_eq!(state.tasks[3].output.as_ref().unwrap()["deps"], 2);
    assert_eq!(script.calls.load(Ordering::SeqCst), 5);
    let last = e.store().state_at(&s.workflow_id, state.version).await.unwrap();
    assert_eq!(last.status, WorkflowStatus::Completed);
    assert!(last.tasks.values().all(|t| t.status == TaskStatus::Completed));
    let first = e.store().state_at(&s.workflow_id, 1).await.unwrap();
    assert!(first.tasks.values().all(|t| t.status == TaskStatus::Pending));
    e.shutdown().await;
}

#[tokio::test]
async fn fatal_failure_skips_dependents_and_cancel_interrupts() {
    let dir = tempfile::tempdir().unwrap();
    let (e, _) = engine(&dir).await;
    let wf = spec(json!({"tasks": [
        task("a", &[], json!({"fatal": true})),
        task("slow", &[], json!({"sleep_ms": 5000})),
        task("b", &["a"], json!({})),
    ]}));
    let s = e.submit(wf).await.unwrap();
    assert_eq!(e.wait_settled(&s.workflow_id).await.unwrap(), WorkflowStatus::Failed);
    let state = e.store().workflow(&s.workflow_id).await.unwrap();
    let st: Vec<TaskStatus> = state.tasks.iter().map(|t| t.status).collect();
    assert_eq!(st, vec![TaskStatus::Failed, TaskStatus::Cancelled, TaskStatus::Skipped]);

    let wf = spec(json!({"tasks": [task("slow", &[], json!({"sleep_ms": 10000}))]}));
    let s = e.submit(wf).await.unwrap();
    // Its own attempt running (the counter may still hold the first workflow's cancelled call).
    while e.store().workflow(&s.workflow_id).await.unwrap().tasks[0].status != TaskStatus::Running {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let out = e.control(&s.workflow_id, Control::Cancel).await.unwrap();
    assert_eq!(out.cancelled_tasks, vec!["slow".to_string()]);
    let version = out.version;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(e.running_tasks(), 0);
    assert_eq!(e.store().workflow(&s.workflow_id).await.unwrap().version, version, "nothing written after cancel");
    e.shutdown().await;
}

#[tokio::test]
async fn pause_rollback_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (e, script) = engine(&dir).await;
    let wf = spec(json!({"tasks": [
        task("a", &[], json!({})),
        task("b", &["a"], json!({})),
        task("c", &["b"], json!({})),
    ]}));
    let s = e.submit(wf).await.unwrap();
    assert_eq!(e.wait_settled(&s.workflow_id).await.unwrap(), WorkflowStatus::Completed);
    // Find the first version where `a` is completed and `b` is not.
    let versions = e.store().versions(&s.workflow_id, 0, 1000).await.unwrap();
    let mut target = 0;
    for v in &versions {
        let st = e.store().state_at(&s.workflow_id, v.version).await.unwrap();
        if st.tasks["a"].status == TaskStatus::Completed && st.tasks["b"].status == TaskStatus::Pending {
            target = v.version;
            break;
        }
    }
    assert!(target > 0);
    let out = e.control(&s.workflow_id, Control::Rollback(target)).await.unwrap();
    assert_eq!(out.status, WorkflowStatus::Paused);
    let st = e.store().workflow(&s.workflow_id).await.unwrap();
    assert_eq!(st.tasks[1].status, TaskStatus::Pending);
    let before = script.calls.load(Ordering::SeqCst);
    e.control(&s.workflow_id, Control::Resume).await.unwrap();
    assert_eq!(e.wait_settled(&s.workflow_id).await.unwrap(), WorkflowStatus::Completed);
    assert_eq!(script.calls.load(Ordering::SeqCst) - before, 2, "only b and c run again");
    e.shutdown().await;
}

#[tokio::test]
async fn a_submission_claims_its_first_tasks_and_keeps_version_1() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(dir.path().join("t.db").to_str().unwrap()).await.unwrap();
    let wf =
        spec(json!({"tasks": [task("a", &[], json!({})), task("b", &[], json!({})), task("c", &["a"], json!({}))]}));
    let valid = crate::workflow::validate(wf, |_| true).unwrap();
    let claim = crate::store::Claim {
        worker_id: "w".into(),
        max: 1,
        lease: Duration::from_secs(30),
        workflows: None,
        agent_types: None,
    };
    let (submitted, claimed) = store.submit_and_claim(valid, Some(claim)).await.unwrap();
    assert_eq!(claimed.tasks.len(), 1, "as many as the claim asked for");
    assert!(claimed.more_ready, "the other root is left for the scheduler");
    assert_eq!(submitted.version, 1);
    let created = store.state_at(&submitted.workflow_id, 1).await.unwrap();
    assert!(created.tasks.values().all(|t| t.status == TaskStatus::Pending), "{:?}", created.tasks);
    let now = store.state_at(&submitted.workflow_id, 2).await.unwrap();
    assert_eq!(now.tasks[claimed.tasks[0].task_id.as_ref()].status, TaskStatus::Running);
}
