//! Agents waiting on the network: N concurrent `http-probe` calls, each waiting 1 s for a local
//! HTTP server (another process, so the two ends do not share a descriptor limit). Reports wall
//! time and the host's peak RSS. `HYPHAE_BENCH_WAITING=1000,10000` chooses the N (default both).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyphae::plugins::{CallOptions, Runtime, RuntimeConfig};

/// Set in the child process that serves `/slow`.
pub const UPSTREAM_ENV: &str = "HYPHAE_BENCH_UPSTREAM";

pub fn run() {
    let counts: Vec<usize> = std::env::var("HYPHAE_BENCH_WAITING")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let (mut child, port) = upstream();
    let dir = tempfile::tempdir().expect("temp dir");
    let src = super::plugins::dist().join("http-probe.wasm");
    std::fs::copy(&src, dir.path().join("http-probe.wasm")).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let manifest = format!("allowed_outbound_hosts = [\"http://127.0.0.1:{port}\"]\n");
    std::fs::write(dir.path().join("http-probe.toml"), manifest).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    for n in counts {
        let runtime = rt.block_on(start(dir.path(), n));
        reset_peak_rss();
        let rss_before = rss_kib("VmRSS");
        let (took, ok) = rt.block_on(wait_all(&runtime, n, port));
        println!(
            "{n} tasks waiting 1 s on HTTP ({:?}): wall {:.2} s, {ok}/{n} ok, peak RSS {} MiB \
             (before {} MiB)",
            runtime.allocation(),
            took.as_secs_f64(),
            rss_kib("VmHWM") / 1024,
            rss_before / 1024
        );
        drop(runtime);
    }
    let _ = child.kill();
    let _ = child.wait();
}

async fn start(dir: &Path, n: usize) -> Runtime {
    let config = RuntimeConfig {
        plugins_dir: Some(dir.to_path_buf()),
        cache_dir: None,
        watch: false,
        max_instances: n as u32,
        default_timeout: Duration::from_secs(60),
        ..RuntimeConfig::default()
    };
    Runtime::start(config).await.expect("runtime starts")
}

async fn wait_all(runtime: &Runtime, n: usize, port: u16) -> (Duration, usize) {
    let input = format!(r#"{{"requests":[{{"url":"http://127.0.0.1:{port}/slow"}}]}}"#);
    let start = Instant::now();
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let (runtime, ctx) = (runtime.clone(), super::plugins::task("http-probe", &input));
            tokio::spawn(async move { runtime.execute(ctx, CallOptions::default()).await })
        })
        .collect();
    let mut ok = 0;
    for call in calls {
        let exec = call.await.expect("call task");
        ok += usize::from(exec.result.as_deref().is_ok_and(|out| out.contains("\"status\":200")));
    }
    (start.elapsed(), ok)
}

/// This benchmark binary again, as the server: it prints its port, then answers `/slow` after 1 s.
fn upstream() -> (Child, u16) {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(UPSTREAM_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("upstream process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("port line");
    (child, line.trim().parse().expect("port"))
}

/// The server side of [`upstream`]: runs until killed.
pub fn serve_upstream() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async {
        let slow = || async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            "done"
        };
        let app = axum::Router::new().route("/slow", axum::routing::get(slow));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!("{}", listener.local_addr().expect("addr").port());
        axum::serve(listener, app).await.expect("serve");
    });
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resets VmHWM to the current RSS (Linux: `echo 5 > /proc/self/clear_refs`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
