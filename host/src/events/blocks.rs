//! The stored form of events. The events a transaction appends to one workflow are kept together
//! as one *event block*: a row holding them as a JSON array, in sequence order, at most
//! [`BLOCK_EVENTS`] per block. Blocks make tracking nearly free on the write path (one row per
//! batch instead of one indexed row per event) and cheap to read back (a workflow's events are a
//! few rows already in order). An agent index (`event_agents`) names, per agent, the blocks its
//! events are in.

use std::borrow::{Borrow, Cow};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::types::{rfc3339, round_us, Event, EventError, EventType, Metadata, NewEvent, Performance};

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
    /// The events, as a JSON array of [`Stored`] rows.
    pub events: String,
    /// The agents that take part in the block's events (as actor, source or target), each with
    /// the time of its earliest event here.
    pub agents: BTreeMap<String, i64>,
}

/// The parts of an event read back but never filtered on.
#[derive(Serialize)]
struct BodyOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a EventError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Metadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    performance: Option<&'a Performance>,
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
pub fn encode(
    workflow_id: &str,
    first_seq: i64,
    events: &[impl Borrow<NewEvent>],
    now: i64,
) -> serde_json::Result<Vec<Block>> {
    let mut blocks = Vec::with_capacity(events.len().div_ceil(BLOCK_EVENTS));
    for (b, chunk) in events.chunks(BLOCK_EVENTS).enumerate() {
        let first = first_seq + (b * BLOCK_EVENTS) as i64;
        let mut text = Vec::with_capacity(chunk.len() * TEXT_PER_EVENT);
        let mut agents = BTreeMap::new();
        let (mut first_ts, mut last_ts) = (i64::MAX, i64::MIN);
        text.push(b'[');
        for (i, e) in chunk.iter().enumerate() {
            let e: &NewEvent = e.borrow();
            let ts = if e.at_us > 0 { e.at_us } else { now };
            first_ts = first_ts.min(ts);
            last_ts = last_ts.max(ts);
            for agent in [&e.agent_id, &e.source_agent, &e.target_agent].into_iter().flatten() {
                seen(&mut agents, agent, ts);
            }
            if i > 0 {
                text.push(b',');
            }
            write_event(&mut text, first + i as i64, e, ts)?;
        }
        text.push(b']');
        blocks.push(Block {
            workflow_id: workflow_id.to_string(),
            first_seq: first,
            last_seq: first + chunk.len() as i64 - 1,
            first_ts,
            last_ts,
            count: chunk.len() as i64,
            events: utf8(text)?,
            agents,
        });
    }
    Ok(blocks)
}

/// Append one event as stored: `[seq, event id, type, task, agent id, agent type, source agent,
/// target agent, status, duration (ms), time (µs), body]`, the row [`Stored`] reads. The event id
/// is not stored (`null`): it is derived from the workflow and the position ([`event_id`]);
/// blocks written before that hold a random id there, which reads keep. Written by hand, with
/// serde only for the body: this runs for every event the host records.
fn write_event(out: &mut Vec<u8>, seq: i64, e: &NewEvent, ts: i64) -> serde_json::Result<()> {
    out.push(b'[');
    out.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
    out.extend_from_slice(b",null,");
    write_str(out, e.event_type.map(EventType::as_str).unwrap_or("unknown"))?;
    for field in [&e.task_id, &e.agent_id, &e.agent_type, &e.source_agent, &e.target_agent, &e.status] {
        out.push(b',');
        match field {
            Some(s) => write_str(out, s)?,
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b',');
    serde_json::to_writer(&mut *out, &e.duration_ms.map(round_us))?;
    out.push(b',');
    out.extend_from_slice(itoa::Buffer::new().format(ts).as_bytes());
    out.push(b',');
    let body = BodyOut {
        error: e.error.as_ref(),
        metadata: e.metadata.as_ref(),
        context: e.context.as_ref(),
        performance: e.performance.as_ref(),
    };
    if body.error.is_none() && body.metadata.is_none() && body.context.is_none() && body.performance.is_none() {
        out.extend_from_slice(b"null");
    } else {
        serde_json::to_writer(&mut *out, &body)?;
    }
    out.push(b']');
    Ok(())
}

/// Append `s` as a JSON string: as it is when nothing in it needs escaping (ids, names,
/// statuses), through serde_json otherwise.
fn write_str(out: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, s)
    }
}

/// The text of a block written by [`write_event`] or serde_json, both of which write UTF-8.
fn utf8(text: Vec<u8>) -> serde_json::Result<String> {
    String::from_utf8(text).map_err(|e| serde::ser::Error::custom(format!("event text is not UTF-8: {e}")))
}

/// Bytes of text an event usually takes: the buffer a block is written into starts this large
/// per event, so it is rarely grown.
const TEXT_PER_EVENT: usize = 192;

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

/// Note that `agent` took part in an event at `ts`: the block keeps its earliest time.
fn seen(agents: &mut BTreeMap<String, i64>, agent: &str, ts: i64) {
    match agents.get_mut(agent) {
        Some(earliest) => *earliest = (*earliest).min(ts),
        None => {
            agents.insert(agent.to_string(), ts);
        }
    }
}

/// One event of a block as read, borrowing from the block's text: cheap to filter, turned into
/// an [`Event`] only when wanted. Written back unchanged when a block is trimmed.
#[derive(Serialize, Deserialize)]
pub struct Stored<'a>(
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

/// The events of a block's text, in sequence order.
pub fn decode(text: &str) -> serde_json::Result<Vec<Stored<'_>>> {
    serde_json::from_str(text)
}

impl<'a> Stored<'a> {
    /// Position in the workflow's history.
    pub fn seq(&self) -> i64 {
        self.0
    }

    /// Time (µs since the epoch).
    pub fn ts(&self) -> i64 {
        self.10
    }

    pub fn duration_ms(&self) -> Option<f64> {
        self.9
    }

    /// Type name as stored.
    pub fn type_name(&self) -> &str {
        &self.2
    }

    pub fn task_id(&self) -> Option<&str> {
        self.3.as_deref()
    }

    pub fn agent_id(&self) -> Option<&str> {
        self.4.as_deref()
    }

    /// Whether `agent` took part in the event, as actor, source or target.
    pub fn involves(&self, agent: &str) -> bool {
        [&self.4, &self.6, &self.7].into_iter().any(|a| a.as_deref() == Some(agent))
    }

    /// Whether the event is of one of `types` (any type when empty).
    pub fn is_of(&self, types: &[EventType]) -> bool {
        types.is_empty() || types.iter().any(|t| t.as_str() == self.2)
    }

    /// The whole event, as served; an error names what this host cannot read in it.
    pub fn into_event(self, workflow_id: &str) -> Result<Event, String> {
        let event_type =
            EventType::parse(&self.2).ok_or_else(|| format!("unknown event type `{}` in {workflow_id}", self.2))?;
        let body: BodyIn = match self.11 {
            Some(raw) => serde_json::from_str(raw.get()).map_err(|e| format!("event body in {workflow_id}: {e}"))?,
            None => BodyIn::default(),
        };
        let own = |s: Option<Cow<'a, str>>| s.map(Cow::into_owned);
        Ok(Event {
            workflow_id: workflow_id.to_string(),
            seq: self.0,
            event_id: self.1.map(Cow::into_owned).unwrap_or_else(|| event_id(workflow_id, self.0)),
            event_type,
            task_id: own(self.3),
            agent_id: own(self.4),
            agent_type: own(self.5),
            source_agent: own(self.6),
            target_agent: own(self.7),
            status: own(self.8),
            duration_ms: self.9,
            timestamp: rfc3339(self.10),
            error: body.error,
            metadata: body.metadata,
            context: body.context,
            performance: body.performance,
        })
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
    let mut agents = BTreeMap::new();
    for e in &kept {
        for agent in [&e.4, &e.6, &e.7].into_iter().flatten() {
            seen(&mut agents, agent, e.10);
        }
    }
    let block = Block {
        workflow_id: workflow_id.to_string(),
        first_seq: kept[0].0,
        last_seq: kept[kept.len() - 1].0,
        first_ts: kept.iter().map(|e| e.10).min().unwrap_or_default(),
        last_ts: kept.iter().map(|e| e.10).max().unwrap_or_default(),
        count: kept.len() as i64,
        events: serde_json::to_string(&kept)?,
        agents,
    };
    Ok(Some((block, total - kept.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: EventType, agent: Option<&str>, at_us: i64) -> NewEvent {
        let mut e = NewEvent { event_type: Some(t), at_us, ..Default::default() };
        e.agent_id = agent.map(str::to_string);
        e
    }

    #[test]
    fn blocks_split_number_and_read_back() {
        let events: Vec<NewEvent> = (0..BLOCK_EVENTS as i64 + 3)
            .map(|i| ev(EventType::TaskStarted, Some(if i % 2 == 0 { "a" } else { "b" }), 10 + i))
            .collect();
        let blocks = encode("w", 5, &events, 99).unwrap();
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
        let blocks = encode("w", 1, &[e], 1_700_000_000_000_000).unwrap();
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
    fn rows_are_the_json_serde_would_write() {
        let mut e = ev(EventType::Handoff, Some("bob"), 42);
        e.task_id = Some("t\"1\\ é \u{1}".into());
        e.source_agent = Some("alice".into());
        e.status = Some("accepted".into());
        e.duration_ms = Some(9.044735999999999);
        e.metadata = Some(serde_json::json!({"attempt": 2, "issues": ["a\nb"]}).into());
        e.performance = Some(Performance { queue_time_ms: 1.5, execution_time_ms: 2.0, total_time_ms: 3.25 });
        let plain = ev(EventType::TaskStarted, None, 43);
        let blocks = encode("w", 9, &[e, plain], 0).unwrap();
        let expected = serde_json::json!([
            [9, null, "handoff", "t\"1\\ é \u{1}", "bob", null, "alice", null, "accepted", 9.045, 42,
                {"metadata": {"attempt": 2, "issues": ["a\nb"]},
                 "performance": {"queue_time_ms": 1.5, "execution_time_ms": 2.0, "total_time_ms": 3.25}}],
            [10, null, "task_started", null, null, null, null, null, null, null, 43, null],
        ]);
        assert_eq!(serde_json::from_str::<Value>(&blocks[0].events).unwrap(), expected);
        assert!(blocks[0].events.starts_with(r#"[[9,null,"handoff","t\"1\\ é \u0001","bob",null,"alice""#));
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
        let new = encode(wf, 3, &[ev(EventType::TaskStarted, None, 5)], 0).unwrap().remove(0);
        assert_eq!(decode(&new.events).unwrap().remove(0).into_event(wf).unwrap().event_id, event_id(wf, 3));
    }

    #[test]
    fn retain_keeps_the_newer_events_of_a_block() {
        let events = vec![ev(EventType::TaskStarted, Some("a"), 10), ev(EventType::TaskCompleted, Some("b"), 30)];
        let block = encode("w", 7, &events, 0).unwrap().remove(0);
        let (kept, removed) = retain("w", &block.events, |e| e.ts() >= 20).unwrap().unwrap();
        assert_eq!((kept.first_seq, kept.last_seq, kept.count, kept.first_ts, removed), (8, 8, 1, 30, 1));
        assert_eq!(kept.agents.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(decode(&kept.events).unwrap()[0].type_name(), "task_completed");
        assert!(retain("w", &block.events, |_| false).unwrap().is_none());
        assert!(decode("[[1, \"id\", \"nonsense\", null, null, null, null, null, null, null, 5, null]]")
            .unwrap()
            .remove(0)
            .into_event("w")
            .is_err());
    }
}
