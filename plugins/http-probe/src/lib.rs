//! `http-probe`: an executor for the host's tests of outbound HTTP, secrets and config.
//!
//! Input:
//!
//! ```json
//! {"requests": [{"method": "GET", "url": "https://example.com/", "headers": {"k": "v"},
//!                "body": "text", "secret": "NAME", "redirects": 0, "timeout_ms": 5000}],
//!  "config": true, "fail_on_error": false}
//! ```
//!
//! Only `url` is required (`method` defaults to GET). With `secret`, the secret's placeholder is
//! sent as `authorization: Bearer <placeholder>` (unless `headers` has an `authorization`) and
//! replaces `{secret}` in `body` and in header values. Output: `{"responses": [..], "config":
//! {..}}` (`config` only when asked): each slot is `{"status", "headers": {name: value}, "body",
//! "url"}` or `{"error": CODE, "message", "error_type", "retryable"}`, where CODE is the
//! wasi:http error code (`HTTP-request-denied`, ...) or a task error type (`missing_secret`), and
//! `error_type` / `retryable` are what the SDK makes of it as a task error. Failed requests do
//! not fail the task, unless `fail_on_error` is true: then the first failure is the task's error.

use hyphae_plugin_sdk::{config, export_executor, http, json, log, secret, Executor, TaskContext, TaskError, Value};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    requests: Vec<Probe>,
    #[serde(default)]
    config: bool,
    #[serde(default)]
    fail_on_error: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Probe {
    #[serde(default = "default_method")]
    method: String,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<String>,
    secret: Option<String>,
    redirects: Option<u32>,
    timeout_ms: Option<u64>,
}

fn default_method() -> String {
    "GET".into()
}

struct HttpProbe;

impl Executor for HttpProbe {
    fn execute(ctx: TaskContext) -> Result<Value, TaskError> {
        let input: Input = ctx.input()?;
        let mut responses = Vec::with_capacity(input.requests.len());
        for (i, probe) in input.requests.iter().enumerate() {
            let slot = match send(probe) {
                Ok(response) => response_json(&response),
                Err(failure) => {
                    log::info!("request {i}: {}", failure.message());
                    if input.fail_on_error {
                        return Err(failure.into_task_error());
                    }
                    failure.to_json()
                }
            };
            responses.push(slot);
        }
        let mut output = json!({ "responses": responses });
        if input.config {
            output["config"] = config::all().into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        }
        Ok(output)
    }
}

/// Why a probe failed: the request, or getting the secret before it.
enum Failure {
    Http(http::HttpError),
    Task(TaskError),
}

impl Failure {
    /// `METHOD URL: code: what happened` for HTTP errors, the task error's message otherwise.
    fn message(&self) -> String {
        match self {
            Failure::Http(e) => e.to_string(),
            Failure::Task(e) => e.message.clone(),
        }
    }

    fn into_task_error(self) -> TaskError {
        match self {
            Failure::Http(e) => e.into(),
            Failure::Task(e) => e,
        }
    }

    fn to_json(&self) -> Value {
        let code = match self {
            Failure::Http(e) => e.code.clone(),
            Failure::Task(e) => e.error_type.clone(),
        };
        let message = self.message();
        let task_error = match self {
            Failure::Http(e) => TaskError::from(e.clone()),
            Failure::Task(e) => e.clone(),
        };
        let retryable = task_error.kind == hyphae_plugin_sdk::ErrorKind::Retryable;
        json!({ "error": code, "message": message, "error_type": task_error.error_type, "retryable": retryable })
    }
}

fn send(probe: &Probe) -> Result<http::Response, Failure> {
    let placeholder = probe.secret.as_deref().map(secret::placeholder).transpose().map_err(Failure::Task)?;
    let (headers, body) = with_secret(probe, placeholder.as_deref());
    let mut request = http::Request::new(probe.method.as_str(), probe.url.as_str());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    if let Some(n) = probe.redirects {
        request = request.redirects(n);
    }
    if let Some(ms) = probe.timeout_ms {
        request = request.timeout(Duration::from_millis(ms));
    }
    request.send().map_err(Failure::Http)
}

/// The probe's headers and body with the placeholder put in.
fn with_secret(probe: &Probe, placeholder: Option<&str>) -> (Vec<(String, String)>, Option<String>) {
    let fill = |text: &str| match placeholder {
        Some(p) => text.replace("{secret}", p),
        None => text.to_string(),
    };
    let mut headers: Vec<(String, String)> = probe.headers.iter().map(|(k, v)| (k.clone(), fill(v))).collect();
    if let Some(p) = placeholder {
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization")) {
            headers.insert(0, ("authorization".into(), format!("Bearer {p}")));
        }
    }
    (headers, probe.body.as_deref().map(fill))
}

/// `{"status", "headers", "body", "url"}`; a header received more than once has its values
/// joined with `, `.
fn response_json(response: &http::Response) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in &response.headers {
        headers
            .entry(name.to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value)
            })
            .or_insert_with(|| value.clone());
    }
    json!({ "status": response.status, "headers": headers, "body": response.text(), "url": response.url })
}

export_executor!(HttpProbe);

#[cfg(test)]
mod tests {
    use super::*;
    use hyphae_plugin_sdk::serde_json;

    fn probe(v: Value) -> Probe {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn secrets_go_into_authorization_and_body() {
        let p = probe(
            json!({"url": "https://h/", "body": "key={secret}", "headers": {"x-key": "{secret}"}, "secret": "s"}),
        );
        assert_eq!(p.method, "GET");
        let (headers, body) = with_secret(&p, Some("PH"));
        assert_eq!(headers, [("authorization".into(), "Bearer PH".into()), ("x-key".into(), "PH".into())]);
        assert_eq!(body.as_deref(), Some("key=PH"));

        let p = probe(json!({"url": "https://h/", "headers": {"Authorization": "Token {secret}"}}));
        assert_eq!(with_secret(&p, Some("PH")).0, [("Authorization".into(), "Token PH".into())]);
        assert_eq!(with_secret(&p, None).0, [("Authorization".into(), "Token {secret}".into())]);
    }

    #[test]
    fn responses_and_errors_fill_their_slots() {
        let response = http::Response {
            status: 200,
            headers: vec![("Set-Cookie".into(), "a".into()), ("set-cookie".into(), "b".into())],
            body: b"hi".to_vec(),
            url: "https://h/".into(),
        };
        assert_eq!(
            response_json(&response),
            json!({"status": 200, "headers": {"set-cookie": "a, b"}, "body": "hi", "url": "https://h/"})
        );
        let denied = http::HttpError {
            code: "HTTP-request-denied".into(),
            message: "m".into(),
            method: "GET".into(),
            url: "https://h/".into(),
        };
        let slot = Failure::Http(denied).to_json();
        assert_eq!(
            (slot["error"].as_str(), slot["error_type"].as_str(), slot["retryable"].as_bool()),
            (Some("HTTP-request-denied"), Some("egress_denied"), Some(false))
        );
    }

    #[test]
    fn failures_are_reported_per_request_natively() {
        // Natively there is no wasi:http: every request fails, and the task still completes.
        let input =
            json!({"requests": [{"url": "https://h/"}, {"url": "https://h/", "secret": "none"}], "config": true});
        let ctx = TaskContext::for_test(input);
        let out = HttpProbe::execute(ctx.clone()).unwrap();
        assert_eq!(out["responses"][0]["error"], "unsupported");
        assert_eq!(out["responses"][1]["error"], "missing_secret");
        assert_eq!(out["config"], json!({}));

        let mut failing = ctx;
        failing.input["fail_on_error"] = json!(true);
        let e = HttpProbe::execute(failing).unwrap_err();
        assert_eq!(e.error_type, "http_error");
    }
}
