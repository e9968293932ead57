//! [`InstallsTx`] on the writer's connection: plugins installed through the API.

use super::write::SqliteTx;
use crate::store::installs::{InstallsTx, DROP_UNUSED_BLOBS};
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
                 ON CONFLICT (agent_type) DO UPDATE SET digest = ?2, removed_digest = NULL, updated_at = ?3, updated_by = ?4",
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

    async fn remove_component(&mut self, agent_type: &str, now: i64, by: &str) -> Result<Option<String>> {
        let removed = self
            .conn
            .prepare_cached(
                "UPDATE installed_plugins SET removed_digest = digest, digest = NULL, updated_at = ?2, updated_by = ?3 \
                 WHERE agent_type = ?1 AND digest IS NOT NULL RETURNING removed_digest",
            )?
            .query_map((agent_type, now, by), |r| r.get::<_, String>(0))?
            .next()
            .transpose()?;
        Ok(removed)
    }

    async fn drop_unused_blobs(&mut self) -> Result<()> {
        self.conn.prepare_cached(DROP_UNUSED_BLOBS)?.execute(())?;
        Ok(())
    }
}
