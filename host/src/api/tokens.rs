//! `/v1/tokens` and `/v1/audit`: API tokens and the audit log, for admins.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::auth::CanAdmin;
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::events::PageQuery;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::workflows::{page_size, position_cursor};
use super::AppState;
use crate::auth::{name_problem, NewToken, Role};
use crate::store::{AuditEntry, AuditRecord, Page, TokenRecord};

/// A token to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    pub role: Role,
    /// A name to list and revoke it by (default: `ROLE-ID`); unique among tokens in force.
    pub name: Option<String>,
}

/// A token just made: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Send as `Authorization: Bearer TOKEN`. Not stored: keep it now.
    pub token: String,
    #[serde(flatten)]
    pub record: TokenRecord,
}

/// Make a token with a role. Its secret is in this response only.
#[utoipa::path(post, path = "/v1/tokens", operation_id = "createToken", tag = "access", request_body = NewTokenRequest,
    responses(
        (status = 201, body = CreatedToken, headers(("Location" = String, description = "The token: `/v1/tokens/{id}`"))),
        (status = 409, description = "A token in force has that name", body = Problem),
        (status = 422, description = "Invalid name", body = Problem),
    ))]
pub async fn create(
    auth: CanAdmin,
    State(s): State<AppState>,
    ApiJson(req): ApiJson<NewTokenRequest>,
) -> ApiResult<(StatusCode, [(header::HeaderName, String); 1], Json<CreatedToken>)> {
    let token = NewToken::generate().map_err(|e| ApiError::internal("cannot make a token", &e))?;
    let name = req.name.unwrap_or_else(|| format!("{}-{}", req.role, token.id));
    if let Some(problem) = name_problem(&name) {
        return Err(ApiError::new(ErrorCode::InvalidName, problem));
    }
    let (secret, id) = (token.secret.clone(), token.id.clone());
    let entry = AuditEntry {
        caller: auth.caller.token_id.clone(),
        action: auth.action.clone(),
        target: None,
        outcome: "done",
        client: auth.client.clone(),
        detail: Some(json!({ "name": name, "role": req.role })),
    };
    s.engine.store().create_token(token, &name, req.role, entry).await?;
    let record = s.engine.store().tokens().await?.into_iter().find(|t| t.token_id == id);
    let record = record.ok_or_else(|| ApiError::internal("cannot read the token just made", &id))?;
    let location = format!("/v1/tokens/{}", record.token_id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(CreatedToken { token: secret, record })))
}

/// List tokens, by id: id, name, role, when made and by whom, when revoked (secrets are never
/// shown).
#[utoipa::path(get, path = "/v1/tokens", operation_id = "listTokens", tag = "access", params(PageQuery),
    responses((status = 200, body = Page<TokenRecord>)))]
pub async fn list(
    _auth: CanAdmin,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<TokenRecord>>> {
    let tokens = s.engine.store().tokens().await?;
    let limit = page_size(q.limit) as usize;
    Ok(Json(Page::by_key(tokens, |t| &t.token_id, q.cursor.as_deref().filter(|c| !c.is_empty()), limit)))
}

/// Tokens revoked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    pub revoked: Vec<String>,
}

/// Revoke the token with this id or name: requests carrying it are refused from now on, on
/// every host sharing the database.
#[utoipa::path(delete, path = "/v1/tokens/{token}", operation_id = "revokeToken", tag = "access",
    params(("token" = String, Path, description = "Token id or name")),
    responses((status = 200, body = Revoked), (status = 404, description = "No token in force has that id or name", body = Problem)))]
pub async fn revoke(
    auth: CanAdmin,
    State(s): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<Revoked>> {
    let entry = AuditEntry {
        caller: auth.caller.token_id.clone(),
        action: auth.action.clone(),
        target: Some(key.clone()),
        outcome: "done",
        client: auth.client.clone(),
        detail: None,
    };
    let revoked = s.engine.store().revoke_tokens(&key, entry).await?;
    if revoked.is_empty() {
        return Err(ApiError::new(
            ErrorCode::TokenNotFound,
            format!("no token in force has the id or name `{key}`: list them with GET /v1/tokens"),
        ));
    }
    Ok(Json(Revoked { revoked }))
}

/// The audit log, newest first: admin actions done, and requests refused (401, 403).
#[utoipa::path(get, path = "/v1/audit", operation_id = "listAuditEntries", tag = "access", params(PageQuery),
    responses((status = 200, body = Page<AuditRecord>), (status = 400, body = Problem)))]
pub async fn audit(
    _auth: CanAdmin,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<AuditRecord>>> {
    let limit = page_size(q.limit) as usize;
    let before = position_cursor(q.cursor.as_deref())?;
    let entries = s.engine.store().audit_log(before, limit).await?;
    Ok(Json(Page::limited(entries, limit, |e| e.seq.to_string())))
}
