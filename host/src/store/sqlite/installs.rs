//! [`InstallsTx`] on the writer's connection: plugins installed through the API.

use super::write::SqliteTx;
use crate::store::installs::InstallsTx;
use crate::store::Result;

impl InstallsTx for SqliteTx<'_> {
    async fn keep_blob(&mut self, digest: &str, bytes: &[u8], now: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO plugin_blobs (digest, bytes, stored_at) VALUES (?1, ?2, ?3) ON CONFLICT (digest) DO NOTHING",
            )?
            .execute((digest, bytes, now))?;
        Ok(())
    }

    async fn install_component(&mut self, agent_type: &str, digest: &str, now: i64, by: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO installed_plugins (agent_type, digest, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (agent_type) DO UPDATE SET digest = ?2, updated_at = ?3, updated_by = ?4",
            )?
            .execute((agent_type, digest, now, by))?;
        Ok(())
    }

    async fn install_manifest(&mut self, agent_type: &str, text: &str, now: i64, by: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO installed_plugins (agent_type, manifest, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (agent_type) DO UPDATE SET manifest = ?2, updated_at = ?3, updated_by = ?4",
            )?
            .execute((agent_type, text, now, by))?;
        Ok(())
    }
}
