//! Sizes: a plugin's error message and detail are cut at `max_error_bytes`, marked, before they
//! are stored (once in the task, again in the attempt, the version and the events); a
//! workflow's tasks are read a page at a time.

use axum::http::StatusCode;
use hyphae::workflow::WorkflowStatus;
use serde_json::{json, Value};

use crate::api::{app, assert_error};
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

/// 2,500 tasks: `GET /v1/workflows/{id}` holds the first 1,000 and counts them all; the cursor
/// leads through `/tasks` to every task once, in submission order.
async fn a_big_workflow_is_read_a_page_at_a_time(b: Backend) {
    let app = app(b).await;
    let tasks: Vec<Value> = (0..2500).map(|i| json!({"task_id": format!("t{i:04}"), "agent_type": "echo"})).collect();
    let id = app.submit(json!({"start": false, "tasks": tasks})).await;
    let (s, v) = app.get(&format!("/v1/workflows/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["tasks"].as_array().unwrap().len(), 1000);
    assert_eq!(v["task_counts"], json!({"pending": 2500}));
    let mut seen: Vec<String> = v["tasks"].as_array().unwrap().iter().map(|t| t["task_id"].to_string()).collect();
    let mut cursor = v["tasks_next_cursor"].as_str().expect("a cursor to the rest").to_string();
    loop {
        let (s, page) = app.get(&format!("/v1/workflows/{id}/tasks?limit=700&cursor={cursor}")).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        seen.extend(page["items"].as_array().unwrap().iter().map(|t| t["task_id"].to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    let expected: Vec<String> = (0..2500).map(|i| format!("\"t{i:04}\"")).collect();
    assert_eq!(seen, expected, "every task once, in submission order");

    let (_, v) = app.get(&format!("/v1/workflows/{id}?tasks_limit=0")).await;
    assert_eq!((v["tasks"].as_array().unwrap().len(), v["task_counts"]["pending"].as_u64()), (0, Some(2500)));
    let (_, first) =
        app.get(&format!("/v1/workflows/{id}/tasks?cursor={}", v["tasks_next_cursor"].as_str().unwrap())).await;
    assert_eq!(first["items"][0]["task_id"], "t0000");
    assert_eq!(first["items"].as_array().unwrap().len(), 100, "the default page");
    let (_, none) = app.get(&format!("/v1/workflows/{id}/tasks?status=completed")).await;
    assert_eq!(none["items"], json!([]));
    assert!(none.get("next_cursor").is_none(), "{none}");

    let (s, v) = app.get(&format!("/v1/workflows/{id}/tasks?cursor=abc")).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_cursor");
    let (s, v) = app.get(&format!("/v1/workflows/{id}/tasks?status=done")).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_status");
    let (s, v) = app.get("/v1/workflows/nope/tasks").await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "workflow_not_found");
}

crate::on_both_backends!(a_huge_error_message_is_cut_before_it_is_stored, a_big_workflow_is_read_a_page_at_a_time);
