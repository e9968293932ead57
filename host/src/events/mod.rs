//! Coordination events: their types, their stored form (blocks), and what queries over them
//! take and give. The store runs the queries.

pub mod blocks;
mod query;
mod types;

pub(crate) use query::Tally;
pub use query::{AgentEventsQuery, EgressTotals, EventQuery, Statistics, TaskEgress, Timeline};
pub use types::{ms, rfc3339, round_us, AttemptMeta, Event, EventError, EventType, Metadata, NewEvent, Performance};
