//! What queries over the event log take and give: filters, timelines, statistics and the
//! tally that computes them from stored events. The store runs the queries (`store/events.rs`).

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use utoipa::ToSchema;

use super::blocks::Stored;
use super::types::{Event, EventType};
use crate::workflow::LlmUsage;

/// Filter of a workflow's events.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only these types (all when empty).
    pub types: Vec<EventType>,
    /// Only events of this task.
    pub task_id: Option<String>,
    /// Only events after this position (`seq`).
    pub after: i64,
    pub limit: i64,
}

/// Filter and page of an agent's events.
#[derive(Debug, Clone, Default)]
pub struct AgentEventsQuery {
    pub types: Vec<EventType>,
    pub order: Order,
    /// Continue after this event (the previous page's cursor, in the same order).
    pub after: Option<AgentCursor>,
    pub limit: i64,
}

/// Which end of a listing comes first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    #[default]
    Oldest,
    Newest,
}

/// Where a page of an agent's events ends: the last event's time (microseconds), workflow and
/// position. Shown to clients as `TS.SEQ.WORKFLOW_ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCursor {
    pub ts: i64,
    pub workflow_id: String,
    pub seq: i64,
}

impl AgentCursor {
    /// The cursor `text` shows, if it is one.
    pub fn parse(text: &str) -> Option<AgentCursor> {
        let mut parts = text.splitn(3, '.');
        let ts = parts.next()?.parse::<i64>().ok()?;
        let seq = parts.next()?.parse::<i64>().ok()?;
        let workflow_id = parts.next().filter(|w| !w.is_empty())?.to_string();
        Some(AgentCursor { ts, workflow_id, seq })
    }
}

impl std::fmt::Display for AgentCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.ts, self.seq, self.workflow_id)
    }
}

/// A workflow's events grouped for reading.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Timeline {
    pub workflow_id: String,
    pub total_events: usize,
    /// From the first event to the last.
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    pub lifecycle: Vec<Event>,
    pub tasks: Vec<Event>,
    pub handoffs: Vec<Event>,
    pub failures: Vec<Event>,
}

/// Statistics over the events of one workflow or all.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Statistics {
    pub total_events: i64,
    pub unique_workflows: i64,
    pub unique_tasks: i64,
    pub unique_agents: i64,
    pub event_type_counts: BTreeMap<String, i64>,
    pub failure_count: i64,
    /// Failures over finished task attempts, 0..1.
    pub failure_rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avg_duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_duration_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duration_ms: Option<f64>,
    /// Outbound HTTP requests of plugins (`egress` events) and the language-model tokens their
    /// responses reported, in all and per agent type.
    pub egress: EgressTotals,
    pub egress_by_agent_type: BTreeMap<String, EgressTotals>,
    /// Per task, and per attempt of each (only in the statistics of one workflow).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub egress_by_task: BTreeMap<String, TaskEgress>,
}

/// A task's outbound requests and tokens, in all and per attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct TaskEgress {
    #[serde(flatten)]
    pub totals: EgressTotals,
    pub by_attempt: BTreeMap<u32, EgressTotals>,
}

/// Outbound requests and the tokens their responses reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct EgressTotals {
    pub requests: i64,
    /// Requests the host refused (not allowed, or over budget).
    pub denied: i64,
    pub llm_prompt_tokens: u64,
    pub llm_completion_tokens: u64,
}

impl EgressTotals {
    fn add(&mut self, status: Option<&str>, usage: Option<LlmUsage>) {
        self.requests += 1;
        self.denied += i64::from(status == Some("denied"));
        if let Some(u) = usage {
            self.llm_prompt_tokens += u.prompt_tokens;
            self.llm_completion_tokens += u.completion_tokens;
        }
    }
}

/// Running totals of event statistics, added one stored event at a time.
#[derive(Default)]
pub(crate) struct Tally {
    total: i64,
    workflows: HashSet<String>,
    tasks: HashSet<(String, String)>,
    agents: HashSet<String>,
    types: BTreeMap<String, i64>,
    durations: (i64, f64, Option<f64>, Option<f64>),
    egress: EgressTotals,
    egress_by_agent_type: BTreeMap<String, EgressTotals>,
    /// Whether to total egress per task (one workflow's statistics).
    per_task: bool,
    egress_by_task: BTreeMap<String, TaskEgress>,
}

impl Tally {
    /// Totals that also count egress per task when `per_task` (one workflow's statistics).
    pub(crate) fn new(per_task: bool) -> Tally {
        Tally { per_task, ..Tally::default() }
    }

    pub(crate) fn add(&mut self, workflow_id: &str, e: &Stored) {
        self.total += 1;
        if !self.workflows.contains(workflow_id) {
            self.workflows.insert(workflow_id.to_string());
        }
        if let Some(t) = e.task_id() {
            self.tasks.insert((workflow_id.to_string(), t.to_string()));
        }
        if let Some(a) = e.agent_id() {
            if !self.agents.contains(a) {
                self.agents.insert(a.to_string());
            }
        }
        match self.types.get_mut(e.type_name()) {
            Some(n) => *n += 1,
            None => {
                self.types.insert(e.type_name().to_string(), 1);
            }
        }
        if e.type_name() == EventType::Egress.as_str() {
            self.add_egress(e);
            return;
        }
        if let Some(d) = e.duration_ms() {
            let (n, sum, min, max) = &mut self.durations;
            *n += 1;
            *sum += d;
            *min = Some(min.map_or(d, |m| m.min(d)));
            *max = Some(max.map_or(d, |m| m.max(d)));
        }
    }

    /// An `egress` event: counted, and its token usage added (its duration is a request's, not an
    /// attempt's, so it stays out of the durations).
    fn add_egress(&mut self, e: &Stored) {
        let (usage, attempt) = e.egress_usage();
        let status = e.status();
        if let (true, Some(task)) = (self.per_task, e.task_id()) {
            if !self.egress_by_task.contains_key(task) {
                self.egress_by_task.insert(task.to_string(), TaskEgress::default());
            }
            if let Some(t) = self.egress_by_task.get_mut(task) {
                t.totals.add(status, usage);
                t.by_attempt.entry(attempt.unwrap_or(0)).or_default().add(status, usage);
            }
        }
        self.egress.add(status, usage);
        let agent_type = e.agent_type().unwrap_or_default();
        match self.egress_by_agent_type.get_mut(agent_type) {
            Some(t) => t.add(status, usage),
            None => {
                let mut t = EgressTotals::default();
                t.add(status, usage);
                self.egress_by_agent_type.insert(agent_type.to_string(), t);
            }
        }
    }

    pub(crate) fn finish(self) -> Statistics {
        let failures = self.types.get("failure").copied().unwrap_or(0);
        let finished = failures + self.types.get("task_completed").copied().unwrap_or(0);
        let (n, sum, min, max) = self.durations;
        Statistics {
            total_events: self.total,
            unique_workflows: self.workflows.len() as i64,
            unique_tasks: self.tasks.len() as i64,
            unique_agents: self.agents.len() as i64,
            failure_count: failures,
            failure_rate: if finished > 0 { failures as f64 / finished as f64 } else { 0.0 },
            event_type_counts: self.types,
            avg_duration_ms: (n > 0).then(|| sum / n as f64),
            min_duration_ms: min,
            max_duration_ms: max,
            egress: self.egress,
            egress_by_agent_type: self.egress_by_agent_type,
            egress_by_task: self.egress_by_task,
        }
    }
}
