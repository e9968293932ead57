//! `hyphae serve`: the host with its HTTP API.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::exit::{CommandResult, Failure};
use super::host;
use crate::api::{self, connections, AppState};
use crate::auth::AuthMode;
use crate::config::Config;

/// Options of `hyphae serve`. Flags override `HYPHAE_*` variables, which override the config
/// file, which overrides the defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML config file (keys as the long flags, with `_`: `db`, `plugins_dir`, `listen` ...).
    #[arg(long, env = "HYPHAE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database: SQLite file (default `hyphae.db`) or `postgres://...`.
    #[arg(long, env = "HYPHAE_DB", value_name = "URL")]
    pub db: Option<String>,
    /// When a SQLite commit is on disk: `normal` (default) or `full` (power-loss durable, slower).
    #[arg(long, env = "HYPHAE_SQLITE_SYNCHRONOUS", value_enum, value_name = "MODE")]
    pub sqlite_synchronous: Option<crate::store::SqliteSync>,
    /// Directory of `*.wasm` plugins (default `plugins/dist`).
    #[arg(long, env = "HYPHAE_PLUGINS_DIR", value_name = "DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Directory of precompiled plugin artifacts.
    #[arg(long, env = "HYPHAE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "HYPHAE_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Largest JSON request body in bytes (default 10 MiB).
    #[arg(long, env = "HYPHAE_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest plugin upload in bytes (default 100 MiB).
    #[arg(long, env = "HYPHAE_MAX_PLUGIN_BYTES", value_name = "BYTES")]
    pub max_plugin_bytes: Option<usize>,
    /// Tasks run at once on this host, over all workflows (default 64).
    #[arg(long, env = "HYPHAE_MAX_CONCURRENT_TASKS", value_name = "N")]
    pub max_concurrent_tasks: Option<usize>,
    /// Reload plugins when the plugins directory changes (default true).
    #[arg(long, env = "HYPHAE_WATCH_PLUGINS", value_name = "BOOL")]
    pub watch_plugins: Option<bool>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key-file).
    #[arg(long, env = "HYPHAE_TLS_CERT_FILE", value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// The PEM private key of --tls-cert-file.
    #[arg(long, env = "HYPHAE_TLS_KEY_FILE", value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// Serve without checking tokens, on any address (only on a network you trust entirely).
    #[arg(long, env = "HYPHAE_INSECURE_NO_AUTH", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub insecure_no_auth: Option<bool>,
    /// Log JSON lines instead of text.
    #[arg(long, env = "HYPHAE_LOG_JSON", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub log_json: Option<bool>,
    /// Export traces to this OpenTelemetry collector (OTLP/HTTP base URL, e.g. http://127.0.0.1:4318).
    #[arg(long, env = "HYPHAE_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
}

impl ServeArgs {
    /// The configuration: defaults, then the config file, then environment and flags.
    pub fn resolve(&self) -> Result<Config, Failure> {
        let mut c = Config::load(self.config.as_deref())?;
        macro_rules! set {
            ($($field:ident),*) => { $(if let Some(v) = &self.$field { c.$field = v.clone(); })* };
        }
        set!(
            db,
            sqlite_synchronous,
            plugins_dir,
            listen,
            max_body_bytes,
            max_plugin_bytes,
            max_concurrent_tasks,
            watch_plugins,
            insecure_no_auth,
            log_json
        );
        for (from, to) in [
            (&self.cache_dir, &mut c.cache_dir),
            (&self.tls_cert_file, &mut c.tls_cert_file),
            (&self.tls_key_file, &mut c.tls_key_file),
        ] {
            if from.is_some() {
                to.clone_from(from);
            }
        }
        if self.otlp_endpoint.is_some() {
            c.otlp_endpoint.clone_from(&self.otlp_endpoint);
        }
        c.check()?;
        Ok(c)
    }
}

pub(super) async fn command(args: ServeArgs) -> CommandResult {
    let config = args.resolve()?;
    let traces = match config.otlp_endpoint.as_deref() {
        Some(endpoint) => Some(crate::telemetry::Traces::new(endpoint).map_err(Failure::config)?),
        None => None,
    };
    crate::telemetry::init_tracing(config.log_json, traces.as_ref());
    let served = serve_until(config, shutdown_signal()).await;
    if let Some(traces) = traces {
        let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
    }
    served?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Run the host on `config` until Ctrl-C or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    serve_until(config, shutdown_signal()).await.map_err(|f| anyhow::anyhow!(f.message))
}

/// Run the host until `stop` completes: engine, plugins and HTTP API; then drain and stop.
async fn serve_until(config: Config, stop: impl Future<Output = ()> + Send + 'static) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| {
        Failure::unavailable(format!(
            "cannot listen on {}: {e}: choose another address with `--listen` (or HYPHAE_LISTEN)",
            config.listen
        ))
    })?;
    let tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Some(api::tls::acceptor(cert, key).map_err(|e| Failure::config(e.to_string()))?),
        _ => None,
    };
    let descriptors = connections::raise_descriptor_limit();
    let max_connections = config.max_connections.unwrap_or_else(|| connections::default_max_connections(descriptors));
    let host = host::start(&config, config.engine_config()).await?;
    let auth = AuthMode::for_listener(config.listen, config.insecure_no_auth);
    refuse_open_network(&config, auth, &host).await?;
    let addr = listener.local_addr().unwrap_or(config.listen);
    print_banner(&config, addr, &host, tls.is_some());
    println!("  limits:    {max_connections} connections (of {descriptors} descriptors)");
    let mut listener =
        connections::Bounded::new(listener, max_connections, Duration::from_secs_f64(config.client_write_timeout));
    if let Some(acceptor) = tls {
        listener = listener.with_tls(acceptor);
    }
    let state = AppState::new(host.engine.clone(), host.plugins.clone(), host.metrics.clone(), config);
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let graceful = async move {
        stop.await;
        tracing::info!("shutting down: no new requests; waiting for open ones (at most 10 s)");
        let _ = stopped_tx.send(());
    };
    let service = api::router(state).into_make_service_with_connect_info::<connections::ClientAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(graceful);
    // Long-lived streams (SSE) would hold a graceful shutdown forever: give them 10 s.
    let deadline = async {
        let _ = stopped_rx.await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    };
    let served = tokio::select! {
        r = server => r,
        _ = deadline => Ok(()),
    };
    host.engine.shutdown().await;
    host.engine.store().close().await;
    served.map_err(|e| Failure::software(format!("the HTTP server failed: {e}")))
}

/// A host reachable from the network must not serve without tokens: refuse to start unless
/// one exists (or the operator insists with `--insecure-no-auth`).
async fn refuse_open_network(config: &Config, auth: AuthMode, host: &host::Host) -> Result<(), Failure> {
    if auth != AuthMode::Required {
        return Ok(());
    }
    let has = host
        .engine
        .store()
        .has_tokens()
        .await
        .map_err(|e| Failure::unavailable(format!("cannot read the API tokens from the database: {e}")))?;
    if has {
        return Ok(());
    }
    host.engine.shutdown().await;
    host.engine.store().close().await;
    Err(Failure::config(format!(
        "refusing to listen on {} without API tokens: anyone who reaches it could replace plugins and \
         delete history. Create a token first (`hyphae token create --role admin --db {}`), listen on \
         127.0.0.1 only, or pass --insecure-no-auth on a network you trust entirely",
        config.listen,
        crate::store::redact_url(&config.db)
    )))
}

fn print_banner(config: &Config, addr: SocketAddr, host: &host::Host, https: bool) {
    let url = format!("{}://{addr}", if https { "https" } else { "http" });
    let plugins = host::plugin_lines(&host.runtime);
    println!("hyphae {} serving on {url}", env!("CARGO_PKG_VERSION"));
    println!("  console:   {url}/ui");
    println!("  API:       {url}/v1/workflows   (OpenAPI: {url}/openapi.json)");
    println!("  metrics:   {url}/metrics   health: {url}/healthz, {url}/readyz");
    let access = match AuthMode::for_listener(config.listen, config.insecure_no_auth) {
        AuthMode::Required => "a token on every request (Authorization: Bearer; `hyphae token create`)",
        AuthMode::UntilTokensExist => "loopback only; no token needed until one is made with `hyphae token create`",
        AuthMode::Off => "NO CHECKS (--insecure-no-auth): anyone who reaches this port may do anything",
    };
    println!("  access:    {access}");
    let durability = match (config.is_postgres(), config.sqlite_synchronous) {
        (false, crate::store::SqliteSync::Full) => " (synchronous = FULL: each commit synced to disk)",
        _ => "",
    };
    println!("  database:  {}{durability}", crate::store::redact_url(&config.db));
    println!("  plugins:   {} ({} file(s))", config.plugins_dir.display(), plugins.len());
    if plugins.is_empty() {
        println!(
            "             none loaded: build the examples with `plugins/build.sh`, copy .wasm files into the \
             directory, or upload one with PUT {url}/v1/plugins/AGENT_TYPE"
        );
    }
    for line in plugins {
        println!("             {line}");
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("hyphae-serve-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hyphae.toml");
        std::fs::write(&file, "db = \"from-file.db\"\nmax_concurrent_tasks = 7\n").unwrap();
        let args = ServeArgs { config: Some(file), db: Some("from-flag.db".into()), ..Default::default() };
        let c = args.resolve().unwrap();
        assert_eq!(c.db, "from-flag.db");
        assert_eq!(c.max_concurrent_tasks, 7);
        assert_eq!(c.listen, Config::default().listen);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
