//! Handoffs the host builds from whatever a dependency left (its output and error text, its ids,
//! the dependent's metadata and context): building never panics and the result always passes the
//! handoff schema, so the host's own handoffs need no check at run time. Ids are what validation
//! lets through: not blank, no control characters, at most `MAX_ID_BYTES`.
#![no_main]

use arbitrary::Arbitrary;
use hyphae::handoff::{build, check, Target};
use hyphae::store::TaskResultRow;
use hyphae::workflow::{id_problem, TaskStatus, MAX_ID_BYTES};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[derive(Arbitrary, Debug)]
struct Input {
    task_id: String,
    agent_id: String,
    agent_type: String,
    failed: bool,
    output: Option<String>,
    error: Option<String>,
    execution_ms: Option<f64>,
    target_ids: (String, String, String),
    metadata: String,
    context: String,
}

/// `s` if a submission may use it as an id, else `x`.
fn id(s: String) -> String {
    if s.trim().is_empty() || id_problem(&s, MAX_ID_BYTES).is_some() {
        "x".into()
    } else {
        s
    }
}

fuzz_target!(|input: Input| {
    let source = TaskResultRow {
        task_id: id(input.task_id),
        agent_id: id(input.agent_id),
        agent_type: id(input.agent_type),
        status: if input.failed { TaskStatus::Failed } else { TaskStatus::Completed },
        output: input.output,
        error: input.error,
        execution_ms: input.execution_ms,
    };
    let object = |text: &str| match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => v,
        _ => Value::Object(Default::default()),
    };
    let (metadata, context, variables) = (object(&input.metadata), object(&input.context), object("{}"));
    let (task_id, agent_id, agent_type) = input.target_ids;
    let (task_id, agent_id, agent_type) = (id(task_id), id(agent_id), id(agent_type));
    let target = Target {
        workflow_id: "wf",
        task_id: &task_id,
        agent_id: &agent_id,
        agent_type: &agent_type,
        attempt: 1,
        metadata: &metadata,
        variables: &variables,
        context: &context,
    };
    let handoff = build(&source, target, "2026-12-02T00:00:00Z");
    let issues = check(&handoff);
    assert!(issues.is_empty(), "the host built an invalid handoff: {issues:?}\n{handoff:#}");
});
