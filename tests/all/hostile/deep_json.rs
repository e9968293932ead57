//! Deeply nested JSON: one depth rule where documents are accepted (submissions, outputs) and
//! where they are read back, so nothing is stored as completed and then unreadable.

use hyphae::workflow::{WorkflowSpec, WorkflowStatus};
use serde_json::{json, Value};

use crate::harness::{assert_status, database, statuses, test_config, Backend, Host};

fn nested(levels: usize) -> Value {
    let text = format!("{}{}", "[".repeat(levels), "]".repeat(levels));
    serde_json::from_str(&text).unwrap()
}

async fn host(b: Backend) -> (Host, Option<tempfile::TempDir>) {
    let (url, dir) = database(b).await;
    (Host::start(&url, test_config()).await, dir)
}

async fn an_output_past_the_limit_fails_its_attempt(b: Backend) {
    let (h, _d) = host(b).await;
    // `echo` returns {"input": ...}: one level more than its input.
    let s = h.run(json!({"tasks": [{"task_id": "deep", "agent_type": "echo", "input": nested(100)}]})).await;
    assert_status(&s, WorkflowStatus::Failed);
    let error = s.tasks[0].error.as_ref().expect("an error");
    assert_eq!(error["error_type"], "invalid_output", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("nested 101 levels deep, more than the limit of 100"), "{message}");
}

async fn an_output_at_the_limit_is_read_back_intact(b: Backend) {
    let (h, _d) = host(b).await;
    let s = h
        .run(json!({"tasks": [
            {"task_id": "a", "agent_type": "echo", "input": nested(99)},
            {"task_id": "b", "agent_type": "fib", "dependencies": ["a"], "input": {"n": 5}},
        ]}))
        .await;
    assert_status(&s, WorkflowStatus::Completed);
    assert_eq!(statuses(&s), ["completed", "completed"]);
    assert_eq!(s.tasks[0].output.as_ref().unwrap()["input"], nested(99), "the output reads back whole");
    let version = h.engine.store().state_at(&s.workflow_id, s.version).await.unwrap();
    assert_eq!(version.tasks["a"].output.as_ref().unwrap()["input"], nested(99));
}

async fn a_submission_past_the_limit_is_refused(b: Backend) {
    let (h, _d) = host(b).await;
    let spec: WorkflowSpec =
        serde_json::from_value(json!({"tasks": [{"task_id": "a", "agent_type": "echo", "input": nested(101)}]}))
            .unwrap();
    let e = h.engine.submit(spec).await.unwrap_err();
    assert!(e.to_string().contains("nested 101 levels deep; at most 100"), "{e}");
}

crate::on_both_backends!(
    an_output_past_the_limit_fails_its_attempt,
    an_output_at_the_limit_is_read_back_intact,
    a_submission_past_the_limit_is_refused,
);
