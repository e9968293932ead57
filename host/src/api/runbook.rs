//! The runbook's endpoints (docs/operations/runbook.md): recent failures, tasks running past their
//! timeout and their reset, each agent type's record, outcomes over time.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::auth::{CanOperate, CanRead};
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::extract::{ApiPath, ApiQuery};
use super::workflows::page_size;
use super::AppState;
use crate::clock::now_us;
use crate::store::{AgentTypeStats, Failure, FailureCursor, FailureFilter, OutcomeBucket, Page, StuckTask, TaskReset};

/// Filter of the failure listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FailuresQuery {
    /// Only attempts of this agent type.
    pub agent_type: Option<String>,
    /// Only this error type (`timeout`, `worker_lost`, `reset`, a plugin's own ...).
    pub error_type: Option<String>,
    /// Only failures since this time: RFC 3339, or a duration back from now (`30m`, `6h`, `7d`).
    pub since: Option<String>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Failed attempts, newest first.
#[utoipa::path(get, path = "/v1/failures", operation_id = "listFailures", tag = "operations", params(FailuresQuery),
    responses((status = 200, body = Page<Failure>), (status = 400, body = Problem)))]
pub async fn failures(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<FailuresQuery>,
) -> ApiResult<Json<Page<Failure>>> {
    let filter = FailureFilter {
        agent_type: q.agent_type.filter(|a| !a.is_empty()),
        error_type: q.error_type.filter(|e| !e.is_empty()),
        since_us: match q.since.as_deref().filter(|s| !s.is_empty()) {
            Some(since) => since_us(since)?,
            None => 0,
        },
        limit: page_size(q.limit),
        after: match q.cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => Some(FailureCursor::parse(c).ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidCursor, "cursor must be the `next_cursor` of an earlier page")
            })?),
            None => None,
        },
    };
    Ok(Json(s.engine.store().failures(&filter).await?))
}

/// Tasks running past their timeout.
#[derive(Debug, Serialize, ToSchema)]
pub struct StuckTasks {
    pub items: Vec<StuckTask>,
}

/// Tasks whose running attempt started longer ago than its timeout, longest first. Their host
/// should have ended them: it is stuck, or gone with its lease not yet expired. Reset one with
/// `POST /v1/workflows/{id}/tasks/{task_id}/reset`.
#[utoipa::path(get, path = "/v1/stuck", operation_id = "listStuckTasks", tag = "operations",
    responses((status = 200, body = StuckTasks)))]
pub async fn stuck(_auth: CanRead, State(s): State<AppState>) -> ApiResult<Json<StuckTasks>> {
    let engine = &s.engine;
    Ok(Json(StuckTasks { items: engine.store().stuck_tasks(|t| engine.attempt_timeout(t)).await? }))
}

/// Reset a running task: its attempt is taken from it (its result, if it ever comes, is refused;
/// interrupted at once when it runs on this host) and the task runs again at once, the reset not
/// counted against its retry policy. Recorded as the attempt's `reset` error and in the audit log.
#[utoipa::path(post, path = "/v1/workflows/{id}/tasks/{task_id}/reset", operation_id = "resetTask", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id"), ("task_id" = String, Path, description = "Task id")),
    responses(
        (status = 200, body = TaskReset),
        (status = 404, body = Problem),
        (status = 409, description = "The task is not running", body = Problem),
    ))]
pub async fn reset(
    auth: CanOperate,
    State(s): State<AppState>,
    ApiPath((id, task_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<TaskReset>> {
    let reason = format!("reset by an operator (token `{}`)", auth.caller.name);
    let Some(reset) = s.engine.reset_task(&id, &task_id, &reason).await? else {
        return Err(ApiError::new(
            ErrorCode::TaskNotFound,
            format!("workflow `{id}` has no task `{task_id}`: see its tasks with GET /v1/workflows/{id}"),
        ));
    };
    let detail = json!({ "reset_attempt": reset.reset_attempt });
    auth.audit_done(&s, Some(format!("{id}/{task_id}")), Some(detail)).await;
    Ok(Json(reset))
}

/// The window of the agent-type statistics.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentTypesQuery {
    /// Attempts that ended since this time: RFC 3339 or a duration back from now (default `24h`).
    pub since: Option<String>,
}

/// Each agent type's attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentTypesStats {
    /// Start of the window (RFC 3339).
    pub since: String,
    pub items: Vec<AgentTypeStats>,
}

/// Per agent type, the attempts that ended in a window: counts, success, failure and timeout
/// rates, p50/p95 duration and the largest peak memory.
#[utoipa::path(get, path = "/v1/agent-types", operation_id = "listAgentTypeStatistics", tag = "operations",
    params(AgentTypesQuery), responses((status = 200, body = AgentTypesStats), (status = 400, body = Problem)))]
pub async fn agent_types(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<AgentTypesQuery>,
) -> ApiResult<Json<AgentTypesStats>> {
    let since = since_us(q.since.as_deref().filter(|s| !s.is_empty()).unwrap_or("24h"))?;
    let items = s.engine.store().agent_type_stats(since).await?;
    Ok(Json(AgentTypesStats { since: crate::events::rfc3339(since), items }))
}

/// The shape of an outcome series.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutcomesQuery {
    /// Length of one interval (`30s`, `5m`, `1h` ...; default `5m`).
    pub interval: Option<String>,
    /// How far back from now (default `1h`); at most 1,000 intervals.
    pub duration: Option<String>,
}

/// Attempts that ended per interval.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeSeries {
    pub interval_s: f64,
    pub buckets: Vec<OutcomeBucket>,
}

/// Attempts that ended in each interval of the last `duration`, by outcome (completed, failed,
/// timeout, cancelled), oldest first, empty intervals included.
#[utoipa::path(get, path = "/v1/outcomes", operation_id = "getOutcomeSeries", tag = "operations",
    params(OutcomesQuery), responses((status = 200, body = OutcomeSeries), (status = 400, body = Problem)))]
pub async fn outcomes(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<OutcomesQuery>,
) -> ApiResult<Json<OutcomeSeries>> {
    let interval = duration_us("interval", q.interval.as_deref().unwrap_or("5m"))?;
    let duration = duration_us("duration", q.duration.as_deref().unwrap_or("1h"))?;
    if interval < 1_000_000 || duration / interval > 1000 {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "interval must be at least 1s and duration at most 1000 intervals (e.g. interval=5m&duration=1h)",
        ));
    }
    let buckets = s.engine.store().outcome_series(interval, duration).await?;
    Ok(Json(OutcomeSeries { interval_s: interval as f64 / 1e6, buckets }))
}

/// A time from a query: RFC 3339, or a duration back from now.
pub(super) fn since_us(text: &str) -> ApiResult<i64> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(at) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok((at.unix_timestamp_nanos() / 1000) as i64);
    }
    Ok(now_us() - duration_us("since", text)?)
}

/// A duration such as `90s`, `5m`, `6h` or `7d`, in µs; 400 naming the parameter otherwise.
fn duration_us(name: &str, text: &str) -> ApiResult<i64> {
    parse_duration_us(text).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            format!(
                "{name} must be a duration such as 30s, 5m, 6h or 7d (or, for since, an RFC 3339 time), not `{text}`"
            ),
        )
    })
}

/// `<number><unit>` with unit s, m, h or d, in µs (at most ten years).
fn parse_duration_us(text: &str) -> Option<i64> {
    let unit = text.chars().last()?;
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let n: u32 = text[..text.len() - 1].parse().ok()?;
    let us = n as i64 * secs * 1_000_000;
    (us > 0 && us <= 3650 * 86_400 * 1_000_000).then_some(us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_us("90s"), Some(90_000_000));
        assert_eq!(parse_duration_us("5m"), Some(300_000_000));
        assert_eq!(parse_duration_us("7d"), Some(7 * 86_400_000_000));
        for bad in ["", "m", "5", "-5m", "0s", "1.5h", "5w", "99999999d"] {
            assert_eq!(parse_duration_us(bad), None, "{bad}");
        }
    }

    #[test]
    fn since_takes_a_time_or_a_duration() {
        assert_eq!(since_us("2026-01-01T00:00:00Z").unwrap(), 1_767_225_600_000_000);
        let back = now_us() - since_us("1h").unwrap();
        assert!((3_599_000_000..3_601_000_000).contains(&back), "{back}");
        let e = since_us("yesterday").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidQuery);
    }
}
