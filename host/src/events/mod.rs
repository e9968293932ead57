//! Coordination events: the history of every workflow, and the queries over it.

pub mod blocks;
mod query;
mod types;

pub use query::{AgentEventsQuery, EventQuery, Statistics, Timeline};
pub use types::{rfc3339, Event, EventError, EventType, NewEvent, Performance};
