//! `/v1/workflows/{id}/events/stream`: a workflow's events as server-sent events, live.
//!
//! Each event's SSE `id` is its position (`seq`), so a client resumes with `Last-Event-ID` (or
//! `?after=N`). The stream ends with an `end` event once the workflow is terminal and every event
//! has been sent. Live events come from the workflow's tail ([`super::tails`]), shared by all its
//! streams; the store is read directly only to catch up.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Extension;
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast;
use utoipa::{IntoParams, ToSchema};

use super::auth::CanRead;
use super::connections::ClientAddr;
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::extract::{ApiPath, ApiQuery};
use super::slots::StreamSlot;
use super::tails::{Encoded, Update, BATCH};
use super::AppState;
use crate::events::EventQuery;

/// Where the stream starts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Send events after this position (default 0: from the start). `Last-Event-ID` wins.
    pub after: Option<i64>,
}

/// One server-sent event of a workflow's stream, as a client's SSE parser reads it.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the stream's wire format in the OpenAPI document only
pub struct StreamMessage {
    /// The event's position (`seq`); resume after it with `Last-Event-ID`. Absent on `end`.
    id: Option<String>,
    /// `end` once the workflow has ended and every event was sent (parsers default to `message`).
    event: Option<String>,
    /// The `Event` as JSON; on `end`, `{"status", "last_seq"}`.
    data: String,
}

/// Stream a workflow's events (server-sent events; `id` = position, `data` = the event as JSON),
/// from a position, live, ending with an `end` event when the workflow is terminal.
#[utoipa::path(get, path = "/v1/workflows/{id}/events/stream", operation_id = "streamWorkflowEvents", tag = "events",
    params(
        ("id" = String, Path, description = "Workflow id"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this position"),
        StreamQuery,
    ),
    responses(
        (status = 200, description = "Server-sent events, one per coordination event: `id` is its `seq`, \
         `data` the `Event` as JSON (the schema `Event`); when the workflow has ended, an `end` \
         event (`status`, `last_seq`); a comment line every 15 s keeps the connection open", content_type = "text/event-stream", body = StreamMessage,
         example = json!({"id": "3", "data": "{\"seq\":3,\"event_type\":\"task_started\",...}"})),
        (status = 400, body = Problem),
        (status = 404, body = Problem),
        (status = 429, description = "This client has max_event_streams_per_client streams open", body = Problem),
        (status = 503, description = "The host serves max_event_streams streams", body = Problem),
    ))]
pub async fn event_stream(
    _auth: CanRead,
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<StreamQuery>,
    client: Option<Extension<ConnectInfo<ClientAddr>>>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let after = match headers.get("last-event-id") {
        Some(v) => v.to_str().ok().and_then(|v| v.trim().parse::<i64>().ok()).ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidLastEventId, "the Last-Event-ID header must be an event position (integer)")
        })?,
        None => q.after.unwrap_or(0),
    }
    .max(0);
    s.engine.store().last_event_seq(&id).await?; // 404 before the stream starts
    let slot = s.streams.take(client.map(|Extension(ConnectInfo(ClientAddr(addr)))| addr.ip()))?;
    // Followed before the first read, so no change between the read and the wait is missed.
    let tail = s.tails.follow(&id);
    Ok(Sse::new(events(s, id, after, tail, slot)).keep_alive(KeepAlive::default()))
}

fn events(
    s: AppState,
    id: String,
    mut pos: i64,
    mut tail: broadcast::Receiver<Arc<Update>>,
    slot: StreamSlot,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    async_stream::stream! {
        // Held as long as the stream is.
        let _slot = slot;
        let store = s.engine.store().clone();
        'catch_up: loop {
            // From the store, until the stream has what the store holds now.
            let mut terminal_seen = false;
            loop {
                let q = EventQuery { after: pos, limit: BATCH, ..Default::default() };
                let batch = match store.workflow_events(&id, &q).await {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(workflow_id = %id, "event stream stopped: {e}");
                        let why = if e.is_unavailable() { "the database cannot be reached now" } else { "reading the events failed" };
                        yield Ok(error_event(&format!("{why}: reconnect with Last-Event-ID: {pos}")));
                        break 'catch_up;
                    }
                };
                let n = batch.len() as i64;
                for e in batch {
                    pos = e.seq;
                    yield Ok(sse_event(e.seq, &Encoded::new(&e).json));
                }
                if n == BATCH {
                    continue;
                }
                if terminal_seen {
                    // Status was terminal before this read: every event is now sent.
                    let status = store.workflow_status(&id).await.map(|s| s.to_string()).unwrap_or_default();
                    yield Ok(end_event(&status, pos));
                    break 'catch_up;
                }
                match store.workflow_status(&id).await {
                    Ok(status) if status.is_terminal() => terminal_seen = true,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(workflow_id = %id, "event stream stopped: {e}");
                        yield Ok(error_event(&format!("reading the workflow's status failed: reconnect with Last-Event-ID: {pos}")));
                        break 'catch_up;
                    }
                }
            }
            // Live, from the workflow's tail; back to the store after a gap, a lag or a stop.
            loop {
                let update = match tail.recv().await {
                    Ok(update) => update,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        tracing::debug!(workflow_id = %id, "an event stream fell behind its tail: reading the store");
                        continue 'catch_up;
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        tail = s.tails.follow(&id);
                        continue 'catch_up;
                    }
                };
                match &*update {
                    Update::Events(events) => {
                        if events.first().is_some_and(|e| e.seq > pos + 1) {
                            continue 'catch_up;
                        }
                        for e in events {
                            if e.seq > pos {
                                pos = e.seq;
                                yield Ok(sse_event(e.seq, &e.json));
                            }
                        }
                    }
                    Update::End { last_seq, .. } if *last_seq > pos => continue 'catch_up,
                    Update::End { status, .. } => {
                        yield Ok(end_event(status, pos));
                        break 'catch_up;
                    }
                }
            }
        }
    }
}

fn sse_event(seq: i64, json: &str) -> SseEvent {
    SseEvent::default().id(seq.to_string()).data(json)
}

fn end_event(status: &str, last_seq: i64) -> SseEvent {
    SseEvent::default().event("end").data(serde_json::json!({ "status": status, "last_seq": last_seq }).to_string())
}

fn error_event(message: &str) -> SseEvent {
    SseEvent::default().event("error").data(serde_json::json!({ "message": message }).to_string())
}
