//! Tokens and roles: 401 without a valid token, 403 for a role that may not, revocation on the
//! next request, the audit log; a loopback host open until a token exists; `hyphae serve`
//! refusing a network address without tokens, `hyphae token` and the CLI client's token.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use hyphae::auth::{NewToken, Role};
use hyphae::store::AuditEntry;
use serde_json::{json, Value};

use crate::api::{app_with, assert_error, App, ROUTES};
use crate::harness::{database, Backend};
use crate::support;

/// A request with `token` (if any) and a JSON body (if any).
async fn call(app: &App, token: Option<&str>, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let (status, _, bytes) = app.send(req.body(body).unwrap()).await;
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A token made on the database, as `hyphae token create` does.
async fn token_on_db(app: &App, name: &str, role: Role) -> String {
    let token = NewToken::generate().unwrap();
    let secret = token.secret.clone();
    let entry = AuditEntry {
        caller: "cli".into(),
        action: "token create".into(),
        target: None,
        outcome: "done",
        client: None,
        detail: None,
    };
    app.host.engine.store().create_token(token, name, role, entry).await.unwrap();
    secret
}

fn one_echo() -> Value {
    json!({ "tasks": [{ "task_id": "a", "agent_id": "a", "agent_type": "echo", "input": { "x": 1 } }] })
}

async fn every_route_but_health_needs_a_token_on_a_network_address(backend: Backend) {
    let app = app_with(backend, |c| c.listen = "0.0.0.0:8080".parse().unwrap()).await;
    for (method, path) in ROUTES {
        let uri = path.replace("{version}", "1").replace(['{', '}'], "");
        let req = Request::builder().method(method.to_uppercase().as_str()).uri(&uri).body(Body::empty()).unwrap();
        let (status, headers, body) = app.send(req).await;
        let open = ["/healthz", "/readyz", "/openapi.json"].contains(path);
        if open {
            assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            continue;
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_error(status, &v, StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer realm=\"hyphae\"", "{method} {path}");
    }
    let (s, v) = call(&app, Some("hyphae_not-a-token"), Method::GET, "/v1/workflows", None).await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(v["detail"].as_str().unwrap().contains("unknown or revoked"), "{v}");
    // Refused requests are in the audit log.
    let admin = token_on_db(&app, "root", Role::Admin).await;
    let (s, log) = call(&app, Some(&admin), Method::GET, "/v1/audit?limit=1000", None).await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let refused = log["items"].as_array().unwrap().iter().filter(|e| e["outcome"] == "unauthenticated").count();
    assert_eq!(refused, ROUTES.len() - 3 + 1, "{log}");
    assert!(log["items"].as_array().unwrap().iter().any(|e| e["action"] == "PUT /v1/plugins/{agent_type}"));
}

async fn roles_permit_what_they_say_and_revocation_takes_effect(backend: Backend) {
    let app = app_with(backend, |c| c.listen = "0.0.0.0:8080".parse().unwrap()).await;
    let admin = token_on_db(&app, "root", Role::Admin).await;
    let mut tokens = std::collections::BTreeMap::new();
    for role in ["reader", "submitter", "operator"] {
        let (s, v) = call(&app, Some(&admin), Method::POST, "/v1/tokens", Some(json!({ "role": role }))).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["role"], role);
        assert!(v["token"].as_str().unwrap().starts_with("hyphae_"));
        tokens.insert(role, v["token"].as_str().unwrap().to_string());
    }
    let (reader, submitter, operator) = (&tokens["reader"], &tokens["submitter"], &tokens["operator"]);

    let (s, v) = call(&app, Some(reader), Method::POST, "/v1/workflows", Some(one_echo())).await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(v["details"]["needed"], json!(["admin", "submitter"]), "{v}");
    let (s, v) = call(&app, Some(submitter), Method::POST, "/v1/workflows", Some(one_echo())).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["workflow_id"].as_str().unwrap().to_string();
    app.settle(&id).await;
    let (s, _) = call(&app, Some(reader), Method::GET, &format!("/v1/workflows/{id}"), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&app, Some(reader), Method::GET, "/metrics", None).await;
    assert_eq!(s, StatusCode::OK);
    let cancel = format!("/v1/workflows/{id}/cancel");
    let (s, v) = call(&app, Some(submitter), Method::POST, &cancel, None).await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let (s, v) = call(&app, Some(operator), Method::POST, &cancel, None).await;
    assert_ne!(s, StatusCode::FORBIDDEN, "{v}");
    for who in [reader, submitter, operator] {
        let (s, v) = call(&app, Some(who), Method::DELETE, "/v1/events?older_than_days=30", None).await;
        assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
        let (s, _) = call(&app, Some(who), Method::GET, "/v1/tokens", None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, v) = call(&app, Some(&admin), Method::DELETE, "/v1/events?older_than_days=30", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // The list shows no secret, nor the digest; a name in force cannot be given twice.
    let (_, list) = call(&app, Some(&admin), Method::GET, "/v1/tokens", None).await;
    let text = list.to_string();
    assert_eq!(list["items"].as_array().unwrap().len(), 4, "{list}");
    assert!(!text.contains("hyphae_") && !text.contains("hash"), "{list}");
    let again = json!({ "role": "reader", "name": "root" });
    let (s, v) = call(&app, Some(&admin), Method::POST, "/v1/tokens", Some(again)).await;
    assert_error(s, &v, StatusCode::CONFLICT, "conflict");

    // Revoked: refused from the next request on.
    let name = list["items"].as_array().unwrap().iter().find(|t| t["role"] == "reader").unwrap()["name"].clone();
    let uri = format!("/v1/tokens/{}", name.as_str().unwrap());
    let (s, v) = call(&app, Some(&admin), Method::DELETE, &uri, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = call(&app, Some(reader), Method::GET, "/v1/workflows", None).await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, v) = call(&app, Some(&admin), Method::DELETE, &uri, None).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "token_not_found");

    // Admin actions and refusals are audited, newest first, with who did them.
    let (_, log) = call(&app, Some(&admin), Method::GET, "/v1/audit", None).await;
    let entries = log["items"].as_array().unwrap();
    let seqs: Vec<i64> = entries.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{log}");
    let has = |action: &str, outcome: &str| entries.iter().any(|e| e["action"] == action && e["outcome"] == outcome);
    assert!(has("POST /v1/tokens", "done") && has("DELETE /v1/tokens/{token}", "done"), "{log}");
    assert!(has("DELETE /v1/events", "done") && has("DELETE /v1/events", "forbidden"), "{log}");
    assert!(has("POST /v1/workflows", "forbidden") && has("GET /v1/workflows", "unauthenticated"), "{log}");
    assert!(has("token create", "done"), "the token made on the database: {log}");
    let (_, page) = call(&app, Some(&admin), Method::GET, "/v1/audit?limit=2", None).await;
    let before = page["next_cursor"].as_str().unwrap();
    assert_eq!(before, page["items"][1]["seq"].to_string(), "{page}");
    let (_, older) = call(&app, Some(&admin), Method::GET, &format!("/v1/audit?limit=2&cursor={before}"), None).await;
    assert!(older["items"][0]["seq"].as_i64().unwrap() < before.parse::<i64>().unwrap(), "{older}");
}

async fn a_loopback_host_is_open_until_a_token_exists(backend: Backend) {
    let app = app_with(backend, |_| {}).await;
    let (s, _) = call(&app, None, Method::GET, "/v1/workflows", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, made) = call(&app, None, Method::POST, "/v1/tokens", Some(json!({ "role": "admin", "name": "me" }))).await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    assert_eq!(made["created_by"], "local");
    for uri in ["/v1/workflows", "/metrics"] {
        let (s, v) = call(&app, None, Method::GET, uri, None).await;
        assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let token = made["token"].as_str().unwrap();
    let (s, _) = call(&app, Some(token), Method::GET, "/v1/workflows", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&app, None, Method::GET, "/healthz", None).await;
    assert_eq!(s, StatusCode::OK);

    let public = app_with(backend, |c| c.public_metrics = true).await;
    call(&public, None, Method::POST, "/v1/tokens", Some(json!({ "role": "reader" }))).await;
    let (s, _) = call(&public, None, Method::GET, "/metrics", None).await;
    assert_eq!(s, StatusCode::OK, "public_metrics serves /metrics without a token");
    let open = app_with(backend, |c| {
        c.listen = "0.0.0.0:8080".parse().unwrap();
        c.insecure_no_auth = true;
    })
    .await;
    let (s, _) = call(&open, None, Method::GET, "/v1/workflows", None).await;
    assert_eq!(s, StatusCode::OK, "--insecure-no-auth checks nothing");
}

crate::on_both_backends!(
    every_route_but_health_needs_a_token_on_a_network_address,
    roles_permit_what_they_say_and_revocation_takes_effect,
    a_loopback_host_is_open_until_a_token_exists,
);

fn hyphae() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_hyphae"))
}

/// `hyphae serve` on a network address: refused without tokens; with one made by `hyphae
/// token create`, it serves, and the CLI client needs `HYPHAE_TOKEN`. The database URL's
/// password never appears in what it prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_network_address_without_tokens_and_the_cli_carries_one() {
    let (url, _db_dir) = database(Backend::Postgres).await;
    let url = url.replacen("postgres://postgres@", "postgres://postgres:s3cret-pw@", 1);
    let dir = support::plugins_dir(&["echo"]);
    let port = support::free_port();
    let serve = |extra: &[&str]| {
        let mut c = hyphae();
        c.args(["serve", "--listen", &format!("0.0.0.0:{port}"), "--db", &url, "--watch-plugins", "false"])
            .arg("--plugins-dir")
            .arg(dir.path())
            .arg("--cache-dir")
            .arg(support::repo_root().join("target").join("test-plugin-cache"))
            .args(extra);
        c
    };
    let refused = serve(&[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("hyphae token create --role admin"), "{stderr}");
    assert!(!stderr.contains("s3cret-pw") && stderr.contains("***"), "{stderr}");

    let made =
        hyphae().args(["token", "create", "--role", "submitter", "--name", "ci", "--db", &url]).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let token = String::from_utf8(made.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("hyphae_"), "{token}");
    let listed = hyphae().args(["token", "list", "--db", &url]).output().unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(listed.contains("ci") && listed.contains("submitter") && !listed.contains(&token), "{listed}");

    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = serve(&[]).stdout(log.reopen().unwrap()).spawn().unwrap();
    support::wait_ready(port).await;
    let banner = std::fs::read_to_string(log.path()).unwrap();
    assert!(!banner.contains("s3cret-pw") && banner.contains("a token on every request"), "{banner}");

    let workflow = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(workflow.path(), one_echo().to_string()).unwrap();
    let host = format!("http://127.0.0.1:{port}");
    let submit = |token: Option<&str>| {
        let mut c = hyphae();
        c.arg("submit").arg(workflow.path()).args(["--url", &host]).env_remove("HYPHAE_TOKEN");
        if let Some(t) = token {
            c.env("HYPHAE_TOKEN", t);
        }
        c.output().unwrap()
    };
    let without = submit(None);
    assert_eq!(without.status.code(), Some(77), "{}", String::from_utf8_lossy(&without.stderr));
    let with = submit(Some(&token));
    assert!(with.status.success(), "{}", String::from_utf8_lossy(&with.stderr));

    let revoked = hyphae().args(["token", "revoke", "ci", "--db", &url]).output().unwrap();
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    assert_eq!(submit(Some(&token)).status.code(), Some(77), "a revoked token is refused by the running host");
    let _ = child.kill();
    let _ = child.wait();
}

/// Submissions and controls past a token's rate are 429 with `Retry-After`; other tokens, and
/// reads, are not held back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_and_controls_past_a_tokens_rate_are_429() {
    let slow = hyphae::api::Rate { per_s: 0.01, burst: 2.0 };
    let app = app_with(Backend::Sqlite, |c| {
        c.listen = "0.0.0.0:8080".parse().unwrap();
        c.submission_rate = slow;
        c.control_rate = slow;
    })
    .await;
    let (a, b) = (token_on_db(&app, "a", Role::Admin).await, token_on_db(&app, "b", Role::Submitter).await);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (s, v) = call(&app, Some(&a), Method::POST, "/v1/workflows", Some(one_echo())).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["workflow_id"].as_str().unwrap().to_string());
    }
    let req = Request::post("/v1/workflows")
        .header(header::AUTHORIZATION, format!("Bearer {a}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(one_echo().to_string()))
        .unwrap();
    let (s, headers, body) = app.send(req).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_error(s, &v, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry: u64 = headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=100).contains(&retry), "{retry}");
    let (s, _) = call(&app, Some(&b), Method::POST, "/v1/workflows", Some(one_echo())).await;
    assert_eq!(s, StatusCode::CREATED, "another token has its own bucket");
    let (s, _) = call(&app, Some(&a), Method::GET, "/v1/workflows", None).await;
    assert_eq!(s, StatusCode::OK, "reads are not limited");
    for id in &ids {
        app.settle(id).await;
    }
    let pause = |id: &str| format!("/v1/workflows/{id}/pause");
    for id in &ids {
        let (s, v) = call(&app, Some(&a), Method::POST, &pause(id), None).await;
        assert_ne!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    }
    let (s, v) = call(&app, Some(&a), Method::POST, &pause(&ids[0]), None).await;
    assert_error(s, &v, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
}
