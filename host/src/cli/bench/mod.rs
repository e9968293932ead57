//! `hyphae bench`: the standard workloads, end to end over HTTP as a client sees them.
//!
//! Each workflow is submitted with `POST /v1/workflows` and followed on its event stream until
//! the stream's `end` event; the time between the two is what a client waits. By default the
//! command starts its own `hyphae serve` (see [`child`]); `--url` measures a running host.

mod child;
mod target;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::exit::{self, CommandResult, Failure};
use super::table::Table;
use target::{Target, TargetInfo};
use workloads::{Figure, Sizes};

const AFTER_HELP: &str = "\
Workloads (all by default; --only selects):
  chain    a chain of 40 `fib` tasks with input {\"n\": 10}; figure: orchestration overhead per step,
           (submit-to-end wall time - the plugin calls' time) / 40, median of --runs runs; the
           calls' time is the sum of the `duration_ms` of the workflow's `execution_end` events
  fanout   1,000 and 10,000 independent `echo` tasks; figure: tasks/s = tasks / submit-to-end wall
           time, median of --runs runs (10,000 tasks: half the runs, rounded up)
  latency  a 3-step `echo` chain submitted and followed to its end, 200 times one after the other;
           figures: p50 and p99 of the submit-to-end time
Every workload runs once as a warm-up first (latency: 5 times). \"End\" is the `end` event of the
workflow's event stream (GET /v1/workflows/{id}/events/stream); a workflow that does not complete
is an error. --quick shrinks everything (chain of 10, fanout of 200, latency 20 times, 1 run).

The host started by default is `hyphae serve` (this binary) on 127.0.0.1, a free port, a
temporary SQLite file (or --database) and --plugins; it inherits HYPHAE_* variables (e.g.
HYPHAE_CONFIG) other than those --database and --plugins set, and is stopped at the end. The
plugins must include the `fib` and `echo` agent types: build them with `plugins/build.sh`.

Examples:
  hyphae bench
  hyphae bench --database postgres://postgres@127.0.0.1:5432/hyphae_bench   # a fresh database
  hyphae bench --url http://127.0.0.1:8080 --only latency --json";

/// Options of `hyphae bench`.
#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct BenchArgs {
    /// Measure the host at this URL instead of starting one (its database keeps the workflows).
    #[arg(long, value_name = "URL", conflicts_with_all = ["database", "plugins"])]
    pub url: Option<String>,
    /// API token for the host at --url, once it has tokens.
    #[arg(long, env = "HYPHAE_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Database of the host started: SQLite file or `postgres://...` (for PostgreSQL, a fresh,
    /// empty database made for this: the workflows stay in it). Default: a temporary SQLite file.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// Plugins directory of the host started; it needs the `fib` and `echo` agent types
    /// (default: as `hyphae serve`, $HYPHAE_PLUGINS_DIR or `plugins/dist`).
    #[arg(long, value_name = "DIR")]
    pub plugins: Option<PathBuf>,
    /// Only these workloads (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "WORKLOADS")]
    pub only: Vec<Workload>,
    /// Measured runs of `chain` and `fanout`, after one warm-up (default 5; with --quick 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: Option<u32>,
    /// Small sizes, for a quick check (not for figures).
    #[arg(long)]
    pub quick: bool,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A standard workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// A chain of `fib` tasks: orchestration overhead per step.
    Chain,
    /// Independent `echo` tasks: tasks per second.
    Fanout,
    /// A 3-step `echo` chain, again and again: p50 and p99 latency.
    Latency,
}

impl Workload {
    /// The agent type the workload runs.
    fn agent_type(self) -> &'static str {
        match self {
            Workload::Chain => "fib",
            Workload::Fanout | Workload::Latency => "echo",
        }
    }
}

impl BenchArgs {
    /// The workloads asked for, in their standard order.
    fn workloads(&self) -> Vec<Workload> {
        let all = [Workload::Chain, Workload::Fanout, Workload::Latency];
        all.into_iter().filter(|w| self.only.is_empty() || self.only.contains(w)).collect()
    }

    /// The agent types the chosen workloads need, each once.
    fn agent_types(&self) -> Vec<&'static str> {
        let mut types: Vec<&'static str> = self.workloads().iter().map(|w| w.agent_type()).collect();
        types.sort_unstable();
        types.dedup();
        types
    }

    fn sizes(&self) -> Sizes {
        let sizes = if self.quick { Sizes::QUICK } else { Sizes::STANDARD };
        Sizes { runs: self.runs.map_or(sizes.runs, |r| r as usize), ..sizes }
    }
}

/// Everything a run of the bench measured.
#[derive(Debug, Serialize)]
struct Report {
    target: TargetInfo,
    host_version: String,
    quick: bool,
    results: Vec<Figure>,
}

pub(super) async fn command(args: BenchArgs) -> CommandResult {
    let target = Target::start(&args).await?;
    let outcome = tokio::select! {
        r = measure(&target, &args) => r,
        _ = tokio::signal::ctrl_c() => Err(Failure::new(exit::INTERRUPTED, "interrupted: no figures")),
    };
    target.stop().await;
    let report = outcome?;
    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| Failure::software(e.to_string()))?;
        println!("{text}");
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// Wait for the target, check its plugins, then run the workloads.
async fn measure(target: &Target, args: &BenchArgs) -> Result<Report, Failure> {
    let (info, host_version) = target.ready(&args.agent_types()).await?;
    workloads::note(&format!("measuring {} (hyphae {host_version})", info.describe()));
    let sizes = args.sizes();
    let mut results = Vec::new();
    for workload in args.workloads() {
        let figures = match workload {
            Workload::Chain => workloads::chain(&target.api, &sizes).await?,
            Workload::Fanout => workloads::fanout(&target.api, &sizes).await?,
            Workload::Latency => workloads::latency(&target.api, &sizes).await?,
        };
        results.extend(figures);
    }
    Ok(Report { target: info, host_version, quick: args.quick, results })
}

/// The report as text: what was measured, then a table.
fn render(report: &Report) -> String {
    let mut t = Table::new(&["WORKLOAD", "FIGURE", "VALUE", "MIN", "MAX", "UNIT", "RUNS"]);
    for f in &report.results {
        let cell = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format_value(v, f.unit));
        t.row(vec![
            f.label.clone(),
            f.figure.to_string(),
            format_value(f.value, f.unit),
            cell(f.min),
            cell(f.max),
            f.unit.to_string(),
            f.runs.to_string(),
        ]);
    }
    let quick = if report.quick { " (--quick: small sizes, not for figures)" } else { "" };
    format!("target: {}; host hyphae {}{quick}\n\n{}", report.target.describe(), report.host_version, t.render())
}

/// A figure for the table: milliseconds with three decimals below 10, tasks/s whole.
fn format_value(v: f64, unit: &str) -> String {
    match unit {
        "ms" if v.abs() < 10.0 => format!("{v:.3}"),
        "ms" => format!("{v:.1}"),
        _ => thousands(v.round() as i64),
    }
}

/// `12345` as `12,345`.
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

impl TargetInfo {
    /// One line: the URL, who started the host, and its database.
    fn describe(&self) -> String {
        let who = if self.own_host { "a host started by the bench" } else { "a running host" };
        let db = match &self.database_url {
            Some(url) => format!("{} ({url})", self.database),
            None if self.own_host => format!("{} (temporary file)", self.database),
            None => self.database.clone(),
        };
        format!("{} ({who}), database {db}", self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_figures() {
        assert_eq!(thousands(8227), "8,227");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(format_value(1.23456, "ms"), "1.235");
        assert_eq!(format_value(12.34, "ms"), "12.3");
        assert_eq!(format_value(4321.6, "tasks/s"), "4,322");
    }

    #[test]
    fn renders_a_table_and_json() {
        let report = Report {
            target: TargetInfo {
                url: "http://127.0.0.1:1".into(),
                own_host: true,
                database: "sqlite".into(),
                database_url: None,
            },
            host_version: "0.1.0".into(),
            quick: false,
            results: vec![Figure::spread("chain", "chain 40 x fib(10)".into(), "overhead per step", "ms", &[1.0, 2.0])],
        };
        let text = render(&report);
        assert!(text.starts_with("target: http://127.0.0.1:1 (a host started by the bench), database sqlite"));
        assert!(text.contains("chain 40 x fib(10)  overhead per step  1.500  1.000  2.000  ms    2"), "{text}");
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(v["results"][0]["value"], json!(1.5));
        assert_eq!(v["target"]["database"], "sqlite");
    }

    #[test]
    fn workloads_keep_their_order_and_name_their_agent_types() {
        let args = BenchArgs {
            url: None,
            token: None,
            database: None,
            plugins: None,
            only: vec![Workload::Latency, Workload::Chain],
            runs: None,
            quick: true,
            json: false,
        };
        assert_eq!(args.workloads(), vec![Workload::Chain, Workload::Latency]);
        assert_eq!(args.agent_types(), vec!["echo", "fib"]);
        assert_eq!(args.sizes().runs, 1);
    }
}
