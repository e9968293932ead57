//! Extractors whose rejections are [`ApiError`]s: JSON bodies (415 for a wrong content type, 413
//! over the size limit, 400 with serde's message, line and column), query strings and paths (400).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::error::{ApiError, ErrorCode};
use crate::workflow::{id_problem, MAX_ID_BYTES};

/// A JSON body, parsed into `T`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "the request body must be JSON: send it with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parse a JSON body, turning serde's error into a 400 that says where the problem is.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let category = match e.classify() {
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Eof => "eof",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Io => "io",
        };
        ApiError::new(ErrorCode::InvalidJson, format!("the request body is not a valid request: {e}"))
            .details(json!({ "line": e.line(), "column": e.column(), "category": category }))
    })
}

/// Map a failure to read the body: 413 over the limit, else the rejection's own status.
pub fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            "the request body is larger than this host accepts: send a smaller body, or raise the limit \
             (`max_body_bytes` / `max_plugin_bytes` in the host configuration)",
        )
    } else {
        ApiError::new(ErrorCode::InvalidBody, format!("cannot read the request body: {}", rejection.body_text()))
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Query string parameters, parsed into `T`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        if let Some(problem) = parts.uri.query().and_then(control_in_query) {
            return Err(ApiError::new(ErrorCode::InvalidQuery, format!("invalid query parameters: {problem}")));
        }
        axum::extract::Query::<T>::from_request_parts(parts, state).await.map(|q| ApiQuery(q.0)).map_err(
            |e: QueryRejection| {
                ApiError::new(ErrorCode::InvalidQuery, format!("invalid query parameters: {}", e.body_text()))
            },
        )
    }
}

/// Path parameters, parsed into `T`.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        let invalid = |problem: String| ApiError::new(ErrorCode::InvalidPath, format!("invalid path: {problem}"));
        let path = axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e: PathRejection| invalid(e.body_text()))?;
        // Ids have the limits of submitted ids: a longer one, or a control character, names nothing.
        if let Ok(raw) = RawPathParams::from_request_parts(parts, state).await {
            for (name, value) in &raw {
                if let Some(problem) = id_problem(value, MAX_ID_BYTES) {
                    return Err(invalid(format!("`{name}`: {problem}")));
                }
            }
        }
        Ok(ApiPath(path.0))
    }
}

/// A percent-encoded control character (`%00` to `%1F`, `%7F`) or a raw one in a query string.
fn control_in_query(query: &str) -> Option<String> {
    let bytes = query.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii_control() {
            return Some(format!("a control character at byte {i}: use printable characters only"));
        }
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        let decoded = hex.filter(|_| b == b'%').and_then(|h| u8::from_str_radix(h, 16).ok());
        if let Some(c) = decoded.filter(u8::is_ascii_control) {
            return Some(format!("`%{c:02X}` is a control character: use printable characters only"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_carry_line_and_column() {
        let err = parse_json::<serde_json::Value>(b"{\n  \"a\": ,\n}").unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let d = err.details.unwrap();
        assert_eq!(d["line"], 2);
        assert_eq!(d["category"], "syntax");
    }

    #[test]
    fn control_characters_in_queries_are_found() {
        assert!(control_in_query("cursor=%00%ff").unwrap().contains("`%00`"));
        assert!(control_in_query("a=%1f").is_some());
        assert!(control_in_query("a=%7F&b=1").is_some());
        assert_eq!(control_in_query("cursor=abc%20def&limit=10%"), None);
        assert_eq!(control_in_query("a=%e2%82%ac"), None);
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(header::CONTENT_TYPE, "application/json; charset=utf-8".parse().unwrap());
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, "application/merge-patch+json".parse().unwrap());
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, "application/x-www-form-urlencoded".parse().unwrap());
        assert!(!is_json(&h));
    }
}
