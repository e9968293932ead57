//! [`AccessTx`] on the writer's connection: tokens and the audit log.

use rusqlite::OptionalExtension;

use super::write::SqliteTx;
use crate::store::access::{AccessTx, AuditEntry, TokenRow};
use crate::store::Result;

impl AccessTx for SqliteTx<'_> {
    async fn active_token_named(&mut self, name: &str) -> Result<bool> {
        let mut select = self.conn.prepare_cached("SELECT 1 FROM tokens WHERE name = ?1 AND revoked_at IS NULL")?;
        Ok(select.query_row([name], |_| Ok(())).optional()?.is_some())
    }

    async fn insert_token(&mut self, t: &TokenRow<'_>) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO tokens (token_id, name, role, hash, created_at, created_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute((t.token_id, t.name, t.role.as_str(), t.hash, t.created_at, t.created_by))?;
        Ok(())
    }

    async fn revoke_tokens(&mut self, key: &str, now: i64) -> Result<Vec<String>> {
        let mut update = self.conn.prepare_cached(
            "UPDATE tokens SET revoked_at = ?2 WHERE revoked_at IS NULL AND (token_id = ?1 OR name = ?1) \
             RETURNING token_id",
        )?;
        let ids = update.query_map((key, now), |r| r.get(0))?;
        Ok(ids.collect::<rusqlite::Result<Vec<String>>>()?)
    }

    async fn insert_audit(&mut self, e: &AuditEntry, at: i64) -> Result<()> {
        let detail = e.detail.as_ref().map(|d| d.to_string());
        self.conn
            .prepare_cached(
                "INSERT INTO audit_events (at, caller, action, target, outcome, client, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute((at, &e.caller, &e.action, &e.target, e.outcome, &e.client, detail))?;
        Ok(())
    }
}
