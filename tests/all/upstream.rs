//! Small HTTP servers on 127.0.0.1 that plugins call in tests: they echo what they receive,
//! redirect, send large or slow bodies, and answer like an OpenAI-compatible chat API.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// A running server: its address, and everything it received.
#[derive(Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    seen: Arc<Seen>,
    tls: bool,
}

#[derive(Default)]
struct Seen {
    hits: AtomicUsize,
    requests: Mutex<Vec<String>>,
}

impl Upstream {
    /// Starts a server on a free port of 127.0.0.1.
    pub async fn start() -> Upstream {
        let seen = Arc::new(Seen::default());
        let app = routes(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Upstream { addr, seen, tls: false }
    }

    /// Starts an HTTPS server on a free port of 127.0.0.1, its certificate (for `127.0.0.1`)
    /// signed by a new certificate authority; returns the CA certificate as PEM too.
    pub async fn start_tls() -> (Upstream, String) {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let chain = vec![CertificateDer::from(cert.der().to_vec())];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(chain, private).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let seen = Arc::new(Seen::default());
        let app = routes(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else { return };
                    let service = hyper::service::service_fn(move |req| tower::ServiceExt::oneshot(app.clone(), req));
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        (Upstream { addr, seen, tls: true }, ca.pem())
    }

    /// `http://127.0.0.1:PORT` (`https` for a TLS server).
    pub fn origin(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    /// How many requests reached the server.
    pub fn hits(&self) -> usize {
        self.seen.hits.load(Ordering::SeqCst)
    }

    /// Every request received, as text: method, path and query, headers and body.
    pub fn received(&self) -> String {
        self.seen.requests.lock().unwrap().join("\n")
    }
}

fn routes(seen: Arc<Seen>) -> Router {
    Router::new()
        .route("/echo", any(echo))
        .route("/redirect", any(redirect))
        .route("/big", any(big))
        .route("/slow", any(slow))
        .route("/v1/chat/completions", post(chat))
        .with_state(seen)
}

fn record(seen: &Seen, headers: &HeaderMap, body: &[u8], what: String) {
    seen.hits.fetch_add(1, Ordering::SeqCst);
    let headers: Vec<String> =
        headers.iter().map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes()))).collect();
    let text = format!("{what}\n{}\n{}", headers.join("\n"), String::from_utf8_lossy(body));
    seen.requests.lock().unwrap().push(text);
}

/// Answers with what it received: `{"headers": {...}, "body": "..."}`.
async fn echo(State(seen): State<Arc<Seen>>, uri: axum::http::Uri, headers: HeaderMap, body: Bytes) -> Json<Value> {
    record(&seen, &headers, &body, format!("echo {uri}"));
    let map: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned())))
        .collect();
    Json(json!({ "headers": map, "body": String::from_utf8_lossy(&body), "uri": uri.to_string() }))
}

#[derive(serde::Deserialize)]
struct To {
    to: String,
}

async fn redirect(State(seen): State<Arc<Seen>>, Query(q): Query<To>, headers: HeaderMap) -> Response {
    record(&seen, &headers, b"", format!("redirect to {}", q.to));
    (StatusCode::FOUND, [("location", q.to)]).into_response()
}

#[derive(serde::Deserialize)]
struct Size {
    n: usize,
}

async fn big(State(seen): State<Arc<Seen>>, Query(q): Query<Size>, headers: HeaderMap) -> String {
    record(&seen, &headers, b"", "big".into());
    "x".repeat(q.n)
}

#[derive(serde::Deserialize)]
struct Wait {
    ms: u64,
}

async fn slow(State(seen): State<Arc<Seen>>, Query(q): Query<Wait>, headers: HeaderMap) -> &'static str {
    record(&seen, &headers, b"", "slow".into());
    tokio::time::sleep(Duration::from_millis(q.ms)).await;
    "done"
}

/// An OpenAI-compatible chat completion: the reply names the last user message and the
/// authorization it got, and reports token usage (prompt tokens = words in, completion = 5).
async fn chat(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: Bytes) -> Response {
    record(&seen, &headers, &body, "chat".into());
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let last = request["messages"].as_array().and_then(|m| m.last()).and_then(|m| m["content"].as_str()).unwrap_or("");
    let words = request["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["content"].as_str()).map(|c| c.split_whitespace().count()).sum::<usize>())
        .unwrap_or(0);
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("none");
    let content = format!("reply to: {last} (auth: {auth})");
    Json(json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": request["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": words, "completion_tokens": 5, "total_tokens": words + 5},
    }))
    .into_response()
}
