//! API tokens (their digests and roles) and the audit log of admin actions and refused requests.

use serde::Serialize;
use serde_json::Value;

use super::columns::Columns;
use super::tx::{Transaction, WriteTx};
use super::{Result, Store, StoreError};
use crate::auth::{Caller, NewToken, Role};
use crate::clock::now_us;
use crate::events::rfc3339;

/// A token as listed: never its secret, nor its digest.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenRecord {
    /// Short public id, for revoking.
    pub token_id: String,
    pub name: String,
    pub role: Role,
    pub created_at: String,
    /// Who made it: a token id, or `cli` (`hyphae token create` on the database).
    pub created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// An entry of the audit log, to record.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Token id of the caller (`local`, `anonymous` or `none` without a token).
    pub caller: String,
    /// What was asked: `METHOD /route/{param}`, or a command (`token create`).
    pub action: String,
    /// What it was asked of (an agent type, a token id ...).
    pub target: Option<String>,
    /// `done`, `unauthenticated` (no or a bad token) or `forbidden` (the role may not).
    pub outcome: &'static str,
    /// The client's address, when known.
    pub client: Option<String>,
    pub detail: Option<Value>,
}

/// An entry of the audit log, as read.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Position in the log (increasing).
    pub seq: i64,
    pub at: String,
    pub caller: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub detail: Option<Value>,
}

/// A token's row as it is made.
pub struct TokenRow<'a> {
    pub token_id: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub hash: &'a str,
    pub created_at: i64,
    pub created_by: &'a str,
}

/// The statements of tokens and the audit log.
#[allow(async_fn_in_trait)] // used through generics only, never as `dyn`
pub trait AccessTx {
    /// Whether a token that is not revoked has this name.
    async fn active_token_named(&mut self, name: &str) -> Result<bool>;
    /// Store a new token.
    async fn insert_token(&mut self, token: &TokenRow<'_>) -> Result<()>;
    /// Revoke the tokens (not yet revoked) whose id or name is `key`. Returns their ids.
    async fn revoke_tokens(&mut self, key: &str, now: i64) -> Result<Vec<String>>;
    /// Append an entry to the audit log.
    async fn insert_audit(&mut self, entry: &AuditEntry, at: i64) -> Result<()>;
}

/// A change of tokens or the audit log, each its own transaction; token changes are audited
/// in the same transaction.
enum AccessWrite {
    Create { token: NewToken, name: String, role: Role, audit: AuditEntry },
    Revoke { key: String, audit: AuditEntry },
    Audit(AuditEntry),
}

impl Transaction for AccessWrite {
    /// Token ids made or revoked.
    type Output = Vec<String>;

    async fn run<T: WriteTx>(self, tx: &mut T) -> Result<Vec<String>> {
        let now = now_us();
        match self {
            AccessWrite::Create { token, name, role, audit } => {
                if tx.active_token_named(&name).await? {
                    return Err(StoreError::Conflict(format!(
                        "a token named `{name}` exists: choose another name, or revoke it first"
                    )));
                }
                let row = TokenRow {
                    token_id: &token.id,
                    name: &name,
                    role,
                    hash: &token.hash,
                    created_at: now,
                    created_by: &audit.caller,
                };
                tx.insert_token(&row).await?;
                let audit = AuditEntry { target: Some(token.id.clone()), ..audit };
                tx.insert_audit(&audit, now).await?;
                Ok(vec![token.id])
            }
            AccessWrite::Revoke { key, audit } => {
                let revoked = tx.revoke_tokens(&key, now).await?;
                if !revoked.is_empty() {
                    let detail = serde_json::json!({ "revoked": revoked });
                    tx.insert_audit(&AuditEntry { detail: Some(detail), ..audit }, now).await?;
                }
                Ok(revoked)
            }
            AccessWrite::Audit(entry) => {
                tx.insert_audit(&entry, now).await?;
                Ok(Vec::new())
            }
        }
    }
}

const TOKEN_COLUMNS: &str = "token_id, name, role, created_at, created_by, revoked_at";

fn token_record(r: &dyn Columns) -> Result<TokenRecord> {
    Ok(TokenRecord {
        token_id: r.text("token_id")?,
        name: r.text("name")?,
        role: r.text("role")?.parse().map_err(|e: crate::auth::UnknownRole| StoreError::Corrupt(e.to_string()))?,
        created_at: rfc3339(r.int("created_at")?),
        created_by: r.text("created_by")?,
        revoked_at: r.opt_int("revoked_at")?.map(rfc3339),
    })
}

impl Store {
    /// Store `token` under `name` with `role`, made by `by` (a caller's token id, or `cli`).
    /// A name already used by a token not revoked is a [`StoreError::Conflict`].
    pub async fn create_token(&self, token: NewToken, name: &str, role: Role, audit: AuditEntry) -> Result<()> {
        let op = AccessWrite::Create { token, name: name.to_string(), role, audit };
        self.transact(op).await.map(drop)
    }

    /// Revoke the tokens whose id or name is `key`; returns their ids (none: nothing matched).
    pub async fn revoke_tokens(&self, key: &str, audit: AuditEntry) -> Result<Vec<String>> {
        self.transact(AccessWrite::Revoke { key: key.to_string(), audit }).await
    }

    /// Every token, revoked ones included, oldest first.
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, token_id");
        self.rows(&sql, Vec::new(), token_record).await
    }

    /// The caller a presented token's digest stands for, unless it is unknown or revoked.
    pub async fn caller_by_hash(&self, hash: &str) -> Result<Option<Caller>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = $1 AND revoked_at IS NULL");
        let token = self.row(&sql, vec![hash.into()], token_record).await?;
        Ok(token.map(|t| Caller { token_id: t.token_id, name: t.name, role: t.role }))
    }

    /// Whether any token is in force.
    pub async fn has_tokens(&self) -> Result<bool> {
        let sql = "SELECT token_id FROM tokens WHERE revoked_at IS NULL LIMIT 1";
        Ok(self.row(sql, Vec::new(), |_| Ok(())).await?.is_some())
    }

    /// Append `entry` to the audit log.
    pub async fn audit(&self, entry: AuditEntry) -> Result<()> {
        self.transact(AccessWrite::Audit(entry)).await.map(drop)
    }

    /// The audit log, newest first: at most `limit` entries before `before` (a `seq`).
    pub async fn audit_log(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditRecord>> {
        let sql = "SELECT seq, at, caller, action, target, outcome, client, detail FROM audit_events \
                   WHERE seq < $1 ORDER BY seq DESC LIMIT $2 + 0";
        let args = vec![before.unwrap_or(i64::MAX).into(), (limit as i64).into()];
        self.rows(sql, args, |r| {
            Ok(AuditRecord {
                seq: r.int("seq")?,
                at: rfc3339(r.int("at")?),
                caller: r.text("caller")?,
                action: r.text("action")?,
                target: r.opt_text("target")?,
                outcome: r.text("outcome")?,
                client: r.opt_text("client")?,
                detail: r.opt_text("detail")?.map(|d| serde_json::from_str(&d)).transpose()?,
            })
        })
        .await
    }
}
