//! `echo`: returns what it was given, so a workflow can show what reaches a task.

use hyphae_plugin_sdk::{export_executor, json, Executor, TaskContext, TaskError, Value};

struct Echo;

impl Executor for Echo {
    fn execute(ctx: TaskContext) -> Result<Value, TaskError> {
        Ok(json!({
            "input": ctx.input,
            "previous_results": ctx.previous_results,
            "variables": ctx.variables,
            "attempt": ctx.attempt,
            "task_id": ctx.task_id,
            "workflow_id": ctx.workflow_id,
        }))
    }
}

export_executor!(Echo);
