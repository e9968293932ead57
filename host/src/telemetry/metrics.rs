//! Prometheus metrics of the host. Every metric is listed in `docs/operations/metrics.md`.
//!
//! Two scopes, told apart by name:
//! - `hyphae_*` (and the standard `process_*`): what this host did since it started, or holds
//!   now, kept in memory. Their HELP says "on this host"; sum them over hosts for the cluster.
//! - `hyphae_cluster_*`: gauges of the whole cluster, read from the database. Every host reports
//!   the same values, so aggregate them with `max`, never `sum`. They are cached: the database is
//!   read at most once per [`CLUSTER_REFRESH`] however often `/metrics` is scraped, and
//!   `hyphae_cluster_gauges_age_seconds` tells how old the values are.
//!
//! Label values are bounded: agent types (the installed plugins), allow-list entries (the
//! manifests), route templates, and fixed sets (outcomes, statuses, the host's own error types).
//! Nothing a plugin chooses becomes a label value.

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::process::ProcessCollector;

/// The longest the `hyphae_cluster_*` gauges are served from memory before the database is read
/// again (on the next scrape).
pub const CLUSTER_REFRESH: Duration = Duration::from_secs(5);

/// The error types the host gives failed attempts itself (`host/src/plugins/call.rs`,
/// `host/src/engine/task.rs`, `host/src/lifecycle/`). They are label values as they are; the
/// type of an error a plugin returned is counted as `plugin`, and any other as `other`.
pub const HOST_ERROR_TYPES: &[&str] = &[
    "timeout",
    "cancelled",
    "trap",
    "out_of_memory",
    "host_memory_exhausted",
    "output_too_large",
    "invalid_output",
    "no_plugin",
    "handoff_validation",
    "budget_exhausted",
    "worker_lost",
    "reset",
];

/// The `error_type` label value of a failed attempt: the host's own error type, `plugin` when
/// the plugin returned the error (whatever type it chose, even one named like the host's), and
/// `other` for a type the host does not list.
pub fn error_type_label(error_type: &str, by_plugin: bool) -> &'static str {
    if by_plugin {
        return "plugin";
    }
    HOST_ERROR_TYPES.iter().find(|t| **t == error_type).copied().unwrap_or("other")
}

/// The values of the `outcome` label of `hyphae_task_attempts_total`.
const OUTCOMES: [&str; 4] = ["completed", "failed", "timeout", "cancelled"];

/// The `outcome` of an attempt that failed with the error type label `error_type` (`None`: it
/// completed): `completed`, `timeout`, `cancelled` or `failed`.
fn outcome(error_type: Option<&'static str>) -> &'static str {
    match error_type {
        None => "completed",
        Some("timeout") => "timeout",
        Some("cancelled") => "cancelled",
        Some(_) => "failed",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentLabel {
    agent_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    agent_type: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    agent_type: String,
    error_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EgressLabels {
    agent_type: String,
    /// The allow-list entry that admitted the request, or `not_allowed`: bounded by the manifests.
    host: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    agent_type: String,
    /// `prompt` or `completion`.
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    /// The route template (`/v1/workflows/{id}`), never the requested path.
    route: String,
    /// `1xx` ... `5xx`.
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealthLabel {
    health: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    rustc: &'static str,
    target: &'static str,
}

/// What one read of the database gives the `hyphae_cluster_*` gauges (and the host's own
/// database gauges, measured on the way).
#[derive(Debug, Clone, Default)]
pub struct ClusterGauges {
    /// Workflows by status, every status listed (zero included).
    pub workflows: Vec<(String, i64)>,
    /// Tasks by status, every status listed (zero included).
    pub tasks: Vec<(String, i64)>,
    /// Ready tasks of running workflows waiting to be claimed, by agent type (every agent type a
    /// live worker serves listed, zero included).
    pub queue_depth: Vec<(String, i64)>,
    /// Ready tasks waiting because no live worker serves their agent type, by agent type (the
    /// agent types of `queue_depth`, zero included).
    pub unserved: Vec<(String, i64)>,
    /// Workers by health (`healthy`, `degraded`, `critical`, `failed`, `stopped`), every state
    /// listed.
    pub workers: Vec<(&'static str, i64)>,
    /// Running tasks whose attempt has run longer than its timeout.
    pub tasks_past_timeout: i64,
    /// How long a trivial query took through this host's read connections: the wait for a free
    /// connection plus one round trip.
    pub db_probe: Duration,
    /// This host's PostgreSQL pool: connections open and idle, and the most it opens (absent on
    /// SQLite).
    pub db_pool: Option<DbPool>,
}

/// Connections of a host's PostgreSQL pool.
#[derive(Debug, Clone, Copy, Default)]
pub struct DbPool {
    /// Connections open (idle or in use).
    pub open: u32,
    /// Open connections no one uses.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// When the cluster gauges were last read (or tried).
#[derive(Default)]
struct Refresh {
    tried: Option<Instant>,
    succeeded: Option<Instant>,
}

/// All metrics of one host.
pub struct Metrics {
    registry: Registry,
    started: Instant,
    refresh: tokio::sync::Mutex<Refresh>,
    // This host.
    workflows_submitted: Counter,
    attempts: Family<AttemptLabels, Counter>,
    attempt_failures: Family<FailureLabels, Counter>,
    attempt_duration: Family<AgentLabel, Histogram>,
    queue_wait: Family<AgentLabel, Histogram>,
    attempts_lost: Counter,
    retries: Family<AgentLabel, Counter>,
    running: Family<AgentLabel, Gauge>,
    plugin_instantiation: Family<AgentLabel, Histogram>,
    events_written: Counter,
    egress_requests: Family<EgressLabels, Counter>,
    llm_tokens: Family<TokenLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram>,
    db_probe: Gauge<f64, AtomicU64>,
    db_connections: Family<StateLabel, Gauge>,
    /// A family without labels, so that it is absent until set (SQLite has no pool).
    db_connections_max: Family<Vec<(String, String)>, Gauge>,
    // The cluster.
    cluster_workflows: Family<StatusLabel, Gauge>,
    cluster_tasks: Family<StatusLabel, Gauge>,
    cluster_queue_depth: Family<AgentLabel, Gauge>,
    cluster_unserved: Family<AgentLabel, Gauge>,
    cluster_workers: Family<HealthLabel, Gauge>,
    cluster_past_timeout: Gauge,
    cluster_age: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Histogram buckets from `10^lowest` seconds over `decades` decades, three per decade (1, 2.5,
/// 5), and the top `10^(lowest + decades)`.
fn seconds_buckets(lowest: i32, decades: i32) -> impl Iterator<Item = f64> {
    // Parsed from decimal text, so that the `le` labels read 0.0025, not 0.0025000000000000005.
    let bucket = |m: &str, e: i32| format!("{m}e{e}").parse::<f64>().unwrap_or_default();
    let top = bucket("1", lowest + decades);
    (lowest..lowest + decades).flat_map(move |e| ["1", "2.5", "5"].map(|m| bucket(m, e))).chain([top])
}

impl Metrics {
    /// A fresh set of metrics: the host's own under `hyphae_`, the standard `process_*` ones,
    /// and `hyphae_build_info`.
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            started: Instant::now(),
            refresh: Default::default(),
            workflows_submitted: Counter::default(),
            attempts: Family::default(),
            attempt_failures: Family::default(),
            attempt_duration: Family::new_with_constructor(|| Histogram::new(seconds_buckets(-3, 6))),
            queue_wait: Family::new_with_constructor(|| Histogram::new(seconds_buckets(-3, 6))),
            attempts_lost: Counter::default(),
            retries: Family::default(),
            running: Family::default(),
            plugin_instantiation: Family::new_with_constructor(|| Histogram::new(seconds_buckets(-5, 6))),
            events_written: Counter::default(),
            egress_requests: Family::default(),
            llm_tokens: Family::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(|| Histogram::new(seconds_buckets(-4, 5))),
            db_probe: Gauge::default(),
            db_connections: Family::default(),
            db_connections_max: Family::default(),
            cluster_workflows: Family::default(),
            cluster_tasks: Family::default(),
            cluster_queue_depth: Family::default(),
            cluster_unserved: Family::default(),
            cluster_workers: Family::default(),
            cluster_past_timeout: Gauge::default(),
            cluster_age: Gauge::default(),
        };
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let r = root.sub_registry_with_prefix("hyphae");
        let build = Family::<BuildLabels, Gauge>::default();
        let known = |v: Option<&'static str>| v.filter(|v| !v.is_empty()).unwrap_or("unknown");
        let labels = BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
            rustc: known(option_env!("HYPHAE_RUSTC_VERSION")),
            target: known(option_env!("HYPHAE_TARGET")),
        };
        build.get_or_create(&labels).set(1);
        r.register("build_info", "Always 1: the version of this host's binary, its compiler and target", build);

        // This host: counters since it started, gauges of what it holds now.
        r.register("workflows_submitted", "Workflows submitted on this host", m.workflows_submitted.clone());
        r.register(
            "task_attempts",
            "Task attempts that ended on this host, by agent type and outcome (completed, failed, timeout, cancelled)",
            m.attempts.clone(),
        );
        r.register(
            "task_attempt_failures",
            "Task attempts that failed on this host, by agent type and error type (the host's own error types; \
             plugin: an error the plugin returned)",
            m.attempt_failures.clone(),
        );
        r.register_with_unit(
            "task_attempt_duration",
            "Duration of the task attempts that ended on this host, by agent type",
            Unit::Seconds,
            m.attempt_duration.clone(),
        );
        r.register_with_unit(
            "task_queue_wait",
            "Time the tasks started on this host waited between ready and claimed, by agent type",
            Unit::Seconds,
            m.queue_wait.clone(),
        );
        r.register(
            "task_attempts_lost",
            "Attempts of lost workers (stopped, or their lease expired) this host took over, each recorded as a \
             worker_lost failure",
            m.attempts_lost.clone(),
        );
        r.register("task_retries", "Retries scheduled on this host, by agent type", m.retries.clone());
        r.register("tasks_running", "Task attempts running on this host now, by agent type", m.running.clone());
        r.register_with_unit(
            "plugin_instantiation",
            "Time to instantiate a plugin for one call on this host, by agent type",
            Unit::Seconds,
            m.plugin_instantiation.clone(),
        );
        r.register("events_written", "Coordination events written by this host", m.events_written.clone());
        r.register(
            "egress_requests",
            "Outbound HTTP requests of plugins on this host, by agent type, admitting allow-list entry \
             (not_allowed: refused) and outcome",
            m.egress_requests.clone(),
        );
        r.register(
            "llm_tokens",
            "Language-model tokens reported by responses to plugins on this host, by agent type and kind",
            m.llm_tokens.clone(),
        );
        r.register(
            "http_requests",
            "HTTP requests this host answered, by method, route template and status class",
            m.http_requests.clone(),
        );
        r.register_with_unit(
            "http_request_duration",
            "Time this host took to answer HTTP requests (to the response head), by method and route template",
            Unit::Seconds,
            m.http_duration.clone(),
        );
        r.register_with_unit(
            "db_probe",
            "Time a trivial query took through this host's read connections at the last cluster refresh: the \
             wait for a free connection plus one round trip",
            Unit::Seconds,
            m.db_probe.clone(),
        );
        r.register(
            "db_connections",
            "Connections of this host's PostgreSQL pool, by state (idle, in_use)",
            m.db_connections.clone(),
        );
        r.register(
            "db_connections_max",
            "Most connections this host's PostgreSQL pool opens",
            m.db_connections_max.clone(),
        );

        // The cluster, read from the database.
        r.register("cluster_workflows", "Workflows by status, in the whole cluster", m.cluster_workflows.clone());
        r.register("cluster_tasks", "Tasks by status, in the whole cluster", m.cluster_tasks.clone());
        r.register(
            "cluster_queue_depth",
            "Ready tasks of running workflows waiting to be claimed (or for their retry time), by agent type, in \
             the whole cluster",
            m.cluster_queue_depth.clone(),
        );
        r.register(
            "cluster_tasks_unserved",
            "Ready tasks waiting because no live worker serves their agent type, by agent type, in the whole cluster",
            m.cluster_unserved.clone(),
        );
        r.register(
            "cluster_workers",
            "Host workers by heartbeat health (healthy, degraded, critical, failed; stopped: shut down cleanly), \
             seen in the last 24 hours",
            m.cluster_workers.clone(),
        );
        r.register(
            "cluster_tasks_past_timeout",
            "Running tasks whose attempt has run longer than its timeout, in the whole cluster",
            m.cluster_past_timeout.clone(),
        );
        r.register_with_unit(
            "cluster_gauges_age",
            "Age of the values of the hyphae_cluster_ gauges this host serves",
            Unit::Seconds,
            m.cluster_age.clone(),
        );
        Metrics { registry: root, ..m }
    }

    /// A workflow was submitted.
    pub fn workflow_submitted(&self) {
        self.workflows_submitted.inc();
    }

    /// An attempt of a task of `agent_type` started, after its task waited `queued` since ready.
    /// Every outcome's series of the agent type exists from then on (at 0), so that rates and
    /// ratios see the first of each.
    pub fn attempt_started(&self, agent_type: &str, queued: Duration) {
        let agent = AgentLabel { agent_type: agent_type.to_string() };
        self.queue_wait.get_or_create(&agent).observe(queued.as_secs_f64());
        self.running.get_or_create(&agent).inc();
        for outcome in OUTCOMES {
            let _ = self.attempts.get_or_create(&AttemptLabels { agent_type: agent_type.to_string(), outcome });
        }
    }

    /// An attempt started by [`Metrics::attempt_started`] ended after `took`: completed
    /// (`failure` is `None`), or failed with the error type label `failure` (see
    /// [`error_type_label`]).
    pub fn attempt_finished(&self, agent_type: &str, took: Duration, failure: Option<&'static str>) {
        let agent = AgentLabel { agent_type: agent_type.to_string() };
        self.running.get_or_create(&agent).dec();
        self.attempt_duration.get_or_create(&agent).observe(took.as_secs_f64());
        let outcome = outcome(failure);
        self.attempts.get_or_create(&AttemptLabels { agent_type: agent_type.to_string(), outcome }).inc();
        if let Some(error_type) = failure {
            self.attempt_failures.get_or_create(&FailureLabels { agent_type: agent.agent_type, error_type }).inc();
        }
    }

    /// This host took over `n` attempts of lost workers.
    pub fn attempts_lost(&self, n: usize) {
        self.attempts_lost.inc_by(n as u64);
    }

    /// A retry was scheduled.
    pub fn retry(&self, agent_type: &str) {
        self.retries.get_or_create(&AgentLabel { agent_type: agent_type.to_string() }).inc();
    }

    /// An outbound request of a plugin of `agent_type` ended with `outcome`; `host` is the
    /// allow-list entry that admitted it (`None`: it was not allowed).
    pub fn egress(&self, agent_type: &str, host: Option<&str>, outcome: &'static str, tokens: Option<(u64, u64)>) {
        let labels = EgressLabels {
            agent_type: agent_type.to_string(),
            host: host.unwrap_or("not_allowed").to_string(),
            outcome,
        };
        self.egress_requests.get_or_create(&labels).inc();
        if let Some((prompt, completion)) = tokens {
            for (kind, n) in [("prompt", prompt), ("completion", completion)] {
                self.llm_tokens.get_or_create(&TokenLabels { agent_type: agent_type.to_string(), kind }).inc_by(n);
            }
        }
    }

    /// A plugin instance was created in `took`.
    pub fn plugin_instantiated(&self, agent_type: &str, took: Duration) {
        self.plugin_instantiation
            .get_or_create(&AgentLabel { agent_type: agent_type.to_string() })
            .observe(took.as_secs_f64());
    }

    /// An HTTP request was answered with `status` after `took`. `route` is the route template
    /// the request matched (`unmatched` when none did), `method` one of a fixed set.
    pub fn http_request(&self, method: &'static str, route: &str, status: u16, took: Duration) {
        let status = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let route = route.to_string();
        self.http_duration.get_or_create(&RouteLabels { method, route: route.clone() }).observe(took.as_secs_f64());
        self.http_requests.get_or_create(&HttpLabels { method, route, status }).inc();
    }

    /// The store of this host has written `n` events since it opened (the counter follows).
    pub fn set_events_written(&self, n: u64) {
        let seen = self.events_written.get();
        if n > seen {
            self.events_written.inc_by(n - seen);
        }
    }

    /// Render all metrics in the OpenMetrics text format. The cluster gauges are read again with
    /// `read` when they are older than [`CLUSTER_REFRESH`] (one read at a time; concurrent
    /// scrapes wait for it); when reading fails they keep their values, and grow older.
    pub async fn render<F, Fut, E>(&self, read: F) -> String
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<ClusterGauges, E>>,
        E: std::fmt::Display,
    {
        {
            let mut refresh = self.refresh.lock().await;
            if refresh.tried.is_none_or(|t| t.elapsed() >= CLUSTER_REFRESH) {
                refresh.tried = Some(Instant::now());
                match read().await {
                    Ok(gauges) => {
                        self.set_cluster(&gauges);
                        refresh.succeeded = Some(Instant::now());
                    }
                    Err(e) => tracing::warn!("metrics: cannot read the cluster gauges from the database: {e}"),
                }
            }
            let since = refresh.succeeded.unwrap_or(self.started);
            self.cluster_age.set(since.elapsed().as_secs_f64());
        }
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    fn set_cluster(&self, g: &ClusterGauges) {
        let by_status = |family: &Family<StatusLabel, Gauge>, counts: &[(String, i64)]| {
            family.clear();
            for (status, n) in counts {
                family.get_or_create(&StatusLabel { status: status.clone() }).set(*n);
            }
        };
        by_status(&self.cluster_workflows, &g.workflows);
        by_status(&self.cluster_tasks, &g.tasks);
        let by_agent = |family: &Family<AgentLabel, Gauge>, counts: &[(String, i64)]| {
            family.clear();
            for (agent_type, n) in counts {
                family.get_or_create(&AgentLabel { agent_type: agent_type.clone() }).set(*n);
            }
        };
        by_agent(&self.cluster_queue_depth, &g.queue_depth);
        by_agent(&self.cluster_unserved, &g.unserved);
        self.cluster_workers.clear();
        for &(health, n) in &g.workers {
            self.cluster_workers.get_or_create(&HealthLabel { health }).set(n);
        }
        self.cluster_past_timeout.set(g.tasks_past_timeout);
        self.db_probe.set(g.db_probe.as_secs_f64());
        if let Some(pool) = g.db_pool {
            let in_use = pool.open.saturating_sub(pool.idle);
            self.db_connections.get_or_create(&StateLabel { state: "idle" }).set(pool.idle as i64);
            self.db_connections.get_or_create(&StateLabel { state: "in_use" }).set(in_use as i64);
            self.db_connections_max.get_or_create(&Vec::new()).set(pool.max as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> ClusterGauges {
        ClusterGauges {
            workflows: vec![("running".into(), 2), ("failed".into(), 0)],
            queue_depth: vec![("fib".into(), 5)],
            workers: vec![("healthy", 1), ("failed", 0)],
            tasks_past_timeout: 1,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn renders_what_was_recorded() {
        let m = Metrics::new();
        m.attempt_started("fib", Duration::from_millis(1));
        m.attempt_started("fib", Duration::from_millis(1));
        m.attempt_finished("fib", Duration::from_millis(3), None);
        m.attempt_finished("fib", Duration::from_millis(3), Some(error_type_label("timeout", false)));
        m.egress("llm", Some("https://api.openai.com"), "response", Some((3, 4)));
        m.egress("llm", None, "denied", None);
        m.http_request("GET", "/v1/workflows/{id}", 404, Duration::from_millis(2));
        m.set_events_written(7);
        let unserved = ClusterGauges { unserved: vec![("fib".into(), 3)], ..gauges() };
        let text = m.render(|| async { Ok::<_, String>(unserved) }).await;
        assert!(text.contains(r#"hyphae_cluster_tasks_unserved{agent_type="fib"} 3"#), "{text}");
        assert!(text.contains(r#"hyphae_task_attempts_total{agent_type="fib",outcome="completed"} 1"#), "{text}");
        assert!(text.contains(r#"hyphae_task_attempts_total{agent_type="fib",outcome="timeout"} 1"#), "{text}");
        let failures = r#"hyphae_task_attempt_failures_total{agent_type="fib",error_type="timeout"} 1"#;
        assert!(text.contains(failures), "{text}");
        assert!(text.contains(r#"hyphae_tasks_running{agent_type="fib"} 0"#), "{text}");
        assert!(text.contains(r#"hyphae_task_attempts_total{agent_type="fib",outcome="cancelled"} 0"#), "{text}");
        assert!(text.contains(r#"hyphae_task_attempt_duration_seconds_count{agent_type="fib"} 2"#), "{text}");
        assert!(text.contains("# UNIT hyphae_task_attempt_duration_seconds seconds"), "{text}");
        assert!(text.contains(r#"hyphae_cluster_workflows{status="running"} 2"#), "{text}");
        assert!(text.contains(r#"hyphae_cluster_queue_depth{agent_type="fib"} 5"#), "{text}");
        assert!(text.contains(r#"hyphae_cluster_workers{health="failed"} 0"#), "{text}");
        assert!(text.contains("hyphae_cluster_tasks_past_timeout 1"), "{text}");
        assert!(text.contains("hyphae_events_written_total 7"), "{text}");
        assert!(text.contains(r#"hyphae_build_info{version=""#), "{text}");
        let http = r#"hyphae_http_requests_total{method="GET",route="/v1/workflows/{id}",status="4xx"} 1"#;
        assert!(text.contains(http), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        let egress =
            r#"hyphae_egress_requests_total{agent_type="llm",host="https://api.openai.com",outcome="response"} 1"#;
        assert!(text.contains(egress), "{text}");
        assert!(text.contains(r#"host="not_allowed",outcome="denied"} 1"#), "{text}");
        assert!(text.contains(r#"hyphae_llm_tokens_total{agent_type="llm",kind="completion"} 4"#), "{text}");
        if cfg!(target_os = "linux") {
            assert!(text.contains("process_resident_memory_bytes "), "{text}");
            assert!(text.contains("process_cpu_seconds_total "), "{text}");
        }
    }

    #[tokio::test]
    async fn cluster_gauges_are_read_at_most_once_per_refresh_interval() {
        let m = Metrics::new();
        let reads = std::sync::atomic::AtomicUsize::new(0);
        let read = || async {
            reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, String>(gauges())
        };
        m.render(read).await;
        let text = m.render(|| async { Ok::<_, String>(ClusterGauges::default()) }).await;
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(text.contains(r#"hyphae_cluster_workflows{status="running"} 2"#), "served from memory: {text}");
        let age = text.lines().find_map(|l| l.strip_prefix("hyphae_cluster_gauges_age_seconds ")).unwrap();
        assert!(age.parse::<f64>().unwrap() < 1.0, "{text}");

        // A failed read keeps the last values.
        let m = Metrics::new();
        m.render(|| async { Ok::<_, String>(gauges()) }).await;
        m.refresh.lock().await.tried = Some(Instant::now() - CLUSTER_REFRESH);
        let text = m.render(|| async { Err("database gone") }).await;
        assert!(text.contains("hyphae_cluster_tasks_past_timeout 1"), "{text}");
    }

    #[test]
    fn plugin_chosen_error_types_are_not_labels() {
        assert_eq!(error_type_label("timeout", false), "timeout");
        assert_eq!(error_type_label("timeout", true), "plugin", "a plugin's own `timeout` is the plugin's");
        assert_eq!(error_type_label("rate_limited", true), "plugin");
        assert_eq!(error_type_label("something_new", false), "other");
        assert_eq!(outcome(Some("plugin")), "failed");
        assert_eq!(outcome(Some("cancelled")), "cancelled");
        assert_eq!(outcome(None), "completed");
    }

    #[test]
    fn buckets_rise_by_1_2_5_steps() {
        let b: Vec<f64> = seconds_buckets(-3, 2).collect();
        assert_eq!(b, [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1]);
    }
}
