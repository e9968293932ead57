//! The integration tests: one binary, one module per area.

mod api;
mod plugins;
mod support;
