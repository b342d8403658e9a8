//! Bounded accepting: how many connections the gateway holds (in total and
//! per peer address), how long a connection may stay silent before its
//! first byte, and what happens when `accept` itself fails.
//!
//! A connection beyond a cap is closed at once, before any byte is read; a
//! failing `accept` (out of file descriptors) backs off instead of spinning,
//! and says so in the log at most every few seconds. What is already
//! connected (consoles, health checks) goes on being served.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The gateway's bounds; `[server]` in the config sets them (see
/// docs/configuration.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Connections held at once, gRPC and status page each.
    pub max_connections: usize,
    /// Connections held at once from one IP address.
    pub max_connections_per_peer: usize,
    /// A connection that sends nothing for this long after it is accepted
    /// is closed.
    pub handshake_timeout: Duration,
    /// HTTP/2 PING every this long on an idle gRPC connection...
    pub keepalive_interval: Duration,
    /// ...and the connection is closed if the answer takes longer.
    pub keepalive_timeout: Duration,
    /// Watch streams at once, in total.
    pub max_watch_streams: usize,
    /// Watch streams at once on one connection.
    pub max_watch_streams_per_connection: usize,
    /// A watcher that has not taken an update for this long while updates
    /// wait for it is dropped (its connection is closed).
    pub watch_stall_timeout: Duration,
    /// A status page request whose headers are not complete after this
    /// long is closed.
    pub page_request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 8_192,
            max_connections_per_peer: 2_048,
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(20),
            keepalive_timeout: Duration::from_secs(20),
            max_watch_streams: 4_096,
            max_watch_streams_per_connection: 8,
            watch_stall_timeout: Duration::from_secs(120),
            page_request_timeout: Duration::from_secs(10),
        }
    }
}

/// Logs a repeated event at most once per `every`, with how many were not
/// logged in between.
struct Throttle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    fn new(every: Duration) -> Self {
        Throttle {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(suppressed since the last one)` when this one should be logged.
    fn tick(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(t) if now.duration_since(t) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_peer: HashMap<IpAddr, usize>,
}

/// What one listener holds: the counts its caps are checked against.
pub struct Tracker {
    what: &'static str,
    limits: Limits,
    counts: Mutex<Counts>,
    refused: AtomicU64,
    timed_out: AtomicU64,
}

impl Tracker {
    pub fn new(what: &'static str, limits: Limits) -> Arc<Self> {
        Arc::new(Tracker {
            what,
            limits,
            counts: Mutex::new(Counts::default()),
            refused: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a connection from `peer`, or why not.
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, &'static str> {
        let mut c = self.counts();
        if c.total >= self.limits.max_connections {
            return Err("max_connections");
        }
        let n = c.per_peer.entry(peer).or_default();
        if *n >= self.limits.max_connections_per_peer {
            return Err("max_connections_per_peer");
        }
        *n += 1;
        c.total += 1;
        Ok(Slot {
            tracker: self.clone(),
            peer,
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Connections held now.
    pub fn open(&self) -> usize {
        self.counts().total
    }

    /// Connections closed at accept because a cap was reached, so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Connections closed because they sent nothing in time, so far.
    pub fn timed_out(&self) -> u64 {
        self.timed_out.load(Ordering::Relaxed)
    }
}

/// A held connection's place in the counts; freed when dropped.
struct Slot {
    tracker: Arc<Tracker>,
    peer: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.tracker.counts();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                c.per_peer.remove(&self.peer);
            }
        }
    }
}

/// Closes one connection from elsewhere (a stalled watcher's): its reads
/// fail, so the server drops it and everything on it.
#[derive(Default)]
pub struct Kill {
    killed: AtomicBool,
    waker: AtomicWaker,
}

impl Kill {
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// What a request knows about its connection (a request extension).
#[derive(Clone)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    /// Watch streams open on this connection.
    pub watches: Arc<AtomicUsize>,
    pub kill: Arc<Kill>,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// The bytes of a connection: as they come, or through TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// An accepted connection that counts against its listener's caps until
/// dropped.
pub struct Conn {
    stream: Stream,
    info: ConnInfo,
    _slot: Slot,
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl Conn {
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.info.kill.waker.register(cx.waker());
        if self.info.kill.killed.load(Ordering::Acquire) {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "closed by the gateway",
            )));
        }
        match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.stream {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// The connections `listener` accepts within `tracker`'s caps, each once it
/// has sent a first byte and, with `tls`, finished its TLS handshake, both
/// within the handshake time-out. With `tls`, a client that speaks plain
/// text is answered in plain text that the gateway speaks TLS, and closed.
/// The accept loop runs until the receiver is dropped; then the listening
/// socket is closed.
pub fn incoming(
    listener: TcpListener,
    tracker: Arc<Tracker>,
    tls: Option<Arc<super::tls::ServerTls>>,
) -> mpsc::Receiver<Result<Conn, std::io::Error>> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let what = tracker.what;
        let mut refused_log = Throttle::new(Duration::from_secs(10));
        let mut error_log = Throttle::new(Duration::from_secs(10));
        let mut backoff = Duration::from_millis(5);
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = tx.closed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(a) => {
                    backoff = Duration::from_millis(5);
                    a
                }
                Err(e) => {
                    // Out of file descriptors, mostly: the connection stays
                    // in the kernel's backlog; retrying at once would spin.
                    if let Some(more) = error_log.tick() {
                        tracing::warn!(
                            listener = what,
                            "accept failed: {e} (retrying in {backoff:?}; {more} more such errors since the last message)"
                        );
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = tx.closed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            let slot = match tracker.admit(peer.ip()) {
                Ok(slot) => slot,
                Err(cap) => {
                    tracker.refused.fetch_add(1, Ordering::Relaxed);
                    if let Some(more) = refused_log.tick() {
                        tracing::warn!(
                            listener = what,
                            %peer,
                            "connection refused: {cap} reached ({} open; {more} more refused since the last message)",
                            tracker.open()
                        );
                    }
                    drop(stream);
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let tx = tx.clone();
            let tracker = tracker.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let limit = tracker.limits.handshake_timeout;
                let deadline = tokio::time::Instant::now() + limit;
                let mut first = [0u8; 1];
                match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    Ok(_) => return, // closed or failed before a byte
                    Err(_) => {
                        tracker.timed_out.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(listener = tracker.what, %peer, "closed: nothing sent within the handshake time-out");
                        return;
                    }
                }
                let stream = match tls {
                    None => Stream::Plain(stream),
                    // A TLS handshake record.
                    Some(tls) if first[0] == 0x16 => {
                        // Held here, so the socket closes after it is counted.
                        let mut accept = std::pin::pin!(tls.acceptor().accept(stream));
                        match tokio::time::timeout_at(deadline, accept.as_mut()).await {
                            Ok(Ok(s)) => Stream::Tls(Box::new(s)),
                            Ok(Err(e)) => {
                                tracing::debug!(listener = tracker.what, %peer, "TLS handshake failed: {e}");
                                return;
                            }
                            Err(_) => {
                                tracker.timed_out.fetch_add(1, Ordering::Relaxed);
                                tracing::debug!(listener = tracker.what, %peer, "closed: TLS handshake not finished within the handshake time-out");
                                return;
                            }
                        }
                    }
                    Some(_) => {
                        tracing::debug!(listener = tracker.what, %peer, "plain text on the TLS listener: told to use https://");
                        if first[0] == b'P' {
                            // "PRI * HTTP/2.0": a gRPC client without TLS.
                            super::tls::refuse_plain_h2(stream, limit).await;
                        } else {
                            super::tls::refuse_plain_http1(stream).await;
                        }
                        drop(slot);
                        return;
                    }
                };
                let tls_used = matches!(stream, Stream::Tls(_));
                let conn = Conn {
                    stream,
                    info: ConnInfo {
                        remote: peer,
                        watches: Arc::new(AtomicUsize::new(0)),
                        kill: Arc::new(Kill::default()),
                        tls: tls_used,
                    },
                    _slot: slot,
                };
                let _ = tx.send(Ok(conn)).await;
            });
        }
    });
    rx
}

/// Raises this process's soft limit on open files to its hard limit, so the
/// connection caps, not the file limit, are what bounds the gateway.
/// Returns (before, after).
pub fn raise_nofile_limit() -> std::io::Result<(u64, u64)> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    let before = lim.current.unwrap_or(u64::MAX);
    if lim.current == lim.maximum {
        return Ok((before, before));
    }
    setrlimit(
        Resource::Nofile,
        rustix::process::Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        },
    )?;
    Ok((before, lim.maximum.unwrap_or(u64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_peer_and_in_total_and_free_on_drop() {
        let t = Tracker::new(
            "test",
            Limits {
                max_connections: 3,
                max_connections_per_peer: 2,
                ..Limits::default()
            },
        );
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let s1 = t.admit(a).unwrap();
        let _s2 = t.admit(a).unwrap();
        assert_eq!(t.admit(a).err(), Some("max_connections_per_peer"));
        let _s3 = t.admit(b).unwrap();
        assert_eq!(t.admit(b).err(), Some("max_connections"));
        drop(s1);
        assert_eq!(t.open(), 2);
        assert!(t.admit(a).is_ok());
    }

    #[test]
    fn a_repeated_warning_is_logged_once_per_period_with_the_count_skipped() {
        let mut th = Throttle::new(Duration::from_secs(3600));
        assert_eq!(th.tick(), Some(0));
        assert_eq!(th.tick(), None);
        assert_eq!(th.tick(), None);
        th.last = Some(Instant::now() - Duration::from_secs(7200));
        assert_eq!(th.tick(), Some(2));
    }
}
