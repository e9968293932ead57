//! Prometheus metrics of the host.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentLabel {
    agent_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentStatusLabel {
    agent_type: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EgressLabel {
    agent_type: String,
    /// The allow-list entry that admitted the request, or `not_allowed`: bounded by the manifests.
    host: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabel {
    agent_type: String,
    /// `prompt` or `completion`.
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    error_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

/// Counts of workflows and tasks by status, and ready tasks waiting, read from the store when
/// metrics are scraped.
#[derive(Debug, Clone, Default)]
pub struct StatusGauges {
    pub workflows: Vec<(String, i64)>,
    pub tasks: Vec<(String, i64)>,
    pub queue_depth: i64,
    /// Ready tasks waiting because no live worker serves their agent type, by agent type.
    pub unserved: Vec<(String, i64)>,
    /// Events written by this host since it started.
    pub events_written: u64,
}

/// All metrics of one host.
pub struct Metrics {
    registry: Registry,
    workflows_submitted: Counter,
    tasks_started: Family<AgentLabel, Counter>,
    tasks_finished: Family<AgentStatusLabel, Counter>,
    task_duration: Family<AgentLabel, Histogram>,
    retries: Family<AgentLabel, Counter>,
    failures: Family<ErrorLabel, Counter>,
    plugin_instantiation: Family<AgentLabel, Histogram>,
    events_written: Counter,
    egress_requests: Family<EgressLabel, Counter>,
    llm_tokens: Family<TokenLabel, Counter>,
    workflows: Family<StatusLabel, Gauge>,
    tasks: Family<StatusLabel, Gauge>,
    queue_depth: Gauge,
    unserved: Family<AgentLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, registered under the `hyphae` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("hyphae");
        let histogram = || Histogram::new(exponential_buckets(0.0001, 4.0, 12));
        let m = Metrics {
            workflows_submitted: Counter::default(),
            tasks_started: Family::default(),
            tasks_finished: Family::default(),
            task_duration: Family::new_with_constructor(histogram),
            retries: Family::default(),
            failures: Family::default(),
            plugin_instantiation: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000005, 4.0, 10))
            }),
            events_written: Counter::default(),
            egress_requests: Family::default(),
            llm_tokens: Family::default(),
            workflows: Family::default(),
            tasks: Family::default(),
            queue_depth: Gauge::default(),
            unserved: Family::default(),
            registry: Registry::default(),
        };
        registry.register("workflows_submitted", "Workflows submitted", m.workflows_submitted.clone());
        registry.register("tasks_started", "Task attempts started, by agent type", m.tasks_started.clone());
        registry.register(
            "tasks_finished",
            "Task attempts finished, by agent type and status",
            m.tasks_finished.clone(),
        );
        registry.register("task_duration_seconds", "Duration of task attempts, by agent type", m.task_duration.clone());
        registry.register("task_retries", "Task retries scheduled, by agent type", m.retries.clone());
        registry.register("task_failures", "Failed task attempts, by error type", m.failures.clone());
        registry.register(
            "plugin_instantiation_seconds",
            "Time to instantiate a plugin for one call, by agent type",
            m.plugin_instantiation.clone(),
        );
        registry.register("events_written", "Coordination events written", m.events_written.clone());
        registry.register(
            "egress_requests",
            "Outbound HTTP requests of plugins, by agent type, admitting allow-list entry and outcome",
            m.egress_requests.clone(),
        );
        registry.register(
            "llm_tokens",
            "Language-model tokens reported by responses to plugins, by agent type and kind",
            m.llm_tokens.clone(),
        );
        registry.register("workflows", "Workflows by status", m.workflows.clone());
        registry.register("tasks", "Tasks by status", m.tasks.clone());
        registry.register("queue_depth", "Ready tasks waiting for a slot", m.queue_depth.clone());
        registry.register(
            "tasks_unserved",
            "Ready tasks waiting because no live worker serves their agent type, by agent type",
            m.unserved.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A workflow was submitted.
    pub fn workflow_submitted(&self) {
        self.workflows_submitted.inc();
    }

    /// An attempt of a task of `agent_type` started.
    pub fn task_started(&self, agent_type: &str) {
        self.tasks_started.get_or_create(&AgentLabel { agent_type: agent_type.to_string() }).inc();
    }

    /// An attempt finished with `status` after `took`.
    pub fn task_finished(&self, agent_type: &str, status: &str, took: Duration) {
        let agent = AgentLabel { agent_type: agent_type.to_string() };
        self.task_duration.get_or_create(&agent).observe(took.as_secs_f64());
        let label = AgentStatusLabel { agent_type: agent_type.to_string(), status: status.to_string() };
        self.tasks_finished.get_or_create(&label).inc();
    }

    /// A retry was scheduled.
    pub fn retry(&self, agent_type: &str) {
        self.retries.get_or_create(&AgentLabel { agent_type: agent_type.to_string() }).inc();
    }

    /// An attempt failed with `error_type`.
    pub fn failure(&self, error_type: &str) {
        self.failures.get_or_create(&ErrorLabel { error_type: error_type.to_string() }).inc();
    }

    /// An outbound request of a plugin of `agent_type` ended with `outcome`; `host` is the
    /// allow-list entry that admitted it (`None`: it was not allowed).
    pub fn egress(&self, agent_type: &str, host: Option<&str>, outcome: &str, tokens: Option<(u64, u64)>) {
        let label = EgressLabel {
            agent_type: agent_type.to_string(),
            host: host.unwrap_or("not_allowed").to_string(),
            outcome: outcome.to_string(),
        };
        self.egress_requests.get_or_create(&label).inc();
        if let Some((prompt, completion)) = tokens {
            for (kind, n) in [("prompt", prompt), ("completion", completion)] {
                let label = TokenLabel { agent_type: agent_type.to_string(), kind: kind.to_string() };
                self.llm_tokens.get_or_create(&label).inc_by(n);
            }
        }
    }

    /// A plugin instance was created in `took`.
    pub fn plugin_instantiated(&self, agent_type: &str, took: Duration) {
        self.plugin_instantiation
            .get_or_create(&AgentLabel { agent_type: agent_type.to_string() })
            .observe(took.as_secs_f64());
    }

    /// Render all metrics in the Prometheus text format, with current status gauges.
    pub fn render(&self, gauges: &StatusGauges) -> String {
        for (status, n) in &gauges.workflows {
            self.workflows.get_or_create(&StatusLabel { status: status.clone() }).set(*n);
        }
        for (status, n) in &gauges.tasks {
            self.tasks.get_or_create(&StatusLabel { status: status.clone() }).set(*n);
        }
        self.queue_depth.set(gauges.queue_depth);
        self.unserved.clear();
        for (agent_type, n) in &gauges.unserved {
            self.unserved.get_or_create(&AgentLabel { agent_type: agent_type.clone() }).set(*n);
        }
        let seen = self.events_written.get();
        if gauges.events_written > seen {
            self.events_written.inc_by(gauges.events_written - seen);
        }
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_recorded() {
        let m = Metrics::new();
        m.task_finished("fib", "completed", Duration::from_millis(3));
        m.failure("timeout");
        m.egress("llm", Some("https://api.openai.com"), "response", Some((3, 4)));
        m.egress("llm", None, "denied", None);
        let gauges = StatusGauges {
            workflows: vec![("running".into(), 2)],
            tasks: vec![],
            queue_depth: 5,
            events_written: 7,
            ..Default::default()
        };
        let unserved = StatusGauges { unserved: vec![("fib".into(), 3)], ..gauges.clone() };
        assert!(m.render(&unserved).contains(r#"hyphae_tasks_unserved{agent_type="fib"} 3"#));
        let text = m.render(&gauges);
        assert!(!text.contains("hyphae_tasks_unserved{"), "served again: the series goes: {text}");
        assert!(text.contains(r#"hyphae_tasks_finished_total{agent_type="fib",status="completed"} 1"#), "{text}");
        assert!(text.contains(r#"hyphae_task_failures_total{error_type="timeout"} 1"#), "{text}");
        assert!(text.contains(r#"hyphae_workflows{status="running"} 2"#), "{text}");
        assert!(text.contains("hyphae_queue_depth 5"), "{text}");
        assert!(text.contains("hyphae_events_written_total 7"), "{text}");
        assert!(text.contains("# EOF"), "{text}");
        let egress =
            r#"hyphae_egress_requests_total{agent_type="llm",host="https://api.openai.com",outcome="response"} 1"#;
        assert!(text.contains(egress), "{text}");
        assert!(text.contains(r#"host="not_allowed",outcome="denied"} 1"#), "{text}");
        assert!(text.contains(r#"hyphae_llm_tokens_total{agent_type="llm",kind="completion"} 4"#), "{text}");
    }
}
