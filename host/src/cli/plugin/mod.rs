//! `hyphae plugin check|call|new|build`: inspect a component, run one call of it, scaffold and
//! build plugin projects in Rust, Python and JavaScript.

mod build;
mod call;
mod new;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::cli::exit::{self, Failure};
use crate::plugins::{check_file, PluginReport};

/// Work with plugins (WebAssembly components).
#[derive(Debug, Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    pub command: PluginCommand,
}

/// Subcommands of `hyphae plugin`.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Load a .wasm file the way the host would and print what it is (non-zero exit on a problem).
    Check {
        /// The component file.
        file: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run one `execute` (or `--validate`) of a component in the host's sandbox; print the output or
    /// error, logs, duration and peak memory. Exit code 0: output, 1: failed, 2: retryable error.
    Call(call::CallArgs),
    /// Create a standalone plugin project (Rust, Python or JavaScript) that builds anywhere.
    New {
        /// Agent type of the plugin (letters, digits, `-`, `_`).
        name: String,
        /// Language of the project.
        #[arg(long, value_enum, default_value_t = Lang::Rust)]
        lang: Lang,
        /// Directory of the new project (missing or empty) [default: ./NAME].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The SDK the project depends on by path [default: this host's repository's SDK].
        #[arg(long, value_name = "DIR")]
        sdk: Option<PathBuf>,
    },
    /// Build a plugin project into a component and check it as the host would load it.
    Build {
        /// The project directory [default: .].
        dir: Option<PathBuf>,
        /// Language [default: from Cargo.toml, pyproject.toml or package.json].
        #[arg(long, value_enum)]
        lang: Option<Lang>,
        /// Where to write the component [default: DIR/dist/NAME.wasm].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// Language of a plugin project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        })
    }
}

/// Runs `hyphae plugin ...`.
pub fn run(args: PluginArgs) -> ExitCode {
    match args.command {
        PluginCommand::Check { file, json } => check(&file, json),
        PluginCommand::Call(args) => match call::run(args) {
            Ok(code) => ExitCode::from(code),
            Err(failure) => failure.report(),
        },
        PluginCommand::New { name, lang, dir, sdk } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let sdk = sdk.unwrap_or_else(|| new::sdk_path(lang));
            match new::create(&name, lang, &dir, &sdk) {
                Ok(lines) => {
                    lines.iter().for_each(|line| println!("{line}"));
                    ExitCode::SUCCESS
                }
                Err(msg) => Failure::new(exit::CANT_CREATE, msg).report(),
            }
        }
        PluginCommand::Build { dir, lang, out } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("."));
            match build::build(&dir, lang, out) {
                Ok(component) => check(&component, false),
                Err(failure) => failure.report(),
            }
        }
    }
}

fn check(file: &Path, json: bool) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(check_file(file, Some(crate::plugins::default_cache_dir()))) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("error: cannot print the report: {e}"),
        }
    } else {
        print!("{}", render(&report));
    }
    match &report.problem {
        Some(problem) => {
            if json {
                eprintln!("error: {problem}");
            }
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}

/// The human-readable report.
pub fn render(r: &PluginReport) -> String {
    let list = |items: &[String]| {
        if items.is_empty() {
            "  (none)\n".to_string()
        } else {
            items.iter().map(|i| format!("  {i}\n")).collect()
        }
    };
    let roles: Vec<String> = r.roles.iter().map(|r| format!("{r:?}").to_lowercase()).collect();
    let mut out = format!(
        "file:       {}\nagent type: {}\ndigest:     {}\nworld:      {}\nroles:      {}\n",
        r.path.display(),
        r.agent_type,
        r.digest,
        r.world,
        if roles.is_empty() { "(none)".to_string() } else { roles.join(", ") },
    );
    if let Some(info) = &r.info {
        out += &format!("version:    {}\ndescribe:   {}\n", info.version, info.description);
    }
    out += &format!("imports:\n{}exports:\n{}", list(&r.imports), list(&r.exports));
    out += &policy_text(r.policy.as_ref());
    match &r.problem {
        Some(p) => out += &format!("problem:    {p}\n"),
        None => out += "status:     ok, the host can load it\n",
    }
    out
}

/// What the manifest beside the file grants, next to what the component imports.
fn policy_text(policy: Option<&crate::plugins::Policy>) -> String {
    let Some(p) = policy else {
        return "policy:     no manifest: no network, no secrets, no config\n".to_string();
    };
    let or_none = |items: Vec<String>| if items.is_empty() { "(none)".to_string() } else { items.join(", ") };
    let hosts = or_none(p.allowed_outbound_hosts.iter().map(|h| h.to_string()).collect());
    let config = or_none(p.config.keys().cloned().collect());
    let limit = |v: Option<String>| v.unwrap_or_else(|| "host default".into());
    format!(
        "policy:\n  allowed_outbound_hosts: {hosts}\n  secrets: {}\n  config: {config}\n  \
         memory_limit_mib: {}\n  timeout_s: {}\n  max_concurrency: {}\n",
        or_none(p.secrets.clone()),
        limit(p.memory_limit_mib.map(|m| m.to_string())),
        limit(p.timeout_s.map(|t| t.to_string())),
        limit(p.max_concurrency.map(|n| n.to_string())),
    )
}
