//! `/v1/settings`: this host's limits and log filter, changed while it runs (audited).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::auth::{CanOperate, CanRead};
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::extract::ApiJson;
use super::AppState;
use crate::telemetry;

/// Most tasks one host may run at once.
const MAX_TASKS: usize = 100_000;

/// The settings in force on the host that answers (each host has its own).
#[derive(Debug, Serialize, ToSchema)]
pub struct Settings {
    /// The host these settings are of.
    pub worker_id: String,
    /// Tasks this host runs at once, over all workflows.
    pub max_concurrent_tasks: usize,
    /// Tasks of an agent type this host runs at once (0: none; not listed: no cap of its own).
    pub agent_type_concurrency: BTreeMap<String, usize>,
    /// The log filter (`RUST_LOG` syntax).
    pub log_filter: Option<String>,
}

/// A change of settings: what is absent stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    /// 1 to 100,000.
    pub max_concurrent_tasks: Option<usize>,
    /// Caps to set, by agent type; `null` removes an agent type's cap.
    #[schema(value_type = Option<BTreeMap<String, Option<usize>>>)]
    pub agent_type_concurrency: Option<BTreeMap<String, Option<usize>>>,
    /// A log filter such as `info` or `warn,hyphae::engine=debug`.
    pub log_filter: Option<String>,
}

/// This host's limits and log filter.
#[utoipa::path(get, path = "/v1/settings", operation_id = "getSettings", tag = "operations",
    responses((status = 200, body = Settings)))]
pub async fn get(_auth: CanRead, State(s): State<AppState>) -> Json<Settings> {
    Json(settings(&s))
}

/// Change this host's limits and log filter without a restart: the host-wide cap on running
/// tasks (slots in use when it shrinks are given up as their tasks end), caps per agent type,
/// the log filter. All or nothing; recorded in the audit log with the settings before and after.
#[utoipa::path(put, path = "/v1/settings", operation_id = "changeSettings", tag = "operations", request_body = SettingsChange,
    responses((status = 200, body = Settings), (status = 400, description = "A value out of range or not a log filter", body = Problem)))]
pub async fn change(
    auth: CanOperate,
    State(s): State<AppState>,
    ApiJson(change): ApiJson<SettingsChange>,
) -> ApiResult<Json<Settings>> {
    let invalid = |m: String| ApiError::new(ErrorCode::InvalidSettings, m);
    if let Some(n) = change.max_concurrent_tasks.filter(|n| !(1..=MAX_TASKS).contains(n)) {
        return Err(invalid(format!("max_concurrent_tasks must be between 1 and {MAX_TASKS}, not {n}")));
    }
    let caps: Vec<(String, Option<usize>)> = change.agent_type_concurrency.unwrap_or_default().into_iter().collect();
    if let Some((t, n)) = caps.iter().find(|(_, n)| n.is_some_and(|n| n > MAX_TASKS)) {
        return Err(invalid(format!("the cap of `{t}` must be at most {MAX_TASKS}, not {}", n.unwrap_or(0))));
    }
    let before = settings(&s);
    // The one change that can fail goes first: nothing else is changed when it does.
    if let Some(filter) = &change.log_filter {
        telemetry::set_log_filter(filter).map_err(invalid)?;
    }
    s.engine.set_limits(change.max_concurrent_tasks, &caps);
    let after = settings(&s);
    tracing::info!(max_concurrent_tasks = after.max_concurrent_tasks, log_filter = ?after.log_filter, "settings changed");
    auth.audit_done(&s, Some(after.worker_id.clone()), Some(json!({ "before": before, "after": after }))).await;
    Ok(Json(after))
}

fn settings(s: &AppState) -> Settings {
    let limits = s.engine.limits();
    Settings {
        worker_id: s.engine.worker_id().to_string(),
        max_concurrent_tasks: limits.max_concurrent_tasks,
        agent_type_concurrency: limits.agent_type_concurrency,
        log_filter: telemetry::log_filter(),
    }
}
