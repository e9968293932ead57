//! Plugins shared by every host on a database. What the API installs (a component, a manifest)
//! is stored in the database first, by content digest, then put in service here; every host
//! copies what the database holds into its own plugins directory at start and every heartbeat
//! interval after, so all of them serve the same version. Files an operator puts in a
//! directory by hand stay that host's own, unless the API installed the same agent type: the
//! database's version wins.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::plugins::{PluginError, PluginStatus, Registry};
use crate::store::{InstalledPlugin, Store, StoreError};

/// Why an install did not happen.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The component or manifest was refused (or could not be put in service here).
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The database did not store it: nothing was installed anywhere.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A removal of an agent type whose component the API did not install.
    #[error(
        "no component of agent type `{0}` was installed through the API: a file an operator put \
         in a plugins directory is removed from that directory"
    )]
    NotInstalled(String),
}

/// The plugins of this host, kept in step with the database.
pub struct SharedPlugins {
    registry: Registry,
    store: Store,
    /// The component in force per agent type, as the database held it at the last sync.
    installed: Mutex<BTreeMap<String, String>>,
}

impl SharedPlugins {
    /// Plugins of `registry`, shared through `store`.
    pub fn new(registry: Registry, store: Store) -> Arc<SharedPlugins> {
        Arc::new(SharedPlugins { registry, store, installed: Mutex::default() })
    }

    /// The registry in service here.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Check `bytes` as the plugin of `agent_type`, store it for every host (installed by `by`,
    /// a token id), and put it in service here.
    pub async fn install(&self, agent_type: &str, bytes: &[u8], by: &str) -> Result<PluginStatus, InstallError> {
        let prepared = self.registry.prepare(agent_type, bytes).await?;
        self.store.install_component(agent_type, prepared.digest(), prepared.bytes().to_vec(), by).await?;
        self.set_installed(agent_type, Some(prepared.digest().to_string()));
        Ok(self.registry.commit(prepared).await?)
    }

    /// Take the component the API installed for `agent_type` out of service on every host
    /// (removed by `by`): deleted from the database, and here and on every other host within a
    /// heartbeat interval from the plugins directory. The manifest stays. Returns its digest.
    pub async fn remove(&self, agent_type: &str, by: &str) -> Result<String, InstallError> {
        let digest = self.store.remove_component(agent_type, by).await?;
        let digest = digest.ok_or_else(|| InstallError::NotInstalled(agent_type.to_string()))?;
        self.set_installed(agent_type, None);
        self.remove_copy(agent_type, &digest).await?;
        Ok(digest)
    }

    /// Whether the file `file` holds the component the API installed (as of the last sync).
    pub fn is_installed(&self, file: &str, digest: &str) -> bool {
        let agent_type = file.strip_suffix(".wasm").unwrap_or_default();
        self.installed.lock().unwrap_or_else(|e| e.into_inner()).get(agent_type).is_some_and(|d| d == digest)
    }

    fn set_installed(&self, agent_type: &str, digest: Option<String>) {
        let mut installed = self.installed.lock().unwrap_or_else(|e| e.into_inner());
        match digest {
            Some(digest) => installed.insert(agent_type.to_string(), digest),
            None => installed.remove(agent_type),
        };
    }

    /// Deletes `AGENT_TYPE.wasm` here if it is the removed component `digest` (a different file
    /// is an operator's own and stays).
    async fn remove_copy(&self, agent_type: &str, digest: &str) -> Result<usize, PluginError> {
        let name = format!("{agent_type}.wasm");
        if self.registry.file_digest(&name).as_deref() != Some(digest) {
            return Ok(0);
        }
        self.registry.remove_file(&name).await?;
        tracing::info!(file = name, %digest, "plugin file removed: the API removed it from the database");
        Ok(1)
    }

    /// Check `text` as the manifest of `agent_type`, store it for every host and put it in force
    /// here. Returns the agent type's plugin files, reloaded with it.
    pub async fn install_manifest(
        &self,
        agent_type: &str,
        text: &str,
        by: &str,
    ) -> Result<Vec<PluginStatus>, InstallError> {
        self.registry.check_manifest(agent_type, text)?;
        self.store.install_manifest(agent_type, text, by).await?;
        self.registry.put_file(&format!("{agent_type}.toml"), text.as_bytes()).await?;
        Ok(self.registry.list().into_iter().filter(|p| p.agent_type == agent_type).collect())
    }

    /// Copy into the plugins directory what the database holds and this directory does not (a
    /// manifest first, so its component loads with it), and delete the copies of components
    /// removed. Returns how many files were written or deleted.
    pub async fn sync(&self) -> Result<usize, StoreError> {
        let all = self.store.installed_plugins().await?;
        let in_force = all.iter().filter_map(|i| Some((i.agent_type.clone(), i.digest.clone()?)));
        *self.installed.lock().unwrap_or_else(|e| e.into_inner()) = in_force.collect();
        let Some(dir) = self.registry.dir().map(|d| d.to_path_buf()) else {
            return Ok(0);
        };
        let mut changed = 0;
        for installed in all {
            changed += self.sync_manifest(&dir, &installed).await;
            changed += self.sync_component(&installed).await?;
            if let (None, Some(removed)) = (&installed.digest, &installed.removed_digest) {
                changed += self.remove_copy(&installed.agent_type, removed).await.unwrap_or_else(|e| {
                    tracing::warn!(agent_type = %installed.agent_type, "cannot remove a plugin file: {e}");
                    0
                });
            }
        }
        Ok(changed)
    }

    async fn sync_manifest(&self, dir: &std::path::Path, installed: &InstalledPlugin) -> usize {
        let Some(text) = &installed.manifest else { return 0 };
        let name = format!("{}.toml", installed.agent_type);
        if tokio::fs::read_to_string(dir.join(&name)).await.is_ok_and(|local| &local == text) {
            return 0;
        }
        self.put(&name, text.as_bytes()).await
    }

    async fn sync_component(&self, installed: &InstalledPlugin) -> Result<usize, StoreError> {
        let Some(digest) = &installed.digest else { return Ok(0) };
        let name = format!("{}.wasm", installed.agent_type);
        if self.registry.file_digest(&name).as_ref() == Some(digest) {
            return Ok(0);
        }
        let Some(bytes) = self.store.plugin_blob(digest).await? else {
            tracing::warn!(agent_type = %installed.agent_type, %digest, "the database lacks the installed component");
            return Ok(0);
        };
        Ok(self.put(&name, &bytes).await)
    }

    async fn put(&self, name: &str, bytes: &[u8]) -> usize {
        match self.registry.put_file(name, bytes).await {
            Ok(()) => {
                tracing::info!(file = name, "plugin file copied from the database");
                1
            }
            Err(e) => {
                tracing::warn!(file = name, "cannot copy a plugin file from the database: {e}");
                0
            }
        }
    }

    /// Sync every `every` while anything holds on to these plugins.
    pub fn keep_in_step(self: &Arc<Self>, every: Duration) {
        let this: Weak<SharedPlugins> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(plugins) = this.upgrade() else { return };
                if let Err(e) = plugins.sync().await {
                    tracing::warn!("cannot read the plugins installed in the database: {e}");
                }
            }
        });
    }
}
