//! Configuration of the agent type: the `[config]` table of its manifest (`NAME.toml` beside
//! `NAME.wasm`), read through `wasi:config/store`. Strings come as written; other TOML values
//! (numbers, booleans, arrays, tables) as JSON text. Keys `secret.NAME` hold secret placeholders
//! (see [`crate::secret`]).
//!
//! ```no_run
//! use hyphae_plugin_sdk::{config, TaskError};
//!
//! fn settings() -> Result<(), TaskError> {
//!     let model = config::require("model")?; // absent: fatal `missing_config`
//!     let temperature: Option<f64> = config::get("temperature").and_then(|t| t.parse().ok());
//!     Ok(())
//! }
//! ```
//!
//! Outside wasm (native unit tests) there is no configuration: [`get`] gives `None`.

use crate::TaskError;

/// The value of `key`, if the manifest sets it. A failing store is logged and gives `None`.
pub fn get(key: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    {
        match crate::bindings::wasi::config::store::get(key) {
            Ok(value) => value,
            Err(e) => {
                crate::log::warn!("config: reading {key:?} failed: {}", store_error(e));
                None
            }
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = key;
        None
    }
}

/// The value of `key`; absent: a fatal `missing_config` error saying where to set it.
pub fn require(key: &str) -> Result<String, TaskError> {
    get(key).ok_or_else(|| missing(key))
}

/// Every key and value, as the host lists them (secret placeholders included).
pub fn all() -> Vec<(String, String)> {
    #[cfg(target_arch = "wasm32")]
    {
        match crate::bindings::wasi::config::store::get_all() {
            Ok(pairs) => pairs,
            Err(e) => {
                crate::log::warn!("config: listing the configuration failed: {}", store_error(e));
                Vec::new()
            }
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        Vec::new()
    }
}

pub(crate) fn missing(key: &str) -> TaskError {
    let message = format!(
        "config key {key:?} is not set: add it under [config] in the agent type's manifest \
         (NAME.toml beside NAME.wasm), e.g. {key} = \"...\""
    );
    TaskError::fatal("missing_config", message).with_detail(serde_json::json!({ "key": key }))
}

#[cfg(target_arch = "wasm32")]
fn store_error(e: crate::bindings::wasi::config::store::Error) -> String {
    use crate::bindings::wasi::config::store::Error;
    match e {
        Error::Upstream(m) => format!("upstream: {m}"),
        Error::Io(m) => format!("io: {m}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_say_where_to_set_them() {
        let e = require("model").unwrap_err();
        assert_eq!((e.kind, e.error_type.as_str()), (crate::ErrorKind::Fatal, "missing_config"));
        assert!(e.message.contains("\"model\"") && e.message.contains("[config]"), "{}", e.message);
        assert!(all().is_empty());
    }
}
