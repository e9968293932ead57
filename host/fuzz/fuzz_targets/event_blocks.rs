//! Event blocks: decoding any text (a damaged row, say) never panics, and events written as a
//! block read back as they were written.
#![no_main]

use std::borrow::Cow;
use std::sync::Arc;

use arbitrary::Arbitrary;
use hyphae::events::blocks::{decode, encode};
use hyphae::events::{EventError, EventType, NewEvent};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Written {
    event_type: u8,
    task_id: Option<String>,
    agent_id: Option<String>,
    status: Option<String>,
    duration_ms: Option<u32>,
    error: Option<(String, String)>,
    at_us: u32,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Text(String),
    Events { first_seq: u16, events: Vec<Written> },
}

fuzz_target!(|input: Input| match input {
    Input::Text(text) => {
        for e in decode(&text).into_iter().flatten() {
            let _ = (e.seq(), e.type_name(), e.task_id(), e.body_text());
            let _ = e.into_event("wf");
        }
    }
    Input::Events { first_seq, events } => round_trip(i64::from(first_seq) + 1, &events),
});

fn round_trip(first_seq: i64, written: &[Written]) {
    let types = EventType::ALL;
    let events: Vec<NewEvent> = written
        .iter()
        .map(|w| NewEvent {
            event_type: Some(types[w.event_type as usize % types.len()]),
            task_id: w.task_id.as_deref().map(Arc::from),
            agent_id: w.agent_id.as_deref().map(Arc::from),
            status: w.status.clone().map(Cow::Owned),
            duration_ms: w.duration_ms.map(f64::from),
            error: w.error.clone().map(|(error_type, message)| EventError {
                error_type,
                message,
                attempt: 1,
                detail: None,
            }),
            at_us: 1_000_000 + i64::from(w.at_us),
            ..Default::default()
        })
        .collect();
    let refs: Vec<&NewEvent> = events.iter().collect();
    let blocks = encode("wf", first_seq, &refs, 2_000_000_000).expect("events encode");
    let mut read = Vec::new();
    for block in &blocks {
        for e in decode(&block.events).expect("a written block decodes") {
            read.push(e.into_event("wf").expect("a written event reads back"));
        }
    }
    assert_eq!(read.len(), events.len());
    for (i, (got, want)) in read.iter().zip(&events).enumerate() {
        assert_eq!(got.seq, first_seq + i as i64);
        assert_eq!(Some(got.event_type), want.event_type);
        assert_eq!(got.task_id.as_deref(), want.task_id.as_deref());
        assert_eq!(got.agent_id.as_deref(), want.agent_id.as_deref());
        assert_eq!(got.status.as_deref(), want.status.as_deref());
        assert_eq!(got.duration_ms, want.duration_ms);
        assert_eq!(got.error.as_ref(), want.error.as_ref());
    }
}
