//! Chat completions from an OpenAI-compatible server (OpenAI, Ollama, vLLM, llama.cpp, ...).
//!
//! ```no_run
//! use hyphae_plugin_sdk::{llm, TaskError};
//!
//! fn ask(question: &str) -> Result<String, TaskError> {
//!     // Manifest: [config] base_url = "https://api.openai.com/v1", model = "gpt-4o-mini",
//!     // secret = "openai"; plus secrets = ["openai"] and allowed_outbound_hosts.
//!     let client = llm::Client::from_config()?;
//!     let answer = client.chat(vec![llm::Message::system("Be brief."), llm::Message::user(question)])?;
//!     Ok(answer.content)
//! }
//! ```
//!
//! The request is `POST {base_url}/chat/completions` with `{model, messages, temperature?,
//! max_tokens?}` and, when a secret is named, `authorization: Bearer <placeholder>` (the host puts
//! the key in). A non-2xx answer is an `llm_error` naming the status and the server's message:
//! retryable for 429 and 5xx, fatal otherwise.

use crate::{config, http, secret, TaskError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

/// One message of a chat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message with any role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Message { role: role.into(), content: content.into() }
    }

    /// A `system` message (instructions).
    pub fn system(content: impl Into<String>) -> Self {
        Message::new("system", content)
    }

    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        Message::new("user", content)
    }

    /// An `assistant` message (an earlier answer).
    pub fn assistant(content: impl Into<String>) -> Self {
        Message::new("assistant", content)
    }
}

/// One chat completion request.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    /// API base, up to and including the version: `https://api.openai.com/v1`.
    pub base_url: String,
    /// Model name, such as `gpt-4o-mini`.
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Sampling temperature; server default when `None`.
    pub temperature: Option<f64>,
    /// Most tokens to generate; server default when `None`.
    pub max_tokens: Option<u32>,
    /// Name of the secret holding the API key (sent as `authorization: Bearer ...`).
    pub secret: Option<String>,
    /// Connect and first-byte timeout of the request (see [`http::Request::timeout`]).
    pub timeout: Option<Duration>,
}

impl ChatRequest {
    /// A request without temperature, token limit, secret or timeout.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>, messages: Vec<Message>) -> Self {
        ChatRequest {
            base_url: base_url.into(),
            model: model.into(),
            messages,
            temperature: None,
            max_tokens: None,
            secret: None,
            timeout: None,
        }
    }

    /// `{base_url}/chat/completions`.
    pub fn url(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }

    /// The JSON body sent.
    pub fn body(&self) -> Value {
        let mut body = json!({ "model": self.model, "messages": self.messages });
        if let Some(t) = self.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(n) = self.max_tokens {
            body["max_tokens"] = json!(n);
        }
        body
    }
}

/// Tokens the server reports having used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// The answer: the first choice's text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// `choices[0].message.content`.
    pub content: String,
    /// The model that answered, as the server names it.
    pub model: String,
    /// Token counts (zeros when the server reports none).
    pub usage: Usage,
}

/// Sends `request` and returns the first choice. HTTP failures map as in [`http`]; a non-2xx
/// status is `llm_error` (retryable for 429 and 5xx); an unreadable answer, fatal `llm_error`.
pub fn chat(request: &ChatRequest) -> Result<ChatResponse, TaskError> {
    let url = request.url();
    let mut http = http::post(&url).header("accept", "application/json").json(&request.body());
    if let Some(name) = &request.secret {
        http = http.header("authorization", format!("Bearer {}", secret::placeholder(name)?));
    }
    if let Some(timeout) = request.timeout {
        http = http.timeout(timeout);
    }
    let response = http.send()?;
    let answer = parse_response(&url, &request.model, response.status, &response.body)?;
    crate::log::debug!("llm: {} answered with {} tokens", answer.model, answer.usage.total_tokens);
    Ok(answer)
}

/// Reads a chat completion response (`model` defaults to the requested one).
fn parse_response(url: &str, model: &str, status: u16, body: &[u8]) -> Result<ChatResponse, TaskError> {
    if !(200..300).contains(&status) {
        return Err(status_error(url, status, body));
    }
    let unreadable = |what: &str| {
        TaskError::fatal("llm_error", format!("POST {url}: {what}"))
            .with_detail(json!({ "status": status, "body": http::excerpt(body, 300) }))
    };
    let v: Value = serde_json::from_slice(body).map_err(|e| unreadable(&format!("response is not JSON: {e}")))?;
    let content = v.pointer("/choices/0/message/content").and_then(Value::as_str);
    let content = content.ok_or_else(|| unreadable("response has no text at choices[0].message.content"))?;
    let mut usage = v.get("usage").and_then(|u| Usage::deserialize(u).ok()).unwrap_or_default();
    if usage.total_tokens == 0 {
        usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    }
    Ok(ChatResponse {
        content: content.to_string(),
        model: v.get("model").and_then(Value::as_str).unwrap_or(model).to_string(),
        usage,
    })
}

/// A non-2xx answer: its status and the server's message (or the start of the body).
fn status_error(url: &str, status: u16, body: &[u8]) -> TaskError {
    let server_message = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let m = v.pointer("/error/message").or_else(|| v.get("error")).or_else(|| v.get("message"))?;
        m.as_str().map(|s| http::excerpt(s.as_bytes(), 200))
    });
    let excerpt = server_message.unwrap_or_else(|| http::excerpt(body, 200));
    let message = format!("POST {url}: HTTP {status}: {excerpt}");
    let detail = json!({ "status": status, "body": http::excerpt(body, 300) });
    if status == 429 || (500..600).contains(&status) {
        TaskError::retryable("llm_error", message).with_detail(detail)
    } else {
        TaskError::fatal("llm_error", message).with_detail(detail)
    }
}

/// Settings shared by the requests of an agent type, usually from its manifest's `[config]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Client {
    /// API base, such as `https://api.openai.com/v1`.
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// Name of the secret holding the API key; `None`: no `authorization` header.
    pub secret: Option<String>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Most tokens to generate.
    pub max_tokens: Option<u32>,
    /// Connect and first-byte timeout.
    pub timeout: Option<Duration>,
}

impl Client {
    /// A client for `model` at `base_url`, without secret.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        let (base_url, model) = (base_url.into(), model.into());
        Client { base_url, model, secret: None, temperature: None, max_tokens: None, timeout: None }
    }

    /// From config keys `base_url` and `model` (required: else fatal `missing_config`), and the
    /// optional `secret` (a secret's name), `temperature`, `max_tokens` and `timeout_s` (a bad
    /// number: fatal `invalid_config`).
    pub fn from_config() -> Result<Self, TaskError> {
        Client::from_lookup(config::get)
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, TaskError> {
        let require = |key: &str| get(key).ok_or_else(|| config::missing(key));
        fn number<T: std::str::FromStr>(key: &str, value: Option<String>) -> Result<Option<T>, TaskError> {
            let Some(text) = value else { return Ok(None) };
            let parsed = text.trim().trim_matches('"').parse::<T>();
            let message = || format!("config key {key:?} = {text:?}: not a valid number");
            parsed.map(Some).map_err(|_| TaskError::fatal("invalid_config", message()))
        }
        let timeout = number::<f64>("timeout_s", get("timeout_s"))?;
        let timeout = match timeout {
            Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
            Some(s) => {
                return Err(TaskError::fatal("invalid_config", format!("config key \"timeout_s\" = {s}: must be > 0")))
            }
            None => None,
        };
        Ok(Client {
            base_url: require("base_url")?,
            model: require("model")?,
            secret: get("secret").filter(|s| !s.is_empty()),
            temperature: number("temperature", get("temperature"))?,
            max_tokens: number("max_tokens", get("max_tokens"))?,
            timeout,
        })
    }

    /// The request this client sends for `messages`.
    pub fn request(&self, messages: Vec<Message>) -> ChatRequest {
        ChatRequest {
            base_url: self.base_url.clone(),
            model: self.model.clone(),
            messages,
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            secret: self.secret.clone(),
            timeout: self.timeout,
        }
    }

    /// Sends `messages` (see [`chat`]).
    pub fn chat(&self, messages: Vec<Message>) -> Result<ChatResponse, TaskError> {
        chat(&self.request(messages))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn requests_are_openai_chat_completions() {
        let mut r =
            ChatRequest::new("https://api.example.com/v1/", "m", vec![Message::system("s"), Message::user("u")]);
        assert_eq!(r.url(), "https://api.example.com/v1/chat/completions");
        assert_eq!(
            r.body(),
            json!({"model": "m", "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]})
        );
        r.temperature = Some(0.5);
        r.max_tokens = Some(100);
        assert_eq!((r.body()["temperature"].clone(), r.body()["max_tokens"].clone()), (json!(0.5), json!(100)));
    }

    #[test]
    fn responses_give_content_model_and_usage() {
        let body =
            br#"{"id":"x","model":"m-2024","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],
                        "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
        let r = parse_response("u", "m", 200, body).unwrap();
        let usage = Usage { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 };
        assert_eq!(r, ChatResponse { content: "hi".into(), model: "m-2024".into(), usage });

        let r = parse_response(
            "u",
            "m",
            200,
            br#"{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
        );
        let r = r.unwrap();
        assert_eq!((r.model.as_str(), r.usage.total_tokens), ("m", 2));

        let e = parse_response("u", "m", 200, br#"{"choices":[]}"#).unwrap_err();
        assert_eq!((e.kind, e.error_type.as_str()), (ErrorKind::Fatal, "llm_error"));
        assert!(parse_response("u", "m", 200, b"<html>").is_err());
    }

    #[test]
    fn error_statuses_name_status_and_message() {
        let e = parse_response("u", "m", 429, br#"{"error":{"message":"Rate limit reached","type":"requests"}}"#)
            .unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Retryable, "POST u: HTTP 429: Rate limit reached"));
        let e = parse_response("u", "m", 503, b"upstream down").unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Retryable, "POST u: HTTP 503: upstream down"));
        let e = parse_response("u", "m", 401, &[b'x'; 500]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Fatal);
        assert!(e.message.starts_with("POST u: HTTP 401: xxx") && e.message.ends_with("...") && e.message.len() < 240);
        let e = parse_response("u", "m", 404, br#"{"error":"model not found"}"#).unwrap_err();
        assert_eq!(e.message, "POST u: HTTP 404: model not found");
    }

    #[test]
    fn clients_come_from_config() {
        let config = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string())
        };
        let c = Client::from_lookup(config(&[
            ("base_url", "http://127.0.0.1:11434/v1"),
            ("model", "llama3"),
            ("secret", "openai"),
            ("temperature", "0.2"),
            ("max_tokens", "256"),
            ("timeout_s", "30"),
        ]))
        .unwrap();
        assert_eq!((c.secret.as_deref(), c.temperature, c.max_tokens), (Some("openai"), Some(0.2), Some(256)));
        assert_eq!(c.timeout, Some(Duration::from_secs(30)));
        let r = c.request(vec![Message::user("q")]);
        assert_eq!((r.model.as_str(), r.secret.as_deref()), ("llama3", Some("openai")));

        let plain = Client::from_lookup(config(&[("base_url", "http://h/v1"), ("model", "m")])).unwrap();
        assert_eq!(plain, Client::new("http://h/v1", "m"));

        let e = Client::from_lookup(config(&[("base_url", "http://h/v1")])).unwrap_err();
        assert_eq!(e.error_type, "missing_config");
        assert!(e.message.contains("\"model\""));
        let e = Client::from_lookup(config(&[("base_url", "b"), ("model", "m"), ("max_tokens", "lots")])).unwrap_err();
        assert_eq!(e.error_type, "invalid_config");
    }

    #[test]
    fn native_chat_fails_without_wasi_http() {
        let e = Client::new("https://api.example.com/v1", "m").chat(vec![Message::user("q")]).unwrap_err();
        assert_eq!((e.kind, e.error_type.as_str()), (ErrorKind::Fatal, "http_error"));
    }
}
