//! `/v1/workflows`: submit, list, inspect and control workflows, and read their versions.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::{CanOperate, CanRead, CanSubmit};
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::AppState;
use crate::lifecycle::Control;
use crate::store::{
    BudgetState, ControlOutcome, Page, StoreError, Submitted, TaskFilter, TaskState, VersionInfo, VersionState,
    WorkflowFilter, WorkflowState, WorkflowSummary,
};
use crate::workflow::{Budget, TaskStatus, WorkflowSpec, WorkflowStatus};

/// Default page size of listings.
pub const DEFAULT_LIMIT: i64 = 100;
/// Largest page size of listings.
pub const MAX_LIMIT: i64 = 1000;

/// Page size from a query: default 100, clamped to 1..=1000.
pub fn page_size(limit: Option<i64>) -> i64 {
    limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

/// A cursor that is a position (a version, an event's `seq` ...): none, or a non-negative
/// integer; 400 `invalid_cursor` otherwise.
pub fn position_cursor(cursor: Option<&str>) -> ApiResult<Option<i64>> {
    let Some(c) = cursor.filter(|c| !c.is_empty()) else { return Ok(None) };
    match c.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(Some(n)),
        _ => Err(ApiError::new(ErrorCode::InvalidCursor, "cursor must be the `next_cursor` of an earlier page")),
    }
}

/// The status a query names, if any; 400 `invalid_status` listing the `known` ones otherwise.
fn status_param<S: std::str::FromStr>(
    name: Option<&str>,
    known: impl Iterator<Item = &'static str>,
) -> ApiResult<Option<S>> {
    let Some(name) = name.filter(|s| !s.is_empty()) else { return Ok(None) };
    name.parse().map(Some).map_err(|_| {
        let known: Vec<&str> = known.collect();
        ApiError::new(ErrorCode::InvalidStatus, format!("unknown status `{name}`: use one of {}", known.join(", ")))
    })
}

/// Submit a workflow. It is validated before anything is stored. With an idempotency key (the
/// `Idempotency-Key` header, or `idempotency_key` in the body), a retry of the same request
/// returns the earlier workflow with 200, and the same key with a different request is a 422.
#[utoipa::path(post, path = "/v1/workflows", operation_id = "submitWorkflow", tag = "workflows", request_body = WorkflowSpec,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "Makes retries safe: the same key and request return the first workflow (at most 256 bytes)"),
        ("traceparent" = Option<String>, Header,
        description = "W3C trace context: the workflow's spans (exported when the host has an OTLP endpoint) join this trace")),
    responses(
        (status = 201, description = "Stored (and started unless `start` is false)", body = Submitted,
            headers(("Location" = String, description = "The workflow: `/v1/workflows/{id}`"))),
        (status = 200, description = "The idempotency key matched an earlier submission of this request", body = Submitted,
            headers(("Location" = String, description = "The workflow: `/v1/workflows/{id}`"))),
        (status = 400, description = "Malformed JSON or Idempotency-Key", body = Problem),
        (status = 413, description = "Body too large", body = Problem),
        (status = 415, description = "Not JSON", body = Problem),
        (status = 422, description = "Invalid workflow (cycle, unknown dependency or agent type ...), or an idempotency key used with another request", body = Problem),
    ))]
pub async fn submit(
    _auth: CanSubmit,
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(mut spec): ApiJson<WorkflowSpec>,
) -> ApiResult<(StatusCode, [(header::HeaderName, String); 1], Json<Submitted>)> {
    if let Some(key) = idempotency_header(&headers)? {
        if spec.idempotency_key.as_ref().is_some_and(|k| *k != key) {
            return Err(ApiError::new(
                ErrorCode::InvalidIdempotencyKey,
                "the Idempotency-Key header and the body's idempotency_key differ: send one key",
            ));
        }
        spec.idempotency_key = Some(key);
    }
    let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok());
    let submitted = s.engine.submit_traced(spec, traceparent).await?;
    let status = if submitted.existing { StatusCode::OK } else { StatusCode::CREATED };
    let location = format!("/v1/workflows/{}", submitted.workflow_id);
    Ok((status, [(header::LOCATION, location)], Json(submitted)))
}

/// The `Idempotency-Key` header, if the request has one; 400 if it is not text.
fn idempotency_header(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().map_err(|_| {
        ApiError::new(ErrorCode::InvalidIdempotencyKey, "the Idempotency-Key header must be printable ASCII text")
    })?;
    Ok(Some(key.trim().to_string()).filter(|k| !k.is_empty()))
}

/// Filter of the workflow listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only workflows in this status.
    pub status: Option<String>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// List workflows, newest first.
#[utoipa::path(get, path = "/v1/workflows", operation_id = "listWorkflows", tag = "workflows", params(ListQuery),
    responses((status = 200, body = Page<WorkflowSummary>), (status = 400, body = Problem)))]
pub async fn list(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<WorkflowSummary>>> {
    let status = status_param(q.status.as_deref(), WorkflowStatus::ALL.iter().map(|s| s.as_str()))?;
    let filter = WorkflowFilter { status, limit: page_size(q.limit), cursor: q.cursor.filter(|c| !c.is_empty()) };
    Ok(Json(s.engine.store().list_workflows(&filter).await?))
}

/// How many tasks `GET /v1/workflows/{id}` includes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorkflowQuery {
    /// Tasks included, in submission order (default and most: 1000; 0 for none). The rest:
    /// `GET /v1/workflows/{id}/tasks?cursor=` with `tasks_next_cursor`.
    pub tasks_limit: Option<i64>,
}

/// A workflow with its task counts and its first tasks (1,000 unless `tasks_limit` says fewer).
#[utoipa::path(get, path = "/v1/workflows/{id}", operation_id = "getWorkflow", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id"), WorkflowQuery),
    responses((status = 200, body = WorkflowState), (status = 404, body = Problem)))]
pub async fn get(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<WorkflowQuery>,
) -> ApiResult<Json<WorkflowState>> {
    let limit = q.tasks_limit.unwrap_or(MAX_LIMIT).clamp(0, MAX_LIMIT);
    let mut wf = s.engine.store().workflow_with(&id, &TaskFilter { limit: Some(limit), ..Default::default() }).await?;
    mark_waiting(&s, &mut wf.tasks).await?;
    Ok(Json(wf))
}

/// Marks the ready tasks among `tasks` whose agent type no live worker serves.
async fn mark_waiting(s: &AppState, tasks: &mut [TaskState]) -> ApiResult<()> {
    if !tasks.iter().any(|t| t.ready) {
        return Ok(());
    }
    let live = s.engine.store().live_agent_types(s.engine.config().miss_threshold).await?;
    for task in tasks.iter_mut().filter(|t| t.ready) {
        task.waiting_for_worker = !live.contains(&task.agent_type);
    }
    Ok(())
}

/// Filter of a workflow's task listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TasksQuery {
    /// Only tasks in this status.
    pub status: Option<String>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (or the workflow's `tasks_next_cursor`).
    pub cursor: Option<String>,
}

/// A workflow's tasks in submission order, a page at a time (without their attempts: see
/// `GET /v1/workflows/{id}/tasks/{task_id}`).
#[utoipa::path(get, path = "/v1/workflows/{id}/tasks", operation_id = "listTasks", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id"), TasksQuery),
    responses((status = 200, body = Page<TaskState>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn tasks(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<TasksQuery>,
) -> ApiResult<Json<Page<TaskState>>> {
    let status = status_param(q.status.as_deref(), TaskStatus::ALL.iter().map(|s| s.as_str()))?;
    let filter = TaskFilter { status, limit: Some(page_size(q.limit)), cursor: position_cursor(q.cursor.as_deref())? };
    let mut page = s.engine.store().tasks(&id, &filter).await?;
    mark_waiting(&s, &mut page.items).await?;
    Ok(Json(page))
}

/// One task with its attempts (plugin digest, error, log).
#[utoipa::path(get, path = "/v1/workflows/{id}/tasks/{task_id}", operation_id = "getTask", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id"), ("task_id" = String, Path, description = "Task id")),
    responses((status = 200, body = TaskState), (status = 404, body = Problem)))]
pub async fn task(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiPath((id, task_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<TaskState>> {
    match s.engine.store().task(&id, &task_id).await? {
        Some(mut t) => {
            mark_waiting(&s, std::slice::from_mut(&mut t)).await?;
            Ok(Json(t))
        }
        None => Err(ApiError::new(
            ErrorCode::TaskNotFound,
            format!("workflow `{id}` has no task `{task_id}`: see its tasks with GET /v1/workflows/{id}"),
        )),
    }
}

async fn control(s: &AppState, id: &str, op: Control) -> ApiResult<Json<ControlOutcome>> {
    Ok(Json(s.engine.control(id, op).await?))
}

/// Pause: no new task starts; running tasks finish.
#[utoipa::path(post, path = "/v1/workflows/{id}/pause", operation_id = "pauseWorkflow", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id")),
    responses((status = 200, body = ControlOutcome), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn pause(
    _auth: CanOperate,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ControlOutcome>> {
    control(&s, &id, Control::Pause).await
}

/// Resume (or start) a paused or pending workflow.
#[utoipa::path(post, path = "/v1/workflows/{id}/resume", operation_id = "resumeWorkflow", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id")),
    responses((status = 200, body = ControlOutcome), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn resume(
    _auth: CanOperate,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ControlOutcome>> {
    control(&s, &id, Control::Resume).await
}

/// Cancel: running tasks are interrupted, the rest become `cancelled`.
#[utoipa::path(post, path = "/v1/workflows/{id}/cancel", operation_id = "cancelWorkflow", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id")),
    responses((status = 200, body = ControlOutcome), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel(
    _auth: CanOperate,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ControlOutcome>> {
    control(&s, &id, Control::Cancel).await
}

/// Replace the workflow's budget (`{}` removes every limit). A workflow paused because its
/// budget was spent stays paused: resume it once the budget is raised.
#[utoipa::path(put, path = "/v1/workflows/{id}/budget", operation_id = "setWorkflowBudget", tag = "workflows", request_body = Budget,
    params(("id" = String, Path, description = "Workflow id")),
    responses(
        (status = 200, body = BudgetState),
        (status = 400, description = "Malformed body", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "The workflow has ended", body = Problem),
    ))]
pub async fn budget(
    _auth: CanOperate,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(budget): ApiJson<Budget>,
) -> ApiResult<Json<BudgetState>> {
    Ok(Json(s.engine.set_budget(&id, budget).await?))
}

/// Body of a rollback.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// Version whose task states to restore.
    pub version: i64,
}

/// Roll back to a version: task states become those at that version and the workflow is left
/// `paused`; resume re-runs what was not done. The workflow must be paused (or settled) first.
#[utoipa::path(post, path = "/v1/workflows/{id}/rollback", operation_id = "rollbackWorkflow", tag = "workflows", request_body = RollbackRequest,
    params(("id" = String, Path, description = "Workflow id")),
    responses(
        (status = 200, body = ControlOutcome),
        (status = 400, description = "Malformed body or no such version", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "Running: pause it first", body = Problem),
    ))]
pub async fn rollback(
    _auth: CanOperate,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RollbackRequest>,
) -> ApiResult<Json<ControlOutcome>> {
    match s.engine.control(&id, Control::Rollback(body.version)).await {
        Ok(out) => Ok(Json(out)),
        Err(e @ StoreError::VersionNotFound(..)) => Err(ApiError::new(
            ErrorCode::InvalidVersion,
            format!("cannot roll back: {e}; list its versions with GET /v1/workflows/{id}/versions"),
        )
        .details(serde_json::json!({ "version": body.version }))),
        Err(e) => Err(e.into()),
    }
}

/// A page of a version listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionsQuery {
    /// Page size (default 100, at most 1000).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (a version: the versions after it follow).
    pub cursor: Option<String>,
}

/// Versions of a workflow, oldest first.
#[utoipa::path(get, path = "/v1/workflows/{id}/versions", operation_id = "listVersions", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id"), VersionsQuery),
    responses((status = 200, body = Page<VersionInfo>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn versions(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<VersionsQuery>,
) -> ApiResult<Json<Page<VersionInfo>>> {
    let after = position_cursor(q.cursor.as_deref())?.unwrap_or(0);
    let limit = page_size(q.limit);
    let versions = s.engine.store().versions(&id, after, limit).await?;
    Ok(Json(Page::limited(versions, limit as usize, |v| v.version.to_string())))
}

/// The state of a workflow at one version.
#[utoipa::path(get, path = "/v1/workflows/{id}/versions/{version}", operation_id = "getVersion", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id"), ("version" = i64, Path, description = "Version")),
    responses((status = 200, body = VersionState), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn version(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiPath((id, version)): ApiPath<(String, i64)>,
) -> ApiResult<Json<VersionState>> {
    Ok(Json(s.engine.store().state_at(&id, version).await?))
}
