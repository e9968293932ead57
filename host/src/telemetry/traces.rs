//! OpenTelemetry traces: the host's `tracing` spans (a workflow's submission, each attempt, each
//! plugin call, each outbound request) exported over OTLP/HTTP (JSON) when an endpoint is
//! configured, and W3C `traceparent` propagation: read on submission, kept with the workflow so
//! that every attempt on any host joins its trace, and sent on plugins' outbound requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::Context;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Whether spans are exported (an OTLP endpoint is configured and the exporter runs).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether this process exports traces: only then is a workflow's trace context kept and read.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The exporter's pipeline; flush it with [`Traces::shutdown`] before the process ends.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// A pipeline exporting to the OTLP/HTTP collector at `endpoint` (its base URL, such as
    /// `http://127.0.0.1:4318`: spans go to `/v1/traces`), sending from the current tokio runtime.
    pub fn new(endpoint: &str) -> Result<Traces, String> {
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let client = Client { http: reqwest::Client::new(), runtime: tokio::runtime::Handle::current() };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(url.clone())
            .with_timeout(Duration::from_secs(10))
            .with_http_client(client)
            .build()
            .map_err(|e| format!("cannot export traces to {url}: {e}"))?;
        let resource = Resource::builder()
            .with_service_name("hyphae")
            .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
        Ok(Traces { provider })
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans of this pipeline.
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        EXPORTING.store(true, Ordering::Relaxed);
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("hyphae"))
    }

    /// Export what is buffered and stop (blocks: call it off the async threads).
    pub fn shutdown(&self) {
        EXPORTING.store(false, Ordering::Relaxed);
        if let Err(e) = self.provider.shutdown() {
            eprintln!("hyphae: exporting the last spans failed: {e}");
        }
    }
}

/// The exporter's HTTP client: reqwest on the host's runtime (the exporter's own thread has none).
#[derive(Debug)]
struct Client {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let http = self.http.clone();
        let sent = self.runtime.spawn(async move {
            let response = http.execute(request).await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        });
        let (status, body) = sent.await??;
        Ok(Response::builder().status(status).body(body)?)
    }
}

/// The trace context a `traceparent` header value names (empty when it is not a valid one).
pub fn context_of(traceparent: &str) -> Context {
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    TraceContextPropagator::new().extract(&carrier)
}

/// The `traceparent` of a span, when it belongs to an exported trace.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Make `span` a child of the span a `traceparent` names (nothing when it names none).
pub fn join(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(tp) = traceparent {
        let cx = context_of(tp);
        if cx.span().span_context().is_valid() {
            let _ = span.set_parent(cx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_headers_are_read_strictly() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = context_of(tp);
        let sc = cx.span().span_context().clone();
        assert!(sc.is_valid() && sc.is_sampled());
        assert_eq!(sc.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        for bad in ["", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"] {
            assert!(!context_of(bad).span().span_context().is_valid(), "{bad}");
        }
        // Without an exporting layer a span has no trace to name.
        assert_eq!(traceparent_of(&tracing::info_span!("x")), None);
    }
}
