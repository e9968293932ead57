//! Outbound HTTP: a small blocking client over `wasi:http/outgoing-handler`.
//!
//! ```no_run
//! use hyphae_plugin_sdk::{http, json, TaskError};
//!
//! fn fetch() -> Result<(), TaskError> {
//!     let page = http::get("https://example.com/").send()?;
//!     let created = http::post("https://api.example.com/items")
//!         .header("accept", "application/json")
//!         .json(&json!({ "name": "x" }))
//!         .timeout(std::time::Duration::from_secs(30))
//!         .send()?;
//!     let id: String = created.json()?;
//!     Ok(())
//! }
//! ```
//!
//! The host checks every request against the agent type's `allowed_outbound_hosts` (manifest
//! `NAME.toml` beside `NAME.wasm`); a request to any other origin fails with
//! `HTTP-request-denied` and nothing is sent. The host never follows redirects: this client does,
//! for GET and HEAD (up to 5 by default, see [`Request::redirects`]), each one a new request that
//! the host checks again. `?` turns an [`HttpError`] into a [`TaskError`]: denied requests are
//! fatal `egress_denied`, timeouts and connection failures retryable `http_error`.
//!
//! Outside wasm (native unit tests) [`Request::send`] fails with code `unsupported`.

use crate::TaskError;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::json;
use std::{fmt, time::Duration};

/// Redirects followed by default for GET and HEAD requests.
pub const DEFAULT_REDIRECTS: u32 = 5;

/// Largest chunk written to a request body stream at once.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // used by the wasm transport
const WRITE_CHUNK: usize = 4096;

/// A GET request to `url`: `http::get(url).send()`.
pub fn get(url: impl Into<String>) -> Request {
    Request::new(Method::Get, url)
}

/// A POST request to `url`; add a body with [`Request::json`] or [`Request::body`].
pub fn post(url: impl Into<String>) -> Request {
    Request::new(Method::Post, url)
}

/// An HTTP method. `"get".into()` and `Method::from("PATCH")` work too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    /// Any other method (sent as written).
    Other(String),
}

impl Method {
    /// The method as sent: `GET`, `POST`, ...
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other(m) => m,
        }
    }
}

impl From<&str> for Method {
    fn from(method: &str) -> Self {
        match method.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other(method.to_string()),
        }
    }
}

impl From<String> for Method {
    fn from(method: String) -> Self {
        Method::from(method.as_str())
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An outgoing request, built step by step and sent with [`Request::send`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
    redirects: Option<u32>,
    error: Option<String>,
}

impl Request {
    /// A request with no headers and an empty body. The URL is checked when the request is sent.
    pub fn new(method: impl Into<Method>, url: impl Into<String>) -> Self {
        let (method, url) = (method.into(), url.into());
        Request { method, url, headers: Vec::new(), body: Vec::new(), timeout: None, redirects: None, error: None }
    }

    /// Adds a header (names are case-insensitive; a repeated name adds another value).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body to `value` as JSON and `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => self.body = body,
            Err(e) => self.error = Some(format!("the body cannot be written as JSON: {e}")),
        }
        self.headers.retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
        self.header("content-type", "application/json")
    }

    /// Sets the body (bytes or text). Set a `content-type` header yourself.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Limits the wait for the connection and, separately, for the first byte of the response
    /// (`request-options`). The host's own limits apply as well.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Follows at most `n` redirects (3xx with `location`); 0 returns the 3xx response itself.
    /// Default: [`DEFAULT_REDIRECTS`] for GET and HEAD, 0 for other methods. A 303, and a 301 or
    /// 302 after a POST, continue as GET without body; credentials (`authorization`, `cookie`) are
    /// not sent on to another origin.
    pub fn redirects(mut self, n: u32) -> Self {
        self.redirects = Some(n);
        self
    }

    /// Sends the request (and follows redirects), and reads the whole response.
    pub fn send(self) -> Result<Response, HttpError> {
        self.send_with(transport::send_once)
    }

    /// The redirect loop, over any transport (unit tests use a fake one).
    fn send_with(
        self,
        mut send_once: impl FnMut(&Prepared) -> Result<Response, HttpError>,
    ) -> Result<Response, HttpError> {
        let Request { method, url: text, headers, body, timeout, redirects, error } = self;
        if let Some(message) = error {
            return Err(HttpError::new("invalid-request", message, &method, &text));
        }
        let url = Url::parse(&text).map_err(|m| HttpError::new("invalid-url", m, &method, &text))?;
        let limit = redirects.unwrap_or(match method {
            Method::Get | Method::Head => DEFAULT_REDIRECTS,
            _ => 0,
        });
        let mut request = Prepared { method, url, headers, body, timeout };
        let mut followed = 0;
        loop {
            let response = send_once(&request)?;
            let location = match response.status {
                301 | 302 | 303 | 307 | 308 if limit > 0 => response.header("location"),
                _ => None,
            };
            let Some(location) = location else { return Ok(response) };
            let (method, url) = (&request.method, request.url.to_string());
            if followed == limit {
                let plural = if limit == 1 { "" } else { "s" };
                let message = format!("gave up after {limit} redirect{plural} (the next to {location})");
                return Err(HttpError::new("too-many-redirects", message, method, &url));
            }
            let next = request
                .url
                .join(location)
                .map_err(|m| HttpError::new("invalid-url", format!("redirect to {location:?}: {m}"), method, &url))?;
            crate::log::debug!("http: {} {} -> {} {next}", request.method, request.url, response.status);
            let to_get = response.status == 303 && request.method != Method::Head
                || matches!(response.status, 301 | 302) && request.method == Method::Post;
            if to_get {
                request.method = Method::Get;
                request.body.clear();
                request.headers.retain(|(n, _)| !is_one_of(n, &["content-type", "content-length"]));
            }
            if next.origin() != request.url.origin() {
                let credentials = ["authorization", "cookie", "proxy-authorization"];
                request.headers.retain(|(n, _)| !is_one_of(n, &credentials));
            }
            request.url = next;
            followed += 1;
        }
    }
}

fn is_one_of(name: &str, names: &[&str]) -> bool {
    names.iter().any(|n| name.eq_ignore_ascii_case(n))
}

/// One request as the transport sends it.
#[derive(Debug)]
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // used by the wasm transport
struct Prepared {
    method: Method,
    url: Url,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // used by the wasm transport
impl Prepared {
    /// The headers to send: `content-length` added when there is a body (or the method expects one).
    fn headers(&self) -> Vec<(String, String)> {
        let mut headers = self.headers.clone();
        let expects_body = matches!(self.method, Method::Post | Method::Put | Method::Patch);
        let has_length = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        if (expects_body || !self.body.is_empty()) && !has_length {
            headers.push(("content-length".into(), self.body.len().to_string()));
        }
        headers
    }
}

/// A response, read completely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code, such as 200.
    pub status: u16,
    /// Headers in the order received (values decoded as UTF-8, lossily).
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
    /// The URL that answered (after redirects).
    pub url: String,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced by U+FFFD).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses the body as JSON; on mismatch a fatal `invalid_response` error with a body excerpt.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, TaskError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let message = format!("{} ({}): body is not the JSON expected: {e}", self.url, self.status);
            TaskError::fatal("invalid_response", message).with_detail(json!({ "body": excerpt(&self.body, 300) }))
        })
    }
}

/// At most `max` characters of `body` as text, with `...` when cut.
pub(crate) fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

/// Why a request failed: the `wasi:http` error code, or the SDK's own (`invalid-url`,
/// `invalid-request`, `invalid-header`, `too-many-redirects`, `unsupported`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError {
    /// The error code as spelled in WIT: `HTTP-request-denied`, `connection-timeout`,
    /// `HTTP-response-body-size`, ...
    pub code: String,
    /// What happened, in words (with the code's details, such as a size limit).
    pub message: String,
    /// Method of the failed request.
    pub method: String,
    /// URL of the failed request (the last one when redirects were followed).
    pub url: String,
}

impl HttpError {
    fn new(code: &str, message: impl Into<String>, method: &Method, url: &str) -> Self {
        HttpError { code: code.to_string(), message: message.into(), method: method.to_string(), url: url.to_string() }
    }

    /// The host refused the request (origin not allowed, or over budget); nothing was sent.
    pub fn is_denied(&self) -> bool {
        self.code == "HTTP-request-denied"
    }

    /// A time limit was reached (DNS, connection, first byte, read or write).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.code.as_str(),
            "DNS-timeout"
                | "connection-timeout"
                | "connection-read-timeout"
                | "connection-write-timeout"
                | "HTTP-response-timeout"
        )
    }

    /// A transient failure (timeout or connection problem) that may succeed when retried.
    pub fn is_retryable(&self) -> bool {
        self.is_timeout()
            || matches!(
                self.code.as_str(),
                "DNS-error"
                    | "destination-unavailable"
                    | "connection-refused"
                    | "connection-terminated"
                    | "connection-limit-reached"
                    | "HTTP-response-incomplete"
            )
    }

    /// `scheme://host[:port]` of the failed request, as written in `allowed_outbound_hosts`.
    pub fn origin(&self) -> Option<String> {
        Url::parse(&self.url).ok().map(|u| u.origin())
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}: {}", self.method, self.url, self.code, self.message)
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for TaskError {
    /// Denied: fatal `egress_denied` saying which origin to allow; timeouts and connection
    /// failures: retryable `http_error`; anything else: fatal `http_error`.
    fn from(e: HttpError) -> Self {
        let detail = json!({ "code": e.code, "method": e.method, "url": e.url });
        if e.is_denied() {
            let origin = e.origin().unwrap_or_else(|| e.url.clone());
            let message = format!(
                "{} {}: the host denied the request (HTTP-request-denied): add \"{origin}\" to \
                 `allowed_outbound_hosts` in the agent type's manifest (NAME.toml beside NAME.wasm), \
                 or check the request budget",
                e.method, e.url
            );
            TaskError::fatal("egress_denied", message).with_detail(detail)
        } else if e.is_retryable() {
            TaskError::retryable("http_error", e.to_string()).with_detail(detail)
        } else {
            TaskError::fatal("http_error", e.to_string()).with_detail(detail)
        }
    }
}

/// An absolute `http` or `https` URL, split as `wasi:http` wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Url {
    /// `http` or `https`.
    https: bool,
    /// Lower-case host; IPv6 addresses keep their brackets.
    host: String,
    /// The port written in the URL, if any.
    port: Option<u16>,
    /// Path and query, starting with `/`; no fragment; percent-encoded.
    path_and_query: String,
}

impl Url {
    /// Parses `scheme://host[:port][/path][?query][#fragment]` (fragment dropped).
    pub(crate) fn parse(url: &str) -> Result<Url, String> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://").ok_or("not an absolute URL (scheme://host/path)")?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return Err(format!("scheme {scheme:?}: only http and https")),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path_and_query) = rest.split_at(end);
        if authority.contains('@') {
            return Err("user info (user@host) is not supported: send credentials in a header".into());
        }
        let (host, port) = split_authority(authority)?;
        let path_and_query = match path_and_query {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{}", encode(p)),
            p => encode(p),
        };
        Ok(Url { https, host, port, path_and_query })
    }

    pub(crate) fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }

    /// `host[:port]`, as sent.
    pub(crate) fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// `scheme://host[:port]`, the port left out when it is the scheme's default.
    pub(crate) fn origin(&self) -> String {
        let default = if self.https { 443 } else { 80 };
        match self.port {
            Some(port) if port != default => format!("{}://{}:{port}", self.scheme(), self.host),
            _ => format!("{}://{}", self.scheme(), self.host),
        }
    }

    /// Resolves a `location` (absolute, `//authority...`, `/path`, `?query` or relative path).
    pub(crate) fn join(&self, location: &str) -> Result<Url, String> {
        let location = location.trim();
        if location.contains("://") {
            return Url::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return Url::parse(&format!("{}://{rest}", self.scheme()));
        }
        let path = self.path_and_query.split('?').next().unwrap_or("/");
        let joined = if location.is_empty() {
            self.path_and_query.clone()
        } else if location.starts_with('/') {
            location.to_string()
        } else if location.starts_with('?') {
            format!("{path}{location}")
        } else {
            format!("{}{location}", &path[..=path.rfind('/').unwrap_or(0)])
        };
        let joined = joined.split('#').next().unwrap_or_default();
        let (path, query) = match joined.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (joined, None),
        };
        let mut path_and_query = remove_dot_segments(path);
        if let Some(q) = query {
            path_and_query = format!("{path_and_query}?{q}");
        }
        Ok(Url { path_and_query: encode(&path_and_query), ..self.clone() })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme(), self.authority(), self.path_and_query)
    }
}

/// `host[:port]` -> lower-case host and port; IPv6 addresses in brackets.
fn split_authority(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or("IPv6 address without closing ]")?;
        if ip.is_empty() || !ip.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
            return Err(format!("bad IPv6 address [{ip}]"));
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| format!("unexpected {p:?} after [{ip}]"))?),
        };
        (format!("[{ip}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    if !host.starts_with('[') && !host.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)) {
        return Err(format!("host {host:?}: letters, digits, '-', '.' and '_' only (write IDNs as punycode)"));
    }
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(p.parse::<u16>().map_err(|_| format!("port {p:?} is not a number up to 65535"))?),
    };
    Ok((host.to_ascii_lowercase(), port))
}

/// Percent-encodes what may not appear literally in a path or query (spaces, controls, non-ASCII).
fn encode(path_and_query: &str) -> String {
    let mut out = String::with_capacity(path_and_query.len());
    for &b in path_and_query.as_bytes() {
        if b <= b' ' || b >= 0x7f || b"\"<>\\^`{|}".contains(&b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// RFC 3986 5.2.4, for paths starting with `/`.
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        match *segment {
            "." if last => segments.push(""),
            "." => {}
            ".." => {
                segments.pop();
                if last {
                    segments.push("");
                }
            }
            s => segments.push(s),
        }
    }
    format!("/{}", segments.join("/"))
}

/// The transport: one request, no redirects.
#[cfg(target_arch = "wasm32")]
mod transport {
    use super::{HttpError, Method, Prepared, Response, WRITE_CHUNK};
    use crate::bindings::wasi::http::outgoing_handler;
    use crate::bindings::wasi::http::types::{self as t, ErrorCode};
    use crate::bindings::wasi::io::streams::{OutputStream, StreamError};

    pub(super) fn send_once(request: &Prepared) -> Result<Response, HttpError> {
        let url = request.url.to_string();
        let fail = |code: &str, message: String| HttpError::new(code, message, &request.method, &url);
        let wasi_error = |code: &ErrorCode| {
            let (code, message) = describe(code);
            fail(code, message)
        };

        let headers: Vec<(String, Vec<u8>)> =
            request.headers().into_iter().map(|(n, v)| (n.to_ascii_lowercase(), v.into_bytes())).collect();
        let fields = t::Fields::from_list(&headers).map_err(|e| {
            let what = match e {
                t::HeaderError::InvalidSyntax => "a header name or value is not valid",
                t::HeaderError::Forbidden => "a header is one the host does not allow plugins to set",
                t::HeaderError::Immutable => "headers are immutable",
            };
            let names = headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
            fail("invalid-header", format!("{what} (headers: {names})"))
        })?;
        let outgoing = t::OutgoingRequest::new(fields);
        let method = match &request.method {
            Method::Get => t::Method::Get,
            Method::Head => t::Method::Head,
            Method::Post => t::Method::Post,
            Method::Put => t::Method::Put,
            Method::Patch => t::Method::Patch,
            Method::Delete => t::Method::Delete,
            Method::Options => t::Method::Options,
            Method::Other(m) => t::Method::Other(m.clone()),
        };
        let scheme = if request.url.https { t::Scheme::Https } else { t::Scheme::Http };
        outgoing.set_method(&method).map_err(|()| fail("invalid-request", "invalid method".into()))?;
        outgoing.set_scheme(Some(&scheme)).map_err(|()| fail("invalid-request", "invalid scheme".into()))?;
        outgoing
            .set_authority(Some(&request.url.authority()))
            .map_err(|()| fail("invalid-url", "invalid authority".into()))?;
        outgoing
            .set_path_with_query(Some(request.url.path_and_query()))
            .map_err(|()| fail("invalid-url", "invalid path or query".into()))?;
        let body = outgoing.body().map_err(|()| fail("internal-error", "request body already taken".into()))?;

        let options = request.timeout.map(|timeout| {
            let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
            let options = t::RequestOptions::new();
            // A host that does not support a timeout keeps its own limits.
            let _ = options.set_connect_timeout(Some(nanos));
            let _ = options.set_first_byte_timeout(Some(nanos));
            options
        });
        let future = outgoing_handler::handle(outgoing, options).map_err(|e| wasi_error(&e))?;

        // The body is written after `handle`, so the host can stream it out as it comes.
        let written = if request.body.is_empty() {
            Ok(())
        } else {
            match body.write() {
                Ok(stream) => write_all(&stream, &request.body),
                Err(()) => Err("request body stream already taken".to_string()),
            }
        };
        let finished = match written {
            Ok(()) => t::OutgoingBody::finish(body, None).map_err(|e| wasi_error(&e)),
            Err(message) => {
                drop(body); // unfinished: the host abandons the request
                Err(fail("HTTP-request-body-size", format!("writing the request body failed: {message}")))
            }
        };

        future.subscribe().block();
        let response = match future.get() {
            Some(Ok(Ok(response))) => response,
            // The response's error says more than the body's.
            Some(Ok(Err(code))) => return Err(wasi_error(&code)),
            Some(Err(())) => return Err(fail("internal-error", "response already taken".into())),
            None => return Err(fail("internal-error", "response not ready after waiting".into())),
        };
        finished?;

        let status = response.status();
        let headers = {
            let fields = response.headers();
            let entries = fields.entries();
            entries.into_iter().map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned())).collect()
        };
        let incoming = response.consume().map_err(|()| fail("internal-error", "response body already taken".into()))?;
        let mut bytes = Vec::new();
        {
            let stream =
                incoming.stream().map_err(|()| fail("internal-error", "response body stream already taken".into()))?;
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => bytes.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(StreamError::LastOperationFailed(e)) => {
                        return Err(match t::http_error_code(&e) {
                            Some(code) => wasi_error(&code),
                            None => fail("HTTP-response-incomplete", e.to_debug_string()),
                        });
                    }
                }
            }
        }
        drop(t::IncomingBody::finish(incoming));
        Ok(Response { status, headers, body: bytes, url })
    }

    /// Writes `bytes` in chunks of at most [`WRITE_CHUNK`] bytes, as `check-write` permits.
    fn write_all(stream: &OutputStream, mut bytes: &[u8]) -> Result<(), String> {
        let failed = |e: StreamError| match e {
            StreamError::Closed => "the host closed the stream".to_string(),
            StreamError::LastOperationFailed(e) => match t::http_error_code(&e) {
                Some(code) => describe(&code).1,
                None => e.to_debug_string(),
            },
        };
        while !bytes.is_empty() {
            let permit = stream.check_write().map_err(failed)?;
            if permit == 0 {
                stream.subscribe().block();
                continue;
            }
            let n = bytes.len().min(WRITE_CHUNK).min(usize::try_from(permit).unwrap_or(usize::MAX));
            stream.blocking_write_and_flush(&bytes[..n]).map_err(failed)?;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// The WIT name of an error code and what it means.
    fn describe(code: &ErrorCode) -> (&'static str, String) {
        use ErrorCode as E;
        let limit = |what: &str, n: Option<u64>| match n {
            Some(n) => format!("{what} too large (limit {n} bytes)"),
            None => format!("{what} too large"),
        };
        let field = |what: &str, p: Option<&t::FieldSizePayload>| {
            let name = p.and_then(|p| p.field_name.clone()).map(|n| format!(" {n}")).unwrap_or_default();
            let size = p.and_then(|p| p.field_size).map(|s| format!(" (limit {s} bytes)")).unwrap_or_default();
            format!("{what}{name} too large{size}")
        };
        let text = |s: &str| s.to_string();
        match code {
            E::DnsTimeout => ("DNS-timeout", text("DNS lookup timed out")),
            E::DnsError(p) => {
                let rcode = p.rcode.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                ("DNS-error", format!("DNS lookup failed{rcode}"))
            }
            E::DestinationNotFound => ("destination-not-found", text("host name not found")),
            E::DestinationUnavailable => ("destination-unavailable", text("destination unavailable")),
            E::DestinationIpProhibited => ("destination-IP-prohibited", text("destination IP address prohibited")),
            E::DestinationIpUnroutable => ("destination-IP-unroutable", text("destination IP address unroutable")),
            E::ConnectionRefused => ("connection-refused", text("connection refused")),
            E::ConnectionTerminated => ("connection-terminated", text("connection closed unexpectedly")),
            E::ConnectionTimeout => ("connection-timeout", text("timed out connecting")),
            E::ConnectionReadTimeout => ("connection-read-timeout", text("timed out reading")),
            E::ConnectionWriteTimeout => ("connection-write-timeout", text("timed out writing")),
            E::ConnectionLimitReached => ("connection-limit-reached", text("connection limit reached")),
            E::TlsProtocolError => ("TLS-protocol-error", text("TLS protocol error")),
            E::TlsCertificateError => ("TLS-certificate-error", text("TLS certificate not accepted")),
            E::TlsAlertReceived(p) => {
                let alert = p.alert_message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
                ("TLS-alert-received", format!("TLS alert received{alert}"))
            }
            E::HttpRequestDenied => (
                "HTTP-request-denied",
                text(
                    "the host refused the request, nothing was sent: its origin is not in the agent \
                     type's allowed_outbound_hosts, or the request budget is spent",
                ),
            ),
            E::HttpRequestLengthRequired => ("HTTP-request-length-required", text("content-length required")),
            E::HttpRequestBodySize(n) => ("HTTP-request-body-size", limit("request body", *n)),
            E::HttpRequestMethodInvalid => ("HTTP-request-method-invalid", text("invalid method")),
            E::HttpRequestUriInvalid => ("HTTP-request-URI-invalid", text("invalid URI")),
            E::HttpRequestUriTooLong => ("HTTP-request-URI-too-long", text("URI too long")),
            E::HttpRequestHeaderSectionSize(n) => {
                ("HTTP-request-header-section-size", limit("request headers", n.map(u64::from)))
            }
            E::HttpRequestHeaderSize(p) => ("HTTP-request-header-size", field("request header", p.as_ref())),
            E::HttpRequestTrailerSectionSize(n) => {
                ("HTTP-request-trailer-section-size", limit("request trailers", n.map(u64::from)))
            }
            E::HttpRequestTrailerSize(p) => ("HTTP-request-trailer-size", field("request trailer", Some(p))),
            E::HttpResponseIncomplete => ("HTTP-response-incomplete", text("response incomplete")),
            E::HttpResponseHeaderSectionSize(n) => {
                ("HTTP-response-header-section-size", limit("response headers", n.map(u64::from)))
            }
            E::HttpResponseHeaderSize(p) => ("HTTP-response-header-size", field("response header", Some(p))),
            E::HttpResponseBodySize(n) => ("HTTP-response-body-size", limit("response body", *n)),
            E::HttpResponseTrailerSectionSize(n) => {
                ("HTTP-response-trailer-section-size", limit("response trailers", n.map(u64::from)))
            }
            E::HttpResponseTrailerSize(p) => ("HTTP-response-trailer-size", field("response trailer", Some(p))),
            E::HttpResponseTransferCoding(c) => {
                ("HTTP-response-transfer-coding", format!("unsupported transfer coding {}", c.as_deref().unwrap_or("")))
            }
            E::HttpResponseContentCoding(c) => {
                ("HTTP-response-content-coding", format!("unsupported content coding {}", c.as_deref().unwrap_or("")))
            }
            E::HttpResponseTimeout => ("HTTP-response-timeout", text("timed out waiting for the response")),
            E::HttpUpgradeFailed => ("HTTP-upgrade-failed", text("upgrade failed")),
            E::HttpProtocolError => ("HTTP-protocol-error", text("HTTP protocol error")),
            E::LoopDetected => ("loop-detected", text("loop detected")),
            E::ConfigurationError => ("configuration-error", text("configuration error")),
            E::InternalError(m) => ("internal-error", m.clone().unwrap_or_else(|| text("internal error"))),
        }
    }
}

/// Native builds (unit tests) have no `wasi:http`.
#[cfg(not(target_arch = "wasm32"))]
mod transport {
    use super::{HttpError, Prepared, Response};

    pub(super) fn send_once(request: &Prepared) -> Result<Response, HttpError> {
        let message = "wasi:http is only available inside a WebAssembly component";
        Err(HttpError::new("unsupported", message, &request.method, &request.url.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn urls_are_split_for_wasi_http() {
        let u = url("HTTPS://API.Example.com:8443/v1/chat?x=1#frag");
        assert_eq!(
            (u.scheme(), u.authority(), u.path_and_query()),
            ("https", "api.example.com:8443".into(), "/v1/chat?x=1")
        );
        assert_eq!(u.origin(), "https://api.example.com:8443");
        assert_eq!(url("http://127.0.0.1:80").origin(), "http://127.0.0.1");
        assert_eq!(url("http://127.0.0.1:80").path_and_query(), "/");
        assert_eq!(url("http://h?q=1").path_and_query(), "/?q=1");
        let v6 = url("http://[::1]:11434/api");
        assert_eq!((v6.authority(), v6.origin()), ("[::1]:11434".into(), "http://[::1]:11434".into()));
        assert_eq!(url("https://h/a b/ä").path_and_query(), "/a%20b/%C3%A4");
        assert_eq!(url("https://h/x").to_string(), "https://h/x");
        for bad in
            ["ftp://h/", "h/path", "https:///x", "https://u:p@h/", "https://h:99999/", "https://h:x/", "https://[::1/"]
        {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirect_locations_resolve_against_the_url() {
        let base = url("https://a.example/docs/guide/intro?x=1");
        let join = |l: &str| base.join(l).unwrap().to_string();
        assert_eq!(join("https://b.example/z"), "https://b.example/z");
        assert_eq!(join("//c.example/p"), "https://c.example/p");
        assert_eq!(join("/root?q"), "https://a.example/root?q");
        assert_eq!(join("next"), "https://a.example/docs/guide/next");
        assert_eq!(join("../up#f"), "https://a.example/docs/up");
        assert_eq!(join("./"), "https://a.example/docs/guide/");
        assert_eq!(join("?y=2"), "https://a.example/docs/guide/intro?y=2");
        assert_eq!(join("../../../../x"), "https://a.example/x");
    }

    fn response(status: u16, headers: &[(&str, &str)]) -> Response {
        let headers = headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        Response { status, headers, body: b"ok".to_vec(), url: String::new() }
    }

    /// Runs `request` against canned responses; returns the result and the requests sent.
    fn run(request: Request, mut responses: Vec<Response>) -> (Result<Response, HttpError>, Vec<String>) {
        let mut sent = Vec::new();
        responses.reverse();
        let result = request.send_with(|r| {
            let auth = r.headers().iter().any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
            sent.push(format!("{} {} body={} auth={auth}", r.method, r.url, r.body.len()));
            Ok(responses.pop().expect("no more responses"))
        });
        (result, sent)
    }

    #[test]
    fn get_follows_redirects_and_drops_credentials_across_origins() {
        let request = get("https://a.example/one").header("Authorization", "Bearer p");
        let responses = vec![
            response(302, &[("Location", "/two")]),
            response(301, &[("location", "https://b.example/three")]),
            response(200, &[]),
        ];
        let (result, sent) = run(request, responses);
        assert_eq!(result.unwrap().status, 200);
        assert_eq!(
            sent,
            [
                "GET https://a.example/one body=0 auth=true",
                "GET https://a.example/two body=0 auth=true",
                "GET https://b.example/three body=0 auth=false",
            ]
        );
    }

    #[test]
    fn redirect_limits() {
        let (result, sent) = run(get("http://h/").redirects(0), vec![response(302, &[("location", "/x")])]);
        assert_eq!((result.unwrap().status, sent.len()), (302, 1));

        let loop_ = (0..7).map(|_| response(307, &[("location", "/again")])).collect();
        let (result, sent) = run(get("http://h/"), loop_);
        let e = result.unwrap_err();
        assert_eq!((e.code.as_str(), sent.len()), ("too-many-redirects", 6));
        assert_eq!(TaskError::from(e).kind, ErrorKind::Fatal);

        // POST does not follow by default; with redirects, 303 continues as GET without body.
        let (result, _) = run(post("http://h/").body("x"), vec![response(303, &[("location", "/done")])]);
        assert_eq!(result.unwrap().status, 303);
        let request = post("http://h/").json(&json!({"a": 1})).redirects(2);
        let (result, sent) = run(request, vec![response(303, &[("location", "/done")]), response(200, &[])]);
        assert_eq!(result.unwrap().status, 200);
        assert_eq!(sent, ["POST http://h/ body=7 auth=false", "GET http://h/done body=0 auth=false"]);
        // 307 keeps method and body.
        let request = Request::new("put", "http://h/").body("abc").redirects(1);
        let (_, sent) = run(request, vec![response(307, &[("location", "/b")]), response(204, &[])]);
        assert_eq!(sent, ["PUT http://h/ body=3 auth=false", "PUT http://h/b body=3 auth=false"]);
    }

    #[test]
    fn bad_urls_fail_before_sending() {
        let (result, sent) = run(get("ftp://h/"), vec![]);
        assert_eq!((result.unwrap_err().code.as_str(), sent.len()), ("invalid-url", 0));
    }

    #[test]
    fn builder_sets_json_and_content_length() {
        let request = post("http://h/").header("Content-Type", "text/plain").json(&json!([1, 2]));
        assert_eq!(request.body, b"[1,2]");
        let prepared = Prepared {
            method: request.method,
            url: url(&request.url),
            headers: request.headers,
            body: request.body,
            timeout: None,
        };
        let headers = prepared.headers();
        assert_eq!(
            headers,
            [("content-type".into(), "application/json".into()), ("content-length".into(), "5".into())]
        );
        let empty_get =
            Prepared { method: Method::Get, url: url("http://h/"), headers: vec![], body: vec![], timeout: None };
        assert!(empty_get.headers().is_empty());
    }

    #[test]
    fn responses_give_headers_text_and_json() {
        let mut r = response(200, &[("Content-Type", "application/json")]);
        r.body = br#"{"a": 1}"#.to_vec();
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-none"), None);
        assert!(r.is_success());
        assert_eq!(r.json::<serde_json::Value>().unwrap(), json!({"a": 1}));
        let e = r.json::<Vec<u8>>().unwrap_err();
        assert_eq!(e.error_type, "invalid_response");
        assert_eq!(excerpt("é".repeat(10).as_bytes(), 3), "ééé...");
    }

    #[test]
    fn http_errors_map_to_task_errors() {
        let e = |code: &str| HttpError {
            code: code.into(),
            message: "m".into(),
            method: "GET".into(),
            url: "https://api.example.com:8443/v1?q".into(),
        };
        let denied = TaskError::from(e("HTTP-request-denied"));
        assert_eq!((denied.kind, denied.error_type.as_str()), (ErrorKind::Fatal, "egress_denied"));
        assert!(
            denied.message.contains("add \"https://api.example.com:8443\" to `allowed_outbound_hosts`"),
            "{}",
            denied.message
        );
        for code in ["connection-timeout", "HTTP-response-timeout", "connection-refused", "DNS-error"] {
            let t = TaskError::from(e(code));
            assert_eq!((t.kind, t.error_type.as_str()), (ErrorKind::Retryable, "http_error"), "{code}");
        }
        for code in ["HTTP-response-body-size", "TLS-certificate-error", "invalid-url"] {
            let t = TaskError::from(e(code));
            assert_eq!((t.kind, t.error_type.as_str()), (ErrorKind::Fatal, "http_error"), "{code}");
        }
        assert_eq!(e("x").to_string(), "GET https://api.example.com:8443/v1?q: x: m");
    }

    #[test]
    fn native_builds_cannot_send() {
        let e = get("https://example.com/").send().unwrap_err();
        assert_eq!(e.code, "unsupported");
    }
}
