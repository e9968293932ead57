//! Running out of file descriptors: a failed reload (a transient read error or a bad new file)
//! never unloads the version that serves, reads are retried, and the binary bounds its
//! connections below its descriptor limit, answering 503 past the bound.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use hyphae::plugins::{CallOptions, PluginState, Runtime};
use serde_json::{json, Value};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reload_never_unloads_the_serving_version() {
    let dir = support::plugins_dir(&["echo"]);
    let rt = Runtime::start(support::config(dir.path())).await.unwrap();
    let registry = rt.registry();
    let path = dir.path().join("echo.wasm");
    let serving = registry.digest("echo").unwrap();
    let still_serves = || async {
        let exec = rt.execute(support::task("echo", json!({"x": 1})), CallOptions::default()).await;
        assert!(exec.result.is_ok(), "{:?}", exec.result);
        assert_eq!(registry.digest("echo").as_deref(), Some(serving.as_str()));
    };

    // A read error (the file is a directory for a moment): the loaded version keeps serving.
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    registry.refresh(&path).await;
    let status = registry.status(&path).unwrap();
    assert_eq!(status.state, PluginState::Failed);
    assert!(status.error.as_deref().unwrap().contains("the version loaded before keeps serving"), "{status:?}");
    still_serves().await;
    std::fs::remove_dir(&path).unwrap();
    std::fs::write(&path, support::component("echo")).unwrap();
    registry.refresh(&path).await;
    assert_eq!(registry.status(&path).unwrap().state, PluginState::Loaded, "readable again: no problem left");

    // A broken new version: refused, and the old one serves on.
    std::fs::write(&path, b"\0asm not really").unwrap();
    registry.refresh(&path).await;
    let status = registry.status(&path).unwrap();
    assert_eq!(status.state, PluginState::Failed);
    assert_eq!(status.digest, serving, "the status names the version that serves");
    still_serves().await;
}

/// With 256 descriptors, the host holds at most 128 connections: 300 idle clients get the rest
/// refused with a 503, the plugins stay loaded through a reload, and once the clients leave the
/// host serves as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_exhaust_the_descriptors() {
    let work = tempfile::tempdir().unwrap();
    let plugins = work.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::write(plugins.join("echo.wasm"), support::component("echo")).unwrap();
    let port = support::free_port();
    let out = work.path().join("stdout.log");
    let command = format!(
        "ulimit -n 256 && exec '{}' serve --listen 127.0.0.1:{port} --db '{}' --plugins-dir '{}' --cache-dir '{}'",
        env!("CARGO_BIN_EXE_hyphae"),
        work.path().join("hyphae.db").display(),
        plugins.display(),
        support::repo_root().join("target").join("test-plugin-cache").display(),
    );
    let mut child = std::process::Command::new("sh")
        .args(["-c", &command])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(work.path().join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    support::wait_ready(port).await;
    assert!(std::fs::read_to_string(&out).unwrap().contains("128 connections (of 256 descriptors)"));

    let idle: Vec<std::net::TcpStream> =
        (0..300).map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    // The last ones are past the bound: answered 503 in the error shape, then closed.
    let mut refused = 0;
    for mut stream in idle.iter().rev().take(20) {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        if answer.starts_with("HTTP/1.1 503") {
            assert!(answer.contains("\"too_many_connections\""), "{answer}");
            refused += 1;
        }
    }
    assert_eq!(refused, 20, "connections past max_connections are refused");
    // A reload while the clients hold their connections: the plugin stays loaded.
    std::fs::write(plugins.join("echo.wasm"), support::component("echo")).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(idle);

    let started = Instant::now();
    let plugins_now = loop {
        if let Ok(r) = client.get(format!("{base}/v1/plugins")).send().await {
            break r.json::<Value>().await.unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the host does not answer after the clients left");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(plugins_now["items"][0]["state"], "loaded", "{plugins_now}");
    let created: Value = client
        .post(format!("{base}/v1/workflows"))
        .json(&json!({"tasks": [{"task_id": "a", "agent_type": "echo"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["workflow_id"].is_string(), "{created}");
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert!(ready.status().is_success());
    child.kill().unwrap();
    child.wait().unwrap();
}
