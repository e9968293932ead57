//! Engine scenarios with the real example plugins, each on SQLite and on PostgreSQL.

use std::time::{Duration, Instant};

use hyphae::events::{EventQuery, EventType};
use hyphae::lifecycle::Control;
use hyphae::store::{Claim, Unserved};
use hyphae::workflow::{TaskStatus, WorkflowStatus};
use serde_json::{json, Value};

use crate::harness::{assert_status, database, statuses, test_config, Backend, Host};

fn t(id: &str, agent_type: &str, deps: &[&str], input: Value) -> Value {
    json!({"task_id": id, "agent_type": agent_type, "dependencies": deps, "input": input,
           "retry_policy": {"initial_delay": 0.05, "max_delay": 0.2}})
}

fn sleep(ms: u64) -> Value {
    json!({"action": "sleep", "ms": ms})
}

async fn host(backend: Backend) -> (Host, Option<tempfile::TempDir>) {
    let (url, dir) = database(backend).await;
    (Host::start(&url, test_config()).await, dir)
}

async fn sequential(b: Backend) {
    let (h, _d) = host(b).await;
    let s = h
        .run(json!({"tasks": [
            t("a", "fib", &[], json!({"n": 10})),
            t("b", "echo", &["a"], json!({"step": 2})),
            t("c", "echo", &["b"], json!({"step": 3})),
        ]}))
        .await;
    assert_status(&s, WorkflowStatus::Completed);
    assert_eq!(s.tasks[0].output.as_ref().unwrap()["value"], 55);
    let c = s.tasks[2].output.as_ref().unwrap();
    assert_eq!(c["previous_results"][0]["task_id"], "b", "{c}");
    // Order: a finished before b started, b before c.
    let times: Vec<(&str, &str)> =
        s.tasks.iter().map(|t| (t.started_at.as_deref().unwrap(), t.finished_at.as_deref().unwrap())).collect();
    assert!(times[0].1 <= times[1].0 && times[1].1 <= times[2].0, "{times:?}");
}

async fn parallel_and_diamond(b: Backend) {
    let (h, _d) = host(b).await;
    let s = h
        .run(json!({"max_parallel_tasks": 4, "tasks": [
            t("root", "echo", &[], json!({})),
            t("p1", "testkit", &["root"], sleep(300)),
            t("p2", "testkit", &["root"], sleep(300)),
            t("p3", "testkit", &["root"], sleep(300)),
            t("join", "echo", &["p1", "p2", "p3"], json!({})),
        ]}))
        .await;
    assert_status(&s, WorkflowStatus::Completed);
    // The branches ran at the same time: each started before any of them finished (their times,
    // as stored, not the test's clock: a loaded machine only makes them longer).
    let branches = &s.tasks[1..4];
    let last_start = branches.iter().map(|t| t.started_at.clone().unwrap()).max().unwrap();
    let first_end = branches.iter().map(|t| t.finished_at.clone().unwrap()).min().unwrap();
    assert!(last_start < first_end, "branches ran in parallel: last started {last_start}, first finished {first_end}");
    let join = s.tasks[4].output.as_ref().unwrap();
    let ids: Vec<&str> =
        join["previous_results"].as_array().unwrap().iter().map(|r| r["task_id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["p1", "p2", "p3"], "previous_results in dependencies order");
}

async fn max_parallel_is_respected(b: Backend) {
    let (h, _d) = host(b).await;
    let tasks: Vec<Value> = (0..6).map(|i| t(&format!("s{i}"), "testkit", &[], sleep(200))).collect();
    let started = Instant::now();
    let s = h.run(json!({"max_parallel_tasks": 2, "tasks": tasks})).await;
    assert_status(&s, WorkflowStatus::Completed);
    assert!(started.elapsed() >= Duration::from_millis(600), "three rounds of two: {:?}", started.elapsed());
}

async fn cycle_and_unknown_type_refused(b: Backend) {
    let (h, _d) = host(b).await;
    let spec = json!({"tasks": [t("a", "echo", &["c"], json!({})), t("b", "echo", &["a"], json!({})),
                                t("c", "echo", &["b"], json!({}))]});
    let err = h.engine.submit(serde_json::from_value(spec).unwrap()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("cycle") && ["a", "b", "c"].iter().all(|t| msg.contains(&format!("{t} -> "))), "{msg}");
    let spec = json!({"tasks": [t("a", "no-such-agent", &[], json!({}))]});
    let err = h.engine.submit(serde_json::from_value(spec).unwrap()).await.unwrap_err();
    assert!(err.to_string().contains("no-such-agent"), "{err}");
    let page = h.engine.store().list_workflows(&Default::default()).await.unwrap();
    assert!(page.items.is_empty(), "nothing stored for refused workflows");
}

async fn retry_then_success(b: Backend) {
    let (h, _d) = host(b).await;
    let mut task = t("flaky", "testkit", &[], json!({"action": "fail_times", "times": 2}));
    task["retry_policy"] = json!({"max_attempts": 3, "initial_delay": 0.1, "exponential_base": 2.0});
    let s = h.run(json!({"tasks": [task]})).await;
    assert_status(&s, WorkflowStatus::Completed);
    let task = h.engine.store().task(&s.workflow_id, "flaky").await.unwrap().unwrap();
    assert_eq!(task.attempt, 3);
    let attempts = task.attempts.unwrap();
    assert_eq!(attempts.iter().map(|a| a.status.as_str()).collect::<Vec<_>>(), ["failed", "failed", "completed"]);
    assert!(attempts.iter().all(|a| a.plugin_digest.as_deref().unwrap_or("").starts_with("sha256:")));
    // Waits of 0.1 s then 0.2 s between attempts.
    let gap = |i: usize| {
        let f = |s: &str| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
        (f(&attempts[i + 1].started_at) - f(attempts[i].finished_at.as_deref().unwrap())).as_seconds_f64()
    };
    assert!((0.09..0.6).contains(&gap(0)), "first wait {}", gap(0));
    assert!((0.19..0.8).contains(&gap(1)), "second wait {}", gap(1));
    let q = EventQuery { limit: 1000, ..Default::default() };
    let events = h.engine.store().workflow_events(&s.workflow_id, &q).await.unwrap();
    let types: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(types.iter().filter(|t| **t == EventType::TaskRetrying).count(), 2);
    assert_eq!(types.iter().filter(|t| **t == EventType::Retry).count(), 2);
}

async fn allow_failure_lets_dependents_run(b: Backend) {
    let (h, _d) = host(b).await;
    let mut bad = t("bad", "testkit", &[], json!({"action": "fatal", "message": "nope"}));
    bad["allow_failure"] = json!(true);
    let s = h.run(json!({"tasks": [bad, t("after", "testkit", &["bad"], json!({"action": "echo"}))]})).await;
    assert_status(&s, WorkflowStatus::Completed);
    assert_eq!(statuses(&s), ["failed", "completed"]);
    let prev = &s.tasks[1].output.as_ref().unwrap()["previous_results"][0];
    assert_eq!(prev["status"], "failed", "{prev}");
    assert!(prev.to_string().contains("nope"), "the dependent sees the failure: {prev}");
}

async fn critical_failure_skips_the_rest(b: Backend) {
    let (h, _d) = host(b).await;
    let s = h
        .run(json!({"tasks": [
            t("bad", "testkit", &[], json!({"action": "fatal"})),
            t("slow", "testkit", &[], sleep(20_000)),
            t("child", "echo", &["bad"], json!({})),
            t("grandchild", "echo", &["child"], json!({})),
        ]}))
        .await;
    assert_status(&s, WorkflowStatus::Failed);
    assert_eq!(statuses(&s), ["failed", "cancelled", "skipped", "skipped"]);
    let q = EventQuery { types: vec![EventType::TaskSkipped], limit: 100, ..Default::default() };
    assert_eq!(h.engine.store().workflow_events(&s.workflow_id, &q).await.unwrap().len(), 2);
    let started = Instant::now();
    while h.engine.running_tasks() > 0 && started.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(h.engine.running_tasks(), 0, "the slow task (20 s) was interrupted");
}

async fn timeout_interrupts_and_retries(b: Backend) {
    let (h, _d) = host(b).await;
    let mut task = t("stuck", "testkit", &[], json!({"action": "loop"}));
    task["timeout"] = json!(0.3);
    task["retry_policy"] = json!({"max_attempts": 2, "initial_delay": 0.05});
    let started = Instant::now();
    let s = h.run(json!({"tasks": [task]})).await;
    assert_status(&s, WorkflowStatus::Failed);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let task = h.engine.store().task(&s.workflow_id, "stuck").await.unwrap().unwrap();
    assert_eq!(task.attempt, 2, "a timeout is retried like any failure");
    assert_eq!(task.error.as_ref().unwrap()["error_type"], "timeout");
}

async fn cancel_while_running(b: Backend) {
    let (h, _d) = host(b).await;
    let id = h
        .submit(json!({"tasks": [t("long", "testkit", &[], sleep(30_000)), t("next", "echo", &["long"], json!({}))]}))
        .await;
    while h.engine.running_tasks() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let out = h.engine.control(&id, Control::Cancel).await.unwrap();
    assert_eq!(out.status, WorkflowStatus::Cancelled);
    let s = h.settle(&id).await;
    assert_eq!(statuses(&s), ["cancelled", "cancelled"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.engine.running_tasks(), 0);
    assert_eq!(h.engine.store().workflow(&id).await.unwrap().version, out.version, "nothing written after cancel");
}

async fn pause_and_resume(b: Backend) {
    let (h, _d) = host(b).await;
    let id = h
        .submit(json!({"tasks": [t("a", "testkit", &[], sleep(300)), t("b", "echo", &["a"], json!({})),
                                 t("c", "echo", &["b"], json!({}))]}))
        .await;
    while h.engine.running_tasks() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.engine.control(&id, Control::Pause).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let s = h.engine.store().workflow(&id).await.unwrap();
    assert_eq!(s.status, WorkflowStatus::Paused);
    assert_eq!(statuses(&s), ["completed", "pending", "pending"], "the running task finished, nothing new started");
    h.engine.control(&id, Control::Resume).await.unwrap();
    let s = h.settle(&id).await;
    assert_status(&s, WorkflowStatus::Completed);
    assert_eq!(s.tasks[0].attempt, 1, "completed tasks never run again");
}

async fn rollback_then_resume(b: Backend) {
    let (h, _d) = host(b).await;
    let s = h
        .run(json!({"tasks": [t("a", "echo", &[], json!({})), t("b", "echo", &["a"], json!({})),
                              t("c", "echo", &["b"], json!({}))]}))
        .await;
    assert_status(&s, WorkflowStatus::Completed);
    let store = h.engine.store();
    let mut target = None;
    for v in store.versions(&s.workflow_id, 0, 1000).await.unwrap() {
        let st = store.state_at(&s.workflow_id, v.version).await.unwrap();
        if st.tasks["a"].status == TaskStatus::Completed && st.tasks["b"].status == TaskStatus::Pending {
            target = Some(v.version);
            break;
        }
    }
    let target = target.expect("a version with only `a` done");
    let err = h.engine.control(&s.workflow_id, Control::Rollback(s.version + 5)).await.unwrap_err();
    assert!(err.to_string().contains("no version"), "{err}");
    let out = h.engine.control(&s.workflow_id, Control::Rollback(target)).await.unwrap();
    assert_eq!(out.status, WorkflowStatus::Paused);
    assert!(out.version > s.version, "rollback writes a new version");
    let now = store.state_at(&s.workflow_id, out.version).await.unwrap();
    let then = store.state_at(&s.workflow_id, target).await.unwrap();
    assert_eq!(now.tasks["a"], then.tasks["a"]);
    assert_eq!(now.tasks["b"].status, TaskStatus::Pending);
    h.engine.control(&s.workflow_id, Control::Resume).await.unwrap();
    let s2 = h.settle(&s.workflow_id).await;
    assert_status(&s2, WorkflowStatus::Completed);
    let attempts: Vec<u32> = s2.tasks.iter().map(|t| t.attempt).collect();
    assert_eq!(attempts, [1, 2, 2], "a is not run again, b and c are");
    let history = store.state_at(&s.workflow_id, s.version).await.unwrap();
    assert_eq!(history.status, WorkflowStatus::Completed, "history is never rewritten");
}

async fn pipeline_with_handoffs(b: Backend) {
    let (h, _d) = host(b).await;
    let text = "Hyphae runs agents in sandboxes. Each agent hands its work to the next one. Reviews follow.";
    let schema = json!({"schema": {"type": "object", "required": ["previous_results"],
        "properties": {"previous_results": {"type": "array", "minItems": 1}}}, "applies_to": "/context"});
    let mut stats = t("stats", "text-stats", &["collect"], json!({"text": text}));
    stats["metadata"] = json!({"requirements": schema, "description": "count words"});
    let spec = json!({"variables": {"project": "hyphae"}, "context": {"user_preferences": {"tone": "dry"}}, "tasks": [
        t("collect", "testkit", &[], json!({"action": "echo", "text": text})),
        t("write", "echo", &[], json!({"text": text})),
        stats,
        t("review", "reviewer", &["stats"], json!({})),
        t("fib", "fib", &["review"], json!({"n": 12})),
        t("audit", "testkit", &["fib", "write"], json!({"action": "echo"})),
    ]});
    let s = h.run(spec).await;
    assert_status(&s, WorkflowStatus::Completed);
    let audit = s.tasks[5].output.as_ref().unwrap();
    assert_eq!(audit["variables"]["project"], "hyphae", "variables reach plugins: {audit}");
    assert!(audit.to_string().contains("dry"), "context reaches plugins: {audit}");
    assert_eq!(audit["handoffs"].as_array().map(Vec::len), Some(2), "{audit}");
    let chain = h.engine.store().handoff_chain(&s.workflow_id).await.unwrap();
    assert_eq!(chain.len(), 5);
    assert!(chain.iter().all(|e| e.status.as_deref() == Some("accepted")));
    let review_in = chain.iter().find(|e| e.task_id.as_deref() == Some("review")).unwrap();
    assert_eq!(review_in.metadata.as_ref().unwrap()["checked_by"], "validator");

    // `review` after `fib`: fib's output carries no text, the reviewer's validator refuses it.
    let s = h
        .run(json!({"tasks": [t("fib", "fib", &[], json!({"n": 5})), t("review", "reviewer", &["fib"], json!({}))]}))
        .await;
    assert_status(&s, WorkflowStatus::Failed);
    let review = h.engine.store().task(&s.workflow_id, "review").await.unwrap().unwrap();
    let err = review.error.unwrap();
    assert_eq!(err["error_type"], "handoff_validation");
    assert_eq!(review.attempt, 1, "no retry after a rejected handoff");
    assert!(err["detail"]["issues"][0]["path"].as_str().unwrap().contains("previous_results"), "{err}");
    // The schema validator paired with text-stats refuses a handoff that breaks the requirements.
    let mut stats = t("stats", "text-stats", &["a"], json!({"text": "x"}));
    stats["metadata"] =
        json!({"requirements": {"schema": {"type": "object", "required": ["ticket"]}, "applies_to": "/context"}});
    let s = h.run(json!({"tasks": [t("a", "echo", &[], json!({})), stats]})).await;
    assert_status(&s, WorkflowStatus::Failed);
    let err = &s.tasks[1].error.as_ref().unwrap();
    assert_eq!(err["error_type"], "handoff_validation");
    assert!(err["message"].as_str().unwrap().contains("ticket"), "{err}");
}

async fn persistence_across_restart(b: Backend) {
    let (url, _d) = database(b).await;
    let id = {
        let h = Host::start(&url, test_config()).await;
        let id = h
            .submit(json!({"tasks": [t("a", "echo", &[], json!({})), t("b", "testkit", &["a"], sleep(400)),
                                           t("c", "echo", &["b"], json!({}))]}))
            .await;
        while h.engine.running_tasks() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Stop while `b` runs: its outcome is still recorded before the engine stops.
        h.engine.shutdown().await;
        id
    };
    let h = Host::start(&url, test_config()).await;
    let s = h.settle(&id).await;
    assert_status(&s, WorkflowStatus::Completed);
    assert_eq!(s.tasks.iter().map(|t| t.attempt).collect::<Vec<_>>(), [1, 1, 1], "nothing ran twice");
}

async fn thousand_tasks(b: Backend) {
    let (h, _d) = host(b).await;
    let mut tasks = vec![t("root", "echo", &[], json!({}))];
    for i in 0..998 {
        tasks.push(t(&format!("n{i}"), "echo", &["root"], json!({"i": i})));
    }
    let all: Vec<String> = (0..998).map(|i| format!("n{i}")).collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    tasks.push(t("sink", "echo", &refs, json!({})));
    let s = h.run(json!({"max_parallel_tasks": 64, "tasks": tasks})).await;
    assert_status(&s, WorkflowStatus::Completed);
    assert_eq!(s.tasks.len(), 1000);
    assert_eq!(s.tasks[999].output.as_ref().unwrap()["previous_results"].as_array().unwrap().len(), 998);
}

async fn concurrent_workflows(b: Backend) {
    let (h, _d) = host(b).await;
    let ids = futures::future::join_all((0..200).map(|i| {
        h.submit(json!({"tasks": [t("a", "fib", &[], json!({"n": 5 + i % 5})), t("b", "echo", &["a"], json!({}))]}))
    }))
    .await;
    for id in ids {
        let s = h.settle(&id).await;
        assert_status(&s, WorkflowStatus::Completed);
    }
}

/// A claim takes only the agent types its worker serves, and says whether it left ready tasks
/// behind, so the engine claims again only then. Ready tasks of a type no live worker serves are
/// reported as waiting.
async fn claims_say_when_more_are_ready(b: Backend) {
    let (url, _d) = database(b).await;
    let store = hyphae::store::Store::connect(&url).await.unwrap();
    let serves = [("echo".to_string(), "sha256:e".to_string())].into_iter().collect();
    store.register_worker("w1", "test", Duration::from_secs(5), &serves).await.unwrap();
    let spec = json!({"max_parallel_tasks": 10, "tasks": [t("a", "echo", &[], json!({})),
        t("b", "echo", &[], json!({})), t("c", "echo", &[], json!({})), t("d", "echo", &["a"], json!({})),
        t("f", "fib", &[], json!({"n": 3}))]});
    let valid = hyphae::workflow::validate(serde_json::from_value(spec).unwrap(), |_| true).unwrap();
    store.submit(valid).await.unwrap();
    let fib_waits = vec![Unserved { agent_type: "fib".into(), ready_tasks: 1 }];
    assert_eq!(store.unserved(3).await.unwrap(), fib_waits);
    let workers = store.workers(3).await.unwrap();
    assert_eq!(workers[0].serves, serves, "the worker advertises what it serves");
    let claim = |types: &[&str]| Claim {
        worker_id: "w1".into(),
        max: 2,
        lease: Duration::from_secs(30),
        workflows: None,
        agent_types: Some(types.iter().map(|s| s.to_string()).collect()),
    };
    let first = store.claim(claim(&["echo"])).await.unwrap();
    assert_eq!((first.tasks.len(), first.more_ready), (2, true));
    let second = store.claim(claim(&["echo"])).await.unwrap();
    assert_eq!((second.tasks.len(), second.more_ready), (1, false), "`d` waits for `a`, `f` is not echo");
    assert!(second.tasks.iter().all(|t| &*t.agent_type == "echo"));
    assert_eq!(store.unserved(3).await.unwrap(), fib_waits, "still waiting");
    let fib = store.claim(claim(&["fib", "text-stats"])).await.unwrap();
    assert_eq!((fib.tasks.len(), &*fib.tasks[0].agent_type), (1, "fib"));
    let none = store.claim(Claim { agent_types: None, ..claim(&[]) }).await.unwrap();
    assert_eq!((none.tasks.len(), none.more_ready), (0, false));
    assert_eq!(store.unserved(3).await.unwrap(), vec![]);
}

/// Control calls (which read, then write) succeed while the engine records outcomes: on SQLite
/// they write through another connection than the engine's writer.
async fn control_while_outcomes_are_recorded(b: Backend) {
    let (h, _d) = host(b).await;
    let tasks: Vec<Value> = (0..300).map(|i| t(&format!("n{i}"), "echo", &[], json!({"i": i}))).collect();
    let busy = h.submit(json!({"max_parallel_tasks": 16, "tasks": tasks})).await;
    let other = h.submit(json!({"tasks": [t("long", "testkit", &[], sleep(30_000))]})).await;
    let store = h.engine.store();
    let mut changes = 0;
    while store.workflow(&busy).await.unwrap().status == WorkflowStatus::Running {
        let budget = hyphae::workflow::Budget { max_llm_tokens: Some(1_000 + changes), max_egress_requests: None };
        store.set_budget(&other, budget).await.expect("a budget change succeeds while outcomes are written");
        h.engine.control(&other, Control::Pause).await.expect("pause succeeds while outcomes are written");
        h.engine.control(&other, Control::Resume).await.expect("resume succeeds while outcomes are written");
        changes += 1;
    }
    assert!(changes > 0, "the loop ran while the workflow ran");
    assert_status(&h.settle(&busy).await, WorkflowStatus::Completed);
    h.engine.control(&other, Control::Cancel).await.unwrap();
}

crate::on_both_backends!(
    claims_say_when_more_are_ready,
    control_while_outcomes_are_recorded,
    sequential,
    parallel_and_diamond,
    max_parallel_is_respected,
    cycle_and_unknown_type_refused,
    retry_then_success,
    allow_failure_lets_dependents_run,
    critical_failure_skips_the_rest,
    timeout_interrupts_and_retries,
    cancel_while_running,
    pause_and_resume,
    rollback_then_resume,
    pipeline_with_handoffs,
    persistence_across_restart,
    thousand_tasks,
    concurrent_workflows,
);
