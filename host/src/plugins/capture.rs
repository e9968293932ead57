//! Guest stdout/stderr captured in memory, bounded: output past the bound is dropped, never an error,
//! so a chatty guest neither bloats the host nor fails because of its printing.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// A bounded in-memory sink shared between the WASI context and the host.
#[derive(Clone)]
pub(crate) struct CapturePipe {
    inner: Arc<Mutex<Buffer>>,
}

struct Buffer {
    data: Vec<u8>,
    capacity: usize,
    dropped: usize,
}

impl CapturePipe {
    pub fn new(capacity: usize) -> Self {
        CapturePipe { inner: Arc::new(Mutex::new(Buffer { data: Vec::new(), capacity, dropped: 0 })) }
    }

    fn write(&self, bytes: &[u8]) {
        let mut buf = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let room = buf.capacity.saturating_sub(buf.data.len());
        let take = room.min(bytes.len());
        buf.data.extend_from_slice(&bytes[..take]);
        buf.dropped += bytes.len() - take;
    }

    /// Takes what was captured so far, as (lossy) UTF-8 text.
    pub fn take_text(&self) -> String {
        let mut buf = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let data = std::mem::take(&mut buf.data);
        let dropped = std::mem::take(&mut buf.dropped);
        let mut text = String::from_utf8_lossy(&data).into_owned();
        if dropped > 0 {
            text.push_str(&format!("\n… {dropped} more bytes dropped"));
        }
        text
    }

    /// A copy of what was captured so far, without taking it.
    pub fn peek_text(&self) -> String {
        let buf = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buf.data).into_owned()
    }
}

impl IsTerminal for CapturePipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturePipe {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturePipe {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CapturePipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        CapturePipe::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for CapturePipe {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_the_bound_is_dropped_and_counted() {
        let pipe = CapturePipe::new(4);
        pipe.write(b"abcdef");
        assert_eq!(pipe.take_text(), "abcd\n… 2 more bytes dropped");
        assert_eq!(pipe.take_text(), "");
    }
}
