//! Errors of the API: every failure is `{"error": {"code", "message", "details"}}` with the status
//! that tells whether the client (4xx) or the host (5xx) is at fault.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::engine::EngineError;
use crate::store::StoreError;
use crate::workflow::ValidationError;

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds after which the client may try again (`Retry-After`), for a 429 or 503.
    pub retry_after_s: Option<u64>,
}

/// Body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What failed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`workflow_not_found`, `cycle`, `invalid_json` ...).
    pub code: String,
    /// What failed and what to do about it.
    pub message: String,
    /// Structured detail (the tasks on a cycle, the line and column of a JSON error ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub details: Option<Value>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), details: None, retry_after_s: None }
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

    /// 400: the request is malformed.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404: no such route or resource.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 500: the host failed. The error is logged under a correlation id; the client gets `what`
    /// (which must name no internals) and that id.
    pub fn internal(what: &str, err: &dyn std::fmt::Display) -> ApiError {
        let id = uuid::Uuid::new_v4().simple().to_string();
        tracing::error!(correlation_id = %id, "{what}: {err}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{what}; the host logged the details under correlation id {id}"),
        )
        .details(json!({ "correlation_id": id }))
    }

    /// 503: the database cannot be reached now. Logged under a correlation id; no driver text
    /// reaches the client.
    pub fn database_unavailable(err: &dyn std::fmt::Display) -> ApiError {
        let id = uuid::Uuid::new_v4().simple().to_string();
        tracing::warn!(correlation_id = %id, "database unavailable: {err}");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            format!("the database is not reachable now: retry later (correlation id {id})"),
        )
        .details(json!({ "correlation_id": id }))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail { code: self.code.to_string(), message: self.message, details: self.details },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = HeaderValue::from_static("Bearer realm=\"hyphae\"");
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(seconds) = self.retry_after_s {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match &e {
            StoreError::WorkflowNotFound(id) => {
                ApiError::not_found("workflow_not_found", e.to_string()).details(json!({ "workflow_id": id }))
            }
            StoreError::VersionNotFound(id, v) => ApiError::not_found(
                "version_not_found",
                format!("{e}: list its versions with GET /v1/workflows/{id}/versions"),
            )
            .details(json!({ "workflow_id": id, "version": v })),
            StoreError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
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
        let err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string());
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
