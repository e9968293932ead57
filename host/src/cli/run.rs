//! `hyphae run FILE`: run one workflow to completion on an embedded store, with live progress and
//! a summary; the exit code tells the outcome.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tokio::sync::broadcast;

use super::exit::{self, CommandResult, Failure};
use super::host;
use super::progress::Progress;
use super::table::{self, Table};
use crate::config::Config;
use crate::engine::{Engine, EngineError};
use crate::lifecycle::Control;
use crate::store::WorkflowState;
use crate::workflow::{WorkflowSpec, WorkflowStatus};

/// Options of `hyphae run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Workflow file (JSON, as submitted to `POST /v1/workflows`).
    pub file: PathBuf,
    /// SQLite file to keep the run in (default: a temporary file, removed afterwards).
    #[arg(long, value_name = "FILE")]
    pub db: Option<String>,
    /// Directory of `*.wasm` plugins (default `plugins/dist`).
    #[arg(long, env = "HYPHAE_PLUGINS_DIR", value_name = "DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// TOML config file (only plugin and engine settings are used).
    #[arg(long, env = "HYPHAE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the final state of the workflow as JSON instead of the summary table.
    #[arg(long)]
    pub json: bool,
}

/// Read and parse a workflow file; errors name the file and, for bad JSON, the line and column.
pub fn read_workflow(path: &Path) -> Result<WorkflowSpec, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::new(exit::NO_INPUT, format!("cannot read workflow file `{}`: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Failure::data(format!("`{}` is not a valid workflow: {e}", path.display())))
}

pub(super) async fn command(args: RunArgs) -> CommandResult {
    let mut spec = read_workflow(&args.file)?;
    spec.start = Some(true);
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(dir) = &args.plugins_dir {
        config.plugins_dir = dir.clone();
    }
    config.watch_plugins = false;
    let temp = args.db.is_none().then(|| std::env::temp_dir().join(format!("hyphae-run-{}.db", uuid::Uuid::new_v4())));
    config.db = args.db.clone().or_else(|| temp.as_ref().map(|t| t.display().to_string())).unwrap_or_default();
    config.check()?;
    quiet_tracing();
    let host = host::start(&config, config.engine_config()).await?;
    let outcome = run_workflow(&host.engine, spec, &args).await;
    host.engine.shutdown().await;
    host.engine.store().close().await;
    if let Some(t) = temp {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", t.display()));
        }
    }
    outcome
}

async fn run_workflow(engine: &Engine, spec: WorkflowSpec, args: &RunArgs) -> CommandResult {
    let mut notices = engine.subscribe();
    let submitted = engine.submit(spec).await.map_err(|e| match e {
        EngineError::Invalid(v) => Failure::data(format!("`{}` was refused: {v}", args.file.display())),
        EngineError::Store(s) => Failure::unavailable(format!("cannot store the workflow: {s}")),
    })?;
    let id = submitted.workflow_id;
    let store = engine.store();
    let read = |id: &str| {
        let id = id.to_string();
        async move { store.workflow(&id).await.map_err(|e| Failure::unavailable(format!("cannot read the workflow: {e}"))) }
    };
    let mut state = read(&id).await?;
    let mut progress = (!args.json).then(|| Progress::new(&state));
    let mut cancelled = false;
    let mut last_read = tokio::time::Instant::now();
    loop {
        if let Some(p) = progress.as_mut() {
            p.update(&state);
        }
        if state.status.is_terminal() || state.status == WorkflowStatus::Paused {
            break;
        }
        tokio::select! {
            status_changed = wait_for(&mut notices, &id) => {
                // Progress is redrawn at most every 100 ms: reading the whole workflow on every
                // task start and end would make big workflows quadratic.
                if !status_changed {
                    tokio::time::sleep_until(last_read + Duration::from_millis(100)).await;
                }
            }
            _ = tokio::signal::ctrl_c(), if !cancelled => {
                cancelled = true;
                eprintln!("interrupted: cancelling workflow {id}");
                engine.control(&id, Control::Cancel).await.map_err(|e| Failure::software(format!("cannot cancel: {e}")))?;
            }
        }
        last_read = tokio::time::Instant::now();
        state = read(&id).await?;
    }
    if let Some(p) = &progress {
        p.finish();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&state).unwrap_or_default());
    } else {
        print!("{}", summary(&state));
    }
    Ok(match state.status {
        WorkflowStatus::Completed => ExitCode::SUCCESS,
        WorkflowStatus::Failed => ExitCode::from(exit::WORKFLOW_FAILED),
        _ => ExitCode::from(exit::WORKFLOW_OTHER),
    })
}

/// Wait for a change of workflow `id` (at most 250 ms); true when its status may have changed.
async fn wait_for(notices: &mut broadcast::Receiver<crate::engine::Notice>, id: &str) -> bool {
    tokio::time::timeout(Duration::from_millis(250), async {
        loop {
            match notices.recv().await {
                Ok(n) if n.workflow_id == id => return n.status_changed,
                Ok(_) => {}
                Err(_) => return true,
            }
        }
    })
    .await
    .unwrap_or(false)
}

/// The summary table (task, agent type, status, attempts, duration) and what failed.
pub fn summary(state: &WorkflowState) -> String {
    let mut t = Table::new(&["TASK", "AGENT TYPE", "STATUS", "ATTEMPTS", "DURATION"]);
    let mut failures = Vec::new();
    for task in &state.tasks {
        let took = table::millis_between(task.started_at.as_deref(), task.finished_at.as_deref());
        t.row(vec![
            task.task_id.clone(),
            task.agent_type.clone(),
            task.status.to_string(),
            task.attempt.to_string(),
            took.map(table::duration).unwrap_or_else(|| "-".into()),
        ]);
        if let Some(err) = &task.error {
            let msg = err.get("message").and_then(|m| m.as_str()).map(String::from).unwrap_or_else(|| err.to_string());
            let kind = err.get("error_type").and_then(|m| m.as_str()).unwrap_or("error");
            failures.push(format!("  {}: {kind}: {msg}", task.task_id));
        }
    }
    let took =
        table::millis_between(state.started_at.as_deref().or(Some(&state.created_at)), state.finished_at.as_deref());
    let mut out = format!(
        "\nworkflow {}{} {}{}\n\n",
        state.workflow_id,
        state.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default(),
        state.status,
        took.map(|ms| format!(" in {}", table::duration(ms))).unwrap_or_default()
    );
    out.push_str(&t.render());
    if !failures.is_empty() {
        out.push_str("\nerrors:\n");
        out.push_str(&failures.join("\n"));
        out.push('\n');
    }
    out
}

/// Log only warnings (unless `RUST_LOG` says otherwise): the progress display is the output.
fn quiet_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
