//! The `hyphae` command line.

pub mod plugin;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Hyphae: multi-agent workflows on sandboxed WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "hyphae", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands of `hyphae`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with plugins: check a component, scaffold a plugin crate.
    Plugin(plugin::PluginArgs),
}

/// Entry point of the binary: parse arguments, run, map the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Plugin(args) => plugin::run(args),
    }
}
