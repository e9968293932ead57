//! Plugin runtime: instantiate + call of `echo` (pooled and on-demand), and `fib(25)` in Wasm
//! against the same function compiled natively.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyphae::plugins::{CallOptions, Runtime, RuntimeConfig, TaskContext};

const ECHO_CALLS: usize = 10_000;
const FIB_N: u32 = 25;
const FIB_RUNS: usize = 30;

pub fn run() {
    let dist = dist();
    let dir = tempfile::tempdir().expect("temp dir");
    for name in ["echo", "fib"] {
        let src = dist.join(format!("{name}.wasm"));
        std::fs::copy(&src, dir.path().join(format!("{name}.wasm")))
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", src.display()));
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    for pooling in [true, false] {
        let runtime = rt.block_on(start(dir.path(), pooling));
        let label = format!("echo instantiate+call ({:?})", runtime.allocation());
        let times = rt.block_on(echo_calls(&runtime));
        report(&label, &times);
    }

    let runtime = rt.block_on(start(dir.path(), true));
    let wasm = rt.block_on(fib_calls(&runtime));
    let native: Vec<Duration> = (0..FIB_RUNS)
        .map(|_| {
            let start = Instant::now();
            black_box(fib(black_box(FIB_N)));
            start.elapsed()
        })
        .collect();
    let (w, n) = (median(&wasm), median(&native));
    report(&format!("fib({FIB_N}) wasm (call incl. instantiate)"), &wasm);
    report(&format!("fib({FIB_N}) native"), &native);
    println!("fib({FIB_N}) wasm/native ratio: {:.2}", w.as_secs_f64() / n.as_secs_f64());
}

async fn start(dir: &Path, pooling: bool) -> Runtime {
    let config = RuntimeConfig {
        plugins_dir: Some(dir.to_path_buf()),
        cache_dir: None,
        watch: false,
        pooling,
        ..RuntimeConfig::default()
    };
    Runtime::start(config).await.expect("runtime starts")
}

async fn echo_calls(runtime: &Runtime) -> Vec<Duration> {
    let ctx = task("echo", r#"{"hello":"world"}"#);
    for _ in 0..200 {
        runtime.execute(ctx.clone(), CallOptions::default()).await;
    }
    let mut times = Vec::with_capacity(ECHO_CALLS);
    for _ in 0..ECHO_CALLS {
        let ctx = ctx.clone();
        let start = Instant::now();
        let exec = runtime.execute(ctx, CallOptions::default()).await;
        times.push(start.elapsed());
        assert!(exec.result.is_ok(), "{:?}", exec.result);
    }
    times
}

async fn fib_calls(runtime: &Runtime) -> Vec<Duration> {
    let ctx = task("fib", &format!(r#"{{"n":{FIB_N}}}"#));
    let mut times = Vec::with_capacity(FIB_RUNS);
    for _ in 0..FIB_RUNS {
        let start = Instant::now();
        let exec = runtime.execute(ctx.clone(), CallOptions::default()).await;
        times.push(start.elapsed());
        assert!(exec.result.is_ok(), "{:?}", exec.result);
    }
    times
}

fn fib(n: u32) -> u64 {
    if n < 2 {
        n as u64
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

pub fn task(agent_type: &str, input: &str) -> TaskContext {
    TaskContext {
        workflow_id: "wf".into(),
        task_id: "t".into(),
        agent_id: "a".into(),
        agent_type: agent_type.into(),
        attempt: 1,
        input: input.into(),
        variables: "{}".into(),
        context: "{}".into(),
        metadata: "{}".into(),
        previous_results: Vec::new(),
        handoffs: Vec::new(),
    }
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

pub fn report(label: &str, times: &[Duration]) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let p99 = sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)];
    println!(
        "{label}: median {:.1} us, p99 {:.1} us ({} runs)",
        median(times).as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        times.len()
    );
}

/// The example components: `$HYPHAE_PLUGINS_DIST`, else `plugins/dist` (built by
/// `plugins/build.sh` when missing).
pub fn dist() -> PathBuf {
    if let Some(dir) = std::env::var_os("HYPHAE_PLUGINS_DIST") {
        return PathBuf::from(dir);
    }
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    if !plugins.join("dist/echo.wasm").is_file() || !plugins.join("dist/fib.wasm").is_file() {
        let status = std::process::Command::new("bash")
            .arg(plugins.join("build.sh"))
            .current_dir(&plugins)
            .status()
            .expect("run plugins/build.sh");
        assert!(status.success(), "plugins/build.sh failed");
    }
    plugins.join("dist")
}
