//! A submitted workflow, as bytes: parsing and validation never panic, the host's depth of JSON
//! text agrees with the parsed document's, and what passes validation keeps to the depth rule.
#![no_main]

use hyphae::json::{text_depth, value_depth, MAX_DEPTH};
use hyphae::workflow::{validate, WorkflowSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        assert_eq!(text_depth(text), value_depth(&value), "text and value depth differ");
    }
    let Ok(spec) = serde_json::from_str::<WorkflowSpec>(text) else { return };
    let Ok(valid) = validate(spec, |agent_type| agent_type != "missing") else { return };
    for task in &valid.tasks {
        assert!(value_depth(&task.input) <= MAX_DEPTH, "a too-deep input passed validation");
        assert!(task.dependencies.iter().all(|d| valid.tasks.iter().any(|t| &t.task_id == d)));
    }
});
