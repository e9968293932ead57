//! Telemetry: Prometheus metrics and the tracing subscriber.

mod metrics;

pub use metrics::{Metrics, StatusGauges};

/// Install the tracing subscriber: `RUST_LOG`-style filter (default `info`), human-readable, or
/// JSON lines with `json = true`.
pub fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,wasmtime=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
