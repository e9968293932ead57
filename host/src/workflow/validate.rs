//! DAG validation: everything that can be refused is refused here, before anything is stored.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::model::{RetryPolicy, TaskSpec, WorkflowSpec, DEFAULT_MAX_PARALLEL_TASKS};

/// Longest allowed per-attempt timeout (7 days).
const MAX_TIMEOUT_SECS: f64 = 7.0 * 86_400.0;
/// Shortest allowed per-attempt timeout (timeouts are kept in milliseconds).
const MIN_TIMEOUT_SECS: f64 = 0.001;
/// Most tasks in one workflow.
pub const MAX_TASKS: usize = 100_000;
/// Longest task id, agent id, agent type or idempotency key, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Longest workflow name, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// Why a workflow was refused. Each message names the task concerned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValidationError {
    #[error("the workflow has no tasks: give at least one task in `tasks`")]
    Empty,
    #[error("the workflow has {0} tasks; at most {MAX_TASKS} are allowed in one workflow")]
    TooManyTasks(usize),
    #[error("task {index} has an empty `{field}`")]
    EmptyField { index: usize, field: &'static str },
    #[error("task id `{0}` is used more than once: task ids must be unique")]
    DuplicateTask(String),
    #[error("task `{task}` depends on `{dependency}`, which is not a task of this workflow")]
    UnknownDependency { task: String, dependency: String },
    #[error("task `{0}` depends on itself")]
    SelfDependency(String),
    #[error("task `{task}` lists dependency `{dependency}` more than once")]
    DuplicateDependency { task: String, dependency: String },
    #[error("the tasks form a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("task `{task}` has agent type `{agent_type}`, but no executor plugin is loaded for it: install `{agent_type}.wasm` in the plugins directory")]
    UnknownAgentType { task: String, agent_type: String },
    #[error("task `{task}` has a malformed retry_policy: {problem}")]
    RetryPolicy { task: String, problem: String },
    #[error("task `{task}` has a malformed timeout: it must be a number of seconds >= {MIN_TIMEOUT_SECS} and <= {MAX_TIMEOUT_SECS}")]
    Timeout { task: String },
    #[error("max_parallel_tasks must be between 1 and 10000")]
    MaxParallel,
    #[error("{} is nested {depth} levels deep; at most {} levels are allowed", where_(.task, .field), crate::json::MAX_DEPTH)]
    TooDeep { task: Option<String>, field: &'static str, depth: usize },
    #[error("task `{task}` depends on others, and the handoffs it would receive break the handoff schema: {problems}")]
    Handoff { task: String, problems: String },
    #[error("{}: {problem}", where_(.task, .field))]
    BadName { task: Option<String>, field: &'static str, problem: String },
}

fn where_(task: &Option<String>, field: &str) -> String {
    match task {
        Some(t) => format!("the `{field}` of task `{t}`"),
        None => format!("the workflow's `{field}`"),
    }
}

impl ValidationError {
    /// Stable machine-readable code, used by the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty
            | Self::TooManyTasks(_)
            | Self::EmptyField { .. }
            | Self::MaxParallel
            | Self::TooDeep { .. }
            | Self::Handoff { .. }
            | Self::BadName { .. } => "invalid_workflow",
            Self::DuplicateTask(_) => "duplicate_task",
            Self::UnknownDependency { .. } => "unknown_dependency",
            Self::SelfDependency(_) => "self_dependency",
            Self::DuplicateDependency { .. } => "duplicate_dependency",
            Self::Cycle(_) => "cycle",
            Self::UnknownAgentType { .. } => "unknown_agent_type",
            Self::RetryPolicy { .. } => "invalid_retry_policy",
            Self::Timeout { .. } => "invalid_timeout",
        }
    }
}

/// A task that passed validation, with everything the store needs.
#[derive(Debug, Clone)]
pub struct ValidTask {
    pub task_id: String,
    pub position: usize,
    pub agent_id: String,
    pub agent_type: String,
    pub dependencies: Vec<String>,
    /// Tasks that list this one as a dependency, in submission order.
    pub dependents: Vec<String>,
    pub input: Value,
    pub retry_policy: RetryPolicy,
    pub timeout: Option<Duration>,
    pub allow_failure: bool,
    pub metadata: serde_json::Map<String, Value>,
}

/// A workflow that passed validation.
#[derive(Debug, Clone)]
pub struct ValidWorkflow {
    pub name: Option<String>,
    pub tasks: Vec<ValidTask>,
    pub variables: serde_json::Map<String, Value>,
    pub context: serde_json::Map<String, Value>,
    pub max_parallel_tasks: u32,
    pub start: bool,
    pub idempotency_key: Option<String>,
    /// With an idempotency key: SHA-256 (hex) of the request without its key, to tell a retry of
    /// the same submission from another one that reuses the key.
    pub fingerprint: Option<String>,
    /// `None` when no limit is set.
    pub budget: Option<super::Budget>,
    /// W3C `traceparent` of the workflow's span, when traces are exported: its attempts join it.
    pub traceparent: Option<String>,
}

/// Validate a submitted workflow. `has_executor` tells whether an agent type has a loaded executor.
pub fn validate(spec: WorkflowSpec, has_executor: impl Fn(&str) -> bool) -> Result<ValidWorkflow, ValidationError> {
    let idempotency_key = spec.idempotency_key.clone().filter(|k| !k.is_empty());
    let fingerprint = idempotency_key.as_ref().map(|_| request_fingerprint(&spec));
    if spec.tasks.is_empty() {
        return Err(ValidationError::Empty);
    }
    if spec.tasks.len() > MAX_TASKS {
        return Err(ValidationError::TooManyTasks(spec.tasks.len()));
    }
    let max_parallel = spec.max_parallel_tasks.unwrap_or(DEFAULT_MAX_PARALLEL_TASKS);
    if !(1..=10_000).contains(&max_parallel) {
        return Err(ValidationError::MaxParallel);
    }
    check_depths(&spec)?;
    check_names(&spec)?;
    let index = index_tasks(&spec)?;
    let dependents = dependents(&spec, &index)?;
    if let Some(cycle) = find_cycle(&spec, &index) {
        return Err(ValidationError::Cycle(cycle));
    }
    for t in &spec.tasks {
        check_task(t, &has_executor)?;
    }
    let names: Vec<String> = spec.tasks.iter().map(|t| t.task_id.clone()).collect();
    let tasks = spec
        .tasks
        .into_iter()
        .zip(dependents)
        .enumerate()
        .map(|(position, (t, deps_of))| ValidTask {
            agent_id: t.agent_id.filter(|a| !a.is_empty()).unwrap_or_else(|| t.agent_type.clone()),
            task_id: t.task_id,
            position,
            agent_type: t.agent_type,
            dependencies: t.dependencies,
            dependents: deps_of.into_iter().map(|i| names[i].clone()).collect(),
            input: t.input.unwrap_or_else(|| Value::Object(Default::default())),
            retry_policy: t.retry_policy.unwrap_or_default(),
            timeout: t.timeout.map(Duration::from_secs_f64),
            allow_failure: t.allow_failure,
            metadata: t.metadata,
        })
        .collect();
    Ok(ValidWorkflow {
        name: spec.name,
        tasks,
        variables: spec.variables,
        context: spec.context,
        max_parallel_tasks: max_parallel,
        start: spec.start.unwrap_or(true),
        fingerprint,
        idempotency_key,
        budget: spec.budget.filter(|b| !b.is_unlimited()),
        traceparent: None,
    })
}

/// SHA-256 (hex) of the canonical JSON of `spec` without its idempotency key (serde_json's maps
/// are sorted, so the order of keys in the body does not matter).
pub fn request_fingerprint(spec: &WorkflowSpec) -> String {
    use sha2::{Digest, Sha256};
    let mut spec = spec.clone();
    spec.idempotency_key = None;
    hex::encode(Sha256::digest(serde_json::to_vec(&spec).unwrap_or_default()))
}

/// Task positions by id; every task has an id and an agent type, and no id is used twice.
fn index_tasks(spec: &WorkflowSpec) -> Result<HashMap<&str, usize>, ValidationError> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(spec.tasks.len());
    for (i, t) in spec.tasks.iter().enumerate() {
        if t.task_id.trim().is_empty() {
            return Err(ValidationError::EmptyField { index: i, field: "task_id" });
        }
        if t.agent_type.trim().is_empty() {
            return Err(ValidationError::EmptyField { index: i, field: "agent_type" });
        }
        if index.insert(&t.task_id, i).is_some() {
            return Err(ValidationError::DuplicateTask(t.task_id.clone()));
        }
    }
    Ok(index)
}

/// The positions of the tasks that depend on each task; every dependency is another task of the
/// workflow, listed once.
fn dependents(spec: &WorkflowSpec, index: &HashMap<&str, usize>) -> Result<Vec<Vec<usize>>, ValidationError> {
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); spec.tasks.len()];
    for (i, t) in spec.tasks.iter().enumerate() {
        for (k, d) in t.dependencies.iter().enumerate() {
            if *d == t.task_id {
                return Err(ValidationError::SelfDependency(t.task_id.clone()));
            }
            let Some(&j) = index.get(d.as_str()) else {
                return Err(ValidationError::UnknownDependency { task: t.task_id.clone(), dependency: d.clone() });
            };
            if t.dependencies[..k].contains(d) {
                return Err(ValidationError::DuplicateDependency { task: t.task_id.clone(), dependency: d.clone() });
            }
            dependents[j].push(i);
        }
    }
    Ok(dependents)
}

/// A task's retry policy, timeout and agent type.
fn check_task(t: &TaskSpec, has_executor: &impl Fn(&str) -> bool) -> Result<(), ValidationError> {
    if let Some(problem) = t.retry_policy.as_ref().and_then(RetryPolicy::problem) {
        return Err(ValidationError::RetryPolicy { task: t.task_id.clone(), problem });
    }
    if let Some(s) = t.timeout {
        if !(s.is_finite() && (MIN_TIMEOUT_SECS..=MAX_TIMEOUT_SECS).contains(&s)) {
            return Err(ValidationError::Timeout { task: t.task_id.clone() });
        }
    }
    if !has_executor(&t.agent_type) {
        return Err(ValidationError::UnknownAgentType { task: t.task_id.clone(), agent_type: t.agent_type.clone() });
    }
    Ok(())
}

/// Why `value` cannot be an id of at most `max` bytes: too long, or a control character (NUL
/// included, which PostgreSQL cannot store in text). `None`: it can.
pub fn id_problem(value: &str, max: usize) -> Option<String> {
    if value.len() > max {
        return Some(format!("it is {} bytes long; at most {max} are allowed", value.len()));
    }
    value
        .chars()
        .find(|c| c.is_control())
        .map(|c| format!("it contains the control character {:?}: use printable characters only", c))
}

/// Names and ids keep to [`id_problem`]'s rule.
fn check_names(spec: &WorkflowSpec) -> Result<(), ValidationError> {
    let check = |task: Option<&str>, field: &'static str, value: &str, max: usize| match id_problem(value, max) {
        Some(problem) => Err(ValidationError::BadName { task: task.map(printable), field, problem }),
        None => Ok(()),
    };
    if let Some(name) = &spec.name {
        check(None, "name", name, MAX_NAME_BYTES)?;
    }
    if let Some(key) = &spec.idempotency_key {
        check(None, "idempotency_key", key, MAX_ID_BYTES)?;
    }
    for t in &spec.tasks {
        check(Some(&t.task_id), "task_id", &t.task_id, MAX_ID_BYTES)?;
        check(Some(&t.task_id), "agent_type", &t.agent_type, MAX_ID_BYTES)?;
        if let Some(agent) = &t.agent_id {
            check(Some(&t.task_id), "agent_id", agent, MAX_ID_BYTES)?;
        }
    }
    Ok(())
}

/// A name fit for an error message: control characters escaped, at most 64 characters.
fn printable(name: &str) -> String {
    name.chars().flat_map(char::escape_debug).take(64).collect()
}

/// Every document of the workflow keeps to the nesting rule of [`crate::json`].
fn check_depths(spec: &WorkflowSpec) -> Result<(), ValidationError> {
    let deep = |task: Option<&str>, field: &'static str, depth: usize| {
        if depth > crate::json::MAX_DEPTH {
            Err(ValidationError::TooDeep { task: task.map(str::to_string), field, depth })
        } else {
            Ok(())
        }
    };
    let object_depth =
        |m: &serde_json::Map<String, Value>| 1 + m.values().map(crate::json::value_depth).max().unwrap_or(0);
    deep(None, "variables", object_depth(&spec.variables))?;
    deep(None, "context", object_depth(&spec.context))?;
    for t in &spec.tasks {
        deep(Some(&t.task_id), "input", t.input.as_ref().map_or(0, crate::json::value_depth))?;
        deep(Some(&t.task_id), "metadata", object_depth(&t.metadata))?;
    }
    Ok(())
}

/// Find one cycle (iterative DFS, so deep graphs cannot overflow the stack) and list its tasks,
/// closing the loop: `a -> b -> a`.
fn find_cycle(spec: &WorkflowSpec, index: &HashMap<&str, usize>) -> Option<Vec<String>> {
    const WHITE: u8 = 0;
    const GREY: u8 = 1;
    const BLACK: u8 = 2;
    let n = spec.tasks.len();
    let mut color = vec![WHITE; n];
    let deps = |i: usize| -> Vec<usize> { spec.tasks[i].dependencies.iter().map(|d| index[d.as_str()]).collect() };
    for root in 0..n {
        if color[root] != WHITE {
            continue;
        }
        // Stack of (node, its successors, next successor index).
        let mut stack: Vec<(usize, Vec<usize>, usize)> = vec![(root, deps(root), 0)];
        color[root] = GREY;
        while let Some((node, succ, next)) = stack.last_mut() {
            if *next < succ.len() {
                let s = succ[*next];
                *next += 1;
                match color[s] {
                    WHITE => {
                        color[s] = GREY;
                        let ds = deps(s);
                        stack.push((s, ds, 0));
                    }
                    GREY => {
                        let start = stack.iter().position(|(v, _, _)| *v == s).unwrap_or(0);
                        // Walked along "depends on" edges; report in execution order.
                        let mut cycle: Vec<String> =
                            stack[start..].iter().map(|(v, _, _)| spec.tasks[*v].task_id.clone()).collect();
                        cycle.reverse();
                        cycle.push(cycle[0].clone());
                        return Some(cycle);
                    }
                    _ => {}
                }
            } else {
                color[*node] = BLACK;
                stack.pop();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::TaskSpec;

    fn task(id: &str, deps: &[&str]) -> TaskSpec {
        serde_json::from_value(serde_json::json!({
            "task_id": id, "agent_type": "echo", "dependencies": deps,
        }))
        .unwrap()
    }

    fn spec(tasks: Vec<TaskSpec>) -> WorkflowSpec {
        serde_json::from_value(serde_json::json!({ "tasks": [] }))
            .map(|mut s: WorkflowSpec| {
                s.tasks = tasks;
                s
            })
            .unwrap()
    }

    fn check(tasks: Vec<TaskSpec>) -> Result<ValidWorkflow, ValidationError> {
        validate(spec(tasks), |t| t == "echo")
    }

    #[test]
    fn timeouts_are_at_least_a_millisecond() {
        let mut t = task("a", &[]);
        t.timeout = Some(1e-300);
        assert_eq!(check(vec![t.clone()]).unwrap_err().code(), "invalid_timeout");
        t.timeout = Some(0.001);
        assert_eq!(check(vec![t]).unwrap().tasks[0].timeout, Some(Duration::from_millis(1)));
    }

    #[test]
    fn documents_deeper_than_the_limit_are_refused() {
        let nested = |levels: usize| -> serde_json::Value {
            let text = format!("{}{}", "[".repeat(levels), "]".repeat(levels));
            serde_json::from_str(&text).unwrap()
        };
        let mut ok = task("a", &[]);
        ok.input = Some(nested(crate::json::MAX_DEPTH));
        assert!(check(vec![ok.clone()]).is_ok());
        ok.input = Some(nested(crate::json::MAX_DEPTH + 1));
        let e = check(vec![ok]).unwrap_err();
        assert_eq!(e.to_string(), "the `input` of task `a` is nested 101 levels deep; at most 100 levels are allowed");
        let mut wf = spec(vec![task("a", &[])]);
        wf.context.insert("k".into(), nested(crate::json::MAX_DEPTH));
        let e = validate(wf, |t| t == "echo").unwrap_err();
        assert!(e.to_string().starts_with("the workflow's `context` is nested 101 levels"), "{e}");
    }

    #[test]
    fn ids_are_printable_and_bounded() {
        let e = check(vec![task("a\u{0}b", &[])]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the `task_id` of task `a\\0b`: it contains the control character '\\0': use printable characters only"
        );
        let long = "x".repeat(MAX_ID_BYTES + 1);
        let mut t = task("a", &[]);
        t.agent_id = Some(long.clone());
        let e = check(vec![t]).unwrap_err();
        assert!(e.to_string().contains("it is 257 bytes long; at most 256 are allowed"), "{e}");
        assert!(check(vec![task(&"x".repeat(MAX_ID_BYTES), &[])]).is_ok());
        let mut wf = spec(vec![task("a", &[])]);
        wf.idempotency_key = Some("k\n".into());
        assert_eq!(validate(wf, |t| t == "echo").unwrap_err().code(), "invalid_workflow");
    }

    #[test]
    fn diamond_is_valid_with_dependents() {
        let wf = check(vec![task("a", &[]), task("b", &["a"]), task("c", &["a"]), task("d", &["b", "c"])]).unwrap();
        assert_eq!(wf.tasks[0].dependents, vec!["b", "c"]);
        assert_eq!(wf.tasks[3].dependencies, vec!["b", "c"]);
        assert_eq!(wf.tasks[0].agent_id, "echo");
        assert_eq!(wf.max_parallel_tasks, 10);
    }

    #[test]
    fn errors_name_the_tasks() {
        let e = check(vec![task("a", &[]), task("a", &[])]).unwrap_err();
        assert_eq!(e.to_string(), "task id `a` is used more than once: task ids must be unique");
        let e = check(vec![task("a", &["zz"])]).unwrap_err();
        assert_eq!(e.to_string(), "task `a` depends on `zz`, which is not a task of this workflow");
        let e = check(vec![task("a", &["a"])]).unwrap_err();
        assert_eq!(e.to_string(), "task `a` depends on itself");
        let e = check(vec![task("x", &[]), task("a", &["c"]), task("b", &["a"]), task("c", &["b"])]).unwrap_err();
        assert_eq!(e.to_string(), "the tasks form a cycle: b -> c -> a -> b");
        let mut t = task("a", &[]);
        t.agent_type = "nope".into();
        let e = check(vec![t]).unwrap_err();
        assert!(e.to_string().contains("install `nope.wasm`"), "{e}");
        let mut t = task("a", &[]);
        t.timeout = Some(-1.0);
        assert_eq!(check(vec![t]).unwrap_err().code(), "invalid_timeout");
        let mut t = task("a", &[]);
        t.retry_policy = Some(RetryPolicy { max_attempts: 0, ..Default::default() });
        assert_eq!(check(vec![t]).unwrap_err().code(), "invalid_retry_policy");
        assert_eq!(check(vec![]).unwrap_err(), ValidationError::Empty);
    }

    #[test]
    fn long_chain_does_not_overflow() {
        let mut tasks = vec![task("t0", &[])];
        for i in 1..50_000 {
            tasks.push(task(&format!("t{i}"), &[&format!("t{}", i - 1)]));
        }
        assert!(check(tasks).is_ok());
    }
}
