//! [`AccessTx`] on PostgreSQL: tokens and the audit log.

use super::PgTx;
use crate::store::access::{AccessTx, AuditEntry, TokenRow};
use crate::store::Result;

impl AccessTx for PgTx<'_> {
    async fn active_token_named(&mut self, name: &str) -> Result<bool> {
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM tokens WHERE name = $1 AND revoked_at IS NULL")
            .bind(name)
            .fetch_optional(&mut *self.conn)
            .await?;
        Ok(found.is_some())
    }

    async fn insert_token(&mut self, t: &TokenRow<'_>) -> Result<()> {
        sqlx::query(
            "INSERT INTO tokens (token_id, name, role, hash, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(t.token_id)
        .bind(t.name)
        .bind(t.role.as_str())
        .bind(t.hash)
        .bind(t.created_at)
        .bind(t.created_by)
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }

    async fn revoke_tokens(&mut self, key: &str, now: i64) -> Result<Vec<String>> {
        let ids = sqlx::query_scalar(
            "UPDATE tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND (token_id = $1 OR name = $1) \
             RETURNING token_id",
        )
        .bind(key)
        .bind(now)
        .fetch_all(&mut *self.conn)
        .await?;
        Ok(ids)
    }

    async fn insert_audit(&mut self, e: &AuditEntry, at: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_events (at, caller, action, target, outcome, client, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(at)
        .bind(&e.caller)
        .bind(&e.action)
        .bind(&e.target)
        .bind(e.outcome)
        .bind(&e.client)
        .bind(e.detail.as_ref().map(|d| d.to_string()))
        .execute(&mut *self.conn)
        .await?;
        Ok(())
    }
}
