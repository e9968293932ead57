//! Sending one admitted request: a TCP connection within the connect timeout, TLS (rustls) for
//! `https` with the bundled Mozilla roots plus the certificate authorities the operator adds
//! (`outbound_ca_file`), then HTTP/1.1.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use wasmtime_wasi::runtime::AbortOnDropJoinHandle;
use wasmtime_wasi_http::Error;

/// The TLS client settings of outbound requests. Cheap to clone.
#[derive(Clone, Debug)]
pub struct OutboundTls {
    config: Arc<rustls::ClientConfig>,
}

/// Why the operator's certificate authorities could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("outbound_ca_file `{}`: {reason}: give a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)", path.display())]
    CaFile { path: PathBuf, reason: String },
}

impl Default for OutboundTls {
    /// The bundled Mozilla roots only.
    fn default() -> Self {
        OutboundTls::new(Vec::new()).expect("the bundled roots are valid")
    }
}

impl OutboundTls {
    /// The bundled roots plus the CA certificates of the PEM file at `ca_file`.
    pub fn load(ca_file: Option<&Path>) -> Result<OutboundTls, TlsError> {
        let Some(path) = ca_file else {
            return Ok(OutboundTls::default());
        };
        let bad = |reason: String| TlsError::CaFile { path: path.to_path_buf(), reason };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("it holds no certificate".into()));
        }
        OutboundTls::new(certs).map_err(|e| bad(e.to_string()))
    }

    fn new(extra: Vec<CertificateDer<'static>>) -> Result<OutboundTls, rustls::Error> {
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
        for cert in extra {
            roots.add(cert)?;
        }
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        Ok(OutboundTls { config: Arc::new(config) })
    }
}

/// Send `request` (its URI absolute) and return the response as soon as its head arrives; the
/// connection lives as long as the returned guard.
pub(crate) async fn send(
    mut request: http::Request<Full<Bytes>>,
    tls: &OutboundTls,
    connect_timeout: Duration,
    first_byte_timeout: Option<Duration>,
) -> Result<(http::Response<Incoming>, AbortOnDropJoinHandle<()>), Error> {
    let uri = request.uri().clone();
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
    let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = match tokio::time::timeout(connect_timeout, TcpStream::connect((host, port))).await {
        Ok(stream) => stream.map_err(Error::Connect)?,
        Err(_) => return Err(Error::ConnectionTimeout),
    };
    // A request is written whole: do not let Nagle hold its last segment for the server's ACK.
    let _ = tcp.set_nodelay(true);
    let handshake = async {
        if https {
            let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string())
                .map_err(|_| Error::HttpRequestUriInvalid)?;
            let stream =
                tokio_rustls::TlsConnector::from(tls.config.clone()).connect(name, tcp).await.map_err(Error::Tls)?;
            http1(stream).await
        } else {
            http1(tcp).await
        }
    };
    let (mut sender, connection) =
        tokio::time::timeout(connect_timeout, handshake).await.map_err(|_| Error::ConnectionTimeout)??;
    // On the wire the request names its path only (the authority goes in `Host`).
    *request.uri_mut() = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/").parse().unwrap_or_default();
    if !request.headers().contains_key(http::header::HOST) {
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
        if let Ok(value) = http::HeaderValue::from_str(authority.rsplit_once('@').map_or(authority, |(_, a)| a)) {
            request.headers_mut().insert(http::header::HOST, value);
        }
    }
    let connection = wasmtime_wasi::runtime::spawn(connection);
    let response = match first_byte_timeout {
        Some(t) => {
            tokio::time::timeout(t, sender.send_request(request)).await.map_err(|_| Error::ConnectionReadTimeout)?
        }
        None => sender.send_request(request).await,
    }
    .map_err(Error::from)?;
    Ok((response, connection))
}

type Http1 = (
    hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
);

/// HTTP/1.1 over `stream`: the request sender and the connection's I/O, which must be polled.
async fn http1<S>(stream: S) -> Result<Http1, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.map_err(Error::from)?;
    Ok((
        sender,
        Box::pin(async move {
            let _ = connection.await;
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = OutboundTls::load(Some(&empty)).unwrap_err().to_string();
        assert!(e.contains("it holds no certificate") && e.contains("empty.pem"), "{e}");
        let e = OutboundTls::load(Some(&dir.path().join("missing.pem"))).unwrap_err().to_string();
        assert!(e.starts_with("outbound_ca_file `"), "{e}");
        assert!(OutboundTls::load(None).is_ok());
    }
}
