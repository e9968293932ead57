//! Coordination events: their kinds (typed, built where they happen), their stored form (blocks), and what queries over them
//! take and give. The store runs the queries.

pub mod blocks;
mod kind;
mod query;
mod types;

pub use kind::{micros, AttemptError, EventKind, Json, NewEvent, RetryPlan, TaskNames, Timing};
pub(crate) use query::Tally;
pub use query::{AgentCursor, AgentEventsQuery, EgressTotals, EventQuery, Order, Statistics, TaskEgress, Timeline};
pub use types::{rfc3339, Event, EventError, EventType, Performance};
