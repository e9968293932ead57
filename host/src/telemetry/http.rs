//! HTTP metrics: an axum middleware counting the requests a host answers by method, route
//! template and status class, and timing them. Added to the router with
//! `.layer(axum::middleware::from_fn_with_state(metrics, telemetry::http::track))`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::Metrics;

/// Count and time one request. The route is the template the router matched
/// (`/v1/workflows/{id}`), never the path asked for, so its values are bounded by the routes;
/// `unmatched` when no route matched.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(req).await;
    let route = route.as_deref().unwrap_or("unmatched");
    metrics.http_request(method, route, response.status().as_u16(), started.elapsed());
    response
}

/// The method as a label value: one of the standard methods, else `other`.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    #[tokio::test]
    async fn counts_by_route_template_not_path() {
        let metrics = Arc::new(Metrics::new());
        let app = Router::new()
            .route("/v1/workflows/{id}", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(metrics.clone(), track));
        for uri in ["/v1/workflows/a", "/v1/workflows/b", "/nowhere/secret-id"] {
            app.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        }
        let weird = Method::from_bytes(b"BREW").unwrap();
        app.clone().oneshot(Request::builder().method(weird).uri("/x").body(Body::empty()).unwrap()).await.unwrap();
        let text = metrics.render(|| async { Ok::<_, String>(Default::default()) }).await;
        let ok = r#"hyphae_http_requests_total{method="GET",route="/v1/workflows/{id}",status="2xx"} 2"#;
        assert!(text.contains(ok), "{text}");
        assert!(
            text.contains(r#"hyphae_http_requests_total{method="GET",route="unmatched",status="4xx"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"method="other",route="unmatched""#), "{text}");
        assert!(!text.contains("secret-id"), "{text}");
        let count = r#"hyphae_http_request_duration_seconds_count{method="GET",route="/v1/workflows/{id}"} 2"#;
        assert!(text.contains(count), "{text}");
    }
}
