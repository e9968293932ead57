//! `schema-validator`: checks a handoff against the JSON Schema its target requires.
//!
//! The handoff's `target.requirements` may hold `{"schema": <JSON Schema>, "applies_to":
//! "/context"}`: the part of the handoff at JSON pointer `applies_to` (default: the whole handoff)
//! must match `schema`. Each violation is an issue whose path is the JSON pointer of the offending
//! value within the handoff. No schema: the handoff is accepted.

use hyphae_plugin_sdk::{export_validator, Info, Issue, Validator, Value};

const REQUIREMENTS: &str = "/target/requirements";

struct SchemaValidator;

impl Validator for SchemaValidator {
    fn describe() -> Info {
        Info {
            description: "Accepts a handoff when the value at target.requirements.applies_to \
                          matches the JSON Schema in target.requirements.schema"
                .into(),
            ..Info::default()
        }
    }

    fn validate(handoff: Value) -> Result<(), Vec<Issue>> {
        let Some(schema) = handoff.pointer(&format!("{REQUIREMENTS}/schema")) else {
            return Ok(());
        };
        let applies_to = match handoff.pointer(&format!("{REQUIREMENTS}/applies_to")) {
            None => "",
            Some(Value::String(p)) if p.is_empty() || p.starts_with('/') => p.as_str(),
            Some(_) => {
                let msg = "must be a JSON pointer such as \"/context\" (\"\": the whole handoff)";
                return Err(vec![Issue::new(format!("{REQUIREMENTS}/applies_to"), msg)]);
            }
        };
        let validator = jsonschema::validator_for(schema)
            .map_err(|e| vec![Issue::new(format!("{REQUIREMENTS}/schema"), format!("invalid JSON Schema: {e}"))])?;
        let Some(instance) = handoff.pointer(applies_to) else {
            let msg = "missing: target.requirements.applies_to names this value";
            return Err(vec![Issue::new(applies_to, msg)]);
        };
        let issues: Vec<Issue> = validator
            .iter_errors(instance)
            .map(|e| Issue::new(format!("{applies_to}{}", e.instance_path), e.to_string()))
            .collect();
        if issues.is_empty() {
            Ok(())
        } else {
            Err(issues)
        }
    }
}

export_validator!(SchemaValidator);

/// getrandom's `custom` backend (see `../.cargo/config.toml`): only ahash's hash seed asks for
/// randomness here, and a fresh instance per call has nothing to protect, so a splitmix64 stream
/// seeded from a stack address is enough (no WASI random import needed).
#[cfg(target_arch = "wasm32")]
#[unsafe(no_mangle)]
unsafe extern "Rust" fn __getrandom_v03_custom(dest: *mut u8, len: usize) -> Result<(), getrandom::Error> {
    let mut state = &len as *const usize as u64 ^ 0x9e37_79b9_7f4a_7c15;
    for i in 0..len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        unsafe { *dest.add(i) = (z ^ (z >> 31)) as u8 };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyphae_plugin_sdk::json;

    fn handoff(requirements: Value) -> Value {
        json!({
            "version": "1.0",
            "target": { "agent_id": "a", "agent_type": "t", "requirements": requirements },
            "context": { "task_description": "x", "previous_results": [{"text": 3}] },
        })
    }

    #[test]
    fn validates() {
        let schema = json!({
            "type": "object",
            "required": ["previous_results"],
            "properties": { "previous_results": {
                "type": "array", "items": { "properties": { "text": { "type": "string" } } }
            } }
        });
        let ok = json!({ "schema": { "type": "object" }, "applies_to": "/context" });
        assert_eq!(SchemaValidator::validate(handoff(ok)), Ok(()));
        assert_eq!(SchemaValidator::validate(handoff(json!({}))), Ok(()));
        let bad = json!({ "schema": schema, "applies_to": "/context" });
        let issues = SchemaValidator::validate(handoff(bad)).unwrap_err();
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, "/context/previous_results/0/text");
        let missing = json!({ "schema": {}, "applies_to": "/nothing" });
        assert_eq!(SchemaValidator::validate(handoff(missing)).unwrap_err()[0].path, "/nothing");
    }
}
