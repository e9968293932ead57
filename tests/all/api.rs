//! The HTTP API against the real router, store (a temporary SQLite file) and example plugins.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use hyphae::api::{self, AppState};
use hyphae::cli::host::{self, Host};
use hyphae::config::Config;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::harness::{database, Backend};
use crate::support;

/// Every route of the API: (method, path as in the OpenAPI document).
pub(crate) const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/workflows"),
    ("get", "/v1/workflows"),
    ("get", "/v1/workflows/{id}"),
    ("get", "/v1/workflows/{id}/tasks"),
    ("get", "/v1/workflows/{id}/tasks/{task_id}"),
    ("post", "/v1/workflows/{id}/pause"),
    ("post", "/v1/workflows/{id}/resume"),
    ("post", "/v1/workflows/{id}/cancel"),
    ("post", "/v1/workflows/{id}/rollback"),
    ("put", "/v1/workflows/{id}/budget"),
    ("get", "/v1/workflows/{id}/versions"),
    ("get", "/v1/workflows/{id}/versions/{version}"),
    ("get", "/v1/workflows/{id}/events"),
    ("get", "/v1/workflows/{id}/events/stream"),
    ("get", "/v1/workflows/{id}/timeline"),
    ("get", "/v1/workflows/{id}/handoffs"),
    ("get", "/v1/agents/{agent_id}/events"),
    ("get", "/v1/stats"),
    ("get", "/v1/workers"),
    ("get", "/v1/failures"),
    ("get", "/v1/stuck"),
    ("post", "/v1/workflows/{id}/tasks/{task_id}/reset"),
    ("get", "/v1/agent-types"),
    ("get", "/v1/outcomes"),
    ("get", "/v1/report"),
    ("get", "/v1/settings"),
    ("put", "/v1/settings"),
    ("delete", "/v1/events"),
    ("get", "/v1/plugins"),
    ("put", "/v1/plugins/{agent_type}"),
    ("get", "/v1/plugins/{agent_type}"),
    ("delete", "/v1/plugins/{agent_type}"),
    ("put", "/v1/plugins/{agent_type}/manifest"),
    ("post", "/v1/tokens"),
    ("get", "/v1/tokens"),
    ("delete", "/v1/tokens/{token}"),
    ("get", "/v1/audit"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

pub(crate) struct App {
    pub(crate) router: Router,
    pub(crate) host: Host,
    pub(crate) tails: Arc<api::Tails>,
    _dir: tempfile::TempDir,
    _db_dir: Option<tempfile::TempDir>,
}

/// A host on a fresh SQLite file with the example plugins, and its router.
pub(crate) async fn app_with(backend: Backend, tune: impl FnOnce(&mut Config)) -> App {
    let dir = tempfile::tempdir().unwrap();
    let (db, db_dir) = database(backend).await;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for name in ["echo", "fib", "text-stats", "testkit", "reviewer"] {
        std::fs::copy(support::plugins_dist().join(format!("{name}.wasm")), plugins.join(format!("{name}.wasm")))
            .unwrap();
    }
    let mut config = Config {
        db,
        plugins_dir: plugins,
        cache_dir: Some(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")),
        watch_plugins: false,
        heartbeat_interval: 1.0,
        ..Config::default()
    };
    tune(&mut config);
    let host = host::start(&config, config.engine_config()).await.unwrap_or_else(|f| panic!("{}", f.message));
    let state = AppState::new(host.engine.clone(), host.plugins.clone(), host.metrics.clone(), config);
    let tails = state.tails.clone();
    App { router: api::router(state), host, tails, _dir: dir, _db_dir: db_dir }
}

pub(crate) async fn app(backend: Backend) -> App {
    app_with(backend, |_| {}).await
}

impl App {
    pub(crate) async fn send(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = tokio::time::timeout(Duration::from_secs(30), body.collect()).await.expect("body in time").unwrap();
        (parts.status, parts.headers, bytes.to_bytes().to_vec())
    }

    pub(crate) async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let (status, _, bytes) = self.send(req.body(body).unwrap()).await;
        let value =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    /// PUT `bytes` as `content_type` to `uri`.
    pub(crate) async fn put_bytes(&self, uri: &str, bytes: Vec<u8>, content_type: &str) -> (StatusCode, Value) {
        let req = Request::put(uri).header(header::CONTENT_TYPE, content_type).body(Body::from(bytes)).unwrap();
        let (status, _, body) = self.send(req).await;
        (status, serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into())))
    }

    pub(crate) async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, None).await
    }

    pub(crate) async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, uri, Some(body)).await
    }

    pub(crate) async fn submit(&self, body: Value) -> String {
        let (status, v) = self.post("/v1/workflows", body).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["workflow_id"].as_str().unwrap().to_string()
    }

    pub(crate) async fn settle(&self, id: &str) -> String {
        let status =
            tokio::time::timeout(Duration::from_secs(30), self.host.engine.wait_settled(id)).await.unwrap().unwrap();
        status.to_string()
    }
}

fn pipeline() -> Value {
    json!({
        "name": "pipeline",
        "tasks": [
            { "task_id": "analyze", "agent_id": "analyst", "agent_type": "text-stats",
              "input": { "text": "One sentence here. Another one there." },
              "metadata": { "description": "measure the text" } },
            { "task_id": "review", "agent_id": "reviewer", "agent_type": "reviewer", "dependencies": ["analyze"],
              "metadata": { "description": "review it", "requirements": { "needs": "text" } } },
            { "task_id": "publish", "agent_id": "publisher", "agent_type": "echo", "dependencies": ["analyze", "review"] }
        ]
    })
}

pub(crate) fn assert_error(status: StatusCode, v: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(v["detail"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    // An RFC 9457 problem: its status, a type naming the code, a title.
    assert_eq!(v["status"], want.as_u16(), "{v}");
    assert_eq!(v["type"], format!("tag:hyphae.dev,2026:problem:{code}"), "{v}");
    assert!(v["title"].as_str().is_some_and(|t| !t.is_empty()), "{v}");
}

async fn workflow_routes_serve_state_history_and_events(backend: Backend) {
    let app = app(backend).await;
    let id = app.submit(pipeline()).await;
    assert_eq!(app.settle(&id).await, "completed");

    let (s, wf) = app.get(&format!("/v1/workflows/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(wf["status"], "completed");
    assert_eq!(wf["tasks"].as_array().unwrap().len(), 3);

    let (s, task) = app.get(&format!("/v1/workflows/{id}/tasks/review")).await;
    assert_eq!(s, StatusCode::OK, "{task}");
    let attempt = &task["attempts"][0];
    assert!(attempt["plugin_digest"].as_str().unwrap().starts_with("sha256:"), "{task}");
    assert!(attempt["log"].is_array());
    let (s, v) = app.get(&format!("/v1/workflows/{id}/tasks/nope")).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "task_not_found");

    let (s, list) = app.get("/v1/workflows?status=completed&limit=5").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"][0]["workflow_id"], id.as_str());
    let (s, v) = app.get("/v1/workflows?status=done").await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_status");
    let (s, v) = app.get("/v1/workflows?limit=abc").await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_query");

    let (s, versions) = app.get(&format!("/v1/workflows/{id}/versions")).await;
    assert_eq!(s, StatusCode::OK);
    let versions = versions["items"].as_array().unwrap();
    assert!(versions.len() >= 2);
    assert_eq!(versions[0]["version"], 1);
    let (_, page) = app.get(&format!("/v1/workflows/{id}/versions?limit=1&cursor=1")).await;
    assert_eq!((page["items"][0]["version"].clone(), page["next_cursor"].clone()), (json!(2), json!("2")), "{page}");
    let (s, v1) = app.get(&format!("/v1/workflows/{id}/versions/1")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v1["tasks"]["publish"]["status"], "pending");
    let (s, v) = app.get(&format!("/v1/workflows/{id}/versions/9999")).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "version_not_found");
    let (s, v) = app.get(&format!("/v1/workflows/{id}/versions/x")).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_path");

    let (s, events) = app.get(&format!("/v1/workflows/{id}/events")).await;
    assert_eq!(s, StatusCode::OK);
    let events = events["items"].as_array().unwrap().clone();
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    let (_, page) = app.get(&format!("/v1/workflows/{id}/events?limit=2&cursor=1")).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["items"][0]["seq"], 2);
    assert_eq!(page["next_cursor"], "3");
    let (_, page) = app.get(&format!("/v1/workflows/{id}/events?limit=2&cursor=3")).await;
    assert_eq!(page["items"][0]["seq"], 4, "{page}");
    let (s, v) = app.get(&format!("/v1/workflows/{id}/events?cursor=x")).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_cursor");
    let (_, typed) = app.get(&format!("/v1/workflows/{id}/events?type=handoff,task_completed")).await;
    let types: Vec<&str> =
        typed["items"].as_array().unwrap().iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert!(types.iter().all(|t| *t == "handoff" || *t == "task_completed"), "{types:?}");
    assert!(types.contains(&"handoff"));
    let (s, v) = app.get(&format!("/v1/workflows/{id}/events?type=nope")).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_event_type");

    let (s, handoffs) = app.get(&format!("/v1/workflows/{id}/handoffs")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(handoffs["items"].as_array().unwrap().len(), 3, "{handoffs}");
    let (s, timeline) = app.get(&format!("/v1/workflows/{id}/timeline")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(timeline["total_events"].as_u64().unwrap() as usize, events.len());
    let (s, agent) = app.get("/v1/agents/reviewer/events?limit=1000").await;
    assert_eq!(s, StatusCode::OK);
    let all = agent["items"].as_array().unwrap().clone();
    assert!(all.len() >= 4, "{agent}");
    assert!(agent.get("next_cursor").is_none(), "{agent}");
    // Paged, in either order: the same events, each once.
    let key = |e: &Value| format!("{}/{}", e["workflow_id"], e["seq"]);
    for (order, limit) in [("oldest", 1), ("oldest", 3), ("newest", 2)] {
        let (mut got, mut cursor) = (Vec::new(), String::new());
        loop {
            let (s, page) =
                app.get(&format!("/v1/agents/reviewer/events?order={order}&limit={limit}&cursor={cursor}")).await;
            assert_eq!(s, StatusCode::OK, "{page}");
            got.extend(page["items"].as_array().unwrap().iter().map(key));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = next.to_string(),
                None => break,
            }
        }
        let mut want: Vec<String> = all.iter().map(key).collect();
        if order == "newest" {
            want.reverse();
        }
        assert_eq!(got, want, "{order} by {limit}");
    }
    let (s, v) = app.get("/v1/agents/reviewer/events?cursor=1.2").await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_cursor");

    let (s, stats) = app.get(&format!("/v1/stats?workflow_id={id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(stats["unique_workflows"], 1);
    assert_eq!(stats["total_events"].as_u64().unwrap() as usize, events.len());
    let (s, _) = app.get("/v1/stats").await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app.get("/v1/stats?workflow_id=missing").await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "workflow_not_found");

    // Idempotent submission: the second one returns the first with 200.
    let mut keyed = pipeline();
    keyed["idempotency_key"] = json!("k-1");
    let first = app.submit(keyed.clone()).await;
    let (s, again) = app.post("/v1/workflows", keyed).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["workflow_id"], first.as_str());
}

async fn idempotency_keys_make_retries_safe(backend: Backend) {
    let app = app(backend).await;
    let submit = |key: &str, body: &Value| {
        let req = Request::post("/v1/workflows")
            .header(header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", key)
            .body(Body::from(body.to_string()))
            .unwrap();
        let router = app.router.clone();
        async move {
            let resp = router.oneshot(req).await.unwrap();
            let (status, location) = (resp.status(), resp.headers().get(header::LOCATION).cloned());
            let v: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
            (status, location.map(|l| l.to_str().unwrap().to_string()), v)
        }
    };
    let spec =
        json!({ "name": "n", "variables": { "a": 1, "b": 2 }, "tasks": [{ "task_id": "a", "agent_type": "echo" }] });
    let (s, location, first) = submit("k-2", &spec).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let id = first["workflow_id"].as_str().unwrap();
    assert_eq!(location.as_deref(), Some(format!("/v1/workflows/{id}").as_str()));
    // The same request again (its keys in another order): the first workflow, with 200.
    let reordered: Value = serde_json::from_str(
        r#"{"tasks": [{"agent_type": "echo", "task_id": "a"}], "variables": {"b": 2, "a": 1}, "name": "n"}"#,
    )
    .unwrap();
    let (s, location, again) = submit("k-2", &reordered).await;
    assert_eq!((s, again["workflow_id"].as_str(), again["existing"].as_bool()), (StatusCode::OK, Some(id), Some(true)));
    assert_eq!(location.as_deref(), Some(format!("/v1/workflows/{id}").as_str()));
    // The key in the body is the same key.
    let mut in_body = spec.clone();
    in_body["idempotency_key"] = json!("k-2");
    let (s, again) = app.post("/v1/workflows", in_body).await;
    assert_eq!((s, again["workflow_id"].as_str()), (StatusCode::OK, Some(id)), "{again}");
    // The same key with another request is refused; nothing is stored.
    let mut other = spec.clone();
    other["variables"]["a"] = json!(3);
    let (s, _, v) = submit("k-2", &other).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    assert_eq!(v["details"]["workflow_id"], id, "{v}");
    let mut both = spec.clone();
    both["idempotency_key"] = json!("k-3");
    let (s, _, v) = submit("k-4", &both).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_idempotency_key");
    let (_, list) = app.get("/v1/workflows").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");

    // Concurrent submissions with one key make one workflow.
    let racing: Vec<_> = (0..8).map(|_| tokio::spawn(submit("k-race", &spec))).collect();
    let mut ids = std::collections::BTreeSet::new();
    let mut created = 0;
    for r in racing {
        let (s, _, v) = r.await.unwrap();
        assert!(s == StatusCode::CREATED || s == StatusCode::OK, "{s} {v}");
        created += usize::from(s == StatusCode::CREATED);
        ids.insert(v["workflow_id"].as_str().unwrap().to_string());
    }
    assert_eq!((created, ids.len()), (1, 1), "{ids:?}");
    let (_, list) = app.get("/v1/workflows").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
}

async fn control_routes_pause_resume_roll_back_and_cancel(backend: Backend) {
    let app = app(backend).await;
    let mut spec = json!({ "start": false, "tasks": [
        { "task_id": "a", "agent_type": "echo" },
        { "task_id": "b", "agent_type": "echo", "dependencies": ["a"] }
    ]});
    let id = app.submit(spec.clone()).await;
    let (s, out) = app.post(&format!("/v1/workflows/{id}/pause"), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["status"], "paused");
    let (_, wf) = app.get(&format!("/v1/workflows/{id}")).await;
    assert_eq!(wf["pause_reason"], json!({ "reason": "requested" }), "{wf}");
    assert_eq!(wf["usage"], json!({ "egress_requests": 0, "llm_tokens": 0 }), "{wf}");
    let budget = format!("/v1/workflows/{id}/budget");
    let (s, out) = app.call(Method::PUT, &budget, Some(json!({ "max_llm_tokens": 500 }))).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!((out["budget"].clone(), out["status"].clone()), (json!({ "max_llm_tokens": 500 }), json!("paused")));
    let (_, wf) = app.get(&format!("/v1/workflows/{id}")).await;
    assert_eq!(wf["budget"], json!({ "max_llm_tokens": 500 }), "{wf}");
    let (s, v) = app.call(Method::PUT, &budget, Some(json!({ "max_tokens": 5 }))).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_json");
    let (s, v) = app.call(Method::PUT, "/v1/workflows/missing/budget", Some(json!({}))).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "workflow_not_found");
    let (s, v) = app.post(&format!("/v1/workflows/{id}/rollback"), json!({ "version": 999 })).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_version");
    let (s, v) = app.post(&format!("/v1/workflows/{id}/rollback"), json!({ "versio": 1 })).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_json");
    let (s, out) = app.post(&format!("/v1/workflows/{id}/resume"), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(app.settle(&id).await, "completed");
    let (_, wf) = app.get(&format!("/v1/workflows/{id}")).await;
    assert!(wf.get("pause_reason").is_none(), "{wf}");
    let (s, v) = app.post(&format!("/v1/workflows/{id}/cancel"), json!({})).await;
    assert_error(s, &v, StatusCode::CONFLICT, "conflict");
    let (s, v) = app.call(Method::PUT, &budget, Some(json!({}))).await;
    assert_error(s, &v, StatusCode::CONFLICT, "conflict");
    let (s, out) = app.post(&format!("/v1/workflows/{id}/rollback"), json!({ "version": 1 })).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["status"], "paused");
    let (_, wf) = app.get(&format!("/v1/workflows/{id}")).await;
    assert!(wf["tasks"].as_array().unwrap().iter().all(|t| t["status"] == "pending"), "{wf}");

    spec["start"] = json!(true);
    spec["tasks"][0] = json!({ "task_id": "a", "agent_type": "testkit", "input": { "action": "sleep", "ms": 20000 } });
    let id = app.submit(spec).await;
    let (s, v) = app.post(&format!("/v1/workflows/{id}/rollback"), json!({ "version": 1 })).await;
    assert_error(s, &v, StatusCode::CONFLICT, "conflict");
    let (s, out) = app.post(&format!("/v1/workflows/{id}/cancel"), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["status"], "cancelled");
    let (s, v) = app.post("/v1/workflows/missing/pause", json!({})).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "workflow_not_found");
}

async fn client_errors_are_4xx_and_store_nothing(backend: Backend) {
    let app = app_with(backend, |c| c.max_body_bytes = 64 << 10).await;
    let raw = |body: &str, ct: Option<&str>| {
        let mut req = Request::builder().method(Method::POST).uri("/v1/workflows");
        if let Some(ct) = ct {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        req.body(Body::from(body.to_string())).unwrap()
    };
    let (s, headers, body) = app.send(raw("{\n  \"tasks\": [,]\n}", Some("application/json"))).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_json");
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(v["details"]["line"], 2, "{v}");
    assert!(v["details"]["column"].as_u64().unwrap() > 0);
    let (s, _, body) = app.send(raw("{\"tasks\": [{\"task_id\": \"a\"}]}", Some("application/json"))).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_json");
    assert!(v["detail"].as_str().unwrap().contains("agent_type"), "{v}");
    let (s, _, body) = app.send(raw("tasks=1", Some("application/x-www-form-urlencoded"))).await;
    assert_error(
        s,
        &serde_json::from_slice(&body).unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let (s, _, body) = app.send(raw("{}", None)).await;
    assert_error(
        s,
        &serde_json::from_slice(&body).unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let big = json!({ "tasks": [{ "task_id": "a", "agent_type": "echo", "input": { "pad": "x".repeat(100 << 10) } }] });
    let (s, _, body) = app.send(raw(&big.to_string(), Some("application/json"))).await;
    assert_error(s, &serde_json::from_slice(&body).unwrap(), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    let cycle = json!({ "tasks": [
        { "task_id": "a", "agent_type": "echo", "dependencies": ["c"] },
        { "task_id": "b", "agent_type": "echo", "dependencies": ["a"] },
        { "task_id": "c", "agent_type": "echo", "dependencies": ["b"] }
    ]});
    let (s, v) = app.post("/v1/workflows", cycle).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "cycle");
    assert_eq!(v["details"]["cycle"].as_array().unwrap().len(), 4, "{v}");
    let unknown = json!({ "tasks": [{ "task_id": "a", "agent_type": "no-such-agent" }] });
    let (s, v) = app.post("/v1/workflows", unknown).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "unknown_agent_type");
    assert_eq!(v["details"]["task"], "a");
    // What a submission puts into handoffs is checked against the handoff schema at once.
    let priority = json!({ "tasks": [{ "task_id": "a", "agent_type": "echo" },
        { "task_id": "b", "agent_type": "echo", "dependencies": ["a"], "metadata": { "priority": "urgent" } }] });
    let (s, v) = app.post("/v1/workflows", priority).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid_workflow");
    assert_eq!(v["details"]["task"], "b");
    assert!(v["detail"].as_str().unwrap().contains("`metadata.priority`"), "{v}");
    let dep = json!({ "tasks": [{ "task_id": "a", "agent_type": "echo", "dependencies": ["zz"] }] });
    let (s, v) = app.post("/v1/workflows", dep).await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "unknown_dependency");

    let (s, list) = app.get("/v1/workflows").await;
    assert_eq!(s, StatusCode::OK);
    assert!(list["items"].as_array().unwrap().is_empty(), "a refused workflow was stored: {list}");

    let (s, v) = app.get("/v1/workflows/missing").await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "workflow_not_found");
    for path in ["events", "events/stream", "timeline", "handoffs", "versions"] {
        let (s, v) = app.get(&format!("/v1/workflows/missing/{path}")).await;
        assert_error(s, &v, StatusCode::NOT_FOUND, "workflow_not_found");
    }
    let (s, v) = app.get("/v1/nothing-here").await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "route_not_found");
    let (s, v) = app.call(Method::DELETE, "/v1/workflows", None).await;
    assert_error(s, &v, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");

    let (s, v) = app.call(Method::DELETE, "/v1/events", None).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_query");
    let (s, v) = app.call(Method::DELETE, "/v1/events?older_than_days=-1", None).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "invalid_query");
    let id = app.submit(json!({ "tasks": [{ "task_id": "a", "agent_type": "echo" }] })).await;
    app.settle(&id).await;
    let (s, v) = app.call(Method::DELETE, "/v1/events?older_than_days=1", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["deleted"], 0);
    let (s, v) = app.call(Method::DELETE, "/v1/events?older_than_days=0", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["deleted"].as_u64().unwrap() > 0, "{v}");
}

async fn operations_routes_report_health_metrics_and_workers(backend: Backend) {
    let app = app(backend).await;
    let id = app.submit(json!({ "tasks": [{ "task_id": "a", "agent_type": "fib", "input": { "n": 10 } }] })).await;
    app.settle(&id).await;
    let (s, v) = app.get("/healthz").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    let (s, v) = app.get("/readyz").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["components"]["database"]["status"], "ok");
    assert_eq!(v["components"]["plugins"]["detail"]["loaded"], 5, "{v}");
    let (s, v) = app.get("/v1/workers").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"][0]["health"], "HEALTHY", "{v}");
    let (s, headers, body) = app.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().contains("openmetrics-text"));
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains(r#"hyphae_cluster_workflows{status="completed"} 1"#), "{text}");
    assert!(text.contains(r#"hyphae_cluster_workflows{status="failed"} 0"#), "{text}");
    assert!(text.contains(r#"hyphae_cluster_queue_depth{agent_type="fib"} 0"#), "{text}");
    assert!(text.contains(r#"hyphae_task_attempts_total{agent_type="fib",outcome="completed"} 1"#), "{text}");
    assert!(text.contains(r#"hyphae_plugin_instantiation_seconds_count{agent_type="fib"} 1"#), "{text}");
    let written = text.lines().find_map(|l| l.strip_prefix("hyphae_events_written_total ")).unwrap_or("0");
    assert!(written.parse::<u64>().unwrap() >= 6, "events are counted: {text}");

    // Readiness fails while a plugin file is not loaded, naming it.
    let registry = app.host.runtime.registry();
    let broken = registry.dir().unwrap().join("broken.wasm");
    std::fs::write(&broken, b"not a component").unwrap();
    registry.refresh(&broken).await;
    let (s, v) = app.get("/readyz").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(v["components"]["plugins"]["message"].as_str().unwrap().contains("broken.wasm"), "{v}");
    std::fs::remove_file(&broken).unwrap();
    registry.refresh(&broken).await;
    let (s, v) = app.get("/readyz").await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Readiness fails (503, with the component) when the database is gone.
    app.host.engine.store().close().await;
    let (s, v) = app.get("/readyz").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["components"]["database"]["status"], "failed", "{v}");
}

async fn plugin_routes_list_and_install_checked_components(backend: Backend) {
    let app = app(backend).await;
    let (s, v) = app.get("/v1/plugins").await;
    assert_eq!(s, StatusCode::OK);
    let plugins = v["items"].as_array().unwrap();
    assert_eq!(plugins.len(), 5);
    let reviewer = plugins.iter().find(|p| p["agent_type"] == "reviewer").unwrap();
    assert_eq!(reviewer["world"], "agent-plugin");
    assert_eq!(reviewer["state"], "loaded");
    assert!(reviewer["digest"].as_str().unwrap().starts_with("sha256:"));

    let put = |agent: &str, bytes: Vec<u8>| {
        Request::put(format!("/v1/plugins/{agent}"))
            .header(header::CONTENT_TYPE, "application/wasm")
            .body(Body::from(bytes))
            .unwrap()
    };
    let (s, _, body) = app.send(put("fib2", std::fs::read(support::plugins_dist().join("fib.wasm")).unwrap())).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["agent_type"], "fib2");
    assert_eq!(v["state"], "loaded");
    let id = app.submit(json!({ "tasks": [{ "task_id": "a", "agent_type": "fib2", "input": { "n": 12 } }] })).await;
    assert_eq!(app.settle(&id).await, "completed");

    let (s, _, body) = app.send(put("junk", b"definitely not wasm".to_vec())).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "plugin_refused");
    assert!(v["detail"].as_str().unwrap().contains("not a WebAssembly binary"), "{v}");
    let (s, _, body) = app.send(put("junk", Vec::new())).await;
    assert_error(s, &serde_json::from_slice(&body).unwrap(), StatusCode::BAD_REQUEST, "empty_body");
    let (s, _, body) = app.send(put("bad%20name", b"\0asm".to_vec())).await;
    assert_error(s, &serde_json::from_slice(&body).unwrap(), StatusCode::BAD_REQUEST, "invalid_agent_type");
    let (_, v) = app.get("/v1/plugins").await;
    assert!(v["items"].as_array().unwrap().iter().all(|p| p["agent_type"] != "junk"), "{v}");
}

/// Parse a complete SSE body into (id, event name, data) frames.
fn sse_frames(body: &str) -> Vec<(Option<i64>, Option<String>, String)> {
    body.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .filter_map(|frame| {
            let (mut id, mut event, mut data) = (None, None, String::new());
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            (id.is_some() || event.is_some()).then_some((id, event, data))
        })
        .collect()
}

async fn event_stream_delivers_every_event_in_order_and_resumes(backend: Backend) {
    let app = app(backend).await;
    let id = app
        .submit(json!({ "tasks": [
            { "task_id": "wait", "agent_type": "testkit", "input": { "action": "sleep", "ms": 300 } },
            { "task_id": "after", "agent_type": "echo", "dependencies": ["wait"] }
        ]}))
        .await;
    // Opened while the workflow runs: live events, then `end` once it is terminal.
    let (s, headers, body) =
        app.send(Request::get(format!("/v1/workflows/{id}/events/stream")).body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/event-stream"));
    let frames = sse_frames(&String::from_utf8(body).unwrap());
    let (last, events) = frames.split_last().unwrap();
    assert_eq!(last.1.as_deref(), Some("end"));
    let (_, stored) = app.get(&format!("/v1/workflows/{id}/events?limit=1000")).await;
    let stored = stored["items"].as_array().unwrap();
    assert_eq!(events.len(), stored.len());
    for (i, (frame, e)) in events.iter().zip(stored).enumerate() {
        assert_eq!(frame.0, Some(i as i64 + 1));
        let data: Value = serde_json::from_str(&frame.2).unwrap();
        assert_eq!(&data, e);
    }
    assert_eq!(stored.last().unwrap()["event_type"], "workflow_completed");

    // Resume from a position: with Last-Event-ID, and with ?after=.
    let req =
        Request::get(format!("/v1/workflows/{id}/events/stream")).header("Last-Event-ID", "3").body(Body::empty());
    let (_, _, body) = app.send(req.unwrap()).await;
    let ids: Vec<i64> = sse_frames(&String::from_utf8(body).unwrap()).iter().filter_map(|f| f.0).collect();
    assert_eq!(ids, (4..=stored.len() as i64).collect::<Vec<_>>());
    let (_, _, body) =
        app.send(Request::get(format!("/v1/workflows/{id}/events/stream?after=5")).body(Body::empty()).unwrap()).await;
    let ids: Vec<i64> = sse_frames(&String::from_utf8(body).unwrap()).iter().filter_map(|f| f.0).collect();
    assert_eq!(ids.first(), Some(&6));
    let req =
        Request::get(format!("/v1/workflows/{id}/events/stream")).header("Last-Event-ID", "x").body(Body::empty());
    let (s, _, _) = app.send(req.unwrap()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// Ten watchers of one running workflow share its tail; one of them reads nothing until the
/// workflow has ended, falls behind the tail's backlog and catches up from the store. Each gets
/// every event once, in order, then `end`; then nobody follows the workflow any more.
async fn watchers_share_one_tail_and_a_slow_one_catches_up(backend: Backend) {
    let app = app(backend).await;
    let mut tasks =
        vec![json!({ "task_id": "wait", "agent_type": "testkit", "input": { "action": "sleep", "ms": 1000 } })];
    for i in 0..400 {
        let before = if i == 0 { "wait".to_string() } else { format!("t{}", i - 1) };
        tasks.push(
            json!({ "task_id": format!("t{i}"), "agent_type": "fib", "input": { "n": 3 }, "dependencies": [before] }),
        );
    }
    let id = app.submit(json!({ "tasks": tasks })).await;
    let open = || {
        let req = Request::get(format!("/v1/workflows/{id}/events/stream")).body(Body::empty()).unwrap();
        app.router.clone().oneshot(req)
    };
    let mut streams = Vec::new();
    for _ in 0..10 {
        streams.push(open().await.unwrap());
    }
    assert_eq!(app.tails.followed(), 1, "one tail for the ten streams");
    // The slow one reads what there is (the workflow waits for its first task), then stops.
    let mut slow = streams.pop().unwrap().into_body();
    let mut slow_body = Vec::new();
    while let Ok(Some(frame)) = tokio::time::timeout(Duration::from_millis(200), slow.frame()).await {
        slow_body.extend_from_slice(&frame.unwrap().into_data().unwrap());
    }
    assert!(!slow_body.is_empty());
    let readers: Vec<_> = streams
        .into_iter()
        .map(|r| tokio::spawn(async move { r.into_body().collect().await.unwrap().to_bytes() }))
        .collect();
    assert_eq!(app.settle(&id).await, "completed");
    let mut stored = Vec::new();
    loop {
        let (_, page) = app.get(&format!("/v1/workflows/{id}/events?limit=1000&cursor={}", stored.len())).await;
        let events = page["items"].as_array().unwrap();
        stored.extend(events.iter().cloned());
        if events.len() < 1000 {
            break;
        }
    }
    assert!(stored.len() > 2000, "{}", stored.len());
    let check = |body: &[u8]| {
        let frames = sse_frames(std::str::from_utf8(body).unwrap());
        let (end, events) = frames.split_last().unwrap();
        assert_eq!(end.1.as_deref(), Some("end"));
        assert_eq!(events.len(), stored.len(), "every event once");
        for (frame, e) in events.iter().zip(&stored) {
            assert_eq!(frame.0, e["seq"].as_i64());
            assert_eq!(&serde_json::from_str::<Value>(&frame.2).unwrap(), e);
        }
    };
    for r in readers {
        check(&r.await.unwrap());
    }
    slow_body.extend_from_slice(&slow.collect().await.unwrap().to_bytes());
    check(&slow_body);
    support::eventually("the tail to stop", || app.tails.followed() == 0).await;
}

async fn openapi_document_is_valid_and_lists_every_route(backend: Backend) {
    let app = app(backend).await;
    let (s, doc) = app.get("/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    assert_eq!(doc["info"]["title"], "Hyphae");
    let paths = doc["paths"].as_object().unwrap();
    let mut listed = 0;
    let mut operation_ids = std::collections::BTreeSet::new();
    for (path, item) in paths {
        for method in ["get", "post", "put", "delete", "patch"] {
            if let Some(op) = item.get(method) {
                listed += 1;
                // Generators name functions after operationIds: unique, camelCase verb + noun.
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
                assert!(operation_ids.insert(id.to_string()), "{method} {path}: operationId {id} used twice");
                assert!(
                    id.len() > 6
                        && id.starts_with(|c: char| c.is_ascii_lowercase())
                        && id.chars().any(|c| c.is_ascii_uppercase()),
                    "{method} {path}: operationId {id} is not descriptive"
                );
                assert!(ROUTES.contains(&(method, path.as_str())), "undocumented in the test list: {method} {path}");
            }
        }
    }
    assert_eq!(listed, ROUTES.len(), "the document lists {listed} operations");
    for (method, path) in ROUTES {
        assert!(paths.get(*path).and_then(|p| p.get(*method)).is_some(), "{method} {path} missing from the document");
        // Every documented route is served (anything but the router's own 404/405).
        let uri = path.replace("{version}", "1").replace(['{', '}'], "");
        let req = Request::builder().method(method.to_uppercase().as_str()).uri(&uri).body(Body::empty()).unwrap();
        let resp = app.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert!(v["code"] != "route_not_found" && v["code"] != "method_not_allowed", "{method} {uri}: {status} {v}");
        // What it answered (here: no body, made-up ids) is a response it declares.
        let declared = &paths[*path][*method]["responses"];
        assert!(declared.get(status.as_str()).is_some(), "{method} {path} answered an undeclared {status}: {v}");
        assert!(declared.get("500").is_some(), "{method} {path} does not declare 500");
        // Errors are declared as what they are served as: RFC 9457 problems.
        for (status, response) in declared.as_object().unwrap() {
            if status.starts_with('4') || status == "500" {
                let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
                assert_eq!(schema, "#/components/schemas/Problem", "{method} {path} {status}: {response}");
            }
        }
    }
    let (s, v) = app.get("/v1/workflows/x/versions?limit=9223372036854775808").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(paths["/v1/workflows/{id}/versions"]["get"]["responses"].get("400").is_some());
    assert!(paths["/v1/workflows/{id}/rollback"]["post"]["responses"].get("415").is_some());
    let sse = &paths["/v1/workflows/{id}/events/stream"]["get"]["responses"]["200"];
    // Before OpenAPI 3.2, an event stream's schema describes one event as an SSE parser reads it.
    let stream = &sse["content"]["text/event-stream"];
    assert_eq!(stream["schema"]["$ref"], "#/components/schemas/StreamMessage", "{sse}");
    assert!(stream["example"]["data"].as_str().unwrap().starts_with('{'), "{sse}");
    // Schemas referenced by the operations are present.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in ["WorkflowSpec", "Submitted", "Problem", "Event", "PluginView", "Readiness"] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
}

crate::on_both_backends!(
    workflow_routes_serve_state_history_and_events,
    idempotency_keys_make_retries_safe,
    control_routes_pause_resume_roll_back_and_cancel,
    client_errors_are_4xx_and_store_nothing,
    operations_routes_report_health_metrics_and_workers,
    plugin_routes_list_and_install_checked_components,
    event_stream_delivers_every_event_in_order_and_resumes,
    watchers_share_one_tail_and_a_slow_one_catches_up,
    openapi_document_is_valid_and_lists_every_route,
);
