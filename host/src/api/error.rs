//! Errors of the API: every failure is an RFC 9457 problem (`application/problem+json`) whose
//! `code` names it; each code has one status, which tells whether the client (4xx) or the host
//! (5xx) is at fault. [`ErrorCode::table`] documents them all (docs/errors.md).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::engine::EngineError;
use crate::store::StoreError;
use crate::workflow::ValidationError;

/// The media type of every error response (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of a problem's `type`: a tag URI (RFC 4151) naming the code; it is not a link.
pub const PROBLEM_TYPE_PREFIX: &str = "tag:hyphae.dev,2026:problem:";

macro_rules! error_codes {
    ($($variant:ident => ($status:ident, $code:literal, $title:literal, $when:literal),)*) => {
        /// Every `code` an error response can carry, with its status and title.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $($variant,)* }

        impl ErrorCode {
            /// Every code, in the order of the documentation's table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable name clients match on (`workflow_not_found` ...).
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status of every response with this code.
            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::$status,)* }
            }

            /// A short summary that does not change from one occurrence to the next.
            pub fn title(self) -> &'static str {
                match self { $(ErrorCode::$variant => $title,)* }
            }

            /// When it is returned and what to do (the documentation's table).
            pub fn when(self) -> &'static str {
                match self { $(ErrorCode::$variant => $when,)* }
            }
        }
    };
}

error_codes! {
    InvalidJson => (BAD_REQUEST, "invalid_json", "Malformed JSON body",
        "The body is not JSON or not the request's shape; `details` gives `line`, `column` and `category`."),
    InvalidBody => (BAD_REQUEST, "invalid_body", "Unreadable request body", "The body could not be read: send it again."),
    EmptyBody => (BAD_REQUEST, "empty_body", "Empty request body", "Send the component or manifest file as the body."),
    InvalidQuery => (BAD_REQUEST, "invalid_query", "Invalid query parameters", "A query parameter is malformed or out of range: the message names it."),
    InvalidPath => (BAD_REQUEST, "invalid_path", "Invalid path parameter", "An id in the path is malformed: the message says what an id may contain."),
    InvalidStatus => (BAD_REQUEST, "invalid_status", "Unknown status", "The `status` filter names no status: the message lists them."),
    InvalidCursor => (BAD_REQUEST, "invalid_cursor", "Invalid cursor", "Pass the `next_cursor` of an earlier page unchanged."),
    InvalidEventType => (BAD_REQUEST, "invalid_event_type", "Unknown event type", "The `type` filter names no event type: the message lists them."),
    InvalidLastEventId => (BAD_REQUEST, "invalid_last_event_id", "Invalid Last-Event-ID", "The `Last-Event-ID` header must be an event position (an integer)."),
    InvalidVersion => (BAD_REQUEST, "invalid_version", "No such version", "Rollback to a version the workflow has: list them with `GET /v1/workflows/{id}/versions`."),
    InvalidManifest => (BAD_REQUEST, "invalid_manifest", "Manifest is not text", "Send the manifest's TOML file as UTF-8 text."),
    InvalidAgentType => (BAD_REQUEST, "invalid_agent_type", "Invalid agent type", "The agent type in the path is not a valid name: the message says what a name may contain."),
    InvalidIdempotencyKey => (BAD_REQUEST, "invalid_idempotency_key", "Invalid Idempotency-Key",
        "The `Idempotency-Key` header is not text, or differs from the body's `idempotency_key`: send one key."),
    InvalidSettings => (BAD_REQUEST, "invalid_settings", "Invalid settings", "A setting is out of range or not a log filter: the message names it. Nothing was changed."),
    Unauthorized => (UNAUTHORIZED, "unauthorized", "Token missing or unknown", "Send `Authorization: Bearer TOKEN` with a token in force (`hyphae token create`)."),
    Forbidden => (FORBIDDEN, "forbidden", "Role may not do this", "The token's role may not do this; `details.needed` lists the roles that may."),
    RouteNotFound => (NOT_FOUND, "route_not_found", "No such route", "See `GET /openapi.json` for the routes of this API."),
    WorkflowNotFound => (NOT_FOUND, "workflow_not_found", "Workflow not found", "No workflow has this id (or retention deleted it)."),
    TaskNotFound => (NOT_FOUND, "task_not_found", "Task not found", "The workflow has no task with this id: list its tasks."),
    VersionNotFound => (NOT_FOUND, "version_not_found", "Version not found", "The workflow has no such version: list its versions."),
    TokenNotFound => (NOT_FOUND, "token_not_found", "Token not found", "No token in force has this id or name: list them with `GET /v1/tokens`."),
    PluginNotFound => (NOT_FOUND, "plugin_not_found", "Plugin not found", "No plugin file serves this agent type (or, to remove one, the API installed none): list them with `GET /v1/plugins`."),
    MethodNotAllowed => (METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed", "The route does not take this method: see `GET /openapi.json`."),
    Conflict => (CONFLICT, "conflict", "Not in a state that allows this", "The workflow's status does not allow this control (pause it first, or it has ended)."),
    NoPluginsDir => (CONFLICT, "no_plugins_dir", "Host has no plugins directory", "Start the host with `--plugins-dir` to install plugins through the API."),
    PluginConflict => (CONFLICT, "plugin_conflict", "Plugin file conflict", "Another file already serves this agent type: the message names it."),
    PayloadTooLarge => (PAYLOAD_TOO_LARGE, "payload_too_large", "Body too large", "Send a smaller body or raise `max_body_bytes` / `max_plugin_bytes`."),
    UnsupportedMediaType => (UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Body is not JSON", "Send the body with `Content-Type: application/json`."),
    InvalidName => (UNPROCESSABLE_ENTITY, "invalid_name", "Invalid token name", "The message says what a token name may contain."),
    PluginRefused => (UNPROCESSABLE_ENTITY, "plugin_refused", "Plugin or manifest refused", "The host cannot run this component or manifest; the message says why. Nothing was stored."),
    IdempotencyKeyReused => (UNPROCESSABLE_ENTITY, "idempotency_key_reused", "Idempotency key used with another request",
        "An earlier submission with this key had a different body: use a new key for a new workflow."),
    InvalidWorkflow => (UNPROCESSABLE_ENTITY, "invalid_workflow", "Invalid workflow", "A field of the workflow is out of range or empty: the message names it."),
    DuplicateTask => (UNPROCESSABLE_ENTITY, "duplicate_task", "Duplicate task id", "Two tasks have the id in `details.task`."),
    UnknownDependency => (UNPROCESSABLE_ENTITY, "unknown_dependency", "Unknown dependency", "A task depends on a task the workflow does not have."),
    SelfDependency => (UNPROCESSABLE_ENTITY, "self_dependency", "Task depends on itself", "Remove the task from its own dependencies."),
    DuplicateDependency => (UNPROCESSABLE_ENTITY, "duplicate_dependency", "Dependency listed twice", "List each dependency once."),
    Cycle => (UNPROCESSABLE_ENTITY, "cycle", "Dependency cycle", "The tasks in `details.cycle` depend on each other in a circle."),
    UnknownAgentType => (UNPROCESSABLE_ENTITY, "unknown_agent_type", "No plugin serves the agent type", "Install a plugin for it, or start a host that has one."),
    InvalidRetryPolicy => (UNPROCESSABLE_ENTITY, "invalid_retry_policy", "Invalid retry policy", "The message names the field out of range."),
    InvalidTimeout => (UNPROCESSABLE_ENTITY, "invalid_timeout", "Invalid timeout", "A timeout is between 0.001 s and 7 days."),
    RateLimited => (TOO_MANY_REQUESTS, "rate_limited", "Rate limit reached",
        "This token sent more submissions or controls than the host accepts: retry after `Retry-After` seconds."),
    TooManyStreams => (TOO_MANY_REQUESTS, "too_many_streams", "Too many event streams", "This client has `max_event_streams_per_client` streams open: close one."),
    Internal => (INTERNAL_SERVER_ERROR, "internal", "The host failed", "The host logged the details under `details.correlation_id`."),
    DatabaseUnavailable => (SERVICE_UNAVAILABLE, "database_unavailable", "Database unreachable", "Retry later; the host logged the details under `details.correlation_id`."),
    TooManyConnections => (SERVICE_UNAVAILABLE, "too_many_connections", "Host holds its most connections",
        "The host holds `max_connections` connections: close idle ones or retry later."),
    StreamsFull => (SERVICE_UNAVAILABLE, "streams_full", "Host serves its most event streams", "The host has `max_event_streams` streams open: retry later."),
}

impl ErrorCode {
    /// The code of this name, if it is one.
    pub fn named(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == name)
    }

    /// The documentation's table of every code (Markdown), generated from [`ErrorCode::ALL`].
    pub fn table() -> String {
        let mut out = String::from("| Status | `code` | Title | When, and what to do |\n|---|---|---|---|\n");
        for c in ErrorCode::ALL {
            out.push_str(&format!("| {} | `{}` | {} | {} |\n", c.status().as_u16(), c.as_str(), c.title(), c.when()));
        }
        out
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds after which the client may try again (`Retry-After`), for a 429 or 503.
    pub retry_after_s: Option<u64>,
}

/// Body of every error response: an RFC 9457 problem, `application/problem+json`, with the
/// extension members `code` and `details`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// `tag:hyphae.dev,2026:problem:CODE`: identifies the kind of problem (not a link).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem, the same for every occurrence.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What failed and what to do about it, for this occurrence.
    pub detail: String,
    /// Stable machine-readable code (`workflow_not_found`, `cycle`, `invalid_json` ...); every
    /// code is in the table of docs/errors.md.
    pub code: String,
    /// Structured detail (the tasks on a cycle, the line and column of a JSON error ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

impl ApiError {
    /// An error with `code` (which gives the status) and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), details: None, retry_after_s: None }
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The same error with structured details.
    pub fn details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }

    /// The same error, telling the client to retry after `seconds`.
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after_s = Some(seconds);
        self
    }

    /// 500: the host failed. The error is logged under a correlation id; the client gets `what`
    /// (which must name no internals) and that id.
    pub fn internal(what: &str, err: &dyn std::fmt::Display) -> ApiError {
        let id = uuid::Uuid::new_v4().simple().to_string();
        tracing::error!(correlation_id = %id, "{what}: {err}");
        ApiError::new(ErrorCode::Internal, format!("{what}; the host logged the details under correlation id {id}"))
            .details(json!({ "correlation_id": id }))
    }

    /// 503: the database cannot be reached now. Logged under a correlation id; no driver text
    /// reaches the client.
    pub fn database_unavailable(err: &dyn std::fmt::Display) -> ApiError {
        let id = uuid::Uuid::new_v4().simple().to_string();
        tracing::warn!(correlation_id = %id, "database unavailable: {err}");
        ApiError::new(
            ErrorCode::DatabaseUnavailable,
            format!("the database is not reachable now: retry later (correlation id {id})"),
        )
        .details(json!({ "correlation_id": id }))
    }

    /// The problem document of this error.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("{PROBLEM_TYPE_PREFIX}{}", self.code),
            title: self.code.title().to_string(),
            status: self.status().as_u16(),
            detail: self.message.clone(),
            code: self.code.as_str().to_string(),
            details: self.details.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status(), self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.status() == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"hyphae\""));
        }
        if let Some(seconds) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match &e {
            StoreError::WorkflowNotFound(id) => {
                ApiError::new(ErrorCode::WorkflowNotFound, e.to_string()).details(json!({ "workflow_id": id }))
            }
            StoreError::VersionNotFound(id, v) => ApiError::new(
                ErrorCode::VersionNotFound,
                format!("{e}: list its versions with GET /v1/workflows/{id}/versions"),
            )
            .details(json!({ "workflow_id": id, "version": v })),
            StoreError::Conflict(_) => ApiError::new(ErrorCode::Conflict, e.to_string()),
            StoreError::IdempotencyKeyReused { key, workflow_id } => {
                ApiError::new(ErrorCode::IdempotencyKeyReused, e.to_string())
                    .details(json!({ "idempotency_key": key, "workflow_id": workflow_id }))
            }
            _ if e.is_unavailable() => ApiError::database_unavailable(&e),
            _ => ApiError::internal("a database operation failed", &e),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> ApiError {
        let details = match &e {
            ValidationError::DuplicateTask(t) | ValidationError::SelfDependency(t) => json!({ "task": t }),
            ValidationError::UnknownDependency { task, dependency }
            | ValidationError::DuplicateDependency { task, dependency } => {
                json!({ "task": task, "dependency": dependency })
            }
            ValidationError::Cycle(tasks) => json!({ "cycle": tasks }),
            ValidationError::UnknownAgentType { task, agent_type } => {
                json!({ "task": task, "agent_type": agent_type })
            }
            ValidationError::RetryPolicy { task, .. }
            | ValidationError::Timeout { task }
            | ValidationError::Handoff { task, .. } => json!({ "task": task }),
            ValidationError::EmptyField { index, field } => json!({ "index": index, "field": field }),
            ValidationError::TooManyTasks(n) => json!({ "tasks": n }),
            ValidationError::TooDeep { task, field, depth } => {
                json!({ "task": task, "field": field, "depth": depth, "limit": crate::json::MAX_DEPTH })
            }
            ValidationError::BadName { task, field, .. } => json!({ "task": task, "field": field }),
            ValidationError::Empty | ValidationError::MaxParallel => Value::Null,
        };
        let err = ApiError::new(ErrorCode::named(e.code()).unwrap_or(ErrorCode::InvalidWorkflow), e.to_string());
        if details.is_null() {
            err
        } else {
            err.details(details)
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            EngineError::Invalid(v) => v.into(),
            EngineError::Store(s) => s.into(),
        }
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_match_their_names() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert_eq!(ErrorCode::named(c.as_str()), Some(*c));
            assert!(c.status().is_client_error() || c.status().is_server_error(), "{c}");
        }
    }

    #[test]
    fn every_validation_code_is_a_documented_code() {
        let e = ValidationError::Cycle(vec!["a".into()]);
        assert_eq!(ApiError::from(e).code, ErrorCode::Cycle);
        for name in [
            "invalid_workflow",
            "duplicate_task",
            "unknown_dependency",
            "self_dependency",
            "duplicate_dependency",
            "cycle",
            "unknown_agent_type",
            "invalid_retry_policy",
            "invalid_timeout",
        ] {
            assert!(ErrorCode::named(name).is_some_and(|c| c.status() == StatusCode::UNPROCESSABLE_ENTITY), "{name}");
        }
    }

    #[test]
    fn a_problem_carries_type_title_status_detail_and_code() {
        let p = ApiError::new(ErrorCode::TaskNotFound, "no task `x`").details(json!({ "task": "x" })).problem();
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v,
            json!({ "type": "tag:hyphae.dev,2026:problem:task_not_found", "title": "Task not found", "status": 404,
                    "detail": "no task `x`", "code": "task_not_found", "details": { "task": "x" } })
        );
    }

    /// docs/errors.md holds the generated table; `HYPHAE_BLESS=1 cargo test` rewrites it.
    #[test]
    fn the_documented_table_is_the_generated_one() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/errors.md");
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        let (begin, end) = ("<!-- generated: ErrorCode::table -->\n", "<!-- end of generated table -->");
        let at = doc.find(begin).map(|i| i + begin.len());
        let until = doc.find(end);
        let (Some(at), Some(until)) = (at, until) else { panic!("{} lacks the table markers", path.display()) };
        let table = ErrorCode::table();
        if doc[at..until] != table {
            if std::env::var_os("HYPHAE_BLESS").is_some() {
                std::fs::write(&path, format!("{}{table}{}", &doc[..at], &doc[until..])).unwrap();
            } else {
                panic!("docs/errors.md is out of date: run `HYPHAE_BLESS=1 cargo test -p hyphae --lib` to rewrite it");
            }
        }
    }
}
