//! The one nesting rule for JSON documents the host stores and hands on (inputs, variables,
//! context, metadata, outputs): at most [`MAX_DEPTH`] levels. JSON parsers stop at 128 levels
//! (serde_json's, in the host and in guests), and the host embeds documents a few levels down in
//! handoffs and contexts, so the rule leaves room: what is accepted can always be read back.

use serde_json::Value;

/// Most levels of arrays and objects in one document.
pub const MAX_DEPTH: usize = 100;

/// Levels of arrays and objects in JSON text (its syntax already checked).
pub fn text_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Levels of arrays and objects in a parsed document.
pub fn value_depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(value_depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(value_depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}\"]}}[{{\"{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn text_and_value_depths_agree() {
        for text in [r#"1"#, r#"[]"#, r#"{"a": [1, {"b": "[[[{{"}]}"#, r#"["\"[", {"k": "\\"}]"#] {
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(text_depth(text), value_depth(&value), "{text}");
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(text_depth(&deep), MAX_DEPTH + 1);
        assert_eq!(text_depth(&nested(3)), 3, "brackets inside strings do not count");
    }
}
