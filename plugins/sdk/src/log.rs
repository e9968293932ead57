//! Logging to the host: lines appear in the host's tracing output and in the task's log.
//!
//! ```no_run
//! use hyphae_plugin_sdk::log;
//! log::info!("processing {} items", 3);
//! log::write(log::Level::Warn, "plain text works too");
//! ```

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Writes one log line at `level`. Outside wasm (native unit tests) it goes to stderr.
pub fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use crate::bindings::hyphae::plugin::host::{log, LogLevel};
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log {
    ($level:ident, $($arg:tt)+) => {
        $crate::log::write($crate::log::Level::$level, &::std::format!($($arg)+))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_trace { ($($arg:tt)+) => { $crate::__log!(Trace, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __log_debug { ($($arg:tt)+) => { $crate::__log!(Debug, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __log_info { ($($arg:tt)+) => { $crate::__log!(Info, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __log_warn { ($($arg:tt)+) => { $crate::__log!(Warn, $($arg)+) }; }
#[doc(hidden)]
#[macro_export]
macro_rules! __log_error { ($($arg:tt)+) => { $crate::__log!(Error, $($arg)+) }; }

/// `log::debug!("fmt", args..)`: a line at debug level.
pub use crate::__log_debug as debug;
/// `log::error!("fmt", args..)`: a line at error level.
pub use crate::__log_error as error;
/// `log::info!("fmt", args..)`: a line at info level.
pub use crate::__log_info as info;
/// `log::trace!("fmt", args..)`: a line at trace level.
pub use crate::__log_trace as trace;
/// `log::warn!("fmt", args..)`: a line at warn level.
pub use crate::__log_warn as warn;
