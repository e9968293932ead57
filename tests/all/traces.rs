//! OpenTelemetry: `hyphae serve` with an OTLP endpoint exports the spans of a workflow, its
//! attempts, their plugin calls and outbound requests to a small OTLP/HTTP (JSON) receiver started
//! here; the client's `traceparent` is the trace's root, and outbound requests carry it on.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use crate::support::{eventually_async, Served};
use crate::upstream::Upstream;

/// An OTLP/HTTP receiver: every span of every `POST /v1/traces`.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    async fn start(self) -> String {
        let spans = self.spans.clone();
        let app = Router::new().route(
            "/v1/traces",
            post(move |body: axum::body::Bytes| {
                let spans = spans.clone();
                async move {
                    let export: Value = serde_json::from_slice(&body).expect("OTLP JSON");
                    for rs in export["resourceSpans"].as_array().into_iter().flatten() {
                        assert_eq!(service(rs), Some("hyphae"), "{rs}");
                        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                            spans.lock().unwrap().extend(ss["spans"].as_array().into_iter().flatten().cloned());
                        }
                    }
                    "{}"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    fn named(&self, name: &str) -> Vec<Value> {
        self.spans.lock().unwrap().iter().filter(|s| s["name"] == name).cloned().collect()
    }
}

fn service(resource_spans: &Value) -> Option<&str> {
    let attrs = resource_spans["resource"]["attributes"].as_array()?;
    let name = attrs.iter().find(|a| a["key"] == "service.name")?;
    name["value"]["stringValue"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_a_workflow_reach_the_collector_and_outbound_requests_carry_the_trace() {
    let receiver = Receiver::default();
    let endpoint = receiver.clone().start().await;
    let upstream = Upstream::start().await;
    let manifest = format!("allowed_outbound_hosts = [\"{}\"]\n", upstream.origin());
    let toml = format!("otlp_endpoint = \"{endpoint}\"\n");
    let served = Served::start_with(&["echo", "http-probe"], &toml, &[("http-probe.toml", &manifest)]).await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let spec = json!({ "name": "traced", "tasks": [
        { "task_id": "call", "agent_type": "http-probe", "input": { "requests": [{ "url": upstream.url("/echo") }] } },
        { "task_id": "after", "agent_type": "echo", "dependencies": ["call"] }
    ]});
    let http = reqwest::Client::new();
    let submitted: Value = http
        .post(format!("{}/v1/workflows", served.base()))
        .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
        .json(&spec)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = submitted["workflow_id"].as_str().unwrap_or_else(|| panic!("{submitted}")).to_string();
    let status_url = format!("{}/v1/workflows/{id}?tasks_limit=0", served.base());
    eventually_async("the workflow completes", || async {
        let wf: Value = http.get(&status_url).send().await.unwrap().json().await.unwrap();
        wf["status"] == "completed"
    })
    .await;

    // The batch exporter sends every few seconds.
    let wait = tokio::time::timeout(Duration::from_secs(20), async {
        while receiver.named("attempt").len() < 2 || receiver.named("http.request").is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    assert!(wait.await.is_ok(), "spans received: {:?}\nhost log:\n{}", receiver.spans.lock().unwrap(), served.stderr());

    let workflow = &receiver.named("workflow")[0];
    assert_eq!(workflow["traceId"], trace_id, "{workflow}");
    assert_eq!(workflow["parentSpanId"], client_span, "the client's span is the parent: {workflow}");
    let attempts = receiver.named("attempt");
    for a in &attempts {
        assert_eq!((&a["traceId"], &a["parentSpanId"]), (&json!(trace_id), &workflow["spanId"]), "{a}");
    }
    let probe = attempts.iter().find(|a| attribute(a, "task.id") == Some("call")).expect("the probe's attempt");
    let call = receiver
        .named("plugin.call")
        .into_iter()
        .find(|c| c["parentSpanId"] == probe["spanId"])
        .expect("its plugin call");
    assert!(attribute(&call, "plugin.digest").is_some_and(|d| d.starts_with("sha256:")), "{call}");
    let request = &receiver.named("http.request")[0];
    assert_eq!((&request["traceId"], &request["parentSpanId"]), (&json!(trace_id), &call["spanId"]), "{request}");
    let sent = format!("traceparent: 00-{trace_id}-{}-01", request["spanId"].as_str().unwrap());
    assert!(upstream.received().contains(&sent), "the request carried its span: {}", upstream.received());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_is_propagated() {
    let upstream = Upstream::start().await;
    let manifest = format!("allowed_outbound_hosts = [\"{}\"]\n", upstream.origin());
    let served = Served::start_with(&["http-probe"], "", &[("http-probe.toml", &manifest)]).await;
    let spec = json!({ "tasks": [{ "task_id": "call", "agent_type": "http-probe",
        "input": { "requests": [{ "url": upstream.url("/echo") }] } }] });
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/v1/workflows", served.base()))
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    eventually_async("the request is made", || async { upstream.hits() == 1 }).await;
    assert!(!upstream.received().contains("traceparent"), "{}", upstream.received());
}

/// A span's string attribute.
fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    let attrs = span["attributes"].as_array()?;
    attrs.iter().find(|a| a["key"] == key)?["value"]["stringValue"].as_str()
}
