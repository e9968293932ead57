//! The per-call store data: WASI context granting nothing, memory limiter, and the call's log.

use crate::clock::now_us;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiterAsync;

use super::memory::{Held, MemoryBudget};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::LogLevel;
use super::capture::CapturePipe;
use super::manifest::Policy;
use super::outbound::Outbound;
use super::LogLine;

/// Most log lines kept per call; later lines are counted, not stored.
pub(crate) const MAX_LOG_LINES: usize = 1_000;
/// Most log bytes kept per call.
pub(crate) const MAX_LOG_BYTES: usize = 1 << 20;
/// Most bytes of stdout (and of stderr) captured per call.
pub(crate) const MAX_STDIO_BYTES: usize = 256 << 10;

/// Who is calling: the fields every log line of the call is tagged with.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallInfo {
    pub workflow_id: String,
    pub task_id: String,
    pub agent_type: String,
}

/// Data of one call's [`wasmtime::Store`].
pub(crate) struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    /// Outbound HTTP under the agent type's policy; also the source of its config values.
    pub outbound: Outbound,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub log: LogSink,
    pub info: CallInfo,
    pub stdout: CapturePipe,
    pub stderr: CapturePipe,
}

impl HostState {
    /// Fresh state: no preopens, no env, no args, no sockets, stdio captured in memory; HTTP and
    /// config as `outbound`'s policy grants.
    pub fn new(info: CallInfo, memory_limit: usize, host_memory: Option<MemoryBudget>, outbound: Outbound) -> Self {
        let stdout = CapturePipe::new(MAX_STDIO_BYTES);
        let stderr = CapturePipe::new(MAX_STDIO_BYTES);
        let wasi = WasiCtxBuilder::new().stdout(stdout.clone()).stderr(stderr.clone()).build();
        HostState {
            wasi,
            http: WasiHttpCtx::new(),
            outbound,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_limit, host_memory),
            log: LogSink::default(),
            info,
            stdout,
            stderr,
        }
    }

    pub fn log_from_guest(&mut self, level: LogLevel, message: String) {
        let info = &self.info;
        macro_rules! emit {
            ($lvl:expr) => {
                tracing::event!(
                    target: "hyphae::plugin",
                    $lvl,
                    workflow_id = %info.workflow_id,
                    task_id = %info.task_id,
                    agent_type = %info.agent_type,
                    "{message}"
                )
            };
        }
        let name = match level {
            LogLevel::Trace => {
                emit!(tracing::Level::TRACE);
                "trace"
            }
            LogLevel::Debug => {
                emit!(tracing::Level::DEBUG);
                "debug"
            }
            LogLevel::Info => {
                emit!(tracing::Level::INFO);
                "info"
            }
            LogLevel::Warn => {
                emit!(tracing::Level::WARN);
                "warn"
            }
            LogLevel::Error => {
                emit!(tracing::Level::ERROR);
                "error"
            }
        };
        self.log.push(name, message);
    }

    pub fn progress_from_guest(&mut self, percent: u8, note: String) {
        let percent = percent.min(100);
        tracing::info!(
            target: "hyphae::plugin",
            workflow_id = %self.info.workflow_id,
            task_id = %self.info.task_id,
            agent_type = %self.info.agent_type,
            percent,
            "progress: {note}"
        );
        self.log.push("progress", format!("{percent}% {note}"));
    }

    /// Moves captured stdout/stderr into the log, one line per output line.
    pub fn drain_stdio(&mut self) {
        for (level, pipe) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let text = pipe.take_text();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                self.log.push(level, line.to_string());
            }
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outbound }
    }
}

impl HostState {
    /// `wasi:config/store`: a `[config]` value of the manifest, or `secret.NAME`'s placeholder for
    /// a secret the manifest lists.
    pub fn config_value(&self, key: &str) -> Option<String> {
        let policy: &Arc<Policy> = &self.outbound.policy;
        if let Some(name) = key.strip_prefix("secret.") {
            if !policy.secrets.iter().any(|s| s == name) {
                return None;
            }
            return self.outbound.secrets.get(name).map(|s| s.placeholder.clone());
        }
        policy.config.get(key).cloned()
    }

    /// Every pair [`HostState::config_value`] answers.
    pub fn config_pairs(&self) -> Vec<(String, String)> {
        let policy = &self.outbound.policy;
        let secrets = policy.secrets.iter().filter_map(|name| {
            self.outbound.secrets.get(name).map(|s| (format!("secret.{name}"), s.placeholder.clone()))
        });
        policy.config.iter().map(|(k, v)| (k.clone(), v.clone())).chain(secrets).collect()
    }
}

/// Raised from `memory.grow` when a call would exceed its memory limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (the plugin asked for {desired} bytes)")]
pub(crate) struct MemoryLimitExceeded {
    pub limit: usize,
    pub desired: usize,
}

/// Raised from `memory.grow` when the host's plugin memory budget had no room in time.
#[derive(Debug, thiserror::Error)]
#[error("the host's plugin memory budget had no room for {desired} bytes within {:?}", super::memory::WAIT)]
pub(crate) struct HostMemoryExhausted {
    pub desired: usize,
}

/// Caps the linear memory of a call (a grow beyond the cap traps instead of returning -1) and
/// takes its growth from the host's budget.
pub(crate) struct MemoryLimiter {
    limit: usize,
    pub exceeded: Option<(usize, usize)>,
    host: Option<Held>,
    /// Bytes asked for when the host's budget had no room.
    pub host_exhausted: Option<usize>,
    /// Linear memory of all the call's memories now, and the most it reached.
    total: usize,
    pub peak: usize,
}

impl MemoryLimiter {
    fn new(limit: usize, host: Option<MemoryBudget>) -> Self {
        MemoryLimiter { limit, exceeded: None, host: host.map(Held::new), host_exhausted: None, total: 0, peak: 0 }
    }
}

#[async_trait::async_trait]
impl ResourceLimiterAsync for MemoryLimiter {
    async fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = Some((self.limit, desired));
            return Err(wasmtime::Error::new(MemoryLimitExceeded { limit: self.limit, desired }));
        }
        if let Some(held) = &mut self.host {
            if !held.grow_to(desired).await {
                self.host_exhausted = Some(desired);
                return Err(wasmtime::Error::new(HostMemoryExhausted { desired }));
            }
        }
        self.total += desired.saturating_sub(current);
        self.peak = self.peak.max(self.total);
        Ok(true)
    }

    async fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references: a million entries is far beyond any real plugin.
        Ok(desired <= 1_000_000)
    }
}

/// The bounded log of one call.
#[derive(Debug, Default)]
pub(crate) struct LogSink {
    pub lines: Vec<LogLine>,
    bytes: usize,
    dropped: usize,
    /// The last error-level messages, kept even when the log is full (they explain traps).
    pub last_errors: Vec<String>,
}

impl LogSink {
    pub fn push(&mut self, level: &str, message: String) {
        if level == "error" {
            if self.last_errors.len() == 3 {
                self.last_errors.remove(0);
            }
            self.last_errors.push(truncate(&message, 4096));
        }
        if self.lines.len() >= MAX_LOG_LINES || self.bytes + message.len() > MAX_LOG_BYTES {
            self.dropped += 1;
            return;
        }
        self.bytes += message.len();
        self.lines.push(LogLine { at_us: now_us(), level: level.to_string(), message });
    }

    /// The log lines, with a note of how many were dropped past the bounds.
    pub fn finish(mut self) -> Vec<LogLine> {
        if self.dropped > 0 {
            self.lines.push(LogLine {
                at_us: now_us(),
                level: "warn".to_string(),
                message: format!(
                    "{} more log lines dropped: a call keeps at most {MAX_LOG_LINES} lines \
                     and {MAX_LOG_BYTES} bytes",
                    self.dropped
                ),
            });
        }
        self.lines
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_is_bounded_and_says_so() {
        let mut sink = LogSink::default();
        for i in 0..MAX_LOG_LINES + 5 {
            sink.push("info", format!("line {i}"));
        }
        sink.push("error", "boom".into());
        assert_eq!(sink.last_errors, vec!["boom".to_string()]);
        let lines = sink.finish();
        assert_eq!(lines.len(), MAX_LOG_LINES + 1);
        assert!(lines.last().unwrap().message.starts_with("6 more log lines dropped"));
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("abc", 5), "abc");
    }
}
