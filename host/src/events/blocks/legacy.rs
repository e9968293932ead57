//! Blocks written before events were typed, read as they are: JSON text in the `events` column.
//!
//! - Format 1: a JSON array of full rows, `[seq, event id, type, task, agent id, agent type,
//!   source, target, status, duration (ms), ts (µs), body]`, the body holding `error`,
//!   `metadata`, `context` and `performance`.
//! - Format 2: `{"v":2,"seq":S,"ts":T,"s":[strings],"b":[bodies],"e":[rows]}`: each distinct
//!   string and body once, in `s` and `b`; a row is `[type, time (µs after the previous row's,
//!   the first's after T), task, agent id, agent type, status, body, duration, [queue,
//!   execution, total], source, target, seq - S, stored id]`, strings and bodies as indexes,
//!   trailing nulls left out, the position there only when it is not the previous one's plus one.
//!
//! Retention writes the events it keeps of such a block back in format 1.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::BlockError;
use crate::events::types::{rfc3339, Event, EventError, EventType, Performance};

/// One event of a block of an earlier format.
#[derive(Debug, Clone)]
pub struct Row {
    pub seq: i64,
    /// Stored by blocks written before ids were derived.
    pub id: Option<String>,
    pub type_name: String,
    pub task_id: Option<String>,
    pub agent_id: Option<String>,
    pub agent_type: Option<String>,
    pub source_agent: Option<String>,
    pub target_agent: Option<String>,
    pub status: Option<String>,
    pub duration_ms: Option<f64>,
    pub ts: i64,
    /// Kept in the row by format 2, in the body by format 1.
    pub performance: Option<Performance>,
    /// `error`, `metadata`, `context` (and `performance`), as JSON text.
    pub body: Option<String>,
}

/// A row of format 1.
#[derive(Serialize, Deserialize)]
struct RowV1(
    i64,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<f64>,
    i64,
    Option<Box<RawValue>>,
);

#[derive(Deserialize)]
struct BlockV2 {
    v: u32,
    seq: i64,
    ts: i64,
    s: Vec<String>,
    b: Vec<Box<RawValue>>,
    e: Vec<RowV2>,
}

/// A row of format 2; trailing nulls may be left out.
#[derive(Deserialize)]
struct RowV2(
    u32,
    i64,
    #[serde(default)] Option<u32>,
    #[serde(default)] Option<u32>,
    #[serde(default)] Option<u32>,
    #[serde(default)] Option<u32>,
    #[serde(default)] Option<u32>,
    #[serde(default)] Option<f64>,
    #[serde(default)] Option<[f64; 3]>,
    #[serde(default)] Option<u32>,
    #[serde(default)] Option<u32>,
    #[serde(default)] Option<i64>,
    #[serde(default)] Option<String>,
);

#[derive(Default, Deserialize)]
struct Body {
    error: Option<EventError>,
    metadata: Option<Value>,
    context: Option<Value>,
    performance: Option<Performance>,
}

/// The events of a block's text, in sequence order.
pub fn decode(text: &str) -> Result<Vec<Row>, BlockError> {
    if text.trim_start().starts_with('[') {
        let rows: Vec<RowV1> = serde_json::from_str(text)?;
        return Ok(rows.into_iter().map(Row::from_v1).collect());
    }
    let block: BlockV2 = serde_json::from_str(text)?;
    if block.v != 2 {
        return Err(BlockError::Newer(block.v));
    }
    let string =
        |i: Option<u32>| -> Result<Option<String>, BlockError> {
            i.map(|i| {
                block.s.get(i as usize).cloned().ok_or_else(|| {
                    BlockError::Bad(format!("string {i} is not in the block's table of {}", block.s.len()))
                })
            })
            .transpose()
        };
    let mut rows = Vec::with_capacity(block.e.len());
    let (mut seq, mut ts) = (block.seq - 1, block.ts);
    for row in &block.e {
        let RowV2(ty, dts, task, agent, agent_type, status, body, duration_ms, perf, source, target, dseq, id) = row;
        seq = dseq.map_or(seq + 1, |d| block.seq + d);
        ts += dts;
        let body = match body {
            Some(i) => Some(block.b.get(*i as usize).map(|b| b.get().to_string()).ok_or_else(|| {
                BlockError::Bad(format!("body {i} is not in the block's table of {}", block.b.len()))
            })?),
            None => None,
        };
        rows.push(Row {
            seq,
            id: id.clone(),
            type_name: string(Some(*ty))?.unwrap_or_default(),
            task_id: string(*task)?,
            agent_id: string(*agent)?,
            agent_type: string(*agent_type)?,
            source_agent: string(*source)?,
            target_agent: string(*target)?,
            status: string(*status)?,
            duration_ms: *duration_ms,
            ts,
            performance: perf.map(|[q, e, t]| Performance { queue_time_ms: q, execution_time_ms: e, total_time_ms: t }),
            body,
        });
    }
    Ok(rows)
}

/// `rows` as the text of a format 1 block (the performance of a format 2 row goes in the body).
pub fn encode(rows: &[&Row]) -> Result<String, BlockError> {
    let out = rows.iter().map(|r| r.to_v1()).collect::<Result<Vec<RowV1>, BlockError>>()?;
    Ok(serde_json::to_string(&out)?)
}

impl Row {
    fn from_v1(r: RowV1) -> Row {
        let RowV1(seq, id, type_name, task_id, agent_id, agent_type, source_agent, target_agent, status, d, ts, body) =
            r;
        Row {
            seq,
            id,
            type_name,
            task_id,
            agent_id,
            agent_type,
            source_agent,
            target_agent,
            status,
            duration_ms: d,
            ts,
            performance: None,
            body: body.map(|b| b.get().to_string()),
        }
    }

    fn to_v1(&self) -> Result<RowV1, BlockError> {
        let mut body = match &self.body {
            Some(text) => serde_json::from_str::<Value>(text)?,
            None => Value::Null,
        };
        if let Some(p) = self.performance {
            if !body.is_object() {
                body = Value::Object(Default::default());
            }
            body["performance"] = serde_json::to_value(p)?;
        }
        let body = (!body.is_null()).then(|| serde_json::value::to_raw_value(&body)).transpose()?;
        let r = self.clone();
        Ok(RowV1(
            r.seq,
            r.id,
            r.type_name,
            r.task_id,
            r.agent_id,
            r.agent_type,
            r.source_agent,
            r.target_agent,
            r.status,
            r.duration_ms,
            r.ts,
            body,
        ))
    }

    /// Whether `agent` took part in the event, as actor, source or target.
    pub fn involves(&self, agent: &str) -> bool {
        [&self.agent_id, &self.source_agent, &self.target_agent].into_iter().any(|a| a.as_deref() == Some(agent))
    }

    /// The agents taking part.
    pub fn agents(&self) -> impl Iterator<Item = &str> {
        [&self.agent_id, &self.source_agent, &self.target_agent].into_iter().flatten().map(String::as_str)
    }

    /// The metadata of the body, if any.
    pub fn metadata<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        #[derive(Deserialize)]
        struct Meta<T> {
            metadata: Option<T>,
        }
        serde_json::from_str::<Meta<T>>(self.body.as_deref()?).ok()?.metadata
    }

    /// The whole event, as served (`event_id` derived unless stored); an error names what this
    /// host cannot read in it.
    pub fn into_event(self, workflow_id: &str, event_id: impl FnOnce() -> String) -> Result<Event, String> {
        let event_type = EventType::parse(&self.type_name)
            .ok_or_else(|| format!("unknown event type `{}` in {workflow_id}", self.type_name))?;
        let body: Body = match &self.body {
            Some(raw) => serde_json::from_str(raw).map_err(|e| format!("event body in {workflow_id}: {e}"))?,
            None => Body::default(),
        };
        Ok(Event {
            workflow_id: workflow_id.to_string(),
            seq: self.seq,
            event_id: self.id.unwrap_or_else(event_id),
            event_type,
            task_id: self.task_id,
            agent_id: self.agent_id,
            agent_type: self.agent_type,
            source_agent: self.source_agent,
            target_agent: self.target_agent,
            status: self.status,
            duration_ms: self.duration_ms,
            timestamp: rfc3339(self.ts),
            error: body.error,
            metadata: body.metadata,
            context: body.context,
            performance: self.performance.or(body.performance),
        })
    }
}
