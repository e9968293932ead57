//! Event streams are bounded: per client address and on the host, with the usual error shape;
//! a closed stream gives its slot back.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use tower::ServiceExt;

use crate::api::{app_with, assert_error, App};
use crate::harness::Backend;

async fn open(app: &App, id: &str) -> axum::response::Response {
    let req = Request::get(format!("/v1/workflows/{id}/events/stream")).body(Body::empty()).unwrap();
    app.router.clone().oneshot(req).await.unwrap()
}

async fn refused(app: &App, id: &str, status: StatusCode) {
    let resp = open(app, id).await;
    let got = resp.status();
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_error(got, &v, status, "too_many_streams");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_are_bounded_per_client_and_per_host() {
    let app = app_with(Backend::Sqlite, |c| {
        c.max_event_streams_per_client = 2;
        c.max_event_streams = 3;
    })
    .await;
    let id = app.submit(json!({"start": false, "tasks": [{"task_id": "a", "agent_type": "echo"}]})).await;
    let first = open(&app, &id).await;
    let second = open(&app, &id).await;
    assert_eq!((first.status(), second.status()), (StatusCode::OK, StatusCode::OK));
    // Requests without a known address count as one client.
    refused(&app, &id, StatusCode::TOO_MANY_REQUESTS).await;
    drop(first);
    let third = open(&app, &id).await;
    assert_eq!(third.status(), StatusCode::OK, "a closed stream gives its slot back");
    drop((second, third));

    let app = app_with(Backend::Sqlite, |c| {
        c.max_event_streams_per_client = 10;
        c.max_event_streams = 2;
    })
    .await;
    let id = app.submit(json!({"start": false, "tasks": [{"task_id": "a", "agent_type": "echo"}]})).await;
    let _held = (open(&app, &id).await, open(&app, &id).await);
    refused(&app, &id, StatusCode::SERVICE_UNAVAILABLE).await;
}
