//! Secrets: a plugin never sees a secret's value, only a *placeholder* (an opaque string). Write
//! the placeholder where the value belongs (a header, the body); the host puts the real value in
//! place only in requests to the origins the operator bound the secret to.
//!
//! ```no_run
//! use hyphae_plugin_sdk::{http, secret, TaskError};
//!
//! fn call() -> Result<http::Response, TaskError> {
//!     let key = secret::placeholder("openai")?;
//!     Ok(http::get("https://api.openai.com/v1/models").header("authorization", format!("Bearer {key}")).send()?)
//! }
//! ```
//!
//! The agent type's manifest lists the secrets it may use (`secrets = ["openai"]`); the host
//! configuration defines them (`[secrets.openai]` with `env` or `file`, and `hosts`).

use crate::TaskError;

/// The placeholder of secret `name` (config key `secret.NAME`); absent: a fatal
/// `missing_secret` error saying what to add to the manifest and the host configuration.
pub fn placeholder(name: &str) -> Result<String, TaskError> {
    crate::config::get(&format!("secret.{name}")).ok_or_else(|| missing(name))
}

fn missing(name: &str) -> TaskError {
    let message = format!(
        "secret {name:?} is not granted: add `secrets = [\"{name}\"]` to the agent type's manifest \
         (NAME.toml beside NAME.wasm) and define [secrets.{name}] (env or file, and hosts) in the \
         host configuration"
    );
    TaskError::fatal("missing_secret", message).with_detail(serde_json::json!({ "secret": name }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_secrets_say_how_to_grant_them() {
        let e = placeholder("openai").unwrap_err();
        assert_eq!((e.kind, e.error_type.as_str()), (crate::ErrorKind::Fatal, "missing_secret"));
        assert!(e.message.contains("secrets = [\"openai\"]"), "{}", e.message);
    }
}
