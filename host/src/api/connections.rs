//! Connections of the HTTP API, bounded below the process's descriptor limit so that clients
//! holding connections open cannot starve the host of the descriptors it needs for its database,
//! plugin files and outbound requests. A connection past the bound is answered `503` at once and
//! closed. A connection whose client stops reading is closed once a write has waited
//! `client_write_timeout`, so no slow reader holds a slot (or a stream's buffers) for ever.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use tokio_rustls::TlsAcceptor;

use super::error::{ApiError, ErrorCode, PROBLEM_JSON};
use super::tls::{Stream, HANDSHAKE_TIMEOUT};
use tokio::time::Sleep;

/// Most connections by default, whatever the descriptor limit.
const DEFAULT_CAP: usize = 8192;

/// Raise the soft limit on open descriptors to the hard limit, and return the limit in effect.
pub fn raise_descriptor_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    limit.rlim_cur
}

/// The default bound for a descriptor limit: half of it (the rest stays the host's), at most 8,192.
pub fn default_max_connections(descriptor_limit: u64) -> usize {
    ((descriptor_limit / 2) as usize).clamp(1, DEFAULT_CAP)
}

/// A TCP listener that holds at most `max` connections open, and closes those whose writes wait
/// longer than `write_timeout` for the client to read. With TLS, each handshake runs in a task
/// of its own (at most [`HANDSHAKE_TIMEOUT`]), holding its connection's slot.
pub struct Bounded {
    tcp: Slots,
    tls: Option<Tls>,
}

/// The TCP listener and the slots of its connections.
struct Slots {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    max: usize,
    write_timeout: Duration,
    /// Whether a connection past the bound is answered a plain-HTTP 503 (not under TLS).
    answer_refused: bool,
}

/// Handshakes under way send their connections here.
struct Tls {
    acceptor: TlsAcceptor,
    done_tx: mpsc::Sender<(Counted, SocketAddr)>,
    done_rx: mpsc::Receiver<(Counted, SocketAddr)>,
}

impl Bounded {
    pub fn new(listener: TcpListener, max: usize, write_timeout: Duration) -> Bounded {
        let tcp = Slots { listener, slots: Arc::new(Semaphore::new(max)), max, write_timeout, answer_refused: true };
        Bounded { tcp, tls: None }
    }

    /// Serve HTTPS with `acceptor` on the connections.
    pub fn with_tls(mut self, acceptor: TlsAcceptor) -> Bounded {
        let (done_tx, done_rx) = mpsc::channel(64);
        self.tls = Some(Tls { acceptor, done_tx, done_rx });
        self.tcp.answer_refused = false;
        self
    }
}

impl Slots {
    /// The next TCP connection with a slot (one past the bound is refused, a plain one with a 503).
    async fn next_tcp(&mut self) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
        loop {
            let (stream, addr) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was accepted: wait a
                    // little rather than spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Responses are written whole; without this, Nagle's algorithm holds the last segment
            // of a response until the client's delayed ACK, about 40 ms per request.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(%addr, "cannot set TCP_NODELAY: {e}");
            }
            match self.slots.clone().try_acquire_owned() {
                Ok(permit) => return (stream, addr, permit),
                Err(_) => {
                    tracing::warn!(%addr, max = self.max, "connection refused: the host holds max_connections already");
                    if self.answer_refused {
                        tokio::spawn(refuse(stream, self.max));
                    }
                }
            }
        }
    }

    fn counted(&self, stream: Stream, permit: OwnedSemaphorePermit) -> Counted {
        Counted { stream, _permit: permit, write_timeout: self.write_timeout, stalled: None }
    }
}

/// Finish the TLS handshake of `conn` (plain so far) and hand it to the accept loop.
async fn handshake(acceptor: TlsAcceptor, conn: Counted, addr: SocketAddr, done: mpsc::Sender<(Counted, SocketAddr)>) {
    let Counted { stream: Stream::Plain(tcp), _permit, write_timeout, .. } = conn else { return };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => {
            let conn = Counted { stream: Stream::Tls(Box::new(tls)), _permit, write_timeout, stalled: None };
            let _ = done.send((conn, addr)).await;
        }
        Ok(Err(e)) => tracing::debug!(%addr, "TLS handshake failed: {e}"),
        Err(_) => tracing::debug!(%addr, "TLS handshake not finished within {HANDSHAKE_TIMEOUT:?}"),
    }
}

impl axum::serve::Listener for Bounded {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Counted, SocketAddr) {
        loop {
            let Some(tls) = &mut self.tls else {
                let (stream, addr, permit) = self.tcp.next_tcp().await;
                return (self.tcp.counted(Stream::Plain(stream), permit), addr);
            };
            tokio::select! {
                Some(done) = tls.done_rx.recv() => return done,
                (stream, addr, permit) = self.tcp.next_tcp() => {
                    let conn = self.tcp.counted(Stream::Plain(stream), permit);
                    tokio::spawn(handshake(tls.acceptor.clone(), conn, addr, tls.done_tx.clone()));
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.listener.local_addr()
    }
}

/// Answer 503 in the API's error shape and close.
async fn refuse(mut stream: TcpStream, max: usize) {
    let err = ApiError::new(
        ErrorCode::TooManyConnections,
        format!("the host holds {max} connections, its max_connections: close idle connections or retry later"),
    );
    let body = serde_json::to_string(&err.problem()).unwrap_or_default();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {PROBLEM_JSON}\r\ncontent-length: {}\r\n\
         connection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// The address a connection came from, for the handlers that limit per client.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Bounded>> for ClientAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Bounded>) -> ClientAddr {
        ClientAddr(*stream.remote_addr())
    }
}

/// A connection holding one slot of the bound until it closes.
pub struct Counted {
    stream: Stream,
    _permit: OwnedSemaphorePermit,
    write_timeout: Duration,
    /// Running while a write waits for the client to read.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl Counted {
    /// Pass a write's readiness through, failing it once it has waited `write_timeout`.
    fn bound_wait<T>(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let timeout = self.write_timeout;
        let stalled = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                tracing::info!(
                    timeout_s = timeout.as_secs_f64(),
                    "closing a connection: its client has not read for client_write_timeout"
                );
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading")))
            }
        }
    }
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.bound_wait(cx, polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_flush(cx);
        self.bound_wait(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.bound_wait(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_keeps_half_the_descriptors() {
        assert_eq!(default_max_connections(1024), 512);
        assert_eq!(default_max_connections(1 << 20), 8192);
        assert_eq!(default_max_connections(1), 1);
    }
}
