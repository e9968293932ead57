//! `text-stats`: word, sentence and keyword statistics of a text.
//!
//! Input `{"text": "...", "keywords": ["..."], "top": 5}` (all optional). Without `text`, the
//! `text` fields of the previous results' outputs are analysed, joined by blank lines. The output
//! carries `text` forward so that a pipeline can chain.

use hyphae_plugin_sdk::{export_executor, json, log, Executor, TaskContext, TaskError, Value};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Deserialize)]
struct Input {
    text: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default = "default_top")]
    top: usize,
}

fn default_top() -> usize {
    5
}

/// Words too common to be keywords.
const STOP_WORDS: &[&str] = &[
    "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "had", "her", "was", "one", "our", "out",
    "has", "him", "his", "how", "its", "may", "who", "did", "yet", "this", "that", "with", "from", "they", "them",
    "then", "than", "there", "their", "what", "when", "which", "will", "would", "could", "should", "have", "been",
    "were", "into", "also", "such", "these", "those", "some", "more", "most", "very", "just", "only", "over", "each",
    "about",
];

struct TextStats;

impl Executor for TextStats {
    fn execute(ctx: TaskContext) -> Result<Value, TaskError> {
        let input: Input = ctx.input()?;
        let (text, source) = match input.text {
            Some(text) => (text, "input"),
            None => {
                let texts: Vec<&str> = ctx.previous_outputs().filter_map(|o| o.get("text")?.as_str()).collect();
                if texts.is_empty() {
                    return Err(TaskError::invalid_input(
                        "no text: give input.text, or depend on a task whose output has `text`",
                    ));
                }
                (texts.join("\n\n"), "previous_results")
            }
        };
        let words = words(&text);
        let keyword_counts: BTreeMap<&str, usize> =
            input.keywords.iter().map(|k| (k.as_str(), count_phrase(&words, k))).collect();
        log::info!("text-stats: {} words from {source}", words.len());
        Ok(json!({
            "text": text,
            "source": source,
            "word_count": words.len(),
            "sentence_count": sentence_count(&text),
            "character_count": text.chars().count(),
            "top_keywords": top_keywords(&words, input.top),
            "keyword_counts": keyword_counts,
        }))
    }
}

/// Lower-cased words: runs of letters, digits and inner apostrophes.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '’').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Sentences end at `.`, `!` or `?` (a run counts once); trailing words make one more.
fn sentence_count(text: &str) -> usize {
    let mut count = 0;
    let mut open = false;
    for c in text.chars() {
        if matches!(c, '.' | '!' | '?') {
            count += open as usize;
            open = false;
        } else if c.is_alphanumeric() {
            open = true;
        }
    }
    count + open as usize
}

/// How often the words of `phrase` occur in a row in `words`.
fn count_phrase(words: &[String], phrase: &str) -> usize {
    let phrase = self::words(phrase);
    if phrase.is_empty() {
        return 0;
    }
    words.windows(phrase.len()).filter(|w| *w == phrase.as_slice()).count()
}

/// The `n` most frequent words of three letters or more that are not stop words.
fn top_keywords(words: &[String], n: usize) -> Vec<Value> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for w in words.iter().filter(|w| w.chars().count() >= 3 && !STOP_WORDS.contains(&w.as_str())) {
        *counts.entry(w).or_default() += 1;
    }
    let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    counts.iter().take(n).map(|(word, count)| json!({ "word": word, "count": count })).collect()
}

export_executor!(TextStats);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let text = "Rust is fast. Rust is safe!! Is it? Wasm runs Rust";
        let w = words(text);
        assert_eq!(w.len(), 11);
        assert_eq!(sentence_count(text), 4);
        assert_eq!(count_phrase(&w, "Rust is"), 2);
        assert_eq!(top_keywords(&w, 1), vec![json!({"word": "rust", "count": 3})]);
        assert_eq!(sentence_count(""), 0);
    }
}
