//! Turning the bytes of a `.wasm` file into a ready-to-call plugin, refusing bad files with a
//! message that says what is wrong and what to do.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, InstancePre};

use super::bindings::{executor, metadata, validator, EXECUTOR, METADATA, VALIDATOR};
use super::cache::CacheOutcome;
use super::call::{self, Limits};
use super::imports::{allowed_import, allowed_imports_text};
use super::manifest::Policy;
use super::runtime::Shared;
use super::state::{CallInfo, HostState};
use super::status::{PluginInfo, Role};
use super::PluginError;

/// How long instantiation + `describe` may take when a plugin is loaded.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A compiled, linked and probed plugin version. Calls in flight hold an `Arc` of it, so a
/// replaced version lives until its last call ends.
pub(crate) struct LoadedPlugin {
    /// `sha256:<hex>` of the file's bytes (shared with every execution's result).
    pub digest: Arc<str>,
    /// Agent type declared by `describe`, if any.
    pub info: Option<PluginInfo>,
    pub pre: InstancePre<HostState>,
    pub executor: Option<executor::GuestIndices>,
    pub validator: Option<validator::GuestIndices>,
    pub roles: Vec<Role>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub cache: CacheOutcome,
    /// What the agent type may do (its manifest), and the slots of its `max_concurrency`.
    pub policy: Arc<Policy>,
    pub slots: Option<Arc<Semaphore>>,
}

impl LoadedPlugin {
    /// The same compiled version under another policy (a manifest changed, the code did not).
    pub fn with_policy(&self, policy: Arc<Policy>) -> LoadedPlugin {
        LoadedPlugin {
            digest: self.digest.clone(),
            info: self.info.clone(),
            pre: self.pre.clone(),
            executor: self.executor.clone(),
            validator: self.validator.clone(),
            roles: self.roles.clone(),
            imports: self.imports.clone(),
            exports: self.exports.clone(),
            cache: self.cache,
            slots: slots_of(&policy),
            policy,
        }
    }
}

fn slots_of(policy: &Policy) -> Option<Arc<Semaphore>> {
    policy.max_concurrency.map(|n| Arc::new(Semaphore::new(n as usize)))
}

/// The part of loading that can be reported on even when a later step fails.
pub(crate) struct Partial {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// File name for messages.
pub(crate) fn display_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Refuses bytes that are not a component, naming what they are.
pub(crate) fn classify(file: &str, bytes: &[u8]) -> Result<(), PluginError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(PluginError::NotWasm { file: file.into() });
    }
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(PluginError::CoreModule { file: file.into() });
    }
    if !wasmparser::Parser::is_component(bytes) {
        return Err(PluginError::Invalid {
            file: file.into(),
            reason: "unknown WebAssembly binary version or layer".into(),
        });
    }
    Ok(())
}

/// Loads a plugin from its bytes: classify, compile (through the cache, off the async runtime),
/// link, find the roles, instantiate once to type-check the exports and ask `describe`.
/// On failure, the [`Partial`] tells what was learned before the failing step.
pub(crate) async fn load(
    shared: &Arc<Shared>,
    path: &Path,
    bytes: Vec<u8>,
    policy: Arc<Policy>,
) -> Result<LoadedPlugin, (PluginError, Option<Partial>)> {
    let file = display_name(path);
    classify(&file, &bytes).map_err(|e| (e, None))?;
    let digest = digest_of(&bytes);
    let hex_digest = digest["sha256:".len()..].to_string();
    let (engine, cache) = (shared.engine.clone(), shared.cache.clone());
    let compiled = tokio::task::spawn_blocking(move || cache.load(&engine, &bytes, &hex_digest))
        .await
        .map_err(|e| PluginError::Invalid { file: file.clone(), reason: format!("compilation did not complete: {e}") })
        .and_then(|r| r.map_err(|e| PluginError::Invalid { file: file.clone(), reason: format!("{e:#}") }));
    let (component, cache_outcome) = compiled.map_err(|e| (e, None))?;
    let (imports, exports) = names(shared, &component);
    let partial = || Partial { imports: imports.clone(), exports: exports.clone() };
    let linked = link(shared, &file, &component, &imports, &exports).map_err(|e| (e, Some(partial())))?;
    let info = probe(shared, &file, &linked).await.map_err(|e| (e, Some(partial())))?;
    Ok(LoadedPlugin {
        digest: digest.into(),
        info,
        pre: linked.pre,
        executor: linked.executor,
        validator: linked.validator,
        roles: linked.roles,
        imports,
        exports,
        cache: cache_outcome,
        slots: slots_of(&policy),
        policy,
    })
}

/// Import and export names of a component.
fn names(shared: &Shared, component: &Component) -> (Vec<String>, Vec<String>) {
    let ty = component.component_type();
    let imports = ty.imports(&shared.engine).map(|(n, _)| n.to_string()).collect();
    let exports = ty.exports(&shared.engine).map(|(n, _)| n.to_string()).collect();
    (imports, exports)
}

struct Linked {
    pre: InstancePre<HostState>,
    executor: Option<executor::GuestIndices>,
    validator: Option<validator::GuestIndices>,
    metadata: Option<metadata::GuestIndices>,
    roles: Vec<Role>,
}

/// Whether an export named `export` (such as `hyphae:plugin/executor@0.1.4`) is the host's
/// interface `ours` (`hyphae:plugin/executor@0.1.0`) or a semver-compatible release of it: same
/// interface, same `0.MINOR` (wasmtime then finds it by the same compatibility rule).
fn compatible_export(export: &str, ours: &str) -> bool {
    let (Some((name, version)), Some((our_name, our_version))) = (export.split_once('@'), ours.split_once('@')) else {
        return false;
    };
    let track = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next()?;
        (patch.chars().all(|c| c.is_ascii_digit()) && !patch.is_empty() && parts.next().is_none())
            .then_some((major, minor))
    };
    name == our_name && track(version).is_some() && track(version) == track(our_version)
}

/// Links the component against the host and finds the contract interfaces it exports.
fn link(
    shared: &Shared,
    file: &str,
    component: &Component,
    imports: &[String],
    exports: &[String],
) -> Result<Linked, PluginError> {
    if let Some(bad) = imports.iter().find(|i| !allowed_import(i)) {
        return Err(PluginError::UnsupportedImport {
            file: file.into(),
            import: bad.clone(),
            allowed: allowed_imports_text(),
        });
    }
    let pre = shared
        .linker
        .instantiate_pre(component)
        .map_err(|e| PluginError::ImportMismatch { file: file.into(), reason: format!("{e:#}") })?;
    let bad_export = |interface: &str, e: wasmtime::Error| PluginError::BadExport {
        file: file.into(),
        interface: interface.into(),
        reason: format!("{e:#}"),
    };
    let has = |name: &str| exports.iter().any(|e| compatible_export(e, name));
    let executor =
        has(EXECUTOR).then(|| executor::GuestIndices::new(&pre).map_err(|e| bad_export(EXECUTOR, e))).transpose()?;
    let validator =
        has(VALIDATOR).then(|| validator::GuestIndices::new(&pre).map_err(|e| bad_export(VALIDATOR, e))).transpose()?;
    let metadata =
        has(METADATA).then(|| metadata::GuestIndices::new(&pre).map_err(|e| bad_export(METADATA, e))).transpose()?;
    if executor.is_none() && validator.is_none() {
        let list = if exports.is_empty() {
            "nothing".to_string()
        } else {
            exports.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
        };
        return Err(PluginError::NoRoles { file: file.into(), exports: list });
    }
    let mut roles = Vec::new();
    executor.is_some().then(|| roles.push(Role::Executor));
    validator.is_some().then(|| roles.push(Role::Validator));
    metadata.is_some().then(|| roles.push(Role::Metadata));
    Ok(Linked { pre, executor, validator, metadata, roles })
}

/// Instantiates once: type-checks every exported role and calls `describe`.
async fn probe(shared: &Shared, file: &str, linked: &Linked) -> Result<Option<PluginInfo>, PluginError> {
    let _permit = shared.permits.acquire().await;
    let limits =
        Limits { memory: shared.config.default_memory_limit, host_memory: None, timeout: PROBE_TIMEOUT, cancel: None };
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let info = CallInfo { agent_type: file.to_string(), ..CallInfo::default() };
    let mut store =
        call::new_store(&shared.engine, info, &limits, shared.outbound(Arc::default(), deadline, &Default::default()));
    let startup = |reason: String| PluginError::Startup { file: file.into(), reason };
    let bad_export = |interface: &str, e: wasmtime::Error| PluginError::BadExport {
        file: file.into(),
        interface: interface.into(),
        reason: format!("{e:#}"),
    };
    let work = async {
        let instance = linked
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| Err(startup(format!("instantiation failed: {e:#}"))))?;
        if let Some(ix) = &linked.executor {
            ix.load(&mut store, &instance).map_err(|e| Err(bad_export(EXECUTOR, e)))?;
        }
        if let Some(ix) = &linked.validator {
            ix.load(&mut store, &instance).map_err(|e| Err(bad_export(VALIDATOR, e)))?;
        }
        let Some(ix) = &linked.metadata else {
            return Ok(None);
        };
        let guest = ix.load(&mut store, &instance).map_err(|e| Err(bad_export(METADATA, e)))?;
        guest
            .call_describe(&mut store)
            .await
            .map(|i| {
                Some(PluginInfo {
                    agent_type: i.agent_type.filter(|t| !t.is_empty()),
                    version: i.version,
                    description: i.description,
                })
            })
            .map_err(Ok)
    };
    let outcome = call::guarded(work, deadline, &limits).await;
    match outcome {
        Ok(Ok(info)) => Ok(info),
        Ok(Err(Err(plugin_error))) => Err(plugin_error),
        Ok(Err(Ok(trap))) => {
            let failure = call::from_error(file, trap, store.data_mut());
            Err(startup(format!("`describe` failed: {}", failure.message)))
        }
        Err(why) => Err(startup(format!("instantiation or `describe` stopped: {why}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_names_what_the_bytes_are() {
        assert!(matches!(classify("a.wasm", b"hello"), Err(PluginError::NotWasm { .. })));
        let core = b"\0asm\x01\0\0\0";
        assert!(matches!(classify("a.wasm", core), Err(PluginError::CoreModule { .. })));
        let component = b"\0asm\x0d\0\x01\0";
        assert!(classify("a.wasm", component).is_ok());
        let unknown = b"\0asm\x07\0\x09\0";
        assert!(matches!(classify("a.wasm", unknown), Err(PluginError::Invalid { .. })));
    }

    #[test]
    fn digests_are_sha256_hex() {
        assert_eq!(digest_of(b""), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn exports_match_any_release_of_the_same_minor() {
        let ours = "hyphae:plugin/executor@0.1.0";
        assert!(compatible_export("hyphae:plugin/executor@0.1.0", ours));
        assert!(compatible_export("hyphae:plugin/executor@0.1.12", ours));
        assert!(!compatible_export("hyphae:plugin/executor@0.2.0", ours));
        assert!(!compatible_export("hyphae:plugin/executor@0.1.0-rc.1", ours));
        assert!(!compatible_export("hyphae:plugin/validator@0.1.0", ours));
        assert!(!compatible_export("hyphae:plugin/executor", ours));
    }
}
