//! Plugins shared through the database: what the API installs reaches every host; workers
//! advertise what they serve, claims take only that, and tasks no live worker serves wait,
//! reported, until a host serves them.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::api::app;
use crate::harness::{database, Backend};
use crate::hosts::spawn_host;
use crate::support::{self, eventually_async};

/// A task that sleeps, then a fib task after it.
fn sleep_then_fib(ms: u64) -> Value {
    json!({"tasks": [
        {"task_id": "s", "agent_type": "testkit", "input": {"action": "sleep", "ms": ms}},
        {"task_id": "f", "agent_type": "fib", "dependencies": ["s"], "input": {"n": 10}}]})
}

/// On one host: a fib task whose plugin went away waits (readiness and metrics say so) and
/// runs once fib is installed through the API, which stores it in the database.
async fn a_task_waits_for_its_plugin_and_runs_once_installed(backend: Backend) {
    let app = app(backend).await;
    let registry = app.host.runtime.registry();
    let dir = registry.dir().unwrap().to_path_buf();
    let (s, v) = app.post("/v1/workflows", sleep_then_fib(300)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["workflow_id"].as_str().unwrap().to_string();
    std::fs::remove_file(dir.join("fib.wasm")).unwrap();
    registry.load_dir().await.unwrap();
    assert!(!registry.has_executor("fib"));
    eventually_async("fib waits for a worker", || async {
        let (_, v) = app.call(Method::GET, "/readyz", None).await;
        v["components"]["agent_types"]["detail"]["unserved"] == json!([{ "agent_type": "fib", "ready_tasks": 1 }])
    })
    .await;
    let (_, wf) = app.get(&format!("/v1/workflows/{id}")).await;
    assert_eq!(wf["tasks"][1]["waiting_for_worker"], true, "{wf}");
    assert!(wf["tasks"][0].get("waiting_for_worker").is_none(), "{wf}");
    let (_, task) = app.get(&format!("/v1/workflows/{id}/tasks/f")).await;
    assert_eq!(task["waiting_for_worker"], true, "{task}");
    let (s, v) = app.call(Method::GET, "/readyz", None).await;
    assert_eq!(s, StatusCode::OK, "the host is ready all the same: {v}");
    let message = v["components"]["agent_types"]["message"].as_str().unwrap();
    assert!(message.contains("fib (1)") && message.contains("PUT /v1/plugins/AGENT_TYPE"), "{message}");
    let (_, metrics) = app.call(Method::GET, "/metrics", None).await;
    assert!(metrics.as_str().unwrap().contains(r#"hyphae_cluster_tasks_unserved{agent_type="fib"} 1"#), "{metrics}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, wf) = app.call(Method::GET, &format!("/v1/workflows/{id}"), None).await;
    assert_eq!(wf["status"], "running", "nothing failed for want of a plugin: {wf}");

    let manifest = "timeout_s = 60\n";
    let (s, v) = app.put_bytes("/v1/plugins/fib/manifest", manifest.as_bytes().to_vec(), "application/toml").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app.put_bytes("/v1/plugins/fib", support::component("fib"), "application/wasm").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["policy"]["timeout_s"], 60.0, "installed with its manifest: {v}");
    assert_eq!(app.settle(&id).await, "completed");
    let (_, page) = app.get(&format!("/v1/workflows/{id}/tasks")).await;
    assert!(page["items"][1].get("waiting_for_worker").is_none(), "{page}");
    let installed = app.host.engine.store().installed_plugins().await.unwrap();
    assert_eq!(installed.len(), 1, "{installed:?}");
    assert_eq!(installed[0].digest.as_deref(), v["digest"].as_str());
    assert_eq!(installed[0].manifest.as_deref(), Some(manifest));
    let (s, v) = app.put_bytes("/v1/plugins/fib/manifest", b"timeout_s = \"soon\"".to_vec(), "application/toml").await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("plugin_refused")), "{v}");
    assert_eq!(app.host.engine.store().installed_plugins().await.unwrap()[0].manifest.as_deref(), Some(manifest));
    an_installed_plugin_is_shown_and_removed(&app, &dir, manifest).await;
}

/// `GET /v1/plugins/{agent_type}` tells an installed component from a directory file; `DELETE`
/// removes only what the API installed: from the database (its blob too, the manifest stays)
/// and from the plugins directory.
async fn an_installed_plugin_is_shown_and_removed(app: &crate::api::App, dir: &std::path::Path, manifest: &str) {
    let (s, v) = app.get("/v1/plugins/fib").await;
    assert_eq!((s, v["items"][0]["source"].as_str()), (StatusCode::OK, Some("installed")), "{v}");
    let (_, v) = app.get("/v1/plugins/echo").await;
    assert_eq!(v["items"][0]["source"], "directory", "{v}");
    let (s, v) = app.call(Method::DELETE, "/v1/plugins/echo", None).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::NOT_FOUND, Some("plugin_not_found")), "{v}");
    assert!(dir.join("echo.wasm").is_file(), "a directory file is not the API's to remove");

    let (s, v) = app.call(Method::DELETE, "/v1/plugins/fib", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert!(!dir.join("fib.wasm").exists() && dir.join("fib.toml").is_file(), "the component goes, the manifest stays");
    assert!(!app.host.runtime.registry().has_executor("fib"));
    let store = app.host.engine.store();
    let installed = store.installed_plugins().await.unwrap();
    assert_eq!((installed[0].digest.as_deref(), installed[0].manifest.as_deref()), (None, Some(manifest)));
    let digest = installed[0].removed_digest.clone().expect("the removed digest, for the other hosts");
    assert_eq!(store.plugin_blob(&digest).await.unwrap(), None, "the unused component is deleted");
    let (s, v) = app.get("/v1/plugins/fib").await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::NOT_FOUND, Some("plugin_not_found")), "{v}");
    let (s, _) = app.call(Method::DELETE, "/v1/plugins/fib", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "removed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_waits_for_its_plugin_on_sqlite() {
    a_task_waits_for_its_plugin_and_runs_once_installed(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_waits_for_its_plugin_on_postgres() {
    a_task_waits_for_its_plugin_and_runs_once_installed(Backend::Postgres).await;
}

async fn get(port: u16, path: &str) -> Value {
    reqwest::get(format!("http://127.0.0.1:{port}{path}")).await.unwrap().json().await.unwrap()
}

fn dir_with(plugins: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in plugins {
        std::fs::write(dir.path().join(format!("{name}.wasm")), support::component(name)).unwrap();
    }
    dir
}

/// Two `hyphae serve` processes on one PostgreSQL, only the first with fib: fib tasks submitted
/// to the second run on the first; with the first gone they wait; installed through the second,
/// they run there, and a third host started later with an empty directory serves fib too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_with_different_plugins_share_the_work_and_what_is_installed() {
    let (url, _d) = database(Backend::Postgres).await;
    let work = tempfile::tempdir().unwrap();
    let (dir_a, dir_b, dir_c) = (dir_with(&["echo", "testkit", "fib"]), dir_with(&["echo", "testkit"]), dir_with(&[]));
    let (port_a, port_b, port_c) = (support::free_port(), support::free_port(), support::free_port());
    let mut a = spawn_host(&url, dir_a.path(), work.path(), port_a);
    let mut b = spawn_host(&url, dir_b.path(), work.path(), port_b);
    support::wait_ready(port_a).await;
    support::wait_ready(port_b).await;
    let workers = get(port_b, "/v1/workers").await;
    let serving_fib: Vec<&Value> =
        workers["items"].as_array().unwrap().iter().filter(|w| w["serves"].get("fib").is_some()).collect();
    assert_eq!(serving_fib.len(), 1, "only the first host serves fib: {workers}");
    let client = reqwest::Client::new();
    let submit = |spec: Value| {
        let client = client.clone();
        async move {
            let resp = client.post(format!("http://127.0.0.1:{port_b}/v1/workflows")).json(&spec).send().await.unwrap();
            assert_eq!(resp.status(), 201);
            resp.json::<Value>().await.unwrap()["workflow_id"].as_str().unwrap().to_string()
        }
    };
    let store = hyphae::store::Store::connect(&url).await.unwrap();
    let first = submit(json!({"tasks": [{"task_id": "f", "agent_type": "fib", "input": {"n": 12}}]})).await;
    eventually_async("fib ran", || async { store.workflow(&first).await.unwrap().status.as_str() == "completed" })
        .await;
    let fib_worker = serving_fib[0]["worker_id"].as_str().unwrap();
    let ran_on: Vec<String> = sqlx::query_scalar("SELECT worker_id FROM attempts WHERE workflow_id = $1")
        .bind(&first)
        .fetch_all(&mut <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(ran_on, vec![fib_worker.to_string()], "the host without fib never claimed it");

    let waiting = submit(sleep_then_fib(200)).await;
    a.kill().unwrap();
    a.wait().unwrap();
    eventually_async("fib waits with no live worker serving it", || async {
        get(port_b, "/readyz").await["components"]["agent_types"]["detail"]["unserved"]
            == json!([{ "agent_type": "fib", "ready_tasks": 1 }])
    })
    .await;
    let resp = client
        .put(format!("http://127.0.0.1:{port_b}/v1/plugins/fib"))
        .header("content-type", "application/wasm")
        .body(support::component("fib"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    eventually_async("fib ran once installed", || async {
        store.workflow(&waiting).await.unwrap().status.as_str() == "completed"
    })
    .await;

    let mut c = spawn_host(&url, dir_c.path(), work.path(), port_c);
    support::wait_ready(port_c).await;
    let plugins = get(port_c, "/v1/plugins").await;
    let fib: Vec<&Value> = plugins["items"].as_array().unwrap().iter().filter(|p| p["agent_type"] == "fib").collect();
    assert_eq!((fib.len(), fib[0]["state"].as_str()), (1, Some("loaded")), "{plugins}");
    assert!(dir_c.path().join("fib.wasm").is_file(), "copied into the third host's directory");
    assert_eq!(fib[0]["source"], "installed", "{plugins}");

    let resp = client.delete(format!("http://127.0.0.1:{port_c}/v1/plugins/fib")).send().await.unwrap();
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    eventually_async("every host removed its copy of fib", || async {
        !dir_b.path().join("fib.wasm").exists() && !dir_c.path().join("fib.wasm").exists()
    })
    .await;
    eventually_async("no live host serves fib", || async {
        let workers = get(port_b, "/v1/workers").await;
        let live = workers["items"].as_array().unwrap().iter().filter(|w| w["health"] != "FAILED");
        live.clone().count() == 2 && live.into_iter().all(|w| w["serves"].get("fib").is_none())
    })
    .await;
    for child in [&mut b, &mut c] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
