//! A PostgreSQL outage: while the database cannot be reached every request is a 503
//! `database_unavailable` with a correlation id and no driver text; afterwards the host serves
//! again and nothing stored before is lost. The outage is real: the host reaches PostgreSQL
//! through a TCP proxy the test cuts and restores.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::api::app_with;
use crate::harness::{postgres_admin_url, Backend};

/// Forwards TCP connections from `addr` to `upstream` until cut.
struct Proxy {
    addr: SocketAddr,
    upstream: String,
    cut: CancellationToken,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = CancellationToken::new();
        tokio::spawn(forward(listener, upstream.clone(), cut.clone()));
        Proxy { addr, upstream, cut }
    }

    /// Drops every connection and refuses new ones.
    fn cut(&self) {
        self.cut.cancel();
    }

    /// Accepts connections again, on the same port.
    async fn restore(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.cut = CancellationToken::new();
        tokio::spawn(forward(listener, self.upstream.clone(), self.cut.clone()));
    }
}

async fn forward(listener: TcpListener, upstream: String, cut: CancellationToken) {
    loop {
        let (mut client, _) = tokio::select! {
            _ = cut.cancelled() => return,
            accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => return },
        };
        let (upstream, cut) = (upstream.clone(), cut.clone());
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
            tokio::select! {
                _ = cut.cancelled() => {}
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
            }
        });
    }
}

/// `host:port` of a `postgres://user@host:port/db` url.
fn host_port(url: &str) -> String {
    let rest = url.split_once('@').map(|(_, r)| r).unwrap_or(url);
    rest.split('/').next().unwrap().to_string()
}

fn assert_unavailable(status: StatusCode, v: &Value) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["code"], "database_unavailable", "{v}");
    assert!(v["details"]["correlation_id"].as_str().is_some_and(|id| id.len() == 32), "{v}");
    let text = v.to_string().to_lowercase();
    for leak in ["refused", "os error", "pool", "127.0.0.1", "postgres", "sqlx", "timed out"] {
        assert!(!text.contains(leak), "the response shows `{leak}`: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_a_503_and_the_host_recovers() {
    let upstream = host_port(&postgres_admin_url());
    let mut proxy = Proxy::start(upstream.clone()).await;
    let via = proxy.addr.to_string();
    let app = app_with(Backend::Postgres, |c| c.db = c.db.replace(&upstream, &via)).await;
    let id = app.submit(json!({"tasks": [{"task_id": "a", "agent_type": "echo"}]})).await;
    assert_eq!(app.settle(&id).await, "completed");

    proxy.cut();
    let submit = json!({"tasks": [{"task_id": "b", "agent_type": "echo"}]});
    let path = format!("/v1/workflows/{id}");
    let ((s1, v1), (s2, v2), (s3, v3)) =
        tokio::join!(app.get(&path), app.post("/v1/workflows", submit), app.get("/readyz"),);
    assert_unavailable(s1, &v1);
    assert_unavailable(s2, &v2);
    assert_eq!(s3, StatusCode::SERVICE_UNAVAILABLE, "{v3}");
    assert_eq!(v3["components"]["database"]["status"], "failed", "{v3}");
    assert!(!v3.to_string().contains("refused"), "readiness shows driver text: {v3}");

    proxy.restore().await;
    let started = Instant::now();
    let state = loop {
        let (s, v) = app.get(&format!("/v1/workflows/{id}")).await;
        if s == StatusCode::OK {
            break v;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the host did not recover: {s} {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(state["status"], "completed", "nothing stored before the outage is lost: {state}");
    let (s, _) = app.get("/readyz").await;
    assert_eq!(s, StatusCode::OK);
}
