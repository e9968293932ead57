//! Ids and names from clients: a NUL, a control character or an id past its length limit is a
//! 4xx with the usual error shape on both databases, never a 500 with database text.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::api::{app, assert_error};
use crate::harness::Backend;

/// No database or driver text in a response.
fn assert_clean(v: &Value) {
    let text = v.to_string();
    for leak in ["ERROR", "invalid byte sequence", "btree", "sqlx", "SQLITE", "0x00"] {
        assert!(!text.contains(leak), "the response shows `{leak}`: {text}");
    }
}

async fn bad_ids_in_submissions_are_refused(b: Backend) {
    let app = app(b).await;
    let long = "x".repeat(2800);
    let task = |field: &str, value: &str| {
        let mut t = json!({"task_id": "a", "agent_type": "echo"});
        t[field] = json!(value);
        json!({ "tasks": [t] })
    };
    let mut cases = vec![
        task("task_id", "a\u{0}"),
        task("agent_id", "agent\u{0}"),
        task("agent_id", &long),
        task("task_id", &long),
        task("agent_type", "echo\u{1}"),
    ];
    cases.push(json!({"name": "n\u{0}", "tasks": [{"task_id": "a", "agent_type": "echo"}]}));
    cases.push(json!({"idempotency_key": "k\u{0}", "tasks": [{"task_id": "a", "agent_type": "echo"}]}));
    for body in cases {
        let (s, v) = app.post("/v1/workflows", body.clone()).await;
        assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid_workflow");
        assert_clean(&v);
    }
    let (_, list) = app.get("/v1/workflows").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "nothing was stored: {list}");
}

async fn bad_ids_in_paths_and_queries_are_refused(b: Backend) {
    let app = app(b).await;
    let long = "x".repeat(2800);
    for (uri, code) in [
        ("/v1/workflows/%00".to_string(), "invalid_path"),
        ("/v1/workflows/a%00b/tasks/t".to_string(), "invalid_path"),
        ("/v1/agents/%00/events".to_string(), "invalid_path"),
        (format!("/v1/agents/{long}/events"), "invalid_path"),
        ("/v1/workflows?cursor=%00%ff".to_string(), "invalid_query"),
        ("/v1/workflows?status=%00".to_string(), "invalid_query"),
    ] {
        let (s, v) = app.get(&uri).await;
        assert_error(s, &v, StatusCode::BAD_REQUEST, code);
        assert_clean(&v);
    }
    // Not UTF-8: read as text it names no workflow, so the page is empty.
    let (s, v) = app.get("/v1/workflows?cursor=%ff%fe").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_clean(&v);
}

crate::on_both_backends!(bad_ids_in_submissions_are_refused, bad_ids_in_paths_and_queries_are_refused);
