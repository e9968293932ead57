//! Sizes: a plugin's error message and detail are cut at `max_error_bytes`, marked, before they
//! are stored (once in the task, again in the attempt, the version and the events).

use hyphae::workflow::WorkflowStatus;
use serde_json::json;

use crate::harness::{assert_status, database, test_config, Backend, Host};

async fn a_huge_error_message_is_cut_before_it_is_stored(b: Backend) {
    let (url, _d) = database(b).await;
    let h = Host::start(&url, test_config()).await;
    let message = "e".repeat(1 << 20);
    let s = h
        .run(json!({"tasks": [{"task_id": "a", "agent_type": "testkit",
                    "input": {"action": "fatal", "message": message}}]}))
        .await;
    assert_status(&s, WorkflowStatus::Failed);
    let stored = s.tasks[0].error.as_ref().unwrap()["message"].as_str().unwrap().to_string();
    assert!(stored.len() < (64 << 10) + 200, "{} bytes stored", stored.len());
    assert!(
        stored.ends_with("[truncated: 1048576 bytes in all, max_error_bytes is 65536]"),
        "{}",
        &stored[stored.len() - 80..]
    );
    let task = h.engine.store().task(&s.workflow_id, "a").await.unwrap().unwrap();
    let attempt_error = task.attempts.unwrap()[0].error.clone().unwrap().to_string();
    assert!(attempt_error.len() < (64 << 10) + 400, "the attempt keeps the cut message too");
}

crate::on_both_backends!(a_huge_error_message_is_cut_before_it_is_stored);
