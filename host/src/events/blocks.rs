//! The stored form of events. The events a transaction appends to one workflow are kept together
//! as one *event block*: a row holding them in sequence order, at most [`BLOCK_EVENTS`] per
//! block. Blocks make tracking nearly free on the write path (one row per batch instead of one
//! indexed row per event) and cheap to read back (a workflow's events are a few rows already in
//! order). An agent index (`event_agents`) names, per agent, the blocks its events are in.
//!
//! A block's bytes (the `data` column) are a format byte ([`FORMAT`]) and a zstd frame of the
//! block encoded by postcard (serde, derived from the types: [`EventKind`] as it is): the first
//! position and time, then per event the positions skipped since the previous one (0 unless
//! retention removed some), its time after the previous one's (µs) and its kind. zstd takes care
//! of what repeats (agent names, worker ids, plugin digests). Blocks of earlier formats (JSON text
//! in the `events` column) are read by [`legacy`].

mod legacy;

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::kind::{ms, EventKind, NewEvent};
use super::types::{Event, EventType};
use crate::workflow::LlmUsage;

/// Most events in one block: a reader of a few events never parses much more than it needs.
pub const BLOCK_EVENTS: usize = 256;

/// The format of the blocks this host writes (1 and 2 were JSON text).
pub const FORMAT: u8 = 3;

/// zstd's level: the fastest; higher ones gained little on blocks (docs/benchmarks.md).
const ZSTD_LEVEL: i32 = 1;

/// Largest decoded block whose buffer is made at the size its frame states; a frame stating
/// more (only a damaged one could) is decoded as a stream, growing with what it really holds.
const PRESIZED_MAX: u64 = 64 << 20;

thread_local! {
    /// zstd contexts kept per thread: making one cost more than compressing a step's block.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// `bytes` as one zstd frame (its content size stated), by this thread's compressor.
fn compress(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with_borrow_mut(|c| match c {
        Some(c) => c.compress(bytes),
        None => c.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?).compress(bytes),
    })
}

/// What the zstd `frame` holds, by this thread's decompressor when the frame states its size.
fn decompress(frame: &[u8]) -> std::io::Result<Vec<u8>> {
    match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) if size <= PRESIZED_MAX => DECOMPRESSOR.with_borrow_mut(|d| match d {
            Some(d) => d.decompress(frame, size as usize),
            None => d.insert(zstd::bulk::Decompressor::new()?).decompress(frame, size as usize),
        }),
        _ => zstd::decode_all(frame),
    }
}

/// What cannot be read in a block.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Binary(#[from] postcard::Error),
    #[error("compression: {0}")]
    Compression(#[from] std::io::Error),
    #[error("event block format {0} is newer than this host reads: upgrade Hyphae")]
    Newer(u32),
    #[error("{0}")]
    Bad(String),
}

/// A block's events as stored: bytes of the current format, or text of an earlier one.
#[derive(Debug, Clone)]
pub enum Content {
    Encoded(Vec<u8>),
    Legacy(String),
}

impl Content {
    /// The content of a stored row's `events` (text) and `data` (bytes) columns.
    pub fn of_columns(events: Option<String>, data: Option<Vec<u8>>) -> Result<Content, BlockError> {
        match (events, data) {
            (_, Some(bytes)) => Ok(Content::Encoded(bytes)),
            (Some(text), None) => Ok(Content::Legacy(text)),
            (None, None) => Err(BlockError::Bad("the block has neither events nor data".into())),
        }
    }
}

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
    pub content: Content,
    /// The agents that take part in the block's events (as actor, source or target), each with
    /// the time of its earliest event here.
    pub agents: BTreeMap<String, i64>,
}

/// A block as encoded; `K` is the kind, borrowed to write, owned when read.
#[derive(Serialize, Deserialize)]
struct Encoded<K> {
    seq: i64,
    ts: i64,
    rows: Vec<Row<K>>,
}

#[derive(Serialize, Deserialize)]
struct Row<K> {
    /// Positions skipped since the previous event.
    gap: u64,
    /// Time after the previous event's (µs).
    dts: i64,
    kind: K,
}

impl Block {
    /// A block of `events` (position, time, kind), in order.
    fn of(workflow_id: &str, events: &[(i64, i64, &EventKind)]) -> Result<Block, BlockError> {
        let (first_seq, first_row_ts, _) = events[0];
        let mut b = Block {
            workflow_id: workflow_id.to_string(),
            first_seq,
            last_seq: first_seq,
            first_ts: i64::MAX,
            last_ts: i64::MIN,
            count: events.len() as i64,
            content: Content::Encoded(Vec::new()),
            agents: BTreeMap::new(),
        };
        let mut rows = Vec::with_capacity(events.len());
        let (mut seq, mut ts) = (first_seq - 1, first_row_ts);
        for &(s, t, kind) in events {
            rows.push(Row { gap: (s - seq - 1) as u64, dts: t - ts, kind });
            (seq, ts) = (s, t);
            b.note(t, kind.agents());
        }
        b.last_seq = seq;
        let bytes = postcard::to_allocvec(&Encoded { seq: first_seq, ts: first_row_ts, rows })?;
        let mut data = vec![FORMAT];
        data.extend(compress(&bytes)?);
        b.content = Content::Encoded(data);
        Ok(b)
    }

    /// Count an event at `ts` with `agents` in the block's times and agent index.
    fn note<'a>(&mut self, ts: i64, agents: impl Iterator<Item = &'a str>) {
        self.first_ts = self.first_ts.min(ts);
        self.last_ts = self.last_ts.max(ts);
        for a in agents {
            match self.agents.get_mut(a) {
                Some(t) => *t = (*t).min(ts),
                None => {
                    self.agents.insert(a.to_string(), ts);
                }
            }
        }
    }
}

/// Split a workflow's new events, numbered from `first_seq`, into blocks. Events without a time
/// get `now`.
pub fn encode(workflow_id: &str, first_seq: i64, events: &[&NewEvent], now: i64) -> Result<Vec<Block>, BlockError> {
    let mut blocks = Vec::with_capacity(events.len().div_ceil(BLOCK_EVENTS));
    for (b, chunk) in events.chunks(BLOCK_EVENTS).enumerate() {
        let first = first_seq + (b * BLOCK_EVENTS) as i64;
        let rows: Vec<(i64, i64, &EventKind)> = chunk
            .iter()
            .enumerate()
            .map(|(i, e)| (first + i as i64, if e.at_us == 0 { now } else { e.at_us }, &e.kind))
            .collect();
        blocks.push(Block::of(workflow_id, &rows)?);
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

/// One event of a block as read: cheap to filter, turned into an [`Event`] only when wanted.
#[derive(Debug, Clone)]
pub struct Stored {
    seq: i64,
    /// Time (µs since the epoch).
    ts: i64,
    what: What,
}

#[derive(Debug, Clone)]
enum What {
    Kind(EventKind),
    Legacy(legacy::Row),
}

/// The events of a block, in sequence order.
pub fn decode(content: &Content) -> Result<Vec<Stored>, BlockError> {
    let bytes = match content {
        Content::Legacy(text) => {
            let rows = legacy::decode(text)?;
            return Ok(rows.into_iter().map(|r| Stored { seq: r.seq, ts: r.ts, what: What::Legacy(r) }).collect());
        }
        Content::Encoded(bytes) => bytes,
    };
    match bytes.first() {
        Some(&FORMAT) => {}
        Some(&newer) => return Err(BlockError::Newer(newer.into())),
        None => return Err(BlockError::Bad("the block is empty".into())),
    }
    let block: Encoded<EventKind> = postcard::from_bytes(&decompress(&bytes[1..])?)?;
    let (mut seq, mut ts) = (block.seq - 1, block.ts);
    let mut events = Vec::with_capacity(block.rows.len());
    for row in block.rows {
        seq += row.gap as i64 + 1;
        ts += row.dts;
        events.push(Stored { seq, ts, what: What::Kind(row.kind) });
    }
    Ok(events)
}

impl Stored {
    /// Position in the workflow's history.
    pub fn seq(&self) -> i64 {
        self.seq
    }

    /// Time (µs since the epoch).
    pub fn ts(&self) -> i64 {
        self.ts
    }

    /// The type's name as stored.
    pub fn type_name(&self) -> &str {
        match &self.what {
            What::Kind(k) => k.event_type().as_str(),
            What::Legacy(r) => &r.type_name,
        }
    }

    /// The duration (ms) the event reports.
    pub fn duration_ms(&self) -> Option<f64> {
        match &self.what {
            What::Kind(k) => k.duration_us().map(ms),
            What::Legacy(r) => r.duration_ms,
        }
    }

    pub fn task_id(&self) -> Option<&str> {
        match &self.what {
            What::Kind(k) => k.task_id(),
            What::Legacy(r) => r.task_id.as_deref(),
        }
    }

    pub fn agent_id(&self) -> Option<&str> {
        match &self.what {
            What::Kind(k) => k.task().map(|t| &*t.agent_id),
            What::Legacy(r) => r.agent_id.as_deref(),
        }
    }

    pub fn agent_type(&self) -> Option<&str> {
        match &self.what {
            What::Kind(k) => k.task().map(|t| &*t.agent_type),
            What::Legacy(r) => r.agent_type.as_deref(),
        }
    }

    pub fn status(&self) -> Option<&str> {
        match &self.what {
            What::Kind(k) => k.status(),
            What::Legacy(r) => r.status.as_deref(),
        }
    }

    /// For an outbound request: the LLM usage its response reported, and its attempt.
    pub fn egress_usage(&self) -> (Option<LlmUsage>, Option<u32>) {
        #[derive(Deserialize)]
        struct Meta {
            llm_usage: Option<LlmUsage>,
            attempt: Option<u32>,
        }
        match &self.what {
            What::Kind(k) => (k.llm_usage(), k.attempt()),
            What::Legacy(r) => r.metadata::<Meta>().map(|m| (m.llm_usage, m.attempt)).unwrap_or_default(),
        }
    }

    /// Whether `agent` took part in the event, as actor, source or target.
    pub fn involves(&self, agent: &str) -> bool {
        match &self.what {
            What::Kind(k) => k.involves(agent),
            What::Legacy(r) => r.involves(agent),
        }
    }

    /// Whether the event is of one of `types` (any type when empty).
    pub fn is_of(&self, types: &[EventType]) -> bool {
        types.is_empty() || types.iter().any(|t| t.as_str() == self.type_name())
    }

    /// The whole event, as served; an error names what this host cannot read in it.
    pub fn into_event(self, workflow_id: &str) -> Result<Event, String> {
        let id = || event_id(workflow_id, self.seq);
        match self.what {
            What::Kind(k) => Ok(k.into_event(workflow_id, self.seq, id(), self.ts)),
            What::Legacy(r) => r.into_event(workflow_id, id),
        }
    }
}

/// Re-encode the events of a block of `workflow_id` that `keep` keeps (retention of a block that
/// straddles the cut-off), in the block's own format: the new block and how many events were
/// dropped. `None` when nothing is kept.
pub fn retain(
    workflow_id: &str,
    content: &Content,
    keep: impl Fn(&Stored) -> bool,
) -> Result<Option<(Block, usize)>, BlockError> {
    let all = decode(content)?;
    let total = all.len();
    let kept: Vec<Stored> = all.into_iter().filter(|e| keep(e)).collect();
    if kept.is_empty() {
        return Ok(None);
    }
    let kinds: Vec<(i64, i64, &EventKind)> = kept
        .iter()
        .filter_map(|e| match &e.what {
            What::Kind(k) => Some((e.seq, e.ts, k)),
            What::Legacy(_) => None,
        })
        .collect();
    let block =
        if kinds.len() == kept.len() { Block::of(workflow_id, &kinds)? } else { legacy_block(workflow_id, &kept)? };
    Ok(Some((block, total - kept.len())))
}

/// A block of events of an earlier format, written again in format 1.
fn legacy_block(workflow_id: &str, kept: &[Stored]) -> Result<Block, BlockError> {
    let rows: Vec<&legacy::Row> = kept
        .iter()
        .filter_map(|e| match &e.what {
            What::Legacy(r) => Some(r),
            What::Kind(_) => None,
        })
        .collect();
    let mut b = Block {
        workflow_id: workflow_id.to_string(),
        first_seq: rows[0].seq,
        last_seq: rows[rows.len() - 1].seq,
        first_ts: i64::MAX,
        last_ts: i64::MIN,
        count: rows.len() as i64,
        content: Content::Legacy(legacy::encode(&rows)?),
        agents: BTreeMap::new(),
    };
    for r in &rows {
        b.note(r.ts, r.agents());
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::kind::{AttemptError, Json, RetryPlan, TaskNames, Timing};
    use crate::events::types::rfc3339;
    use serde_json::json;
    use std::sync::Arc;

    fn names(task: &str, agent: &str) -> TaskNames {
        TaskNames::new(task, agent, "echo")
    }

    fn started(task: &str, agent: &str, at_us: i64) -> NewEvent {
        NewEvent::at(EventKind::TaskStarted { task: names(task, agent), attempt: 1, worker_id: "w1".into() }, at_us)
    }

    fn read(block: &Block) -> Vec<Event> {
        decode(&block.content).unwrap().into_iter().map(|e| e.into_event("w").unwrap()).collect()
    }

    /// One event of every kind, each field set.
    fn every_kind() -> Vec<EventKind> {
        let t = names("t\"1\\ é \u{1}", "bob");
        let error = AttemptError { error_type: "x".into(), message: "m\n".into(), detail: Some(Json::of(&json!([1]))) };
        let retry = RetryPlan { delay_us: 1_500, max_attempts: 3 };
        vec![
            EventKind::WorkflowCreated { started: true, name: Some("n".into()), task_count: 2, max_parallel_tasks: 8 },
            EventKind::WorkflowStarted,
            EventKind::WorkflowCompleted,
            EventKind::WorkflowFailed { task_id: "t".into(), cancelled_tasks: vec!["u".into()] },
            EventKind::WorkflowCancelled { cancelled_tasks: vec!["u".into()] },
            EventKind::WorkflowPaused { budget: Some(Json::of(&json!({"reason": "budget_exhausted"}))) },
            EventKind::WorkflowResumed,
            EventKind::WorkflowRolledBack { to_version: 2, from_version: 5 },
            EventKind::WorkflowBudgetChanged { change: Json::of(&json!({"to": {}})) },
            EventKind::TaskCreated { task: t.clone(), dependencies: vec!["a".into()] },
            EventKind::TaskStarted { task: t.clone(), attempt: 1, worker_id: "w1".into() },
            EventKind::ExecutionStart { task: t.clone(), attempt: 1, timeout_ms: 30_000 },
            EventKind::ExecutionEnd {
                task: t.clone(),
                attempt: 1,
                ok: true,
                duration_us: 9_045,
                plugin_digest: "d".into(),
            },
            EventKind::Egress {
                task: t.clone(),
                attempt: 1,
                outcome: "allowed".into(),
                duration_us: 250,
                request: Json::of(&json!({"method": "GET", "llm_usage": {"prompt_tokens": 3, "completion_tokens": 4}})),
            },
            EventKind::Handoff {
                task: t.clone(),
                attempt: 1,
                source: names("s", "alice"),
                handoff_id: "h".into(),
                by_validator: false,
                issues: Json::of(&json!([])),
                task_description: Json::of(&json!("d")),
            },
            EventKind::TaskCompleted {
                task: t.clone(),
                attempt: 1,
                timing: Timing { queue_us: 1_500, execution_us: 2_000, total_us: 3_250 },
            },
            EventKind::Failure { task: t.clone(), attempt: 2, error: error.clone() },
            EventKind::TaskRetrying { task: t.clone(), attempt: 2, error: error.clone(), retry },
            EventKind::Retry { task: t.clone(), attempt: 2, retry },
            EventKind::TaskFailed { task: t.clone(), attempt: 3, error, duration_us: 7, allow_failure: true },
            EventKind::TaskSkipped { task: t },
        ]
    }

    #[test]
    fn every_kind_reads_back_as_written_and_is_served_with_its_fields() {
        let kinds = every_kind();
        assert_eq!(kinds.len(), EventType::ALL.len());
        let events: Vec<NewEvent> = kinds.iter().cloned().map(|k| NewEvent::at(k, 1_700_000_000_000_000)).collect();
        let blocks = encode("w", 1, &events.iter().collect::<Vec<_>>(), 0).unwrap();
        let stored = decode(&blocks[0].content).unwrap();
        for (s, k) in stored.iter().zip(&kinds) {
            assert!(matches!(&s.what, What::Kind(got) if got == k), "{k:?}");
        }
        let served: Vec<Event> = stored.into_iter().map(|e| e.into_event("w").unwrap()).collect();
        let types: Vec<EventType> = served.iter().map(|e| e.event_type).collect();
        assert_eq!(types, kinds.iter().map(EventKind::event_type).collect::<Vec<_>>());
        let handoff = &served[14];
        assert_eq!((handoff.source_agent.as_deref(), handoff.target_agent.as_deref()), (Some("alice"), Some("bob")));
        assert_eq!(handoff.status.as_deref(), Some("accepted"));
        assert_eq!(handoff.metadata.as_ref().unwrap()["checked_by"], "schema");
        assert_eq!(handoff.context, Some(json!({"task_description": "d"})));
        let completed = &served[15];
        assert_eq!((completed.duration_ms, completed.performance.unwrap().total_time_ms), (Some(2.0), 3.25));
        let retrying = &served[17];
        assert_eq!(retrying.error.as_ref().map(|e| (e.attempt, e.detail.clone())), Some((2, Some(json!([1])))));
        assert_eq!(
            retrying.metadata,
            Some(json!({"attempt": 2, "next_attempt": 3, "delay_ms": 1.5, "max_attempts": 3}))
        );
        assert_eq!(served[13].metadata.as_ref().unwrap()["attempt"], 1);
        assert_eq!(served[12].metadata, Some(json!({"attempt": 1, "plugin_digest": "d"})));
        assert_eq!(served[12].duration_ms, Some(9.045));
        assert_eq!(served[10].task_id.as_deref(), Some("t\"1\\ é \u{1}"));
        assert_eq!(served[3].task_id.as_deref(), Some("t"));
        assert_eq!(served[0].status.as_deref(), Some("running"));
        assert_eq!(served[0].timestamp, rfc3339(1_700_000_000_000_000));
        assert_eq!(
            blocks[0].agents,
            BTreeMap::from([("alice".to_string(), 1_700_000_000_000_000), ("bob".to_string(), 1_700_000_000_000_000)])
        );
    }

    #[test]
    fn the_encoding_of_every_kind_is_pinned() {
        // Stored blocks are read by position: a variant or field moved or removed would make old
        // blocks read wrong. Append new ones at the end, and extend this list.
        let bytes: Vec<String> = every_kind()
            .iter()
            .map(|k| postcard::to_allocvec(k).unwrap().iter().map(|b| format!("{b:02x}")).collect())
            .collect();
        assert_eq!(bytes, PINNED);
    }

    const PINNED: [&str; 21] = [
        "000101016e0208",
        "01",
        "02",
        "030174010175",
        "04010175",
        "05011d7b22726561736f6e223a226275646765745f657868617573746564227d",
        "06",
        "07040a",
        "08097b22746f223a7b7d7d",
        "09097422315c20c3a9200103626f62046563686f010161",
        "0a097422315c20c3a9200103626f62046563686f01027731",
        "0b097422315c20c3a9200103626f62046563686f01b0ea01",
        "0c097422315c20c3a9200103626f62046563686f0101d5460164",
        "0d097422315c20c3a9200103626f62046563686f0107616c6c6f776564fa01467b226c6c6d5f7573616765223a7b22636f6d706c6574696f6e5f746f6b656e73223a342c2270726f6d70745f746f6b656e73223a337d2c226d6574686f64223a22474554227d",
        "0e097422315c20c3a9200103626f62046563686f01017305616c696365046563686f016800025b5d03226422",
        "0f097422315c20c3a9200103626f62046563686f01dc0bd00fb219",
        "10097422315c20c3a9200103626f62046563686f020178026d0a01035b315d",
        "11097422315c20c3a9200103626f62046563686f020178026d0a01035b315ddc0b03",
        "12097422315c20c3a9200103626f62046563686f02dc0b03",
        "13097422315c20c3a9200103626f62046563686f030178026d0a01035b315d0701",
        "14097422315c20c3a9200103626f62046563686f",
    ];

    #[test]
    fn blocks_split_number_and_read_back() {
        let events: Vec<NewEvent> =
            (0..BLOCK_EVENTS as i64 + 3).map(|i| started("t", if i % 2 == 0 { "a" } else { "b" }, 10 + i)).collect();
        let blocks = encode("w", 5, &events.iter().collect::<Vec<_>>(), 99).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!((blocks[0].first_seq, blocks[0].last_seq, blocks[0].count), (5, 4 + BLOCK_EVENTS as i64, 256));
        assert_eq!(
            (blocks[1].first_seq, blocks[1].last_seq, blocks[1].count),
            (5 + BLOCK_EVENTS as i64, 7 + BLOCK_EVENTS as i64, 3)
        );
        assert_eq!((blocks[0].first_ts, blocks[0].last_ts), (10, 10 + BLOCK_EVENTS as i64 - 1));
        assert_eq!(blocks[1].agents.get("b"), Some(&(10 + BLOCK_EVENTS as i64 + 1)));
        let got = read(&blocks[1]);
        assert_eq!(got.iter().map(|e| e.seq).collect::<Vec<_>>(), [261, 262, 263]);
        assert_eq!((got[0].workflow_id.as_str(), got[0].event_type), ("w", EventType::TaskStarted));
        assert_eq!(got[0].event_id, event_id("w", 261));
        // Unstamped events get the time of the write.
        let block = encode("w", 1, &[&started("t", "a", 0)], 99).unwrap().remove(0);
        assert_eq!((block.first_ts, decode(&block.content).unwrap()[0].ts()), (99, 99));
    }

    #[test]
    fn times_out_of_order_and_agents_seen_twice_keep_their_earliest() {
        let times = [10, 60, 5, 80, 99];
        let agents = ["a", "b", "c", "d", "a"];
        let events: Vec<NewEvent> = agents.iter().zip(times).map(|(a, ts)| started("t", a, ts)).collect();
        let block = encode("w", 1, &events.iter().collect::<Vec<_>>(), 0).unwrap().remove(0);
        assert_eq!((block.agents.get("a"), block.agents.len(), block.first_ts, block.last_ts), (Some(&10), 4, 5, 99));
        let ts: Vec<i64> = decode(&block.content).unwrap().iter().map(Stored::ts).collect();
        assert_eq!(ts, times);
    }

    #[test]
    fn frames_with_and_without_a_stated_size_decode() {
        let data = b"hyphae ".repeat(1000);
        assert_eq!(super::decompress(&super::compress(&data).unwrap()).unwrap(), data);
        // A streamed frame does not state its size: decoded as a stream.
        let streamed = zstd::stream::encode_all(&data[..], 1).unwrap();
        assert_eq!(zstd::zstd_safe::get_frame_content_size(&streamed).unwrap(), None);
        assert_eq!(super::decompress(&streamed).unwrap(), data);
    }

    #[test]
    fn a_fan_out_block_is_small() {
        // The events of one attempt of each of 64 tasks, as a wide workflow writes them: zstd
        // finds what repeats (agent names, the worker id, the plugin digest).
        let digest: Arc<str> = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into();
        let worker: Arc<str> = "host-1/0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b".into();
        let mut events = Vec::new();
        for i in 0..64 {
            let task = names(&format!("task-{i}"), "echo");
            let at = 1_700_000_000_000_000 + i * 137;
            let k = [
                EventKind::TaskStarted { task: task.clone(), attempt: 1, worker_id: worker.clone() },
                EventKind::ExecutionStart { task: task.clone(), attempt: 1, timeout_ms: 30_000 },
                EventKind::ExecutionEnd {
                    task: task.clone(),
                    attempt: 1,
                    ok: true,
                    duration_us: 41 + i as u64,
                    plugin_digest: digest.clone(),
                },
                EventKind::TaskCompleted {
                    task,
                    attempt: 1,
                    timing: Timing { queue_us: 900 + i as u64, execution_us: 41, total_us: 1_200 },
                },
            ];
            events.extend(k.into_iter().enumerate().map(|(j, k)| NewEvent::at(k, at + j as i64 * 20)));
        }
        let block = encode("w", 1, &events.iter().collect::<Vec<_>>(), 0).unwrap().remove(0);
        let Content::Encoded(bytes) = &block.content else { panic!("not encoded") };
        let per_event = bytes.len() as f64 / events.len() as f64;
        assert!(per_event < 12.0, "{per_event:.1} bytes per event");
    }

    #[test]
    fn bad_blocks_are_errors_that_say_why() {
        let bad_index = r#"{"v":2,"seq":1,"ts":5,"s":["task_started"],"b":[],"e":[[0,0,3]]}"#;
        let err = |c: Content| decode(&c).err().unwrap().to_string();
        assert!(err(Content::Legacy(bad_index.into())).contains("string 3 is not in the block's table of 1"));
        let bad_body = r#"{"v":2,"seq":1,"ts":5,"s":["task_started"],"b":[],"e":[[0,0,null,null,null,null,0]]}"#;
        assert!(err(Content::Legacy(bad_body.into())).contains("body 0 is not in the block's table of 0"));
        let newer = r#"{"v":9,"seq":1,"ts":5,"s":[],"b":[],"e":[]}"#;
        assert!(err(Content::Legacy(newer.into())).contains("format 9 is newer than this host reads: upgrade Hyphae"));
        assert!(err(Content::Encoded(vec![4, 1, 2])).contains("format 4 is newer"));
        assert!(err(Content::Encoded(vec![FORMAT, 1, 2])).contains("compression"));
        assert!(err(Content::Encoded(Vec::new())).contains("empty"));
        assert!(Content::of_columns(None, None).is_err());
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
    }

    #[test]
    fn retain_keeps_the_newer_events_of_a_block() {
        let events = [started("t", "a", 10), started("u", "b", 30)];
        let block = encode("w", 7, &events.iter().collect::<Vec<_>>(), 0).unwrap().remove(0);
        let (kept, removed) = retain("w", &block.content, |e| e.ts() >= 20).unwrap().unwrap();
        assert_eq!((kept.first_seq, kept.last_seq, kept.count, kept.first_ts, removed), (8, 8, 1, 30, 1));
        assert_eq!(kept.agents.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(read(&kept)[0].task_id.as_deref(), Some("u"));
        assert!(retain("w", &block.content, |_| false).unwrap().is_none());
        // Positions survive a gap.
        let events = [30, 10, 40].map(|ts| started("t", "a", ts));
        let block = encode("w", 7, &events.iter().collect::<Vec<_>>(), 0).unwrap().remove(0);
        let (kept, _) = retain("w", &block.content, |e| e.ts() >= 20).unwrap().unwrap();
        let seqs: Vec<i64> = decode(&kept.content).unwrap().iter().map(Stored::seq).collect();
        assert_eq!((seqs, kept.first_ts, kept.last_seq), (vec![7, 9], 30, 9));
    }

    /// A block of format 2, as the hand-made writer of earlier versions wrote it.
    const V2: &str = r#"{"v":2,"seq":9,"ts":42,
        "s":["handoff","t\"1\\ é \u0001","bob","alice","accepted","task_started","a","b"],
        "b":[{"metadata":{"attempt":2,"issues":["a\nb"]}},{"metadata":{"attempt":1,"worker_id":"w1"}}],
        "e":[[0,0,1,2,null,4,0,9.045,[1.5,2.0,3.25],3],[5,-2,6,2,2,null,1],[5,3,7,2,2,null,1,null,null,null,null,4,"kept-id"]]}"#;

    #[test]
    fn blocks_of_earlier_formats_read_as_they_are() {
        let got = read(&Block { content: Content::Legacy(V2.into()), ..legacy_shell() });
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].seq, got[0].event_type, got[0].task_id.as_deref()),
            (9, EventType::Handoff, Some("t\"1\\ é \u{1}"))
        );
        assert_eq!((got[0].source_agent.as_deref(), got[0].target_agent.as_deref()), (Some("alice"), None));
        assert_eq!((got[0].duration_ms, got[0].performance.unwrap().total_time_ms), (Some(9.045), 3.25));
        assert_eq!(got[0].metadata, Some(json!({"attempt": 2, "issues": ["a\nb"]})));
        assert_eq!((got[1].seq, got[1].timestamp.as_str()), (10, rfc3339(40).as_str()));
        assert_eq!(got[1].metadata, Some(json!({"attempt": 1, "worker_id": "w1"})));
        assert_eq!((got[2].seq, got[2].event_id.as_str(), got[2].agent_type.as_deref()), (13, "kept-id", Some("bob")));
        assert_eq!(got[1].event_id, event_id("w", 10));
        let stored = decode(&Content::Legacy(V2.into())).unwrap();
        assert!(stored[0].involves("alice") && stored[0].involves("bob") && !stored[0].involves("carol"));
        assert!(
            stored[0].is_of(&[EventType::Handoff]) && !stored[0].is_of(&[EventType::Retry]) && stored[0].is_of(&[])
        );
        let v1 = r#"[[3,"id-3","task_started",null,"a",null,null,null,null,null,5,null],
            [4,null,"egress","t","b","x",null,null,"denied",1.5,30,{"metadata":{"attempt":2,"llm_usage":{"prompt_tokens":1,"completion_tokens":2}}}]]"#;
        let stored = decode(&Content::Legacy(v1.into())).unwrap();
        assert_eq!(stored[1].egress_usage().1, Some(2));
        assert_eq!(stored[1].egress_usage().0.map(|u| u.completion_tokens), Some(2));
        let got: Vec<Event> = stored.into_iter().map(|e| e.into_event("w").unwrap()).collect();
        assert_eq!((got[0].event_id.as_str(), got[1].status.as_deref()), ("id-3", Some("denied")));
        let unknown = r#"[[1, "id", "nonsense", null, null, null, null, null, null, null, 5, null]]"#;
        assert!(decode(&Content::Legacy(unknown.into())).unwrap().remove(0).into_event("w").is_err());
    }

    fn legacy_shell() -> Block {
        Block {
            workflow_id: "w".into(),
            first_seq: 0,
            last_seq: 0,
            first_ts: 0,
            last_ts: 0,
            count: 0,
            content: Content::Legacy(String::new()),
            agents: BTreeMap::new(),
        }
    }

    #[test]
    fn retention_writes_blocks_of_earlier_formats_again_in_format_one() {
        let (kept, removed) = retain("w", &Content::Legacy(V2.into()), |e| e.seq() >= 10).unwrap().unwrap();
        assert_eq!(
            (kept.first_seq, kept.last_seq, kept.count, kept.first_ts, kept.last_ts, removed),
            (10, 13, 2, 40, 43, 1)
        );
        assert_eq!(kept.agents.keys().collect::<Vec<_>>(), ["bob"]);
        let Content::Legacy(text) = &kept.content else { panic!("not legacy") };
        assert!(text.starts_with("[["), "{text}");
        let got = read(&kept);
        assert_eq!((got[1].seq, got[1].event_id.as_str()), (13, "kept-id"));
        assert_eq!(got[0].metadata, Some(json!({"attempt": 1, "worker_id": "w1"})));
        // A format 2 row's performance moves into the body of format 1.
        let (kept, _) = retain("w", &Content::Legacy(V2.into()), |e| e.seq() == 9).unwrap().unwrap();
        let got = read(&kept);
        assert_eq!((got[0].performance.unwrap().queue_time_ms, got[0].duration_ms), (1.5, Some(9.045)));
        assert_eq!(serde_json::to_value(&got[0]).unwrap()["metadata"]["issues"], json!(["a\nb"]));
    }
}
