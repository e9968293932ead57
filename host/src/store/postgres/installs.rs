//! [`InstallsTx`] on PostgreSQL: plugins installed through the API.

use super::PgTx;
use crate::store::installs::{InstallsTx, DROP_UNUSED_BLOBS};
use crate::store::Result;

impl InstallsTx for PgTx<'_> {
    async fn keep_blob(&mut self, digest: &str, bytes: &[u8], now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO plugin_blobs (digest, bytes, stored_at) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest)
        .bind(bytes)
        .bind(now)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn install_component(&mut self, agent_type: &str, digest: &str, now: i64, by: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO installed_plugins (agent_type, digest, updated_at, updated_by) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (agent_type) DO UPDATE SET digest = $2, removed_digest = NULL, updated_at = $3, updated_by = $4",
        )
        .bind(agent_type)
        .bind(digest)
        .bind(now)
        .bind(by)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn install_manifest(&mut self, agent_type: &str, text: &str, now: i64, by: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO installed_plugins (agent_type, manifest, updated_at, updated_by) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (agent_type) DO UPDATE SET manifest = $2, updated_at = $3, updated_by = $4",
        )
        .bind(agent_type)
        .bind(text)
        .bind(now)
        .bind(by)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn remove_component(&mut self, agent_type: &str, now: i64, by: &str) -> Result<Option<String>> {
        let removed = sqlx::query_scalar(
            "UPDATE installed_plugins SET removed_digest = digest, digest = NULL, updated_at = $2, updated_by = $3 \
             WHERE agent_type = $1 AND digest IS NOT NULL RETURNING removed_digest",
        )
        .bind(agent_type)
        .bind(now)
        .bind(by)
        .fetch_optional(&mut *self.conn)
        .await?;
        Ok(removed)
    }

    async fn drop_unused_blobs(&mut self) -> Result<()> {
        sqlx::query(DROP_UNUSED_BLOBS).execute(&mut *self.conn).await?;
        Ok(())
    }
}
