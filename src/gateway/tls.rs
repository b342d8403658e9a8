//! TLS on the gateway's gRPC listener: the certificate and key from PEM
//! files (`[server.tls]`), optionally a CA whose client certificates are
//! required, all reloaded on SIGHUP or when a file changes. A bad new file
//! is logged and the certificate already served is kept.
//!
//! The handshake happens in the accept path (`conn::incoming`), inside the
//! connection caps and the handshake time-out. A plain-text client on a TLS
//! listener is answered in plain text with what to do ("use https://"),
//! never left with a bare protocol error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;

/// How often the files are checked for a change, by default.
pub const RELOAD_CHECK: Duration = Duration::from_secs(5);

/// The PEM files the gateway's TLS comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    /// The certificate chain, the gateway's own certificate first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// With it, every client must present a certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
    /// How often the files are checked for a change; `None`: only SIGHUP
    /// reloads them.
    pub check_every: Option<Duration>,
}

impl TlsFiles {
    fn all(&self) -> Vec<&Path> {
        let mut v = vec![self.cert.as_path(), self.key.as_path()];
        v.extend(self.client_ca.as_deref());
        v
    }
}

/// The ring provider, named: rustls must not guess among providers.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build(files: &TlsFiles) -> Result<ServerConfig, String> {
    let chain = crate::pem::certs(&files.cert, "[server.tls] cert")?;
    let key = crate::pem::key(&files.key, "[server.tls] key")?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in crate::pem::certs(ca, "[server.tls] client_ca")? {
                roots
                    .add(c)
                    .map_err(|e| format!("[server.tls] client_ca {}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider())
                .build()
                .map_err(|e| format!("[server.tls] client_ca {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder.with_single_cert(chain, key).map_err(|e| {
        format!(
            "[server.tls] the key {} cannot serve the certificate {}: {e}",
            files.key.display(),
            files.cert.display()
        )
    })?;
    // gRPC is HTTP/2; stock clients (grpcio) insist on ALPN saying so.
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

/// What a file looked like when last read: a change reloads.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The TLS the gateway serves now, swappable without a restart.
pub struct ServerTls {
    files: TlsFiles,
    config: RwLock<Arc<ServerConfig>>,
    stamps: Mutex<Vec<Stamp>>,
}

impl ServerTls {
    /// Reads the files; an error says which file and what is wrong.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, String> {
        let stamps = files.all().into_iter().map(stamp).collect();
        let config = build(&files)?;
        Ok(Arc::new(ServerTls {
            files,
            config: RwLock::new(Arc::new(config)),
            stamps: Mutex::new(stamps),
        }))
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// An acceptor with the configuration served now.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let cfg = self
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        tokio_rustls::TlsAcceptor::from(cfg)
    }

    /// Reads the files again; on success new connections get the new
    /// certificate, on failure the one served so far is kept.
    pub fn reload(&self) -> Result<(), String> {
        *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) =
            self.files.all().into_iter().map(stamp).collect();
        let cfg = build(&self.files)?;
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg);
        Ok(())
    }

    /// Whether a file changed (time or size) since it was last read.
    pub fn changed(&self) -> bool {
        let now: Vec<Stamp> = self.files.all().into_iter().map(stamp).collect();
        *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) != now
    }

    /// Reloads on SIGHUP, and when a file changes (checked as often as the
    /// files say), until the task is aborted.
    pub fn watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let tls = self.clone();
        let every = self.files.check_every;
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut check = every.map(|e| {
                let mut i = tokio::time::interval(e);
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                i
            });
            loop {
                #[cfg(unix)]
                let hangup = async {
                    match hup.as_mut() {
                        Some(h) => {
                            h.recv().await;
                        }
                        None => futures::future::pending::<()>().await,
                    }
                };
                #[cfg(not(unix))]
                let hangup = futures::future::pending::<()>();
                let tick = async {
                    match check.as_mut() {
                        Some(c) => {
                            c.tick().await;
                        }
                        None => futures::future::pending::<()>().await,
                    }
                };
                let why = tokio::select! {
                    _ = tick => {
                        if !tls.changed() {
                            continue;
                        }
                        "a file changed"
                    }
                    _ = hangup => "SIGHUP",
                };
                match tls.reload() {
                    Ok(()) => tracing::info!(
                        cert = %tls.files.cert.display(),
                        "TLS certificate reloaded ({why}); new connections get it"
                    ),
                    Err(e) => tracing::warn!(
                        "TLS certificate not reloaded ({why}): {e}; still serving the previous one"
                    ),
                }
            }
        })
    }
}

/// The answer to a plain-text HTTP/2 client on the TLS listener: every
/// request gets gRPC status UNAVAILABLE saying to use https://, for as long
/// as `within` (the connection is then closed).
pub(crate) async fn refuse_plain_h2(stream: tokio::net::TcpStream, within: Duration) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let svc = hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
        let at = req
            .uri()
            .authority()
            .map(|a| a.to_string())
            .or_else(|| {
                req.headers()
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "HOST:PORT".into());
        let message = format!("the gateway speaks TLS: use https://{at}");
        let mut resp = http::Response::new(http_body_util::Empty::<bytes::Bytes>::new());
        let h = resp.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        h.insert("grpc-status", http::HeaderValue::from_static("14"));
        if let Ok(v) = http::HeaderValue::from_str(&message) {
            h.insert("grpc-message", v);
        }
        Ok::<_, std::convert::Infallible>(resp)
    });
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), svc);
    let _ = tokio::time::timeout(within, conn).await;
}

/// The answer to anything else in plain text (curl, a browser): HTTP/1.1
/// 400 saying to use https://.
pub(crate) async fn refuse_plain_http1(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The request's head is read first: a socket closed with unread bytes
    // is reset, and the client may lose the answer.
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Ok(n) = stream.read(&mut buf).await {
            head.extend_from_slice(&buf[..n]);
            if n == 0 || head.windows(4).any(|w| w == b"\r\n\r\n") || head.len() > 16 * 1024 {
                break;
            }
        }
    })
    .await;
    let body = "the gateway speaks TLS (gRPC over HTTP/2): use https://\n";
    let resp = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}
