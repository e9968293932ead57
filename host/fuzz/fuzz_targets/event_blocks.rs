//! Event blocks: decoding any bytes or text (a damaged row, say) never panics, and events written
//! as a block read back as they were written.
#![no_main]

use arbitrary::Arbitrary;
use hyphae::events::blocks::{decode, encode, event_id, Content};
use hyphae::events::{AttemptError, EventKind, NewEvent, TaskNames};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Written {
    failed: bool,
    task_id: String,
    agent_id: String,
    worker_id: String,
    attempt: u32,
    duration_us: u32,
    error: (String, String),
    at_us: u32,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Text(String),
    Bytes(Vec<u8>),
    Events { first_seq: u16, events: Vec<Written> },
}

fuzz_target!(|input: Input| match input {
    Input::Text(text) => read_any(&Content::Legacy(text)),
    Input::Bytes(bytes) => read_any(&Content::Encoded(bytes)),
    Input::Events { first_seq, events } => round_trip(i64::from(first_seq) + 1, &events),
});

fn read_any(content: &Content) {
    for e in decode(content).into_iter().flatten() {
        let _ = (e.seq(), e.type_name(), e.task_id(), e.status(), e.egress_usage());
        let _ = e.into_event("wf");
    }
}

fn kind(w: &Written) -> EventKind {
    let task = TaskNames::new(&w.task_id, &w.agent_id, "echo");
    if w.failed {
        let error = AttemptError { error_type: w.error.0.clone(), message: w.error.1.clone(), detail: None };
        let duration_us = u64::from(w.duration_us);
        EventKind::TaskFailed { task, attempt: w.attempt, error, duration_us, allow_failure: false }
    } else {
        EventKind::TaskStarted { task, attempt: w.attempt, worker_id: w.worker_id.as_str().into() }
    }
}

fn round_trip(first_seq: i64, written: &[Written]) {
    let events: Vec<NewEvent> = written.iter().map(|w| NewEvent::at(kind(w), 1_000_000 + i64::from(w.at_us))).collect();
    let refs: Vec<&NewEvent> = events.iter().collect();
    let blocks = encode("wf", first_seq, &refs, 2_000_000_000).expect("events encode");
    let mut read = Vec::new();
    for block in &blocks {
        for e in decode(&block.content).expect("a written block decodes") {
            read.push(e.into_event("wf").expect("a written event reads back"));
        }
    }
    assert_eq!(read.len(), events.len());
    for (i, (got, want)) in read.iter().zip(&events).enumerate() {
        let seq = first_seq + i as i64;
        assert_eq!(*got, want.kind.clone().into_event("wf", seq, event_id("wf", seq), want.at_us));
    }
}
