//! Secrets: defined only by the operator (host configuration), each bound to the origins it may be
//! sent to. A plugin only ever holds a placeholder; the host puts the value into requests to the
//! secret's hosts and nowhere else, and takes it out of what those hosts answer.
//!
//! ```toml
//! [secrets.openai]
//! env = "OPENAI_API_KEY"              # or: file = "/run/secrets/openai"
//! hosts = ["https://api.openai.com"]
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::manifest::{HostPattern, Scheme};

/// Shortest secret value accepted: shorter ones could not be told apart from ordinary text when
/// they are taken out of responses.
pub const MIN_SECRET_BYTES: usize = 8;

/// Where the value of a secret comes from, and where it may be sent (a key of the host
/// configuration's `[secrets.NAME]` tables).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// Environment variable holding the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// File holding the value (a trailing newline is dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Origins the value may be sent to, in the syntax of `allowed_outbound_hosts`.
    pub hosts: Vec<String>,
}

/// Why the secrets of the host configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret `{name}`: {problem}")]
pub struct SecretError {
    pub name: String,
    pub problem: String,
}

/// One secret: its value, the origins it is bound to, and the placeholder plugins use for it.
pub(crate) struct Secret {
    pub name: String,
    pub placeholder: String,
    pub hosts: Vec<HostPattern>,
    value: String,
}

impl Secret {
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret").field("name", &self.name).field("hosts", &self.hosts).finish_non_exhaustive()
    }
}

/// The operator's secrets, loaded once at start. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    by_name: Arc<BTreeMap<String, Arc<Secret>>>,
}

impl Secrets {
    /// Reads every secret's value and checks its hosts; an unset variable, an unreadable file or
    /// a bad host is an error naming the secret and what to do.
    pub fn load(sources: &BTreeMap<String, SecretSource>) -> Result<Secrets, SecretError> {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let mut by_name = BTreeMap::new();
        for (name, source) in sources {
            let error = |problem: String| SecretError { name: name.clone(), problem };
            if !super::valid_agent_type(name) {
                return Err(error("a secret name uses letters, digits, `-` and `_` only".into()));
            }
            let value = read_value(source).map_err(error)?;
            if value.len() < MIN_SECRET_BYTES {
                return Err(error(format!(
                    "the value has {} bytes; secrets shorter than {MIN_SECRET_BYTES} bytes are refused",
                    value.len()
                )));
            }
            if source.hosts.is_empty() {
                return Err(error(
                    "`hosts` is empty: name the origins it may be sent to, e.g. \
                                  hosts = [\"https://api.openai.com\"]"
                        .into(),
                ));
            }
            let hosts = source
                .hosts
                .iter()
                .enumerate()
                .map(|(i, h)| h.parse::<HostPattern>().map_err(|why| error(format!("`hosts[{i}]` = {h:?}: {why}"))))
                .collect::<Result<Vec<_>, _>>()?;
            let placeholder = format!("hyphae-secret-{name}-{}", &nonce[..16]);
            by_name.insert(name.clone(), Arc::new(Secret { name: name.clone(), placeholder, hosts, value }));
        }
        Ok(Secrets { by_name: Arc::new(by_name) })
    }

    /// Whether a secret of this name is defined.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Names of the defined secrets, sorted.
    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<Secret>> {
        self.by_name.get(name)
    }

    /// The granted secrets that may be sent to `scheme://host:port`.
    pub(crate) fn bound_to(&self, granted: &[String], scheme: Scheme, host: &str, port: u16) -> Vec<Arc<Secret>> {
        granted
            .iter()
            .filter_map(|name| self.by_name.get(name))
            .filter(|s| s.hosts.iter().any(|h| h.matches(scheme, host, port)))
            .cloned()
            .collect()
    }

    /// Secrets with fixed values, for tests.
    #[doc(hidden)]
    pub fn for_tests(list: &[(&str, &str, &[&str])]) -> Secrets {
        let by_name = list
            .iter()
            .map(|(name, value, hosts)| {
                let secret = Secret {
                    name: name.to_string(),
                    placeholder: format!("hyphae-secret-{name}-test"),
                    hosts: hosts.iter().map(|h| h.parse().expect("host pattern")).collect(),
                    value: value.to_string(),
                };
                (name.to_string(), Arc::new(secret))
            })
            .collect();
        Secrets { by_name: Arc::new(by_name) }
    }
}

fn read_value(source: &SecretSource) -> Result<String, String> {
    match (&source.env, &source.file) {
        (Some(var), None) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(v),
            Ok(_) => Err(format!("environment variable `{var}` is empty: set it to the secret's value")),
            Err(_) => Err(format!("environment variable `{var}` is not set: set it to the secret's value")),
        },
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(v) => Ok(v.strip_suffix('\n').map(|v| v.strip_suffix('\r').unwrap_or(v)).unwrap_or(&v).to_string()),
            Err(e) => Err(format!("cannot read `{}`: {e}", path.display())),
        },
        _ => Err("give exactly one of `env = \"VARIABLE\"` or `file = \"PATH\"`".into()),
    }
}

/// Replaces every occurrence of `from` in `bytes` by `to`; `None` when there is none.
pub(crate) fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    let finder = memchr::memmem::Finder::new(from);
    let mut found = finder.find_iter(bytes).peekable();
    found.peek()?;
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for i in found {
        out.extend_from_slice(&bytes[at..i]);
        out.extend_from_slice(to);
        at = i + from.len();
    }
    out.extend_from_slice(&bytes[at..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_load_from_env_and_file_and_refuse_what_cannot_work() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "file-secret-value\n").unwrap();
        std::env::set_var("HYPHAE_TEST_SECRET_A", "env-secret-value");
        let source = |env: Option<&str>, file: Option<PathBuf>, hosts: &[&str]| SecretSource {
            env: env.map(String::from),
            file,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        };
        let mut sources = BTreeMap::new();
        sources.insert("a".to_string(), source(Some("HYPHAE_TEST_SECRET_A"), None, &["https://a.example"]));
        sources.insert("b".to_string(), source(None, Some(file), &["http://127.0.0.1:9"]));
        let secrets = Secrets::load(&sources).unwrap();
        assert_eq!(secrets.get("a").unwrap().value(), "env-secret-value");
        assert_eq!(secrets.get("b").unwrap().value(), "file-secret-value");
        assert!(secrets.get("a").unwrap().placeholder.starts_with("hyphae-secret-a-"));
        assert!(!format!("{secrets:?}").contains("secret-value"));
        let granted = ["a".to_string(), "b".to_string()];
        let bound = secrets.bound_to(&granted, Scheme::Https, "a.example", 443);
        assert_eq!(bound.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["a"]);
        assert!(secrets.bound_to(&granted[1..], Scheme::Https, "a.example", 443).is_empty());

        let refused = |s: SecretSource| Secrets::load(&BTreeMap::from([("k".to_string(), s)])).unwrap_err().to_string();
        let unset = refused(source(Some("HYPHAE_TEST_SECRET_UNSET"), None, &["https://a.example"]));
        assert!(unset.contains("`HYPHAE_TEST_SECRET_UNSET` is not set"), "{unset}");
        assert!(refused(source(None, None, &["https://a.example"])).contains("exactly one of"));
        assert!(refused(source(Some("HYPHAE_TEST_SECRET_A"), None, &[])).contains("`hosts` is empty"));
        assert!(refused(source(Some("HYPHAE_TEST_SECRET_A"), None, &["a.example"])).contains("`hosts[0]`"));
        std::env::set_var("HYPHAE_TEST_SECRET_SHORT", "short");
        assert!(refused(source(Some("HYPHAE_TEST_SECRET_SHORT"), None, &["https://a.example"])).contains("5 bytes"));
    }

    #[test]
    fn replace_all_replaces_every_occurrence() {
        assert_eq!(replace_all(b"a PH b PH", b"PH", b"value").unwrap(), b"a value b value");
        assert_eq!(replace_all(b"nothing", b"PH", b"value"), None);
    }
}
