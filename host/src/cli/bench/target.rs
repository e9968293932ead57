//! The host the workloads run on: one this command starts (see [`super::child`]), or a running
//! one given with `--url`; waiting until it is ready and checking it has the agent types needed.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::Value;

use super::child::OwnHost;
use super::BenchArgs;
use crate::cli::client::{Api, HostUrl};
use crate::cli::exit::Failure;

/// How long a started host may take to become ready (the first start compiles the plugins).
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a host given with `--url` may take to become ready.
const URL_TIMEOUT: Duration = Duration::from_secs(10);

/// What the figures were measured on.
#[derive(Debug, Clone, Serialize)]
pub(super) struct TargetInfo {
    pub url: String,
    /// Whether the bench started the host.
    pub own_host: bool,
    /// The host's database dialect (`sqlite`, `postgres`), as its `/readyz` reports it.
    pub database: String,
    /// The database given with `--database` (a password hidden).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

/// The host under measurement and a client of its API.
pub(super) struct Target {
    pub api: Api,
    own: Option<OwnHost>,
    database_url: Option<String>,
}

impl Target {
    /// Start a host (or, with `--url`, only make a client of the one given).
    pub async fn start(args: &BenchArgs) -> Result<Target, Failure> {
        let (url, own) = match &args.url {
            Some(url) => (url.clone(), None),
            None => {
                let own = OwnHost::spawn(args)?;
                (own.url.clone(), Some(own))
            }
        };
        let api = Api::new(&HostUrl { url, token: args.token.clone(), ca_file: None, json: false }, None)?;
        Ok(Target { api, own, database_url: args.database.as_deref().map(crate::store::redact_url) })
    }

    /// Wait until the host is ready with the agent types `needed` loaded; what it is and its version.
    pub async fn ready(&self, needed: &[&str]) -> Result<(TargetInfo, String), Failure> {
        let database = self.wait_ready(needed).await?;
        self.check_plugins(needed).await?;
        let (_, health) = self.api.call(Method::GET, "/healthz", None).await?;
        let version = health["version"].as_str().unwrap_or("(unknown)").to_string();
        let info = TargetInfo {
            url: self.api.base.clone(),
            own_host: self.own.is_some(),
            database,
            database_url: self.database_url.clone(),
        };
        if self.database_url.is_some() {
            self.warn_if_not_fresh().await;
        }
        Ok((info, version))
    }

    /// Stop the host if the bench started it.
    pub async fn stop(self) {
        if let Some(own) = self.own {
            own.stop().await;
        }
    }

    /// Poll `/readyz` until it answers 200, or the database answers and the agent types the bench
    /// needs are loaded (another plugin file that fails to load does not matter here). Returns
    /// the database dialect.
    async fn wait_ready(&self, needed: &[&str]) -> Result<String, Failure> {
        let limit = if self.own.is_some() { START_TIMEOUT } else { URL_TIMEOUT };
        let deadline = Instant::now() + limit;
        loop {
            if let Some(own) = &self.own {
                own.check_running()?;
            }
            let last = match self.api.send(Method::GET, "/readyz", None).await {
                Ok(resp) => {
                    let status = resp.status();
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    let db = &body["components"]["database"];
                    let dialect = db["detail"]["dialect"].as_str().unwrap_or("unknown").to_string();
                    if status == StatusCode::OK || (db["status"] == "ok" && self.missing(needed).await.is_empty()) {
                        return Ok(dialect);
                    }
                    not_ready(&body)
                }
                Err(f) if self.own.is_none() => {
                    let hint = "(without --url, `hyphae bench` starts a host of its own)";
                    return Err(Failure::new(f.code, format!("{} {hint}", f.message)));
                }
                Err(_) => "it does not answer yet".to_string(),
            };
            if Instant::now() > deadline {
                return Err(Failure::unavailable(format!(
                    "the host at {} is not ready after {} s: {last}{}",
                    self.api.base,
                    limit.as_secs(),
                    self.own.as_ref().map(OwnHost::log_tail).unwrap_or_default()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The agent types of `needed` that no loaded executor serves (all of them when the list
    /// cannot be read).
    async fn missing<'a>(&self, needed: &[&'a str]) -> Vec<&'a str> {
        let Ok((_, list)) = self.api.call(Method::GET, "/v1/plugins?limit=1000", None).await else {
            return needed.to_vec();
        };
        let serves = |t: &str| {
            list["items"].as_array().into_iter().flatten().any(|p| {
                p["agent_type"] == t
                    && p["state"] == "loaded"
                    && p["roles"].as_array().is_some_and(|r| r.iter().any(|r| r == "executor"))
            })
        };
        needed.iter().copied().filter(|t| !serves(t)).collect()
    }

    /// A failure naming the agent types the host lacks, and how to provide them.
    async fn check_plugins(&self, needed: &[&str]) -> Result<(), Failure> {
        let missing = self.missing(needed).await;
        let Some(first) = missing.first() else { return Ok(()) };
        let names = missing.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(" and ");
        let how = match &self.own {
            Some(own) => format!(
                "build the example plugins with `plugins/build.sh` (into plugins/dist), or give a directory \
                 holding {first}.wasm with --plugins (the host used `{}`)",
                own.plugins.display()
            ),
            None => format!(
                "load it into that host: build the example plugins with `plugins/build.sh`, then copy \
                 plugins/dist/{first}.wasm into its plugins directory (or PUT it to /v1/plugins/{first})"
            ),
        };
        let s = if missing.len() > 1 { "s" } else { "" };
        Err(Failure::config(format!("the host at {} has no agent type{s} {names}: {how}", self.api.base)))
    }

    /// A note on stderr when the database given already holds workflows.
    async fn warn_if_not_fresh(&self) {
        if let Ok((_, list)) = self.api.call(Method::GET, "/v1/workflows?limit=1", None).await {
            if list["items"].as_array().is_some_and(|w| !w.is_empty()) {
                super::workloads::note("the database already holds workflows: figures of a fresh database may differ");
            }
        }
    }
}

/// What a `/readyz` answer says is not ready.
fn not_ready(body: &Value) -> String {
    let failed: Vec<String> = body["components"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, c)| c["status"] != "ok")
        .map(|(name, c)| format!("{name}: {}", c["message"].as_str().unwrap_or("not ready")))
        .collect();
    if failed.is_empty() {
        format!("/readyz answered {body}")
    } else {
        failed.join("; ")
    }
}

/// `url` with its password, if any, replaced by `***`.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_names_the_failing_components() {
        let body = serde_json::json!({"components": {
            "database": {"status": "ok"},
            "plugins": {"status": "failed", "message": "the plugins directory is still being loaded"}}});
        assert_eq!(not_ready(&body), "plugins: the plugins directory is still being loaded");
    }
}
