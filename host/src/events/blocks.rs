//! The stored form of events. The events a transaction appends to one workflow are kept together
//! as one *event block*: a row holding them as JSON text, in sequence order, at most
//! [`BLOCK_EVENTS`] per block. Blocks make tracking nearly free on the write path (one row per
//! batch instead of one indexed row per event) and cheap to read back (a workflow's events are a
//! few rows already in order). An agent index (`event_agents`) names, per agent, the blocks its
//! events are in.
//!
//! A block's text is compact: `{"v":2,"seq":S,"ts":T,"s":[strings],"b":[bodies],"e":[rows]}`.
//! Each distinct string of the block (types, tasks, agents, statuses) is written once, in `s`;
//! each distinct body (error, metadata, context) once, in `b`. A row is `[type, time (µs after
//! the previous row's, the first's after T), task, agent id, agent type, status, body, duration
//! (ms), [queue, execution, total] (ms), source agent, target agent, seq - S, stored id]`: strings
//! and bodies are indexes into the tables, trailing nulls are left out, and the position is there
//! only when it is not the previous row's plus one (the first row's is `S`). Blocks written by
//! earlier versions are a JSON array of full rows (`[seq, event id, type, task, agent id, agent
//! type, source, target, status, duration, ts, body]`); they are read as they are.

mod write;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::types::{rfc3339, Event, EventError, EventType, NewEvent, Performance};
use write::{BlockWriter, Body, Row, TypeName, Written};

/// Most events in one block: a reader of a few events never parses much more than it needs.
pub const BLOCK_EVENTS: usize = 256;

/// One block to store.
#[derive(Debug)]
pub struct Block {
    pub workflow_id: String,
    pub first_seq: i64,
    pub last_seq: i64,
    /// Earliest and latest event time in the block (µs).
    pub first_ts: i64,
    pub last_ts: i64,
    pub count: i64,
    /// The events, as text ([module docs](self)).
    pub events: String,
    /// The agents that take part in the block's events (as actor, source or target), each with
    /// the time of its earliest event here.
    pub agents: BTreeMap<String, i64>,
}

impl Block {
    fn new(workflow_id: &str, w: Written) -> Block {
        Block {
            workflow_id: workflow_id.to_string(),
            first_seq: w.first_seq,
            last_seq: w.last_seq,
            first_ts: w.first_ts,
            last_ts: w.last_ts,
            count: w.count,
            events: w.text,
            agents: w.agents,
        }
    }
}

#[derive(Default, Deserialize)]
struct BodyIn {
    error: Option<EventError>,
    metadata: Option<Value>,
    context: Option<Value>,
    performance: Option<Performance>,
}

/// Split a workflow's new events, numbered from `first_seq`, into blocks. Events without a time
/// get `now`.
pub fn encode(workflow_id: &str, first_seq: i64, events: &[&NewEvent], now: i64) -> serde_json::Result<Vec<Block>> {
    let mut blocks = Vec::with_capacity(events.len().div_ceil(BLOCK_EVENTS));
    for (b, chunk) in events.chunks(BLOCK_EVENTS).enumerate() {
        let first = first_seq + (b * BLOCK_EVENTS) as i64;
        let mut w = BlockWriter::new(chunk.len());
        for (i, e) in chunk.iter().enumerate() {
            w.push(&Row::new(first + i as i64, e, now))?;
        }
        blocks.push(Block::new(workflow_id, w.finish()?));
    }
    Ok(blocks)
}

/// The id of the event at position `seq` of `workflow_id`, the same at every read and on every
/// host, so it costs nothing to store: a UUID (version 8) whose low 62 bits are the workflow's
/// (random) ones mixed with the position by a bijection, so the ids of one workflow never
/// collide and those of two workflows collide no more often than random UUIDs. A few dozen
/// instructions: reads derive one per event served.
pub fn event_id(workflow_id: &str, seq: i64) -> String {
    // Workflow ids are UUIDs the host makes; anything else is hashed into one first.
    let base = uuid::Uuid::parse_str(workflow_id)
        .unwrap_or_else(|_| uuid::Uuid::new_v5(&EVENT_NAMESPACE, workflow_id.as_bytes()))
        .as_u128();
    const LOW_62: u128 = (1 << 62) - 1;
    // Multiplying by an odd constant is a bijection modulo 2^62; it spreads consecutive positions.
    let mixed = (seq as u64 as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15) & LOW_62;
    let id = uuid::Builder::from_u128(base ^ mixed)
        .with_version(uuid::Version::Custom)
        .with_variant(uuid::Variant::RFC4122)
        .into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    id.hyphenated().encode_lower(&mut text).to_owned()
}

/// Namespace of the UUIDs that stand for workflow ids that are not UUIDs.
const EVENT_NAMESPACE: uuid::Uuid = uuid::uuid!("5d1f7c3e-9b0a-4c8e-a6f2-3e8d9b1c7a40");

/// One event of a block as read, borrowing from the block's text: cheap to filter, turned into
/// an [`Event`] only when wanted.
pub struct Stored<'a> {
    seq: i64,
    /// Stored by blocks written before ids were derived ([`event_id`]).
    id: Option<Cow<'a, str>>,
    type_name: Cow<'a, str>,
    task_id: Option<Cow<'a, str>>,
    agent_id: Option<Cow<'a, str>>,
    agent_type: Option<Cow<'a, str>>,
    source_agent: Option<Cow<'a, str>>,
    target_agent: Option<Cow<'a, str>>,
    status: Option<Cow<'a, str>>,
    duration_ms: Option<f64>,
    ts: i64,
    /// Kept in the row by the compact format, in the body by the earlier one.
    performance: Option<Performance>,
    body: Option<&'a RawValue>,
}

/// A row of a block written by an earlier version: the whole event.
#[derive(Deserialize)]
struct RowV1<'a>(
    i64,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    Option<f64>,
    i64,
    #[serde(borrow)] Option<&'a RawValue>,
);

#[derive(Deserialize)]
struct BlockV2<'a> {
    v: u32,
    seq: i64,
    ts: i64,
    #[serde(borrow)]
    s: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    b: Vec<&'a RawValue>,
    e: Vec<RowV2<'a>>,
}

/// A row of the compact format (module docs); trailing nulls may be left out.
#[derive(Deserialize)]
struct RowV2<'a>(
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
    #[serde(default, borrow)] Option<Cow<'a, str>>,
);

/// The events of a block's text, in sequence order.
pub fn decode(text: &str) -> serde_json::Result<Vec<Stored<'_>>> {
    if text.trim_start().starts_with('[') {
        let rows: Vec<RowV1> = serde_json::from_str(text)?;
        return Ok(rows.into_iter().map(Stored::from_v1).collect());
    }
    let block: BlockV2 = serde_json::from_str(text)?;
    if block.v != 2 {
        return Err(serde::de::Error::custom(format!(
            "event block format {} is newer than this host reads: upgrade Hyphae",
            block.v
        )));
    }
    let string = |i: Option<u32>| -> serde_json::Result<Option<Cow<'_, str>>> {
        i.map(|i| {
            block.s.get(i as usize).cloned().ok_or_else(|| {
                serde::de::Error::custom(format!("string {i} is not in the block's table of {}", block.s.len()))
            })
        })
        .transpose()
    };
    let mut events = Vec::with_capacity(block.e.len());
    let (mut seq, mut ts) = (block.seq - 1, block.ts);
    for row in &block.e {
        let RowV2(ty, dts, task, agent, agent_type, status, body, duration_ms, perf, source, target, dseq, id) = row;
        seq = dseq.map_or(seq + 1, |d| block.seq + d);
        ts += dts;
        let body = match body {
            Some(i) => Some(*block.b.get(*i as usize).ok_or_else(|| {
                serde::de::Error::custom(format!("body {i} is not in the block's table of {}", block.b.len()))
            })?),
            None => None,
        };
        events.push(Stored {
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
    Ok(events)
}

impl<'a> Stored<'a> {
    fn from_v1(r: RowV1<'a>) -> Stored<'a> {
        let RowV1(seq, id, type_name, task_id, agent_id, agent_type, source_agent, target_agent, status, d, ts, body) =
            r;
        Stored {
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
            body,
        }
    }

    /// Position in the workflow's history.
    pub fn seq(&self) -> i64 {
        self.seq
    }

    /// Time (µs since the epoch).
    pub fn ts(&self) -> i64 {
        self.ts
    }

    pub fn duration_ms(&self) -> Option<f64> {
        self.duration_ms
    }

    /// Type name as stored.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    pub fn task_id(&self) -> Option<&str> {
        self.task_id.as_deref()
    }

    pub fn agent_id(&self) -> Option<&str> {
        self.agent_id.as_deref()
    }

    pub fn agent_type(&self) -> Option<&str> {
        self.agent_type.as_deref()
    }

    pub fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }

    /// The body (error, metadata, context) as stored JSON text.
    pub fn body_text(&self) -> Option<&str> {
        self.body.map(|b| b.get())
    }

    /// Whether `agent` took part in the event, as actor, source or target.
    pub fn involves(&self, agent: &str) -> bool {
        [&self.agent_id, &self.source_agent, &self.target_agent].into_iter().any(|a| a.as_deref() == Some(agent))
    }

    /// Whether the event is of one of `types` (any type when empty).
    pub fn is_of(&self, types: &[EventType]) -> bool {
        types.is_empty() || types.iter().any(|t| t.as_str() == self.type_name)
    }

    /// The whole event, as served; an error names what this host cannot read in it.
    pub fn into_event(self, workflow_id: &str) -> Result<Event, String> {
        let event_type = EventType::parse(&self.type_name)
            .ok_or_else(|| format!("unknown event type `{}` in {workflow_id}", self.type_name))?;
        let body: BodyIn = match self.body {
            Some(raw) => serde_json::from_str(raw.get()).map_err(|e| format!("event body in {workflow_id}: {e}"))?,
            None => BodyIn::default(),
        };
        let own = |s: Option<Cow<'a, str>>| s.map(Cow::into_owned);
        Ok(Event {
            workflow_id: workflow_id.to_string(),
            seq: self.seq,
            event_id: self.id.map(Cow::into_owned).unwrap_or_else(|| event_id(workflow_id, self.seq)),
            event_type,
            task_id: own(self.task_id),
            agent_id: own(self.agent_id),
            agent_type: own(self.agent_type),
            source_agent: own(self.source_agent),
            target_agent: own(self.target_agent),
            status: own(self.status),
            duration_ms: self.duration_ms,
            timestamp: rfc3339(self.ts),
            error: body.error,
            metadata: body.metadata,
            context: body.context,
            performance: self.performance.or(body.performance),
        })
    }

    /// The event as a row to write again, as it is.
    fn row(&self) -> Row<'_> {
        Row {
            seq: self.seq,
            id: self.id.as_deref(),
            event_type: TypeName::Name(&self.type_name),
            strings: [
                &self.task_id,
                &self.agent_id,
                &self.agent_type,
                &self.source_agent,
                &self.target_agent,
                &self.status,
            ]
            .map(|s| s.as_deref()),
            duration_ms: self.duration_ms,
            ts: self.ts,
            performance: self.performance,
            body: self.body.map_or(Body::None, |b| Body::Raw(b.get())),
        }
    }
}

/// Re-encode the events of a block of `workflow_id` that `keep` keeps (retention of a block that
/// straddles the cut-off): the new block and how many events were dropped. `None` when nothing is
/// kept.
pub fn retain(
    workflow_id: &str,
    text: &str,
    keep: impl Fn(&Stored) -> bool,
) -> serde_json::Result<Option<(Block, usize)>> {
    let all = decode(text)?;
    let total = all.len();
    let kept: Vec<Stored> = all.into_iter().filter(|e| keep(e)).collect();
    if kept.is_empty() {
        return Ok(None);
    }
    let mut w = BlockWriter::new(kept.len());
    for e in &kept {
        w.push(&e.row())?;
    }
    Ok(Some((Block::new(workflow_id, w.finish()?), total - kept.len())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{AttemptMeta, Performance};
    use std::sync::Arc;

    fn refs(events: &[NewEvent]) -> Vec<&NewEvent> {
        events.iter().collect()
    }

    fn ev(t: EventType, agent: Option<&str>, at_us: i64) -> NewEvent {
        let mut e = NewEvent { event_type: Some(t), at_us, ..Default::default() };
        e.agent_id = agent.map(Into::into);
        e
    }

    #[test]
    fn blocks_split_number_and_read_back() {
        let events: Vec<NewEvent> = (0..BLOCK_EVENTS as i64 + 3)
            .map(|i| ev(EventType::TaskStarted, Some(if i % 2 == 0 { "a" } else { "b" }), 10 + i))
            .collect();
        let blocks = encode("w", 5, &refs(&events), 99).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!((blocks[0].first_seq, blocks[0].last_seq, blocks[0].count), (5, 4 + BLOCK_EVENTS as i64, 256));
        assert_eq!(
            (blocks[1].first_seq, blocks[1].last_seq, blocks[1].count),
            (5 + BLOCK_EVENTS as i64, 7 + BLOCK_EVENTS as i64, 3)
        );
        assert_eq!((blocks[0].first_ts, blocks[0].last_ts), (10, 10 + BLOCK_EVENTS as i64 - 1));
        assert_eq!(blocks[1].agents.get("b"), Some(&(10 + BLOCK_EVENTS as i64 + 1)));
        let read = decode(&blocks[1].events).unwrap();
        assert_eq!(read.iter().map(Stored::seq).collect::<Vec<_>>(), [261, 262, 263]);
        let e = read.into_iter().next().unwrap().into_event("w").unwrap();
        assert_eq!((e.workflow_id.as_str(), e.seq, e.event_type), ("w", 261, EventType::TaskStarted));
        assert_eq!(e.event_id.len(), 36);
    }

    #[test]
    fn events_keep_every_field_and_unstamped_ones_get_now() {
        let mut e = ev(EventType::Handoff, Some("bob"), 0);
        e.task_id = Some("t\"1".into());
        e.source_agent = Some("alice".into());
        e.target_agent = Some("bob".into());
        e.status = Some("ok".into());
        e.duration_ms = Some(2.5);
        e.metadata = Some(serde_json::json!({"k": [1, 2]}).into());
        e.error = Some(EventError { error_type: "x".into(), message: "m\n".into(), attempt: 2, detail: None });
        let blocks = encode("w", 1, &[&e], 1_700_000_000_000_000).unwrap();
        assert_eq!(blocks[0].agents.keys().collect::<Vec<_>>(), ["alice", "bob"]);
        let stored = decode(&blocks[0].events).unwrap().into_iter().next().unwrap();
        assert!(stored.involves("alice") && stored.involves("bob") && !stored.involves("carol"));
        assert!(stored.is_of(&[EventType::Handoff]) && !stored.is_of(&[EventType::Retry]) && stored.is_of(&[]));
        let got = stored.into_event("w").unwrap();
        assert_eq!(got.task_id.as_deref(), Some("t\"1"));
        assert_eq!(got.metadata, Some(serde_json::json!({"k": [1, 2]})));
        assert_eq!(got.error.unwrap().message, "m\n");
        assert_eq!(got.duration_ms, Some(2.5));
        assert_eq!(got.timestamp, rfc3339(1_700_000_000_000_000));
    }

    #[test]
    fn blocks_write_each_string_and_repeated_body_once() {
        let mut e = ev(EventType::Handoff, Some("bob"), 42);
        e.task_id = Some("t\"1\\ é \u{1}".into());
        e.source_agent = Some("alice".into());
        e.status = Some("accepted".into());
        e.duration_ms = Some(9.044735999999999);
        e.metadata = Some(serde_json::json!({"attempt": 2, "issues": ["a\nb"]}).into());
        e.performance = Some(Performance { queue_time_ms: 1.5, execution_time_ms: 2.0, total_time_ms: 3.25 });
        let meta = AttemptMeta { attempt: 1, worker_id: Some("w1".into()), ..Default::default() };
        let started = |task: &str, at| {
            let mut s = ev(EventType::TaskStarted, Some("bob"), at).metadata(meta.clone());
            s.task_id = Some(task.into());
            s.agent_type = Some("bob".into());
            s
        };
        let events = [e, started("a", 40), started("b", 43)];
        let blocks = encode("w", 9, &refs(&events), 0).unwrap();
        let expected = serde_json::json!({
            "v": 2, "seq": 9, "ts": 42,
            "s": ["handoff", "t\"1\\ é \u{1}", "bob", "alice", "accepted", "task_started", "a", "b"],
            "b": [{"metadata": {"attempt": 2, "issues": ["a\nb"]}}, {"metadata": {"attempt": 1, "worker_id": "w1"}}],
            "e": [[0, 0, 1, 2, null, 4, 0, 9.045, [1.5, 2.0, 3.25], 3], [5, -2, 6, 2, 2, null, 1], [5, 3, 7, 2, 2, null, 1]],
        });
        assert_eq!(serde_json::from_str::<Value>(&blocks[0].events).unwrap(), expected);
        assert!(blocks[0].events.contains(r#""t\"1\\ é \u0001""#), "{}", blocks[0].events);
        assert_eq!((blocks[0].first_ts, blocks[0].last_ts), (40, 43));
        assert_eq!(blocks[0].agents, BTreeMap::from([("alice".to_string(), 42), ("bob".to_string(), 40)]));
        let read: Vec<Event> =
            decode(&blocks[0].events).unwrap().into_iter().map(|e| e.into_event("w").unwrap()).collect();
        assert_eq!(read[0].task_id.as_deref(), Some("t\"1\\ é \u{1}"));
        assert_eq!((read[0].source_agent.as_deref(), read[0].target_agent.as_deref()), (Some("alice"), None));
        assert_eq!(read[0].performance.unwrap().total_time_ms, 3.25);
        assert_eq!(
            (read[2].seq, read[2].task_id.as_deref(), read[2].timestamp.as_str()),
            (11, Some("b"), rfc3339(43).as_str())
        );
        assert_eq!(read[1].metadata, Some(serde_json::json!({"attempt": 1, "worker_id": "w1"})));
        assert_eq!(read[2].metadata, read[1].metadata);
    }

    #[test]
    fn shared_names_read_back_whatever_their_order() {
        // Names shared as the engine shares them (the same `Arc<str>`s), in the orders it writes
        // them: a task's events together, then tasks interleaved; over 100 strings, so table
        // indexes of every width.
        let agents: Vec<Arc<str>> = ["a", "b"].map(Into::into).to_vec();
        let tasks: Vec<Arc<str>> = (0..150).map(|i| format!("t{i}").into()).collect();
        let mut events = Vec::new();
        for (i, task) in tasks.iter().enumerate() {
            let agent = &agents[i % 2];
            for (t, status) in [(EventType::ExecutionStart, "running"), (EventType::ExecutionEnd, "completed")] {
                events.push(NewEvent::of_task(t, 1 + i as i64, (task, agent, agent), status));
            }
        }
        for (i, task) in tasks.iter().enumerate().rev() {
            events.push(NewEvent::of_task(
                EventType::TaskCompleted,
                500,
                (task, &agents[i % 2], &agents[0]),
                "completed",
            ));
        }
        let blocks = encode("w", 1, &refs(&events), 0).unwrap();
        let read: Vec<Event> =
            blocks.iter().flat_map(|b| decode(&b.events).unwrap()).map(|e| e.into_event("w").unwrap()).collect();
        assert_eq!(read.len(), events.len());
        for (got, want) in read.iter().zip(&events) {
            let names =
                |e: &NewEvent| [&e.task_id, &e.agent_id, &e.agent_type].map(|n| n.as_deref().map(str::to_string));
            assert_eq!([got.task_id.clone(), got.agent_id.clone(), got.agent_type.clone()], names(want));
            assert_eq!(got.status.as_deref(), want.status.as_deref());
        }
    }

    #[test]
    fn times_that_are_not_whole_microseconds_keep_their_place() {
        let mut e = ev(EventType::TaskCompleted, None, 5);
        e.duration_ms = Some(0.1 + 0.2);
        e.performance = Some(Performance { queue_time_ms: 1e20, execution_time_ms: 1.0, total_time_ms: 2.0 });
        e.target_agent = Some("bob".into());
        let block = encode("w", 1, &[&e], 0).unwrap().remove(0);
        let got = decode(&block.events).unwrap().remove(0).into_event("w").unwrap();
        assert_eq!((got.duration_ms, got.status, got.target_agent.as_deref()), (Some(0.3), None, Some("bob")));
        assert_eq!(got.performance.unwrap().queue_time_ms, 1e20);
    }

    #[test]
    fn an_agent_written_twice_keeps_its_earliest_time() {
        let names = ["a", "b", "c", "d", "e", "f", "a"];
        let times = [10, 60, 70, 80, 90, 95, 99];
        let events: Vec<NewEvent> =
            names.iter().zip(times).map(|(a, ts)| ev(EventType::TaskStarted, Some(a), ts)).collect();
        let block = encode("w", 1, &refs(&events), 0).unwrap().remove(0);
        assert_eq!(block.agents.get("a"), Some(&10));
        assert_eq!((block.agents.len(), block.first_ts, block.last_ts), (6, 10, 99));
        assert_eq!(block.events.matches("\"a\"").count(), 2, "the test writes `a` twice: {}", block.events);
    }

    #[test]
    fn bad_blocks_are_errors_that_say_why() {
        let bad_index = r#"{"v":2,"seq":1,"ts":5,"s":["task_started"],"b":[],"e":[[0,0,3]]}"#;
        assert!(decode(bad_index).err().unwrap().to_string().contains("string 3 is not in the block's table of 1"));
        let bad_body = r#"{"v":2,"seq":1,"ts":5,"s":["task_started"],"b":[],"e":[[0,0,null,null,null,null,0]]}"#;
        assert!(decode(bad_body).err().unwrap().to_string().contains("body 0 is not in the block's table of 0"));
        let newer = r#"{"v":3,"seq":1,"ts":5,"s":[],"b":[],"e":[]}"#;
        assert!(decode(newer).err().unwrap().to_string().contains("upgrade Hyphae"));
    }

    #[test]
    fn event_ids_are_derived_from_workflow_and_position() {
        let wf = "0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b";
        let id = event_id(wf, 7);
        assert_eq!(id, event_id(wf, 7), "the same at every read");
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 8);
        let ids: std::collections::HashSet<String> = (1..10_000).map(|seq| event_id(wf, seq)).collect();
        assert_eq!(ids.len(), 9_999, "one workflow's ids never collide");
        assert_ne!(id, event_id("0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5c", 7));
        assert_ne!(event_id("not-a-uuid", 1), event_id("not-a-uuid", 2));
        // Blocks written with stored ids keep them.
        let old = r#"[[3,"stored-id","task_started",null,null,null,null,null,null,null,5,null]]"#;
        assert_eq!(decode(old).unwrap().remove(0).into_event(wf).unwrap().event_id, "stored-id");
        let new = encode(wf, 3, &[&ev(EventType::TaskStarted, None, 5)], 0).unwrap().remove(0);
        assert_eq!(decode(&new.events).unwrap().remove(0).into_event(wf).unwrap().event_id, event_id(wf, 3));
    }

    #[test]
    fn retain_keeps_the_newer_events_of_a_block() {
        let events = vec![ev(EventType::TaskStarted, Some("a"), 10), ev(EventType::TaskCompleted, Some("b"), 30)];
        let block = encode("w", 7, &refs(&events), 0).unwrap().remove(0);
        let (kept, removed) = retain("w", &block.events, |e| e.ts() >= 20).unwrap().unwrap();
        assert_eq!((kept.first_seq, kept.last_seq, kept.count, kept.first_ts, removed), (8, 8, 1, 30, 1));
        assert_eq!(kept.agents.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(decode(&kept.events).unwrap()[0].type_name(), "task_completed");
        assert!(retain("w", &block.events, |_| false).unwrap().is_none());
        // Positions survive a gap.
        let events = [30, 10, 40].map(|ts| ev(EventType::TaskStarted, Some("a"), ts));
        let block = encode("w", 7, &refs(&events), 0).unwrap().remove(0);
        let (kept, _) = retain("w", &block.events, |e| e.ts() >= 20).unwrap().unwrap();
        let seqs: Vec<i64> = decode(&kept.events).unwrap().iter().map(Stored::seq).collect();
        assert_eq!((seqs, kept.first_ts, kept.last_seq), (vec![7, 9], 30, 9));
        // Blocks of the earlier format are written again in the compact one, keeping stored ids.
        let old = r#"[[3,"id-3","task_started",null,"a",null,null,null,null,null,5,null],
            [4,"id-4","task_completed","t","b","x",null,null,"completed",1.5,30,{"metadata":{"k":[1]}}]]"#;
        let (kept, removed) = retain("w", old, |e| e.ts() >= 20).unwrap().unwrap();
        assert!(kept.events.starts_with(r#"{"v":2,"seq":4,"ts":30,"#), "{}", kept.events);
        assert_eq!((kept.first_seq, kept.count, removed), (4, 1, 1));
        let e = decode(&kept.events).unwrap().remove(0).into_event("w").unwrap();
        assert_eq!(
            (e.event_id.as_str(), e.seq, e.status.as_deref(), e.duration_ms),
            ("id-4", 4, Some("completed"), Some(1.5))
        );
        assert_eq!((e.task_id.as_deref(), e.agent_type.as_deref()), (Some("t"), Some("x")));
        assert_eq!(e.metadata, Some(serde_json::json!({"k": [1]})));
        assert!(decode("[[1, \"id\", \"nonsense\", null, null, null, null, null, null, null, 5, null]]")
            .unwrap()
            .remove(0)
            .into_event("w")
            .is_err());
    }
}
