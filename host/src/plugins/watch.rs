//! Watching the plugins directory: a file added, replaced or removed is loaded, swapped or unloaded
//! without a restart.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::registry::{Registry, RegistryInner};
use super::PluginError;

/// Quiet time after the last event before files are (re)loaded, so half-written files are not.
const SETTLE: Duration = Duration::from_millis(100);

impl Registry {
    /// Starts watching the plugins directory (no-op without one). Must run inside a Tokio runtime.
    /// Watching stops when the last clone of the registry is dropped.
    pub fn watch(&self) -> Result<(), PluginError> {
        let Some(dir) = self.dir().map(|d| d.to_path_buf()) else {
            return Ok(());
        };
        let handle = tokio::runtime::Handle::try_current().map_err(|_| PluginError::Engine {
            reason: "watching the plugins directory needs a Tokio runtime: call `watch` from \
                     async code"
                .into(),
        })?;
        let (tx, rx) = mpsc::unbounded_channel::<PathBuf>();
        let events_dir = dir.clone();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if !changes_files(&event.kind) => {}
            Ok(event) => {
                // Named as the registry names them (the watcher reports absolute paths, the
                // directory may be relative), so a file is never listed twice.
                for name in event.paths.iter().filter_map(|p| p.file_name()) {
                    let _ = tx.send(events_dir.join(name));
                }
            }
            Err(err) => tracing::warn!(%err, "plugins directory watch error"),
        })
        .map_err(|e| watch_error(&dir, e))?;
        watcher.watch(&dir, RecursiveMode::NonRecursive).map_err(|e| watch_error(&dir, e))?;
        *self.inner.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(watcher);
        handle.spawn(apply_changes(Arc::downgrade(&self.inner), rx));
        tracing::info!(dir = %dir.display(), "watching the plugins directory");
        Ok(())
    }
}

/// Whether an event may have changed a file: not a mere read (the registry's own reads of the
/// plugin files are reported too).
fn changes_files(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    !matches!(kind, EventKind::Access(a) if *a != AccessKind::Close(AccessMode::Write))
}

fn watch_error(dir: &std::path::Path, err: notify::Error) -> PluginError {
    PluginError::Io { path: dir.to_path_buf(), reason: format!("cannot watch the plugins directory: {err}") }
}

/// How often files that could not be read (a transient error, such as running out of
/// descriptors) are read again.
const RETRY: Duration = Duration::from_secs(5);

/// Collects changed paths until the directory settles, then refreshes each; every [`RETRY`]
/// without events, reads again the files whose last read failed.
async fn apply_changes(registry: Weak<RegistryInner>, mut rx: mpsc::UnboundedReceiver<PathBuf>) {
    loop {
        let first = match tokio::time::timeout(RETRY, rx.recv()).await {
            Ok(Some(path)) => path,
            Ok(None) => return,
            Err(_) => {
                let Some(inner) = registry.upgrade() else {
                    return;
                };
                Registry { inner }.retry_unreadable().await;
                continue;
            }
        };
        let mut changed = BTreeSet::from([first]);
        loop {
            match tokio::time::timeout(SETTLE, rx.recv()).await {
                Ok(Some(path)) => {
                    changed.insert(path);
                }
                Ok(None) => return,
                Err(_) => break,
            }
        }
        let Some(inner) = registry.upgrade() else {
            return;
        };
        let registry = Registry { inner };
        for path in changed {
            registry.refresh(&path).await;
        }
    }
}
