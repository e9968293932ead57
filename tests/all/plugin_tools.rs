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
    assert!((64 << 10..64 << 20).contains(&peak), "{report:#}");
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

/// The Python and JavaScript text examples, built from source by their SDKs' build scripts, run in
/// the host's sandbox: the same statistics as the Rust `text-stats`, errors as task errors.
#[test]
fn python_and_js_examples_run_in_the_sandbox() {
    let input = r#"{"text": "The quick fox. The lazy dog! Dogs run", "keywords": ["the"]}"#;
    for agent_type in ["py-text", "js-text"] {
        let (code, report) = call(&dist(agent_type), &["--input", input]);
        assert_eq!(code, 0, "{agent_type}: {report:#}");
        let output = &report["output"];
        assert_eq!(
            (&output["word_count"], &output["sentence_count"]),
            (&json!(8), &json!(3)),
            "{agent_type}: {report:#}"
        );
        assert_eq!(output["keyword_counts"]["the"], 2, "{agent_type}: {report:#}");
        assert_eq!(output["top_keywords"][0]["word"], "dog", "{agent_type}: {report:#}");
        assert!(report["log"][0]["message"].as_str().unwrap().contains("8 words from input"), "{report:#}");

        let (code, report) = call(&dist(agent_type), &["--input", r#"{"text": 5}"#]);
        assert_eq!((code, &report["error"]["error_type"]), (1, &json!("invalid_input")), "{agent_type}: {report:#}");
    }
}

/// The LLM examples in Python and JavaScript ask an OpenAI-compatible server on 127.0.0.1 through
/// wasi:http: the host puts the key in, the plugin never sees it; no granted host, no request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_js_llm_examples_call_the_model_with_the_hosts_key() {
    let server = Upstream::start().await;
    std::env::set_var("HYPHAE_TEST_LLM_KEY", "sk-lang-secret-value");
    for agent_type in ["py-llm", "js-llm"] {
        let base_url = format!("base_url={}", server.url("/v1"));
        let granted = [
            "--allow-host",
            &server.origin(),
            "--config",
            &base_url,
            "--config",
            "model=m-small",
            "--config",
            "secret=llm",
            "--secret",
            "llm=HYPHAE_TEST_LLM_KEY",
        ]
        .map(str::to_string);
        let file = dist(agent_type);
        let previous = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            previous.path(),
            r#"[{"task_id": "notes", "agent_type": "web", "output": {"content": "fox facts"}}]"#,
        )
        .unwrap();
        let mut args = vec!["--input".to_string(), r#"{"prompt": "Summarise."}"#.into()];
        args.extend(["--previous".to_string(), previous.path().display().to_string()]);
        let run = |extra: Vec<String>| {
            let (file, mut args) = (file.clone(), args.clone());
            args.extend(extra);
            tokio::task::spawn_blocking(move || call(&file, &args.iter().map(String::as_str).collect::<Vec<_>>()))
        };
        let (code, report) = run(granted.to_vec()).await.unwrap();
        assert_eq!(code, 0, "{agent_type}: {report:#}");
        let content = report["output"]["content"].as_str().unwrap();
        assert!(content.starts_with("reply to: Summarise.\n\n## Result of notes (web)\n\nfox facts"), "{content}");
        assert!(server.received().contains("Bearer sk-lang-secret-value"), "{agent_type}: the host put the key in");
        // The server echoed the key; the host turned it back into the placeholder on the way in.
        assert!(content.contains("(auth: Bearer hyphae-secret-llm-"), "{content}");
        assert!(!report.to_string().contains("sk-lang-secret-value"), "{agent_type}: the key shows: {report:#}");
        assert_eq!(
            (&report["output"]["model"], &report["output"]["usage"]["completion_tokens"]),
            (&json!("m-small"), &json!(5))
        );

        let hits = server.hits();
        let (code, report) = run(granted[2..6].to_vec()).await.unwrap();
        // Python sees wasi:http's error code (a fatal `egress_denied` naming the origin to allow);
        // JavaScript's fetch reports every failure alike (a retryable `http_error`).
        let expected = if agent_type == "py-llm" { (1, json!("egress_denied")) } else { (2, json!("http_error")) };
        assert_eq!((code, report["error"]["error_type"].clone()), expected, "{agent_type}: {report:#}");
        assert!(report["error"]["message"].as_str().unwrap().contains("allowed_outbound_hosts"), "{report:#}");
        assert_eq!(server.hits(), hits, "{agent_type}: a denied request reached the server");
    }
}

/// A workflow through the binary over HTTP whose steps are a Python agent then a JavaScript agent
/// reading the Python agent's output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_runs_python_then_javascript_agents() {
    let host = support::Served::start(&["py-text", "js-text"], "").await;
    let spec = json!({"name": "languages", "tasks": [
        {"task_id": "py", "agent_type": "py-text", "input": {"text": "Alpha beta. Gamma"}},
        {"task_id": "js", "agent_type": "js-text", "input": {"keywords": ["beta"]}, "dependencies": ["py"]},
    ]});
    let client = reqwest::Client::new();
    let created: Value =
        client.post(format!("{}/v1/workflows", host.base())).json(&spec).send().await.unwrap().json().await.unwrap();
    let id = created["workflow_id"].as_str().unwrap_or_else(|| panic!("{created:#}")).to_string();
    let mut state = Value::Null;
    for _ in 0..600 {
        state = client.get(format!("{}/v1/workflows/{id}", host.base())).send().await.unwrap().json().await.unwrap();
        if state["status"] != "running" && state["status"] != "pending" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state["status"], "completed", "{state:#}\n{}", host.stderr());
    let js = state["tasks"].as_array().unwrap().iter().find(|t| t["task_id"] == "js").unwrap();
    assert_eq!(js["output"]["source"], "previous_results", "{js:#}");
    assert_eq!(
        (&js["output"]["word_count"], &js["output"]["keyword_counts"]["beta"]),
        (&json!(3), &json!(1)),
        "{js:#}"
    );
}

/// `plugin new --lang python|js` makes a project outside the repository whose unit tests pass
/// natively and which `plugin build` turns into a component that `plugin call` runs.
#[test]
fn new_python_and_js_projects_test_build_and_run_anywhere() {
    let python = support::python();
    for lang in ["python", "js"] {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("greeter");
        let out = hyphae().args(["plugin", "new", "greeter", "--lang", lang, "--dir"]).arg(&project).output().unwrap();
        assert!(out.status.success(), "{lang}: {}", text(&out));
        let mut unit = if lang == "python" {
            let mut c = Command::new(&python);
            c.args(["-m", "unittest", "-v"]);
            c
        } else {
            let install = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&project)
                .output()
                .unwrap();
            assert!(install.status.success(), "npm install: {}", text(&install));
            let mut c = Command::new("npm");
            c.arg("test");
            c
        };
        let out = unit.current_dir(&project).output().unwrap();
        assert!(out.status.success() && text(&out).contains("invalid"), "{lang} unit tests: {}", text(&out));

        let out = hyphae().args(["plugin", "build"]).arg(&project).env("HYPHAE_PYTHON", &python).output().unwrap();
        assert!(text(&out).contains("status:     ok, the host can load it"), "{lang}: {}", text(&out));
        let (code, report) = call(&project.join("dist/greeter.wasm"), &["--input", r#"{"message": "héllo"}"#]);
        assert_eq!((code, &report["output"]["length"]), (0, &json!(5)), "{lang}: {report:#}");
        let (code, report) = call(&project.join("dist/greeter.wasm"), &["--input", r#"{"message": ""}"#]);
        assert_eq!((code, &report["error"]["error_type"]), (1, &json!("invalid_input")), "{lang}: {report:#}");
    }
}

/// `plugin check` keeps the compiled code where `plugin call` finds it: after a check (as at the
/// end of `plugin build`), the first call does not compile again.
#[test]
fn check_fills_the_compile_cache_that_call_reads() {
    let cache = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = hyphae().env("XDG_CACHE_HOME", cache.path()).args(args).arg(dist("echo")).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    run(&["plugin", "check"]);
    let printed = run(&["plugin", "call", "--input", "{}"]);
    assert!(printed.contains("compiled code from the cache"), "{printed}");
}
