//! Starting the parts of a host from a [`Config`]: store, plugin runtime, engine.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::engine::{Engine, EngineConfig};
use crate::plugins::{
    default_cache_dir, MemoryBudget, OutboundTls, PluginState, Runtime, RuntimeConfig, Sandbox, Secrets,
};
use crate::shared_plugins::SharedPlugins;
use crate::store::Store;
use crate::telemetry::Metrics;

use super::exit::Failure;

/// A started host: engine (with its store), plugin runtime, its plugins kept in step with the
/// database, and metrics.
pub struct Host {
    pub engine: Engine,
    pub runtime: Runtime,
    pub plugins: Arc<SharedPlugins>,
    pub metrics: Arc<Metrics>,
}

/// Open the database, load the plugins directory and start the engine.
pub async fn start(config: &Config, engine_config: EngineConfig) -> Result<Host, Failure> {
    // Secrets first: an unset variable stops the start before anything else is opened.
    let secrets = Secrets::load(&config.secrets)
        .map_err(|e| Failure::config(format!("{e} (in `[secrets.{}]` of the host configuration)", e.name)))?;
    let tls = OutboundTls::load(config.outbound_ca_file.as_deref()).map_err(|e| Failure::config(e.to_string()))?;
    let db = crate::store::redact_url(&config.db);
    let store = Store::connect_with(&config.db, config.sqlite_synchronous).await.map_err(|e| {
        Failure::unavailable(format!(
            "cannot open the database `{db}`: {e}: check `--db` (or HYPHAE_DB, or `db` in the config file)"
        ))
    })?;
    let runtime_config = RuntimeConfig {
        plugins_dir: Some(config.plugins_dir.clone()),
        cache_dir: Some(config.cache_dir.clone().unwrap_or_else(default_cache_dir)),
        cache_max_bytes: config.plugin_cache_max_mib << 20,
        default_memory_limit: (config.plugin_memory_limit_mib as usize) << 20,
        watch: config.watch_plugins,
        secrets,
        http: config.http_limits(),
        tls,
        max_error_bytes: config.max_error_bytes,
        memory_budget: config
            .plugin_memory_budget_mib
            .map_or_else(MemoryBudget::for_this_machine, |mib| MemoryBudget::new((mib as usize) << 20)),
        max_instances: config.max_instances,
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::start(runtime_config).await.map_err(|e| {
        Failure::config(format!(
            "cannot load plugins from `{}`: {e}: check `--plugins-dir` (or HYPHAE_PLUGINS_DIR)",
            config.plugins_dir.display()
        ))
    })?;
    let plugins = SharedPlugins::new(runtime.registry().clone(), store.clone());
    plugins
        .sync()
        .await
        .map_err(|e| Failure::unavailable(format!("cannot read the plugins installed in the database `{db}`: {e}")))?;
    plugins.keep_in_step(Duration::from_secs_f64(config.heartbeat_interval));
    let metrics = Arc::new(Metrics::new());
    let sandbox: Arc<dyn Sandbox> = Arc::new(runtime.clone());
    let engine = Engine::start(engine_config, store, sandbox, metrics.clone())
        .await
        .map_err(|e| Failure::unavailable(format!("cannot start the engine on `{db}`: {e}")))?;
    Ok(Host { engine, runtime, plugins, metrics })
}

/// One line per plugin file: what it serves, or why it failed.
pub fn plugin_lines(runtime: &Runtime) -> Vec<String> {
    runtime
        .registry()
        .list()
        .into_iter()
        .map(|p| {
            let file = p.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            match p.state {
                PluginState::Loaded => format!("{} ({}, {file})", p.agent_type, p.world),
                PluginState::Failed => format!("{file}: FAILED: {}", p.error.unwrap_or_default()),
            }
        })
        .collect()
}
