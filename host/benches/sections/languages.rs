//! Plugins in Rust, Python and JavaScript: instantiate + call of each language's text example,
//! with its peak memory, and the `hyphae` binary's start to ready (`/readyz` 200) with those
//! components loaded, cold (empty compile cache) and warm (cache filled by the first start).
//! Needs `py-text.wasm` and `js-text.wasm` in the examples directory (`plugins/python/build.sh`,
//! `plugins/js/build.sh`); a missing one is reported and skipped.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hyphae::plugins::{CallOptions, Runtime, RuntimeConfig};

const CALLS: usize = 2_000;
const EXAMPLES: [(&str, &str); 3] = [("Rust", "text-stats"), ("Python", "py-text"), ("JavaScript", "js-text")];
const INPUT: &str = r#"{"text": "Mycorrhizal fungi trade nutrients with trees. Trees pay in sugar."}"#;

pub fn run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut loaded = Vec::new();
    for (lang, name) in EXAMPLES {
        let src = super::plugins::dist().join(format!("{name}.wasm"));
        match std::fs::copy(&src, dir.path().join(format!("{name}.wasm"))) {
            Ok(_) => loaded.push((lang, name)),
            Err(e) => println!("{lang}: skipped, cannot read {} ({e})", src.display()),
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let runtime = rt.block_on(start(dir.path()));
    for (lang, name) in &loaded {
        let (times, peak) = rt.block_on(calls(&runtime, name));
        super::plugins::report(&format!("{lang} `{name}` instantiate+call ({:?})", runtime.allocation()), &times);
        println!("{lang} `{name}` peak linear memory: {:.1} MiB", peak as f64 / (1 << 20) as f64);
    }
    drop(runtime);
    let cache = tempfile::tempdir().expect("temp dir");
    for label in ["cold (empty cache)", "warm (cached)", "warm (cached)"] {
        let took = start_to_ready(dir.path(), cache.path());
        println!(
            "hyphae serve start to ready with {} plugins, {label}: {:.0} ms",
            loaded.len(),
            took.as_secs_f64() * 1e3
        );
    }
}

async fn start(dir: &Path) -> Runtime {
    let config = RuntimeConfig {
        plugins_dir: Some(dir.to_path_buf()),
        cache_dir: None,
        watch: false,
        ..RuntimeConfig::default()
    };
    Runtime::start(config).await.expect("runtime starts")
}

async fn calls(runtime: &Runtime, agent_type: &str) -> (Vec<Duration>, usize) {
    let ctx = super::plugins::task(agent_type, INPUT);
    let mut peak = 0;
    for _ in 0..50 {
        let exec = runtime.execute(ctx.clone(), CallOptions::default()).await;
        assert!(exec.result.is_ok(), "{agent_type}: {:?}", exec.result);
        peak = peak.max(exec.peak_memory);
    }
    let mut times = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let start = Instant::now();
        let exec = runtime.execute(ctx.clone(), CallOptions::default()).await;
        times.push(start.elapsed());
        assert!(exec.result.is_ok(), "{agent_type}: {:?}", exec.result);
    }
    (times, peak)
}

/// Spawns `hyphae serve` on a fresh SQLite file and times it until `/readyz` answers 200.
fn start_to_ready(plugins: &Path, cache: &Path) -> Duration {
    let work = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hyphae"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--db"])
        .arg(work.path().join("hyphae.db"))
        .arg("--plugins-dir")
        .arg(plugins)
        .arg("--cache-dir")
        .arg(cache)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hyphae serve");
    while !ready(port) {
        assert!(started.elapsed() < Duration::from_secs(120), "hyphae serve did not get ready in 120 s");
        std::thread::sleep(Duration::from_millis(2));
    }
    let took = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    took
}

fn ready(port: u16) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request = format!("GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut response).is_ok()
        && response.starts_with("HTTP/1.1 200")
}
