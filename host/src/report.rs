//! The health report: what an operator looks at first (worker health, success and failure rates,
//! the slowest agents, stuck work, plugin problems), with findings ranked by severity like the
//! alert rules (docs/operations/alerts.yml), in JSON and in Markdown.
//!
//! [`Report::new`] is plain code over facts the caller gathered; the thresholds are the alerts'.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;
use utoipa::ToSchema;

use crate::store::{AgentTypeStats, StuckTask, Unserved, WorkerHealth, WorkerRecord};

/// Below this share of completed attempts, agents are failing (the alert `HyphaeLowSuccessRate`).
pub const MIN_SUCCESS_RATE: f64 = 0.80;
/// Above this share of timed-out attempts, agents are too slow (`HyphaeHighTimeoutRate`).
pub const MAX_TIMEOUT_RATE: f64 = 0.20;
/// Rates over fewer attempts than this say nothing yet.
pub const MIN_ATTEMPTS: u64 = 10;

/// How urgent a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

/// One thing the report found, with where the runbook says what to do.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Finding {
    pub severity: Severity,
    /// Stable name of the check (`low_success_rate`, `failed_worker` ...).
    pub check: String,
    pub message: String,
    /// Section of docs/operations/runbook.md.
    pub runbook: String,
}

/// A plugin file that is not in service.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginProblem {
    pub agent_type: String,
    pub file: String,
    pub error: String,
}

/// What the report is made from.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// RFC 3339 times: now, and the start of the window the rates cover.
    pub generated_at: String,
    pub since: String,
    pub workers: Vec<WorkerRecord>,
    pub agent_types: Vec<AgentTypeStats>,
    pub stuck: Vec<StuckTask>,
    pub unserved: Vec<Unserved>,
    pub plugin_problems: Vec<PluginProblem>,
    /// Ready tasks waiting for a slot.
    pub queue_depth: i64,
}

/// Attempts of every agent type together.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Totals {
    pub attempts: u64,
    pub completed: u64,
    pub failed: u64,
    pub timeouts: u64,
    /// Completed attempts over all that ended (none ended: 1).
    pub success_rate: f64,
    pub timeout_rate: f64,
}

/// The health report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Report {
    pub generated_at: String,
    /// Start of the window the rates cover.
    pub since: String,
    /// The most severe finding's severity, or `ok`.
    pub status: String,
    /// Most severe first.
    pub findings: Vec<Finding>,
    /// Workers by health (`HEALTHY`, `DEGRADED`, `CRITICAL`, `FAILED`).
    pub workers_by_health: BTreeMap<String, usize>,
    /// Every worker not HEALTHY.
    pub unhealthy_workers: Vec<WorkerRecord>,
    pub totals: Totals,
    pub agent_types: Vec<AgentTypeStats>,
    /// Up to five agent types, slowest p95 first.
    pub slowest: Vec<AgentTypeStats>,
    pub stuck: Vec<StuckTask>,
    pub unserved: Vec<Unserved>,
    pub plugin_problems: Vec<PluginProblem>,
    pub queue_depth: i64,
}

impl Report {
    /// The report over `facts`: totals, the slowest agents and the findings.
    pub fn new(facts: Facts) -> Report {
        let totals = totals(&facts.agent_types);
        let findings = findings(&facts, &totals);
        let status = findings.first().map_or("ok".to_string(), |f| f.severity.as_str().to_string());
        let mut slowest = facts.agent_types.clone();
        slowest.sort_by(|a, b| b.p95_ms.total_cmp(&a.p95_ms));
        slowest.truncate(5);
        let mut workers_by_health = BTreeMap::new();
        for w in &facts.workers {
            *workers_by_health.entry(w.health.as_str().to_string()).or_insert(0) += 1;
        }
        Report {
            generated_at: facts.generated_at,
            since: facts.since,
            status,
            findings,
            workers_by_health,
            unhealthy_workers: facts.workers.into_iter().filter(|w| w.health != WorkerHealth::Healthy).collect(),
            totals,
            agent_types: facts.agent_types,
            slowest,
            stuck: facts.stuck,
            unserved: facts.unserved,
            plugin_problems: facts.plugin_problems,
            queue_depth: facts.queue_depth,
        }
    }
}

fn totals(stats: &[AgentTypeStats]) -> Totals {
    let mut t = Totals::default();
    for s in stats {
        t.attempts += s.attempts;
        t.completed += s.completed;
        t.failed += s.failed;
        t.timeouts += s.timeouts;
    }
    let ended = t.completed + t.failed;
    t.success_rate = if ended == 0 { 1.0 } else { t.completed as f64 / ended as f64 };
    t.timeout_rate = if ended == 0 { 0.0 } else { t.timeouts as f64 / ended as f64 };
    t
}

/// Every finding, most severe first.
fn findings(facts: &Facts, totals: &Totals) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut add = |severity, check: &str, runbook: &str, message: String| {
        let runbook = format!("docs/operations/runbook.md#{runbook}");
        out.push(Finding { severity, check: check.into(), message, runbook });
    };
    for w in facts.workers.iter().filter(|w| w.health == WorkerHealth::Failed && !w.stopped) {
        let message = format!(
            "worker {} ({}) sent no heartbeat for {:.0} s: its tasks are taken over by the others",
            w.worker_id,
            w.hostname,
            w.since_last_heartbeat_ms / 1000.0
        );
        add(Severity::Critical, "failed_worker", "failed-worker", message);
    }
    for p in &facts.plugin_problems {
        let message = format!("plugin {} ({}) is not in service: {}", p.agent_type, p.file, p.error);
        add(Severity::Critical, "plugin_failed", "plugin-failed", message);
    }
    for s in facts.agent_types.iter().filter(|s| s.completed + s.failed >= MIN_ATTEMPTS) {
        let ended = (s.completed + s.failed) as f64;
        let (success, timeouts) = (s.completed as f64 / ended, s.timeouts as f64 / ended);
        if success < MIN_SUCCESS_RATE {
            let severity = if success < 0.5 { Severity::Critical } else { Severity::Warning };
            let message = format!(
                "{}: {:.0} % of {} attempts completed (below {:.0} %)",
                s.agent_type,
                success * 100.0,
                s.completed + s.failed,
                MIN_SUCCESS_RATE * 100.0
            );
            add(severity, "low_success_rate", "low-success-rate", message);
        }
        if timeouts > MAX_TIMEOUT_RATE {
            let message = format!(
                "{}: {:.0} % of attempts timed out (above {:.0} %)",
                s.agent_type,
                timeouts * 100.0,
                MAX_TIMEOUT_RATE * 100.0
            );
            add(Severity::Warning, "high_timeout_rate", "high-timeout-rate", message);
        }
    }
    if !facts.stuck.is_empty() {
        let first = &facts.stuck[0];
        let message = format!(
            "{} task(s) running past their timeout, the longest {}/{} for {:.0} s (timeout {:.0} s)",
            facts.stuck.len(),
            first.workflow_id,
            first.task_id,
            first.running_s,
            first.timeout_s
        );
        add(Severity::Warning, "stuck_tasks", "stuck-tasks", message);
    }
    for u in &facts.unserved {
        let message =
            format!("{} ready task(s) of {} wait: no live worker serves that agent type", u.ready_tasks, u.agent_type);
        add(Severity::Warning, "unserved_agent_type", "unserved-agent-type", message);
    }
    if totals.attempts == 0 {
        add(Severity::Info, "no_attempts", "reading-the-report", "no attempt ended in the window".into());
    }
    out.sort_by_key(|f| f.severity);
    out
}

impl Severity {
    /// Its name: `critical`, `warning` or `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl Report {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# Hyphae health report\n");
        let _ = writeln!(md, "Generated {}; rates over attempts that ended since {}.\n", self.generated_at, self.since);
        let _ = writeln!(md, "**Status: {}**\n", self.status.to_uppercase());
        self.md_findings(&mut md);
        self.md_workers(&mut md);
        self.md_agents(&mut md);
        self.md_stuck(&mut md);
        md
    }

    fn md_findings(&self, md: &mut String) {
        let _ = writeln!(md, "## Findings\n");
        if self.findings.is_empty() {
            let _ = writeln!(md, "Nothing to report.\n");
            return;
        }
        for f in &self.findings {
            let _ = writeln!(
                md,
                "- **{}** `{}`: {} ([runbook]({}))",
                f.severity.as_str().to_uppercase(),
                f.check,
                f.message,
                f.runbook
            );
        }
        md.push('\n');
    }

    fn md_workers(&self, md: &mut String) {
        let _ = writeln!(md, "## Workers\n");
        let counts: Vec<String> = self.workers_by_health.iter().map(|(h, n)| format!("{n} {h}")).collect();
        let _ = writeln!(
            md,
            "{}\n",
            if counts.is_empty() { "No workers registered.".to_string() } else { counts.join(", ") }
        );
        for w in &self.unhealthy_workers {
            let _ = writeln!(
                md,
                "- {} on {}: {} ({:.1} s since its last heartbeat)",
                w.worker_id,
                w.hostname,
                w.health.as_str(),
                w.since_last_heartbeat_ms / 1000.0
            );
        }
        let _ = writeln!(md, "\nReady tasks waiting for a slot: {}\n", self.queue_depth);
    }

    fn md_agents(&self, md: &mut String) {
        let t = &self.totals;
        let _ = writeln!(md, "## Attempts\n");
        let _ = writeln!(
            md,
            "{} attempts: {} completed, {} failed ({} timeouts); success rate {:.1} %, timeout rate {:.1} %.\n",
            t.attempts,
            t.completed,
            t.failed,
            t.timeouts,
            t.success_rate * 100.0,
            t.timeout_rate * 100.0
        );
        if self.agent_types.is_empty() {
            return;
        }
        let _ = writeln!(md, "| agent type | attempts | success | timeouts | p50 ms | p95 ms | peak memory |");
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
        for s in &self.slowest {
            let memory = s.peak_memory_bytes.map_or("-".to_string(), |b| format!("{:.1} MiB", b as f64 / 1048576.0));
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} % | {:.1} % | {:.1} | {:.1} | {memory} |",
                s.agent_type,
                s.attempts,
                s.success_rate * 100.0,
                s.timeout_rate * 100.0,
                s.p50_ms,
                s.p95_ms
            );
        }
        let _ = writeln!(md, "\n(The slowest agent types, by p95, at most five.)\n");
    }

    fn md_stuck(&self, md: &mut String) {
        let _ = writeln!(md, "## Stuck work and plugins\n");
        for s in &self.stuck {
            let _ = writeln!(
                md,
                "- stuck: {}/{} ({}) attempt {} on {}, running {:.0} s, timeout {:.0} s",
                s.workflow_id, s.task_id, s.agent_type, s.attempt, s.worker_id, s.running_s, s.timeout_s
            );
        }
        for u in &self.unserved {
            let _ = writeln!(md, "- unserved: {} ready task(s) of {}", u.ready_tasks, u.agent_type);
        }
        for p in &self.plugin_problems {
            let _ = writeln!(md, "- plugin failed: {} ({}): {}", p.agent_type, p.file, p.error);
        }
        if self.stuck.is_empty() && self.unserved.is_empty() && self.plugin_problems.is_empty() {
            let _ = writeln!(md, "None.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(agent_type: &str, completed: u64, failed: u64, timeouts: u64, p95_ms: f64) -> AgentTypeStats {
        AgentTypeStats {
            agent_type: agent_type.into(),
            attempts: completed + failed,
            completed,
            failed,
            timeouts,
            p95_ms,
            ..Default::default()
        }
    }

    fn worker(id: &str, health: WorkerHealth) -> WorkerRecord {
        WorkerRecord {
            worker_id: id.into(),
            hostname: "h".into(),
            pid: 1,
            started_at: String::new(),
            last_heartbeat: String::new(),
            interval_ms: 5000,
            since_last_heartbeat_ms: 20_000.0,
            health,
            stopped: false,
            running_tasks: 0,
            serves: Default::default(),
        }
    }

    fn checks(r: &Report) -> Vec<(Severity, &str)> {
        r.findings.iter().map(|f| (f.severity, f.check.as_str())).collect()
    }

    #[test]
    fn a_healthy_system_has_nothing_to_report() {
        let r = Report::new(Facts {
            agent_types: vec![stats("fib", 50, 2, 0, 3.0)],
            workers: vec![worker("a", WorkerHealth::Healthy)],
            ..Default::default()
        });
        assert_eq!(r.status, "ok");
        assert!(r.findings.is_empty());
        assert!(r.markdown().contains("Nothing to report."));
    }

    #[test]
    fn findings_follow_the_alert_thresholds_most_severe_first() {
        let facts = Facts {
            agent_types: vec![
                stats("flaky", 7, 3, 0, 10.0), // 70 %: warning
                stats("broken", 4, 6, 0, 1.0), // 40 %: critical
                stats("slow", 8, 3, 3, 900.0), // 73 %, and 27 % timeouts
                stats("new", 1, 4, 0, 1.0),    // too few attempts to judge
            ],
            workers: vec![worker("a", WorkerHealth::Healthy), worker("b", WorkerHealth::Failed)],
            unserved: vec![Unserved { agent_type: "gone".into(), ready_tasks: 2 }],
            ..Default::default()
        };
        let r = Report::new(facts);
        assert_eq!(r.status, "critical");
        assert_eq!(
            checks(&r),
            vec![
                (Severity::Critical, "failed_worker"),
                (Severity::Critical, "low_success_rate"),
                (Severity::Warning, "low_success_rate"),
                (Severity::Warning, "low_success_rate"),
                (Severity::Warning, "high_timeout_rate"),
                (Severity::Warning, "unserved_agent_type"),
            ]
        );
        assert!(r.findings[1].message.starts_with("broken: 40 %"), "{}", r.findings[1].message);
        assert_eq!(r.slowest[0].agent_type, "slow");
        assert_eq!(r.workers_by_health["FAILED"], 1);
        assert_eq!(r.unhealthy_workers.len(), 1);
        assert_eq!((r.totals.attempts, r.totals.timeouts), (36, 3));
        let md = r.markdown();
        assert!(md.contains("**Status: CRITICAL**"), "{md}");
        assert!(md.contains("- **CRITICAL** `failed_worker`: worker b"), "{md}");
        assert!(md.contains("| slow | 11 |"), "{md}");
    }

    #[test]
    fn a_stopped_worker_is_not_a_failure() {
        let mut w = worker("b", WorkerHealth::Failed);
        w.stopped = true;
        let r = Report::new(Facts { workers: vec![w], ..Default::default() });
        assert_eq!(checks(&r), vec![(Severity::Info, "no_attempts")]);
        assert_eq!(r.status, "info");
    }
}
