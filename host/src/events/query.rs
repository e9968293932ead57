//! Queries over the event log: per workflow, task and agent, handoff chains, timelines,
//! statistics, and retention.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use sqlx::{AssertSqlSafe, Row};
use utoipa::ToSchema;

use super::types::{rfc3339, Event, EventError, EventType, Performance};
use crate::store::{now_us, Dialect, Result, Store, StoreError};

const COLUMNS: &str = "workflow_id, seq, event_id, event_type, task_id, agent_id, agent_type, source_agent, \
    target_agent, status, duration_ms, ts, body";

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

/// Filter of an agent's events.
#[derive(Debug, Clone, Default)]
pub struct AgentEventsQuery {
    pub types: Vec<EventType>,
    pub limit: i64,
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
}

/// The `body` column: the parts of an event that are read back but never filtered on.
#[derive(Default, serde::Deserialize)]
struct StoredBody {
    error: Option<EventError>,
    metadata: Option<Value>,
    context: Option<Value>,
    performance: Option<Performance>,
}

/// One event as the database returns it inside the JSON array of [`aggregated`]: the columns of
/// [`COLUMNS`], in order.
#[derive(serde::Deserialize)]
struct StoredEvent(
    String,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<f64>,
    i64,
    Option<StoredBody>,
);

impl StoredEvent {
    fn into_event(self) -> Result<Event> {
        let StoredEvent(
            workflow_id,
            seq,
            event_id,
            event_type,
            task_id,
            agent_id,
            agent_type,
            source,
            target,
            status,
            duration_ms,
            ts,
            body,
        ) = self;
        let body = body.unwrap_or_default();
        Ok(Event {
            workflow_id,
            seq,
            event_id,
            event_type: EventType::parse(&event_type)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown event type `{event_type}`")))?,
            task_id,
            agent_id,
            agent_type,
            source_agent: source,
            target_agent: target,
            status,
            duration_ms,
            timestamp: rfc3339(ts),
            error: body.error,
            metadata: body.metadata,
            context: body.context,
            performance: body.performance,
        })
    }
}

/// A query returning one JSON array of the events `inner` selects (it must select [`COLUMNS`]),
/// in `order`. One row crosses the driver instead of one per event, which is most of the cost of
/// reading events.
fn aggregated(dialect: Dialect, inner: &str, order: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!(
            "SELECT json_group_array(json_array(workflow_id, seq, event_id, event_type, task_id, agent_id, \
             agent_type, source_agent, target_agent, status, duration_ms, ts, json(body)) ORDER BY {order}) \
             FROM ({inner}) e"
        ),
        Dialect::Postgres => format!(
            "SELECT json_agg(json_build_array(workflow_id, seq, event_id, event_type, task_id, agent_id, \
             agent_type, source_agent, target_agent, status, duration_ms, ts, body::json) ORDER BY {order})::text \
             FROM ({inner}) e"
        ),
    }
}

/// The events of an [`aggregated`] query's result.
fn events_from_json(json: Option<String>) -> Result<Vec<Event>> {
    let Some(json) = json else { return Ok(Vec::new()) };
    let stored: Vec<StoredEvent> = serde_json::from_str(&json)?;
    stored.into_iter().map(StoredEvent::into_event).collect()
}

/// `AND event_type IN ('a', 'b')` for a list of known types (names are our own constants).
fn type_filter(types: &[EventType]) -> String {
    if types.is_empty() {
        return String::new();
    }
    let names: Vec<String> = types.iter().map(|t| format!("'{}'", t.as_str())).collect();
    format!(" AND event_type IN ({})", names.join(", "))
}

impl Store {
    /// Events of a workflow, oldest first.
    pub async fn workflow_events(&self, workflow_id: &str, q: &EventQuery) -> Result<Vec<Event>> {
        let task = if q.task_id.is_some() { " AND task_id = $4" } else { "" };
        let inner = format!(
            "SELECT {COLUMNS} FROM events WHERE workflow_id = $1 AND seq > $2{}{task} ORDER BY seq LIMIT $3",
            type_filter(&q.types)
        );
        let sql = aggregated(self.dialect(), &inner, "seq");
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(workflow_id).bind(q.after).bind(q.limit.max(1));
        if let Some(t) = &q.task_id {
            query = query.bind(t);
        }
        let events = events_from_json(query.fetch_one(self.reader()).await?.try_get(0)?)?;
        if events.is_empty() && q.after == 0 {
            self.workflow_exists(workflow_id).await?;
        }
        Ok(events)
    }

    /// Position of the last event of a workflow (0 when none).
    pub async fn last_event_seq(&self, workflow_id: &str) -> Result<i64> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT event_seq FROM workflows WHERE workflow_id = $1")
            .bind(workflow_id)
            .fetch_optional(self.reader())
            .await?;
        seq.ok_or_else(|| StoreError::WorkflowNotFound(workflow_id.to_string()))
    }

    /// Events in which an agent took part (as actor, source or target), oldest first.
    ///
    /// Each role is read through its own `(role, ts)` index, so the cost follows `limit`, not the
    /// number of events the agent has.
    pub async fn agent_events(&self, agent_id: &str, q: &AgentEventsQuery) -> Result<Vec<Event>> {
        let filter = type_filter(&q.types);
        let limit = q.limit.max(1);
        let mut events = Vec::new();
        for role in ["agent_id", "source_agent", "target_agent"] {
            let inner = format!("SELECT {COLUMNS} FROM events WHERE {role} = $1{filter} ORDER BY ts LIMIT $2");
            let sql = aggregated(self.dialect(), &inner, "ts, workflow_id, seq");
            let row = sqlx::query(AssertSqlSafe(sql)).bind(agent_id).bind(limit).fetch_one(self.reader()).await?;
            events.extend(events_from_json(row.try_get(0)?)?);
        }
        events.sort_by(|a, b| (&a.timestamp, &a.workflow_id, a.seq).cmp(&(&b.timestamp, &b.workflow_id, b.seq)));
        events.dedup_by(|a, b| a.workflow_id == b.workflow_id && a.seq == b.seq);
        events.truncate(limit as usize);
        Ok(events)
    }

    /// The handoffs of a workflow, in order.
    pub async fn handoff_chain(&self, workflow_id: &str) -> Result<Vec<Event>> {
        let q = EventQuery { types: vec![EventType::Handoff], limit: i64::MAX, ..Default::default() };
        self.workflow_events(workflow_id, &q).await
    }

    /// A workflow's events grouped as lifecycle, tasks, handoffs and failures.
    pub async fn timeline(&self, workflow_id: &str) -> Result<Timeline> {
        let q = EventQuery { limit: i64::MAX, ..Default::default() };
        let events = self.workflow_events(workflow_id, &q).await?;
        let (first, last) = (events.first().map(|e| e.timestamp.clone()), events.last().map(|e| e.timestamp.clone()));
        let ts: Vec<i64> = sqlx::query_scalar("SELECT ts FROM events WHERE workflow_id = $1 AND (seq = 1 OR seq = $2)")
            .bind(workflow_id)
            .bind(events.len() as i64)
            .fetch_all(self.reader())
            .await?;
        let duration_ms = match (ts.iter().min(), ts.iter().max()) {
            (Some(a), Some(b)) => (b - a) as f64 / 1000.0,
            _ => 0.0,
        };
        let mut t = Timeline {
            workflow_id: workflow_id.to_string(),
            total_events: events.len(),
            duration_ms,
            start_time: first,
            end_time: last,
            lifecycle: Vec::new(),
            tasks: Vec::new(),
            handoffs: Vec::new(),
            failures: Vec::new(),
        };
        for e in events {
            match e.event_type.group() {
                "handoffs" => t.handoffs.push(e),
                "failures" => t.failures.push(e),
                "tasks" => t.tasks.push(e),
                _ => t.lifecycle.push(e),
            }
        }
        Ok(t)
    }

    /// Statistics over the events of one workflow, or of all when `workflow_id` is `None`.
    pub async fn statistics(&self, workflow_id: Option<&str>) -> Result<Statistics> {
        if let Some(id) = workflow_id {
            self.workflow_exists(id).await?;
        }
        let filter = if workflow_id.is_some() { "WHERE workflow_id = $1" } else { "WHERE $1 = ''" };
        let id = workflow_id.unwrap_or("");
        let r = sqlx::query(AssertSqlSafe(format!(
            "SELECT COUNT(*), COUNT(DISTINCT workflow_id), \
             COUNT(DISTINCT CASE WHEN task_id IS NULL THEN NULL ELSE workflow_id || '/' || task_id END), \
             COUNT(DISTINCT agent_id), AVG(duration_ms), MIN(duration_ms), MAX(duration_ms) FROM events {filter}"
        )))
        .bind(id)
        .fetch_one(self.reader())
        .await?;
        let types =
            sqlx::query(AssertSqlSafe(format!("SELECT event_type, COUNT(*) FROM events {filter} GROUP BY event_type")))
                .bind(id)
                .fetch_all(self.reader())
                .await?;
        let mut counts = BTreeMap::new();
        for t in types {
            counts.insert(t.try_get::<String, _>(0)?, t.try_get::<i64, _>(1)?);
        }
        let failures = counts.get("failure").copied().unwrap_or(0);
        let finished = failures + counts.get("task_completed").copied().unwrap_or(0);
        Ok(Statistics {
            total_events: r.try_get(0)?,
            unique_workflows: r.try_get(1)?,
            unique_tasks: r.try_get(2)?,
            unique_agents: r.try_get(3)?,
            failure_count: failures,
            failure_rate: if finished > 0 { failures as f64 / finished as f64 } else { 0.0 },
            event_type_counts: counts,
            avg_duration_ms: r.try_get(4)?,
            min_duration_ms: r.try_get(5)?,
            max_duration_ms: r.try_get(6)?,
        })
    }

    /// Delete events older than `days` days. Returns how many were deleted.
    pub async fn delete_events_older_than(&self, days: f64) -> Result<u64> {
        let cutoff = now_us() - (days * 86_400e6) as i64;
        let r = sqlx::query("DELETE FROM events WHERE ts < $1").bind(cutoff).execute(self.write_pool()).await?;
        Ok(r.rows_affected())
    }
}
