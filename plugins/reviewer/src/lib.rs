//! `reviewer`: an executor and a validator in one component (world `agent-plugin`).
//!
//! Executor: reviews the text of `input.text`, or else of the previous results' outputs (`text`
//! fields): flags sentences longer than `max_sentence_words` (default 25), repeated words and
//! filler words, and returns a verdict (`approved` or `changes_requested`) with the issues found.
//!
//! Validator: accepts a handoff only when `context.previous_results` is not empty and the source's
//! entry carries a text: the entry whose `agent_id` is `source.agent_id` (else the last one), read
//! as `{.., "output": {"text": ..}}` or, without an `output` field, as the output itself.

use hyphae_plugin_sdk::{export_agent, json, progress, Executor, Issue, TaskContext, TaskError};
use hyphae_plugin_sdk::{Validator, Value};
use serde::Deserialize;

const FILLER_WORDS: &[&str] = &["very", "really", "basically", "actually", "obviously", "just"];

#[derive(Deserialize)]
struct Input {
    text: Option<String>,
    #[serde(default = "default_max_words")]
    max_sentence_words: usize,
}

fn default_max_words() -> usize {
    25
}

struct Reviewer;

impl Executor for Reviewer {
    fn execute(ctx: TaskContext) -> Result<Value, TaskError> {
        let input: Input = ctx.input()?;
        let text = match input.text {
            Some(text) => text,
            None => {
                let texts: Vec<&str> = ctx.previous_outputs().filter_map(|o| o.get("text")?.as_str()).collect();
                if texts.is_empty() {
                    return Err(TaskError::invalid_input("no text in input or previous results"));
                }
                texts.join("\n\n")
            }
        };
        let sentences = sentences(&text);
        let issues = review(&sentences, input.max_sentence_words);
        progress(100, &format!("reviewed {} sentences", sentences.len()));
        let verdict = if issues.is_empty() { "approved" } else { "changes_requested" };
        Ok(json!({
            "verdict": verdict,
            "issue_count": issues.len(),
            "issues": issues,
            "sentence_count": sentences.len(),
            "text": text,
        }))
    }
}

impl Validator for Reviewer {
    fn validate(handoff: Value) -> Result<(), Vec<Issue>> {
        const RESULTS: &str = "/context/previous_results";
        let entries = match handoff.pointer(RESULTS).and_then(Value::as_array) {
            Some(entries) if !entries.is_empty() => entries,
            _ => return Err(vec![Issue::new(RESULTS, "must hold the source's output (a text)")]),
        };
        let source = handoff.pointer("/source/agent_id");
        let agent_id = |e: &Value| e.get("agent_id").or_else(|| e.pointer("/agent/id")).cloned();
        let index = entries
            .iter()
            .position(|e| source.is_some() && agent_id(e).as_ref() == source)
            .unwrap_or(entries.len() - 1);
        let entry = &entries[index];
        let (output, path) = match entry.get("output") {
            Some(output) => (output, format!("{RESULTS}/{index}/output/text")),
            None => (entry, format!("{RESULTS}/{index}/text")),
        };
        match output.get("text") {
            Some(Value::String(_)) => Ok(()),
            Some(_) => Err(vec![Issue::new(path, "must be a string")]),
            None => Err(vec![Issue::new(path, "missing: the reviewer needs a text to review")]),
        }
    }
}

/// Sentences: text between `.`, `!` and `?`, with at least one letter or digit.
fn sentences(text: &str) -> Vec<&str> {
    text.split(['.', '!', '?']).map(str::trim).filter(|s| s.chars().any(char::is_alphanumeric)).collect()
}

fn review(sentences: &[&str], max_words: usize) -> Vec<Value> {
    let mut issues = Vec::new();
    for (i, sentence) in sentences.iter().enumerate() {
        let n = i + 1;
        let words: Vec<String> = sentence
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        if words.len() > max_words {
            let mut excerpt: String = sentence.chars().take(60).collect();
            if excerpt.len() < sentence.len() {
                excerpt.push_str("...");
            }
            issues.push(json!({ "kind": "long_sentence", "sentence": n, "words": words.len(),
                "message": format!("{} words (at most {max_words}): \"{excerpt}\"", words.len()) }));
        }
        for pair in words.windows(2).filter(|p| p[0] == p[1]) {
            issues.push(json!({ "kind": "repeated_word", "sentence": n, "word": pair[0],
                "message": format!("\"{0} {0}\"", pair[0]) }));
        }
        for w in words.iter().filter(|w| FILLER_WORDS.contains(&w.as_str())) {
            issues.push(json!({ "kind": "filler_word", "sentence": n, "word": w,
                "message": format!("\"{w}\" adds nothing") }));
        }
    }
    issues
}

export_agent!(Reviewer);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews() {
        let s = sentences("One two two. Short! This is really fine?");
        assert_eq!(s.len(), 3);
        let issues = review(&s, 2);
        let kinds: Vec<&str> = issues.iter().map(|i| i["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["long_sentence", "repeated_word", "long_sentence", "filler_word"]);
    }

    #[test]
    fn validates() {
        let h = |results: Value| json!({ "source": { "agent_id": "w" }, "context": results });
        let ok = h(json!({ "previous_results": [{ "agent_id": "w", "output": { "text": "hi" } }] }));
        assert_eq!(Reviewer::validate(ok), Ok(()));
        assert_eq!(Reviewer::validate(h(json!({ "previous_results": [{ "text": "x" }] }))), Ok(()));
        let empty = Reviewer::validate(h(json!({ "previous_results": [] }))).unwrap_err();
        assert_eq!(empty[0].path, "/context/previous_results");
        let no_text = h(json!({ "previous_results": [{ "agent_id": "w", "output": { "n": 1 } }] }));
        let issues = Reviewer::validate(no_text).unwrap_err();
        assert_eq!(issues[0].path, "/context/previous_results/0/output/text");
    }
}
