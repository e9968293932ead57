//! Agent manifests: `NAME.toml` beside `NAME.wasm` says what the agent type may do (Spin's
//! vocabulary). Without a manifest, nothing is granted: no network, no secrets, no config.
//!
//! ```toml
//! allowed_outbound_hosts = ["https://api.openai.com", "http://127.0.0.1:11434", "https://*.example.com"]
//! secrets = ["openai"]          # secrets defined by the operator in the host configuration
//! memory_limit_mib = 128        # linear memory of one call
//! timeout_s = 120               # per attempt, for tasks that set no timeout
//! max_concurrency = 4           # calls of this agent type at once on one host
//! [config]                      # plain values the plugin reads through wasi:config/store
//! model = "gpt-4o-mini"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secrets::Secrets;

/// What an agent type is allowed, from its manifest (or the defaults: nothing).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Policy {
    /// Origins outbound HTTP requests may go to; empty: no network.
    pub allowed_outbound_hosts: Vec<HostPattern>,
    /// Names of the operator's secrets whose placeholders the plugin may use.
    pub secrets: Vec<String>,
    /// Plain values the plugin may read (`wasi:config/store`).
    pub config: BTreeMap<String, String>,
    /// Linear-memory limit of one call, in MiB (the host default when absent).
    pub memory_limit_mib: Option<u64>,
    /// Per-attempt time limit, in seconds, of tasks that set none (the host default when absent).
    pub timeout_s: Option<f64>,
    /// Most calls of this agent type at once on one host (unbounded when absent).
    pub max_concurrency: Option<u32>,
}

impl Policy {
    /// The first allow-list entry that admits a request to this origin.
    pub fn allowing(&self, scheme: Scheme, host: &str, port: u16) -> Option<&HostPattern> {
        self.allowed_outbound_hosts.iter().find(|p| p.matches(scheme, host, port))
    }

    /// The per-attempt time limit, when the manifest sets one.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_s.map(Duration::from_secs_f64)
    }
}

/// The raw keys of a manifest file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    config: toml::Table,
    memory_limit_mib: Option<i64>,
    timeout_s: Option<f64>,
    max_concurrency: Option<i64>,
}

/// A manifest that cannot be used: which file, which key, what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("manifest `{file}`: {problem}")]
pub struct ManifestError {
    pub file: String,
    pub problem: String,
}

/// Parses manifest text into a policy, checking every key (secret names against those the
/// operator defined, when `secrets` is given).
pub fn parse(file: &str, text: &str, secrets: Option<&Secrets>) -> Result<Policy, ManifestError> {
    let error = |problem: String| ManifestError { file: file.to_string(), problem };
    let raw: Raw = toml::from_str(text).map_err(|e| error(toml_problem(&e)))?;
    let mut allowed = Vec::new();
    for (i, entry) in raw.allowed_outbound_hosts.iter().enumerate() {
        let pattern = entry
            .parse::<HostPattern>()
            .map_err(|why| error(format!("`allowed_outbound_hosts[{i}]` = {entry:?}: {why}")))?;
        allowed.push(pattern);
    }
    for (i, name) in raw.secrets.iter().enumerate() {
        let Some(secrets) = secrets else { continue };
        if !secrets.contains(name) {
            let defined = secrets.names();
            let defined = if defined.is_empty() { "none".to_string() } else { defined.join(", ") };
            return Err(error(format!(
                "`secrets[{i}]` = {name:?}: the host configuration defines no secret of that name \
                 (defined: {defined}); add `[secrets.{name}]` with `env` or `file` and `hosts` to the \
                 host configuration, or fix the name"
            )));
        }
    }
    let mut config = BTreeMap::new();
    for (key, value) in raw.config {
        let text = match value {
            toml::Value::String(s) => s,
            other => serde_json::to_string(&other).map_err(|e| error(format!("`config.{key}`: {e}")))?,
        };
        config.insert(key, text);
    }
    let memory_limit_mib = match raw.memory_limit_mib {
        Some(m) if !(1..=65_536).contains(&m) => {
            return Err(error(format!("`memory_limit_mib` = {m}: write a number of MiB from 1 to 65536, e.g. 128")))
        }
        m => m.map(|m| m as u64),
    };
    if let Some(t) = raw.timeout_s {
        if !(t.is_finite() && t > 0.0 && t <= 7.0 * 86_400.0) {
            return Err(error(format!("`timeout_s` = {t}: write a number of seconds > 0 (at most a week), e.g. 120")));
        }
    }
    let max_concurrency = match raw.max_concurrency {
        Some(n) if !(1..=1_000_000).contains(&n) => {
            return Err(error(format!("`max_concurrency` = {n}: write a number of calls at once >= 1, e.g. 4")))
        }
        n => n.map(|n| n as u32),
    };
    Ok(Policy {
        allowed_outbound_hosts: allowed,
        secrets: raw.secrets,
        config,
        memory_limit_mib,
        timeout_s: raw.timeout_s,
        max_concurrency,
    })
}

/// toml's message, on one line, with a hint for the common mistakes.
fn toml_problem(e: &toml::de::Error) -> String {
    let message = e.message().trim_end().to_string();
    let at = e.span().map(|s| format!(" (at byte {})", s.start)).unwrap_or_default();
    let hint = if message.contains("unknown field") {
        "; the keys are allowed_outbound_hosts, secrets, memory_limit_mib, timeout_s, max_concurrency \
         and the [config] table"
    } else {
        ""
    };
    format!("{message}{at}{hint}")
}

/// URL scheme of an outbound request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// The port a URL of this scheme uses when it names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// `http` or `https`, case-insensitively.
    pub fn parse(s: &str) -> Option<Scheme> {
        if s.eq_ignore_ascii_case("http") {
            Some(Scheme::Http)
        } else if s.eq_ignore_ascii_case("https") {
            Some(Scheme::Https)
        } else {
            None
        }
    }
}

/// One entry of `allowed_outbound_hosts`: scheme, host (an exact name or address, or `*.` and a
/// domain for its subdomains) and port (the scheme's default when not written).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    pub scheme: Scheme,
    /// Lower-case host; IPv6 addresses keep their brackets.
    pub host: String,
    /// `*.example.com`: any subdomain of `host`, not `host` itself.
    pub subdomains: bool,
    pub port: u16,
}

impl HostPattern {
    /// Whether a request to `scheme://host:port` is admitted.
    pub fn matches(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        if scheme != self.scheme || port != self.port {
            return false;
        }
        let host = host.trim_end_matches('.');
        if !self.subdomains {
            return host.eq_ignore_ascii_case(&self.host);
        }
        host.len() > self.host.len() + 1
            && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
            && host[host.len() - self.host.len()..].eq_ignore_ascii_case(&self.host)
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let star = if self.subdomains { "*." } else { "" };
        write!(f, "{}://{star}{}", self.scheme.as_str(), self.host)?;
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

impl Serialize for HostPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

const EXAMPLE: &str = "write a scheme, a host and an optional port, e.g. \"https://api.openai.com\", \
                       \"http://127.0.0.1:11434\" or \"https://*.example.com\"";

impl std::str::FromStr for HostPattern {
    type Err = String;

    fn from_str(entry: &str) -> Result<HostPattern, String> {
        let (scheme, rest) = entry.split_once("://").ok_or_else(|| format!("no scheme: {EXAMPLE}"))?;
        let scheme = Scheme::parse(scheme)
            .ok_or_else(|| format!("scheme `{scheme}` is not supported (use http or https): {EXAMPLE}"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(format!("only an origin is allowed, without path, query or user: {EXAMPLE}"));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| format!("the port is not a number: {EXAMPLE}"))?;
        let (subdomains, host) = match host.strip_prefix("*.") {
            Some(domain) => (true, domain),
            None => (false, host),
        };
        if host.is_empty() || host.contains('*') || !host_chars_ok(host) {
            return Err(format!("`{host}` is not a host name or address (`*` only as a leading `*.`): {EXAMPLE}"));
        }
        Ok(HostPattern {
            scheme,
            host: host.to_ascii_lowercase(),
            subdomains,
            port: port.unwrap_or(scheme.default_port()),
        })
    }
}

/// Splits `host[:port]` (IPv6 in brackets); `None` when the port is not a number.
pub(crate) fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let port_at = if authority.starts_with('[') {
        authority.find(']').map(|end| end + 1).filter(|&i| authority[i..].starts_with(':'))
    } else {
        authority.rfind(':')
    };
    match port_at {
        Some(i) => authority[i + 1..].parse::<u16>().ok().map(|p| (&authority[..i], Some(p))),
        None => Some((authority, None)),
    }
}

fn host_chars_ok(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(s: &str) -> HostPattern {
        s.parse().unwrap()
    }

    #[test]
    fn patterns_match_scheme_host_and_port() {
        let p = pattern("https://api.openai.com");
        assert!(p.matches(Scheme::Https, "api.openai.com", 443));
        assert!(p.matches(Scheme::Https, "API.OpenAI.com", 443));
        assert!(!p.matches(Scheme::Http, "api.openai.com", 443));
        assert!(!p.matches(Scheme::Https, "api.openai.com", 8443));
        assert!(!p.matches(Scheme::Https, "evil-api.openai.com", 443));
        let p = pattern("http://127.0.0.1:11434");
        assert!(p.matches(Scheme::Http, "127.0.0.1", 11434));
        assert!(!p.matches(Scheme::Http, "127.0.0.1", 80));
        let p = pattern("https://*.example.com");
        assert!(p.matches(Scheme::Https, "a.example.com", 443));
        assert!(p.matches(Scheme::Https, "a.b.example.com", 443));
        assert!(!p.matches(Scheme::Https, "example.com", 443));
        assert!(!p.matches(Scheme::Https, "badexample.com", 443));
        let p = pattern("http://[::1]:8080/");
        assert!(p.matches(Scheme::Http, "[::1]", 8080));
        assert_eq!(p.to_string(), "http://[::1]:8080");
        assert_eq!(pattern("HTTPS://Api.Example.com:443").to_string(), "https://api.example.com");
    }

    #[test]
    fn bad_patterns_say_what_to_write() {
        for bad in [
            "api.openai.com",
            "ftp://x.com",
            "https://x.com/v1",
            "https://x.com:port",
            "https://a.*.com",
            "https://",
            "https://user@x.com",
            "https://[zz]:1",
        ] {
            let err = bad.parse::<HostPattern>().unwrap_err();
            assert!(err.contains("e.g. \"https://api.openai.com\""), "{bad}: {err}");
        }
    }

    #[test]
    fn manifests_are_parsed_and_checked_key_by_key() {
        let secrets = Secrets::for_tests(&[("openai", "sk-test", &["https://api.openai.com"])]);
        let text = r#"
            allowed_outbound_hosts = ["https://api.openai.com", "http://127.0.0.1:11434"]
            secrets = ["openai"]
            memory_limit_mib = 128
            timeout_s = 2.5
            max_concurrency = 4
            [config]
            model = "gpt-4o-mini"
            temperature = 0.5
            stop = ["a", "b"]
        "#;
        let p = parse("llm.toml", text, Some(&secrets)).unwrap();
        assert_eq!(p.allowed_outbound_hosts.len(), 2);
        assert_eq!(p.config["model"], "gpt-4o-mini");
        assert_eq!(p.config["temperature"], "0.5");
        assert_eq!(p.config["stop"], r#"["a","b"]"#);
        assert_eq!(p.timeout(), Some(Duration::from_millis(2500)));
        assert_eq!((p.memory_limit_mib, p.max_concurrency), (Some(128), Some(4)));
        assert_eq!(parse("e.toml", "", Some(&secrets)).unwrap(), Policy::default());
        assert!(parse("e.toml", "secrets = [\"opnai\"]", None).is_ok(), "names unchecked without secrets");

        let err = |text: &str| parse("llm.toml", text, Some(&secrets)).unwrap_err().to_string();
        assert!(err("alowed_outbound_hosts = []").contains("unknown field `alowed_outbound_hosts`"));
        assert!(err("allowed_outbound_hosts = [\"api.x.com\"]").contains("`allowed_outbound_hosts[0]`"));
        let unknown = err("secrets = [\"opnai\"]");
        assert!(unknown.contains("`secrets[0]` = \"opnai\"") && unknown.contains("defined: openai"), "{unknown}");
        assert!(err("memory_limit_mib = 0").contains("`memory_limit_mib` = 0"));
        assert!(err("timeout_s = -1.0").contains("`timeout_s`"));
        assert!(err("max_concurrency = 0").contains("`max_concurrency`"));
        assert!(err("timeout_s = \"fast\"").starts_with("manifest `llm.toml`: invalid type"));
    }
}
