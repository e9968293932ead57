//! `/v1/plugins`: list the plugins in service and install new ones.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::Json;
use futures::future::BoxFuture;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{CanAdmin, CanRead};
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::events::PageQuery;
use super::extract::{body_error, ApiPath, ApiQuery};
use super::workflows::page_size;
use super::AppState;
use crate::store::Page;

/// A plugin file as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginView {
    /// Agent type served (for `NAME.validator.wasm`: the type it validates for).
    pub agent_type: String,
    /// File in the plugins directory.
    pub file: String,
    /// Roles in service: `executor`, `validator`, `metadata`.
    pub roles: Vec<String>,
    /// The `hyphae:plugin` world the roles correspond to.
    pub world: String,
    /// Content digest `sha256:<hex>`.
    pub digest: String,
    /// `loaded` or `failed`.
    pub state: String,
    /// `installed`: the component installed through the API, kept in the database and served
    /// by every host; `directory`: a file put in this host's plugins directory.
    pub source: String,
    /// What is wrong and what to do, when `state` is `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Version the plugin reports about itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Description the plugin reports about itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What the version in service may do: its manifest `AGENT_TYPE.toml` with the host's
    /// defaults filled in (no manifest: nothing granted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyView>,
}

/// The effective policy of an agent type.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PolicyView {
    /// Origins outbound HTTP may reach (`scheme://host[:port]`, `*.` for subdomains); empty: none.
    pub allowed_outbound_hosts: Vec<String>,
    /// Secrets whose placeholders the plugin may use (values are never shown).
    pub secrets: Vec<String>,
    /// Plain values the plugin reads through `wasi:config/store`.
    pub config: std::collections::BTreeMap<String, String>,
    /// Linear-memory limit of one call, in MiB.
    pub memory_limit_mib: u64,
    /// Per-attempt time limit of tasks that set none, in seconds (absent: the host default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
    /// Calls at once on one host (absent: bounded only by the host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
}

/// What the API needs from the plugin registry.
pub trait PluginAdmin: Send + Sync + 'static {
    /// Every plugin file, loaded or failed.
    fn list(&self) -> Vec<PluginView>;
    /// Whether the initial load of the plugins directory has completed.
    fn loaded(&self) -> bool;
    /// Check `bytes` as the plugin of `agent_type`, store it for every host and put it in
    /// service, installed by `by` (a token id); a refusal is a 4xx [`ApiError`] that says why.
    fn install(&self, agent_type: String, bytes: Bytes, by: String) -> BoxFuture<'_, ApiResult<PluginView>>;
    /// Check `text` as the manifest of `agent_type`, store it for every host and put it in
    /// force; returns the agent type's plugin files, reloaded with it.
    fn install_manifest(
        &self,
        agent_type: String,
        text: String,
        by: String,
    ) -> BoxFuture<'_, ApiResult<Vec<PluginView>>>;
    /// Take the component installed for `agent_type` out of service on every host (removed by
    /// `by`); returns its digest. 404 if the API installed none.
    fn remove(&self, agent_type: String, by: String) -> BoxFuture<'_, ApiResult<String>>;
}

/// The plugin files of `agent_type` (its executor and validator), or 404 `plugin_not_found`.
fn files_of(s: &AppState, agent_type: &str) -> ApiResult<Vec<PluginView>> {
    let files: Vec<PluginView> = s.plugins.list().into_iter().filter(|p| p.agent_type == agent_type).collect();
    if files.is_empty() {
        let message = format!("no plugin file serves agent type `{agent_type}`: list them with `GET /v1/plugins`");
        return Err(ApiError::new(ErrorCode::PluginNotFound, message));
    }
    Ok(files)
}

/// List plugins, by file: agent type, world, digest, state or error.
#[utoipa::path(get, path = "/v1/plugins", operation_id = "listPlugins", tag = "plugins", params(PageQuery),
    responses((status = 200, body = Page<PluginView>)))]
pub async fn list(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Json<Page<PluginView>> {
    let cursor = q.cursor.as_deref().filter(|c| !c.is_empty());
    Json(Page::by_key(s.plugins.list(), |p| &p.file, cursor, page_size(q.limit) as usize))
}

/// The plugin files of one agent type (its executor and validator), loaded or failed.
#[utoipa::path(get, path = "/v1/plugins/{agent_type}", operation_id = "getPlugin", tag = "plugins",
    params(("agent_type" = String, Path, description = "Agent type the plugins serve")),
    responses(
        (status = 200, description = "The agent type's plugin files", body = Page<PluginView>),
        (status = 404, description = "No plugin file serves the agent type", body = Problem),
    ))]
pub async fn get(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiPath(agent_type): ApiPath<String>,
) -> ApiResult<Json<Page<PluginView>>> {
    Ok(Json(Page { items: files_of(&s, &agent_type)?, next_cursor: None }))
}

/// Remove the component installed through the API for an agent type: it is deleted from the
/// database, and from the plugins directory of this host at once and of every other host within
/// a heartbeat interval; its manifest stays. A file an operator put in a plugins directory is
/// not the API's to remove (404).
#[utoipa::path(delete, path = "/v1/plugins/{agent_type}", operation_id = "removePlugin", tag = "plugins",
    params(("agent_type" = String, Path, description = "Agent type whose component to remove")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "The API installed no component for the agent type", body = Problem),
    ))]
pub async fn remove(
    auth: CanAdmin,
    State(s): State<AppState>,
    ApiPath(agent_type): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let digest = s.plugins.remove(agent_type.clone(), auth.caller.token_id.clone()).await?;
    auth.audit_done(&s, Some(agent_type), Some(serde_json::json!({ "digest": digest }))).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Install a component as the plugin of an agent type (the body is the `.wasm` file). It is
/// checked first and refused with the reason (422) if the host cannot run it; then stored in
/// the database, so every host sharing it serves this version within a heartbeat interval.
#[utoipa::path(put, path = "/v1/plugins/{agent_type}", operation_id = "installPlugin", tag = "plugins",
    params(("agent_type" = String, Path, description = "Agent type the plugin serves")),
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "WebAssembly component"),
    responses(
        (status = 201, description = "Installed and in service", body = PluginView,
            headers(("Location" = String, description = "Where it was installed: `/v1/plugins/{agent_type}`"))),
        (status = 400, description = "Invalid agent type or empty body", body = Problem),
        (status = 413, description = "Component larger than the upload limit", body = Problem),
        (status = 422, description = "The component was refused; the message says why", body = Problem),
    ))]
pub async fn install(
    auth: CanAdmin,
    State(s): State<AppState>,
    ApiPath(agent_type): ApiPath<String>,
    req: Request,
) -> ApiResult<(StatusCode, [(header::HeaderName, String); 1], Json<PluginView>)> {
    let bytes = Bytes::from_request(req, &()).await.map_err(body_error)?;
    if bytes.is_empty() {
        return Err(ApiError::new(
            ErrorCode::EmptyBody,
            "the request body is empty: send the component file, e.g. `curl -T plugin.wasm URL`",
        ));
    }
    let view = s.plugins.install(agent_type.clone(), bytes, auth.caller.token_id.clone()).await?;
    let location = format!("/v1/plugins/{agent_type}");
    auth.audit_done(&s, Some(agent_type), Some(serde_json::json!({ "digest": view.digest }))).await;
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(view)))
}

/// Install the manifest of an agent type (the body is the TOML text of `AGENT_TYPE.toml`: what
/// its plugins may reach, which secrets they may use, limits). It is checked first (422 with the
/// reason), then stored in the database for every host, and the agent type's plugins reload
/// with it. A manifest may come before its component.
#[utoipa::path(put, path = "/v1/plugins/{agent_type}/manifest", operation_id = "installPluginManifest", tag = "plugins",
    params(("agent_type" = String, Path, description = "Agent type the manifest is for")),
    request_body(content = String, content_type = "application/toml", description = "The manifest's TOML text"),
    responses(
        (status = 200, description = "In force: the agent type's plugin files with their policies", body = Page<PluginView>),
        (status = 400, description = "Invalid agent type, empty body or a body that is not UTF-8", body = Problem),
        (status = 413, description = "Manifest larger than the body limit", body = Problem),
        (status = 422, description = "The manifest was refused; the message says why", body = Problem),
    ))]
pub async fn install_manifest(
    auth: CanAdmin,
    State(s): State<AppState>,
    ApiPath(agent_type): ApiPath<String>,
    req: Request,
) -> ApiResult<Json<Page<PluginView>>> {
    let bytes = Bytes::from_request(req, &()).await.map_err(body_error)?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::new(ErrorCode::InvalidManifest, "the manifest is not UTF-8 text: send the TOML file"))?;
    if text.trim().is_empty() {
        return Err(ApiError::new(
            ErrorCode::EmptyBody,
            "the request body is empty: send the manifest, e.g. `curl -T AGENT_TYPE.toml URL`",
        ));
    }
    let plugins = s.plugins.install_manifest(agent_type.clone(), text, auth.caller.token_id.clone()).await?;
    auth.audit_done(&s, Some(agent_type), None).await;
    Ok(Json(Page { items: plugins, next_cursor: None }))
}
