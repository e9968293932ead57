//! Handoffs: the message built along each dependency edge, from the agent that ran the dependency
//! (source) to the agent about to run the dependent task (target), and its schema check.
//!
//! A handoff is checked against [`SCHEMA`] once, at submission ([`check_supplied`]): the host
//! builds everything in it but what the submitter supplies (task metadata, workflow variables and
//! context), so a workflow whose supplied parts pass makes valid handoffs by construction, and an
//! attempt only asks the target's validator plugin, if there is one.

use std::collections::HashSet;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use crate::plugins::Issue;
use crate::store::TaskResultRow;
use crate::workflow::{ValidWorkflow, ValidationError};

/// The JSON Schema every handoff must satisfy (served at `/v1/schemas/handoff`).
pub const SCHEMA: &str = include_str!("schema.json");

/// The target side of a handoff: the task about to run.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub workflow_id: &'a str,
    pub task_id: &'a str,
    pub agent_id: &'a str,
    pub agent_type: &'a str,
    pub attempt: u32,
    /// Task metadata (JSON object).
    pub metadata: &'a Value,
    /// Workflow variables (JSON object).
    pub variables: &'a Value,
    /// Workflow context (JSON object).
    pub context: &'a Value,
}

/// Build the handoff from `source` (a settled dependency) to `target`.
pub fn build(source: &TaskResultRow, target: Target<'_>, now_rfc3339: &str) -> Value {
    let meta = target.metadata.as_object();
    let get = |k: &str| meta.and_then(|m| m.get(k)).cloned();
    let ctx = |k: &str, default: Value| target.context.get(k).cloned().unwrap_or(default);
    let result = previous_result(source);
    let mut errors = Vec::new();
    if let Some(err) = source.error.as_deref().and_then(|e| serde_json::from_str::<Value>(e).ok()) {
        errors.push(json!({
            "agent_id": source.agent_id,
            "error_type": err.get("error_type").and_then(Value::as_str).unwrap_or("error"),
            "message": err.get("message").and_then(Value::as_str).unwrap_or(""),
            "timestamp": now_rfc3339,
        }));
    }
    let mut source_obj = Map::new();
    source_obj.insert("agent_id".into(), json!(source.agent_id));
    source_obj.insert("agent_type".into(), json!(source.agent_type));
    // The schema wants a number >= 0: a clock that went back counts 0, a damaged row nothing.
    if let Some(ms) = source.execution_ms.filter(|ms| ms.is_finite()) {
        source_obj.insert("execution_time".into(), json!(ms.max(0.0)));
    }
    json!({
        "version": "1.0",
        "handoff_id": uuid::Uuid::new_v4().to_string(),
        "workflow_id": target.workflow_id,
        "source": source_obj,
        "target": {
            "agent_id": target.agent_id,
            "agent_type": target.agent_type,
            "requirements": get("requirements").filter(Value::is_object).unwrap_or_else(|| json!({})),
        },
        "context": {
            "task_description": get("description").and_then(|d| d.as_str().map(str::to_string))
                .unwrap_or_else(|| target.task_id.to_string()),
            "previous_results": [result],
            "conversation_history": ctx("conversation_history", json!([])),
            "files": ctx("files", json!([])),
            "user_preferences": ctx("user_preferences", json!({})),
        },
        "state": {
            "variables": target.variables,
            "progress": { "completed_steps": [source.task_id], "pending_steps": [target.task_id] },
            "errors": errors,
        },
        "metadata": {
            "priority": get("priority").unwrap_or_else(|| json!("normal")),
            "retry_count": target.attempt.saturating_sub(1),
            "tags": get("tags").filter(Value::is_array).unwrap_or_else(|| json!([])),
            "correlation_id": target.workflow_id,
        },
        "timestamp": now_rfc3339,
    })
}

/// A dependency's result as tasks and handoffs show it.
pub fn previous_result(source: &TaskResultRow) -> Value {
    let parse = |t: &Option<String>| t.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok());
    let mut r = json!({
        "task_id": source.task_id,
        "agent_id": source.agent_id,
        "agent_type": source.agent_type,
        "status": source.status.as_str(),
    });
    if let Some(o) = parse(&source.output) {
        r["output"] = o;
    }
    if let Some(e) = parse(&source.error) {
        r["error"] = e;
    }
    r
}

/// Check the parts of its handoffs a workflow supplies (each dependent task's `metadata`, the
/// workflow's `variables` and `context`) by building a handoff of each kind it will make and
/// checking it against [`SCHEMA`]. Tasks whose handoff-relevant metadata is the same are checked once.
pub fn check_supplied(wf: &ValidWorkflow) -> Result<(), ValidationError> {
    let variables = Value::Object(wf.variables.clone());
    let context = Value::Object(wf.context.clone());
    let mut seen = HashSet::new();
    for task in wf.tasks.iter().filter(|t| !t.dependencies.is_empty()) {
        let relevant: Vec<Option<&Value>> = HANDOFF_METADATA.iter().map(|k| task.metadata.get(*k)).collect();
        if !seen.insert(serde_json::to_string(&relevant).unwrap_or_default()) {
            continue;
        }
        let metadata = Value::Object(task.metadata.clone());
        let target = Target {
            workflow_id: "submitted",
            task_id: &task.task_id,
            agent_id: &task.agent_id,
            agent_type: &task.agent_type,
            attempt: 1,
            metadata: &metadata,
            variables: &variables,
            context: &context,
        };
        let source = TaskResultRow {
            task_id: task.dependencies[0].clone(),
            agent_id: "source".into(),
            agent_type: "source".into(),
            status: crate::workflow::TaskStatus::Completed,
            output: None,
            error: None,
            execution_ms: None,
        };
        let issues = check(&build(&source, target, "2026-01-01T00:00:00Z"));
        if !issues.is_empty() {
            let problems: Vec<String> =
                issues.iter().map(|i| format!("{} {}", supplied_by(&i.path), i.message)).collect();
            return Err(ValidationError::Handoff { task: task.task_id.clone(), problems: problems.join("; ") });
        }
    }
    Ok(())
}

/// Task metadata keys that reach a handoff as they are written and so can break its schema
/// (`description` and `requirements` are taken only when they are a string and an object).
const HANDOFF_METADATA: [&str; 2] = ["priority", "tags"];

/// Where the part of a handoff at `path` comes from, as a submitter wrote it.
fn supplied_by(path: &str) -> String {
    let field =
        |prefix: &str, name: &str| path.strip_prefix(prefix).map(|rest| format!("{name}{}", rest.replace('/', ".")));
    field("/metadata/", "metadata.")
        .or_else(|| field("/target/requirements", "metadata.requirements"))
        .or_else(|| field("/context/task_description", "metadata.description"))
        .or_else(|| field("/context/", "the workflow's context."))
        .or_else(|| field("/state/variables", "the workflow's variables"))
        .map(|f| format!("`{f}`:"))
        .unwrap_or_else(|| format!("{path}:"))
}

/// Check a handoff against [`SCHEMA`]. Returns the problems found (empty when valid).
pub fn check(handoff: &Value) -> Vec<Issue> {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        let schema: Value = serde_json::from_str(SCHEMA).expect("the built-in handoff schema is valid JSON");
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("the built-in handoff schema compiles")
    });
    validator
        .iter_errors(handoff)
        .map(|e| Issue { path: e.instance_path.to_string(), message: e.to_string() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::TaskStatus;

    fn source() -> TaskResultRow {
        TaskResultRow {
            task_id: "a".into(),
            agent_id: "agent-a".into(),
            agent_type: "echo".into(),
            status: TaskStatus::Completed,
            output: Some(r#"{"x":1}"#.into()),
            error: None,
            execution_ms: Some(1.5),
        }
    }

    #[test]
    fn built_handoffs_pass_the_schema() {
        let meta = json!({"requirements": {"schema": {"type": "object"}}, "priority": "high"});
        let vars = json!({"v": 1});
        let ctx = json!({"conversation_history": [{"role": "user", "content": "hi"}]});
        let target = Target {
            workflow_id: "w",
            task_id: "b",
            agent_id: "agent-b",
            agent_type: "echo",
            attempt: 2,
            metadata: &meta,
            variables: &vars,
            context: &ctx,
        };
        let h = build(&source(), target, "2026-01-01T00:00:00.000000Z");
        assert_eq!(check(&h), vec![]);
        assert_eq!(h["metadata"]["retry_count"], 1);
        assert_eq!(h["context"]["previous_results"][0]["output"]["x"], 1);
        assert_eq!(h["target"]["requirements"]["schema"]["type"], "object");
    }

    /// Found by the `handoff` fuzz target: a duration that is not a number became `null`, a
    /// negative one broke the schema's minimum.
    #[test]
    fn durations_that_are_not_numbers_or_negative_keep_to_the_schema() {
        let (meta, vars, ctx) = (json!({}), json!({}), json!({}));
        let target = Target {
            workflow_id: "w",
            task_id: "b",
            agent_id: "b",
            agent_type: "echo",
            attempt: 1,
            metadata: &meta,
            variables: &vars,
            context: &ctx,
        };
        for ms in [f64::NAN, f64::INFINITY] {
            let h = build(&TaskResultRow { execution_ms: Some(ms), ..source() }, target, "2026-01-01T00:00:00Z");
            assert_eq!(check(&h), vec![], "{h}");
            assert!(h["source"].get("execution_time").is_none());
        }
        let h = build(&TaskResultRow { execution_ms: Some(-3.0), ..source() }, target, "2026-01-01T00:00:00Z");
        assert_eq!(h["source"]["execution_time"], 0.0);
    }

    fn submitted(spec: Value) -> Result<(), ValidationError> {
        check_supplied(&crate::workflow::validate(serde_json::from_value(spec).unwrap(), |_| true).unwrap())
    }

    #[test]
    fn supplied_parts_are_checked_at_submission() {
        let task = |id: &str, deps: &[&str], meta: Value| json!({"task_id": id, "agent_type": "echo", "dependencies": deps, "metadata": meta});
        let fine = json!({"tasks": [task("a", &[], json!({"priority": "urgent"})),
            task("b", &["a"], json!({"priority": "high", "tags": ["x"], "description": "b"}))]});
        assert_eq!(submitted(fine), Ok(()), "a task without dependencies receives no handoff");
        let bad = json!({"tasks": [task("a", &[], json!({})), task("b", &["a"], json!({"priority": "urgent"}))]});
        let err = submitted(bad).unwrap_err();
        assert_eq!(err.code(), "invalid_workflow");
        assert!(err.to_string().contains("task `b`") && err.to_string().contains("`metadata.priority`"), "{err}");
        let bad = json!({"context": {"conversation_history": [{"role": "robot", "content": "hi"}]},
            "tasks": [task("a", &[], json!({})), task("b", &["a"], json!({}))]});
        let err = submitted(bad).unwrap_err().to_string();
        assert!(err.contains("`the workflow's context.conversation_history.0.role`"), "{err}");
    }

    #[test]
    fn schema_problems_name_the_path() {
        let mut h = json!({"version": "one", "source": {"agent_id": "a", "agent_type": "t"},
            "target": {"agent_id": "b", "agent_type": "t"}, "context": {}, "timestamp": "2026-01-01T00:00:00Z",
            "metadata": {"priority": "urgent"}});
        let issues = check(&h);
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert!(paths.contains(&"/version") && paths.contains(&"/metadata/priority"), "{issues:?}");
        h["version"] = json!("1.0");
        h["metadata"]["priority"] = json!("low");
        assert_eq!(check(&h), vec![]);
    }
}
