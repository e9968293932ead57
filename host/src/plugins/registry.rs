//! The registry: which plugin version serves which agent type, loaded from the plugins directory.
//!
//! `NAME.wasm` serves agent type NAME (or the type it declares through `describe`) with the roles
//! it exports. `NAME.validator.wasm` is the validator of agent type NAME, taking precedence over a
//! validator exported by `NAME.wasm`. Swapping a version replaces an `Arc`: calls in flight finish
//! on the version they started with.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::cache::CacheOutcome;
use super::loader::{self, LoadedPlugin, Partial};
use super::manifest::{self, Policy};
use super::runtime::Shared;
use super::status::{world_of, PluginState, PluginStatus, Role};
use super::PluginError;

/// The plugins loaded by a [`super::Runtime`]. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    pub(crate) inner: Arc<RegistryInner>,
}

pub(crate) struct RegistryInner {
    shared: Arc<Shared>,
    tables: RwLock<Tables>,
    ready: AtomicBool,
    /// Serialises loads, so a file event and an install of the same file do not interleave.
    load_lock: tokio::sync::Mutex<()>,
    pub(crate) watcher: Mutex<Option<notify::RecommendedWatcher>>,
}

#[derive(Default)]
struct Tables {
    files: BTreeMap<PathBuf, FileEntry>,
    executors: HashMap<String, Arc<LoadedPlugin>>,
    validators: HashMap<String, Arc<LoadedPlugin>>,
    /// Files shadowed by another file serving the same agent type.
    conflicts: HashMap<PathBuf, PluginError>,
}

struct FileEntry {
    target: Target,
    digest: String,
    /// Digest of the agent type's manifest text when the file was last looked at (`None`: absent).
    manifest_digest: Option<String>,
    loaded: Result<Arc<LoadedPlugin>, (PluginError, Option<Partial>)>,
    /// A newer file or manifest that could not be used, while the version loaded before keeps
    /// serving.
    problem: Option<PluginError>,
    /// The last read of the file failed (an I/O error, maybe transient): read it again later.
    unreadable: bool,
}

/// Loaded, or why not.
type Loaded = Result<Arc<LoadedPlugin>, (PluginError, Option<Partial>)>;

/// What a file name says a file is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// `NAME.wasm`.
    Plugin(String),
    /// `NAME.validator.wasm`.
    ValidatorFor(String),
}

impl Target {
    fn of(path: &Path) -> Option<Target> {
        let name = path.file_name()?.to_str()?;
        if name.starts_with('.') {
            return None;
        }
        let stem = name.strip_suffix(".wasm")?;
        match stem.strip_suffix(".validator") {
            Some(base) if !base.is_empty() => Some(Target::ValidatorFor(base.to_string())),
            _ if !stem.is_empty() => Some(Target::Plugin(stem.to_string())),
            _ => None,
        }
    }

    /// The agent type's manifest: `NAME.toml` for `NAME.wasm` and `NAME.validator.wasm`.
    fn manifest(&self, wasm: &Path) -> PathBuf {
        let name = match self {
            Target::Plugin(stem) | Target::ValidatorFor(stem) => stem,
        };
        wasm.with_file_name(format!("{name}.toml"))
    }
}

/// A plugin checked by [`Registry::prepare`], to put in service with [`Registry::commit`].
pub struct Prepared {
    path: PathBuf,
    manifest_digest: Option<String>,
    plugin: Arc<LoadedPlugin>,
    bytes: Vec<u8>,
}

impl Prepared {
    /// Content digest `sha256:<hex>` of the component.
    pub fn digest(&self) -> &str {
        &self.plugin.digest
    }

    /// The component's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The manifest text's digest (when there is one) and the policy it gives.
type ManifestRead = (Option<String>, Result<Arc<Policy>, PluginError>);

impl FileEntry {
    fn agent_type(&self) -> String {
        match (&self.target, &self.loaded) {
            (Target::ValidatorFor(name), _) => name.clone(),
            (Target::Plugin(stem), Ok(p)) => {
                p.info.as_ref().and_then(|i| i.agent_type.clone()).unwrap_or_else(|| stem.clone())
            }
            (Target::Plugin(stem), Err(_)) => stem.clone(),
        }
    }

    fn roles(&self) -> Vec<Role> {
        match (&self.target, &self.loaded) {
            (Target::ValidatorFor(_), Ok(_)) => vec![Role::Validator],
            (Target::Plugin(_), Ok(p)) => p.roles.clone(),
            (_, Err(_)) => Vec::new(),
        }
    }
}

impl Registry {
    pub(crate) fn new(shared: Arc<Shared>) -> Registry {
        Registry {
            inner: Arc::new(RegistryInner {
                shared,
                tables: RwLock::new(Tables::default()),
                ready: AtomicBool::new(false),
                load_lock: tokio::sync::Mutex::new(()),
                watcher: Mutex::new(None),
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        self.inner.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Tables> {
        self.inner.tables.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The plugins directory, if configured.
    pub fn dir(&self) -> Option<&Path> {
        self.inner.shared.config.plugins_dir.as_deref()
    }

    /// Loads every `*.wasm` file of the plugins directory (creating the directory if missing) and
    /// unloads files that are gone. Bad files are listed as failed; only an unreadable directory
    /// is an error.
    pub async fn load_dir(&self) -> Result<(), PluginError> {
        let Some(dir) = self.dir().map(Path::to_path_buf) else {
            self.inner.ready.store(true, Ordering::Release);
            return Ok(());
        };
        tokio::fs::create_dir_all(&dir).await.map_err(|e| PluginError::io(&dir, &e))?;
        let mut paths = Vec::new();
        let mut entries = tokio::fs::read_dir(&dir).await.map_err(|e| PluginError::io(&dir, &e))?;
        while let Some(entry) = entries.next_entry().await.map_err(|e| PluginError::io(&dir, &e))? {
            let path = entry.path();
            if Target::of(&path).is_some() && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let gone: Vec<PathBuf> = self.read().files.keys().filter(|known| !paths.contains(known)).cloned().collect();
        for path in gone {
            self.unload(&path);
        }
        for path in paths {
            self.refresh(&path).await;
        }
        self.inner.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether the initial load of the plugins directory has completed.
    pub fn ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    /// Whether an executor is loaded for `agent_type`.
    pub fn has_executor(&self, agent_type: &str) -> bool {
        self.read().executors.contains_key(agent_type)
    }

    /// Whether a validator is loaded for `agent_type`.
    pub fn has_validator(&self, agent_type: &str) -> bool {
        self.read().validators.contains_key(agent_type)
    }

    /// Agent types that have an executor, with the digest of each.
    pub fn served(&self) -> BTreeMap<String, String> {
        self.read().executors.iter().map(|(t, p)| (t.clone(), p.digest.to_string())).collect()
    }

    /// Agent types that have an executor, sorted.
    pub fn agent_types(&self) -> Vec<String> {
        let mut types: Vec<String> = self.read().executors.keys().cloned().collect();
        types.sort();
        types
    }

    pub(crate) fn executor(&self, agent_type: &str) -> Option<Arc<LoadedPlugin>> {
        self.read().executors.get(agent_type).cloned()
    }

    pub(crate) fn validator(&self, agent_type: &str) -> Option<Arc<LoadedPlugin>> {
        self.read().validators.get(agent_type).cloned()
    }

    /// The digest of the executor version now serving `agent_type`.
    pub fn digest(&self, agent_type: &str) -> Option<String> {
        self.read().executors.get(agent_type).map(|p| p.digest.to_string())
    }

    /// Status of every plugin file, loaded or failed, sorted by path; policies show the memory
    /// limit in effect.
    pub fn list(&self) -> Vec<PluginStatus> {
        let tables = self.read();
        tables
            .files
            .iter()
            .map(|(path, entry)| self.effective(status(path, entry, tables.conflicts.get(path))))
            .collect()
    }

    /// Status of one plugin file.
    pub fn status(&self, path: &Path) -> Option<PluginStatus> {
        let tables = self.read();
        let entry = tables.files.get(path)?;
        Some(self.effective(status(path, entry, tables.conflicts.get(path))))
    }

    fn effective(&self, mut status: PluginStatus) -> PluginStatus {
        let config = &self.inner.shared.config;
        if let Some(policy) = &mut status.policy {
            let configured = config.memory_limits.get(&status.agent_type).copied();
            let bytes = configured.unwrap_or(config.default_memory_limit);
            policy.memory_limit_mib.get_or_insert((bytes >> 20) as u64);
        }
        status
    }

    /// (Re)loads `path` if it or its manifest changed, unloads it if it is gone. For a manifest
    /// (`NAME.toml`), refreshes the plugin files of agent type NAME.
    pub async fn refresh(&self, path: &Path) {
        if let Some(stem) = manifest_stem(path) {
            for wasm in [format!("{stem}.wasm"), format!("{stem}.validator.wasm")] {
                let wasm = path.with_file_name(wasm);
                if wasm.is_file() || self.read().files.contains_key(&wasm) {
                    Box::pin(self.refresh(&wasm)).await;
                }
            }
            return;
        }
        let Some(target) = Target::of(path) else {
            return;
        };
        let _guard = self.inner.load_lock.lock().await;
        match tokio::fs::read(path).await {
            Ok(bytes) => self.refresh_bytes(path, target, bytes).await,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.unload(path),
            Err(e) => {
                let err = PluginError::io(path, &e);
                let entry = FileEntry { unreadable: true, ..FileEntry::failed(target, String::new(), None, err) };
                self.keep_or_insert(path, entry);
            }
        }
    }

    /// Reads again every file whose last read failed.
    pub(crate) async fn retry_unreadable(&self) {
        let paths: Vec<PathBuf> =
            self.read().files.iter().filter(|(_, e)| e.unreadable).map(|(p, _)| p.clone()).collect();
        for path in paths {
            self.refresh(&path).await;
        }
    }

    /// Put `entry` (a failure) in place, unless a version of the file is loaded: that one keeps
    /// serving, with the failure as its problem. Nothing loaded is ever unloaded by a failure.
    fn keep_or_insert(&self, path: &Path, entry: FileEntry) {
        let mut tables = self.write();
        if let Some(current) = tables.files.get_mut(path).filter(|e| e.loaded.is_ok()) {
            let Err((err, _)) = entry.loaded else {
                return;
            };
            tracing::warn!(path = %path.display(), "{err}; the version loaded before keeps serving");
            current.problem = Some(err);
            current.unreadable = entry.unreadable;
            return;
        }
        drop(tables);
        self.insert(path, entry);
    }

    async fn refresh_bytes(&self, path: &Path, target: Target, bytes: Vec<u8>) {
        let digest = loader::digest_of(&bytes);
        let (manifest_digest, policy) = self.read_manifest(&target, path).await;
        let previous = self.read().files.get(path).and_then(|e| {
            let plugin = e.loaded.as_ref().ok()?.clone();
            Some((e.digest == digest, e.manifest_digest == manifest_digest, plugin))
        });
        if let Some((true, true, _)) = previous {
            // Unchanged: what failed before (a read, a transient error) holds no more.
            if policy.is_ok() {
                if let Some(entry) = self.write().files.get_mut(path) {
                    (entry.problem, entry.unreadable) = (None, false);
                }
            }
            return;
        }
        let policy = match policy {
            Ok(policy) => policy,
            Err(err) => {
                tracing::warn!(path = %path.display(), "manifest refused: {err}");
                let unreadable = matches!(err, PluginError::Io { .. });
                let mut tables = self.write();
                match (tables.files.get_mut(path), previous) {
                    (Some(entry), Some(_)) => {
                        entry.manifest_digest = manifest_digest;
                        entry.problem = Some(err);
                        entry.unreadable = unreadable;
                    }
                    _ => {
                        let entry = FileEntry { unreadable, ..FileEntry::failed(target, digest, manifest_digest, err) };
                        tables.files.insert(path.to_path_buf(), entry);
                        tables.resolve();
                    }
                }
                return;
            }
        };
        let loaded = match previous {
            Some((true, _, plugin)) => Ok(Arc::new(plugin.with_policy(policy))),
            _ => self.load_bytes(&target, path, bytes, policy).await,
        };
        let unreadable = matches!(&loaded, Err((PluginError::Io { .. }, _)));
        let entry = FileEntry { target, digest, manifest_digest, loaded, problem: None, unreadable };
        if entry.loaded.is_ok() {
            self.insert(path, entry);
        } else {
            self.keep_or_insert(path, entry);
        }
    }

    /// Reads and parses the manifest of the agent type `target` serves; none: nothing granted.
    async fn read_manifest(&self, target: &Target, wasm: &Path) -> ManifestRead {
        let path = target.manifest(wasm);
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (None, Ok(Arc::default())),
            Err(e) => return (Some(String::new()), Err(PluginError::io(&path, &e))),
        };
        let digest = loader::digest_of(text.as_bytes());
        let file = loader::display_name(&path);
        let policy = manifest::parse(&file, &text, Some(&self.inner.shared.config.secrets));
        (Some(digest), policy.map(Arc::new).map_err(PluginError::from))
    }

    /// Checks `bytes` as the plugin of `agent_type`, writes it atomically as `AGENT_TYPE.wasm` in
    /// the plugins directory and puts it in service (replacing any previous version).
    pub async fn install(&self, agent_type: &str, bytes: &[u8]) -> Result<PluginStatus, PluginError> {
        let prepared = self.prepare(agent_type, bytes).await?;
        self.commit(prepared).await
    }

    /// Checks `bytes` as the plugin of `agent_type` (with the agent type's manifest), without
    /// putting it in service: [`Registry::commit`] does.
    pub async fn prepare(&self, agent_type: &str, bytes: &[u8]) -> Result<Prepared, PluginError> {
        if !valid_agent_type(agent_type) {
            return Err(PluginError::InvalidAgentType { name: agent_type.into() });
        }
        let dir = self.dir().ok_or(PluginError::NoPluginsDir)?.to_path_buf();
        let path = dir.join(format!("{agent_type}.wasm"));
        let target = Target::Plugin(agent_type.to_string());
        let _guard = self.inner.load_lock.lock().await;
        let (manifest_digest, policy) = self.read_manifest(&target, &path).await;
        let plugin = self.load_bytes(&target, &path, bytes.to_vec(), policy?).await.map_err(|(e, _)| e)?;
        if let Some(declared) = plugin.info.as_ref().and_then(|i| i.agent_type.as_ref()) {
            if declared != agent_type {
                return Err(PluginError::AgentTypeMismatch {
                    file: loader::display_name(&path),
                    declared: declared.clone(),
                    expected: agent_type.into(),
                });
            }
        }
        Ok(Prepared { path, manifest_digest, plugin, bytes: bytes.to_vec() })
    }

    /// Writes a prepared plugin atomically as `AGENT_TYPE.wasm` and puts it in service.
    pub async fn commit(&self, prepared: Prepared) -> Result<PluginStatus, PluginError> {
        let Prepared { path, manifest_digest, plugin, bytes } = prepared;
        let dir = self.dir().ok_or(PluginError::NoPluginsDir)?.to_path_buf();
        let _guard = self.inner.load_lock.lock().await;
        write_atomically(&dir, &path, &bytes).await?;
        let digest = plugin.digest.to_string();
        let target = Target::Plugin(loader::display_name(&path).trim_end_matches(".wasm").to_string());
        let entry = FileEntry { target, digest, manifest_digest, loaded: Ok(plugin), problem: None, unreadable: false };
        self.insert(&path, entry);
        let tables = self.read();
        let entry = &tables.files[&path];
        let st = self.effective(status(&path, entry, tables.conflicts.get(&path)));
        match tables.conflicts.get(&path) {
            Some(conflict) => Err(conflict.clone()),
            None => Ok(st),
        }
    }

    /// Checks `text` as the manifest of `agent_type`, with this host's secrets.
    pub fn check_manifest(&self, agent_type: &str, text: &str) -> Result<(), PluginError> {
        if !valid_agent_type(agent_type) {
            return Err(PluginError::InvalidAgentType { name: agent_type.into() });
        }
        let file = format!("{agent_type}.toml");
        manifest::parse(&file, text, Some(&self.inner.shared.config.secrets)).map(drop).map_err(PluginError::from)
    }

    /// Writes `bytes` atomically as the file `name` of the plugins directory (a component or a
    /// manifest) and loads what changed, as if an operator had put it there.
    pub async fn put_file(&self, name: &str, bytes: &[u8]) -> Result<(), PluginError> {
        let dir = self.dir().ok_or(PluginError::NoPluginsDir)?.to_path_buf();
        let path = dir.join(name);
        write_atomically(&dir, &path, bytes).await?;
        self.refresh(&path).await;
        Ok(())
    }

    /// Deletes the file `name` of the plugins directory and unloads it, as if an operator had
    /// removed it. A file already gone is no error.
    pub async fn remove_file(&self, name: &str) -> Result<(), PluginError> {
        let path = self.dir().ok_or(PluginError::NoPluginsDir)?.join(name);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(PluginError::io(&path, &e)),
        }
        self.refresh(&path).await;
        Ok(())
    }

    /// The digest of the file `name` of the plugins directory as last loaded (or refused).
    pub fn file_digest(&self, name: &str) -> Option<String> {
        let path = self.dir()?.join(name);
        self.read().files.get(&path).map(|e| e.digest.clone())
    }

    async fn load_bytes(&self, target: &Target, path: &Path, bytes: Vec<u8>, policy: Arc<Policy>) -> Loaded {
        let plugin = loader::load(&self.inner.shared, path, bytes, policy).await?;
        if matches!(target, Target::ValidatorFor(_)) && plugin.validator.is_none() {
            let partial = Partial { imports: plugin.imports.clone(), exports: plugin.exports.clone() };
            let file = loader::display_name(path);
            return Err((PluginError::NotAValidator { file }, Some(partial)));
        }
        tracing::info!(path = %path.display(), digest = %plugin.digest, cache = ?plugin.cache,
            roles = ?plugin.roles, "plugin loaded");
        Ok(Arc::new(plugin))
    }

    fn insert(&self, path: &Path, entry: FileEntry) {
        if let Err((err, _)) = &entry.loaded {
            tracing::warn!(path = %path.display(), "plugin refused: {err}");
        }
        let mut tables = self.write();
        tables.files.insert(path.to_path_buf(), entry);
        tables.resolve();
    }

    fn unload(&self, path: &Path) {
        let mut tables = self.write();
        if tables.files.remove(path).is_some() {
            tracing::info!(path = %path.display(), "plugin unloaded");
            tables.resolve();
        }
    }
}

impl Tables {
    /// Recomputes which file serves which agent type: explicit validator files first, then
    /// plugin files in path order; a file claiming a role already taken is a conflict.
    fn resolve(&mut self) {
        let mut executors: HashMap<String, (Arc<LoadedPlugin>, PathBuf)> = HashMap::new();
        let mut validators: HashMap<String, (Arc<LoadedPlugin>, PathBuf)> = HashMap::new();
        let mut conflicts = HashMap::new();
        let conflict = |agent_type: &str, other: &Path| PluginError::Conflict {
            agent_type: agent_type.into(),
            other: loader::display_name(other),
        };
        for (path, entry) in &self.files {
            let (Target::ValidatorFor(name), Ok(plugin)) = (&entry.target, &entry.loaded) else {
                continue;
            };
            match validators.get(name) {
                Some((_, other)) => {
                    conflicts.insert(path.clone(), conflict(name, other));
                }
                None => {
                    validators.insert(name.clone(), (plugin.clone(), path.clone()));
                }
            }
        }
        for (path, entry) in &self.files {
            let (Target::Plugin(_), Ok(plugin)) = (&entry.target, &entry.loaded) else {
                continue;
            };
            let agent_type = entry.agent_type();
            if plugin.executor.is_some() {
                if let Some((_, other)) = executors.get(&agent_type) {
                    conflicts.insert(path.clone(), conflict(&agent_type, other));
                    continue;
                }
                executors.insert(agent_type.clone(), (plugin.clone(), path.clone()));
            }
            if plugin.validator.is_some() {
                if let Some((_, other)) = validators.get(&agent_type) {
                    if plugin.executor.is_none() && !other.to_string_lossy().ends_with(".validator.wasm") {
                        conflicts.insert(path.clone(), conflict(&agent_type, other));
                    }
                    continue;
                }
                validators.insert(agent_type, (plugin.clone(), path.clone()));
            }
        }
        self.executors = executors.into_iter().map(|(k, (p, _))| (k, p)).collect();
        self.validators = validators.into_iter().map(|(k, (p, _))| (k, p)).collect();
        self.conflicts = conflicts;
    }
}

impl FileEntry {
    fn failed(target: Target, digest: String, manifest_digest: Option<String>, err: PluginError) -> FileEntry {
        FileEntry { target, digest, manifest_digest, loaded: Err((err, None)), problem: None, unreadable: false }
    }
}

/// `NAME` of a manifest path `NAME.toml` (not hidden).
fn manifest_stem(path: &Path) -> Option<&str> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(".toml").filter(|stem| !stem.is_empty() && !name.starts_with('.'))
}

fn status(path: &Path, entry: &FileEntry, conflict: Option<&PluginError>) -> PluginStatus {
    let roles = if conflict.is_some() { Vec::new() } else { entry.roles() };
    let error = match (&entry.loaded, conflict, &entry.problem) {
        (Err((err, _)), _, _) => Some(err.to_string()),
        (Ok(_), Some(c), _) => Some(c.to_string()),
        (Ok(_), None, Some(p)) => Some(format!("{p} (the version loaded before keeps serving)")),
        (Ok(_), None, None) => None,
    };
    PluginStatus {
        agent_type: entry.agent_type(),
        path: path.to_path_buf(),
        world: world_of(&roles).to_string(),
        roles,
        digest: entry.digest.clone(),
        state: if error.is_none() { PluginState::Loaded } else { PluginState::Failed },
        error,
        info: entry.loaded.as_ref().ok().and_then(|p| p.info.clone()),
        from_cache: entry.loaded.as_ref().is_ok_and(|p| p.cache == CacheOutcome::Hit),
        policy: entry.loaded.as_ref().ok().map(|p| (*p.policy).clone()),
    }
}

/// Whether `name` can be an agent type: letters, digits, `-`, `_`, at most 128 characters
/// (agent types become file names).
pub fn valid_agent_type(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

async fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), PluginError> {
    let tmp = dir.join(format!(".{}.{}.tmp", loader::display_name(path), std::process::id()));
    tokio::fs::write(&tmp, bytes).await.map_err(|e| PluginError::io(&tmp, &e))?;
    if let Err(e) = tokio::fs::rename(&tmp, path).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(PluginError::io(path, &e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_map_to_targets() {
        let t = |n: &str| Target::of(Path::new(n));
        assert_eq!(t("/p/echo.wasm"), Some(Target::Plugin("echo".into())));
        assert_eq!(t("/p/echo.validator.wasm"), Some(Target::ValidatorFor("echo".into())));
        assert_eq!(t("/p/.echo.wasm.1.tmp"), None);
        assert_eq!(t("/p/.hidden.wasm"), None);
        assert_eq!(t("/p/readme.md"), None);
        assert_eq!(t("/p/.wasm"), None);
        assert_eq!(manifest_stem(Path::new("/p/echo.toml")), Some("echo"));
        assert_eq!(manifest_stem(Path::new("/p/.echo.toml")), None);
        let manifest = |n: &str| Target::of(Path::new(n)).unwrap().manifest(Path::new(n));
        assert_eq!(manifest("/p/echo.validator.wasm"), PathBuf::from("/p/echo.toml"));
        assert_eq!(manifest("/p/echo.wasm"), PathBuf::from("/p/echo.toml"));
    }

    #[test]
    fn agent_type_names_are_checked() {
        assert!(valid_agent_type("backend-developer_2"));
        assert!(!valid_agent_type("../etc"));
        assert!(!valid_agent_type(""));
        assert!(!valid_agent_type("a.b"));
    }
}
