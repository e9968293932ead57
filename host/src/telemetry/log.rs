//! The host's log: a `RUST_LOG`-style filter that can be changed while the host runs.

use std::sync::{Mutex, OnceLock};

use tracing_subscriber::prelude::*;
use tracing_subscriber::{reload, EnvFilter, Layer};

/// The filter when `RUST_LOG` sets none.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,wasmtime=warn";

type Reload = Box<dyn Fn(EnvFilter) -> Result<(), reload::Error> + Send + Sync>;

/// Replaces the installed subscriber's filter, and the filter's text.
static FILTER: OnceLock<(Reload, Mutex<String>)> = OnceLock::new();

/// Install the tracing subscriber: the `RUST_LOG` filter (default [`DEFAULT_FILTER`]),
/// human-readable, or JSON lines with `json = true`; spans also go to `traces` when given (the
/// filter applies to them too).
pub fn init_tracing(json: bool, traces: Option<&super::Traces>) {
    let text = std::env::var("RUST_LOG").ok().filter(|t| EnvFilter::try_new(t).is_ok());
    let text = text.unwrap_or_else(|| DEFAULT_FILTER.to_string());
    let (filter, handle) = reload::Layer::new(EnvFilter::new(&text));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json { fmt.json().boxed() } else { fmt.boxed() };
    let otel = traces.map(|t| t.layer());
    if tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init().is_ok() {
        let reload: Reload = Box::new(move |f| handle.reload(f));
        let _ = FILTER.set((reload, Mutex::new(text)));
    }
}

/// The log filter in force (`None` before [`init_tracing`]).
pub fn log_filter() -> Option<String> {
    FILTER.get().map(|(_, text)| text.lock().unwrap_or_else(|e| e.into_inner()).clone())
}

/// Change the log filter (`warn`, `info,hyphae::engine=debug` ...); an error says what is wrong.
pub fn set_log_filter(text: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(text)
        .map_err(|e| format!("`{text}` is not a log filter ({e}): use e.g. `info` or `warn,hyphae=debug`"))?;
    let Some((reload, current)) = FILTER.get() else {
        return Err("this process has no log to change".into());
    };
    reload(filter).map_err(|e| format!("the log filter cannot be changed: {e}"))?;
    *current.lock().unwrap_or_else(|e| e.into_inner()) = text.to_string();
    Ok(())
}
