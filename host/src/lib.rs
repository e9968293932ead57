//! Hyphae: a host that orchestrates multi-agent workflows whose tasks run in sandboxed WebAssembly
//! components.
//!
//! The life of a task: [`workflow`] parses and validates a submitted DAG, [`store`] persists it,
//! [`engine`] claims ready tasks under a lease, builds [`handoff`]s along incoming edges, calls the
//! executor through [`plugins`], and records the outcome together with its [`events`]. What each
//! change does (retry, fail, skip, complete, cancel, roll back) is ruled by [`lifecycle`], in plain
//! code. [`api`] serves all of it over HTTP and [`cli`] is the `hyphae` command.

pub mod api;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod engine;
pub mod events;
pub mod handoff;
pub mod json;
pub mod lifecycle;
pub mod plugins;
pub mod report;
pub mod shared_plugins;
pub mod store;
pub mod telemetry;
pub mod workflow;
