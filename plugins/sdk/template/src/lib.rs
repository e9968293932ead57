//! `{{name}}`: executor of agent type `{{name}}`.
//!
//! Input `{"message": "..."}`; output `{"message": "...", "length": n, "attempt": n}`.

use hyphae_plugin_sdk::{export_executor, json, log, Executor, TaskContext, TaskError, Value};
use serde::Deserialize;

#[derive(Deserialize)]
struct Input {
    #[serde(default)]
    message: String,
}

struct Agent;

impl Executor for Agent {
    fn execute(ctx: TaskContext) -> Result<Value, TaskError> {
        let input: Input = ctx.input()?; // input that does not fit: a fatal `invalid_input`
        if input.message.is_empty() {
            return Err(TaskError::invalid_input("`message` is empty: give a text to work on"));
        }
        log::info!("{{name}}: {} bytes of input", input.message.len());
        Ok(json!({ "message": input.message, "length": input.message.chars().count(), "attempt": ctx.attempt }))
    }
}

export_executor!(Agent);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_the_message_with_its_length() {
        let out = Agent::execute(TaskContext::for_test(json!({"message": "héllo"}))).unwrap();
        assert_eq!(out["length"], 5);
    }

    #[test]
    fn an_empty_message_is_invalid_input() {
        let err = Agent::execute(TaskContext::for_test(json!({}))).unwrap_err();
        assert_eq!(err.error_type, "invalid_input");
    }
}
