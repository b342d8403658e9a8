//! The client side of TLS, for the console, the CLI and a gateway that
//! follows another (its relay): an `https://` gateway is reached
//! through rustls, its certificate checked against a CA file or the
//! machine's CA bundle, optionally with a client certificate. Every failure
//! says in words what is wrong ("presented a certificate not signed by CA
//! FILE"), never a bare transport error.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Where the trust and the client's identity come from: flags or config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientTls {
    /// The CA that signed the gateway's certificate [default: the
    /// machine's CA bundle].
    pub ca: Option<PathBuf>,
    /// A client certificate (PEM), for a gateway that requires one.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
}

/// The CA bundles of the common systems, in the order they are tried
/// after `SSL_CERT_FILE`.
const SYSTEM_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/usr/local/etc/openssl/cert.pem",
];

/// A TLS failure in words; `describe` finds it in a status's causes.
#[derive(Debug, Clone)]
pub struct TlsFailure(pub String);

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsFailure {}

/// Notes whether the server asked for a client certificate: a TLS 1.3
/// server refuses one (or its absence) only after the handshake, so the
/// connector then waits for the server's first bytes to learn which.
#[derive(Debug)]
struct Asked {
    inner: Arc<dyn rustls::client::ResolvesClientCert>,
    asked: std::sync::atomic::AtomicBool,
}

impl rustls::client::ResolvesClientCert for Asked {
    fn resolve(
        &self,
        hints: &[&[u8]],
        schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.asked.store(true, std::sync::atomic::Ordering::Relaxed);
        self.inner.resolve(hints, schemes)
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

/// How long the connector waits for the server's first bytes after a
/// handshake in which it asked for a client certificate.
const VERDICT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The TLS a client uses for one gateway, and how its trust is named in
/// messages.
#[derive(Clone)]
pub struct Connector {
    config: Arc<ClientConfig>,
    /// The gateway's URL as it may be shown.
    url: String,
    /// "CA FILE", "the system CA bundle FILE" or "Mozilla's roots".
    trust: String,
    client_cert: Option<PathBuf>,
}

impl Connector {
    /// Reads the CA (or the system's bundle) and the client certificate.
    /// `url` is the gateway's URL as it may be shown.
    pub fn new(tls: &ClientTls, url: &str) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        let trust = match &tls.ca {
            Some(ca) => {
                for c in crate::pem::certs(ca, "CA file")? {
                    roots
                        .add(c)
                        .map_err(|e| format!("CA file {}: {e}", ca.display()))?;
                }
                format!("CA {}", ca.display())
            }
            None => {
                let bundle = std::env::var_os("SSL_CERT_FILE")
                    .map(PathBuf::from)
                    .into_iter()
                    .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
                    .find(|p| p.is_file());
                match bundle {
                    Some(b) => {
                        // A bundle may hold a certificate rustls cannot use:
                        // the others still count.
                        let (added, _) = roots
                            .add_parsable_certificates(crate::pem::certs(&b, "system CA bundle")?);
                        if added == 0 {
                            return Err(format!(
                                "system CA bundle {}: no usable certificate; give the gateway's CA with --ca FILE",
                                b.display()
                            ));
                        }
                        format!("any CA of the system bundle {}", b.display())
                    }
                    None => {
                        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                        "any of the public CAs built into warroom (this machine has no CA bundle)"
                            .to_string()
                    }
                }
            }
        };
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS: {e}"))?
                .with_root_certificates(roots);
        let mut config = match (&tls.cert, &tls.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = crate::pem::certs(cert, "client certificate")?;
                let key_der = crate::pem::key(key, "client key")?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    format!(
                        "client key {} cannot serve the certificate {}: {e}",
                        key.display(),
                        cert.display()
                    )
                })?
            }
            _ => {
                return Err(
                    "a client certificate needs both --tls-cert and --tls-key (or gateway_tls cert and key)"
                        .into(),
                );
            }
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Connector {
            config: Arc::new(config),
            url: url.to_string(),
            trust,
            client_cert: tls.cert.clone(),
        })
    }

    /// How the gateway's certificate is checked, for `warroom info`.
    pub fn trust(&self) -> &str {
        &self.trust
    }

    /// The words for a TLS error of a connection to the gateway.
    fn explain(&self, e: &rustls::Error) -> String {
        use rustls::{AlertDescription as A, CertificateError as C, Error as E};
        let url = &self.url;
        match e {
            E::InvalidCertificate(C::UnknownIssuer) => format!(
                "the gateway at {url} presented a certificate not signed by {}",
                self.trust
            ),
            E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
                format!(
                    "the gateway at {url} presented a certificate for another name than the URL's host ({e})"
                )
            }
            E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
                format!("the gateway at {url} presented an expired certificate ({e})")
            }
            E::InvalidCertificate(_) => {
                format!("the gateway at {url} presented a certificate that is not valid: {e}")
            }
            E::InvalidMessage(_) => {
                format!("the gateway at {url} does not speak TLS: use http:// (or check the port)")
            }
            E::AlertReceived(A::CertificateRequired) => format!(
                "the gateway at {url} requires a client certificate: give --tls-cert and --tls-key"
            ),
            E::AlertReceived(
                A::BadCertificate | A::UnknownCA | A::AccessDenied | A::CertificateUnknown,
            ) if self.client_cert.is_some() => {
                format!(
                    "the gateway at {url} refused the client certificate {} (not signed by the CA it trusts for clients)",
                    self.client_cert
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                )
            }
            _ => format!("TLS with the gateway at {url} failed: {e}"),
        }
    }

    /// An I/O error of the connection in words, when it is about TLS.
    fn explain_io(&self, e: &std::io::Error) -> Option<String> {
        e.get_ref()
            .and_then(|i| i.downcast_ref::<rustls::Error>())
            .map(|t| self.explain(t))
    }

    async fn connect(self, uri: http::Uri) -> Result<TokioIo<Tls>, TlsFailure> {
        let url = self.url.clone();
        let host = uri
            .host()
            .ok_or_else(|| TlsFailure(format!("gateway URL {url} has no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(443);
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| {
                TlsFailure(format!(
                    "gateway unreachable (cannot connect to {url}: {e})"
                ))
            })?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(host.clone())
            .map_err(|e| TlsFailure(format!("gateway URL {url}: host {host:?}: {e}")))?;
        let asked = Arc::new(Asked {
            inner: self.config.client_auth_cert_resolver.clone(),
            asked: std::sync::atomic::AtomicBool::new(false),
        });
        let mut config = (*self.config).clone();
        config.client_auth_cert_resolver = asked.clone();
        let failed = |e: std::io::Error| match self.explain_io(&e) {
            Some(words) => TlsFailure(words),
            None if e.kind() == std::io::ErrorKind::UnexpectedEof => TlsFailure(format!(
                "the gateway at {url} closed the connection during the TLS handshake: it may not speak TLS (use http://) or may refuse this client"
            )),
            None => TlsFailure(format!("TLS with the gateway at {url} failed: {e}")),
        };
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(failed)?;
        // Asked for a certificate: the verdict on it (an alert, or the
        // server's first HTTP/2 frame) comes with the server's first bytes.
        let mut pending = Vec::new();
        if asked.asked.load(std::sync::atomic::Ordering::Relaxed) {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0u8; 16 * 1024];
            match tokio::time::timeout(VERDICT_WAIT, tls.read(&mut buf)).await {
                Ok(Ok(0)) => {
                    return Err(TlsFailure(format!(
                        "the gateway at {url} closed the connection after the TLS handshake: it requires a client certificate{}",
                        match &self.client_cert {
                            Some(c) => format!(" and refused {}", c.display()),
                            None => ": give --tls-cert and --tls-key".into(),
                        }
                    )));
                }
                Ok(Ok(n)) => {
                    buf.truncate(n);
                    pending = buf;
                }
                Ok(Err(e)) => return Err(failed(e)),
                Err(_) => {} // a server that waits for the client to speak
            }
        }
        Ok(TokioIo::new(Tls {
            inner: tls,
            pending,
            connector: self,
        }))
    }
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<Tls>;
    type Error = TlsFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, TlsFailure>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), TlsFailure>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

/// A TLS connection to the gateway whose errors after the handshake (a
/// TLS 1.3 server refuses a client certificate only then) are in words.
pub struct Tls {
    inner: tokio_rustls::client::TlsStream<TcpStream>,
    /// What the server sent while the connector waited for its verdict.
    pending: Vec<u8>,
    connector: Connector,
}

impl Tls {
    fn words(&self, e: std::io::Error) -> std::io::Error {
        match self.connector.explain_io(&e) {
            Some(w) => std::io::Error::new(e.kind(), TlsFailure(w)),
            None => e,
        }
    }
}

impl AsyncRead for Tls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.pending.is_empty() {
            let n = self.pending.len().min(buf.remaining());
            buf.put_slice(&self.pending[..n]);
            self.pending.drain(..n);
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.words(e))),
            other => other,
        }
    }
}

impl AsyncWrite for Tls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.words(e))),
            other => other,
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The words of a TLS failure among an error's causes, if there is one.
pub fn failure_in(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(t) = c.downcast_ref::<TlsFailure>() {
            return Some(t.0.clone());
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && let Some(t) = io.get_ref().and_then(|i| i.downcast_ref::<TlsFailure>())
        {
            return Some(t.0.clone());
        }
        cause = c.source();
    }
    None
}
