//! [`Runtime`]: the engine-facing entry point — call an executor or a validator, with limits.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::component::Linker;
use wasmtime::Engine;

use super::bindings::{self, wit};
use super::cache::{default_cache_dir, ArtifactCache, DEFAULT_CACHE_MAX_BYTES};
use super::call::{self, Limits};
use super::connect::OutboundTls;
use super::engine::{self, Allocation};
use super::loader::LoadedPlugin;
use super::manifest::Policy;
use super::memory::MemoryBudget;
use super::outbound::{EgressLog, HttpLimits, Outbound};
use super::registry::Registry;
use super::secrets::Secrets;
use super::state::{CallInfo, HostState};
use super::{CallOptions, Execution, Issue, PluginError, TaskContext, TaskFailure, Validation};

/// Configuration of the plugin runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory of `*.wasm` plugins; `None` runs with no plugins (and refuses installs).
    pub plugins_dir: Option<PathBuf>,
    /// Directory of precompiled artifacts; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Total size the cache directory's artifacts are kept under (least recently used go first).
    pub cache_max_bytes: u64,
    /// Linear-memory limit of one call, in bytes (default 64 MiB).
    pub default_memory_limit: usize,
    /// Per-agent-type memory limits, overriding the default.
    pub memory_limits: HashMap<String, usize>,
    /// Largest executor output accepted, in bytes (default 16 MiB).
    pub max_output_bytes: usize,
    /// Longest message (and detail) of a plugin's error kept; the rest is cut, and says so.
    pub max_error_bytes: usize,
    /// Deadline of a call when [`CallOptions::timeout`] is not set (default 60 s).
    pub default_timeout: Duration,
    /// Watch the plugins directory and load, swap or unload plugins as files change.
    pub watch: bool,
    /// Try the pooling allocator (falls back to on-demand allocation if it cannot be reserved).
    pub pooling: bool,
    /// Most plugin instances alive at once; further calls wait for a free slot.
    pub max_instances: u32,
    /// The operator's secrets, which manifests may grant by name.
    pub secrets: Secrets,
    /// Limits of each outbound HTTP request.
    pub http: HttpLimits,
    /// TLS of outbound HTTPS: the bundled roots and the operator's certificate authorities.
    pub tls: OutboundTls,
    /// The host-wide budget the linear memories of all calls share.
    pub memory_budget: MemoryBudget,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            plugins_dir: None,
            cache_dir: Some(default_cache_dir()),
            cache_max_bytes: DEFAULT_CACHE_MAX_BYTES,
            default_memory_limit: DEFAULT_MEMORY_LIMIT,
            memory_limits: HashMap::new(),
            max_output_bytes: 16 << 20,
            max_error_bytes: DEFAULT_MAX_ERROR_BYTES,
            default_timeout: Duration::from_secs(60),
            watch: true,
            pooling: true,
            max_instances: DEFAULT_MAX_INSTANCES,
            secrets: Secrets::default(),
            http: HttpLimits::default(),
            tls: OutboundTls::default(),
            memory_budget: MemoryBudget::for_this_machine(),
        }
    }
}

/// State shared by the runtime, its registry and every call.
pub(crate) struct Shared {
    pub engine: Engine,
    pub linker: Linker<HostState>,
    pub cache: ArtifactCache,
    pub config: RuntimeConfig,
    pub permits: Semaphore,
    pub allocation: Allocation,
}

impl Shared {
    pub fn new(config: RuntimeConfig) -> Result<Shared, PluginError> {
        let (engine, allocation) = engine::build(config.pooling, config.max_instances)?;
        engine::start_ticker(&engine)?;
        let linker = bindings::linker(&engine)
            .map_err(|e| PluginError::Engine { reason: format!("cannot link the host interfaces: {e:#}") })?;
        Ok(Shared {
            cache: ArtifactCache::new(&engine, config.cache_dir.clone(), config.cache_max_bytes),
            permits: Semaphore::new(config.max_instances.max(1) as usize),
            engine,
            linker,
            config,
            allocation,
        })
    }

    /// Limits of a call: memory from the manifest, else the host's per-type or default limit;
    /// time from the call, else the manifest, else the runtime default.
    fn limits(&self, agent_type: &str, policy: &Policy, opts: &CallOptions) -> Limits {
        let configured = self.config.memory_limits.get(agent_type).copied();
        let manifest = policy.memory_limit_mib.map(|m| (m as usize) << 20);
        Limits {
            memory: manifest.or(configured).unwrap_or(self.config.default_memory_limit),
            host_memory: Some(self.config.memory_budget.clone()),
            timeout: opts.timeout.or(policy.timeout()).unwrap_or(self.config.default_timeout),
            cancel: opts.cancel.clone(),
        }
    }

    /// The outbound HTTP and config of a call under `policy`, until `deadline`, within `opts`'s budget.
    pub fn outbound(&self, policy: Arc<Policy>, deadline: Instant, opts: &CallOptions) -> Outbound {
        Outbound {
            policy,
            secrets: self.config.secrets.clone(),
            limits: self.config.http,
            deadline,
            log: EgressLog::default(),
            budget: opts.budget.clone(),
            tls: self.config.tls.clone(),
        }
    }
}

/// Linear-memory limit of one call, by default.
pub const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;
/// Plugin instances alive at once, by default.
pub const DEFAULT_MAX_INSTANCES: u32 = 256;
/// Longest error message (and detail) of a plugin kept, by default.
pub const DEFAULT_MAX_ERROR_BYTES: usize = 64 << 10;

/// The plugin runtime: one engine, a registry of loaded plugins, sandboxed calls. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
    registry: Registry,
}

impl Runtime {
    /// Creates the engine and an empty registry; call [`Registry::load_dir`] (or use
    /// [`Runtime::start`]) to load the plugins directory.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, PluginError> {
        let shared = Arc::new(Shared::new(config)?);
        Ok(Runtime { registry: Registry::new(shared.clone()), shared })
    }

    /// Creates the runtime, loads the plugins directory and, if configured, starts watching it.
    /// Must run inside a Tokio runtime.
    pub async fn start(config: RuntimeConfig) -> Result<Runtime, PluginError> {
        let runtime = Runtime::new(config)?;
        if runtime.shared.config.watch {
            // Watch first: a file added while the directory is being loaded is not missed.
            if let Some(dir) = runtime.registry.dir() {
                tokio::fs::create_dir_all(dir).await.map_err(|e| PluginError::io(dir, &e))?;
            }
            runtime.registry.watch()?;
        }
        runtime.registry.load_dir().await?;
        Ok(runtime)
    }

    /// The registry of loaded plugins.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The runtime's configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.shared.config
    }

    /// Which instance allocator the engine got.
    pub fn allocation(&self) -> Allocation {
        self.shared.allocation
    }

    /// Runs one attempt of a task in a fresh sandbox. Never panics: every problem is a failure.
    pub async fn execute(&self, ctx: TaskContext, opts: CallOptions) -> Execution {
        let start = Instant::now();
        let Some(plugin) = self.registry.executor(&ctx.agent_type) else {
            return Execution {
                digest: "".into(),
                result: Err(no_plugin(&ctx.agent_type, "executor")),
                plugin_error: false,
                log: Vec::new(),
                egress: Vec::new(),
                duration: start.elapsed(),
                instantiation: None,
                peak_memory: 0,
            };
        };
        self.run_executor(&plugin, ctx, &opts).await
    }

    /// The per-attempt time limit the manifest of `agent_type` sets, if any.
    pub fn manifest_timeout(&self, agent_type: &str) -> Option<Duration> {
        self.registry.executor(agent_type).and_then(|p| p.policy.timeout())
    }

    async fn run_executor(&self, plugin: &LoadedPlugin, ctx: TaskContext, opts: &CallOptions) -> Execution {
        let agent_type = ctx.agent_type.clone();
        let limits = self.shared.limits(&agent_type, &plugin.policy, opts);
        let _slot = match &plugin.slots {
            Some(slots) => Some(slots.acquire().await),
            None => None,
        };
        let _permit = self.shared.permits.acquire().await;
        let start = Instant::now();
        let deadline = start + limits.timeout;
        let info = CallInfo {
            workflow_id: ctx.workflow_id.clone(),
            task_id: ctx.task_id.clone(),
            agent_type: agent_type.clone(),
        };
        let outbound = self.shared.outbound(plugin.policy.clone(), deadline, opts);
        let egress = outbound.log.clone();
        let mut store = call::new_store(&self.shared.engine, info, &limits, outbound);
        let wit_ctx = to_wit(ctx);
        let Some(indices) = &plugin.executor else {
            return Execution {
                digest: plugin.digest.clone(),
                result: Err(no_plugin(&agent_type, "executor")),
                plugin_error: false,
                log: Vec::new(),
                egress: Vec::new(),
                duration: start.elapsed(),
                instantiation: None,
                peak_memory: 0,
            };
        };
        let mut instantiation = None;
        let work = async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            instantiation = Some(start.elapsed());
            let guest = indices.load(&mut store, &instance)?;
            guest.call_execute(&mut store, &wit_ctx).await
        };
        let outcome = call::guarded(work, deadline, &limits).await;
        let plugin_error = matches!(outcome, Ok(Ok(Err(_))));
        let result = match outcome {
            Ok(Ok(Ok(output))) => call::check_output(&agent_type, output, self.shared.config.max_output_bytes),
            Ok(Ok(Err(guest))) => Err(call::guest_error(guest, self.shared.config.max_error_bytes)),
            Ok(Err(err)) => Err(call::from_error(&agent_type, err, store.data_mut())),
            Err(why) => Err(call::interrupted(&agent_type, why, store.data_mut())),
        };
        Execution {
            digest: plugin.digest.clone(),
            plugin_error,
            result,
            log: call::take_log(&mut store),
            egress: egress.take(),
            duration: start.elapsed(),
            instantiation,
            peak_memory: store.data().limiter.peak,
        }
    }

    /// Asks the validator of `agent_type` (if one is loaded) about a handoff message (JSON text).
    pub async fn validate(&self, agent_type: &str, handoff_json: &str, opts: CallOptions) -> Validation {
        let Some(plugin) = self.registry.validator(agent_type) else {
            return Validation::NoValidator;
        };
        let Some(indices) = &plugin.validator else {
            return Validation::NoValidator;
        };
        let limits = self.shared.limits(agent_type, &plugin.policy, &opts);
        let _permit = self.shared.permits.acquire().await;
        let deadline = Instant::now() + limits.timeout;
        let info = CallInfo { agent_type: agent_type.to_string(), ..CallInfo::default() };
        let outbound = self.shared.outbound(plugin.policy.clone(), deadline, &opts);
        let mut store = call::new_store(&self.shared.engine, info, &limits, outbound);
        let work = async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            let guest = indices.load(&mut store, &instance)?;
            guest.call_validate(&mut store, handoff_json).await
        };
        match call::guarded(work, deadline, &limits).await {
            Ok(Ok(Ok(()))) => Validation::Accepted,
            Ok(Ok(Err(issues))) => {
                Validation::Rejected(issues.into_iter().map(|i| Issue { path: i.path, message: i.message }).collect())
            }
            Ok(Err(err)) => Validation::Failed(call::from_error(agent_type, err, store.data_mut())),
            Err(why) => Validation::Failed(call::interrupted(agent_type, why, store.data_mut())),
        }
    }
}

fn no_plugin(agent_type: &str, role: &str) -> TaskFailure {
    TaskFailure {
        error_type: "no_plugin".into(),
        message: format!(
            "no {role} plugin is loaded for agent type '{agent_type}': add `{agent_type}.wasm` to \
             the plugins directory (see `hyphae plugin check` for why a file did not load)"
        ),
        retryable: false,
        detail: None,
    }
}

fn to_wit(ctx: TaskContext) -> wit::TaskContext {
    wit::TaskContext {
        workflow_id: ctx.workflow_id,
        task_id: ctx.task_id,
        agent: wit::Agent { id: ctx.agent_id, agent_type: ctx.agent_type },
        attempt: ctx.attempt,
        input: ctx.input,
        variables: ctx.variables,
        context: ctx.context,
        metadata: ctx.metadata,
        previous_results: ctx
            .previous_results
            .into_iter()
            .map(|p| wit::PreviousResult {
                task_id: p.task_id,
                agent: wit::Agent { id: p.agent_id, agent_type: p.agent_type },
                status: match p.status {
                    super::DependencyStatus::Completed => wit::DependencyStatus::Completed,
                    super::DependencyStatus::Failed => wit::DependencyStatus::Failed,
                },
                output: p.output,
                error: p.error,
            })
            .collect(),
        handoffs: ctx.handoffs,
    }
}
