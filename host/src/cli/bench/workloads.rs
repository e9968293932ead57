//! The workloads: their workflows, how one is run and timed, and the figures.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};

use crate::cli::client::{follow_stream, Api, Frame};
use crate::cli::exit::Failure;

/// Longest a workflow may take from submit to its end.
const WORKFLOW_TIMEOUT: Duration = Duration::from_secs(600);
/// Warm-up runs of the latency workload.
const LATENCY_WARMUP: usize = 5;
/// Fan-outs of at least this many tasks run half the runs (rounded up).
const LARGE_FANOUT: usize = 10_000;
/// Upper bound of `max_parallel_tasks` the host accepts.
const MAX_PARALLEL: usize = 10_000;

/// Sizes of the workloads.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sizes {
    pub chain_steps: usize,
    pub fanout: &'static [usize],
    pub latency_runs: usize,
    /// Measured runs of `chain` and `fanout`.
    pub runs: usize,
}

impl Sizes {
    /// The standard sizes, those of published figures.
    pub const STANDARD: Sizes = Sizes { chain_steps: 40, fanout: &[1_000, 10_000], latency_runs: 200, runs: 5 };
    /// `--quick`.
    pub const QUICK: Sizes = Sizes { chain_steps: 10, fanout: &[200], latency_runs: 20, runs: 1 };
}

/// One figure of a workload: a value, its range over the runs and the samples.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Figure {
    /// `chain`, `fanout` or `latency`.
    pub workload: &'static str,
    /// The workload with its size, e.g. `chain 40 x fib(10)`.
    pub label: String,
    /// What the value is.
    pub figure: &'static str,
    pub unit: &'static str,
    pub value: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Measured runs (workflows) the value is made of.
    pub runs: usize,
    /// One value per run, in the order they ran.
    pub samples: Vec<f64>,
}

impl Figure {
    /// The median of `samples` with their minimum and maximum.
    pub fn spread(
        workload: &'static str,
        label: String,
        figure: &'static str,
        unit: &'static str,
        samples: &[f64],
    ) -> Figure {
        let sorted = sorted(samples);
        Figure {
            workload,
            label,
            figure,
            unit,
            value: median(&sorted),
            min: sorted.first().copied(),
            max: sorted.last().copied(),
            runs: samples.len(),
            samples: samples.to_vec(),
        }
    }
}

/// Print a progress line on stderr.
pub(super) fn note(line: &str) {
    eprintln!("bench: {line}");
}

/// Chain: orchestration overhead per step, in ms.
pub(super) async fn chain(api: &Api, sizes: &Sizes) -> Result<Vec<Figure>, Failure> {
    let steps = sizes.chain_steps;
    let label = format!("chain {steps} x fib(10)");
    let spec = chain_spec(steps, "fib", json!({"n": 10}));
    note(&format!("{label}: warm-up"));
    run_workflow(api, &spec, &label).await?;
    let mut samples = Vec::new();
    for i in 1..=sizes.runs {
        let ran = run_workflow(api, &spec, &label).await?;
        if ran.calls != steps {
            return Err(Failure::software(format!(
                "{label}: the event stream of workflow {} had {} execution_end events with a duration, expected \
                 {steps} (one per task): is event tracking off on the host, or did tasks retry?",
                ran.id, ran.calls
            )));
        }
        let per_step = (ran.wall_ms - ran.plugin_ms) / steps as f64;
        note(&format!("{label}: run {i}/{}: {per_step:.3} ms per step ({:.1} ms in all)", sizes.runs, ran.wall_ms));
        samples.push(per_step);
    }
    Ok(vec![Figure::spread("chain", label, "overhead per step", "ms", &samples)])
}

/// Fan-out: independent `echo` tasks per second, for each size.
pub(super) async fn fanout(api: &Api, sizes: &Sizes) -> Result<Vec<Figure>, Failure> {
    let mut figures = Vec::new();
    for &n in sizes.fanout {
        let label = format!("fanout {} x echo", super::thousands(n as i64));
        let runs = if n >= LARGE_FANOUT { sizes.runs.div_ceil(2) } else { sizes.runs };
        let spec = fanout_spec(n);
        note(&format!("{label}: warm-up"));
        run_workflow(api, &spec, &label).await?;
        let mut samples = Vec::new();
        for i in 1..=runs {
            let ran = run_workflow(api, &spec, &label).await?;
            let rate = n as f64 / (ran.wall_ms / 1000.0);
            note(&format!("{label}: run {i}/{runs}: {rate:.0} tasks/s ({:.1} ms in all)", ran.wall_ms));
            samples.push(rate);
        }
        figures.push(Figure::spread("fanout", label, "throughput", "tasks/s", &samples));
    }
    Ok(figures)
}

/// Latency: a 3-step `echo` chain from submit to end, p50 and p99 in ms.
pub(super) async fn latency(api: &Api, sizes: &Sizes) -> Result<Vec<Figure>, Failure> {
    let label = "latency 3 x echo chain".to_string();
    let spec = chain_spec(3, "echo", json!({"hello": "bench"}));
    note(&format!("{label}: warm-up"));
    for _ in 0..LATENCY_WARMUP {
        run_workflow(api, &spec, &label).await?;
    }
    let n = sizes.latency_runs;
    let mut samples = Vec::with_capacity(n);
    for i in 1..=n {
        samples.push(run_workflow(api, &spec, &label).await?.wall_ms);
        if i.is_multiple_of(50) || i == n {
            note(&format!("{label}: {i}/{n} workflows"));
        }
    }
    let sorted = sorted(&samples);
    let mut p50 = Figure::spread("latency", label.clone(), "p50", "ms", &samples);
    p50.value = percentile(&sorted, 50.0);
    let p99 = Figure { figure: "p99", value: percentile(&sorted, 99.0), min: None, max: None, ..p50.clone() };
    Ok(vec![p50, p99])
}

/// A chain of `n` tasks of `agent_type`, each with `input`, each depending on the one before.
fn chain_spec(n: usize, agent_type: &str, input: Value) -> Value {
    let tasks: Vec<Value> = (0..n)
        .map(|i| {
            let deps: Vec<String> = if i == 0 { vec![] } else { vec![format!("s{}", i - 1)] };
            json!({"task_id": format!("s{i}"), "agent_type": agent_type, "dependencies": deps, "input": input})
        })
        .collect();
    json!({"name": format!("bench-chain-{n}-{agent_type}"), "tasks": tasks})
}

/// `n` independent `echo` tasks, all allowed to run at once.
fn fanout_spec(n: usize) -> Value {
    let tasks: Vec<Value> =
        (0..n).map(|i| json!({"task_id": format!("t{i}"), "agent_type": "echo", "input": {"i": i}})).collect();
    json!({"name": format!("bench-fanout-{n}"), "max_parallel_tasks": n.clamp(1, MAX_PARALLEL), "tasks": tasks})
}

/// What one workflow took, as a client saw it.
struct Ran {
    id: String,
    /// Submit to the `end` event of its stream.
    wall_ms: f64,
    /// The time its plugin calls took, summed (`duration_ms` of its `execution_end` events).
    plugin_ms: f64,
    /// `execution_end` events that had a duration: plugin calls.
    calls: usize,
}

/// Submit `spec`, follow its event stream to the end, and check that it completed.
async fn run_workflow(api: &Api, spec: &Value, label: &str) -> Result<Ran, Failure> {
    let started = Instant::now();
    let submit = api.call(Method::POST, "/v1/workflows", Some(spec));
    let (_, answer) = tokio::time::timeout(Duration::from_secs(60), submit)
        .await
        .map_err(|_| Failure::unavailable(format!("{label}: the host did not answer the submission within 60 s")))??;
    let Some(id) = answer["workflow_id"].as_str().map(String::from) else {
        return Err(Failure::software(format!(
            "{label}: the host's answer to the submission has no workflow_id: {answer}"
        )));
    };
    let (mut plugin_ms, mut calls) = (0.0, 0);
    let follow = follow_stream(api, &id, |frame| {
        if let Some(ms) = call_time(frame) {
            plugin_ms += ms;
            calls += 1;
        }
    });
    let end = tokio::time::timeout(WORKFLOW_TIMEOUT, follow).await.map_err(|_| {
        Failure::unavailable(format!("{label}: workflow {id} did not end within {} s", WORKFLOW_TIMEOUT.as_secs()))
    })??;
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let status: Value = serde_json::from_str(&end.data).unwrap_or(Value::Null);
    if status["status"] != "completed" {
        return Err(not_completed(api, &id, label, &status).await);
    }
    Ok(Ran { id, wall_ms, plugin_ms, calls })
}

/// How long the plugin call of an `execution_end` event took, in ms (other events: none).
///
/// Not `task_completed`'s `performance.execution_time_ms`: that is the whole attempt, which also
/// reads the dependencies' results and builds and checks the handoffs, work of the host that
/// belongs to the orchestration overhead.
fn call_time(frame: &Frame) -> Option<f64> {
    // Most events are not wanted: skip them without parsing.
    if !frame.data.contains("execution_end") {
        return None;
    }
    let e: Value = serde_json::from_str(&frame.data).ok()?;
    if e["event_type"] != "execution_end" {
        return None;
    }
    e["duration_ms"].as_f64()
}

/// The failure for a workflow that ended otherwise than completed: its status and error.
async fn not_completed(api: &Api, id: &str, label: &str, end: &Value) -> Failure {
    let status = end["status"].as_str().unwrap_or("?").to_string();
    let path = format!("/v1/workflows/{id}?tasks_limit=0");
    let error = match api.call(Method::GET, &path, None).await {
        Ok((_, state)) => describe_error(&state["error"]),
        Err(f) => format!("its state could not be read: {}", f.message),
    };
    Failure::new(
        crate::cli::exit::WORKFLOW_FAILED,
        format!("{label}: workflow {id} ended {status}, not completed: {error} (see `hyphae status {id}`)"),
    )
}

/// A workflow's `error` in words: the task, the error type and the message.
fn describe_error(error: &Value) -> String {
    let inner = &error["error"];
    match (error["task_id"].as_str(), inner["message"].as_str()) {
        (_, _) if error.is_null() => "no error recorded".to_string(),
        (Some(task), Some(message)) => {
            format!("task `{task}` failed: {}: {message}", inner["error_type"].as_str().unwrap_or("error"))
        }
        _ => error["message"].as_str().map_or_else(|| error.to_string(), String::from),
    }
}

fn sorted(samples: &[f64]) -> Vec<f64> {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

/// Median of sorted values (0 for none).
fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if !n.is_multiple_of(2) => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The `p`th percentile of sorted values, nearest rank (0 for none).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics() {
        assert_eq!(median(&[1.0, 2.0, 10.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 3.0, 10.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hundred, 50.0), 50.0);
        assert_eq!(percentile(&hundred, 99.0), 99.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        let f = Figure::spread("chain", "c".into(), "overhead per step", "ms", &[3.0, 1.0, 2.0]);
        assert_eq!((f.value, f.min, f.max, f.runs), (2.0, Some(1.0), Some(3.0), 3));
    }

    #[test]
    fn workflows() {
        let c = chain_spec(3, "fib", json!({"n": 10}));
        assert_eq!(c["tasks"][2]["dependencies"], json!(["s1"]));
        assert_eq!(c["tasks"][0]["dependencies"], json!([]));
        let f = fanout_spec(20_000);
        assert_eq!(f["max_parallel_tasks"], 10_000);
        assert_eq!(f["tasks"].as_array().map(Vec::len), Some(20_000));
    }

    #[test]
    fn errors_in_words() {
        let e = json!({"task_id": "s0", "error": {"error_type": "invalid_input", "message": "missing `action`"}});
        assert_eq!(describe_error(&e), "task `s0` failed: invalid_input: missing `action`");
        assert_eq!(describe_error(&Value::Null), "no error recorded");
        assert_eq!(describe_error(&json!({"message": "cancelled"})), "cancelled");
    }

    #[test]
    fn plugin_call_times_come_from_execution_end_events() {
        let frame = |data: &str| Frame { event: None, id: Some("1".into()), data: data.into() };
        assert_eq!(call_time(&frame(r#"{"event_type":"execution_end","duration_ms":0.25}"#)), Some(0.25));
        let done = r#"{"event_type":"task_completed","duration_ms":1.5,"performance":{"execution_time_ms":1.5}}"#;
        assert_eq!(call_time(&frame(done)), None);
        assert_eq!(call_time(&frame(r#"{"event_type":"handoff","metadata":"execution_end"}"#)), None);
    }
}
