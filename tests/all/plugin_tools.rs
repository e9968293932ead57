//! The plugin developer's tools: `hyphae plugin call`, `plugin new` and `plugin build`, and the
//! SDKs' own copies of the contract.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::support;
use crate::upstream::Upstream;

fn hyphae() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hyphae"));
    command.env("XDG_CACHE_HOME", support::repo_root().join("target").join("test-plugin-cache"));
    command
}

/// `hyphae plugin call FILE ARGS... --json`: the exit code and the printed report.
fn call(file: &Path, args: &[&str]) -> (i32, Value) {
    let out = hyphae().args(["plugin", "call"]).arg(file).args(args).arg("--json").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), report)
}

fn dist(agent_type: &str) -> PathBuf {
    support::plugins_dist().join(format!("{agent_type}.wasm"))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn call_prints_output_logs_duration_and_memory_and_exits_by_outcome() {
    let (code, report) = call(&dist("fib"), &["--input", r#"{"n": 10}"#]);
    assert_eq!((code, &report["outcome"], &report["output"]["value"]), (0, &json!("completed"), &json!(55)));
    assert!(report["duration_ms"].as_f64().unwrap() > 0.0, "{report:#}");
    let peak = report["peak_memory_bytes"].as_u64().unwrap();
    assert!(peak >= 64 << 10 && peak < 64 << 20, "{report:#}");
    assert!(report["digest"].as_str().unwrap().starts_with("sha256:"));

    let (code, report) = call(&dist("fib"), &["--input", r#"{"n": 100}"#]);
    assert_eq!((code, &report["error"]["error_type"]), (1, &json!("invalid_input")), "{report:#}");

    let (code, report) = call(&dist("testkit"), &["--input", r#"{"action": "error"}"#]);
    assert_eq!(code, 2, "{report:#}");

    let out = hyphae().args(["plugin", "call"]).arg(dist("echo")).args(["--input", "{not json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(65));
    assert!(text(&out).contains("--input is not JSON"), "{}", text(&out));
}

#[test]
fn call_hands_previous_results_with_real_handoffs_and_text_output() {
    let dir = tempfile::tempdir().unwrap();
    let previous = dir.path().join("previous.json");
    std::fs::write(&previous, r#"[{"task_id": "fetch", "agent_type": "web", "output": {"text": "one two. three"}}]"#)
        .unwrap();
    let (code, report) = call(&dist("echo"), &["--previous", previous.to_str().unwrap()]);
    assert_eq!(code, 0, "{report:#}");
    let result = &report["output"]["previous_results"][0];
    assert_eq!((&result["task_id"], &result["agent"]["agent_type"]), (&json!("fetch"), &json!("web")), "{report:#}");

    let (code, report) = call(&dist("text-stats"), &["--previous", previous.to_str().unwrap()]);
    assert_eq!((code, &report["output"]["word_count"]), (0, &json!(3)), "{report:#}");
    assert!(report["log"][0]["message"].as_str().unwrap().contains("previous_results"), "{report:#}");

    // Without --json: the output on stdout, the log and a summary on stderr.
    let out = hyphae().args(["plugin", "call"]).arg(dist("fib")).args(["--input", r#"{"n": 5}"#]).output().unwrap();
    let stdout: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stdout["value"], 5);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("completed in") && stderr.contains("peak memory"), "{stderr}");
}

#[test]
fn call_validates_a_handoff() {
    let dir = tempfile::tempdir().unwrap();
    let handoff = dir.path().join("handoff.json");
    std::fs::write(&handoff, "{}").unwrap();
    let (code, report) = call(&dist("schema-validator"), &["--validate", handoff.to_str().unwrap()]);
    assert_eq!((code, &report["outcome"]), (0, &json!("accepted")), "{report:#}");
    let schema = json!({"target": {"requirements": {"schema": {"type": "object", "required": ["x"]}}}});
    std::fs::write(&handoff, schema.to_string()).unwrap();
    let (code, report) = call(&dist("schema-validator"), &["--validate", handoff.to_str().unwrap()]);
    assert_eq!((code, &report["outcome"]), (1, &json!("rejected")), "{report:#}");
    assert!(!report["detail"].as_array().unwrap().is_empty(), "{report:#}");

    let out = hyphae().args(["plugin", "call"]).arg(dist("fib")).arg("--validate").arg(&handoff).output().unwrap();
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    assert!(text(&out).contains("exports no validator"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_grants_hosts_config_and_secrets_only_from_the_command_line() {
    let server = Upstream::start().await;
    let probe = json!({"requests": [{"url": server.url("/echo"), "secret": "key"}], "config": true}).to_string();
    let file = dist("http-probe");
    let run = |args: Vec<String>| {
        let file = file.clone();
        let probe = probe.clone();
        tokio::task::spawn_blocking(move || {
            let mut all = vec!["--input".to_string(), probe];
            all.extend(args);
            call(&file, &all.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };
    let (code, denied) = run(vec![]).await.unwrap();
    assert_eq!(code, 0, "{denied:#}");
    assert_eq!(denied["output"]["responses"][0]["error"], "missing_secret", "{denied:#}");
    assert_eq!(server.hits(), 0);

    let granted = vec![
        "--allow-host".into(),
        server.origin(),
        "--config".into(),
        "model=m1".into(),
        "--secret".into(),
        "key=HYPHAE_TEST_CALL_KEY".into(),
    ];
    let mut command_env = granted.clone();
    command_env.push("--timeout-s".into());
    command_env.push("20".into());
    std::env::set_var("HYPHAE_TEST_CALL_KEY", "s3cret-value-for-call");
    let (code, report) = run(command_env).await.unwrap();
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["output"]["responses"][0]["status"], 200, "{report:#}");
    assert_eq!(report["output"]["config"]["model"], "m1", "{report:#}");
    assert_eq!(report["egress_requests"], 1);
    assert!(server.received().contains("Bearer s3cret-value-for-call"), "the host put the key in");
    assert!(!report.to_string().contains("s3cret-value-for-call"), "the key never comes back: {report:#}");
}

/// `plugin new --lang rust` makes a project outside the repository that builds, tests and runs.
#[test]
fn a_new_rust_project_builds_and_runs_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("greeter");
    let out = hyphae().args(["plugin", "new", "greeter", "--lang", "rust", "--dir"]).arg(&project).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // The wasm build shares the example plugins' target directory: std and the SDK are built once.
    let out = hyphae()
        .args(["plugin", "build"])
        .arg(&project)
        .env("CARGO_TARGET_DIR", support::repo_root().join("plugins/target"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("status:     ok, the host can load it"), "{}", text(&out));
    let (code, report) = call(&project.join("dist/greeter.wasm"), &["--input", r#"{"message": "héllo"}"#]);
    assert_eq!((code, &report["output"]["length"]), (0, &json!(5)), "{report:#}");

    let again = hyphae().args(["plugin", "new", "greeter", "--dir"]).arg(&project).output().unwrap();
    assert_eq!(again.status.code(), Some(73), "{}", text(&again));
}

#[test]
fn build_says_what_a_directory_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let out = hyphae().args(["plugin", "build"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(66));
    assert!(text(&out).contains("plugin new NAME --lang"), "{}", text(&out));
}

/// Files under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn sdk_wit_copies_equal_the_contract() {
    let root = support::repo_root();
    let contract = root.join("wit");
    for copy in ["plugins/sdk/wit", "plugins/python/hyphae_plugin/wit", "plugins/js/wit"] {
        let copy = root.join(copy);
        assert_eq!(files(&copy), files(&contract), "{} lists other files than wit/", copy.display());
        for file in files(&contract) {
            let (a, b) = (std::fs::read(contract.join(&file)).unwrap(), std::fs::read(copy.join(&file)).unwrap());
            assert!(a == b, "{} differs from wit/: copy wit/ there again", copy.join(&file).display());
        }
    }
}
