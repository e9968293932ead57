//! Coordination events: per workflow and agent, handoff chains, timelines, statistics, retention.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{CanAdmin, CanRead};
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::extract::{ApiPath, ApiQuery};
use super::workflows::{page_size, position_cursor};
use super::AppState;
use crate::events::{AgentCursor, AgentEventsQuery, Event, EventQuery, EventType, Order, Statistics, Timeline};
use crate::store::Page;

/// Parse a comma-separated list of event types; an unknown name is a 400 listing the known ones.
pub fn parse_types(list: Option<&str>) -> ApiResult<Vec<EventType>> {
    let Some(list) = list else { return Ok(Vec::new()) };
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            EventType::parse(t).ok_or_else(|| {
                let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                ApiError::new(
                    ErrorCode::InvalidEventType,
                    format!("unknown event type `{t}`: use {}", known.join(", ")),
                )
            })
        })
        .collect()
}

/// Filter of a workflow's events.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only these event types (comma-separated).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub types: Option<String>,
    /// Only events of this task.
    pub task_id: Option<String>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page; an event's `seq` works too (the events after it follow).
    pub cursor: Option<String>,
}

/// Events of a workflow, oldest first.
#[utoipa::path(get, path = "/v1/workflows/{id}/events", operation_id = "listWorkflowEvents", tag = "events",
    params(("id" = String, Path, description = "Workflow id"), EventsQuery),
    responses((status = 200, body = Page<Event>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn workflow_events(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Json<Page<Event>>> {
    let query = EventQuery {
        types: parse_types(q.types.as_deref())?,
        task_id: q.task_id.filter(|t| !t.is_empty()),
        after: position_cursor(q.cursor.as_deref())?.unwrap_or(0),
        limit: page_size(q.limit),
    };
    events_page(&s, &id, &query).await.map(Json)
}

/// A page of the events of workflow `id` that `query` selects.
async fn events_page(s: &AppState, id: &str, query: &EventQuery) -> ApiResult<Page<Event>> {
    let store = s.engine.store();
    let events = store.workflow_events(id, query).await?;
    if events.is_empty() {
        store.last_event_seq(id).await?; // 404 for an unknown workflow
    }
    Ok(Page::limited(events, query.limit as usize, |e| e.seq.to_string()))
}

/// A workflow's events grouped as lifecycle, tasks, handoffs and failures.
#[utoipa::path(get, path = "/v1/workflows/{id}/timeline", operation_id = "getTimeline", tag = "events",
    params(("id" = String, Path, description = "Workflow id")),
    responses((status = 200, body = Timeline), (status = 404, body = Problem)))]
pub async fn timeline(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Timeline>> {
    Ok(Json(s.engine.store().timeline(&id).await?))
}

/// A page of a listing without filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size (default 100, at most 1000).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The handoff chain of a workflow: its `handoff` events, in order.
#[utoipa::path(get, path = "/v1/workflows/{id}/handoffs", operation_id = "listHandoffs", tag = "events",
    params(("id" = String, Path, description = "Workflow id"), PageQuery),
    responses((status = 200, body = Page<Event>), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn handoffs(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Event>>> {
    let query = EventQuery {
        types: vec![EventType::Handoff],
        task_id: None,
        after: position_cursor(q.cursor.as_deref())?.unwrap_or(0),
        limit: page_size(q.limit),
    };
    events_page(&s, &id, &query).await.map(Json)
}

/// Filter of an agent's events.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentQuery {
    /// Only these event types (comma-separated).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub types: Option<String>,
    /// `oldest` first (the default) or `newest` first.
    #[param(inline)]
    pub order: Option<Order>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (in the same order).
    pub cursor: Option<String>,
}

/// Events in which an agent took part (as actor, source or target), in the order of the
/// transactions that wrote them: oldest first, or newest first with `order=newest`.
#[utoipa::path(get, path = "/v1/agents/{agent_id}/events", operation_id = "listAgentEvents", tag = "events",
    params(("agent_id" = String, Path, description = "Agent id"), AgentQuery),
    responses((status = 200, body = Page<Event>), (status = 400, body = Problem)))]
pub async fn agent_events(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiPath(agent_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<AgentQuery>,
) -> ApiResult<Json<Page<Event>>> {
    let after = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(AgentCursor::parse(c).ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidCursor, "cursor must be the `next_cursor` of an earlier page")
        })?),
    };
    let query = AgentEventsQuery {
        types: parse_types(q.types.as_deref())?,
        order: q.order.unwrap_or_default(),
        after,
        limit: page_size(q.limit),
    };
    let (events, next) = s.engine.store().agent_events(&agent_id, &query).await?;
    Ok(Json(Page { items: events, next_cursor: next.map(|c| c.to_string()) }))
}

/// Scope of the statistics.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Statistics of this workflow only (all workflows when absent).
    pub workflow_id: Option<String>,
}

/// Statistics over the events of one workflow or all.
#[utoipa::path(get, path = "/v1/stats", operation_id = "getStatistics", tag = "events", params(StatsQuery),
    responses((status = 200, body = Statistics), (status = 404, body = Problem)))]
pub async fn stats(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<Statistics>> {
    let id = q.workflow_id.filter(|w| !w.is_empty());
    Ok(Json(s.engine.store().statistics(id.as_deref()).await?))
}

/// Retention: which events to delete.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetentionQuery {
    /// Delete events older than this many days (>= 0; fractions allowed).
    pub older_than_days: f64,
}

/// What a retention run deleted.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub deleted: u64,
    pub older_than_days: f64,
}

/// Delete events older than N days.
#[utoipa::path(delete, path = "/v1/events", operation_id = "deleteOldEvents", tag = "events", params(RetentionQuery),
    responses((status = 200, body = Deleted), (status = 400, body = Problem)))]
pub async fn retention(
    auth: CanAdmin,
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<RetentionQuery>,
) -> ApiResult<Json<Deleted>> {
    let days = q.older_than_days;
    if !days.is_finite() || !(0.0..=1e6).contains(&days) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("older_than_days must be a number of days between 0 and 1000000, not {days}"),
        ));
    }
    let deleted = s.engine.store().delete_events_older_than(days).await?;
    auth.audit_done(&s, None, Some(serde_json::json!({ "older_than_days": days, "deleted": deleted }))).await;
    Ok(Json(Deleted { deleted, older_than_days: days }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_lists() {
        assert_eq!(
            parse_types(Some("handoff, task_failed,")).unwrap(),
            vec![EventType::Handoff, EventType::TaskFailed]
        );
        assert!(parse_types(None).unwrap().is_empty());
        let err = parse_types(Some("handof")).unwrap_err();
        assert!(err.message.contains("handof") && err.message.contains("handoff"));
    }
}
