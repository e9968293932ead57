//! Watchers of a busy workflow and what they cost everyone else, through the binary over HTTP:
//! a `hyphae serve` process on SQLite runs a chain of 3,000 `fib` steps while W clients follow
//! its event stream (reading it, or not reading at all); meanwhile ten small workflows (a chain
//! of 10 `fib` steps each) are submitted one after the other and followed to their end. Reports
//! a small workflow's time from submit to its stream's `end`: the first one's (the watchers are
//! still reading the history then), and the median and worst of the others.
//! `HYPHAE_BENCH_WATCHERS=0,300` chooses the W (default 0 and 300); `HYPHAE_BENCH_BIN` another
//! `hyphae` binary to compare with.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Small workflows timed per run.
const PROBES: usize = 10;

pub fn run() {
    let counts: Vec<usize> = std::env::var("HYPHAE_BENCH_WATCHERS")
        .unwrap_or_else(|_| "0,300".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    for watchers in counts {
        for reading in [true, false] {
            if watchers == 0 && !reading {
                continue;
            }
            let host = Host::start();
            let (first, median, worst, got) = rt.block_on(measure(host.port, watchers, reading));
            let how = match (watchers, reading) {
                (0, _) => "no watchers",
                (_, true) => "reading",
                (_, false) => "not reading",
            };
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            println!(
                "{watchers} watchers of a 3,000-step chain ({how}): a 10-step workflow takes {:.1} ms the first \
                 time (while the watchers read the history), then {:.1} ms median, {:.1} ms worst ({} runs); \
                 watchers received {:.1} MB",
                ms(first),
                ms(median),
                ms(worst),
                PROBES - 1,
                got as f64 / 1e6
            );
        }
    }
}

/// The first small workflow's time, the median and worst of the others, and the bytes watchers read.
async fn measure(port: u16, watchers: usize, reading: bool) -> (Duration, Duration, Duration, usize) {
    let busy = submit(port, &chain(3000)).await;
    // Each follower says when it is following: when its first bytes came, or, not reading, when
    // its request is sent (and a moment has passed).
    let (following, mut followed) = tokio::sync::mpsc::channel::<()>(watchers.max(1));
    let followers: Vec<_> = (0..watchers)
        .map(|_| {
            let (busy, following) = (busy.clone(), following.clone());
            tokio::spawn(async move {
                let mut conn = open_stream(port, &busy).await;
                let mut buf = vec![0u8; 64 << 10];
                let mut got = 0;
                if !reading {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let _ = following.send(()).await;
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                while let Ok(n @ 1..) = conn.read(&mut buf).await {
                    if got == 0 {
                        let _ = following.send(()).await;
                    }
                    got += n;
                }
                got
            })
        })
        .collect();
    for _ in 0..watchers {
        followed.recv().await;
    }
    let mut times = Vec::new();
    for _ in 0..PROBES {
        let started = Instant::now();
        let id = submit(port, &chain(10)).await;
        follow_to_end(port, &id).await;
        times.push(started.elapsed());
    }
    let first = times.remove(0);
    times.sort();
    let mut got = 0;
    for f in followers {
        if reading {
            got += f.await.unwrap_or(0);
        } else {
            f.abort();
        }
    }
    (first, times[times.len() / 2], times[times.len() - 1], got)
}

/// A chain of `n` `fib(1)` steps.
fn chain(n: usize) -> String {
    let tasks: Vec<String> = (0..n)
        .map(|i| match i {
            0 => r#"{"task_id":"t0","agent_type":"fib","input":{"n":1}}"#.to_string(),
            _ => format!(r#"{{"task_id":"t{i}","agent_type":"fib","input":{{"n":1}},"dependencies":["t{}"]}}"#, i - 1),
        })
        .collect();
    format!(r#"{{"tasks":[{}]}}"#, tasks.join(","))
}

async fn submit(port: u16, body: &str) -> String {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let request = format!(
        "POST /v1/workflows HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    conn.read_to_string(&mut response).await.expect("response");
    let start = response.find("\"workflow_id\":\"").expect("a workflow id") + 15;
    response[start..].split('"').next().expect("id").to_string()
}

async fn open_stream(port: u16, id: &str) -> TcpStream {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let request = format!("GET /v1/workflows/{id}/events/stream HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await.expect("send");
    conn
}

/// Read `id`'s event stream until its `end` event.
async fn follow_to_end(port: u16, id: &str) {
    let mut conn = open_stream(port, id).await;
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = conn.read(&mut buf).await.expect("read");
        assert!(n > 0, "the stream of {id} closed before its end");
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(10).any(|w| w == b"event: end") {
            return;
        }
        let keep = seen.len().saturating_sub(16);
        seen.drain(..keep);
    }
}

/// A `hyphae serve` process on a fresh SQLite file with `fib` loaded; killed when dropped.
struct Host {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Host {
    fn start() -> Host {
        let dir = tempfile::tempdir().expect("temp dir");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).expect("plugins dir");
        std::fs::copy(super::plugins::dist().join("fib.wasm"), plugins.join("fib.wasm")).expect("fib.wasm");
        std::fs::write(
            dir.path().join("hyphae.toml"),
            "max_event_streams = 4096\nmax_event_streams_per_client = 4096\n",
        )
        .expect("config");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let bin =
            std::env::var_os("HYPHAE_BENCH_BIN").map(PathBuf::from).unwrap_or(env!("CARGO_BIN_EXE_hyphae").into());
        let child = Command::new(bin)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--db")
            .arg(dir.path().join("hyphae.db"))
            .arg("--plugins-dir")
            .arg(&plugins)
            .arg("--config")
            .arg(dir.path().join("hyphae.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("hyphae serve starts");
        let started = Instant::now();
        while !ready(port) {
            assert!(started.elapsed() < Duration::from_secs(60), "the host did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        Host { child, port, _dir: dir }
    }
}

fn ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = conn.write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let mut response = String::new();
    let _ = conn.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
