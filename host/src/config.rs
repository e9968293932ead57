//! Host configuration: defaults, config file, environment and flags.
//!
//! Precedence, highest first: command-line flags, `HYPHAE_*` environment variables (both handled by
//! clap in [`crate::cli`]), the TOML file given with `--config`, and the defaults below.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::EngineConfig;
use crate::plugins::{HttpLimits, SecretSource};

/// Default body limit of JSON requests (10 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 << 20;
/// Default body limit of plugin uploads (100 MiB).
pub const DEFAULT_MAX_PLUGIN_BYTES: usize = 100 << 20;

/// Everything `hyphae serve` needs. Field names are the keys of the TOML config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Database: a SQLite file path, `sqlite://PATH`, or `postgres://...`.
    pub db: String,
    /// When a SQLite commit is on disk: `normal` (default; survives a crash of the host, the last
    /// commits may be lost on power loss) or `full` (synced per commit, survives power loss, slower).
    pub sqlite_synchronous: crate::store::SqliteSync,
    /// Directory of `*.wasm` plugins.
    pub plugins_dir: PathBuf,
    /// Directory of precompiled plugin artifacts (default: `$XDG_CACHE_HOME/hyphae` or
    /// `~/.cache/hyphae`).
    pub cache_dir: Option<PathBuf>,
    /// Total size, in MiB, the precompiled artifacts are kept under; the least recently used are
    /// removed first.
    pub plugin_cache_max_mib: u64,
    /// Linear-memory limit of one plugin call, in MiB, for agent types whose manifest sets no
    /// `memory_limit_mib`.
    pub plugin_memory_limit_mib: u64,
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Largest JSON request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest plugin upload, in bytes.
    pub max_plugin_bytes: usize,
    /// Tasks this host runs at once, over all workflows.
    pub max_concurrent_tasks: usize,
    /// Plugin instances alive at once (pool slots); calls past it wait for a free one. Agents
    /// waiting on the network each hold one.
    pub max_instances: u32,
    /// Seconds between heartbeats of this host.
    pub heartbeat_interval: f64,
    /// Missed heartbeats after which a worker counts as failed.
    pub miss_threshold: u32,
    /// Per-attempt timeout, in seconds, of tasks that set none.
    pub default_timeout: f64,
    /// Reload plugins when files in the plugins directory change.
    pub watch_plugins: bool,
    /// Log JSON lines instead of human-readable text.
    pub log_json: bool,
    /// Base URL of an OpenTelemetry collector's OTLP/HTTP endpoint (`http://127.0.0.1:4318`):
    /// spans of workflows, attempts, plugin calls and outbound requests are exported to its
    /// `/v1/traces` (JSON). None: no export.
    pub otlp_endpoint: Option<String>,
    /// Seconds an outbound request of a plugin may wait for its connection.
    pub outbound_connect_timeout: f64,
    /// Seconds one outbound request may take, response included (never past its attempt's deadline).
    pub outbound_request_timeout: f64,
    /// Largest request body a plugin may send, in bytes.
    pub outbound_max_request_bytes: usize,
    /// Largest response body a plugin may receive, in bytes.
    pub outbound_max_response_bytes: usize,
    /// MiB the linear memories of all plugin calls share; a call that grows past it waits (2 s at
    /// most) for room, then fails retryably. Default: the machine's memory.
    pub plugin_memory_budget_mib: Option<u64>,
    /// Longest message (and detail) of a plugin's error kept, in bytes; the rest is cut, marked.
    pub max_error_bytes: usize,
    /// Event streams (`/events/stream`) open at once on this host (past it: 503).
    pub max_event_streams: usize,
    /// Event streams open at once from one client address (past it: 429).
    pub max_event_streams_per_client: usize,
    /// HTTP connections held open at once; past it a connection is answered 503. Default: half
    /// the descriptor limit (raised to its hard limit at start), at most 8,192.
    pub max_connections: Option<usize>,
    /// Seconds a response write may wait for its client to read before the connection is closed
    /// (a watcher that stopped reading its event stream, say).
    pub client_write_timeout: f64,
    /// PEM file of certificate authorities trusted for plugins' outbound HTTPS, besides the
    /// bundled Mozilla roots (a company CA, a local test CA).
    pub outbound_ca_file: Option<PathBuf>,
    /// PEM certificate chain (leaf first) to serve HTTPS with; needs `tls_key_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Submissions one token may make per host: `{ per_s, burst }`; `per_s = 0`: unlimited.
    pub submission_rate: crate::api::Rate,
    /// Control calls (pause, resume, cancel, rollback, budget) one token may make per host.
    pub control_rate: crate::api::Rate,
    /// Serve without checking tokens, on any address. Only for a network you trust entirely:
    /// anyone who reaches the port may then replace plugins and delete history.
    pub insecure_no_auth: bool,
    /// Serve `/metrics` without a token (default: it needs a token of any role, as Prometheus
    /// sends with `authorization: credentials_file`).
    pub public_metrics: bool,
    /// Secrets agent manifests may grant: `[secrets.NAME]` with `env` or `file`, and `hosts`.
    pub secrets: BTreeMap<String, SecretSource>,
}

impl Default for Config {
    fn default() -> Self {
        let engine = EngineConfig::default();
        let http = HttpLimits::default();
        Config {
            db: "hyphae.db".into(),
            sqlite_synchronous: crate::store::SqliteSync::Normal,
            plugins_dir: PathBuf::from("plugins/dist"),
            cache_dir: None,
            plugin_cache_max_mib: crate::plugins::DEFAULT_CACHE_MAX_BYTES >> 20,
            plugin_memory_limit_mib: (crate::plugins::DEFAULT_MEMORY_LIMIT >> 20) as u64,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_plugin_bytes: DEFAULT_MAX_PLUGIN_BYTES,
            max_concurrent_tasks: engine.max_concurrent_tasks,
            max_instances: crate::plugins::DEFAULT_MAX_INSTANCES,
            heartbeat_interval: engine.heartbeat_interval.as_secs_f64(),
            miss_threshold: engine.miss_threshold,
            default_timeout: engine.default_timeout.as_secs_f64(),
            watch_plugins: true,
            log_json: false,
            otlp_endpoint: None,
            outbound_connect_timeout: http.connect_timeout.as_secs_f64(),
            outbound_request_timeout: http.request_timeout.as_secs_f64(),
            outbound_max_request_bytes: http.max_request_bytes,
            outbound_max_response_bytes: http.max_response_bytes,
            max_connections: None,
            client_write_timeout: 30.0,
            max_event_streams: 1024,
            max_error_bytes: crate::plugins::DEFAULT_MAX_ERROR_BYTES,
            max_event_streams_per_client: 32,
            plugin_memory_budget_mib: None,
            outbound_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            submission_rate: crate::api::Rate { per_s: 500.0, burst: 1000.0 },
            control_rate: crate::api::Rate { per_s: 100.0, burst: 200.0 },
            insecure_no_auth: false,
            public_metrics: false,
            secrets: BTreeMap::new(),
        }
    }
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{path}`: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file `{path}` is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting `{key}`: {problem}")]
    Invalid { key: &'static str, problem: String },
}

impl Config {
    /// The defaults overlaid with the TOML file at `path`, if given.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse { path: path.to_path_buf(), message })
    }

    /// Parse a TOML config (keys absent from the text keep their defaults).
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    /// Check values that parse but cannot work.
    pub fn check(&self) -> Result<(), ConfigError> {
        let positive = |key, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(ConfigError::Invalid { key, problem: format!("{v} is not a number of seconds > 0") })
            }
        };
        positive("heartbeat_interval", self.heartbeat_interval)?;
        positive("default_timeout", self.default_timeout)?;
        positive("outbound_connect_timeout", self.outbound_connect_timeout)?;
        positive("outbound_request_timeout", self.outbound_request_timeout)?;
        positive("client_write_timeout", self.client_write_timeout)?;
        if let Some(url) = &self.otlp_endpoint {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                let problem = format!(
                    "`{url}` is not an http(s) URL: write the collector's base URL, e.g. http://127.0.0.1:4318"
                );
                return Err(ConfigError::Invalid { key: "otlp_endpoint", problem });
            }
        }
        if self.miss_threshold < 2 {
            return Err(ConfigError::Invalid { key: "miss_threshold", problem: "must be at least 2".into() });
        }
        if self.max_instances == 0 {
            return Err(ConfigError::Invalid { key: "max_instances", problem: "must be at least 1".into() });
        }
        if self.plugin_memory_limit_mib == 0 || self.plugin_memory_limit_mib > 65536 {
            return Err(ConfigError::Invalid {
                key: "plugin_memory_limit_mib",
                problem: "write a number of MiB from 1 to 65536, e.g. 128".into(),
            });
        }
        if self.plugin_memory_budget_mib == Some(0) {
            return Err(ConfigError::Invalid { key: "plugin_memory_budget_mib", problem: "must be at least 1".into() });
        }
        if self.max_event_streams == 0 || self.max_event_streams_per_client == 0 {
            return Err(ConfigError::Invalid {
                key: "max_event_streams/max_event_streams_per_client",
                problem: "must be at least 1".into(),
            });
        }
        if self.max_connections == Some(0) {
            return Err(ConfigError::Invalid { key: "max_connections", problem: "must be at least 1".into() });
        }
        if self.max_concurrent_tasks == 0 {
            return Err(ConfigError::Invalid { key: "max_concurrent_tasks", problem: "must be at least 1".into() });
        }
        if self.max_body_bytes < 1024 || self.max_plugin_bytes < 1024 {
            return Err(ConfigError::Invalid {
                key: "max_body_bytes/max_plugin_bytes",
                problem: "body limits must be at least 1024 bytes".into(),
            });
        }
        for (key, rate) in [("submission_rate", self.submission_rate), ("control_rate", self.control_rate)] {
            if !(rate.per_s.is_finite() && rate.per_s >= 0.0 && rate.burst.is_finite() && rate.burst >= 1.0) {
                let problem = "give per_s >= 0 (0: unlimited) and burst >= 1".into();
                return Err(ConfigError::Invalid { key, problem });
            }
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(ConfigError::Invalid {
                key: "tls_cert_file/tls_key_file",
                problem: "HTTPS needs both the certificate chain and its key: give both, or neither".into(),
            });
        }
        if self.db.trim().is_empty() {
            return Err(ConfigError::Invalid { key: "db", problem: "give a SQLite file or a postgres:// url".into() });
        }
        Ok(())
    }

    /// Limits of plugins' outbound HTTP requests.
    pub fn http_limits(&self) -> HttpLimits {
        HttpLimits {
            connect_timeout: Duration::from_secs_f64(self.outbound_connect_timeout),
            request_timeout: Duration::from_secs_f64(self.outbound_request_timeout),
            max_request_bytes: self.outbound_max_request_bytes,
            max_response_bytes: self.outbound_max_response_bytes,
        }
    }

    /// Whether the database is PostgreSQL (shared by several hosts).
    pub fn is_postgres(&self) -> bool {
        self.db.starts_with("postgres://") || self.db.starts_with("postgresql://")
    }

    /// Engine settings derived from this configuration. SQLite is exclusive to one host;
    /// PostgreSQL may be shared.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            max_concurrent_tasks: self.max_concurrent_tasks,
            claim_batch: self.max_concurrent_tasks.clamp(1, 256),
            heartbeat_interval: Duration::from_secs_f64(self.heartbeat_interval),
            miss_threshold: self.miss_threshold,
            default_timeout: Duration::from_secs_f64(self.default_timeout),
            exclusive: !self.is_postgres(),
            ..EngineConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_unknown_keys_are_refused() {
        let c = Config::from_toml("db = \"x.db\"\nlisten = \"0.0.0.0:9000\"\n").unwrap();
        assert_eq!(c.db, "x.db");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.plugins_dir, PathBuf::from("plugins/dist"));
        let err = Config::from_toml("dbb = 1").unwrap_err();
        assert!(err.contains("dbb"), "{err}");
    }

    #[test]
    fn sqlite_durability_is_a_key_of_the_file() {
        assert_eq!(Config::default().sqlite_synchronous, crate::store::SqliteSync::Normal);
        let config = Config::from_toml("sqlite_synchronous = \"full\"").unwrap();
        assert_eq!(config.sqlite_synchronous, crate::store::SqliteSync::Full);
        assert!(Config::from_toml("sqlite_synchronous = \"extra\"").is_err());
    }

    #[test]
    fn postgres_is_not_exclusive() {
        let c = Config { db: "postgres://u@h/db".into(), ..Config::default() };
        assert!(!c.engine_config().exclusive);
        assert!(Config::default().engine_config().exclusive);
        assert!(Config { heartbeat_interval: 0.0, ..Config::default() }.check().is_err());
    }

    #[test]
    fn secrets_are_tables_of_the_config_file() {
        let c = Config::from_toml("[secrets.openai]\nenv = \"OPENAI_API_KEY\"\nhosts = [\"https://api.openai.com\"]\n")
            .unwrap();
        assert_eq!(c.secrets["openai"].env.as_deref(), Some("OPENAI_API_KEY"));
        let err = Config::from_toml("[secrets.openai]\nenvv = \"X\"\nhosts = []\n").unwrap_err();
        assert!(err.contains("envv"), "{err}");
    }
}
