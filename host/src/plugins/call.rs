//! One call into a plugin: a fresh store with limits, the guest interrupted at its deadline or on
//! cancellation, and every way a call can end mapped to an output or a [`TaskFailure`].

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use wasmtime::{Engine, Store, Trap, UpdateDeadline, WasmBacktrace};

use super::outbound::Outbound;
use super::state::{truncate, CallInfo, HostState, MemoryLimitExceeded};
use super::{LogLine, TaskFailure};

/// Why the host stopped a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Interrupt {
    #[error("deadline of {0:?} passed")]
    Timeout(Duration),
    #[error("call cancelled")]
    Cancelled,
}

/// Limits of one call, resolved from the runtime configuration and the call options.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub memory: usize,
    /// The host's budget the call's memory is taken from (none: only `memory` bounds it).
    pub host_memory: Option<super::memory::MemoryBudget>,
    pub timeout: Duration,
    pub cancel: Option<CancellationToken>,
}

/// A store for one call: memory limit, outbound HTTP and config under `outbound`'s policy, and an
/// epoch callback that yields to the async runtime every tick and traps once the deadline passes
/// or the call is cancelled.
pub(crate) fn new_store(engine: &Engine, info: CallInfo, limits: &Limits, outbound: Outbound) -> Store<HostState> {
    let deadline = outbound.deadline;
    let mut store = Store::new(engine, HostState::new(info, limits.memory, limits.host_memory.clone(), outbound));
    store.limiter_async(|state| &mut state.limiter);
    store.set_epoch_deadline(1);
    let cancel = limits.cancel.clone();
    let timeout = limits.timeout;
    store.epoch_deadline_callback(move |_| {
        if cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Err(wasmtime::Error::new(Interrupt::Cancelled));
        }
        if Instant::now() >= deadline {
            return Err(wasmtime::Error::new(Interrupt::Timeout(timeout)));
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store
}

/// Backstop for a guest blocked inside a host call (where epochs are not observed): the call's
/// future is dropped, which stops the guest, shortly after the deadline or at cancellation.
pub(crate) async fn guarded<F: Future>(fut: F, deadline: Instant, limits: &Limits) -> Result<F::Output, Interrupt> {
    let backstop = tokio::time::Instant::from_std(deadline + Duration::from_millis(20));
    let cancelled = async {
        match &limits.cancel {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        out = fut => Ok(out),
        _ = tokio::time::sleep_until(backstop) => Err(Interrupt::Timeout(limits.timeout)),
        _ = cancelled => Err(Interrupt::Cancelled),
    }
}

/// Maps a host interruption (from [`guarded`]) to a failure.
pub(crate) fn interrupted(agent_type: &str, why: Interrupt, state: &mut HostState) -> TaskFailure {
    state.drain_stdio();
    failure_for_interrupt(agent_type, why, None)
}

/// Maps an error out of wasmtime (a trap, a limit, an interruption) to a failure.
pub(crate) fn from_error(agent_type: &str, err: wasmtime::Error, state: &mut HostState) -> TaskFailure {
    let stderr = state.stderr.peek_text();
    state.drain_stdio();
    let backtrace = err.downcast_ref::<WasmBacktrace>().map(|bt| format!("{bt}"));
    if let Some(why) = err.downcast_ref::<Interrupt>() {
        return failure_for_interrupt(agent_type, *why, backtrace);
    }
    if let Some(desired) = state.limiter.host_exhausted {
        return TaskFailure {
            error_type: "host_memory_exhausted".into(),
            message: format!(
                "plugin '{agent_type}' asked for {} MiB while the host's plugin memory budget was full for {:?}: \
                 the attempt is retried; raise plugin_memory_budget_mib or run fewer tasks at once",
                desired.div_ceil(1 << 20),
                super::memory::WAIT
            ),
            retryable: true,
            detail: Some(json!({ "requested_bytes": desired, "backtrace": backtrace })),
        };
    }
    if err.downcast_ref::<MemoryLimitExceeded>().is_some() || state.limiter.exceeded.is_some() {
        let (limit, desired) = state.limiter.exceeded.unwrap_or_default();
        return TaskFailure {
            error_type: "out_of_memory".into(),
            message: format!(
                "plugin '{agent_type}' exceeded its memory limit of {} MiB (it asked for {} MiB): \
                 raise the limit for this agent type or reduce the plugin's memory use",
                limit >> 20,
                desired.div_ceil(1 << 20)
            ),
            retryable: false,
            detail: Some(json!({ "limit_bytes": limit, "requested_bytes": desired,
                                  "backtrace": backtrace })),
        };
    }
    let trap = match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{err:#}"),
    };
    let exit =
        err.downcast_ref::<wasmtime_wasi::I32Exit>().map(|code| format!("the plugin exited with status {}", code.0));
    let why = exit
        .or_else(|| state.log.last_errors.last().cloned())
        .or_else(|| last_lines(&stderr, 5))
        .unwrap_or_else(|| trap.clone());
    TaskFailure {
        error_type: "trap".into(),
        message: format!("plugin '{agent_type}' trapped: {}", truncate(&why, 4096)),
        retryable: false,
        detail: Some(json!({
            "trap": trap,
            "backtrace": backtrace,
            "errors": state.log.last_errors,
            "stderr": truncate(&stderr, 16 << 10),
        })),
    }
}

fn failure_for_interrupt(agent_type: &str, why: Interrupt, backtrace: Option<String>) -> TaskFailure {
    match why {
        Interrupt::Timeout(t) => TaskFailure {
            error_type: "timeout".into(),
            message: format!("plugin '{agent_type}' did not finish within {} ms and was stopped", t.as_millis()),
            retryable: true,
            detail: Some(json!({ "timeout_ms": t.as_millis() as u64, "backtrace": backtrace })),
        },
        Interrupt::Cancelled => TaskFailure {
            error_type: "cancelled".into(),
            message: format!("call to plugin '{agent_type}' was cancelled"),
            retryable: false,
            detail: backtrace.map(|bt| json!({ "backtrace": bt })),
        },
    }
}

/// Checks an executor's output: within the size bound and valid JSON.
pub(crate) fn check_output(agent_type: &str, output: String, max_bytes: usize) -> Result<String, TaskFailure> {
    if output.len() > max_bytes {
        return Err(TaskFailure {
            error_type: "output_too_large".into(),
            message: format!(
                "plugin '{agent_type}' returned {} bytes of output, more than the limit of {} \
                 bytes: return less, or raise max_output_bytes",
                output.len(),
                max_bytes
            ),
            retryable: false,
            detail: Some(json!({ "size_bytes": output.len(), "limit_bytes": max_bytes })),
        });
    }
    if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(&output) {
        return Err(TaskFailure {
            error_type: "invalid_output".into(),
            message: format!(
                "plugin '{agent_type}' returned output that is not valid JSON ({err}): the \
                 executor must return JSON text"
            ),
            retryable: false,
            detail: Some(json!({ "output_prefix": truncate(&output, 512) })),
        });
    }
    let depth = crate::json::text_depth(&output);
    if depth > crate::json::MAX_DEPTH {
        return Err(TaskFailure {
            error_type: "invalid_output".into(),
            message: format!(
                "plugin '{agent_type}' returned output nested {depth} levels deep, more than the limit of {}: \
                 return a flatter document",
                crate::json::MAX_DEPTH
            ),
            retryable: false,
            detail: Some(json!({ "depth": depth, "limit": crate::json::MAX_DEPTH })),
        });
    }
    Ok(output)
}

/// The guest's own error, as a failure: its type, kind and (JSON, if valid) detail.
/// Message and detail longer than `max_bytes` are cut, and say so; the type is a short label.
pub(crate) fn guest_error(err: super::bindings::wit::TaskError, max_bytes: usize) -> TaskFailure {
    use super::bindings::wit::ErrorKind;
    let message = if err.message.len() > max_bytes {
        format!(
            "{} [truncated: {} bytes in all, max_error_bytes is {max_bytes}]",
            truncate(&err.message, max_bytes),
            err.message.len()
        )
    } else {
        err.message
    };
    let detail = err.detail.map(|d| {
        if d.len() > max_bytes {
            json!({ "truncated": true, "size_bytes": d.len(), "max_error_bytes": max_bytes })
        } else {
            serde_json::from_str::<Value>(&d).unwrap_or(Value::String(d))
        }
    });
    TaskFailure {
        error_type: truncate(&err.error_type, 128),
        message,
        retryable: err.kind == ErrorKind::Retryable,
        detail,
    }
}

/// Drains a finished call's log.
pub(crate) fn take_log(store: &mut Store<HostState>) -> Vec<LogLine> {
    let state = store.data_mut();
    state.drain_stdio();
    std::mem::take(&mut state.log).finish()
}

fn last_lines(text: &str, n: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return None;
    }
    Some(lines[lines.len().saturating_sub(n)..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_checked_for_size_and_json() {
        assert_eq!(check_output("t", "{\"a\":1}".into(), 100).unwrap(), "{\"a\":1}");
        assert_eq!(check_output("t", "x".repeat(200), 100).unwrap_err().error_type, "output_too_large");
        assert_eq!(check_output("t", "not json".into(), 100).unwrap_err().error_type, "invalid_output");
    }

    #[test]
    fn long_guest_errors_are_cut_and_say_so() {
        use crate::plugins::bindings::wit::{ErrorKind, TaskError};
        let f = guest_error(
            TaskError {
                kind: ErrorKind::Fatal,
                error_type: "t".repeat(500),
                message: "m".repeat(5000),
                detail: Some(format!("\"{}\"", "d".repeat(5000))),
            },
            1000,
        );
        assert!(f.message.starts_with(&"m".repeat(1000)), "{}", f.message);
        assert!(f.message.ends_with("[truncated: 5000 bytes in all, max_error_bytes is 1000]"), "{}", f.message);
        assert_eq!(f.detail, Some(json!({"truncated": true, "size_bytes": 5002, "max_error_bytes": 1000})));
        assert!(f.error_type.len() <= 128 + '…'.len_utf8());
    }

    #[test]
    fn guest_errors_keep_type_kind_and_detail() {
        use crate::plugins::bindings::wit::{ErrorKind, TaskError};
        let f = guest_error(
            TaskError {
                kind: ErrorKind::Retryable,
                error_type: "rate_limited".into(),
                message: "slow down".into(),
                detail: Some("{\"after\":3}".into()),
            },
            1000,
        );
        assert!(f.retryable);
        assert_eq!(f.detail, Some(json!({"after": 3})));
        let f = guest_error(
            TaskError {
                kind: ErrorKind::Fatal,
                error_type: "bad".into(),
                message: "no".into(),
                detail: Some("plain text".into()),
            },
            1000,
        );
        assert!(!f.retryable);
        assert_eq!(f.detail, Some(json!("plain text")));
    }
}
