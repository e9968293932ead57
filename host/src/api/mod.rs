//! HTTP API (axum) under `/v1`, health, metrics and OpenAPI.
