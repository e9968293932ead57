//! The runbook's endpoints (failures, stuck tasks and their reset, agent-type statistics, outcome
//! series, the health report) against the real router, store and example plugins.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use hyphae::lifecycle::{lost_attempt, AttemptResult};
use hyphae::store::Applied;
use serde_json::{json, Value};

use crate::api::{app, assert_error, App};
use crate::harness::Backend;
use crate::support::eventually_async;

/// A workflow whose tasks complete, fail for good, time out and fail twice before completing.
fn mixed() -> Value {
    let once = json!({ "max_attempts": 1 });
    json!({ "tasks": [
        { "task_id": "ok", "agent_type": "echo", "input": { "x": 1 } },
        { "task_id": "fatal", "agent_type": "testkit", "allow_failure": true,
          "input": { "action": "fatal", "message": "this one breaks" } },
        { "task_id": "slow", "agent_type": "testkit", "allow_failure": true, "timeout": 0.3, "retry_policy": once,
          "input": { "action": "sleep", "ms": 5000 } },
        { "task_id": "flaky", "agent_type": "testkit",
          "retry_policy": { "max_attempts": 3, "initial_delay": 0.01, "max_delay": 0.05 },
          "input": { "action": "fail_times", "times": 2 } }
    ]})
}

fn items(v: &Value) -> &Vec<Value> {
    v["items"].as_array().unwrap_or_else(|| panic!("no items: {v}"))
}

async fn failures_are_listed_newest_first_and_filtered(backend: Backend) {
    let app = app(backend).await;
    let id = app.submit(mixed()).await;
    assert_eq!(app.settle(&id).await, "completed");

    let (s, page) = app.get("/v1/failures?since=1h").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let failures = items(&page);
    assert_eq!(failures.len(), 4, "fatal, slow's timeout, flaky twice: {page}");
    let ends: Vec<&str> = failures.iter().map(|f| f["finished_at"].as_str().unwrap()).collect();
    assert!(ends.windows(2).all(|w| w[0] >= w[1]), "newest first: {ends:?}");
    let fatal = failures.iter().find(|f| f["task_id"] == "fatal").unwrap();
    assert_eq!(
        (&fatal["agent_type"], &fatal["message"], &fatal["attempt"]),
        (&json!("testkit"), &json!("this one breaks"), &json!(1))
    );
    assert_eq!(fatal["workflow_id"], id.as_str());

    let (_, timeouts) = app.get("/v1/failures?error_type=timeout").await;
    let timeouts = items(&timeouts);
    assert_eq!((timeouts.len(), &timeouts[0]["task_id"]), (1, &json!("slow")), "{timeouts:?}");
    let (_, flaky) = app.get("/v1/failures?error_type=flaky&agent_type=testkit").await;
    assert_eq!(items(&flaky).len(), 2);
    let (_, echo) = app.get("/v1/failures?agent_type=echo").await;
    assert!(items(&echo).is_empty());
    let (_, future) = app.get("/v1/failures?since=2099-01-01T00:00:00Z").await;
    assert!(items(&future).is_empty());

    // Pages of one follow each other without repeats, and end.
    let mut seen = Vec::new();
    let mut uri = "/v1/failures?limit=1".to_string();
    loop {
        let (s, page) = app.get(&uri).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        seen.extend(items(&page).iter().map(|f| (f["task_id"].clone(), f["attempt"].clone())));
        match page["next_cursor"].as_str() {
            Some(c) => uri = format!("/v1/failures?limit=1&cursor={}", urlencode(c)),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    seen.sort_by_key(|k| k.to_owned().0.to_string() + &k.1.to_string());
    seen.dedup();
    assert_eq!(seen.len(), 4, "no failure twice");

    let (s, v) = app.get("/v1/failures?since=yesterday").await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_query");
    let (s, v) = app.get("/v1/failures?cursor=abc").await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_cursor");
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

async fn agent_type_statistics_and_outcome_series(backend: Backend) {
    let app = app(backend).await;
    let id = app.submit(mixed()).await;
    assert_eq!(app.settle(&id).await, "completed");

    let (s, stats) = app.get("/v1/agent-types?since=1h").await;
    assert_eq!(s, StatusCode::OK, "{stats}");
    let by = |t: &str| {
        items(&stats).iter().find(|s| s["agent_type"] == t).cloned().unwrap_or_else(|| panic!("{t}: {stats}"))
    };
    let testkit = by("testkit");
    // fatal 1, slow 1 (timeout), flaky 3 (2 failed): 5 attempts, 1 completed.
    assert_eq!(
        (&testkit["attempts"], &testkit["completed"], &testkit["failed"], &testkit["timeouts"]),
        (&json!(5), &json!(1), &json!(4), &json!(1)),
        "{testkit}"
    );
    assert_eq!((&testkit["success_rate"], &testkit["timeout_rate"]), (&json!(0.2), &json!(0.2)));
    assert!(testkit["p95_ms"].as_f64().unwrap() >= 250.0, "the timeout's ~300 ms: {testkit}");
    let echo = by("echo");
    assert_eq!((&echo["attempts"], &echo["success_rate"]), (&json!(1), &json!(1.0)));
    assert!(echo["peak_memory_bytes"].as_i64().unwrap() > 0, "{echo}");
    let (_, task) = app.get(&format!("/v1/workflows/{id}/tasks/ok")).await;
    assert!(task["attempts"][0]["peak_memory_bytes"].as_i64().unwrap() > 0, "{task}");

    let (s, series) = app.get("/v1/outcomes?interval=1m&duration=10m").await;
    assert_eq!(s, StatusCode::OK, "{series}");
    let buckets = series["buckets"].as_array().unwrap();
    assert!((10..=11).contains(&buckets.len()), "{series}");
    let sum = |k: &str| buckets.iter().map(|b| b[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("completed"), sum("failed"), sum("timeout")), (2, 3, 1), "{series}");
    assert_eq!(series["interval_s"], 60.0);
    let (s, v) = app.get("/v1/outcomes?interval=1s&duration=7d").await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_query");
}

async fn a_stuck_task_is_listed_and_reset_fenced(backend: Backend) {
    let app = app(backend).await;
    let spec = json!({ "tasks": [
        { "task_id": "hang", "agent_type": "testkit", "timeout": 60, "retry_policy": { "max_attempts": 1 },
          "input": { "action": "sleep", "ms": 1500 } },
        { "task_id": "after", "agent_type": "echo", "dependencies": ["hang"] }
    ]});
    let id = app.submit(spec).await;
    let (s, v) = app.post(&format!("/v1/workflows/{id}/tasks/after/reset"), json!({})).await;
    assert_error(s, &v, StatusCode::CONFLICT, "conflict");
    let running = || async {
        let (_, t) = app.get(&format!("/v1/workflows/{id}/tasks/hang")).await;
        t["status"] == "running"
    };
    eventually_async("the task runs", running).await;
    let (_, none) = app.get("/v1/stuck").await;
    assert!(items(&none).is_empty(), "within its timeout: {none}");
    // As if it had started two minutes ago (its host hung): past its 60 s timeout.
    backdate_attempt(&app, &id, "hang").await;
    let (_, stuck) = app.get("/v1/stuck").await;
    let stuck = items(&stuck);
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    assert_eq!(
        (&stuck[0]["task_id"], &stuck[0]["timeout_s"], &stuck[0]["attempt"]),
        (&json!("hang"), &json!(60.0), &json!(1))
    );
    assert!(stuck[0]["running_s"].as_f64().unwrap() > 100.0);
    assert_eq!(stuck[0]["worker_id"], app.host.engine.worker_id());

    let (s, reset) = app.post(&format!("/v1/workflows/{id}/tasks/hang/reset"), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{reset}");
    assert_eq!((&reset["reset_attempt"], &reset["status"]), (&json!(1), &json!("retrying")));
    // The old attempt's result is refused, whenever it comes.
    let late = hyphae::lifecycle::Outcome {
        result: AttemptResult::Completed("{}".into()),
        ..lost_attempt(id.clone(), "hang".into(), 1, None)
    };
    let applied = app.host.engine.store().record_outcomes(&[late]).await.unwrap();
    assert!(matches!(applied[..], [Applied::Fenced]), "{applied:?}");
    // A new attempt runs (the reset does not count against max_attempts = 1) and the work goes on.
    assert_eq!(app.settle(&id).await, "completed");
    let (_, task) = app.get(&format!("/v1/workflows/{id}/tasks/hang")).await;
    let attempts = task["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{task}");
    assert_eq!(
        (&attempts[0]["status"], &attempts[0]["error"]["error_type"]),
        (&json!("failed"), &json!("reset")),
        "{task}"
    );
    assert!(attempts[0]["error"]["message"].as_str().unwrap().contains("reset by an operator"), "{task}");
    assert_eq!(attempts[1]["status"], "completed");
    let (_, resets) = app.get("/v1/failures?error_type=reset").await;
    assert_eq!(items(&resets).len(), 1);
    let (_, audit) = app.get("/v1/audit?limit=10").await;
    let entry = items(&audit).iter().find(|e| e["action"] == "POST /v1/workflows/{id}/tasks/{task_id}/reset");
    assert_eq!(entry.unwrap_or_else(|| panic!("{audit}"))["target"], format!("{id}/hang"));
    let (s, v) = app.post(&format!("/v1/workflows/{id}/tasks/nope/reset"), json!({})).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "task_not_found");
}

/// Move the start of a task's running attempt two minutes back.
async fn backdate_attempt(app: &App, workflow_id: &str, task_id: &str) {
    let sql = format!(
        "UPDATE attempts SET started_at = started_at - 120000000 WHERE workflow_id = '{workflow_id}' \
         AND task_id = '{task_id}' AND status = 'running'"
    );
    let url = app.host.engine.store().url().to_string();
    if url.starts_with("postgres") {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())).execute(&mut conn).await.unwrap();
    } else {
        use sqlx::{ConnectOptions, Connection};
        let path = url.trim_start_matches("sqlite://");
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(path).connect().await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
}

async fn the_health_report_in_json_and_markdown(backend: Backend) {
    let app = app(backend).await;
    let broken = json!({ "tasks": (0..10).map(|i| json!({
        "task_id": format!("t{i}"), "agent_type": "testkit", "allow_failure": true,
        "input": { "action": "fatal", "message": "no" } })).collect::<Vec<_>>() });
    let id = app.submit(broken).await;
    assert_eq!(app.settle(&id).await, "completed");

    let (s, report) = app.get("/v1/report").await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["status"], "critical", "{report}");
    let finding = &report["findings"][0];
    assert_eq!((&finding["severity"], &finding["check"]), (&json!("critical"), &json!("low_success_rate")), "{report}");
    assert_eq!(finding["runbook"], "docs/operations/runbook.md#low-success-rate");
    assert_eq!(report["workers_by_health"]["HEALTHY"], 1, "{report}");
    assert_eq!(report["totals"]["failed"], 10);

    let req = Request::get("/v1/report?format=md&since=1h").body(Body::empty()).unwrap();
    let (s, headers, body) = app.send(req).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/markdown; charset=utf-8");
    let md = String::from_utf8(body).unwrap();
    assert!(md.starts_with("# Hyphae health report"), "{md}");
    assert!(
        md.contains("**Status: CRITICAL**") && md.contains("`low_success_rate`: testkit: 0 % of 10 attempts"),
        "{md}"
    );
    let (s, v) = app.get("/v1/report?format=xml").await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_query");
    tokio::time::sleep(Duration::from_millis(1)).await;
}

async fn limits_change_while_the_host_runs(backend: Backend) {
    let app = app(backend).await;
    let put = |body: Value| app.call(axum::http::Method::PUT, "/v1/settings", Some(body));
    let (s, v) = put(json!({ "max_concurrent_tasks": 0 })).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_settings");
    let (s, v) = put(json!({ "agent_type_concurrency": { "testkit": 0 }, "log_filter": "info,[[" })).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_settings");
    let (_, now) = app.get("/v1/settings").await;
    assert_eq!(now["agent_type_concurrency"], json!({}), "nothing changed: {now}");

    // testkit capped at 0: its tasks wait while echo's run; lifted: they run.
    let (s, v) = put(json!({ "agent_type_concurrency": { "testkit": 0 } })).await;
    assert_eq!((s, &v["agent_type_concurrency"]["testkit"]), (StatusCode::OK, &json!(0)), "{v}");
    let spec = json!({ "tasks": [
        { "task_id": "held", "agent_type": "testkit", "input": { "action": "sleep", "ms": 1 } },
        { "task_id": "free", "agent_type": "echo" } ] });
    let id = app.submit(spec).await;
    let task = |t: &'static str| {
        let uri = format!("/v1/workflows/{id}/tasks/{t}");
        let app = &app;
        async move { app.get(&uri).await.1["status"].as_str().unwrap_or_default().to_string() }
    };
    eventually_async("echo runs", || async { task("free").await == "completed" }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, held) = app.get(&format!("/v1/workflows/{id}/tasks/held")).await;
    assert_eq!(held["status"], "pending", "capped at 0: not claimed: {held}");
    let (s, v) = put(json!({ "agent_type_concurrency": { "testkit": null } })).await;
    assert_eq!((s, &v["agent_type_concurrency"]), (StatusCode::OK, &json!({})), "{v}");
    assert_eq!(app.settle(&id).await, "completed");

    // One slot for the whole host: three sleeps run one after the other.
    let (_, v) = put(json!({ "max_concurrent_tasks": 1 })).await;
    assert_eq!(v["max_concurrent_tasks"], 1, "{v}");
    let sleeps = json!({ "tasks": (0..3).map(|i| json!({ "task_id": format!("s{i}"), "agent_type": "testkit",
        "input": { "action": "sleep", "ms": 150 } })).collect::<Vec<_>>() });
    let id = app.submit(sleeps).await;
    assert_eq!(app.settle(&id).await, "completed");
    let mut spans = Vec::new();
    for i in 0..3 {
        let (_, t) = app.get(&format!("/v1/workflows/{id}/tasks/s{i}")).await;
        let a = &t["attempts"][0];
        spans.push((a["started_at"].as_str().unwrap().to_string(), a["finished_at"].as_str().unwrap().to_string()));
    }
    spans.sort();
    assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "no two at once: {spans:?}");
    let (_, audit) = app.get("/v1/audit?limit=20").await;
    let changes = items(&audit).iter().filter(|e| e["action"] == "PUT /v1/settings").count();
    assert_eq!(changes, 3, "{audit}");
}

crate::on_both_backends!(
    limits_change_while_the_host_runs,
    failures_are_listed_newest_first_and_filtered,
    agent_type_statistics_and_outcome_series,
    a_stuck_task_is_listed_and_reset_fenced,
    the_health_report_in_json_and_markdown,
);

/// Every command of docs/operations/runbook.md, run by `sh` against a live `hyphae serve`, with
/// a workflow whose task runs (so the reset, pause and resume have something to act on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_runbook_command_runs_against_a_live_host() {
    let served = crate::support::Served::start(&["echo", "testkit"], "").await;
    let spec = json!({ "tasks": [
        { "task_id": "hang", "agent_type": "testkit", "input": { "action": "sleep", "ms": 20000 } },
        { "task_id": "after", "agent_type": "echo", "dependencies": ["hang"] }
    ]});
    let client = reqwest::Client::new();
    let submitted: Value =
        client.post(format!("{}/v1/workflows", served.base())).json(&spec).send().await.unwrap().json().await.unwrap();
    let id = submitted["workflow_id"].as_str().unwrap().to_string();
    let task_url = format!("{}/v1/workflows/{id}/tasks/hang", served.base());
    eventually_async("the task runs", || async {
        let t: Value = client.get(&task_url).send().await.unwrap().json().await.unwrap();
        t["status"] == "running"
    })
    .await;
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_hyphae")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let doc = std::fs::read_to_string(crate::support::repo_root().join("docs/operations/runbook.md")).unwrap();
    let commands = sh_commands(&doc);
    assert!(commands.len() >= 15, "{commands:?}");
    for command in &commands {
        let out = std::process::Command::new("sh")
            .args(["-c", command])
            .env("HYPHAE_URL", served.base())
            .env("WORKFLOW_ID", &id)
            .env("TASK_ID", "hang")
            .env("PATH", &path)
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "`{command}` failed ({}):\n{stdout}\n{stderr}", out.status);
        assert!(!stdout.trim().is_empty(), "`{command}` printed nothing");
    }
}

/// The lines of the `sh` code blocks of a Markdown text.
fn sh_commands(doc: &str) -> Vec<String> {
    let (mut inside, mut out) = (false, Vec::new());
    for line in doc.lines() {
        match line.trim() {
            "```sh" => inside = true,
            "```" => inside = false,
            l if inside && !l.is_empty() && !l.starts_with('#') => out.push(l.to_string()),
            _ => {}
        }
    }
    out
}
