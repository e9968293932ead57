//! Operations: liveness, readiness, Prometheus metrics, worker health and the OpenAPI document.

use std::any::Any;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{authorize, CanRead};
use super::error::{ApiError, ApiResult, Problem};
use super::events::PageQuery;
use super::extract::ApiQuery;
use super::workflows::page_size;
use super::AppState;
use crate::auth::Permission;
use crate::store::{Page, WorkerRecord};

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: String,
    pub version: String,
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", operation_id = "getHealth", tag = "operations", security(()), responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into() })
}

/// Status of one component of the host.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentStatus {
    /// `ok` or `failed`.
    pub status: String,
    /// What is wrong (and what to do), or facts about the component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub detail: Option<serde_json::Value>,
}

/// Readiness, per component.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: String,
    pub components: BTreeMap<String, ComponentStatus>,
}

fn ok(detail: serde_json::Value) -> ComponentStatus {
    ComponentStatus { status: "ok".into(), message: None, detail: Some(detail) }
}

fn failed(message: String) -> ComponentStatus {
    ComponentStatus { status: "failed".into(), message: Some(message), detail: None }
}

/// Readiness: the database answers and every plugin file of the directory is loaded (503 otherwise,
/// with the failing component).
#[utoipa::path(get, path = "/readyz", operation_id = "getReadiness", tag = "operations", security(()),
    responses((status = 200, body = Readiness), (status = 503, description = "Not ready", body = Readiness)))]
pub async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let mut components = BTreeMap::new();
    let start = Instant::now();
    let db = match tokio::time::timeout(Duration::from_secs(2), s.engine.store().ping()).await {
        Ok(Ok(())) => ok(serde_json::json!({
            "dialect": format!("{:?}", s.engine.store().dialect()).to_lowercase(),
            "latency_ms": start.elapsed().as_secs_f64() * 1000.0,
        })),
        Ok(Err(e)) => {
            tracing::warn!("readiness: the database does not answer: {e}");
            failed("the database does not answer: see the host's log".into())
        }
        Err(_) => failed("the database did not answer within 2 s".into()),
    };
    components.insert("database".to_string(), db);
    let plugins = s.plugins.list();
    let loaded = plugins.iter().filter(|p| p.state == "loaded").count();
    let plugin_status = if !s.plugins.loaded() {
        failed("the plugins directory is still being loaded".into())
    } else {
        let failed_files: Vec<_> = plugins.iter().filter(|p| p.state != "loaded").map(|p| p.file.clone()).collect();
        if failed_files.is_empty() {
            ok(serde_json::json!({ "loaded": loaded, "failed": failed_files }))
        } else {
            // A plugin file that is not in service (or not in its latest version): see GET /v1/plugins.
            failed(format!(
                "{} plugin file(s) not loaded: {}: see GET /v1/plugins for the reasons",
                failed_files.len(),
                failed_files.join(", ")
            ))
        }
    };
    components.insert("plugins".to_string(), plugin_status);
    if let Some(served) = agent_types(&s).await {
        components.insert("agent_types".to_string(), served);
    }
    components.insert(
        "engine".to_string(),
        ok(serde_json::json!({ "worker_id": s.engine.worker_id(), "running_tasks": s.engine.running_tasks() })),
    );
    let ready = components.values().all(|c| c.status == "ok");
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(Readiness { status: if ready { "ready" } else { "not_ready" }.into(), components }))
}

/// Which agent types this host serves, and the ready tasks no live worker serves (they wait; the
/// host is ready all the same). `None` when the database cannot say.
async fn agent_types(s: &AppState) -> Option<ComponentStatus> {
    let threshold = s.engine.config().miss_threshold;
    let unserved = match s.engine.store().unserved(threshold).await {
        Ok(unserved) => unserved,
        Err(e) => {
            tracing::warn!("readiness: cannot read the tasks waiting for a worker: {e}");
            return None;
        }
    };
    let served: Vec<String> = s
        .plugins
        .list()
        .into_iter()
        .filter(|p| p.roles.iter().any(|r| r == "executor"))
        .map(|p| p.agent_type)
        .collect();
    let message = (!unserved.is_empty()).then(|| {
        let waiting: Vec<String> = unserved.iter().map(|u| format!("{} ({})", u.agent_type, u.ready_tasks)).collect();
        format!(
            "ready tasks wait for a worker that serves their agent type: {}; install the plugin \
             (PUT /v1/plugins/AGENT_TYPE) or start a host that has it",
            waiting.join(", ")
        )
    });
    let detail = serde_json::json!({ "served": served, "unserved": unserved });
    Some(ComponentStatus { status: "ok".into(), message, detail: Some(detail) })
}

/// Prometheus metrics (OpenMetrics text): this host's task attempts by outcome, their durations,
/// failures by error type, retries, running tasks, egress, HTTP requests, process metrics; and
/// cluster gauges read from the database at most every few seconds (`hyphae_cluster_*`: workflows
/// and tasks by status, queue depth, worker health, tasks past their timeout). Every metric is
/// described in `docs/operations/metrics.md`. Needs a token of any role unless the host sets
/// `public_metrics`.
#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String)))]
pub async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if !s.config.public_metrics {
        if let Err(refused) = authorize(&s, &headers, Permission::Read, "GET /metrics", None).await {
            return refused.into_response();
        }
    }
    let engine = &s.engine;
    s.metrics.set_events_written(engine.store().events_written());
    let threshold = engine.config().miss_threshold;
    let read = || engine.store().cluster_gauges(threshold, |agent_type| engine.attempt_timeout(agent_type));
    let body = s.metrics.render(read).await;
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}

/// Heartbeat health of every host worker (HEALTHY, DEGRADED, CRITICAL, FAILED), by id.
#[utoipa::path(get, path = "/v1/workers", operation_id = "listWorkers", tag = "operations", params(PageQuery),
    responses((status = 200, body = Page<WorkerRecord>), (status = 503, body = Problem)))]
pub async fn workers(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<WorkerRecord>>> {
    let workers = s.engine.store().workers(s.engine.config().miss_threshold).await?;
    let cursor = q.cursor.as_deref().filter(|c| !c.is_empty());
    Ok(Json(Page::by_key(workers, |w| &w.worker_id, cursor, page_size(q.limit) as usize)))
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/openapi.json", operation_id = "getOpenApi", tag = "operations", security(()),
    responses((status = 200, description = "OpenAPI document", body = Object)))]
pub async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(super::openapi())
}

/// Response to a handler that panicked: a 500 in the usual error shape.
pub fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::internal("the host failed to handle this request", &format!("request handler panicked: {what}"))
        .into_response()
}
