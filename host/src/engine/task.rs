//! One attempt of one task: build its context and handoffs, validate them, run the executor in
//! the sandbox, and hand the outcome to the writer.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tokio::sync::mpsc::error::SendError;
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Inner;
use crate::clock::now_us;
use crate::events::{micros, rfc3339, EventKind, Json, NewEvent, TaskNames};
use crate::handoff::{self, Target};
use crate::lifecycle::{AttemptResult, Outcome};
use crate::plugins::{
    CallOptions, DependencyStatus, Egress, EgressBudget, EgressOutcome, Execution, Issue, PreviousResult, TaskContext,
    TaskFailure, Validation,
};
use crate::store::{Applied, ClaimedTask, TaskResultRow};
use crate::telemetry::error_type_label;
use crate::workflow::{TaskStatus, Usage};

/// Run the attempt `task` (registered as running with `token` by [`super::scheduler::start`]).
pub(super) async fn run(inner: Arc<Inner>, task: ClaimedTask, permit: OwnedSemaphorePermit, token: CancellationToken) {
    let key = (task.workflow_id.clone(), task.task_id.to_string());

    let (outcome, by_plugin) = attempt(&inner, &task, token).instrument(attempt_span(&inner, &task).await).await;
    let failure = match &outcome.result {
        AttemptResult::Completed(_) => None,
        AttemptResult::Failed(f) => Some(error_type_label(&f.error_type, by_plugin)),
        // Made by an operator's reset, never by a run.
        AttemptResult::Reset { .. } => Some(error_type_label(crate::lifecycle::RESET, false)),
    };
    inner.metrics.attempt_finished(&task.agent_type, outcome.execution_time, failure);
    inner.caps.ended(&task.agent_type);
    let (tx, rx) = oneshot::channel();
    // The slot goes with the outcome: the writer hands it to a task it claims in the same transaction.
    let applied = match inner.writer.send((outcome, permit, tx)) {
        Ok(()) => rx.await.ok().flatten(),
        // The writer has stopped (the engine shuts down): record it here.
        Err(SendError((outcome, permit, _))) => {
            drop(permit);
            super::writer::record_alone(&inner, outcome).await
        }
    };

    {
        // A retry of this task may already run (claimed with this outcome): leave its entry alone.
        let mut running = inner.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.get(&key).is_some_and(|(attempt, _)| *attempt == task.attempt) {
            running.remove(&key);
        }
    }
    let ended = matches!(applied, Some(Applied::Recorded { workflow_finished: Some(_), .. }));
    match applied {
        Some(Applied::Recorded { retry_at, cancelled, task_status, .. }) => {
            if let Some(at) = retry_at {
                inner.due_at(at);
            }
            if task_status == TaskStatus::Retrying {
                inner.metrics.retry(&task.agent_type);
            }
            inner.interrupt(&task.workflow_id, &cancelled);
        }
        Some(Applied::Fenced) => {
            tracing::debug!(workflow_id = %task.workflow_id, task_id = %task.task_id, attempt = task.attempt,
                "outcome refused: the attempt no longer holds the task");
        }
        None => {}
    }
    // The writer woke the scheduler if the slot is free to take other work. This notice also
    // tells of the tasks the writer claimed in the same transaction.
    inner.notify(&task.workflow_id, ended);
}

/// The span of an attempt: a child of its workflow's span when traces are exported (the workflow
/// kept its trace context), else of nothing.
async fn attempt_span(inner: &Inner, task: &ClaimedTask) -> tracing::Span {
    let span = tracing::info_span!("attempt", workflow.id = %task.workflow_id, task.id = %task.task_id,
        task.attempt = task.attempt, agent_type = %task.agent_type);
    if crate::telemetry::exporting() {
        match inner.store.traceparent(&task.workflow_id).await {
            Ok(tp) => crate::telemetry::join(&span, tp.as_deref()),
            Err(e) => tracing::debug!("no trace context for workflow {}: {e}", task.workflow_id),
        }
    }
    span
}

/// Run the attempt and describe its outcome, and whether its failure is the plugin's own error
/// (its error type chosen by the plugin). Never fails: every problem becomes a task failure.
async fn attempt(inner: &Inner, task: &ClaimedTask, token: CancellationToken) -> (Outcome, bool) {
    let started = Instant::now();
    // With tracking off, events are not even built.
    let tracking = inner.store.events_enabled();
    let mut events = Vec::with_capacity(if tracking { 2 } else { 0 });
    let outcome = |result, digest, log, events| Outcome {
        workflow_id: task.workflow_id.clone(),
        task_id: task.task_id.to_string(),
        attempt: task.attempt,
        result,
        plugin_digest: digest,
        log,
        queue_time: task.queue_time,
        execution_time: started.elapsed(),
        events,
        usage: Usage::default(),
        exhausted: None,
        peak_memory: 0,
    };
    let deps = &task.dependency_results;
    let timeout = task
        .timeout
        .or_else(|| inner.sandbox.manifest_timeout(&task.agent_type))
        .unwrap_or(inner.config.default_timeout);
    let budget = task.budget.map(|(b, used)| inner.ledgers.attempt(&task.workflow_id, b, used, token.clone()));
    let opts = CallOptions {
        timeout: Some(timeout),
        cancel: Some(token.clone()),
        budget: budget.clone().map(|b| b as Arc<dyn EgressBudget>),
    };
    let handoffs = match handoffs(inner, task, deps, &opts, tracking.then_some(&mut events)).await {
        Ok(h) => h,
        Err(f) => return (outcome(AttemptResult::Failed(f), None, Vec::new(), events), false),
    };
    let names = task.names();
    if tracking {
        let (attempt, timeout_ms) = (task.attempt, timeout.as_millis() as u64);
        events.push(NewEvent::new(EventKind::ExecutionStart { task: names.clone(), attempt, timeout_ms }));
    }
    let call = tracing::info_span!("plugin.call", agent_type = %task.agent_type, plugin.digest = tracing::field::Empty);
    let exec = inner.sandbox.execute(context(task, deps, handoffs), opts).instrument(call.clone()).await;
    call.record("plugin.digest", exec.digest.as_ref());
    if let Some(took) = exec.instantiation {
        inner.metrics.plugin_instantiated(&task.agent_type, took);
    }
    for egress in &exec.egress {
        let tokens = egress.llm_usage.map(|u| (u.prompt_tokens, u.completion_tokens));
        inner.metrics.egress(&task.agent_type, egress.allowed_by.as_deref(), egress.outcome.as_str(), tokens);
        if tracking {
            events.push(egress_event(egress, &names, task.attempt));
        }
    }
    if tracking {
        events.push(execution_end(&exec, names, task.attempt));
    }
    let digest = (!exec.digest.is_empty()).then_some(exec.digest);
    let exhausted = budget.and_then(|b| b.exhausted());
    let by_plugin = exec.plugin_error && exhausted.is_none();
    let result = match (exec.result, &exhausted) {
        // Whatever the guest made of the refusal, the attempt stops here and runs again later.
        (_, Some(e)) => AttemptResult::Failed(failure("budget_exhausted", e.to_string(), true, Some(json!(e)))),
        (Ok(output), None) => AttemptResult::Completed(output),
        (Err(f), None) => AttemptResult::Failed(f),
    };
    let peak_memory = exec.peak_memory as u64;
    (
        Outcome { usage: usage_of(&exec.egress), exhausted, peak_memory, ..outcome(result, digest, exec.log, events) },
        by_plugin,
    )
}

/// Build the handoff along each dependency edge and have the target's validator plugin, if any,
/// accept it (what the submitter supplied passed the handoff schema at submission; the host
/// builds the rest right). Each handoff is an event when `events` is given. A rejection is the
/// attempt's failure, not retried.
async fn handoffs(
    inner: &Inner,
    task: &ClaimedTask,
    deps: &[TaskResultRow],
    opts: &CallOptions,
    mut events: Option<&mut Vec<NewEvent>>,
) -> Result<Vec<String>, TaskFailure> {
    if deps.is_empty() {
        return Ok(Vec::new());
    }
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    let (metadata, variables, context) = (parse(&task.metadata), parse(&task.variables), parse(&task.context));
    let target = Target {
        workflow_id: &task.workflow_id,
        task_id: &task.task_id,
        agent_id: &task.agent_id,
        agent_type: &task.agent_type,
        attempt: task.attempt,
        metadata: &metadata,
        variables: &variables,
        context: &context,
    };
    let now = rfc3339(now_us());
    let mut handoffs = Vec::with_capacity(deps.len());
    for dep in deps {
        let h = handoff::build(dep, target, &now);
        let text = h.to_string();
        debug_assert_eq!(handoff::check(&h), vec![], "a handoff the host built breaks the schema: {text}");
        let (checked_by, issues) = match inner.sandbox.validate(&task.agent_type, &text, opts.clone()).await {
            Validation::NoValidator => ("schema", Vec::new()),
            Validation::Accepted => ("validator", Vec::new()),
            Validation::Rejected(found) => ("validator", found),
            Validation::Failed(f) => ("validator", vec![Issue { path: String::new(), message: f.message }]),
        };
        if let Some(events) = events.as_deref_mut() {
            events.push(handoff_event(task, dep, &h, checked_by, &issues));
        }
        if !issues.is_empty() {
            return Err(rejected(task, dep, checked_by, issues));
        }
        handoffs.push(text);
    }
    Ok(handoffs)
}

/// The `handoff` event of one dependency edge.
fn handoff_event(task: &ClaimedTask, dep: &TaskResultRow, h: &Value, checked_by: &str, issues: &[Issue]) -> NewEvent {
    NewEvent::new(EventKind::Handoff {
        task: task.names(),
        attempt: task.attempt,
        source: TaskNames::new(&dep.task_id, &dep.agent_id, &dep.agent_type),
        handoff_id: h["handoff_id"].as_str().unwrap_or_default().to_string(),
        by_validator: checked_by == "validator",
        issues: Json::of(&issues),
        task_description: Json::of(&h["context"]["task_description"]),
    })
}

/// The failure of a task whose handoff from `dep` was rejected.
fn rejected(task: &ClaimedTask, dep: &TaskResultRow, checked_by: &str, issues: Vec<Issue>) -> TaskFailure {
    let list: Vec<String> = issues.iter().map(|i| format!("{}: {}", display_path(&i.path), i.message)).collect();
    let by = if checked_by == "schema" { "handoff schema" } else { "target's validator plugin" };
    let message = format!(
        "handoff from `{}` ({}) to `{}` ({}) was rejected by the {by}: {}",
        dep.task_id,
        dep.agent_type,
        task.task_id,
        task.agent_type,
        list.join("; ")
    );
    let detail = json!({ "source_task": dep.task_id, "checked_by": checked_by, "issues": issues });
    failure("handoff_validation", message, false, Some(detail))
}

/// What the executor is given.
fn context(task: &ClaimedTask, deps: &[TaskResultRow], handoffs: Vec<String>) -> TaskContext {
    TaskContext {
        workflow_id: task.workflow_id.clone(),
        task_id: task.task_id.to_string(),
        agent_id: task.agent_id.to_string(),
        agent_type: task.agent_type.to_string(),
        attempt: task.attempt,
        input: task.input.clone(),
        variables: task.variables.clone(),
        context: task.context.clone(),
        metadata: task.metadata.clone(),
        previous_results: deps.iter().map(previous_result).collect(),
        handoffs,
    }
}

/// The `execution_end` event of a plugin call.
fn execution_end(exec: &Execution, task: TaskNames, attempt: u32) -> NewEvent {
    NewEvent::new(EventKind::ExecutionEnd {
        task,
        attempt,
        ok: exec.result.is_ok(),
        duration_us: micros(exec.duration),
        plugin_digest: exec.digest.clone(),
    })
}

/// What an attempt's requests spent: those sent (not denied) and the tokens they reported.
fn usage_of(egress: &[Egress]) -> Usage {
    Usage {
        egress_requests: egress.iter().filter(|e| e.outcome != EgressOutcome::Denied).count() as u64,
        llm_tokens: egress.iter().filter_map(|e| e.llm_usage).map(|u| u.total()).sum(),
    }
}

/// The `egress` event of one outbound request: its outcome and record.
fn egress_event(egress: &Egress, task: &TaskNames, attempt: u32) -> NewEvent {
    let kind = EventKind::Egress {
        task: task.clone(),
        attempt,
        outcome: egress.outcome.as_str().to_string(),
        duration_us: (egress.duration_ms * 1000.0).round() as u64,
        request: Json::of(egress),
    };
    NewEvent::at(kind, egress.at_us)
}

fn previous_result(r: &TaskResultRow) -> PreviousResult {
    PreviousResult {
        task_id: r.task_id.clone(),
        agent_id: r.agent_id.clone(),
        agent_type: r.agent_type.clone(),
        status: if r.status == TaskStatus::Completed { DependencyStatus::Completed } else { DependencyStatus::Failed },
        output: r.output.clone(),
        error: r.error.clone(),
    }
}

fn failure(error_type: &str, message: String, retryable: bool, detail: Option<Value>) -> TaskFailure {
    TaskFailure { error_type: error_type.to_string(), message, retryable, detail }
}

fn display_path(p: &str) -> &str {
    if p.is_empty() {
        "(whole handoff)"
    } else {
        p
    }
}
