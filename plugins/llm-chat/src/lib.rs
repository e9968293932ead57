//! `llm-chat`: one chat completion from an OpenAI-compatible server per task.
//!
//! The agent type is the file name, so one component serves several agent types, each with its
//! own manifest: `research.wasm` + `research.toml`, `draft.wasm` + `draft.toml`, ... Manifest:
//!
//! ```toml
//! allowed_outbound_hosts = ["https://api.openai.com"]
//! secrets = ["openai"]
//! [config]
//! base_url = "https://api.openai.com/v1"
//! model = "gpt-4o-mini"
//! secret = "openai"                 # the secret holding the API key (none: no authorization)
//! system_prompt = "You are a careful researcher."
//! temperature = 0.2                 # optional, as are max_tokens and timeout_s
//! ```
//!
//! Input `{"prompt": "..."}` (optional). The user message is the prompt followed by the outputs of
//! the completed dependencies (their `content` when it is a string, else the whole output as
//! JSON), each under a `## Result of TASK (AGENT_TYPE)` heading. Output: `{"content", "model",
//! "usage": {"prompt_tokens", "completion_tokens", "total_tokens"}}`.

use hyphae_plugin_sdk::llm::{Client, Message};
use hyphae_plugin_sdk::{
    config, export_executor, json, progress, Executor, PreviousResult, TaskContext, TaskError, Value,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Input {
    prompt: Option<String>,
}

struct LlmChat;

impl Executor for LlmChat {
    fn execute(ctx: TaskContext) -> Result<Value, TaskError> {
        let input: Input = if ctx.input.is_null() { Input { prompt: None } } else { ctx.input()? };
        let user = user_message(input.prompt.as_deref(), &ctx.previous_results).ok_or_else(|| {
            TaskError::invalid_input("nothing to ask: no `prompt` in the input and no previous results")
        })?;
        let client = Client::from_config()?;
        let mut messages = Vec::new();
        if let Some(system) = config::get("system_prompt").filter(|s| !s.trim().is_empty()) {
            messages.push(Message::system(system));
        }
        messages.push(Message::user(user));
        progress(10, &format!("asking {}", client.model));
        let answer = client.chat(messages)?;
        progress(100, "answered");
        Ok(json!({ "content": answer.content, "model": answer.model, "usage": answer.usage }))
    }
}

/// The prompt, then each completed dependency's output; `None` when there is neither.
fn user_message(prompt: Option<&str>, previous: &[PreviousResult]) -> Option<String> {
    let mut parts: Vec<String> =
        prompt.map(str::trim).filter(|p| !p.is_empty()).map(String::from).into_iter().collect();
    for result in previous {
        let Some(output) = &result.output else { continue };
        let text = match output.get("content") {
            Some(Value::String(content)) => content.clone(),
            _ => output.to_string(),
        };
        parts.push(format!("## Result of {} ({})\n\n{}", result.task_id, result.agent.agent_type, text.trim()));
    }
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

export_executor!(LlmChat);

#[cfg(test)]
mod tests {
    use super::*;
    use hyphae_plugin_sdk::{Agent, DependencyStatus};

    fn result(task_id: &str, output: Option<Value>) -> PreviousResult {
        let status = if output.is_some() { DependencyStatus::Completed } else { DependencyStatus::Failed };
        let agent = Agent { id: "a".into(), agent_type: "research".into() };
        PreviousResult { task_id: task_id.into(), agent, status, output, error: None }
    }

    #[test]
    fn user_message_joins_prompt_and_previous_outputs() {
        assert_eq!(user_message(None, &[]), None);
        assert_eq!(user_message(Some("  "), &[]), None);
        assert_eq!(user_message(Some("Write."), &[]).as_deref(), Some("Write."));
        let previous = [
            result("r1", Some(json!({"content": "Notes.\n"}))),
            result("r2", Some(json!({"n": 1}))),
            result("r3", None),
        ];
        assert_eq!(
            user_message(Some("Draft a post."), &previous).unwrap(),
            "Draft a post.\n\n## Result of r1 (research)\n\nNotes.\n\n## Result of r2 (research)\n\n{\"n\":1}"
        );
    }

    #[test]
    fn the_file_name_decides_the_agent_type() {
        assert_eq!(<LlmChat as Executor>::describe().agent_type, None);
    }
}
