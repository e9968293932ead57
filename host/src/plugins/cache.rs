//! On-disk cache of precompiled components.
//!
//! An entry is keyed by the component's content digest and the engine's compatibility hash, so a
//! host upgrade or a changed engine configuration never picks up a stale artifact. Each entry ends
//! with the SHA-256 of the artifact: a corrupted entry is detected, ignored and rebuilt. The
//! directory is kept under a total size: after a write, the least recently used entries (by
//! modification time, which a hit refreshes) are removed until the rest fits.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Where a component came from when it was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a precompiled artifact.
    Hit,
    /// Compiled now (and stored, when a cache directory is set).
    Compiled,
}

/// The precompiled-artifact cache of one engine.
#[derive(Debug, Clone)]
pub(crate) struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_key: String,
    max_bytes: u64,
}

/// Total size of the cache directory's entries, by default.
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 1 << 30;

impl ArtifactCache {
    pub fn new(engine: &Engine, dir: Option<PathBuf>, max_bytes: u64) -> Self {
        ArtifactCache { dir, engine_key: engine_key(engine), max_bytes }
    }

    /// Path of the entry for a component with this content digest (hex).
    pub fn entry_path(&self, digest_hex: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{digest_hex}-{}.cwasm", self.engine_key)))
    }

    /// Returns the component, from the cache when a valid entry exists, else compiled (and stored).
    /// Compilation errors are returned as is; cache I/O problems are logged and bypassed.
    pub fn load(&self, engine: &Engine, bytes: &[u8], digest_hex: &str) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(path) = self.entry_path(digest_hex) else {
            return Ok((Component::new(engine, bytes)?, CacheOutcome::Compiled));
        };
        if let Some(component) = read_entry(engine, &path) {
            touch(&path);
            return Ok((component, CacheOutcome::Hit));
        }
        let artifact = engine.precompile_component(bytes)?;
        match write_entry(&path, &artifact) {
            Ok(()) => evict(&path, self.max_bytes),
            Err(err) => tracing::warn!(path = %path.display(), %err,
                "cannot write the compiled-plugin cache; the plugin still loads, but is compiled \
                 again at the next start: check that the cache directory is writable"),
        }
        // SAFETY: `artifact` was produced by `precompile_component` of this very engine just now.
        let component = unsafe { Component::deserialize(engine, &artifact)? };
        Ok((component, CacheOutcome::Compiled))
    }
}

/// Reads and verifies an entry; `None` (after removing a bad entry) when it cannot be used.
fn read_entry(engine: &Engine, path: &Path) -> Option<Component> {
    let data = std::fs::read(path).ok()?;
    let verified = data.len() > 32 && {
        let (artifact, sum) = data.split_at(data.len() - 32);
        Sha256::digest(artifact)[..] == *sum
    };
    if verified {
        let artifact = &data[..data.len() - 32];
        // SAFETY: the artifact was written by `write_entry` from `precompile_component` output and
        // its checksum matches, so it is what this host produced; `deserialize` also checks that
        // the engine configuration and version are compatible, and fails if not.
        match unsafe { Component::deserialize(engine, artifact) } {
            Ok(component) => return Some(component),
            Err(err) => tracing::warn!(path = %path.display(), %err,
                "ignoring an incompatible compiled-plugin cache entry; compiling again"),
        }
    } else {
        tracing::warn!(path = %path.display(),
            "ignoring a corrupted compiled-plugin cache entry; compiling again");
    }
    let _ = std::fs::remove_file(path);
    None
}

/// Marks an entry as just used, for eviction (best effort).
fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
}

/// Removes the least recently used entries beside `kept` (which stays) until the entries total at
/// most `max_bytes`.
fn evict(kept: &Path, max_bytes: u64) {
    let Some(dir) = kept.parent() else { return };
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= max_bytes {
            break;
        }
        if path != kept && std::fs::remove_file(&path).is_ok() {
            tracing::info!(path = %path.display(), bytes = len, "evicted a compiled plugin from the cache");
            total -= len;
        }
    }
}

/// Writes an entry atomically: artifact + its SHA-256, to a temporary file renamed into place.
fn write_entry(path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut data = Vec::with_capacity(artifact.len() + 32);
    data.extend_from_slice(artifact);
    data.extend_from_slice(&Sha256::digest(artifact));
    std::fs::write(&tmp, &data)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// A stable hex key of the engine's compatibility hash (wasmtime version + compilation settings).
fn engine_key(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}

/// Feeds `Hash` into SHA-256, so the key does not depend on std's unspecified hasher.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The default cache directory: `$XDG_CACHE_HOME/hyphae`, `~/.cache/hyphae`, else `.hyphae/cache`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("hyphae");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".cache").join("hyphae");
    }
    PathBuf::from(".hyphae").join("cache")
}
