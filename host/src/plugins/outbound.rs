//! Outbound HTTP of one call (`wasi:http/outgoing-handler`): every request is checked against the
//! agent type's `allowed_outbound_hosts` before a connection is made, secrets are put in only
//! toward their bound origins (and taken out of what comes back), sizes and times are bounded,
//! and each request is recorded for its `egress` event. The host never follows a redirect: a 3xx
//! reaches the guest, and the request it makes next is checked like any other.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH};
use http_body_util::{BodyExt, Full, Limited};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::connect::OutboundTls;
use super::manifest::{split_host_port, Policy, Scheme};
use super::secrets::{replace_all, Secret, Secrets};

/// Limits of each outbound request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HttpLimits {
    /// Longest wait for a connection (and TLS handshake).
    pub connect_timeout: Duration,
    /// Longest time of one request, response body included; never past the attempt's deadline.
    pub request_timeout: Duration,
    /// Largest request body, in bytes.
    pub max_request_bytes: usize,
    /// Largest response body, in bytes.
    pub max_response_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            max_request_bytes: 16 << 20,
            max_response_bytes: 16 << 20,
        }
    }
}

pub use crate::workflow::LlmUsage;

/// What a call's outbound requests may spend, asked before each request that the allow-list
/// admitted. The engine implements it over a workflow's budget.
pub trait EgressBudget: Send + Sync + std::fmt::Debug {
    /// Take one request from the budget, or say why it is refused.
    fn admit(&self) -> Result<(), String>;
    /// Count the language-model tokens a response reported.
    fn spend_tokens(&self, tokens: u64);
}

/// How an outbound request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EgressOutcome {
    /// A response arrived (any status).
    Response,
    /// Refused by the host before anything was sent.
    Denied,
    /// Connection, protocol, size or time error.
    Error,
    /// The call ended (cancelled, timed out, finished) while the request was in flight.
    Aborted,
}

impl EgressOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EgressOutcome::Response => "response",
            EgressOutcome::Denied => "denied",
            EgressOutcome::Error => "error",
            EgressOutcome::Aborted => "aborted",
        }
    }
}

/// One outbound request of a call, as its `egress` event records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Egress {
    /// When the request was made (µs since the Unix epoch).
    #[serde(skip)]
    pub at_us: i64,
    pub method: String,
    /// `scheme://host:port`.
    pub origin: String,
    /// Path without the query.
    pub path: String,
    pub outcome: EgressOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it was denied or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The `allowed_outbound_hosts` entry that admitted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_by: Option<String>,
    /// Body bytes sent and received.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm_usage: Option<LlmUsage>,
}

impl Egress {
    /// A request made now, its outcome not known yet.
    fn starting(method: &str, origin: &str, path: &str) -> Egress {
        Egress {
            at_us: crate::clock::now_us(),
            method: method.to_string(),
            origin: origin.to_string(),
            path: path.to_string(),
            outcome: EgressOutcome::Aborted,
            status: None,
            reason: None,
            allowed_by: None,
            bytes_sent: 0,
            bytes_received: 0,
            duration_ms: 0.0,
            llm_usage: None,
        }
    }
}

/// The outbound requests of one call: finished ones, and those still in flight (reported as
/// aborted when the call's record is taken). Shared by the call's store and its request tasks.
#[derive(Clone, Default)]
pub(crate) struct EgressLog {
    inner: Arc<Mutex<LogInner>>,
}

#[derive(Default)]
struct LogInner {
    done: Vec<(Instant, Egress)>,
    in_flight: HashMap<u64, (Instant, Egress)>,
    next: u64,
}

impl EgressLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start(&self, egress: Egress) -> u64 {
        let mut inner = self.lock();
        inner.next += 1;
        let id = inner.next;
        inner.in_flight.insert(id, (Instant::now(), egress));
        id
    }

    fn finish(&self, id: u64, end: impl FnOnce(&mut Egress)) {
        let mut inner = self.lock();
        if let Some((started, mut egress)) = inner.in_flight.remove(&id) {
            end(&mut egress);
            egress.duration_ms = ms(started.elapsed());
            inner.done.push((started, egress));
        }
    }

    /// Every request of the call in the order they were made; those in flight become `aborted`.
    pub fn take(&self) -> Vec<Egress> {
        let mut inner = self.lock();
        let mut all = std::mem::take(&mut inner.done);
        for (_, (started, mut egress)) in inner.in_flight.drain() {
            egress.outcome = EgressOutcome::Aborted;
            egress.reason = Some("the call ended while the request was in flight".into());
            egress.duration_ms = ms(started.elapsed());
            all.push((started, egress));
        }
        all.sort_by_key(|(started, _)| *started);
        all.into_iter().map(|(_, e)| e).collect()
    }
}

/// The `wasi:http` hooks of one call.
pub(crate) struct Outbound {
    pub policy: Arc<Policy>,
    pub secrets: Secrets,
    pub limits: HttpLimits,
    pub deadline: Instant,
    pub log: EgressLog,
    pub budget: Option<Arc<dyn EgressBudget>>,
    pub tls: OutboundTls,
}

type ResponseFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

/// The answer to a request that is not sent: `error`, once the plugin has written the body (read
/// and dropped, at most `MAX_REFUSED_BODY` bytes). A plugin writes the body after sending the
/// head; closing it under the writer's feet traps some guest runtimes (componentize-js) instead
/// of letting them read the error.
fn refuse(request: http::Request<WasiBody>, error: Error) -> ResponseFuture {
    Box::new(async move {
        let _ = Limited::new(request.into_body(), MAX_REFUSED_BODY).collect().await;
        Err(error)
    })
}

/// How much of a refused request's body is read before the request fails.
const MAX_REFUSED_BODY: usize = 16 << 20;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> ResponseFuture {
        let target = Target::of(&request);
        let id = self.log.start(target.egress(request.method().as_str()));
        let log = self.log.clone();
        let Some((scheme, host, port)) = target.parts() else {
            log.finish(id, |e| deny(e, "the URL has no http or https scheme and host".into()));
            return refuse(request, Error::HttpRequestUriInvalid);
        };
        let Some(rule) = self.policy.allowing(scheme, &host, port) else {
            let reason = format!("{} is not in the agent type's allowed_outbound_hosts", target.origin);
            log.finish(id, |e| deny(e, reason));
            return refuse(request, Error::HttpRequestDenied);
        };
        let allowed_by = rule.to_string();
        if let Some(refused) = self.budget.as_ref().and_then(|b| b.admit().err()) {
            log.finish(id, |e| {
                deny(e, refused);
                e.allowed_by = Some(allowed_by);
            });
            return refuse(request, Error::HttpRequestDenied);
        }
        let span = tracing::info_span!("http.request", http.request.method = %request.method(),
            server.address = %host, url.path = %target.path, http.response.status_code = tracing::field::Empty);
        let mut request = request;
        propagate(&span, request.headers_mut());
        let budget = self.budget.clone();
        let tls = self.tls.clone();
        let secrets = self.secrets.bound_to(&self.policy.secrets, scheme, &host, port);
        let limits = self.limits;
        let total = limits.request_timeout.min(self.deadline.saturating_duration_since(Instant::now()));
        Box::new(
            async move {
                let exchanged =
                    match tokio::time::timeout(total, exchange(request, options, &secrets, limits, &tls)).await {
                        Ok(result) => result,
                        Err(_) => Err(Error::HttpResponseTimeout),
                    };
                match exchanged {
                    Ok(done) => {
                        tracing::Span::current().record("http.response.status_code", done.response.status().as_u16());
                        log.finish(id, |e| {
                            e.outcome = EgressOutcome::Response;
                            e.status = Some(done.response.status().as_u16());
                            e.allowed_by = Some(allowed_by);
                            (e.bytes_sent, e.bytes_received) = (done.sent, done.received);
                            e.llm_usage = done.usage;
                        });
                        if let (Some(budget), Some(usage)) = (&budget, done.usage) {
                            budget.spend_tokens(usage.total());
                        }
                        let io: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send> =
                            Box::new(async { Ok(()) });
                        Ok((done.response, io))
                    }
                    Err(err) => {
                        log.finish(id, |e| {
                            e.outcome = EgressOutcome::Error;
                            e.allowed_by = Some(allowed_by);
                            e.reason = Some(describe(&err, &limits, total));
                        });
                        Err(err)
                    }
                }
            }
            .instrument(span),
        )
    }
}

/// Send the request's span as its `traceparent` (replacing the plugin's own), when traces are
/// exported: the service called joins the workflow's trace.
fn propagate(span: &tracing::Span, headers: &mut http::HeaderMap) {
    if !crate::telemetry::exporting() {
        return;
    }
    if let Some(value) = crate::telemetry::traceparent_of(span).and_then(|tp| http::HeaderValue::from_str(&tp).ok()) {
        headers.insert("traceparent", value);
    }
}

fn deny(e: &mut Egress, reason: String) {
    e.outcome = EgressOutcome::Denied;
    e.reason = Some(reason);
}

/// What a request is addressed to.
struct Target {
    scheme: Option<Scheme>,
    host: String,
    port: Option<u16>,
    origin: String,
    path: String,
}

impl Target {
    fn of(request: &http::Request<WasiBody>) -> Target {
        let uri = request.uri();
        let scheme = uri.scheme_str().and_then(Scheme::parse);
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
        let authority = authority.rsplit_once('@').map(|(_, a)| a).unwrap_or(authority);
        let (host, port) = split_host_port(authority).unwrap_or((authority, None));
        let port = port.or(scheme.map(Scheme::default_port));
        let origin = match (scheme, port) {
            (Some(s), Some(p)) => format!("{}://{}:{p}", s.as_str(), host.to_ascii_lowercase()),
            _ => format!("{}://{authority}", uri.scheme_str().unwrap_or("")),
        };
        Target { scheme, host: host.to_ascii_lowercase(), port, origin, path: uri.path().to_string() }
    }

    fn parts(&self) -> Option<(Scheme, String, u16)> {
        Some((self.scheme?, self.host.clone(), self.port?)).filter(|(_, h, _)| !h.is_empty())
    }

    fn egress(&self, method: &str) -> Egress {
        Egress::starting(method, &self.origin, &self.path)
    }
}

struct Exchanged {
    response: http::Response<WasiBody>,
    sent: u64,
    received: u64,
    usage: Option<LlmUsage>,
}

/// Sends one admitted request: body read within its limit, placeholders replaced by the bound
/// secrets, the response read whole within its limit and the secrets taken back out of it.
async fn exchange(
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    secrets: &[Arc<Secret>],
    limits: HttpLimits,
    tls: &OutboundTls,
) -> Result<Exchanged, Error> {
    let (mut parts, body) = request.into_parts();
    let mut body = read_limited(body, limits.max_request_bytes, Error::HttpRequestBodySize).await?;
    for secret in secrets {
        let (placeholder, value) = (secret.placeholder.as_bytes(), secret.value().as_bytes());
        body = replace_in(&mut parts.headers, body, placeholder, value);
        if let Some(pq) = parts.uri.path_and_query().map(|pq| pq.as_str().to_string()) {
            if let Some(new) = replace_all(pq.as_bytes(), placeholder, value) {
                let mut uri = parts.uri.clone().into_parts();
                uri.path_and_query = http::uri::PathAndQuery::try_from(new).ok();
                parts.uri = http::Uri::from_parts(uri).map_err(|_| Error::HttpRequestUriInvalid)?;
            }
        }
    }
    if parts.headers.contains_key(CONTENT_LENGTH) {
        parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    let sent = body.len() as u64;
    let request = http::Request::from_parts(parts, Full::new(body));
    let connect_timeout =
        options.and_then(|o| o.connect_timeout).map_or(limits.connect_timeout, |t| t.min(limits.connect_timeout));
    let first_byte_timeout = options.and_then(|o| o.first_byte_timeout);
    // The connection's I/O runs beside the body's reading; it stops when dropped.
    let (response, io) = super::connect::send(request, tls, connect_timeout, first_byte_timeout).await?;
    let (mut parts, body) = response.into_parts();
    let body = body.map_err(Error::from);
    let mut body = read_limited(body, limits.max_response_bytes, Error::HttpResponseBodySize).await?;
    drop(io);
    let received = body.len() as u64;
    let mut redacted = false;
    for secret in secrets {
        let len = body.len();
        body = replace_in(&mut parts.headers, body, secret.value().as_bytes(), secret.placeholder.as_bytes());
        redacted |= body.len() != len;
    }
    if redacted && parts.headers.contains_key(CONTENT_LENGTH) {
        parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    let usage = llm_usage(&parts.headers, &body);
    let response = http::Response::from_parts(parts, Full::new(body).map_err(|never| match never {}).boxed_unsync());
    Ok(Exchanged { response, sent, received, usage })
}

/// Replaces `from` by `to` in every header value and in the body.
fn replace_in(headers: &mut http::HeaderMap, body: Bytes, from: &[u8], to: &[u8]) -> Bytes {
    for value in headers.values_mut() {
        if let Some(new) = replace_all(value.as_bytes(), from, to).and_then(|v| HeaderValue::from_bytes(&v).ok()) {
            *value = new;
        }
    }
    replace_all(&body, from, to).map(Bytes::from).unwrap_or(body)
}

/// Reads a whole body, failing with `too_large(None)` past `limit` bytes.
async fn read_limited<B>(body: B, limit: usize, too_large: fn(Option<u64>) -> Error) -> Result<Bytes, Error>
where
    B: http_body::Body<Data = Bytes, Error = Error>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => match err.downcast::<Error>() {
            Ok(err) => Err(*err),
            Err(other) if other.is::<http_body_util::LengthLimitError>() => Err(too_large(None)),
            Err(other) => Err(Error::InternalError(Some(other.to_string()))),
        },
    }
}

/// The `usage` object of a JSON response, OpenAI (`prompt_tokens`, `completion_tokens`) or
/// Anthropic (`input_tokens`, `output_tokens`) style.
fn llm_usage(headers: &http::HeaderMap, body: &[u8]) -> Option<LlmUsage> {
    let json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().contains("json"));
    if !json {
        return None;
    }
    #[derive(Deserialize)]
    struct Usage {
        prompt_tokens: Option<u64>,
        completion_tokens: Option<u64>,
        input_tokens: Option<u64>,
        output_tokens: Option<u64>,
    }
    #[derive(Deserialize)]
    struct Envelope {
        usage: Option<Usage>,
    }
    let usage = serde_json::from_slice::<Envelope>(body).ok()?.usage?;
    let prompt = usage.prompt_tokens.or(usage.input_tokens);
    let completion = usage.completion_tokens.or(usage.output_tokens);
    if prompt.is_none() && completion.is_none() {
        return None;
    }
    Some(LlmUsage { prompt_tokens: prompt.unwrap_or(0), completion_tokens: completion.unwrap_or(0) })
}

/// A request's error in words, with the limit that was hit.
fn describe(err: &Error, limits: &HttpLimits, total: Duration) -> String {
    match err {
        Error::HttpRequestBodySize(_) => format!("request body larger than {} bytes", limits.max_request_bytes),
        Error::HttpResponseBodySize(_) => format!("response body larger than {} bytes", limits.max_response_bytes),
        Error::HttpResponseTimeout => format!("no complete response within {} ms", total.as_millis()),
        Error::ConnectionTimeout => format!("no connection within {} ms", limits.connect_timeout.as_millis()),
        other => other.to_string(),
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_from_openai_and_anthropic_responses() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        let openai = br#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42}}"#;
        assert_eq!(llm_usage(&headers, openai), Some(LlmUsage { prompt_tokens: 12, completion_tokens: 30 }));
        let anthropic = br#"{"content":[],"usage":{"input_tokens":5,"output_tokens":7}}"#;
        assert_eq!(llm_usage(&headers, anthropic), Some(LlmUsage { prompt_tokens: 5, completion_tokens: 7 }));
        assert_eq!(llm_usage(&headers, br#"{"usage":{}}"#), None);
        assert_eq!(llm_usage(&headers, b"not json"), None);
        assert_eq!(llm_usage(&http::HeaderMap::new(), openai), None);
    }

    #[test]
    fn in_flight_requests_are_reported_aborted_in_order() {
        let log = EgressLog::default();
        let target = |path: &str| Egress::starting("GET", "http://a:80", path);
        let first = log.start(target("/1"));
        let second = log.start(target("/2"));
        log.finish(second, |e| e.outcome = EgressOutcome::Response);
        let all = log.take();
        assert_eq!(
            all.iter().map(|e| (e.path.as_str(), e.outcome)).collect::<Vec<_>>(),
            [("/1", EgressOutcome::Aborted), ("/2", EgressOutcome::Response)]
        );
        log.finish(first, |e| e.outcome = EgressOutcome::Response);
        assert!(log.take().is_empty());
    }
}
