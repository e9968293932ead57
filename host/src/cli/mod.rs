//! The `hyphae` command line.

mod bench;
mod client;
mod exit;
pub mod host;
pub mod plugin;
mod progress;
mod run;
mod serve;
mod table;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use exit::Failure;
pub use serve::serve;

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
    /// Run the host: HTTP API, engine and plugins.
    Serve(serve::ServeArgs),
    /// Run one workflow file to completion on an embedded store, with live progress.
    Run(run::RunArgs),
    /// Submit a workflow file to a running host.
    Submit(client::SubmitArgs),
    /// Show a workflow of a running host.
    Status(client::StatusArgs),
    /// Show (or follow) the events of a workflow of a running host.
    Events(client::EventsArgs),
    /// Cancel a workflow of a running host.
    Cancel(client::CancelArgs),
    /// Print a running host's health report: findings by severity, workers, rates, stuck work.
    Report(client::ReportArgs),
    /// Work with plugins: check a component, scaffold a plugin crate.
    Plugin(plugin::PluginArgs),
    /// Make, list and revoke API tokens (on the hosts' database).
    Token(token::TokenArgs),
    /// Measure the standard workloads end to end over HTTP (own host, or --url) and print a table.
    Bench(bench::BenchArgs),
}

/// Entry point of the binary: parse arguments, run, map the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            return if usage { ExitCode::from(exit::USAGE) } else { ExitCode::SUCCESS };
        }
    };
    match cli.command {
        // Runs its own runtime.
        Command::Plugin(args) => plugin::run(args),
        command => run_async(command),
    }
}

/// Run a command that needs the async runtime: a host (`serve`, `run`) gets a worker per core;
/// a client gets one thread, so it takes no CPU from a host on the same machine (a multi-thread
/// client hands each chunk of an event stream from thread to thread: `hyphae bench` took a
/// quarter of a 2-core machine doing so).
fn run_async(command: Command) -> ExitCode {
    let mut builder = match command {
        Command::Serve(_) | Command::Run(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return Failure::software(format!("cannot start the async runtime: {e}")).report(),
    };
    let outcome = runtime.block_on(async {
        match command {
            Command::Serve(args) => serve::command(args).await,
            Command::Run(args) => run::command(args).await,
            Command::Submit(args) => client::submit(args).await,
            Command::Status(args) => client::status(args).await,
            Command::Events(args) => client::events(args).await,
            Command::Cancel(args) => client::cancel(args).await,
            Command::Report(args) => client::report(args).await,
            Command::Bench(args) => bench::command(args).await,
            Command::Token(args) => token::command(args).await,
            Command::Plugin(args) => Ok(plugin::run(args)),
        }
    });
    match outcome {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}
