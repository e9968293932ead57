//! Exit codes and command failures.
//!
//! 0: success (for `run`: the workflow completed), 1: the workflow failed, 2: it was cancelled or
//! ended otherwise; 64 and above follow `sysexits.h`; 130: interrupted (Ctrl-C).

use std::process::ExitCode;

/// The workflow failed.
pub const WORKFLOW_FAILED: u8 = 1;
/// The workflow was cancelled or ended otherwise (e.g. paused).
pub const WORKFLOW_OTHER: u8 = 2;
/// Wrong command-line usage.
pub const USAGE: u8 = 64;
/// The input (workflow file, request) is invalid.
pub const DATA: u8 = 65;
/// An input file cannot be read.
pub const NO_INPUT: u8 = 66;
/// The host (or database) cannot be reached.
pub const UNAVAILABLE: u8 = 69;
/// The host refused the credentials (401, 403).
pub const NO_PERMISSION: u8 = 77;
/// An internal error.
pub const SOFTWARE: u8 = 70;
/// An output file or directory cannot be created.
pub const CANT_CREATE: u8 = 73;
/// The configuration is invalid.
pub const CONFIG: u8 = 78;
/// Interrupted by Ctrl-C (128 + SIGINT).
pub const INTERRUPTED: u8 = 130;

/// Why a command failed: the message to print and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// A failure with exit code `code`.
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into() }
    }

    /// Invalid input data (65).
    pub fn data(message: impl Into<String>) -> Failure {
        Failure::new(DATA, message)
    }

    /// Something unreachable (69).
    pub fn unavailable(message: impl Into<String>) -> Failure {
        Failure::new(UNAVAILABLE, message)
    }

    /// Internal error (70).
    pub fn software(message: impl Into<String>) -> Failure {
        Failure::new(SOFTWARE, message)
    }

    /// Invalid configuration (78).
    pub fn config(message: impl Into<String>) -> Failure {
        Failure::new(CONFIG, message)
    }

    /// Print the message on stderr and return the exit code.
    pub fn report(self) -> ExitCode {
        eprintln!("error: {}", self.message);
        ExitCode::from(self.code)
    }
}

impl From<crate::config::ConfigError> for Failure {
    fn from(e: crate::config::ConfigError) -> Failure {
        Failure::config(e.to_string())
    }
}

/// Result of a command.
pub type CommandResult = Result<ExitCode, Failure>;
