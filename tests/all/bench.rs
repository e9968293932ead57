//! `hyphae bench`: the binary measuring its own host (SQLite, PostgreSQL) and a running one over
//! real HTTP on 127.0.0.1. Only what it prints is checked, never how fast anything was.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::harness::{self, Backend};
use crate::support::{self, Served};

/// Run `hyphae bench` with `args`; the host it starts caches compiled plugins with the tests'.
async fn bench(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_hyphae"))
        .arg("bench")
        .args(args)
        .env("HYPHAE_CACHE_DIR", support::repo_root().join("target").join("test-plugin-cache"))
        .env_remove("HYPHAE_CONFIG")
        .output()
        .await
        .expect("hyphae bench runs")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The rows of the printed table, as cells (columns are two or more spaces apart).
fn rows(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("WORKLOAD"))
        .skip(1)
        .map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect())
        .collect()
}

/// Assert the table has every workload, each with a positive figure.
fn assert_every_workload(out: &Output) {
    let (stdout, stderr) = text(out);
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    let rows = rows(&stdout);
    for (workload, figure) in
        [("chain", "overhead per step"), ("fanout", "throughput"), ("latency", "p50"), ("latency", "p99")]
    {
        let row = rows
            .iter()
            .find(|r| r[0].starts_with(workload) && r[1] == figure)
            .unwrap_or_else(|| panic!("no {workload} {figure} row in:\n{stdout}"));
        let value: f64 = row[2].replace(',', "").parse().unwrap_or_else(|e| panic!("{row:?}: {e}"));
        assert!(value > 0.0, "{row:?}");
    }
    assert!(stdout.starts_with("target: http://127.0.0.1:"), "{stdout}");
    assert!(stderr.contains("bench: chain"), "progress on stderr: {stderr}");
}

/// A plugins directory with `fib` and `echo`.
fn fib_and_echo() -> tempfile::TempDir {
    support::plugins_dir(&["fib", "echo"])
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_run_on_its_own_sqlite_host_prints_every_workload() {
    let plugins = fib_and_echo();
    let out = bench(&["--quick", "--plugins", path(plugins.path())]).await;
    assert_every_workload(&out);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("(a host started by the bench), database sqlite (temporary file)"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_run_against_a_running_host_prints_json() {
    let host = Served::start(&["fib", "echo"], "").await;
    let out = bench(&["--quick", "--url", &host.base()]).await;
    assert_every_workload(&out);

    let out = bench(&["--quick", "--url", &host.base(), "--json", "--only", "chain,latency"]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(report["target"]["url"], host.base());
    assert_eq!(report["target"]["own_host"], false);
    assert_eq!(report["target"]["database"], "sqlite");
    assert_eq!(report["host_version"], env!("CARGO_PKG_VERSION"));
    let results = report["results"].as_array().expect("results");
    let names: Vec<(&str, &str)> =
        results.iter().map(|r| (r["workload"].as_str().unwrap_or(""), r["figure"].as_str().unwrap_or(""))).collect();
    assert_eq!(names, [("chain", "overhead per step"), ("latency", "p50"), ("latency", "p99")]);
    for r in results {
        assert!(r["value"].as_f64().is_some_and(|v| v > 0.0), "{r}");
        assert_eq!(r["runs"].as_u64().map(|n| n as usize), r["samples"].as_array().map(Vec::len), "{r}");
    }
    assert_eq!(results[1]["runs"], 20, "--quick times 20 latency workflows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_agent_type_is_named_with_how_to_build_it() {
    let plugins = support::plugins_dir(&["echo"]);
    let out = bench(&["--quick", "--plugins", path(plugins.path())]).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains("no agent type `fib`") && stderr.contains("plugins/build.sh"), "{stderr}");

    // The workloads that need only `echo` run.
    let out = bench(&["--quick", "--plugins", path(plugins.path()), "--only", "latency"]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(rows(&stdout).iter().all(|r| r[0].starts_with("latency")), "{stdout}");

    let out = bench(&["--quick", "--plugins", path(&plugins.path().join("absent"))]).await;
    let (_, stderr) = text(&out);
    assert!(!out.status.success() && stderr.contains("does not exist"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_run_on_its_own_postgres_host() {
    if std::env::var_os("HYPHAE_TEST_POSTGRES").is_none() {
        eprintln!("skipped: HYPHAE_TEST_POSTGRES is not set");
        return;
    }
    let (url, _) = harness::database(Backend::Postgres).await;
    let plugins = fib_and_echo();
    let out = bench(&["--quick", "--plugins", path(plugins.path()), "--database", &url]).await;
    assert_every_workload(&out);
    let (stdout, _) = text(&out);
    assert!(stdout.contains(&format!("database postgres ({url})")), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_workflow_is_an_error_naming_it_and_its_error() {
    // `testkit` served as `fib` refuses the chain's input.
    let plugins = support::plugins_dir(&["echo"]);
    std::fs::write(plugins.path().join("fib.wasm"), support::component("testkit")).expect("copy");
    let out = bench(&["--quick", "--plugins", path(plugins.path()), "--only", "chain"]).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains("workflow ") && stderr.contains("ended failed"), "{stderr}");
    assert!(stderr.contains("task `s0` failed: invalid_input"), "{stderr}");
}
