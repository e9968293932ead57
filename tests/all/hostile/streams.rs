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

async fn refused(app: &App, id: &str, status: StatusCode, code: &str) {
    let resp = open(app, id).await;
    let got = resp.status();
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_error(got, &v, status, code);
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
    refused(&app, &id, StatusCode::TOO_MANY_REQUESTS, "too_many_streams").await;
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
    refused(&app, &id, StatusCode::SERVICE_UNAVAILABLE, "streams_full").await;
}

/// A watcher that stops reading is disconnected once a write has waited `client_write_timeout`
/// (3 s here),
/// which gives its stream's slot back; the host does not buffer for it meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_stops_reading_is_disconnected() {
    let host = crate::support::Served::start(
        &["testkit"],
        "client_write_timeout = 3\nmax_event_streams_per_client = 1\nmax_body_bytes = 20000000\n",
    )
    .await;
    // About 25 MB of events (each failure's 60 KB message is in its events), more than the
    // socket buffers hold; then a task that keeps the workflow running.
    let message = "x".repeat(60_000);
    let mut tasks: Vec<serde_json::Value> = (0..200)
        .map(|i| {
            json!({"task_id": format!("f{i}"), "agent_type": "testkit", "allow_failure": true,
            "input": {"action": "fatal", "message": message}})
        })
        .collect();
    tasks.push(json!({"task_id": "wait", "agent_type": "testkit", "input": {"action": "sleep", "ms": 120_000}}));
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(format!("{}/v1/workflows", host.base()))
        .json(&json!({"tasks": tasks}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["workflow_id"].as_str().expect("a workflow id").to_string();
    let stream_url = format!("{}/v1/workflows/{id}/events/stream", host.base());
    crate::support::eventually_async("the 200 failures", || async {
        let s: serde_json::Value =
            client.get(format!("{}/v1/workflows/{id}", host.base())).send().await.unwrap().json().await.unwrap();
        s["tasks"].as_array().unwrap().iter().filter(|t| t["status"] == "failed").count() == 200
    })
    .await;

    // A client that asks for the stream with a tiny receive buffer and never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(([127, 0, 0, 1], host.port).into()).await.unwrap();
    let request = format!("GET /v1/workflows/{id}/events/stream HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut stalled, request.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let probe = client.get(&stream_url).send().await.unwrap().status();
    assert_eq!(probe, StatusCode::TOO_MANY_REQUESTS, "the stalled stream holds the client's one slot");

    // Closed by the host after 3 s without progress: the slot is free again.
    crate::support::eventually_async("the host to close the stalled connection", || async {
        client.get(&stream_url).send().await.unwrap().status() == StatusCode::OK
    })
    .await;
    let mut received = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut stalled, &mut received),
    )
    .await
    .expect("the host closed the connection");
    assert!(
        read.is_err() || received.len() < 20_000_000,
        "the stalled client got everything: {} bytes",
        received.len()
    );
    assert!(host.stderr().contains("client_write_timeout"), "the host says why it closed: {}", host.stderr());
}
