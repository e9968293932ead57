//! Engine benchmarks: per-step overhead of a chain, throughput of a wide workflow, cost of event
//! tracking, storage per event, and query latency. SQLite always; PostgreSQL too when
//! `HYPHAE_BENCH_POSTGRES` names a database url to use (it must be empty or a Hyphae database).
//! `HYPHAE_BENCH_ONLY` (comma-separated: chain, wide, tracking, storage, queries) runs only those
//! parts, for profiling one of them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyphae::engine::{Engine, EngineConfig};
use hyphae::events::{AgentEventsQuery, EventQuery};
use hyphae::plugins::{Runtime, RuntimeConfig};
use hyphae::store::Store;
use hyphae::telemetry::Metrics;
use hyphae::workflow::WorkflowSpec;
use serde_json::{json, Value};

fn dist() -> PathBuf {
    std::env::var_os("HYPHAE_PLUGINS_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist"))
}

pub fn run() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = dir.path().join("bench.db").to_string_lossy().into_owned();
        bench_backend("sqlite", &sqlite).await;
        if let Ok(pg) = std::env::var("HYPHAE_BENCH_POSTGRES") {
            bench_backend("postgres", &pg).await;
        }
    });
}

async fn start(url: &str) -> Engine {
    let config = RuntimeConfig { plugins_dir: Some(dist()), watch: false, ..RuntimeConfig::default() };
    let runtime = Runtime::start(config).await.expect("plugins load (run plugins/build.sh first)");
    let store = Store::connect(url).await.expect("database opens");
    let exclusive = !url.starts_with("postgres");
    let config = EngineConfig { max_concurrent_tasks: 64, exclusive, ..EngineConfig::default() };
    Engine::start(config, store, Arc::new(runtime), Arc::new(Metrics::new())).await.expect("engine starts")
}

async fn run_workflow(e: &Engine, spec: Value) -> (String, Duration) {
    let spec: WorkflowSpec = serde_json::from_value(spec).expect("spec");
    let started = Instant::now();
    let id = e.submit(spec).await.expect("accepted").workflow_id;
    let status = e.wait_settled(&id).await.expect("settles");
    assert_eq!(status.as_str(), "completed");
    (id, started.elapsed())
}

fn chain(n: usize) -> Value {
    let tasks: Vec<Value> = (0..n)
        .map(|i| {
            let deps: Vec<String> = if i == 0 { vec![] } else { vec![format!("s{}", i - 1)] };
            json!({"task_id": format!("s{i}"), "agent_type": "fib", "dependencies": deps, "input": {"n": 10}})
        })
        .collect();
    json!({"tasks": tasks})
}

fn wide(n: usize) -> Value {
    let tasks: Vec<Value> =
        (0..n).map(|i| json!({"task_id": format!("t{i}"), "agent_type": "echo", "input": {"i": i}})).collect();
    json!({"max_parallel_tasks": 10000, "tasks": tasks})
}

/// Whether the part `name` of the benchmark is wanted (`HYPHAE_BENCH_ONLY`).
fn wanted(name: &str) -> bool {
    std::env::var("HYPHAE_BENCH_ONLY").map(|only| only.split(',').any(|p| p.trim() == name)).unwrap_or(true)
}

async fn bench_backend(name: &str, url: &str) {
    let e = start(url).await;
    // Warm up caches and connections.
    run_workflow(&e, chain(5)).await;
    if wanted("chain") {
        bench_chain(name, &e).await;
    }
    if wanted("wide") {
        bench_wide(name, url, &e).await;
    }
    if wanted("tracking") {
        bench_tracking(name, &e).await;
    }
    if name == "sqlite" && wanted("storage") {
        bench_storage(name, &e).await;
    }
    if wanted("queries") {
        bench_queries(name, &e).await;
    }
    e.shutdown().await;
}

async fn bench_chain(name: &str, e: &Engine) {
    let mut per_step = Vec::new();
    for _ in 0..5 {
        let (id, total) = run_workflow(e, chain(40)).await;
        let q = EventQuery { types: vec![hyphae::events::EventType::ExecutionEnd], limit: 1000, ..Default::default() };
        let plugin_ms: f64 =
            e.store().workflow_events(&id, &q).await.unwrap().iter().filter_map(|ev| ev.duration_ms).sum();
        per_step.push((total.as_secs_f64() * 1000.0 - plugin_ms) / 40.0);
    }
    per_step.sort_by(f64::total_cmp);
    println!(
        "{name}: chain of 40 fib(10): overhead per step median {:.3} ms (min {:.3}, max {:.3})",
        per_step[2], per_step[0], per_step[4]
    );
}

async fn bench_wide(name: &str, url: &str, e: &Engine) {
    // For profiling what events cost: HYPHAE_BENCH_EVENTS=off runs this part without them.
    e.store().set_events_enabled(std::env::var("HYPHAE_BENCH_EVENTS").map_or(true, |v| v != "off"));
    let cpu = cpu_seconds();
    let (_, took) = run_workflow(e, wide(10_000)).await;
    let cpu = cpu_seconds() - cpu;
    println!(
        "{name}: 10,000 independent tasks: {:.2} s, {:.0} tasks/s, {:.0} us of CPU per task (this process)",
        took.as_secs_f64(),
        10_000.0 / took.as_secs_f64(),
        cpu * 1e6 / 10_000.0
    );

    if name == "postgres" {
        let second = start(url).await;
        let (_, took) = run_workflow(e, wide(10_000)).await;
        println!(
            "{name}: 10,000 independent tasks, two hosts: {:.2} s, {:.0} tasks/s",
            took.as_secs_f64(),
            10_000.0 / took.as_secs_f64()
        );
        second.shutdown().await;
    }
    e.store().set_events_enabled(true);
}

async fn bench_tracking(name: &str, e: &Engine) {
    const PAIRS: usize = 15;
    // Pairs of runs, events off and on, in alternating order so drift of the machine cancels.
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for pair in 0..PAIRS {
        let mut took = [(0.0, 0.0); 2];
        let order = if pair % 2 == 0 { [false, true] } else { [true, false] };
        for events in order {
            e.store().set_events_enabled(events);
            let c = cpu_seconds();
            let w = run_workflow(e, wide(3_000)).await.1.as_secs_f64();
            took[events as usize] = (w, cpu_seconds() - c);
        }
        wall.push(took[1].0 / took[0].0 - 1.0);
        cpu.push(took[1].1 / took[0].1 - 1.0);
    }
    e.store().set_events_enabled(true);
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    println!(
        "{name}: tracking overhead (3,000 tasks, events on vs off, median of {PAIRS} pairs): {:.1} % of wall \
         time (quartiles {:.1} to {:.1} %), {:.1} % of CPU",
        wall[PAIRS / 2] * 100.0,
        wall[PAIRS / 4] * 100.0,
        wall[PAIRS * 3 / 4] * 100.0,
        cpu[PAIRS / 2] * 100.0
    );
}

async fn bench_storage(name: &str, e: &Engine) {
    if wanted("wide") {
        // Without the wide workflow the table is too small to measure.
        let bytes = events_bytes(e).await;
        let count = scalar(e, "SELECT CAST(SUM(event_count) AS BIGINT) FROM event_blocks").await.unwrap();
        if let Some(bytes) = bytes {
            println!(
                "{name}: storage: {:.0} bytes per event, {:.2} MB per 1,000 events (table + indexes, {count} events)",
                bytes as f64 / count as f64,
                bytes as f64 / count as f64 * 1000.0 / 1e6
            );
        }
    }
}

async fn bench_queries(name: &str, e: &Engine) {
    let (id, _) = run_workflow(e, wide(100)).await; // about 500 events
    let n = e.store().last_event_seq(&id).await.unwrap();
    let q = EventQuery { limit: 10_000, ..Default::default() };
    let ev = time_ms(|| async { e.store().workflow_events(&id, &q).await.unwrap().len() }).await;
    let tl = time_ms(|| async { e.store().timeline(&id).await.unwrap().total_events }).await;
    let aq = AgentEventsQuery { limit: 100, ..Default::default() };
    let every = AgentEventsQuery { limit: i64::MAX, ..Default::default() };
    let total_agent = e.store().agent_events("echo", &every).await.unwrap().0.len();
    let ag = time_ms(|| async { e.store().agent_events("echo", &aq).await.unwrap().0.len() }).await;
    println!(
        "{name}: queries (wall / CPU): workflow events ({n}) {:.2} / {:.2} ms, timeline {:.2} / {:.2} ms, \
         agent events (page of 100 of {total_agent}) {:.2} / {:.2} ms",
        ev.0, ev.1, tl.0, tl.1, ag.0, ag.1
    );
}

/// CPU time this process's threads have used, in seconds (Linux schedstat, ns resolution; 0
/// elsewhere). Less noisy than wall time on a shared machine.
fn cpu_seconds() -> f64 {
    let Ok(threads) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    let ns: u64 = threads
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e9
}

/// Median of 20 runs, in ms: wall time and CPU time.
async fn time_ms<F, Fut>(f: F) -> (f64, f64)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let (s, c) = (Instant::now(), cpu_seconds());
        std::hint::black_box(f().await);
        cpu.push((cpu_seconds() - c) * 1000.0);
        wall.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    (wall[10], cpu[10])
}

/// Bytes the event tables and their indexes take (SQLite's dbstat), if available.
async fn events_bytes(e: &Engine) -> Option<i64> {
    scalar(e, "SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'event_%' OR name LIKE 'sqlite_autoindex_event_%'").await
}

/// One number from the engine's database, read on a connection of the bench's own.
async fn scalar(e: &Engine, sql: &'static str) -> Option<i64> {
    use sqlx::{ConnectOptions, Connection};
    let url = e.store().url();
    match e.store().dialect() {
        hyphae::store::Dialect::Sqlite => {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(path).connect().await.ok()?;
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.ok()
        }
        hyphae::store::Dialect::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await.ok()?;
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.ok()
        }
    }
}
