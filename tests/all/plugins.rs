//! The plugin runtime against the real example components (`plugins/`).

use std::time::{Duration, Instant};

use hyphae::plugins::{check_file, CallOptions, PluginError, PluginState, Role, Runtime, RuntimeConfig, Validation};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::support::{self, config, eventually, plugins_dir, task};

fn output(exec: &hyphae::plugins::Execution) -> Value {
    match &exec.result {
        Ok(out) => serde_json::from_str(out).expect("output is JSON"),
        Err(f) => panic!("call failed: {f:?}"),
    }
}

fn failure(exec: &hyphae::plugins::Execution) -> &hyphae::plugins::TaskFailure {
    exec.result.as_ref().expect_err("call should fail")
}

async fn runtime(agent_types: &[&str]) -> (Runtime, tempfile::TempDir) {
    let dir = plugins_dir(agent_types);
    let rt = Runtime::start(config(dir.path())).await.expect("runtime starts");
    (rt, dir)
}

fn timeout(ms: u64) -> CallOptions {
    CallOptions { timeout: Some(Duration::from_millis(ms)), cancel: None, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_runs() {
    let all = ["echo", "fib", "text-stats", "testkit", "schema-validator", "reviewer"];
    let (rt, _dir) = runtime(&all).await;
    assert!(rt.registry().ready());
    for status in rt.registry().list() {
        assert_eq!(status.state, PluginState::Loaded, "{status:?}");
        assert!(status.digest.starts_with("sha256:"), "{status:?}");
    }

    let exec = rt.execute(task("echo", json!({"hello": "world"})), CallOptions::default()).await;
    assert_eq!(output(&exec)["input"], json!({"hello": "world"}));
    assert_eq!(*exec.digest, rt.registry().digest("echo").unwrap());

    let exec = rt.execute(task("fib", json!({"n": 20})), CallOptions::default()).await;
    assert_eq!(output(&exec)["value"], json!(6765));

    let text = "Rust is fast. Rust is safe.";
    let exec = rt.execute(task("text-stats", json!({"text": text})), CallOptions::default()).await;
    assert_eq!(output(&exec)["word_count"], json!(6));

    let exec = rt.execute(task("testkit", json!({"action": "echo"})), CallOptions::default()).await;
    assert_eq!(output(&exec)["task_id"], json!("task-1"));

    let exec = rt.execute(task("reviewer", json!({"text": "This is really very good."})), CallOptions::default()).await;
    assert!(output(&exec).get("verdict").is_some(), "{:?}", exec.result);

    // Validators: the schema validator, and the reviewer (executor and validator in one).
    assert!(rt.registry().has_validator("schema-validator"));
    assert!(rt.registry().has_validator("reviewer"));
    let handoff = json!({
        "target": {"agent_id": "a", "agent_type": "schema-validator",
                   "requirements": {"schema": {"type": "object", "required": ["task_description"]},
                                    "applies_to": "/context"}},
        "context": {}
    });
    match rt.validate("schema-validator", &handoff.to_string(), CallOptions::default()).await {
        Validation::Rejected(issues) => assert!(!issues.is_empty()),
        other => panic!("expected a rejection, got {other:?}"),
    }
    let mut ok = handoff.clone();
    ok["context"] = json!({"task_description": "x"});
    let verdict = rt.validate("schema-validator", &ok.to_string(), CallOptions::default()).await;
    assert!(matches!(verdict, Validation::Accepted), "{verdict:?}");
    let empty = json!({"source": {"agent_id": "s"}, "context": {"previous_results": []}});
    let verdict = rt.validate("reviewer", &empty.to_string(), CallOptions::default()).await;
    assert!(matches!(verdict, Validation::Rejected(_)), "{verdict:?}");
    let verdict = rt.validate("echo", "{}", CallOptions::default()).await;
    assert!(matches!(verdict, Validation::NoValidator), "{verdict:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_agent_type_is_no_plugin() {
    let (rt, _dir) = runtime(&["echo"]).await;
    let exec = rt.execute(task("nobody", json!({})), CallOptions::default()).await;
    let f = failure(&exec);
    assert_eq!(f.error_type, "no_plugin");
    assert!(!f.retryable);
    assert!(exec.digest.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_errors_logs_and_progress_reach_the_host() {
    let (rt, _dir) = runtime(&["testkit"]).await;
    let exec = rt
        .execute(task("testkit", json!({"action": "fatal", "error_type": "bad_thing"})), CallOptions::default())
        .await;
    let f = failure(&exec);
    assert_eq!(f.error_type, "bad_thing");
    assert!(!f.retryable);
    let exec = rt.execute(task("testkit", json!({"action": "error"})), CallOptions::default()).await;
    assert!(failure(&exec).retryable);

    let exec = rt.execute(task("testkit", json!({"action": "progress", "steps": 4})), CallOptions::default()).await;
    assert!(exec.result.is_ok(), "{:?}", exec.result);
    let levels: Vec<&str> = exec.log.iter().map(|l| l.level.as_str()).collect();
    assert!(levels.contains(&"progress"), "{levels:?}");
    assert!(levels.contains(&"error"), "{levels:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_loop_is_stopped_at_its_deadline() {
    let (rt, _dir) = runtime(&["testkit", "echo"]).await;
    let start = Instant::now();
    let exec = rt.execute(task("testkit", json!({"action": "loop"})), timeout(300)).await;
    let elapsed = start.elapsed();
    let f = failure(&exec);
    assert_eq!(f.error_type, "timeout");
    assert!(f.retryable);
    assert!(elapsed <= Duration::from_millis(400), "stopped after {elapsed:?}");
    // The host goes on.
    let exec = rt.execute(task("echo", json!(1)), CallOptions::default()).await;
    assert_eq!(output(&exec)["input"], json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleeping_guest_is_stopped_at_its_deadline_and_cancellation_stops_a_loop() {
    let (rt, _dir) = runtime(&["testkit"]).await;
    let exec = rt.execute(task("testkit", json!({"action": "sleep", "ms": 5000})), timeout(200)).await;
    assert_eq!(failure(&exec).error_type, "timeout");

    let token = CancellationToken::new();
    let opts =
        CallOptions { timeout: Some(Duration::from_secs(10)), cancel: Some(token.clone()), ..Default::default() };
    let call = tokio::spawn({
        let rt = rt.clone();
        async move { rt.execute(task("testkit", json!({"action": "loop"})), opts).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    token.cancel();
    let exec = call.await.unwrap();
    assert_eq!(failure(&exec).error_type, "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_stops_at_the_limit_and_the_host_continues() {
    let dir = plugins_dir(&["testkit"]);
    let mut cfg = config(dir.path());
    cfg.memory_limits.insert("testkit".into(), 32 << 20);
    let rt = Runtime::start(cfg).await.unwrap();
    let exec = rt.execute(task("testkit", json!({"action": "alloc", "mib": 256})), CallOptions::default()).await;
    let f = failure(&exec);
    assert_eq!(f.error_type, "out_of_memory", "{f:?}");
    assert!(f.message.contains("32 MiB"), "{}", f.message);
    let exec = rt.execute(task("testkit", json!({"action": "alloc", "mib": 4})), CallOptions::default()).await;
    assert!(exec.result.is_ok(), "{:?}", exec.result);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_message_is_in_the_failure() {
    let (rt, _dir) = runtime(&["testkit"]).await;
    let exec = rt.execute(task("testkit", json!({"action": "panic", "message": "boom"})), CallOptions::default()).await;
    let f = failure(&exec);
    assert_eq!(f.error_type, "trap");
    assert!(f.message.starts_with("plugin 'testkit' trapped: "), "{}", f.message);
    assert!(f.message.contains("panicked at") && f.message.contains("boom"), "{}", f.message);
    let detail = f.detail.as_ref().unwrap();
    assert!(detail["trap"].is_string() && detail["backtrace"].is_string(), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_output_is_refused() {
    let dir = plugins_dir(&["testkit"]);
    let mut cfg = config(dir.path());
    cfg.max_output_bytes = 1 << 20;
    let rt = Runtime::start(cfg).await.unwrap();
    let exec = rt.execute(task("testkit", json!({"action": "output", "mib": 2})), CallOptions::default()).await;
    let f = failure(&exec);
    assert_eq!(f.error_type, "output_too_large");
    assert!(!f.retryable);
}

/// Small components that the host must refuse, built from WAT text.
fn bad_files() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let wat = |text: &str| wat::parse_str(text).expect("valid WAT");
    vec![
        ("not-wasm", b"#!/bin/sh\necho hi\n".to_vec(), "is not a WebAssembly binary"),
        ("core", wat("(module (func (export \"f\")))"), "is a core WebAssembly module, not a component"),
        ("empty", wat("(component)"), "exports neither `hyphae:plugin/executor@0.1.x`"),
        (
            "wrong-shape",
            wat(r#"(component
                (core module $m (func (export "f")))
                (core instance $i (instantiate $m))
                (func $f (canon lift (core func $i "f")))
                (instance $e (export "execute" (func $f)))
                (export "hyphae:plugin/executor@0.1.0" (instance $e)))"#),
            "exports `hyphae:plugin/executor@0.1.0` with the wrong shape",
        ),
        (
            "alien-import",
            wat(r#"(component (import "acme:secrets/vault@1.0.0" (instance)))"#),
            "imports `acme:secrets/vault@1.0.0`, which the host does not provide",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_are_refused_with_their_reason() {
    let dir = plugins_dir(&["echo"]);
    for (name, bytes, _) in bad_files() {
        std::fs::write(dir.path().join(format!("{name}.wasm")), bytes).unwrap();
    }
    let rt = Runtime::start(config(dir.path())).await.unwrap();
    assert!(rt.registry().has_executor("echo"));
    let list = rt.registry().list();
    for (name, _, reason) in bad_files() {
        let status = list.iter().find(|s| s.agent_type == name).expect(name);
        assert_eq!(status.state, PluginState::Failed, "{status:?}");
        let error = status.error.as_deref().unwrap();
        assert!(error.contains(reason), "{name}: {error}");
        assert!(!rt.registry().has_executor(name));

        let report = check_file(&dir.path().join(format!("{name}.wasm")), None).await.unwrap();
        let problem = report.problem.expect("a problem").to_string();
        assert!(problem.contains(reason), "{name}: {problem}");
    }
    // The host keeps serving.
    let exec = rt.execute(task("echo", json!(2)), CallOptions::default()).await;
    assert_eq!(output(&exec)["input"], json!(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_roles_imports_and_exports() {
    let report = check_file(&support::plugins_dist().join("reviewer.wasm"), None).await.unwrap();
    assert!(report.problem.is_none(), "{:?}", report.problem);
    assert_eq!(report.agent_type, "reviewer");
    assert_eq!(report.world, "agent-plugin");
    assert_eq!(report.roles, vec![Role::Executor, Role::Validator, Role::Metadata]);
    assert!(report.imports.iter().any(|i| i == "hyphae:plugin/host@0.1.0"));
    assert!(report.exports.iter().any(|e| e == "hyphae:plugin/validator@0.1.0"));
    assert!(report.digest.starts_with("sha256:"));
}

#[test]
fn cli_check_prints_the_report_and_fails_on_a_problem() {
    let exe = env!("CARGO_BIN_EXE_hyphae");
    let out = std::process::Command::new(exe)
        .args(["plugin", "check"])
        .arg(support::plugins_dist().join("echo.wasm"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("agent type: echo") && stdout.contains("executor-plugin"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, wat::parse_str("(module)").unwrap()).unwrap();
    let out = std::process::Command::new(exe).args(["plugin", "check"]).arg(&core).output().unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("wasm-tools component new"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swap_keeps_calls_in_flight_and_remove_unloads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("swap.wasm");
    std::fs::write(&path, support::component("testkit")).unwrap();
    let mut cfg = config(dir.path());
    cfg.watch = true;
    let rt = Runtime::start(cfg).await.unwrap();
    let old = rt.registry().digest("swap").expect("loaded");

    let in_flight = tokio::spawn({
        let rt = rt.clone();
        async move { rt.execute(task("swap", json!({"action": "sleep", "ms": 700})), CallOptions::default()).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let tmp = dir.path().join("swap.tmp");
    std::fs::write(&tmp, support::component("echo")).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    eventually("the new version", || rt.registry().digest("swap").is_some_and(|d| d != old)).await;
    let new = rt.registry().digest("swap").unwrap();
    let exec = rt.execute(task("swap", json!(3)), CallOptions::default()).await;
    assert_eq!(*exec.digest, new);
    assert_eq!(output(&exec)["input"], json!(3));

    let old_exec = in_flight.await.unwrap();
    assert!(old_exec.result.is_ok(), "{:?}", old_exec.result);
    assert_eq!(*old_exec.digest, old);

    std::fs::remove_file(&path).unwrap();
    eventually("the unload", || !rt.registry().has_executor("swap")).await;
    let exec = rt.execute(task("swap", json!(4)), CallOptions::default()).await;
    assert_eq!(failure(&exec).error_type, "no_plugin");
    assert!(rt.registry().list().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validator_files_pair_with_any_agent_type_and_install_works() {
    let dir = plugins_dir(&["echo"]);
    std::fs::write(dir.path().join("echo.validator.wasm"), support::component("schema-validator")).unwrap();
    let rt = Runtime::start(config(dir.path())).await.unwrap();
    assert!(rt.registry().has_validator("echo"));
    let handoff = json!({"target": {"requirements": {"schema": {"type": "string"}}}});
    let verdict = rt.validate("echo", &handoff.to_string(), CallOptions::default()).await;
    assert!(matches!(verdict, Validation::Rejected(_)), "{verdict:?}");

    let status = rt.registry().install("fresh", &support::component("fib")).await.unwrap();
    assert_eq!(status.state, PluginState::Loaded);
    assert!(dir.path().join("fresh.wasm").is_file());
    let exec = rt.execute(task("fresh", json!({"n": 10})), CallOptions::default()).await;
    assert_eq!(output(&exec)["value"], json!(55));

    let err = rt.registry().install("broken", b"nope").await.unwrap_err();
    assert!(matches!(err, PluginError::NotWasm { .. }), "{err}");
    assert!(!dir.path().join("broken.wasm").exists());
    let err = rt.registry().install("../x", &support::component("fib")).await.unwrap_err();
    assert!(matches!(err, PluginError::InvalidAgentType { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_succeed() {
    let dir = plugins_dir(&["echo"]);
    let rt = Runtime::start(RuntimeConfig { max_instances: 64, ..config(dir.path()) }).await.unwrap();
    let calls: Vec<_> = (0..1000)
        .map(|i| {
            let rt = rt.clone();
            tokio::spawn(async move { rt.execute(task("echo", json!(i)), CallOptions::default()).await })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        let exec = call.await.unwrap();
        assert_eq!(output(&exec)["input"], json!(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_plugins_are_cached_and_bad_entries_rebuilt() {
    let dir = plugins_dir(&["fib"]);
    let cache = tempfile::tempdir().unwrap();
    let cfg = RuntimeConfig { cache_dir: Some(cache.path().to_path_buf()), ..config(dir.path()) };
    let load = || async {
        let rt = Runtime::start(cfg.clone()).await.unwrap();
        let status = rt.registry().list().remove(0);
        assert_eq!(status.state, PluginState::Loaded, "{status:?}");
        let exec = rt.execute(task("fib", json!({"n": 12})), CallOptions::default()).await;
        assert_eq!(output(&exec)["value"], json!(144));
        status
    };
    let first = load().await;
    assert!(!first.from_cache);
    let second = load().await;
    assert!(second.from_cache);
    assert_eq!(first.digest, second.digest);

    let entries: Vec<_> = std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];

    // Corrupted: detected by its checksum, ignored, rebuilt.
    let mut bytes = std::fs::read(entry).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(entry, &bytes).unwrap();
    assert!(!load().await.from_cache);
    assert!(load().await.from_cache);

    // Incompatible: an artifact of another engine configuration, with a valid checksum.
    let other = wasmtime::Engine::default();
    let artifact = other.precompile_component(&support::component("fib")).unwrap();
    let mut data = artifact.clone();
    use sha2::Digest;
    data.extend_from_slice(&sha2::Sha256::digest(&artifact));
    std::fs::write(entry, &data).unwrap();
    assert!(!load().await.from_cache);
    assert!(load().await.from_cache);
}

/// A plugins directory given as a relative path (as the default `plugins/dist` is), watched:
/// the watcher's absolute paths and the host's own reads must not list a file twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_watched_directory_lists_each_file_once() {
    let dir = support::plugins_dir(&["echo", "fib"]);
    let cwd = std::env::current_dir().unwrap();
    let up = "../".repeat(cwd.components().count() - 1);
    let relative = std::path::PathBuf::from(up).join(dir.path().strip_prefix("/").unwrap());
    let mut cfg = config(&relative);
    cfg.watch = true;
    let rt = Runtime::start(cfg).await.unwrap();
    std::fs::read(dir.path().join("echo.wasm")).unwrap();
    let tmp = dir.path().join("fib.tmp");
    std::fs::write(&tmp, support::component("echo")).unwrap();
    std::fs::rename(&tmp, dir.path().join("fib.wasm")).unwrap();
    eventually("fib replaced", || rt.registry().digest("fib") == rt.registry().digest("echo")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let list = rt.registry().list();
    assert_eq!(list.len(), 2, "{list:#?}");
    assert!(list.iter().all(|p| p.state == PluginState::Loaded), "{list:#?}");
}

/// `echo` as if built against another release of the WIT package: every `hyphae:plugin` name's
/// version rewritten in place (same length, so the binary stays valid).
fn echo_built_against(version: &str) -> Vec<u8> {
    assert_eq!(version.len(), "0.1.0".len());
    let mut bytes = support::component("echo");
    for interface in ["", "/host", "/types", "/executor", "/metadata"] {
        let from = format!("hyphae:plugin{interface}@0.1.0");
        let to = format!("hyphae:plugin{interface}@{version}");
        let mut at = 0;
        while let Some(i) = bytes[at..].windows(from.len()).position(|w| w == from.as_bytes()) {
            bytes[at + i..at + i + to.len()].copy_from_slice(to.as_bytes());
            at += i + to.len();
        }
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_of_any_0_1_release_load_and_other_minors_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("newer.wasm"), echo_built_against("0.1.9")).unwrap();
    std::fs::write(dir.path().join("next.wasm"), echo_built_against("0.2.0")).unwrap();
    let rt = Runtime::start(config(dir.path())).await.unwrap();
    let exec = rt.execute(task("newer", json!({"v": 1})), CallOptions::default()).await;
    assert_eq!(output(&exec)["input"], json!({"v": 1}));
    let next = rt.registry().list().into_iter().find(|s| s.agent_type == "next").unwrap();
    assert_eq!(next.state, PluginState::Failed);
    let error = next.error.unwrap();
    assert!(error.contains("hyphae:plugin/host@0.2.0") && error.contains("hyphae:plugin/host@0.1.*"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_keeps_under_its_size_and_evicts_the_least_recently_used() {
    let cache = tempfile::tempdir().unwrap();
    let entries = || -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    };
    let load_into = |cache: std::path::PathBuf, agent_type: &'static str, max_bytes: u64| async move {
        let dir = plugins_dir(&[agent_type]);
        let cfg = RuntimeConfig { cache_dir: Some(cache), cache_max_bytes: max_bytes, ..config(dir.path()) };
        let rt = Runtime::start(cfg).await.unwrap();
        rt.registry().list().remove(0)
    };
    let load = |agent_type: &'static str, max_bytes: u64| load_into(cache.path().to_path_buf(), agent_type, max_bytes);
    let scratch = tempfile::tempdir().unwrap();
    load_into(scratch.path().to_path_buf(), "text-stats", u64::MAX).await;
    let stats_size: u64 =
        std::fs::read_dir(scratch.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    let echo = load("echo", u64::MAX).await.digest;
    let fib = load("fib", u64::MAX).await.digest;
    assert_eq!(entries().len(), 2);
    let size = |digest: &str| {
        let hex = digest.trim_start_matches("sha256:");
        let name = entries().into_iter().find(|n| n.starts_with(hex)).unwrap();
        std::fs::metadata(cache.path().join(name)).unwrap().len()
    };
    let (echo_size, fib_size) = (size(&echo), size(&fib));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(load("echo", u64::MAX).await.from_cache, "a hit refreshes echo's entry");
    // Room for all three but one byte: text-stats is written, fib (least recently used) goes.
    let stats = load("text-stats", echo_size + fib_size + stats_size - 1).await;
    assert!(!stats.from_cache);
    let left = entries();
    let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
    assert!(left.iter().any(|n| n.starts_with(&hex(&echo))), "{left:?}");
    assert!(left.iter().any(|n| n.starts_with(&hex(&stats.digest))), "{left:?}");
    assert!(!left.iter().any(|n| n.starts_with(&hex(&fib))), "fib was least recently used: {left:?}");
    // A limit below one entry keeps the entry just written.
    load("fib", 1).await;
    assert_eq!(entries().len(), 1, "{:?}", entries());
}

/// A new user's first start: `hyphae serve --plugins-dir plugins` from the directory holding it.
/// Every plugin is loaded once, and nothing is reported as failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_a_relative_plugins_dir_loads_each_file_once() {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("plugins")).unwrap();
    for name in ["echo", "fib"] {
        std::fs::write(work.path().join(format!("plugins/{name}.wasm")), support::component(name)).unwrap();
    }
    let port = support::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hyphae"))
        .args(["serve", "--plugins-dir", "plugins", "--db", "hyphae.db", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(work.path())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    support::wait_ready(port).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready: Value = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await.unwrap().json().await.unwrap();
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(ready["components"]["plugins"]["detail"]["failed"], json!([]), "{ready:#}\n{printed}");
    assert_eq!(ready["components"]["plugins"]["detail"]["loaded"], 2, "{ready:#}");
    assert!(!printed.contains("FAILED") && !printed.contains("already served"), "{printed}");
}
