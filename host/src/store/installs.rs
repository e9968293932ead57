//! Plugins installed through the API, shared by every host on the database: components kept by
//! content digest (`plugin_blobs`), and per agent type the component and manifest in force
//! (`installed_plugins`). Hosts copy what is here into their plugins directories.

use super::tx::{Transaction, WriteTx};
use super::{Result, Store};
use crate::clock::now_us;

/// What the API installed for an agent type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPlugin {
    pub agent_type: String,
    /// Digest (`sha256:...`) of the component in force, if one was installed.
    pub digest: Option<String>,
    /// Text of the manifest (`AGENT_TYPE.toml`) in force, if one was installed.
    pub manifest: Option<String>,
    /// Digest of the component last removed through the API, while none is in force: hosts
    /// delete their copy of it.
    pub removed_digest: Option<String>,
    /// When it last changed (µs) and by whom (a token id).
    pub updated_at: i64,
    pub updated_by: String,
}

/// The statements of installed plugins.
#[allow(async_fn_in_trait)] // used through generics only, never as `dyn`
pub trait InstallsTx {
    /// Keep a component under its digest (nothing happens if it is kept already).
    async fn keep_blob(&mut self, digest: &str, bytes: &[u8], now: i64) -> Result<()>;
    /// Put the component `digest` in force for `agent_type`, keeping its manifest.
    async fn install_component(&mut self, agent_type: &str, digest: &str, now: i64, by: &str) -> Result<()>;
    /// Put the manifest `text` in force for `agent_type`, keeping its component.
    async fn install_manifest(&mut self, agent_type: &str, text: &str, now: i64, by: &str) -> Result<()>;
    /// Take the component of `agent_type` out of force, keeping its manifest; returns its
    /// digest, or `None` if no component was installed.
    async fn remove_component(&mut self, agent_type: &str, now: i64, by: &str) -> Result<Option<String>>;
    /// Delete the components no agent type has in force.
    async fn drop_unused_blobs(&mut self) -> Result<()>;
}

/// Deletes the components no agent type has in force (the same text on both databases).
pub(crate) const DROP_UNUSED_BLOBS: &str =
    "DELETE FROM plugin_blobs WHERE digest NOT IN (SELECT digest FROM installed_plugins WHERE digest IS NOT NULL)";

/// An install, in a transaction of its own.
enum InstallWrite {
    Component { agent_type: String, digest: String, bytes: Vec<u8>, by: String },
    Manifest { agent_type: String, text: String, by: String },
    Removal { agent_type: String, by: String },
}

impl Transaction for InstallWrite {
    /// The digest of the component removed, for a removal.
    type Output = Option<String>;

    async fn run<T: WriteTx>(self, tx: &mut T) -> Result<Option<String>> {
        let now = now_us();
        match self {
            InstallWrite::Component { agent_type, digest, bytes, by } => {
                tx.keep_blob(&digest, &bytes, now).await?;
                tx.install_component(&agent_type, &digest, now, &by).await?;
                tx.drop_unused_blobs().await?;
                Ok(None)
            }
            InstallWrite::Manifest { agent_type, text, by } => {
                tx.install_manifest(&agent_type, &text, now, &by).await.map(|()| None)
            }
            InstallWrite::Removal { agent_type, by } => {
                let removed = tx.remove_component(&agent_type, now, &by).await?;
                tx.drop_unused_blobs().await?;
                Ok(removed)
            }
        }
    }
}

impl Store {
    /// Keep `bytes` (whose digest is `digest`) and put it in force as the component of
    /// `agent_type` for every host, installed by `by`.
    pub async fn install_component(&self, agent_type: &str, digest: &str, bytes: Vec<u8>, by: &str) -> Result<()> {
        let (agent_type, digest, by) = (agent_type.to_string(), digest.to_string(), by.to_string());
        self.transact(InstallWrite::Component { agent_type, digest, bytes, by }).await.map(drop)
    }

    /// Put `text` in force as the manifest of `agent_type` for every host, installed by `by`.
    pub async fn install_manifest(&self, agent_type: &str, text: &str, by: &str) -> Result<()> {
        let (agent_type, text, by) = (agent_type.to_string(), text.to_string(), by.to_string());
        self.transact(InstallWrite::Manifest { agent_type, text, by }).await.map(drop)
    }

    /// Take the component of `agent_type` out of force for every host (removed by `by`) and
    /// delete it unless another agent type has it; returns its digest, or `None` if the API
    /// installed no component for `agent_type`.
    pub async fn remove_component(&self, agent_type: &str, by: &str) -> Result<Option<String>> {
        let (agent_type, by) = (agent_type.to_string(), by.to_string());
        self.transact(InstallWrite::Removal { agent_type, by }).await
    }

    /// Everything installed, by agent type.
    pub async fn installed_plugins(&self) -> Result<Vec<InstalledPlugin>> {
        let sql = "SELECT agent_type, digest, manifest, removed_digest, updated_at, updated_by FROM installed_plugins \
             ORDER BY agent_type";
        self.rows(sql, Vec::new(), |r| {
            Ok(InstalledPlugin {
                agent_type: r.text("agent_type")?,
                digest: r.opt_text("digest")?,
                manifest: r.opt_text("manifest")?,
                removed_digest: r.opt_text("removed_digest")?,
                updated_at: r.int("updated_at")?,
                updated_by: r.text("updated_by")?,
            })
        })
        .await
    }

    /// The component kept under `digest`, if any.
    pub async fn plugin_blob(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        let sql = "SELECT bytes FROM plugin_blobs WHERE digest = $1";
        Ok(self.row(sql, vec![digest.into()], |r| r.opt_bytes("bytes")).await?.flatten())
    }
}
