//! `GET /v1/report`: the health report ([`crate::report`]) in JSON or Markdown.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::CanRead;
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::extract::ApiQuery;
use super::runbook::since_us;
use super::AppState;
use crate::clock::now_us;
use crate::events::rfc3339;
use crate::report::{Facts, PluginProblem, Report};

/// Form and window of the report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `json` (default) or `md` (Markdown).
    pub format: Option<String>,
    /// Rates cover attempts that ended since this time: RFC 3339 or a duration back (default `24h`).
    pub since: Option<String>,
}

/// The health report: findings by severity (the alert rules' thresholds), workers by health,
/// success, failure and timeout rates, the slowest agent types, stuck work, plugin problems.
#[utoipa::path(get, path = "/v1/report", operation_id = "getHealthReport", tag = "operations", params(ReportQuery),
    responses(
        (status = 200, body = Report, description = "The report (JSON, or `text/markdown` with format=md)"),
        (status = 400, body = Problem),
    ))]
pub async fn report(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Response> {
    let markdown = match q.format.as_deref().unwrap_or("json") {
        "json" => false,
        "md" | "markdown" => true,
        other => {
            return Err(ApiError::new(ErrorCode::InvalidQuery, format!("format must be `json` or `md`, not `{other}`")))
        }
    };
    let since = since_us(q.since.as_deref().filter(|s| !s.is_empty()).unwrap_or("24h"))?;
    let report = Report::new(facts(&s, since).await?);
    Ok(if markdown {
        ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], report.markdown()).into_response()
    } else {
        Json(report).into_response()
    })
}

/// What the report is made from, read from the store and this host's plugins.
async fn facts(s: &AppState, since: i64) -> ApiResult<Facts> {
    let store = s.engine.store();
    let threshold = s.engine.config().miss_threshold;
    let plugin_problems = s
        .plugins
        .list()
        .into_iter()
        .filter(|p| p.state == "failed")
        .map(|p| PluginProblem { agent_type: p.agent_type, file: p.file, error: p.error.unwrap_or_default() })
        .collect();
    Ok(Facts {
        generated_at: rfc3339(now_us()),
        since: rfc3339(since),
        workers: store.workers(threshold).await?,
        agent_types: store.agent_type_stats(since).await?,
        stuck: store.stuck_tasks(|t| s.engine.attempt_timeout(t)).await?,
        unserved: store.unserved(threshold).await?,
        plugin_problems,
        queue_depth: store.queue_depth().await?,
    })
}
