//! `hyphae plugin call`: one `execute` (or `validate`) of a component in the host's own sandbox,
//! with the output or error, the logs, the duration and the peak memory printed.
//!
//! Exit code: 0 the call produced an output (or accepted the handoff), 1 it failed for good (or
//! rejected the handoff), 2 it failed with a retryable error; 65 bad input or a component the host
//! would not load, 66 an unreadable file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};

use crate::cli::exit::{Failure, DATA, NO_INPUT};
use crate::handoff;
use crate::plugins::{
    CallOptions, DependencyStatus, Execution, PluginState, PreviousResult, Runtime, RuntimeConfig, SecretSource,
    Secrets, TaskContext, TaskFailure, Validation,
};
use crate::store::TaskResultRow;
use crate::workflow::TaskStatus;

/// The call produced an output, or the validator accepted the handoff.
pub const OK: u8 = 0;
/// The call failed for good, or the validator rejected the handoff.
pub const FAILED: u8 = 1;
/// The call failed with an error the host would retry.
pub const RETRYABLE: u8 = 2;

/// Options of `hyphae plugin call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The component file; its agent type is the file name (`NAME.wasm`), its manifest `NAME.toml`
    /// beside it, when present.
    pub file: PathBuf,
    /// Task input: JSON text, or `@FILE` to read it from a file.
    #[arg(long, default_value = "{}", value_name = "JSON")]
    pub input: String,
    /// Results of the task's dependencies: a JSON file holding an array of
    /// `{task_id, agent_type, agent_id, status, output, error}` (all but `task_id` optional).
    #[arg(long, value_name = "FILE")]
    pub previous: Option<PathBuf>,
    /// A value the plugin reads through `wasi:config/store`, over the manifest's `[config]`; repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// An origin the plugin may send HTTP requests to, added to the manifest's
    /// `allowed_outbound_hosts`; repeatable.
    #[arg(long = "allow-host", value_name = "URL")]
    pub allow_hosts: Vec<String>,
    /// Grant secret NAME, its value read from environment variable VAR, sent only to the
    /// `--allow-host` origins; repeatable.
    #[arg(long = "secret", value_name = "NAME=VAR")]
    pub secrets: Vec<String>,
    /// Call `validate` with this handoff message (a JSON file) instead of `execute`.
    #[arg(long, value_name = "HANDOFF.json")]
    pub validate: Option<PathBuf>,
    /// Linear-memory limit of the call in MiB [default: the manifest's, else the host's 64].
    #[arg(long, value_name = "MIB")]
    pub memory_limit_mib: Option<u64>,
    /// Time limit of the call in seconds [default: the manifest's, else 60].
    #[arg(long, value_name = "SECONDS")]
    pub timeout_s: Option<f64>,
    /// Print one JSON object (outcome, output or error, log, duration_ms, peak_memory_bytes).
    #[arg(long)]
    pub json: bool,
}

/// Runs the call and prints what happened; the exit code tells the outcome.
pub fn run(args: CallArgs) -> Result<u8, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::software(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(call(args))
}

async fn call(args: CallArgs) -> Result<u8, Failure> {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| Failure::new(NO_INPUT, format!("cannot read `{}`: {e}", args.file.display())))?;
    let name = file_name(&args.file)?;
    let agent_type = name.trim_end_matches(".wasm").trim_end_matches(".validator").to_string();
    let dir = tempfile::tempdir().map_err(|e| Failure::software(format!("cannot make a temporary directory: {e}")))?;
    let manifest = manifest(&args, &agent_type)?;
    std::fs::write(dir.path().join(&name), &bytes)
        .and_then(|()| std::fs::write(dir.path().join(format!("{agent_type}.toml")), manifest))
        .map_err(|e| Failure::software(format!("cannot write to a temporary directory: {e}")))?;
    let config = RuntimeConfig {
        plugins_dir: Some(dir.path().to_path_buf()),
        watch: false,
        pooling: false,
        max_instances: 1,
        secrets: secrets(&args)?,
        ..RuntimeConfig::default()
    };
    let started = Instant::now();
    let runtime = Runtime::start(config).await.map_err(|e| Failure::software(e.to_string()))?;
    let served = loaded_agent_type(&runtime)?;
    let from_cache = runtime.registry().list().iter().any(|s| s.from_cache);
    let load = format!(
        "loaded in {} ({})",
        ms(started.elapsed()),
        if from_cache { "compiled code from the cache" } else { "compiled now" }
    );
    let opts = CallOptions { timeout: args.timeout_s.map(Duration::from_secs_f64), ..CallOptions::default() };
    match &args.validate {
        Some(handoff) => validate(&runtime, &served, handoff, opts, &load, args.json).await,
        None => {
            let ctx = task_context(&args, &served)?;
            let execution = runtime.execute(ctx, opts).await;
            Ok(report(&execution, &load, args.json))
        }
    }
}

fn file_name(path: &Path) -> Result<String, Failure> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    if !name.ends_with(".wasm") {
        return Err(Failure::data(format!("`{}` is not a `.wasm` file", path.display())));
    }
    Ok(name)
}

/// The manifest beside the file, with the command line's grants and limits on top.
fn manifest(args: &CallArgs, agent_type: &str) -> Result<String, Failure> {
    let beside = args.file.with_file_name(format!("{agent_type}.toml"));
    let mut table: toml::Table = match std::fs::read_to_string(&beside) {
        Ok(text) => text.parse().map_err(|e| Failure::data(format!("`{}`: {e}", beside.display())))?,
        Err(_) => toml::Table::new(),
    };
    let mut list = |key: &str, items: Vec<String>| {
        let entry = table.entry(key).or_insert_with(|| toml::Value::Array(Vec::new()));
        if let toml::Value::Array(values) = entry {
            values.extend(items.into_iter().map(toml::Value::String));
        }
    };
    list("allowed_outbound_hosts", args.allow_hosts.clone());
    list("secrets", args.secrets.iter().map(|s| pair(s, "--secret").map(|(n, _)| n)).collect::<Result<_, _>>()?);
    if let Some(mib) = args.memory_limit_mib {
        table.insert("memory_limit_mib".into(), toml::Value::Integer(mib.min(i64::MAX as u64) as i64));
    }
    let config = table.entry("config").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(config) = config {
        for item in &args.config {
            let (key, value) = pair(item, "--config")?;
            config.insert(key, toml::Value::String(value));
        }
    }
    toml::to_string(&table).map_err(|e| Failure::software(format!("cannot write the manifest: {e}")))
}

/// `KEY=VALUE` split at the first `=`.
fn pair(item: &str, flag: &str) -> Result<(String, String), Failure> {
    item.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| Failure::data(format!("{flag} {item:?}: write NAME=VALUE")))
}

fn secrets(args: &CallArgs) -> Result<Secrets, Failure> {
    let mut sources = BTreeMap::new();
    for item in &args.secrets {
        let (name, var) = pair(item, "--secret")?;
        let source = SecretSource { env: Some(var), file: None, hosts: args.allow_hosts.clone() };
        sources.insert(name, source);
    }
    Secrets::load(&sources).map_err(|e| {
        Failure::data(format!("{e} (--secret NAME=VAR reads VAR and binds it to the --allow-host origins)"))
    })
}

/// The agent type the loaded file serves; the load error when the host would not load it.
fn loaded_agent_type(runtime: &Runtime) -> Result<String, Failure> {
    let statuses = runtime.registry().list();
    let status = statuses.first().ok_or_else(|| Failure::software("the component was not picked up"))?;
    match status.state {
        PluginState::Loaded => Ok(status.agent_type.clone()),
        PluginState::Failed => {
            Err(Failure::data(status.error.clone().unwrap_or_else(|| "the component did not load".into())))
        }
    }
}

fn read_json(what: &str, path: &Path) -> Result<Value, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::new(NO_INPUT, format!("cannot read {what} `{}`: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Failure::data(format!("{what} `{}` is not JSON: {e}", path.display())))
}

fn input(arg: &str) -> Result<Value, Failure> {
    match arg.strip_prefix('@') {
        Some(path) => read_json("the input", Path::new(path)),
        None => serde_json::from_str(arg).map_err(|e| Failure::data(format!("--input is not JSON: {e}"))),
    }
}

/// The context of attempt 1 of task `call` in workflow `call`, with real handoffs built by the host.
fn task_context(args: &CallArgs, agent_type: &str) -> Result<TaskContext, Failure> {
    let previous = match &args.previous {
        Some(path) => previous_results(read_json("the previous results", path)?)?,
        None => Vec::new(),
    };
    let empty = json!({});
    let target = handoff::Target {
        workflow_id: "call",
        task_id: "call",
        agent_id: agent_type,
        agent_type,
        attempt: 1,
        metadata: &empty,
        variables: &empty,
        context: &empty,
    };
    let now = crate::events::rfc3339(crate::clock::now_us());
    let handoffs = previous.iter().map(|row| handoff::build(row, target, &now).to_string()).collect();
    Ok(TaskContext {
        workflow_id: "call".into(),
        task_id: "call".into(),
        agent_id: agent_type.into(),
        agent_type: agent_type.into(),
        attempt: 1,
        input: input(&args.input)?.to_string(),
        variables: "{}".into(),
        context: "{}".into(),
        metadata: "{}".into(),
        previous_results: previous.iter().map(to_previous).collect(),
        handoffs,
    })
}

/// Dependencies from `[{task_id, agent_type?, agent_id?, status?, output?, error?}, ...]`.
fn previous_results(value: Value) -> Result<Vec<TaskResultRow>, Failure> {
    let items = match value {
        Value::Array(items) => items,
        one @ Value::Object(_) => vec![one],
        _ => return Err(Failure::data("the previous results: write an array of {task_id, output} objects")),
    };
    items.iter().enumerate().map(|(i, item)| previous_row(i, item)).collect()
}

fn previous_row(i: usize, item: &Value) -> Result<TaskResultRow, Failure> {
    let text = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_string);
    let task_id = text("task_id")
        .ok_or_else(|| Failure::data(format!("previous result {i}: `task_id` (a string) is missing")))?;
    let agent_type = text("agent_type").unwrap_or_else(|| "previous".into());
    let status = match text("status").as_deref() {
        None if item.get("error").is_some() => TaskStatus::Failed,
        None | Some("completed") => TaskStatus::Completed,
        Some("failed") => TaskStatus::Failed,
        Some(other) => {
            return Err(Failure::data(format!("previous result {i}: status {other:?}: write completed or failed")))
        }
    };
    Ok(TaskResultRow {
        task_id,
        agent_id: text("agent_id").unwrap_or_else(|| agent_type.clone()),
        agent_type,
        status,
        output: item.get("output").map(Value::to_string),
        error: item.get("error").map(Value::to_string),
        execution_ms: None,
    })
}

fn to_previous(row: &TaskResultRow) -> PreviousResult {
    PreviousResult {
        task_id: row.task_id.clone(),
        agent_id: row.agent_id.clone(),
        agent_type: row.agent_type.clone(),
        status: if row.status == TaskStatus::Failed { DependencyStatus::Failed } else { DependencyStatus::Completed },
        output: row.output.clone(),
        error: row.error.clone(),
    }
}

/// Prints an execution; returns the exit code.
fn report(e: &Execution, load: &str, as_json: bool) -> u8 {
    let code = match &e.result {
        Ok(_) => OK,
        Err(f) if f.retryable => RETRYABLE,
        Err(_) => FAILED,
    };
    let output = e.result.as_ref().ok().map(|o| serde_json::from_str::<Value>(o).unwrap_or(Value::String(o.clone())));
    if as_json {
        let log: Vec<Value> = e.log.iter().map(|l| json!({"level": l.level, "message": l.message})).collect();
        let mut out = json!({
            "outcome": match code { OK => "completed", RETRYABLE => "retryable_error", _ => "failed" },
            "log": log,
            "duration_ms": e.duration.as_secs_f64() * 1e3,
            "instantiation_ms": e.instantiation.map(|d| d.as_secs_f64() * 1e3),
            "peak_memory_bytes": e.peak_memory,
            "digest": &*e.digest,
            "egress_requests": e.egress.len(),
        });
        match (&output, &e.result) {
            (Some(o), _) => out["output"] = o.clone(),
            (None, Err(f)) => out["error"] = serde_json::to_value(f).unwrap_or_default(),
            _ => {}
        }
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return code;
    }
    for line in &e.log {
        eprintln!("[{}] {}", line.level, line.message);
    }
    match (&output, &e.result) {
        (Some(o), _) => println!("{}", serde_json::to_string_pretty(o).unwrap_or_default()),
        (None, Err(f)) => eprint!("{}", failure_text(f)),
        _ => {}
    }
    let outcome = match code {
        OK => "completed",
        RETRYABLE => "failed (retryable)",
        _ => "failed",
    };
    let instantiation = e.instantiation.map(|d| format!(", instantiation {}", ms(d))).unwrap_or_default();
    eprintln!(
        "{outcome} in {}{instantiation}, peak memory {}, {} outbound requests; {load}; {}",
        ms(e.duration),
        mib(e.peak_memory),
        e.egress.len(),
        e.digest
    );
    code
}

fn failure_text(f: &TaskFailure) -> String {
    let kind = if f.retryable { "retryable" } else { "fatal" };
    let mut text = format!("error ({kind}) {}: {}\n", f.error_type, f.message);
    if let Some(detail) = &f.detail {
        match detail.as_str() {
            Some(s) => text += &format!("detail:\n{s}\n"),
            None => text += &format!("detail: {}\n", serde_json::to_string_pretty(detail).unwrap_or_default()),
        }
    }
    text
}

async fn validate(
    runtime: &Runtime,
    agent_type: &str,
    handoff: &Path,
    opts: CallOptions,
    load: &str,
    as_json: bool,
) -> Result<u8, Failure> {
    let message = read_json("the handoff", handoff)?.to_string();
    let started = Instant::now();
    let (code, outcome, detail) = match runtime.validate(agent_type, &message, opts).await {
        Validation::NoValidator => {
            return Err(Failure::new(DATA, "the component exports no validator: build it with `validate` defined"))
        }
        Validation::Accepted => (OK, "accepted", Value::Null),
        Validation::Rejected(issues) => (FAILED, "rejected", serde_json::to_value(issues).unwrap_or_default()),
        Validation::Failed(f) => {
            (if f.retryable { RETRYABLE } else { FAILED }, "failed", serde_json::to_value(f).unwrap_or_default())
        }
    };
    if as_json {
        let out = json!({"outcome": outcome, "detail": detail, "duration_ms": started.elapsed().as_secs_f64() * 1e3});
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        if !detail.is_null() {
            println!("{}", serde_json::to_string_pretty(&detail).unwrap_or_default());
        }
        eprintln!("{outcome} in {}; {load}", ms(started.elapsed()));
    }
    Ok(code)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_results_default_what_they_can_and_name_what_is_missing() {
        let rows = previous_results(
            json!([{"task_id": "a", "output": {"x": 1}}, {"task_id": "b", "error": {"message": "no"}}]),
        )
        .unwrap();
        assert_eq!((rows[0].status, rows[1].status), (TaskStatus::Completed, TaskStatus::Failed));
        assert_eq!(rows[0].output.as_deref(), Some(r#"{"x":1}"#));
        let err = previous_results(json!([{"output": 1}])).unwrap_err();
        assert!(err.message.contains("previous result 0: `task_id`"), "{}", err.message);
        assert!(previous_results(json!([{"task_id": "a", "status": "running"}])).is_err());
    }

    #[test]
    fn flags_go_over_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), "allowed_outbound_hosts = [\"http://x:1\"]\n[config]\nk = \"old\"\n")
            .unwrap();
        let args = CallArgs {
            file: dir.path().join("a.wasm"),
            input: "{}".into(),
            previous: None,
            config: vec!["k=new".into(), "m=a=b".into()],
            allow_hosts: vec!["http://127.0.0.1:9".into()],
            secrets: vec![],
            validate: None,
            memory_limit_mib: Some(200),
            timeout_s: None,
            json: false,
        };
        let table: toml::Table = manifest(&args, "a").unwrap().parse().unwrap();
        assert_eq!(table["allowed_outbound_hosts"].as_array().unwrap().len(), 2);
        assert_eq!(table["config"]["k"].as_str(), Some("new"));
        assert_eq!(table["config"]["m"].as_str(), Some("a=b"));
        assert_eq!(table["memory_limit_mib"].as_integer(), Some(200));
        assert!(pair("=v", "--config").is_err());
    }
}
