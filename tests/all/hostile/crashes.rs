//! Crashes and faults, in short form (the campaign ran them for hours): a `hyphae serve` process
//! SIGKILLed again and again while it works loses no acknowledged workflow and completes no task
//! twice; a storm of faulty attempts ends each in its own error with nothing left running.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hyphae::events::{EventQuery, EventType};
use hyphae::workflow::WorkflowStatus;
use serde_json::{json, Value};

use crate::harness::{assert_status, database, plugins_dir, test_config, Backend, Host};
use crate::hosts::spawn_host;
use crate::support;

/// A small DAG: a sleep, two branches, a join; every kill may cost an attempt, so each task has
/// more attempts than there are kills.
fn diamond(cycle: usize, i: usize) -> Value {
    let retry = json!({"max_attempts": 10, "initial_delay": 0.05});
    json!({"idempotency_key": format!("c{cycle}-w{i}"), "tasks": [
        {"task_id": "a", "agent_type": "testkit", "input": {"action": "sleep", "ms": 50 + 37 * (i % 7)},
         "retry_policy": retry},
        {"task_id": "b", "agent_type": "fib", "input": {"n": 10}, "dependencies": ["a"], "retry_policy": retry},
        {"task_id": "c", "agent_type": "fib", "input": {"n": 12}, "dependencies": ["a"], "retry_policy": retry},
        {"task_id": "d", "agent_type": "fib", "input": {"n": 5}, "dependencies": ["b", "c"], "retry_policy": retry},
    ]})
}

async fn a_sigkill_loop_loses_nothing(b: Backend) {
    let (url, _d) = database(b).await;
    let work = tempfile::tempdir().unwrap();
    let plugins = plugins_dir();
    let client = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    for cycle in 0..4 {
        let port = support::free_port();
        let mut child = spawn_host(&url, plugins.path(), work.path(), port);
        support::wait_ready(port).await;
        for i in 0..12 {
            let sent = client.post(format!("http://127.0.0.1:{port}/v1/workflows")).json(&diamond(cycle, i)).send();
            if let Ok(resp) = sent.await {
                let v: Value = resp.json().await.unwrap();
                acknowledged.push(v["workflow_id"].as_str().expect("a workflow id").to_string());
            }
        }
        // Killed while it works: mid-sleep, mid-branch or mid-commit.
        tokio::time::sleep(Duration::from_millis(150 + 110 * cycle as u64)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    assert_eq!(acknowledged.len(), 48);
    let config = if b == Backend::Postgres {
        hyphae::engine::EngineConfig { exclusive: false, heartbeat_interval: Duration::from_secs(1), ..test_config() }
    } else {
        test_config()
    };
    let h = Host::start(&url, config).await;
    for id in &acknowledged {
        let s = h.settle(id).await;
        assert_status(&s, WorkflowStatus::Completed);
        let q = EventQuery { types: vec![EventType::TaskCompleted], limit: 1000, ..Default::default() };
        let mut completions = BTreeMap::<String, usize>::new();
        for e in h.engine.store().workflow_events(id, &q).await.unwrap() {
            *completions.entry(e.task_id.unwrap_or_default()).or_default() += 1;
        }
        assert_eq!(completions, ["a", "b", "c", "d"].map(|t| (t.to_string(), 1)).into(), "{id}: once each");
    }
}

/// What each fault ends in: the input, and the error type of the task's last attempt.
fn fault(kind: usize) -> (Value, Option<&'static str>) {
    match kind {
        0 => (json!({"action": "panic", "message": "storm"}), Some("trap")),
        1 => (json!({"action": "loop"}), Some("timeout")),
        2 => (json!({"action": "alloc", "mib": 256}), Some("out_of_memory")),
        3 => (json!({"action": "fatal", "error_type": "storm_fatal"}), Some("storm_fatal")),
        4 => (json!({"action": "error", "error_type": "storm_flaky"}), Some("storm_flaky")),
        _ => (json!({"action": "sleep", "ms": 1}), None),
    }
}

async fn a_fault_storm_ends_every_attempt_in_its_error(b: Backend) {
    let (url, _d) = database(b).await;
    let h = Host::start(&url, test_config()).await;
    let tasks: Vec<Value> = (0..120)
        .map(|i| {
            json!({"task_id": format!("t{i}"), "agent_type": "testkit", "input": fault(i % 6).0,
                   "allow_failure": true, "timeout": 0.3,
                   "retry_policy": {"max_attempts": 2, "initial_delay": 0.01}})
        })
        .collect();
    let started = Instant::now();
    let s = h.run(json!({"max_parallel_tasks": 24, "tasks": tasks})).await;
    assert_status(&s, WorkflowStatus::Completed);
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
    for (i, t) in s.tasks.iter().enumerate() {
        match fault(i % 6).1 {
            None => assert_eq!(t.status.as_str(), "completed", "{}", t.task_id),
            Some(error_type) => {
                assert_eq!(t.status.as_str(), "failed", "{}", t.task_id);
                assert_eq!(t.error.as_ref().unwrap()["error_type"], error_type, "{}", t.task_id);
                assert!(t.attempt <= 2, "{}: {} attempts", t.task_id, t.attempt);
            }
        }
    }
    assert_eq!(h.engine.running_tasks(), 0, "nothing left running");
    // The host goes on.
    let after = h.run(json!({"tasks": [{"task_id": "ok", "agent_type": "fib", "input": {"n": 10}}]})).await;
    assert_status(&after, WorkflowStatus::Completed);
}

crate::on_both_backends!(a_sigkill_loop_loses_nothing, a_fault_storm_ends_every_attempt_in_its_error);
