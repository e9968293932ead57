//! The integration tests: one binary, one module per area.

mod access;
mod api;
mod bench;
mod budgets;
mod console;
mod contract;
mod egress;
mod engine;
mod events;
mod harness;
mod hostile;
mod hosts;
mod layering;
mod metrics;
mod migrations;
mod plugin_tools;
mod plugins;
mod runbook;
mod shared_plugins;
mod support;
mod tls;
mod traces;
mod upstream;
