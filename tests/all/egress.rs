//! Agents that act: outbound HTTP under the manifest's allow-list, secrets substituted only
//! toward their bound hosts, limits, cancellation, manifests and their hot reload. Real
//! components (`http-probe`), real HTTP on 127.0.0.1.

use std::time::{Duration, Instant};

use hyphae::plugins::{
    CallOptions, EgressOutcome, Execution, OutboundTls, PluginState, Runtime, RuntimeConfig, Secrets,
};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::support::{self, config, eventually, task};
use crate::upstream::Upstream;

const SECRET: &str = "sk-live-0123456789abcdef";

/// A runtime with `http-probe` installed under the manifest `toml`, and the secret `api` bound to
/// `bound` (an origin).
async fn probe_runtime(toml: &str, bound: &str) -> (Runtime, tempfile::TempDir) {
    let dir = support::plugins_dir(&["http-probe"]);
    std::fs::write(dir.path().join("http-probe.toml"), toml).unwrap();
    let rt = Runtime::start(with_secret(config(dir.path()), bound)).await.expect("runtime starts");
    (rt, dir)
}

fn with_secret(mut cfg: RuntimeConfig, bound: &str) -> RuntimeConfig {
    cfg.secrets = Secrets::for_tests(&[("api", SECRET, &[bound])]);
    cfg
}

fn allow(origins: &[String]) -> String {
    let list: Vec<String> = origins.iter().map(|o| format!("{o:?}")).collect();
    format!("allowed_outbound_hosts = [{}]\nsecrets = [\"api\"]\n[config]\nmodel = \"m-1\"\n", list.join(", "))
}

async fn probe(rt: &Runtime, input: Value) -> Execution {
    rt.execute(task("http-probe", input), CallOptions::default()).await
}

fn responses(exec: &Execution) -> Vec<Value> {
    let out: Value = serde_json::from_str(exec.result.as_ref().expect("probe completes")).unwrap();
    out["responses"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_requests_succeed_and_everything_else_is_refused_before_connecting() {
    let (allowed, other) = (Upstream::start().await, Upstream::start().await);
    let (rt, _dir) = probe_runtime(&allow(&[allowed.origin()]), &allowed.origin()).await;
    let https = format!("https://{}/echo", allowed.addr);
    let other_port = format!("http://127.0.0.1:{}/echo", other.addr.port());
    let by_name = format!("http://localhost:{}/echo", allowed.addr.port());
    let exec = probe(
        &rt,
        json!({"requests": [
            {"url": allowed.url("/echo?q=secret-query"), "method": "POST", "body": "hello"},
            {"url": other_port},
            {"url": https},
            {"url": by_name},
        ]}),
    )
    .await;
    let r = responses(&exec);
    assert_eq!(r[0]["status"], 200, "{r:?}");
    assert!(r[0]["body"].as_str().unwrap().contains("hello"), "{r:?}");
    for denied in &r[1..] {
        assert!(denied["error"].as_str().unwrap_or("").to_lowercase().contains("denied"), "{r:?}");
    }
    assert_eq!(allowed.hits(), 1, "only the allowed request reached a server");
    assert_eq!(other.hits(), 0);

    let outcomes: Vec<EgressOutcome> = exec.egress.iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        [EgressOutcome::Response, EgressOutcome::Denied, EgressOutcome::Denied, EgressOutcome::Denied]
    );
    let first = &exec.egress[0];
    assert_eq!((first.method.as_str(), first.path.as_str(), first.status), ("POST", "/echo", Some(200)));
    assert_eq!(first.origin, format!("http://127.0.0.1:{}", allowed.addr.port()));
    assert_eq!(first.bytes_sent, 5);
    assert!(first.bytes_received > 0 && first.duration_ms > 0.0);
    assert_eq!(first.allowed_by.as_deref(), Some(allowed.origin().as_str()));
    assert!(exec.egress[1].reason.as_deref().unwrap().contains("allowed_outbound_hosts"), "{:?}", exec.egress[1]);
}

/// HTTPS to a server whose certificate the operator's CA signed; without that CA the handshake
/// fails and the request is recorded as an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_works_with_the_operators_certificate_authority() {
    let (server, ca) = Upstream::start_tls().await;
    let dir = support::plugins_dir(&["http-probe"]);
    std::fs::write(dir.path().join("http-probe.toml"), allow(&[server.origin()])).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let mut cfg = with_secret(config(dir.path()), &server.origin());
    cfg.tls = OutboundTls::load(Some(&ca_file)).expect("the CA loads");
    let rt = Runtime::start(cfg).await.unwrap();
    let exec =
        probe(&rt, json!({"requests": [{"url": server.url("/echo"), "method": "POST", "body": "over tls"}]})).await;
    let r = responses(&exec);
    assert_eq!(r[0]["status"], 200, "{r:?}");
    assert!(r[0]["body"].as_str().unwrap().contains("over tls"), "{r:?}");
    assert_eq!(exec.egress[0].origin, server.origin());

    let mut cfg = with_secret(config(dir.path()), &server.origin());
    cfg.tls = OutboundTls::default();
    let rt = Runtime::start(cfg).await.unwrap();
    let exec = probe(&rt, json!({"requests": [{"url": server.url("/echo")}]})).await;
    let r = responses(&exec);
    assert!(r[0]["error"].as_str().is_some(), "an unknown CA is refused: {r:?}");
    assert_eq!(exec.egress[0].outcome, EgressOutcome::Error);
    assert!(exec.egress[0].reason.as_deref().unwrap_or("").to_lowercase().contains("tls"), "{:?}", exec.egress[0]);
    assert_eq!(server.hits(), 1, "only the trusted connection reached the handler");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_manifest_means_no_network() {
    let server = Upstream::start().await;
    let dir = support::plugins_dir(&["http-probe"]);
    let rt = Runtime::start(config(dir.path())).await.unwrap();
    let exec = probe(&rt, json!({"requests": [{"url": server.url("/echo")}], "config": true})).await;
    assert!(responses(&exec)[0]["error"].is_string());
    assert_eq!(server.hits(), 0);
    let out: Value = serde_json::from_str(exec.result.as_ref().unwrap()).unwrap();
    assert_eq!(out["config"], json!({}), "no config without a manifest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_host_not_allowed_is_refused() {
    let (allowed, elsewhere) = (Upstream::start().await, Upstream::start().await);
    let (rt, _dir) = probe_runtime(&allow(&[allowed.origin()]), &allowed.origin()).await;
    let to_elsewhere = allowed.url(&format!("/redirect?to={}", elsewhere.url("/echo")));
    let to_allowed = allowed.url(&format!("/redirect?to={}", allowed.url("/echo")));
    let exec = probe(&rt, json!({"requests": [{"url": to_elsewhere}, {"url": to_allowed}]})).await;
    let r = responses(&exec);
    assert!(r[0]["error"].as_str().unwrap_or("").to_lowercase().contains("denied"), "{r:?}");
    assert_eq!(r[1]["status"], 200, "a redirect inside the allow-list is followed: {r:?}");
    assert_eq!(elsewhere.hits(), 0, "the disallowed host received nothing");
    assert_eq!(exec.egress.iter().filter(|e| e.outcome == EgressOutcome::Denied).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_reach_only_their_bound_host_and_never_come_back() {
    let (bound, other) = (Upstream::start().await, Upstream::start().await);
    let (rt, _dir) = probe_runtime(&allow(&[bound.origin(), other.origin()]), &bound.origin()).await;
    let request = |url: String| json!({"url": url, "method": "POST", "secret": "api", "body": "key={secret}"});
    let exec =
        probe(&rt, json!({"requests": [request(bound.url("/echo")), request(other.url("/echo"))], "config": true}))
            .await;
    let out = exec.result.as_ref().unwrap();
    let parsed: Value = serde_json::from_str(out).unwrap();
    let placeholder = parsed["config"]["secret.api"].as_str().expect("placeholder in config").to_string();
    assert_eq!(parsed["config"]["model"], "m-1");
    assert!(!placeholder.contains(SECRET));

    let sent_to_bound = bound.received();
    assert!(sent_to_bound.contains(&format!("authorization: Bearer {SECRET}")), "{sent_to_bound}");
    assert!(sent_to_bound.contains(&format!("key={SECRET}")), "{sent_to_bound}");
    let sent_to_other = other.received();
    assert!(!sent_to_other.contains(SECRET), "{sent_to_other}");
    assert!(sent_to_other.contains(&format!("Bearer {placeholder}")), "{sent_to_other}");
    // The bound host echoed the value back: the plugin sees the placeholder instead.
    assert!(!out.contains(SECRET), "{out}");
    assert!(out.contains(&placeholder), "{out}");
    assert!(!format!("{:?}", exec.egress).contains(SECRET));
    assert!(!format!("{:?}", exec.log).contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_size_and_time_are_limited() {
    let server = Upstream::start().await;
    let dir = support::plugins_dir(&["http-probe"]);
    std::fs::write(dir.path().join("http-probe.toml"), allow(&[server.origin()])).unwrap();
    let mut cfg = with_secret(config(dir.path()), &server.origin());
    cfg.http.max_response_bytes = 1000;
    cfg.http.request_timeout = Duration::from_millis(300);
    let rt = Runtime::start(cfg).await.unwrap();
    let exec = probe(
        &rt,
        json!({"requests": [
            {"url": server.url("/big?n=999")},
            {"url": server.url("/big?n=5000")},
            {"url": server.url("/slow?ms=3000")},
        ]}),
    )
    .await;
    let r = responses(&exec);
    assert_eq!(r[0]["status"], 200, "{r:?}");
    assert!(r[1]["error"].is_string() && r[2]["error"].is_string(), "{r:?}");
    assert_eq!(exec.egress[1].reason.as_deref(), Some("response body larger than 1000 bytes"));
    assert!(exec.egress[2].reason.as_deref().unwrap().contains("within 300 ms"), "{:?}", exec.egress[2]);
    assert!(exec.duration < Duration::from_secs(2), "the slow request was cut at its limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_task_stops_at_once_while_its_request_hangs() {
    let server = Upstream::start().await;
    let (rt, _dir) = probe_runtime(&allow(&[server.origin()]), &server.origin()).await;
    let token = CancellationToken::new();
    let opts =
        CallOptions { timeout: Some(Duration::from_secs(30)), cancel: Some(token.clone()), ..Default::default() };
    let call = tokio::spawn({
        let rt = rt.clone();
        let input = json!({"requests": [{"url": server.url("/slow?ms=20000")}]});
        async move { rt.execute(task("http-probe", input), opts).await }
    });
    eventually("the request to arrive", || server.hits() == 1).await;
    let cancelled_at = Instant::now();
    token.cancel();
    let exec = call.await.unwrap();
    assert!(cancelled_at.elapsed() < Duration::from_millis(500), "stopped in {:?}", cancelled_at.elapsed());
    assert_eq!(exec.result.as_ref().unwrap_err().error_type, "cancelled");
    assert_eq!(exec.egress.len(), 1);
    assert_eq!(exec.egress[0].outcome, EgressOutcome::Aborted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_are_checked_shown_and_hot_reloaded() {
    let server = Upstream::start().await;
    let dir = support::plugins_dir(&["http-probe"]);
    let manifest = dir.path().join("http-probe.toml");
    std::fs::write(&manifest, "max_concurrency = 2\nmemory_limit_mib = 32\n").unwrap();
    let mut cfg = with_secret(config(dir.path()), &server.origin());
    cfg.watch = true;
    let rt = Runtime::start(cfg).await.unwrap();
    let status = &rt.registry().list()[0];
    assert_eq!(status.state, PluginState::Loaded, "{status:?}");
    let policy = status.policy.as_ref().unwrap();
    assert_eq!((policy.max_concurrency, policy.memory_limit_mib), (Some(2), Some(32)));
    assert!(policy.allowed_outbound_hosts.is_empty());

    // A good change is picked up without a restart.
    std::fs::write(&manifest, allow(&[server.origin()])).unwrap();
    eventually("the new manifest", || {
        rt.registry().list()[0].policy.as_ref().is_some_and(|p| !p.allowed_outbound_hosts.is_empty())
    })
    .await;
    let exec = probe(&rt, json!({"requests": [{"url": server.url("/echo")}]})).await;
    assert_eq!(responses(&exec)[0]["status"], 200);

    // A bad one: listed as failed, naming the key; the version before keeps serving.
    std::fs::write(&manifest, "allowed_outbound_hosts = [\"127.0.0.1\"]\n").unwrap();
    eventually("the manifest error", || rt.registry().list()[0].state == PluginState::Failed).await;
    let error = rt.registry().list()[0].error.clone().unwrap();
    assert!(error.contains("`allowed_outbound_hosts[0]`") && error.contains("e.g."), "{error}");
    let exec = probe(&rt, json!({"requests": [{"url": server.url("/echo")}]})).await;
    assert_eq!(responses(&exec)[0]["status"], 200, "the previous version still serves");

    // An unknown secret name is refused the same way.
    std::fs::write(&manifest, "secrets = [\"nope\"]\n").unwrap();
    eventually("the secret error", || {
        rt.registry().list()[0].error.as_deref().is_some_and(|e| e.contains("`secrets[0]` = \"nope\""))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_manifest_keeps_a_new_agent_type_out_of_service() {
    let dir = support::plugins_dir(&["http-probe"]);
    std::fs::write(dir.path().join("http-probe.toml"), "timeout_s = \"soon\"\n").unwrap();
    let rt = Runtime::start(config(dir.path())).await.unwrap();
    let status = &rt.registry().list()[0];
    assert_eq!(status.state, PluginState::Failed);
    assert!(status.error.as_deref().unwrap().contains("http-probe.toml"), "{status:?}");
    assert!(!rt.registry().has_executor("http-probe"));
}

#[test]
fn plugin_check_prints_the_manifest_policy_next_to_the_imports() {
    let dir = support::plugins_dir(&["http-probe"]);
    let file = dir.path().join("http-probe.wasm");
    let check = || {
        let out =
            std::process::Command::new(env!("CARGO_BIN_EXE_hyphae")).args(["plugin", "check"]).arg(&file).output();
        let out = out.unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (ok, stdout) = check();
    assert!(ok && stdout.contains("no manifest: no network"), "{stdout}");
    assert!(stdout.contains("wasi:http/outgoing-handler@0.2"), "{stdout}");
    let manifest =
        "allowed_outbound_hosts = [\"https://api.example.com\"]\nsecrets = [\"api\"]\n[config]\nmodel = \"m\"\n";
    std::fs::write(dir.path().join("http-probe.toml"), manifest).unwrap();
    let (ok, stdout) = check();
    assert!(ok, "{stdout}");
    assert!(stdout.contains("allowed_outbound_hosts: https://api.example.com"), "{stdout}");
    assert!(stdout.contains("secrets: api") && stdout.contains("config: model"), "{stdout}");
    std::fs::write(dir.path().join("http-probe.toml"), "max_concurrency = -1\n").unwrap();
    let (ok, stdout) = check();
    assert!(!ok && stdout.contains("`max_concurrency` = -1"), "{stdout}");
}

/// `examples/agents/NAME.toml` pointed at `server` instead of a local Ollama.
fn example_manifest(name: &str, server: &Upstream) -> String {
    let text = std::fs::read_to_string(support::repo_root().join(format!("examples/agents/{name}.toml"))).unwrap();
    text.replace("http://127.0.0.1:11434", &server.origin())
}

/// The research -> draft -> review example, run by the binary over HTTP against an
/// OpenAI-compatible server on 127.0.0.1: egress events with token usage, the key sent to that
/// server only, and found nowhere afterwards: not in the database, the logs or any API response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_pipeline_runs_through_the_binary_and_the_secret_leaks_nowhere() {
    let server = Upstream::start().await;
    let work = tempfile::tempdir().unwrap();
    let plugins = work.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for name in ["research", "draft", "review"] {
        std::fs::write(plugins.join(format!("{name}.wasm")), support::component("llm-chat")).unwrap();
        std::fs::write(plugins.join(format!("{name}.toml")), example_manifest(name, &server)).unwrap();
    }
    let config = work.path().join("hyphae.toml");
    let example = std::fs::read_to_string(support::repo_root().join("examples/agents/hyphae.toml")).unwrap();
    let example = example.replace("http://127.0.0.1:11434", &server.origin());
    std::fs::write(&config, example.replace("plugins_dir = \"target/llm-agents\"\n", "")).unwrap();
    let db = work.path().join("hyphae.db");
    let port = support::free_port();
    let (out, err) = (work.path().join("stdout.log"), work.path().join("stderr.log"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hyphae"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--db")
        .arg(&db)
        .arg("--plugins-dir")
        .arg(&plugins)
        .arg("--config")
        .arg(&config)
        .arg("--cache-dir")
        .arg(support::repo_root().join("target").join("test-plugin-cache"))
        .env("LLM_API_KEY", SECRET)
        .env("RUST_LOG", "debug,hyper=info,sqlx=info")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    support::wait_ready(port).await;

    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(support::repo_root().join("examples/llm-pipeline.json")).unwrap(),
    )
    .unwrap();
    let mut answers = String::new();
    let created: Value =
        client.post(format!("{base}/v1/workflows")).json(&spec).send().await.unwrap().json().await.unwrap();
    let id = created["workflow_id"].as_str().expect("workflow id").to_string();
    let started = Instant::now();
    let state = loop {
        let state: Value = client.get(format!("{base}/v1/workflows/{id}")).send().await.unwrap().json().await.unwrap();
        if state["status"] != "running" && state["status"] != "pending" {
            break state;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the workflow did not end: {state:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(state["status"], "completed", "{state:#}");
    let review = state["tasks"].as_array().unwrap().iter().find(|t| t["task_id"] == "review").unwrap();
    assert!(review["output"]["content"].as_str().unwrap().starts_with("reply to: Review this draft."), "{review:#}");
    assert_eq!(review["output"]["usage"]["completion_tokens"], 5);

    let events: Value =
        client.get(format!("{base}/v1/workflows/{id}/events?type=egress")).send().await.unwrap().json().await.unwrap();
    let egress = events["items"].as_array().expect("events list");
    assert_eq!(egress.len(), 3, "{events:#}");
    for e in egress {
        assert_eq!(e["status"], "response", "{e:#}");
        assert_eq!(e["metadata"]["status"], 200);
        assert_eq!(e["metadata"]["path"], "/v1/chat/completions");
        assert_eq!(e["metadata"]["llm_usage"]["completion_tokens"], 5, "{e:#}");
    }
    assert!(server.received().contains(&format!("authorization: Bearer {SECRET}")));
    let stats: Value =
        client.get(format!("{base}/v1/stats?workflow_id={id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["egress"]["requests"], 3, "{stats:#}");
    assert_eq!(stats["egress"]["llm_completion_tokens"], 15, "{stats:#}");
    assert_eq!(stats["egress_by_agent_type"]["review"]["llm_completion_tokens"], 5, "{stats:#}");
    assert!(stats["egress"]["llm_prompt_tokens"].as_u64().unwrap() > 10, "{stats:#}");
    for path in [
        format!("/v1/workflows/{id}"),
        format!("/v1/workflows/{id}/events"),
        format!("/v1/workflows/{id}/timeline"),
        "/v1/plugins".to_string(),
        "/v1/stats".to_string(),
        "/metrics".to_string(),
    ] {
        let text = client.get(format!("{base}{path}")).send().await.unwrap().text().await.unwrap();
        assert!(!text.contains(SECRET), "{path} shows the secret");
        answers.push_str(&text);
    }
    assert!(answers.contains("hyphae_egress_requests_total{agent_type=\"draft\""), "metrics count egress");
    assert!(answers.contains("\"allowed_outbound_hosts\""), "plugins show their policy");

    child.kill().unwrap();
    child.wait().unwrap();
    for file in [out, err] {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(SECRET), "{} shows the secret", file.display());
    }
    for file in std::fs::read_dir(work.path()).unwrap().flatten() {
        if file.file_name().to_string_lossy().starts_with("hyphae.db") {
            let bytes = std::fs::read(file.path()).unwrap();
            assert!(memchr_find(&bytes, SECRET.as_bytes()).is_none(), "{} holds the secret", file.path().display());
        }
    }
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
