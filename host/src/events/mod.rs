//! Coordination events: the history of every workflow, and the queries over it.

pub mod blocks;
mod query;
mod types;

pub use query::{AgentEventsQuery, EventQuery, Statistics, TaskEgress, Timeline};
pub use types::{ms, rfc3339, round_us, AttemptMeta, Event, EventError, EventType, Metadata, NewEvent, Performance};
