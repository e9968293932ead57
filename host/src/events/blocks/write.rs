//! Writing one event block in the compact format ([`super`] describes it). Runs for every event
//! the host records, so it is written by hand: each distinct string and body of a block is
//! written once, in the block's tables, and rows hold small numbers.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::super::types::{round_us, AttemptMeta, EventError, EventType, Metadata, NewEvent, Performance};

/// One event to write, whatever it was read or built from.
pub(super) struct Row<'w> {
    pub seq: i64,
    /// A stored id (blocks written before ids were derived); `None` for new events.
    pub id: Option<&'w str>,
    pub event_type: TypeName<'w>,
    /// Task, agent id, agent type, source agent, target agent, status.
    pub strings: [Option<&'w str>; 6],
    pub duration_ms: Option<f64>,
    pub ts: i64,
    pub performance: Option<Performance>,
    pub body: Body<'w>,
}

/// An event's type: known to this host, or a name read from a block.
pub(super) enum TypeName<'w> {
    Known(EventType),
    Name(&'w str),
}

/// The parts of an event read back but never filtered on, but for its performance.
pub(super) enum Body<'w> {
    None,
    /// As read from a block (JSON object text).
    Raw(&'w str),
    New(&'w NewEvent),
}

impl<'w> Row<'w> {
    /// A new event at position `seq`, at its own time or else `now`.
    #[inline]
    pub fn new(seq: i64, e: &'w NewEvent, now: i64) -> Row<'w> {
        let body =
            if e.error.is_none() && e.metadata.is_none() && e.context.is_none() { Body::None } else { Body::New(e) };
        Row {
            seq,
            id: None,
            event_type: e.event_type.map_or(TypeName::Name("unknown"), TypeName::Known),
            strings: [
                e.task_id.as_deref(),
                e.agent_id.as_deref(),
                e.agent_type.as_deref(),
                e.source_agent.as_deref(),
                e.target_agent.as_deref(),
                e.status.as_deref(),
            ],
            duration_ms: e.duration_ms.map(round_us),
            ts: if e.at_us > 0 { e.at_us } else { now },
            performance: e.performance,
            body,
        }
    }
}

/// Slots of a row's strings (see [`Row::strings`]) that name agents.
const AGENT_SLOTS: [usize; 3] = [1, 3, 4];
/// Table entries remembered per group of slots: a string repeats mostly in the same group
/// (tasks; agents and agent types, which are often equal; statuses), soon after.
const RECENT: usize = 4;
const GROUP: [usize; 6] = [0, 1, 1, 1, 1, 2];
const NONE: u32 = u32::MAX;

#[derive(Serialize)]
struct BodyOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a EventError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Metadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a Value>,
}

/// What a finished block holds besides its text.
pub(super) struct Written {
    pub text: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub count: i64,
    pub agents: BTreeMap<String, i64>,
}

/// Builds the text of one block from its rows, in order.
pub(super) struct BlockWriter<'w> {
    strings: Vec<&'w str>,
    /// Per string: the earliest time it named an agent in the block (`i64::MAX`: never).
    agent_ts: Vec<i64>,
    recent: [[u32; RECENT]; 3],
    types: [u32; EventType::ALL.len()],
    /// Bodies written so far (JSON array items), and recent ones to share.
    bodies: Vec<u8>,
    body_count: u32,
    recent_meta: [(Option<&'w AttemptMeta>, u32); RECENT],
    recent_raw: [(Option<&'w str>, u32); RECENT],
    rows: Vec<u8>,
    /// The row being written (kept, so its buffer is not cleared for every row).
    line: Line,
    /// Per slot of [`Row::strings`], the last string written there and its table index: a
    /// task's events follow each other and share its names (the same `Arc<str>`s), and most
    /// rows of a block have the agent and agent type of the row before. (Keeping two per slot
    /// cost more than it saved, by callgrind.)
    last: [(&'w str, u32); 6],
    count: i64,
    base: Option<(i64, i64)>,
    last_seq: i64,
    last_ts: i64,
    ts_range: (i64, i64),
}

impl<'w> BlockWriter<'w> {
    /// A writer for about `events` rows.
    pub fn new(events: usize) -> BlockWriter<'w> {
        BlockWriter {
            strings: Vec::with_capacity(16),
            agent_ts: Vec::with_capacity(16),
            recent: [[NONE; RECENT]; 3],
            types: [NONE; EventType::ALL.len()],
            bodies: Vec::new(),
            body_count: 0,
            recent_meta: [(None, NONE); RECENT],
            recent_raw: [(None, NONE); RECENT],
            rows: Vec::with_capacity(events * ROW_TEXT),
            line: Line::new(),
            last: [("", NONE); 6],
            count: 0,
            base: None,
            last_seq: 0,
            last_ts: 0,
            ts_range: (i64::MAX, i64::MIN),
        }
    }

    /// Append a row: `[type, ts - previous row's ts, task, agent id, agent type, status, body,
    /// duration, performance, source agent, target agent, seq - base seq, stored id]`, trailing
    /// nulls left out; the position is written only when it is not the previous row's plus one.
    pub fn push(&mut self, row: &Row<'w>) -> serde_json::Result<()> {
        let (base_seq, base_ts) = *self.base.get_or_insert((row.seq, row.ts));
        if self.count == 0 {
            self.last_ts = base_ts;
        }
        let consecutive = self.count == 0 || row.seq == self.last_seq + 1;
        self.last_seq = row.seq;
        self.ts_range = (self.ts_range.0.min(row.ts), self.ts_range.1.max(row.ts));
        self.count += 1;
        let event_type = match row.event_type {
            TypeName::Known(t) => self.type_index(t),
            TypeName::Name(name) => match EventType::parse(name) {
                Some(t) => self.type_index(t),
                None => self.intern(GROUP[5], name),
            },
        };
        let mut idx = [NONE; 6];
        for (slot, s) in row.strings.iter().enumerate() {
            if let Some(s) = s {
                idx[slot] = self.lookup(slot, s);
            }
        }
        for slot in AGENT_SLOTS {
            if idx[slot] != NONE {
                let ts = &mut self.agent_ts[idx[slot] as usize];
                *ts = (*ts).min(row.ts);
            }
        }
        let body = self.body(&row.body)?;

        let line = &mut self.line;
        line.byte(if self.count == 1 { b'[' } else { b',' });
        line.byte(b'[');
        line.int(event_type as i64);
        line.byte(b',');
        line.int(row.ts - self.last_ts);
        line.mark();
        self.last_ts = row.ts;
        for value in [idx[0], idx[1], idx[2], idx[5], body] {
            line.index(value);
        }
        let out = &mut self.rows;
        match row.duration_ms {
            Some(d) if line.float(d) => {}
            Some(d) => {
                line.flush_all(out);
                out.push(b',');
                serde_json::to_writer(&mut *out, &d)?;
            }
            None => line.null(),
        }
        match row.performance {
            Some(p) if line.perf(&p) => {}
            Some(p) => {
                line.flush_all(out);
                out.push(b',');
                serde_json::to_writer(&mut *out, &[p.queue_time_ms, p.execution_time_ms, p.total_time_ms])?;
            }
            None => line.null(),
        }
        line.index(idx[3]);
        line.index(idx[4]);
        if !consecutive || row.id.is_some() {
            line.byte(b',');
            line.int(row.seq - base_seq);
            line.mark();
        }
        line.flush(out);
        if let Some(id) = row.id {
            out.push(b',');
            write_str(out, id)?;
        }
        out.push(b']');
        Ok(())
    }

    /// The block: `{"v":2,"seq":base seq,"ts":base ts,"s":[strings],"b":[bodies],"e":[rows]}`.
    pub fn finish(self) -> serde_json::Result<Written> {
        let (first_seq, base_ts) = self.base.unwrap_or((0, 0));
        let strings: usize = self.strings.iter().map(|s| s.len() + 3).sum();
        let mut text = Vec::with_capacity(64 + strings + self.bodies.len() + self.rows.len());
        text.extend_from_slice(b"{\"v\":2,\"seq\":");
        int(&mut text, first_seq);
        text.extend_from_slice(b",\"ts\":");
        int(&mut text, base_ts);
        text.extend_from_slice(b",\"s\":[");
        for (i, s) in self.strings.iter().enumerate() {
            if i > 0 {
                text.push(b',');
            }
            write_str(&mut text, s)?;
        }
        text.extend_from_slice(b"],\"b\":[");
        text.extend_from_slice(&self.bodies);
        text.extend_from_slice(b"],\"e\":");
        if self.count == 0 {
            text.push(b'[');
        }
        text.extend_from_slice(&self.rows);
        text.extend_from_slice(b"]}");
        // A string can be in the table twice (sharing is only an economy): keep its earliest time.
        let mut agents = BTreeMap::new();
        for (s, &ts) in self.strings.iter().zip(&self.agent_ts).filter(|(_, ts)| **ts != i64::MAX) {
            let earliest = agents.entry(s.to_string()).or_insert(ts);
            *earliest = (*earliest).min(ts);
        }
        Ok(Written {
            text: String::from_utf8(text)
                .map_err(|e| serde::ser::Error::custom(format!("event text is not UTF-8: {e}")))?,
            first_seq,
            last_seq: self.last_seq,
            first_ts: self.ts_range.0,
            last_ts: self.ts_range.1,
            count: self.count,
            agents,
        })
    }

    /// The table index of a type's name, added at its first event.
    #[inline]
    fn type_index(&mut self, t: EventType) -> u32 {
        if self.types[t as usize] == NONE {
            self.types[t as usize] = self.string(t.as_str());
        }
        self.types[t as usize]
    }

    /// The table index of `s` in `slot`: that of the slot's last string when `s` is the same
    /// one (the same pointer), else [`Self::intern`]ed.
    #[inline(always)]
    fn lookup(&mut self, slot: usize, s: &'w str) -> u32 {
        let (last, i) = self.last[slot];
        if i != NONE && std::ptr::eq(last, s) {
            return i;
        }
        let i = self.intern(GROUP[slot], s);
        self.last[slot] = (s, i);
        i
    }

    /// The table index of `s`, found among the strings lately in `group` or added.
    #[inline]
    fn intern(&mut self, group: usize, s: &'w str) -> u32 {
        // Names are mostly shared (`Arc<str>`): the same pointer; ids of other tasks mostly
        // differ in their last byte.
        let same = |t: &str| {
            std::ptr::eq(t, s) || (t.len() == s.len() && t.as_bytes().last() == s.as_bytes().last() && t == s)
        };
        let recent = &mut self.recent[group];
        if let Some(&i) = recent.iter().find(|&&i| i != NONE && same(self.strings[i as usize])) {
            return i;
        }
        let i = self.string(s);
        let recent = &mut self.recent[group];
        remember(recent, i);
        i
    }

    /// Add `s` to the table (it may be there already: sharing is only an economy).
    #[inline]
    fn string(&mut self, s: &'w str) -> u32 {
        self.strings.push(s);
        self.agent_ts.push(i64::MAX);
        (self.strings.len() - 1) as u32
    }

    /// The index of the row's body in the body table, `NONE` when it has none. Attempt metadata
    /// repeats across a block's tasks, so equal ones share one entry.
    fn body(&mut self, body: &Body<'w>) -> serde_json::Result<u32> {
        match *body {
            Body::None => Ok(NONE),
            Body::Raw(raw) => {
                if let Some(&(_, i)) = self.recent_raw.iter().find(|(r, _)| *r == Some(raw)) {
                    return Ok(i);
                }
                self.start_body();
                self.bodies.extend_from_slice(raw.as_bytes());
                remember(&mut self.recent_raw, (Some(raw), self.body_count - 1));
                Ok(self.body_count - 1)
            }
            Body::New(e) => {
                let attempt_only = match &e.metadata {
                    Some(Metadata::Attempt(m)) if e.error.is_none() && e.context.is_none() => Some(m),
                    _ => None,
                };
                if let Some(m) = attempt_only {
                    if let Some(&(_, i)) = self.recent_meta.iter().find(|(r, _)| *r == Some(m)) {
                        return Ok(i);
                    }
                }
                self.start_body();
                write_body(&mut self.bodies, e)?;
                if let Some(m) = attempt_only {
                    remember(&mut self.recent_meta, (Some(m), self.body_count - 1));
                }
                Ok(self.body_count - 1)
            }
        }
    }

    fn start_body(&mut self) {
        if self.body_count > 0 {
            self.bodies.push(b',');
        }
        self.body_count += 1;
    }
}

/// Put `item` first among the recent ones, forgetting the oldest.
#[inline]
fn remember<T: Copy>(recent: &mut [T; RECENT], item: T) {
    recent.copy_within(..RECENT - 1, 1);
    recent[0] = item;
}

/// Bytes of row text an event usually takes: the row buffer starts this large per event.
const ROW_TEXT: usize = 32;

/// Longest row of numbers: thirteen fields of at most 21 bytes each, with room to spare.
const LINE: usize = 320;

/// The numbers of one row, written into a fixed buffer and copied out at once: cheaper than
/// growing the block's text a few bytes at a time. `end` is where the row ends when the fields
/// after it are null.
struct Line {
    buf: [u8; LINE],
    len: usize,
    end: usize,
}

impl Line {
    fn new() -> Line {
        Line { buf: [0; LINE], len: 0, end: 0 }
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    #[inline]
    fn int(&mut self, n: i64) {
        match n {
            0..=9 => self.byte(b'0' + n as u8),
            10..=99 => {
                self.byte(b'0' + (n / 10) as u8);
                self.byte(b'0' + (n % 10) as u8);
            }
            _ => {
                let mut text = itoa::Buffer::new();
                let text = text.format(n).as_bytes();
                self.buf[self.len..self.len + text.len()].copy_from_slice(text);
                self.len += text.len();
            }
        }
    }

    /// `,` and a table index or `null`. Indexes are mostly below 100: written in place.
    #[inline(always)]
    fn index(&mut self, value: u32) {
        match value {
            NONE => return self.null(),
            0..=9 => {
                self.buf[self.len..self.len + 2].copy_from_slice(&[b',', b'0' + value as u8]);
                self.len += 2;
            }
            10..=99 => {
                let digits = [b',', b'0' + (value / 10) as u8, b'0' + (value % 10) as u8];
                self.buf[self.len..self.len + 3].copy_from_slice(&digits);
                self.len += 3;
            }
            _ => {
                self.byte(b',');
                self.int(value as i64);
            }
        }
        self.mark();
    }

    #[inline]
    fn null(&mut self) {
        self.buf[self.len..self.len + 5].copy_from_slice(b",null");
        self.len += 5;
    }

    /// `,` and a number of milliseconds when it is whole microseconds (as the host measures
    /// them): `9.045`, `12.0`. `false` (nothing written) for any other.
    #[inline]
    fn float(&mut self, ms: f64) -> bool {
        let Some(us) = whole_us(ms) else { return false };
        self.byte(b',');
        self.ms(us);
        self.mark();
        true
    }

    /// `,[queue, execution, total]` when all three are whole microseconds.
    fn perf(&mut self, p: &Performance) -> bool {
        let [Some(q), Some(e), Some(t)] = [p.queue_time_ms, p.execution_time_ms, p.total_time_ms].map(whole_us) else {
            return false;
        };
        self.byte(b',');
        self.byte(b'[');
        self.ms(q);
        self.byte(b',');
        self.ms(e);
        self.byte(b',');
        self.ms(t);
        self.byte(b']');
        self.mark();
        true
    }

    /// Microseconds as milliseconds with up to three decimals.
    #[inline]
    fn ms(&mut self, us: i64) {
        if us < 0 {
            self.byte(b'-');
        }
        let us = us.unsigned_abs();
        self.int((us / 1000) as i64);
        // All four bytes are written; only those of the shortest exact form are kept.
        let frac = (us % 1000) as u32;
        let digits = [b'.', b'0' + (frac / 100) as u8, b'0' + (frac / 10 % 10) as u8, b'0' + (frac % 10) as u8];
        let len = if !frac.is_multiple_of(10) {
            4
        } else if !frac.is_multiple_of(100) {
            3
        } else {
            2
        };
        self.buf[self.len..self.len + 4].copy_from_slice(&digits);
        self.len += len;
    }

    /// The row ends here unless a later field is set.
    #[inline]
    fn mark(&mut self) {
        self.end = self.len;
    }

    /// Copy all of the row so far out: a field that is not null follows.
    fn flush_all(&mut self, out: &mut Vec<u8>) {
        self.mark();
        self.flush(out);
    }

    /// Copy the row so far out, dropping trailing nulls.
    fn flush(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.buf[..self.end]);
        self.len = 0;
        self.end = 0;
    }
}

/// `ms` in whole microseconds, when that is exactly what it is ([`round_us`]).
#[inline]
fn whole_us(ms: f64) -> Option<i64> {
    // Rounded by hand: `f64::round` is a library call on baseline x86-64.
    let x = ms * 1000.0;
    if x.is_nan() || x.abs() >= 1e15 {
        return None;
    }
    let us = if x >= 0.0 { (x + 0.5) as i64 } else { (x - 0.5) as i64 };
    (us as f64 / 1000.0 == ms).then_some(us)
}

fn int(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Append an event's body (error, metadata, context): by hand for attempt metadata, through
/// serde_json for anything else.
fn write_body(out: &mut Vec<u8>, e: &NewEvent) -> serde_json::Result<()> {
    let (Some(Metadata::Attempt(m)), None, None) = (&e.metadata, &e.error, &e.context) else {
        let body = BodyOut { error: e.error.as_ref(), metadata: e.metadata.as_ref(), context: e.context.as_ref() };
        return serde_json::to_writer(out, &body);
    };
    out.extend_from_slice(b"{\"metadata\":{\"attempt\":");
    int(out, m.attempt as i64);
    if let Some(w) = &m.worker_id {
        out.extend_from_slice(b",\"worker_id\":");
        write_str(out, w)?;
    }
    if let Some(t) = m.timeout_ms {
        out.extend_from_slice(b",\"timeout_ms\":");
        out.extend_from_slice(itoa::Buffer::new().format(t).as_bytes());
    }
    if let Some(d) = &m.plugin_digest {
        out.extend_from_slice(b",\"plugin_digest\":");
        write_str(out, d)?;
    }
    out.extend_from_slice(b"}}");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row_text(f: impl FnOnce(&mut Line) -> bool) -> Option<String> {
        let mut line = Line::new();
        if !f(&mut line) {
            return None;
        }
        let mut out = Vec::new();
        line.flush(&mut out);
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn milliseconds_read_back_as_written() {
        for ms in [0.0, 1.5, 2.0, 9.045, 1234.001, 0.010, -3.25, 86_400_000.0] {
            let text = row_text(|l| l.float(ms)).unwrap();
            assert_eq!(serde_json::from_str::<f64>(&text[1..]).unwrap(), ms, "{ms} written as {text}");
        }
        assert_eq!(row_text(|l| l.float(round_us(9.044735999999999))).unwrap(), ",9.045");
        assert_eq!(row_text(|l| l.float(12.0)).unwrap(), ",12.0");
        for odd in [0.1 + 0.2, 1e20, 7.0e-7, f64::NAN] {
            assert_eq!(row_text(|l| l.float(odd)), None, "{odd} goes through serde_json");
        }
        let p = Performance { queue_time_ms: 0.25, execution_time_ms: 12.0, total_time_ms: 1.001 };
        assert_eq!(row_text(|l| l.perf(&p)).unwrap(), ",[0.25,12.0,1.001]");
        assert_eq!(row_text(|l| l.perf(&Performance { total_time_ms: 0.1 + 0.2, ..p })), None);
        assert_eq!(
            row_text(|l| {
                l.int(-120);
                l.mark();
                l.null();
                true
            })
            .unwrap(),
            "-120",
            "trailing nulls are left out"
        );
    }

    #[test]
    fn integers_are_written_as_serde_writes_them() {
        for n in [0, 7, 10, 99, 100, 999, 1000, 9999, 10_000, 123_456_789, -1, -10_000, i64::MIN, i64::MAX] {
            let text = row_text(|l| {
                l.int(n);
                l.mark();
                true
            })
            .unwrap();
            assert_eq!(text, n.to_string());
        }
    }

    #[test]
    fn bodies_written_by_hand_are_what_serde_writes() {
        let meta = |worker: Option<&str>, timeout, digest: Option<&str>| AttemptMeta {
            attempt: 3,
            worker_id: worker.map(Into::into),
            timeout_ms: timeout,
            plugin_digest: digest.map(Into::into),
        };
        let cases = [
            Some(meta(Some("w\"1"), None, None).into()),
            Some(meta(None, Some(300_000), None).into()),
            Some(meta(None, None, Some("sha256:ab")).into()),
            Some(serde_json::json!({"k": 1}).into()),
        ];
        for metadata in cases {
            let e = NewEvent { metadata, ..Default::default() };
            let mut out = Vec::new();
            write_body(&mut out, &e).unwrap();
            let serde =
                serde_json::to_value(BodyOut { error: None, metadata: e.metadata.as_ref(), context: None }).unwrap();
            assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), serde, "{}", String::from_utf8_lossy(&out));
        }
    }
}
