//! `hyphae submit | status | events | cancel`: clients of a running host.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::Value;

use super::exit::{self, CommandResult, Failure};
use super::run::read_workflow;
use super::table::{self, Table};

/// Where the host is.
#[derive(Debug, Clone, Args)]
pub struct HostUrl {
    /// URL of the running host.
    #[arg(long, env = "HYPHAE_URL", default_value = "http://127.0.0.1:8080", value_name = "URL")]
    pub url: String,
    /// API token (`hyphae token create` prints one); needed once the host has tokens.
    #[arg(long, env = "HYPHAE_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// PEM file of certificate authorities to trust for an `https://` host, besides the
    /// bundled Mozilla roots (a company CA, a self-signed certificate).
    #[arg(long, env = "HYPHAE_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Print the host's JSON answer instead of a short table.
    #[arg(long)]
    pub json: bool,
}

/// Options of `hyphae submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Workflow file (JSON).
    pub file: PathBuf,
    #[command(flatten)]
    pub host: HostUrl,
}

/// Options of `hyphae status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Workflow id.
    pub id: String,
    #[command(flatten)]
    pub host: HostUrl,
}

/// Options of `hyphae events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Workflow id.
    pub id: String,
    /// Keep streaming new events until the workflow ends.
    #[arg(long, short)]
    pub follow: bool,
    /// Only these event types (comma-separated).
    #[arg(long = "type", value_name = "TYPES")]
    pub types: Option<String>,
    #[command(flatten)]
    pub host: HostUrl,
}

/// Options of `hyphae cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// Workflow id.
    pub id: String,
    #[command(flatten)]
    pub host: HostUrl,
}

/// Options of `hyphae report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Rates cover attempts that ended since this time: a duration back (`1h`, `7d`) or RFC 3339.
    #[arg(long, default_value = "24h")]
    pub since: String,
    #[command(flatten)]
    pub host: HostUrl,
}

/// A client of a running host's API.
pub(super) struct Api {
    client: Client,
    /// The host's URL, without a trailing `/`.
    pub base: String,
}

impl Api {
    /// A client of `host` whose requests give up after `timeout` (none: never).
    pub(super) fn new(host: &HostUrl, timeout: Option<Duration>) -> Result<Api, Failure> {
        let mut b = Client::builder().connect_timeout(Duration::from_secs(5));
        if let Some(token) = host.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                Failure::new(exit::USAGE, "the token (--token / HYPHAE_TOKEN) has characters a header cannot carry")
            })?;
            value.set_sensitive(true);
            b = b.default_headers([(reqwest::header::AUTHORIZATION, value)].into_iter().collect());
        }
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        if let Some(file) = &host.ca_file {
            for cert in trusted(file)? {
                b = b.add_root_certificate(cert);
            }
        }
        let client = b.build().map_err(|e| Failure::software(format!("cannot create an HTTP client: {e}")))?;
        Ok(Api { client, base: host.url.trim_end_matches('/').to_string() })
    }

    /// Send a request (with a JSON body); any answer, error statuses included, is returned.
    pub(super) async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Response, Failure> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.map_err(|e| self.unreachable(e))
    }

    fn unreachable(&self, e: reqwest::Error) -> Failure {
        if e.is_connect() || e.is_timeout() {
            Failure::unavailable(format!(
                "could not reach the host at {}: start it with `hyphae serve`, or point to it with --url / HYPHAE_URL",
                self.base
            ))
        } else if e.is_builder() {
            Failure::new(exit::USAGE, format!("invalid host URL `{}`: {e}", self.base))
        } else {
            Failure::unavailable(format!("request to {} failed: {e}", self.base))
        }
    }

    /// Send and decode a JSON answer; a host error becomes a failure with its message.
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), Failure> {
        let resp = self.send(method, path, body).await?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.unreachable(e))?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok((status, value));
        }
        Err(host_error(status, &value))
    }
}

/// The certificates of a PEM file given with --ca-file.
fn trusted(file: &std::path::Path) -> Result<Vec<reqwest::Certificate>, Failure> {
    let bad =
        |problem: String| Failure::new(exit::NO_INPUT, format!("cannot use --ca-file `{}`: {problem}", file.display()));
    let pem = std::fs::read(file).map_err(|e| bad(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("it holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// A failure from a host's error answer (an RFC 9457 problem): 4xx is the input's fault (65), 5xx the host's (69).
fn host_error(status: StatusCode, body: &Value) -> Failure {
    let message = body["detail"].as_str().map(String::from).unwrap_or_else(|| format!("{body}"));
    let code = body["code"].as_str().unwrap_or("error");
    let text = format!("the host answered {status}: {message} ({code})");
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        Failure::new(exit::NO_PERMISSION, text)
    } else if status.is_client_error() {
        Failure::data(text)
    } else {
        Failure::unavailable(text)
    }
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub(super) async fn submit(args: SubmitArgs) -> CommandResult {
    let spec = read_workflow(&args.file)?;
    let body = serde_json::to_value(&spec).map_err(|e| Failure::software(e.to_string()))?;
    let api = Api::new(&args.host, Some(Duration::from_secs(60)))?;
    let (status, v) = api.call(Method::POST, "/v1/workflows", Some(&body)).await?;
    if args.host.json {
        print_json(&v);
    } else {
        let id = v["workflow_id"].as_str().unwrap_or("?");
        let how = if status == StatusCode::OK { " (already submitted with this idempotency key)" } else { "" };
        println!("workflow {id} {}{how}", v["status"].as_str().unwrap_or("?"));
        println!("follow it with: hyphae events {id} --follow");
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn status(args: StatusArgs) -> CommandResult {
    let api = Api::new(&args.host, Some(Duration::from_secs(30)))?;
    let (_, v) = api.call(Method::GET, &format!("/v1/workflows/{}", args.id), None).await?;
    if args.host.json {
        print_json(&v);
        return Ok(ExitCode::SUCCESS);
    }
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    println!(
        "workflow {} {}  version {}{}\n",
        s(&v["workflow_id"]),
        s(&v["status"]),
        v["version"],
        v["name"].as_str().map(|n| format!("  ({n})")).unwrap_or_default()
    );
    if let Some(line) = spending(&v) {
        println!("{line}\n");
    }
    let mut t = Table::new(&["TASK", "AGENT TYPE", "STATUS", "ATTEMPTS", "DURATION"]);
    for task in v["tasks"].as_array().into_iter().flatten() {
        let took = table::millis_between(task["started_at"].as_str(), task["finished_at"].as_str());
        t.row(vec![
            s(&task["task_id"]),
            s(&task["agent_type"]),
            s(&task["status"]),
            task["attempt"].to_string(),
            took.map(table::duration).unwrap_or_else(|| "-".into()),
        ]);
    }
    print!("{}", t.render());
    let total: u64 = v["task_counts"].as_object().into_iter().flatten().filter_map(|(_, n)| n.as_u64()).sum();
    let shown = v["tasks"].as_array().map_or(0, |t| t.len()) as u64;
    if let Some(cursor) = v["tasks_next_cursor"].as_str() {
        println!(
            "\n... and {} more tasks: GET /v1/workflows/{}/tasks?cursor={cursor}",
            total.saturating_sub(shown),
            s(&v["workflow_id"])
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What a workflow spent against its budget, and why it is paused when a budget paused it.
fn spending(v: &Value) -> Option<String> {
    let usage = &v["usage"];
    let (requests, tokens) = (usage["egress_requests"].as_u64()?, usage["llm_tokens"].as_u64()?);
    let limit = |key: &str| v["budget"][key].as_u64().map(|l| format!(" of {l}")).unwrap_or_default();
    let mut line = format!(
        "spent: {requests}{} outbound requests, {tokens}{} LLM tokens",
        limit("max_egress_requests"),
        limit("max_llm_tokens")
    );
    let reason = &v["pause_reason"];
    if reason["reason"] == "budget_exhausted" {
        line.push_str(&format!(
            "\npaused: budget `{}` spent; raise it (PUT /v1/workflows/{}/budget), then resume",
            reason["budget"].as_str().unwrap_or("?"),
            v["workflow_id"].as_str().unwrap_or("?")
        ));
    } else if requests == 0 && tokens == 0 && v["budget"].is_null() {
        return None;
    }
    Some(line)
}

pub(super) async fn cancel(args: CancelArgs) -> CommandResult {
    let api = Api::new(&args.host, Some(Duration::from_secs(30)))?;
    let (_, v) = api.call(Method::POST, &format!("/v1/workflows/{}/cancel", args.id), None).await?;
    if args.host.json {
        print_json(&v);
    } else {
        println!("workflow {} {} (version {})", args.id, v["status"].as_str().unwrap_or("?"), v["version"]);
    }
    Ok(ExitCode::SUCCESS)
}

/// `hyphae report`: the host's health report, as Markdown (or its JSON with --json).
pub(super) async fn report(args: ReportArgs) -> CommandResult {
    let api = Api::new(&args.host, Some(Duration::from_secs(60)))?;
    let format = if args.host.json { "json" } else { "md" };
    let query = reqwest::Url::parse_with_params("http://host/", [("format", format), ("since", &args.since)])
        .map_err(|e| Failure::new(exit::USAGE, format!("--since `{}` cannot be sent: {e}", args.since)))?;
    let path = format!("/v1/report?{}", query.query().unwrap_or_default());
    if args.host.json {
        let (_, v) = api.call(Method::GET, &path, None).await?;
        print_json(&v);
        return Ok(ExitCode::SUCCESS);
    }
    let resp = api.send(Method::GET, &path, None).await?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| api.unreachable(e))?;
    if !status.is_success() {
        return Err(host_error(status, &serde_json::from_str(&text).unwrap_or(Value::String(text))));
    }
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn event_line(e: &Value) -> String {
    let opt = |k: &str| e[k].as_str().map(|v| format!(" {k}={v}")).unwrap_or_default();
    let err = e["error"]["message"].as_str().map(|m| format!(" error=\"{m}\"")).unwrap_or_default();
    format!(
        "{:>5} {} {}{}{}{}{}",
        e["seq"],
        e["timestamp"].as_str().unwrap_or(""),
        e["event_type"].as_str().unwrap_or("?"),
        opt("task_id"),
        opt("agent_id"),
        opt("status"),
        err
    )
}

fn show_event(e: &Value, json: bool) {
    if json {
        println!("{e}");
    } else {
        println!("{}", event_line(e));
    }
}

pub(super) async fn events(args: EventsArgs) -> CommandResult {
    let types = args.types.as_deref().map(|t| format!("&type={t}")).unwrap_or_default();
    if args.follow {
        return follow(&args).await;
    }
    let api = Api::new(&args.host, Some(Duration::from_secs(60)))?;
    let mut cursor = String::new();
    loop {
        let path = format!("/v1/workflows/{}/events?limit=1000&cursor={cursor}{types}", args.id);
        let (_, v) = api.call(Method::GET, &path, None).await?;
        for e in v["items"].as_array().into_iter().flatten() {
            show_event(e, args.host.json);
        }
        match v["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// Stream events over SSE until the workflow ends, printing those asked for.
async fn follow(args: &EventsArgs) -> CommandResult {
    let api = Api::new(&args.host, None)?;
    let wanted: Vec<&str> = args.types.as_deref().map(|t| t.split(',').map(str::trim).collect()).unwrap_or_default();
    follow_stream(&api, &args.id, |frame| {
        let e: Value = serde_json::from_str(&frame.data).unwrap_or_else(|_| Value::String(frame.data.clone()));
        let t = e["event_type"].as_str().unwrap_or("");
        if wanted.is_empty() || wanted.contains(&t) {
            show_event(&e, args.host.json);
        }
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Follow the event stream (SSE) of workflow `id` from its start until its `end` event, calling
/// `seen` with each event; reconnects from the last position if the connection drops. Returns the
/// `end` event.
pub(super) async fn follow_stream(api: &Api, id: &str, mut seen: impl FnMut(&Frame)) -> Result<Frame, Failure> {
    let mut last = 0i64;
    let mut retries = 0;
    loop {
        let url = format!("{}/v1/workflows/{id}/events/stream?after={last}", api.base);
        let resp = match api.client.get(&url).header("accept", "text/event-stream").send().await {
            Ok(r) => r,
            Err(e) if retries < 5 && last > 0 => {
                retries += 1;
                tracing::debug!("reconnecting after {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(e) => return Err(api.unreachable(e)),
        };
        if !resp.status().is_success() {
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            return Err(host_error(status, &body));
        }
        retries = 0;
        if let Some(end) = read_frames(resp, &mut last, &mut seen).await? {
            return Ok(end);
        }
        retries += 1;
        if retries > 5 {
            return Err(Failure::unavailable(format!("lost the event stream from {}", api.base)));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Read one connection's frames: the `end` event, or `None` when the connection dropped (resume
/// after `last`, the id of the last event seen).
async fn read_frames(
    mut resp: Response,
    last: &mut i64,
    seen: &mut impl FnMut(&Frame),
) -> Result<Option<Frame>, Failure> {
    let mut buf: Vec<u8> = Vec::new();
    let mut frame = Frame::default();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(i) = buf[start..].iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&buf[start..start + i]);
            start += i + 1;
            let line = line.trim_end_matches('\r');
            if !line.is_empty() {
                frame.push(line);
                continue;
            }
            let f = std::mem::take(&mut frame);
            match f.event.as_deref() {
                Some("end") => {
                    drain(resp).await;
                    return Ok(Some(f));
                }
                Some("error") => return Err(Failure::unavailable(format!("the event stream failed: {}", f.data))),
                _ if f.data.is_empty() => {}
                _ => {
                    if let Some(seq) = f.id.as_deref().and_then(|id| id.parse().ok()) {
                        *last = seq;
                    }
                    seen(&f);
                }
            }
        }
        buf.drain(..start);
    }
    Ok(None)
}

/// Read what is left of an ended stream (briefly), so its connection can serve the next request.
async fn drain(mut resp: Response) {
    let rest = async { while let Ok(Some(_)) = resp.chunk().await {} };
    let _ = tokio::time::timeout(Duration::from_secs(1), rest).await;
}

/// One server-sent event.
#[derive(Debug, Default)]
pub(super) struct Frame {
    /// Its `event:` field (`end`, `error`), none for coordination events.
    pub event: Option<String>,
    /// Its `id:` field: the event's `seq`.
    pub id: Option<String>,
    /// Its `data:` lines, joined by newlines.
    pub data: String,
}

impl Frame {
    fn push(&mut self, line: &str) {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = Some(value.to_string()),
            "id" => self.id = Some(value.to_string()),
            "data" => {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn frames_keep_event_id_and_data_lines() {
        let mut f = super::Frame::default();
        for line in ["id: 7", "data: {\"a\":", "data: 1}", ": a comment"] {
            f.push(line);
        }
        assert_eq!((f.event, f.id.as_deref(), f.data.as_str()), (None, Some("7"), "{\"a\":\n1}"));
        let mut end = super::Frame::default();
        end.push("event: end");
        assert_eq!(end.event.as_deref(), Some("end"));
    }

    #[test]
    fn spending_shows_usage_limits_and_a_budget_pause() {
        let idle = json!({"workflow_id": "w", "usage": {"egress_requests": 0, "llm_tokens": 0}});
        assert_eq!(super::spending(&idle), None);
        let paused = json!({"workflow_id": "w", "usage": {"egress_requests": 2, "llm_tokens": 16},
            "budget": {"max_llm_tokens": 10}, "pause_reason": {"reason": "budget_exhausted", "budget": "max_llm_tokens"}});
        assert_eq!(
            super::spending(&paused).unwrap(),
            "spent: 2 outbound requests, 16 of 10 LLM tokens\n\
             paused: budget `max_llm_tokens` spent; raise it (PUT /v1/workflows/w/budget), then resume"
        );
    }
}
