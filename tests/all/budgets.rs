//! Workflow budgets: a request past a budget is refused, the workflow pauses with the reason in
//! its state and events, and raising the budget then resuming continues without re-running what
//! completed. Real `http-probe` components, real HTTP on 127.0.0.1, SQLite and PostgreSQL.

use hyphae::events::{EventQuery, EventType};
use hyphae::workflow::{Budget, WorkflowStatus};
use serde_json::{json, Value};

use crate::harness::{assert_status, database, statuses, test_config, Backend, Host};
use crate::support;
use crate::upstream::Upstream;

/// A host whose `http-probe` may reach `server`.
async fn host(b: Backend, server: &Upstream) -> (Host, Option<tempfile::TempDir>) {
    let (url, db) = database(b).await;
    let dir = support::plugins_dir(&["http-probe"]);
    let manifest = format!("allowed_outbound_hosts = [{:?}]\n", server.origin());
    std::fs::write(dir.path().join("http-probe.toml"), manifest).unwrap();
    (Host::start_with(&url, test_config(), dir).await, db)
}

/// A task of `http-probe` posting a chat message to each of `urls` in turn, after `deps`.
fn probe(id: &str, deps: &[&str], urls: &[&str]) -> Value {
    let requests: Vec<Value> = urls
        .iter()
        .map(|u| json!({"url": u, "method": "POST", "body": r#"{"messages": [{"role": "user", "content": "one two three"}]}"#}))
        .collect();
    json!({"task_id": id, "agent_type": "http-probe", "dependencies": deps,
           "input": {"requests": requests, "fail_on_error": true},
           "retry_policy": {"max_attempts": 1, "initial_delay": 0.01}})
}

async fn events(h: &Host, id: &str, t: EventType) -> Vec<hyphae::events::Event> {
    let q = EventQuery { types: vec![t], limit: 1000, ..Default::default() };
    h.engine.store().workflow_events(id, &q).await.unwrap()
}

async fn request_budget_pauses_then_raising_it_continues(b: Backend) {
    let server = Upstream::start().await;
    let (h, _d) = host(b, &server).await;
    let echo = server.url("/echo");
    let id = h
        .submit(json!({
            "tasks": [probe("a", &[], &[&echo]), probe("b", &["a"], &[&echo]),
                      probe("c", &["b"], &[&echo])],
            "budget": {"max_egress_requests": 2},
        }))
        .await;
    let s = h.settle(&id).await;
    assert_status(&s, WorkflowStatus::Paused);
    assert_eq!(statuses(&s), ["completed", "completed", "retrying"]);
    assert_eq!(server.hits(), 2, "the refused request reached no server");
    let reason = s.pause_reason.as_ref().expect("a pause reason");
    assert_eq!(reason["reason"], "budget_exhausted", "{reason}");
    assert_eq!(
        (reason["budget"].as_str(), reason["limit"].as_u64(), reason["task_id"].as_str()),
        (Some("max_egress_requests"), Some(2), Some("c"))
    );
    assert_eq!(s.usage.egress_requests, 2);
    let c = &s.tasks[2];
    assert_eq!(c.error.as_ref().unwrap()["error_type"], "budget_exhausted", "{:?}", c.error);
    let paused = events(&h, &id, EventType::WorkflowPaused).await;
    assert_eq!(paused.len(), 1);
    let meta = serde_json::to_value(&paused[0]).unwrap()["metadata"].clone();
    assert_eq!(meta["reason"], "budget_exhausted", "{meta}");
    let egress = events(&h, &id, EventType::Egress).await;
    let refused = serde_json::to_value(egress.last().unwrap()).unwrap();
    assert_eq!(refused["status"], "denied", "{refused}");
    assert!(refused["metadata"]["reason"].as_str().unwrap().starts_with("budget_exhausted"), "{refused}");

    // Resuming without more budget pauses again at once.
    h.engine.control(&id, hyphae::lifecycle::Control::Resume).await.unwrap();
    let s = h.settle(&id).await;
    assert_status(&s, WorkflowStatus::Paused);
    assert_eq!(server.hits(), 2);

    let raised = h.engine.set_budget(&id, Budget { max_egress_requests: Some(3), ..Default::default() }).await.unwrap();
    assert_eq!(raised.usage.egress_requests, 2);
    assert_eq!(events(&h, &id, EventType::WorkflowBudgetChanged).await.len(), 1);
    h.engine.control(&id, hyphae::lifecycle::Control::Resume).await.unwrap();
    let s = h.settle(&id).await;
    assert_status(&s, WorkflowStatus::Completed);
    assert!(s.pause_reason.is_none(), "{:?}", s.pause_reason);
    assert_eq!(server.hits(), 3, "nothing that completed ran again");
    let attempts: Vec<u32> = s.tasks.iter().map(|t| t.attempt).collect();
    // `c` allows one attempt: the two the budget refused did not count.
    assert_eq!(attempts, [1, 1, 3]);
    assert_eq!(s.usage.egress_requests, 3);
}

async fn token_budget_counts_reported_usage(b: Backend) {
    let server = Upstream::start().await;
    let (h, _d) = host(b, &server).await;
    let chat = server.url("/v1/chat/completions");
    // Each reply reports 3 prompt + 5 completion tokens: 8, 16, then the third is refused.
    let s = h
        .run(json!({
            "tasks": [probe("a", &[], &[&chat, &chat, &chat])],
            "budget": {"max_llm_tokens": 10},
        }))
        .await;
    assert_status(&s, WorkflowStatus::Paused);
    assert_eq!((s.usage.egress_requests, s.usage.llm_tokens), (2, 16));
    assert_eq!(s.pause_reason.as_ref().unwrap()["budget"], "max_llm_tokens");
    assert_eq!(s.budget, Some(Budget { max_llm_tokens: Some(10), ..Default::default() }));
    assert_eq!(server.hits(), 2);
    let stats = h.engine.store().statistics(Some(&s.workflow_id)).await.unwrap();
    let a = &stats.egress_by_task["a"];
    assert_eq!(
        (a.totals.requests, a.totals.denied, a.totals.llm_prompt_tokens, a.totals.llm_completion_tokens),
        (3, 1, 6, 10)
    );
    assert_eq!(a.by_attempt[&1], a.totals, "all in the first attempt");

    // No budget at all: usage is still counted.
    let s = h.run(json!({"tasks": [probe("a", &[], &[&chat])]})).await;
    assert_status(&s, WorkflowStatus::Completed);
    assert_eq!((s.usage.egress_requests, s.usage.llm_tokens, s.budget), (1, 8, None));
}

async fn a_budget_cannot_change_after_the_end(b: Backend) {
    let server = Upstream::start().await;
    let (h, _d) = host(b, &server).await;
    let s = h.run(json!({"tasks": [probe("a", &[], &[&server.url("/echo")])]})).await;
    assert_status(&s, WorkflowStatus::Completed);
    let err = h.engine.set_budget(&s.workflow_id, Budget::default()).await.unwrap_err();
    assert!(err.to_string().contains("is completed: its budget can no longer change"), "{err}");
}

crate::on_both_backends!(
    request_budget_pauses_then_raising_it_continues,
    token_budget_counts_reported_usage,
    a_budget_cannot_change_after_the_end,
);
