//! The one wasmtime [`Engine`] of a runtime: pooling allocation when the machine allows it,
//! epoch interruption driven by a ticker thread.

use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, WasmBacktraceDetails};

use super::PluginError;

/// How often the epoch advances: the granularity of deadlines, cancellation and yields.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Which instance allocator the engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Allocation {
    /// Pre-reserved slots (fast instantiation).
    Pooling,
    /// Memory mapped per instance.
    OnDemand,
}

/// Largest linear memory a pool slot holds: all a 32-bit memory can address, so any memory limit
/// (enforced per call by the store's limiter) fits.
const MAX_MEMORY: usize = 1 << 32;

/// Builds the engine: pooled if `pooling` and the pool can be reserved, else on demand.
pub(crate) fn build(pooling: bool, max_instances: u32) -> Result<(Engine, Allocation), PluginError> {
    if pooling {
        let mut config = base_config();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool_config(max_instances, MAX_MEMORY)));
        match Engine::new(&config) {
            Ok(engine) => return Ok((engine, Allocation::Pooling)),
            Err(err) => tracing::warn!(%err, max_instances,
                "cannot reserve the pooling allocator (virtual memory short?); falling back to \
                 on-demand allocation, which is slower to instantiate: lower max_instances to \
                 use pooling"),
        }
    }
    let engine = Engine::new(&base_config()).map_err(|e| PluginError::Engine { reason: format!("{e:#}") })?;
    Ok((engine, Allocation::OnDemand))
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.wasm_backtrace_details(WasmBacktraceDetails::Enable);
    config
}

fn pool_config(max_instances: u32, max_memory: usize) -> PoolingAllocationConfig {
    let n = max_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        // Components from other toolchains hold several core instances and tables each.
        .total_core_instances(n.saturating_mul(16))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(8))
        .total_stacks(n)
        .table_elements(100_000)
        .max_memory_size(max_memory)
        .max_unused_warm_slots(n.min(100))
        // Reset reused slots by rewriting the pages a call touched (found with PAGEMAP_SCAN where
        // the kernel has it) instead of unmapping them: the next call takes no page faults.
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto);
    pool
}

/// Starts the thread advancing the engine's epoch; it ends when the engine is dropped.
pub(crate) fn start_ticker(engine: &Engine) -> Result<(), PluginError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("hyphae-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })
        .map(|_| ())
        .map_err(|e| PluginError::Engine { reason: format!("cannot start the epoch thread: {e}") })
}
