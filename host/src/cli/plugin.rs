//! `hyphae plugin check|new`: inspect a component, scaffold a plugin crate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

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
    /// Create a plugin crate that `plugins/build.sh` builds into `plugins/dist/NAME.wasm`.
    New {
        /// Agent type of the plugin (letters, digits, `-`, `_`).
        name: String,
        /// Directory of the plugins workspace [default: `plugins` of the repository].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Runs `hyphae plugin ...`.
pub fn run(args: PluginArgs) -> ExitCode {
    match args.command {
        PluginCommand::Check { file, json } => check(&file, json),
        PluginCommand::New { name, dir } => {
            let dir = dir.unwrap_or_else(default_plugins_dir);
            match scaffold(&name, &dir) {
                Ok(lines) => {
                    for line in lines {
                        println!("{line}");
                    }
                    ExitCode::SUCCESS
                }
                Err(msg) => {
                    eprintln!("error: {msg}");
                    ExitCode::FAILURE
                }
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
    let report = match runtime.block_on(check_file(file)) {
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

/// `plugins/` of the repository: found from the current directory upwards, else `./plugins`.
fn default_plugins_dir() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors()
        .map(|d| d.join("plugins"))
        .find(|p| p.join("Cargo.toml").is_file())
        .unwrap_or_else(|| cwd.join("plugins"))
}

/// Creates `DIR/NAME/{Cargo.toml,src/lib.rs}` and adds NAME to the workspace members of
/// `DIR/Cargo.toml` when it has a one-line `members = [...]` list. Returns what to tell the user.
pub fn scaffold(name: &str, dir: &Path) -> Result<Vec<String>, String> {
    if !crate::plugins::valid_agent_type(name) {
        return Err(format!("`{name}` is not a valid plugin name: use letters, digits, `-` and `_`"));
    }
    let crate_dir = dir.join(name);
    if crate_dir.exists() {
        return Err(format!("`{}` already exists: pick another name or remove it", crate_dir.display()));
    }
    let write = |path: PathBuf, text: String| {
        std::fs::write(&path, text).map_err(|e| format!("cannot write `{}`: {e}", path.display()))
    };
    std::fs::create_dir_all(crate_dir.join("src"))
        .map_err(|e| format!("cannot create `{}`: {e}", crate_dir.display()))?;
    write(crate_dir.join("Cargo.toml"), cargo_toml(name))?;
    write(crate_dir.join("src/lib.rs"), lib_rs(name))?;
    let mut lines = vec![format!("created {}", crate_dir.display())];
    let manifest = dir.join("Cargo.toml");
    match add_member(&manifest, name) {
        Ok(true) => lines.push(format!("added \"{name}\" to the workspace members in {}", manifest.display())),
        Ok(false) => {
            lines.push(format!("add \"{name}\" to `members` in {} so that build.sh builds it", manifest.display()))
        }
        Err(e) => lines.push(e),
    }
    lines.push(format!(
        "build it with {}/build.sh; the component is {}/dist/{name}.wasm",
        dir.display(),
        dir.display()
    ));
    Ok(lines)
}

/// Appends `name` to a one-line `members = [...]` list; `Ok(false)` when there is none.
fn add_member(manifest: &Path, name: &str) -> Result<bool, String> {
    let Ok(text) = std::fs::read_to_string(manifest) else {
        return Ok(false);
    };
    let mut done = false;
    let edited: Vec<String> = text
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if done || !trimmed.starts_with("members") || !trimmed.trim_end().ends_with(']') {
                return line.to_string();
            }
            let Some(open) = line.find('[') else {
                return line.to_string();
            };
            let close = line.rfind(']').unwrap_or(line.len());
            let inner = line[open + 1..close].trim().trim_end_matches(',');
            done = true;
            let sep = if inner.is_empty() { "" } else { ", " };
            format!("{}[{inner}{sep}\"{name}\"]", &line[..open])
        })
        .collect();
    if !done {
        return Ok(false);
    }
    let mut out = edited.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    std::fs::write(manifest, out).map(|_| true).map_err(|e| format!("cannot update `{}`: {e}", manifest.display()))
}

fn cargo_toml(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
description = "Hyphae plugin for agent type `{name}`"
version.workspace = true
edition.workspace = true
license.workspace = true
publish.workspace = true

[lib]
crate-type = ["cdylib"]

[dependencies]
hyphae-plugin-sdk.workspace = true
serde.workspace = true
"#
    )
}

fn lib_rs(name: &str) -> String {
    let ty: String = name
        .split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect();
    let ty = if ty.starts_with(|c: char| c.is_ascii_alphabetic()) { ty } else { format!("Plugin{ty}") };
    format!(
        r#"//! `{name}`: executor of agent type `{name}`.
//!
//! Input `{{"message": "..."}}`; output `{{"message": "...", "attempt": n}}`.

use hyphae_plugin_sdk::{{export_executor, json, log, Executor, TaskContext, TaskError, Value}};
use serde::Deserialize;

#[derive(Deserialize)]
struct Input {{
    #[serde(default)]
    message: String,
}}

struct {ty};

impl Executor for {ty} {{
    fn execute(ctx: TaskContext) -> Result<Value, TaskError> {{
        let input: Input = ctx.input()?;
        log::info!("{name}: {{}} bytes of input", input.message.len());
        Ok(json!({{ "message": input.message, "attempt": ctx.attempt }}))
    }}
}}

export_executor!({ty});
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaffold_creates_a_member_crate() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\nmembers = [\"sdk\", \"echo\"]\n").unwrap();
        let lines = scaffold("my-agent", dir.path()).unwrap();
        assert!(lines[1].starts_with("added"), "{lines:?}");
        let manifest = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("members = [\"sdk\", \"echo\", \"my-agent\"]"));
        let lib = std::fs::read_to_string(dir.path().join("my-agent/src/lib.rs")).unwrap();
        assert!(lib.contains("export_executor!(MyAgent);"));
        assert!(scaffold("my-agent", dir.path()).is_err());
        assert!(scaffold("../x", dir.path()).is_err());
    }
}
