//! Access to the API: the [`Authorized`] extractor every handler under `/v1` takes, naming the
//! permission it needs. A request without a valid token is a 401, one whose token's role may
//! not is a 403; both are recorded in the audit log, as are the admin actions that succeed.

use std::marker::PhantomData;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde_json::{json, Value};

use super::connections::ClientAddr;
use super::error::{ApiError, ErrorCode};
use super::AppState;
use crate::auth::{bearer, token_hash, AuthMode, Caller, Permission, Role};
use crate::store::AuditEntry;

/// A permission a handler needs, as a type.
pub trait Need: Send + Sync + 'static {
    const PERMISSION: Permission;
}

macro_rules! needs {
    ($($name:ident => $p:ident, $doc:literal;)*) => {$(
        #[doc = $doc]
        pub struct $name;
        impl Need for $name {
            const PERMISSION: Permission = Permission::$p;
        }
    )*};
}

needs! {
    Read => Read, "Reading workflows, events, plugins, workers and statistics.";
    Submit => Submit, "Submitting workflows.";
    Operate => Operate, "Controlling workflows: pause, resume, cancel, roll back, budgets.";
    Admin => Admin, "Plugins, history deletion, tokens, the audit log.";
}

/// The caller of a request whose role permits `N`.
pub struct Authorized<N> {
    pub caller: Caller,
    /// `METHOD /route/{param}`: what the audit log calls the request.
    pub action: String,
    pub client: Option<String>,
    need: PhantomData<N>,
}

/// Handlers that only read.
pub type CanRead = Authorized<Read>;
/// Handlers that submit.
pub type CanSubmit = Authorized<Submit>;
/// Handlers that control running work.
pub type CanOperate = Authorized<Operate>;
/// Handlers of administrators.
pub type CanAdmin = Authorized<Admin>;

impl<N: Need> FromRequestParts<AppState> for Authorized<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let action = action_of(parts);
        let client = parts.extensions.get::<ConnectInfo<ClientAddr>>().map(|c| c.0 .0.ip().to_string());
        let caller = authorize(state, &parts.headers, N::PERMISSION, &action, client.as_deref()).await?;
        if caller.has_token() {
            state.limits.check(&caller.token_id, N::PERMISSION)?;
        }
        Ok(Authorized { caller, action, client, need: PhantomData })
    }
}

impl<N> Authorized<N> {
    /// Record the request, done, in the audit log: an admin action that succeeded. A failure
    /// to record is logged, not the client's problem (the action happened).
    pub async fn audit_done(&self, state: &AppState, target: Option<String>, detail: Option<Value>) {
        let entry = AuditEntry {
            caller: self.caller.token_id.clone(),
            action: self.action.clone(),
            target,
            outcome: "done",
            client: self.client.clone(),
            detail,
        };
        if let Err(e) = state.engine.store().audit(entry).await {
            tracing::warn!(action = %self.action, "cannot record an admin action in the audit log: {e}");
        }
    }
}

/// `METHOD /route/{param}` of a request.
fn action_of(parts: &Parts) -> String {
    let path = parts.extensions.get::<MatchedPath>().map(|p| p.as_str().to_string());
    format!("{} {}", parts.method, path.unwrap_or_else(|| parts.uri.path().to_string()))
}

/// The caller of a request needing `permission`, or the refusal (audited).
pub async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    permission: Permission,
    action: &str,
    client: Option<&str>,
) -> Result<Caller, ApiError> {
    let refuse = |caller: &str, outcome, err: ApiError| {
        let entry = AuditEntry {
            caller: caller.to_string(),
            action: action.to_string(),
            target: None,
            outcome,
            client: client.map(String::from),
            detail: Some(json!({ "code": err.code.as_str() })),
        };
        async move {
            if let Err(e) = state.engine.store().audit(entry).await {
                tracing::warn!("cannot record a refused request in the audit log: {e}");
            }
            err
        }
    };
    let caller = match authenticate(state, headers).await? {
        Ok(caller) => caller,
        Err(err) => return Err(refuse("none", "unauthenticated", err).await),
    };
    if caller.role.allows(permission) {
        return Ok(caller);
    }
    let needed: Vec<&str> = Role::needed_for(permission).iter().map(|r| r.as_str()).collect();
    let err = ApiError::new(
        ErrorCode::Forbidden,
        format!(
            "the token `{}` has role `{}`, which may not do this: it needs a token with role {}",
            caller.name,
            caller.role,
            needed.join(" or ")
        ),
    )
    .details(json!({ "role": caller.role, "needed": needed }));
    Err(refuse(&caller.token_id, "forbidden", err).await)
}

/// Who the request comes from: `Ok(Err(401))` when it has no valid token and needs one; the
/// outer error when the database cannot tell.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Result<Caller, ApiError>, ApiError> {
    let mode = state.auth_mode;
    if mode == AuthMode::Off {
        return Ok(Ok(Caller::unauthenticated(mode)));
    }
    let unauthorized = |message: &str| ApiError::new(ErrorCode::Unauthorized, message);
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        if mode == AuthMode::UntilTokensExist && !state.engine.store().has_tokens().await? {
            return Ok(Ok(Caller::unauthenticated(mode)));
        }
        return Ok(Err(unauthorized(
            "this host requires a token: send `Authorization: Bearer TOKEN` (the CLI reads HYPHAE_TOKEN); \
             an admin makes one with `hyphae token create --role reader`",
        )));
    };
    let Some(token) = value.to_str().ok().and_then(bearer) else {
        return Ok(Err(unauthorized("the Authorization header must be `Bearer TOKEN`")));
    };
    Ok(match state.engine.store().caller_by_hash(&token_hash(token)).await? {
        Some(caller) => Ok(caller),
        None => Err(unauthorized("the token is unknown or revoked: ask an admin for a valid one")),
    })
}
