//! `/metrics` of a host that ran a workflow (completions, a plugin's own errors, a timeout, an
//! LLM call through egress): names and units by the Prometheus conventions, bounded label values
//! (a plugin's error type is never one), text that `promtool check metrics` accepts, and every
//! metric the shipped alert rules and Grafana dashboard use present in the scrape.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use hyphae::telemetry::HOST_ERROR_TYPES;
use serde_json::{json, Value};

use crate::api::app_with;
use crate::harness::Backend;
use crate::support;
use crate::upstream::Upstream;

/// An error type the plugin chooses: it must not become a label value.
const PLUGIN_ERROR: &str = "tenant_specific_error_kind";

crate::on_both_backends!(metrics_are_named_bounded_and_cover_the_alerts_and_dashboard);

async fn metrics_are_named_bounded_and_cover_the_alerts_and_dashboard(backend: Backend) {
    let llm = Upstream::start().await;
    let origin = llm.origin();
    let app = app_with(backend, |config| {
        let manifest =
            format!("allowed_outbound_hosts = [{origin:?}]\n[config]\nbase_url = \"{origin}/v1\"\nmodel = \"m-1\"\n");
        std::fs::write(config.plugins_dir.join("llm.wasm"), support::component("llm-chat")).unwrap();
        std::fs::write(config.plugins_dir.join("llm.toml"), manifest).unwrap();
    })
    .await;
    let once = json!({ "max_attempts": 1, "initial_delay": 0.1, "max_delay": 1.0, "exponential_base": 2.0 });
    let id = app
        .submit(json!({ "tasks": [
            { "task_id": "fib", "agent_type": "fib", "input": { "n": 10 } },
            { "task_id": "own-error", "agent_type": "testkit", "allow_failure": true,
              "input": { "action": "fatal", "error_type": PLUGIN_ERROR } },
            // A plugin's error named like the host's: still the plugin's.
            { "task_id": "own-timeout", "agent_type": "testkit", "allow_failure": true,
              "input": { "action": "fatal", "error_type": "timeout" } },
            { "task_id": "slow", "agent_type": "testkit", "allow_failure": true, "timeout": 0.3,
              "retry_policy": once, "input": { "action": "sleep", "ms": 10000 } },
            { "task_id": "ask", "agent_type": "llm", "input": { "prompt": "Say hello." } },
        ]}))
        .await;
    assert_eq!(app.settle(&id).await, "completed");
    let (s, wf) = app.get(&format!("/v1/workflows/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    let tasks = wf["tasks"].as_array().unwrap();
    assert!(tasks.iter().any(|t| t["error"]["error_type"] == PLUGIN_ERROR), "the plugin's error type is kept: {wf}");
    assert_eq!(app.get("/no/such/route").await.0, StatusCode::NOT_FOUND);

    let (s, headers, body) = app.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().contains("openmetrics-text"));
    let text = String::from_utf8(body).unwrap();
    let samples = samples(&text);
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let found = samples.iter().find(|s| s.name == name && want.iter().all(|(k, v)| s.labels.get(k) == Some(v)));
        found.unwrap_or_else(|| panic!("no sample {name} {labels:?} in:\n{text}")).value
    };

    // Attempts counted as attempts, outcomes as labels; the host's own timeout apart from a
    // plugin's error named `timeout`.
    let attempts = "hyphae_task_attempts_total";
    assert_eq!(value(attempts, &[("agent_type", "fib"), ("outcome", "completed")]), 1.0);
    assert_eq!(value(attempts, &[("agent_type", "testkit"), ("outcome", "failed")]), 2.0);
    assert_eq!(value(attempts, &[("agent_type", "testkit"), ("outcome", "timeout")]), 1.0);
    assert_eq!(value(attempts, &[("agent_type", "testkit"), ("outcome", "cancelled")]), 0.0);
    let failures = "hyphae_task_attempt_failures_total";
    assert_eq!(value(failures, &[("agent_type", "testkit"), ("error_type", "plugin")]), 2.0);
    assert_eq!(value(failures, &[("agent_type", "testkit"), ("error_type", "timeout")]), 1.0);
    assert_eq!(value("hyphae_task_attempt_duration_seconds_count", &[("agent_type", "testkit")]), 3.0);
    assert_eq!(value("hyphae_tasks_running", &[("agent_type", "fib")]), 0.0);
    assert_eq!(value("hyphae_workflows_submitted_total", &[]), 1.0);
    assert!(value("hyphae_events_written_total", &[]) >= 10.0, "{text}");
    assert_eq!(value("hyphae_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    assert_eq!(value("hyphae_cluster_workflows", &[("status", "completed")]), 1.0);
    assert_eq!(value("hyphae_cluster_tasks", &[("status", "completed")]), 2.0);
    assert_eq!(value("hyphae_cluster_workers", &[("health", "healthy")]), 1.0);
    assert_eq!(value("hyphae_cluster_workers", &[("health", "failed")]), 0.0);
    assert_eq!(value("hyphae_cluster_tasks_past_timeout", &[]), 0.0);
    assert_eq!(value("hyphae_cluster_queue_depth", &[("agent_type", "llm")]), 0.0, "an empty queue is 0");
    assert!(value("hyphae_cluster_gauges_age_seconds", &[]) < 5.0);
    let egress = [("agent_type", "llm"), ("host", origin.as_str()), ("outcome", "response")];
    assert_eq!(value("hyphae_egress_requests_total", &egress), 1.0);
    assert_eq!(value("hyphae_llm_tokens_total", &[("agent_type", "llm"), ("kind", "completion")]), 5.0);
    let route = [("method", "GET"), ("route", "/v1/workflows/{id}"), ("status", "2xx")];
    assert_eq!(value("hyphae_http_requests_total", &route), 1.0);
    assert_eq!(value("hyphae_http_requests_total", &[("route", "unmatched"), ("status", "4xx")]), 1.0);
    assert!(value("hyphae_http_request_duration_seconds_count", &[("route", "/v1/workflows")]) >= 1.0);
    if cfg!(target_os = "linux") {
        assert!(value("process_resident_memory_bytes", &[]) > 0.0);
        assert!(value("process_open_fds", &[]) > 0.0);
    }
    if backend == Backend::Postgres {
        assert!(value("hyphae_db_connections_max", &[]) >= 1.0, "{text}");
    }

    // Units and suffixes: counters end in `_total`, units come last, seconds not milliseconds.
    for (name, kind) in types(&text) {
        assert!(name.starts_with("hyphae_") || name.starts_with("process_"), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{name}");
        assert!(!name.contains("_ms") && !name.contains("millis"), "{name}: durations in seconds");
        for unit in ["seconds", "bytes"] {
            assert!(!name.contains(unit) || name.ends_with(unit), "{name}: the unit comes last");
        }
        if kind == "counter" {
            let total = format!("{name}_total");
            assert!(samples.iter().any(|s| s.name == total) && !samples.iter().any(|s| s.name == name), "{name}");
        }
    }

    // Bounded label values: nothing the plugin or the client chose.
    assert!(!text.contains(PLUGIN_ERROR), "a plugin's error type became a label value:\n{text}");
    assert!(!text.contains(&id) && !text.contains("/no/such/route"), "a path became a label value:\n{text}");
    let agent_types = ["echo", "fib", "text-stats", "testkit", "reviewer", "llm"];
    let mut error_types: BTreeSet<&str> = HOST_ERROR_TYPES.iter().copied().collect();
    error_types.extend(["plugin", "other"]);
    for s in &samples {
        for (label, v) in &s.labels {
            let allowed = match label.as_str() {
                "agent_type" => agent_types.contains(&v.as_str()),
                "error_type" => error_types.contains(v.as_str()),
                "outcome" if s.name.starts_with("hyphae_task") => {
                    ["completed", "failed", "timeout", "cancelled"].contains(&v.as_str())
                }
                "outcome" => ["response", "denied", "error", "aborted"].contains(&v.as_str()),
                "route" => v == "unmatched" || (v.starts_with('/') && !v.contains(&id)),
                "status" if s.name.starts_with("hyphae_http") => v.len() == 3 && v.ends_with("xx"),
                _ => true,
            };
            assert!(allowed, "{} has {label}={v:?}", s.name);
        }
    }

    // promtool lints the scrape (in the classic text format) when it is installed
    // (scripts/check-alerts.sh installs it).
    if let Some(out) = promtool_check_metrics(&classic(&text)) {
        assert!(out.status.success(), "promtool check metrics: {}\n{text}", String::from_utf8_lossy(&out.stdout));
    } else {
        eprintln!("promtool not found: `promtool check metrics` skipped (scripts/check-alerts.sh installs it)");
    }

    // Every metric the alert rules and the dashboard use is in the scrape.
    let names: BTreeSet<&str> = samples.iter().map(|s| s.name.as_str()).collect();
    let dir = support::repo_root().join("docs/operations");
    let alerts = std::fs::read_to_string(dir.join("alerts.yml")).unwrap();
    let rules: Vec<&str> = alerts.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
    let dashboard = dashboard_exprs(&std::fs::read_to_string(dir.join("grafana-dashboard.json")).unwrap());
    for (file, exprs) in [("alerts.yml", rules.join("\n")), ("grafana-dashboard.json", dashboard.join("\n"))] {
        let used = metric_names(&exprs);
        assert!(used.len() >= 4, "{file} uses {used:?}");
        for name in used {
            assert!(names.contains(name.as_str()), "{file} uses {name}, which the scrape does not have:\n{text}");
        }
    }
}

/// The dashboard is importable (a `DS_PROMETHEUS` input every panel uses) and has the expected
/// panels, each with a query. Returns every query (panels and variables).
fn dashboard_exprs(json_text: &str) -> Vec<String> {
    let d: Value = serde_json::from_str(json_text).expect("grafana-dashboard.json is JSON");
    assert_eq!(d["__inputs"][0]["name"], "DS_PROMETHEUS", "importable with a data source input");
    assert_eq!(d["__inputs"][0]["pluginId"], "prometheus");
    let panels: Vec<&Value> = d["panels"].as_array().unwrap().iter().filter(|p| p["type"] != "row").collect();
    let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    let mut exprs = Vec::new();
    for p in &panels {
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", p["title"]);
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has no query", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().unwrap();
            assert!(!expr.trim().is_empty(), "panel {}", p["title"]);
            exprs.push(expr.to_string());
        }
    }
    let titles: BTreeSet<&str> = panels.iter().map(|p| p["title"].as_str().unwrap()).collect();
    for title in [
        "Attempts by outcome",
        "Success rate",
        "Attempt duration p50 / p95",
        "Tasks running",
        "Queue depth",
        "Worker health",
        "HTTP requests",
        "HTTP latency p95",
        "Egress requests",
        "LLM tokens",
    ] {
        assert!(titles.contains(title), "no panel {title:?} in {titles:?}");
    }
    for v in d["templating"]["list"].as_array().unwrap() {
        exprs.push(v["definition"].as_str().unwrap().to_string());
    }
    exprs
}

/// The metric names (`hyphae_...`, `process_...`) in PromQL text.
fn metric_names(promql: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\b(?:hyphae|process)_[a-z0-9_]*[a-z0-9]\b").unwrap();
    re.find_iter(promql).map(|m| m.as_str().to_string()).collect()
}

/// One sample line of the scrape.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of an OpenMetrics text (label values unescaped).
fn samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let name_end = line.find(['{', ' ']).unwrap();
        let name = line[..name_end].to_string();
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let mut key = String::new();
            let mut end = 0;
            while let Some((i, c)) = chars.next() {
                match c {
                    '}' => {
                        end = i + 1;
                        break;
                    }
                    ',' => {}
                    '=' => {
                        assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                        let mut v = String::new();
                        while let Some((_, c)) = chars.next() {
                            match c {
                                '\\' => v.push(chars.next().map(|(_, c)| if c == 'n' { '\n' } else { c }).unwrap()),
                                '"' => break,
                                c => v.push(c),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), v);
                    }
                    c => key.push(c),
                }
            }
            rest = &body[end..];
        }
        let value = rest.split_whitespace().next().unwrap();
        let value = value.parse::<f64>().unwrap_or_else(|_| panic!("value of {line}"));
        out.push(Sample { name, labels, value });
    }
    out
}

/// The metric families and their types (`# TYPE` lines).
fn types(text: &str) -> Vec<(String, String)> {
    let lines = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split_once(' '));
    lines.map(|(name, kind)| (name.to_string(), kind.to_string())).collect()
}

/// The OpenMetrics text in the classic Prometheus text format that `promtool check metrics`
/// reads: a counter's family is named with its `_total`, `# UNIT` and `# EOF` are dropped.
fn classic(text: &str) -> String {
    let counters: BTreeSet<&str> =
        text.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.starts_with("# UNIT ") && *l != "# EOF") {
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let (name, rest) = line.strip_prefix(prefix)?.split_once(' ')?;
            counters.contains(name).then(|| format!("{prefix}{name}_total {rest}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// `promtool check metrics` on `text`; `None` when promtool is not installed.
fn promtool_check_metrics(text: &str) -> Option<std::process::Output> {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let mut out = child.wait_with_output().unwrap();
    out.stdout.extend_from_slice(&out.stderr);
    Some(out)
}

#[test]
fn classic_text_names_counters_by_their_samples() {
    let om = "# HELP a_x Xs.\n# TYPE a_x counter\na_x_total 1\n# HELP b_seconds B.\n# TYPE b_seconds gauge\n\
              # UNIT b_seconds seconds\nb_seconds 0.5\n# EOF\n";
    let expected = "# HELP a_x_total Xs.\n# TYPE a_x_total counter\na_x_total 1\n# HELP b_seconds B.\n\
                    # TYPE b_seconds gauge\nb_seconds 0.5\n";
    assert_eq!(classic(om), expected);
    let s = samples(r#"m_total{a="x,y",b="q\"uote"} 3"#);
    assert_eq!(
        (s[0].name.as_str(), s[0].labels["a"].as_str(), s[0].labels["b"].as_str()),
        ("m_total", "x,y", "q\"uote")
    );
    assert_eq!(s[0].value, 3.0);
}
