//! `Watch`, served below tonic's codec: every stream sends the bytes the hub
//! encoded once per version (shared `Bytes`), so a watcher costs its socket
//! buffer, not a copy of the model. The other RPCs go to the generated
//! server unchanged.
//!
//! The body is polled by the HTTP/2 layer only when the client's window has
//! room, so nothing queues per watcher: a watcher that falls `BACKLOG`
//! updates behind gets a fresh snapshot, and one that takes nothing for
//! `watch_stall_timeout` while an update waits for it is dropped (its
//! connection closed).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use futures::Stream;
use http_body::Frame;
use http_body_util::BodyExt;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::auth::Access;
use super::conn::{ConnInfo, Kill, Limits};
use super::hub::{Encoded, Hub};
use super::service::WarRoomService;
use crate::api::{self, pb};

pub(crate) const WATCH_PATH: &str = "/warroom.v1.WarRoom/Watch";

/// The Watch streams open now, for the caps and the stall sweep.
pub struct Watchers {
    limits: Limits,
    started: Instant,
    total: AtomicUsize,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Watcher>>>,
}

/// One open stream, as the sweep sees it.
struct Watcher {
    /// Milliseconds since `Watchers::started` at which the stream handed
    /// its last update to the HTTP/2 layer and has not been asked for the
    /// next one since; 0 while it is caught up or building a snapshot.
    blocked_since_ms: AtomicU64,
    kill: Option<Arc<Kill>>,
    remote: String,
}

impl Watchers {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Watchers {
            limits,
            started: Instant::now(),
            total: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    fn now_ms(&self) -> u64 {
        // At least 1: 0 means "not blocked".
        (self.started.elapsed().as_millis() as u64).max(1)
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Watcher>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watch streams open now.
    pub fn count(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Drops the connections of watchers blocked longer than the stall
    /// time-out; returns how many.
    pub fn sweep(&self) -> usize {
        let now = self.now_ms();
        let stall = self.limits.watch_stall_timeout.as_millis() as u64;
        let mut dropped = 0;
        for w in self.open().values() {
            let since = w.blocked_since_ms.load(Ordering::Relaxed);
            if since != 0
                && now.saturating_sub(since) > stall
                && let Some(k) = &w.kill
            {
                tracing::warn!(
                    peer = %w.remote,
                    "a watcher took no update for {:?}: its connection is closed (server.watch_stall_timeout_ms)",
                    self.limits.watch_stall_timeout
                );
                k.kill();
                // Once: the stream goes when the connection does.
                w.blocked_since_ms.store(0, Ordering::Relaxed);
                dropped += 1;
            }
        }
        dropped
    }

    /// Sweeps every quarter of the stall time-out until `watchers` is the
    /// last reference.
    pub fn sweeper(watchers: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(watchers);
        let every = (watchers.limits.watch_stall_timeout / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(5));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match weak.upgrade() {
                    Some(w) => {
                        w.sweep();
                    }
                    None => return,
                }
            }
        })
    }
}

/// A stream's place in the caps and the sweep; freed when the stream goes.
struct Registration {
    watchers: Arc<Watchers>,
    id: u64,
    state: Arc<Watcher>,
    per_connection: Option<Arc<AtomicUsize>>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.watchers.open().remove(&self.id);
        self.watchers.total.fetch_sub(1, Ordering::Relaxed);
        if let Some(c) = &self.per_connection {
            c.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Takes a place for one more stream, or says which cap is reached.
fn register(watchers: &Arc<Watchers>, conn: Option<&ConnInfo>) -> Result<Registration, Status> {
    let limits = &watchers.limits;
    if watchers.total.fetch_add(1, Ordering::Relaxed) >= limits.max_watch_streams {
        watchers.total.fetch_sub(1, Ordering::Relaxed);
        return Err(Status::resource_exhausted(format!(
            "this gateway already serves {} Watch streams, its limit (server.max_watch_streams); try again later",
            limits.max_watch_streams
        )));
    }
    let per_connection = conn.map(|c| c.watches.clone());
    if let Some(c) = &per_connection
        && c.fetch_add(1, Ordering::Relaxed) >= limits.max_watch_streams_per_connection
    {
        c.fetch_sub(1, Ordering::Relaxed);
        watchers.total.fetch_sub(1, Ordering::Relaxed);
        return Err(Status::resource_exhausted(format!(
            "this connection already has {} Watch streams open, the limit per connection (server.max_watch_streams_per_connection); one Watch per console is enough",
            limits.max_watch_streams_per_connection
        )));
    }
    let id = watchers.next_id.fetch_add(1, Ordering::Relaxed);
    let state = Arc::new(Watcher {
        blocked_since_ms: AtomicU64::new(0),
        kill: conn.map(|c| c.kill.clone()),
        remote: conn.map_or_else(|| "unknown".into(), |c| c.remote.to_string()),
    });
    watchers.open().insert(id, state.clone());
    Ok(Registration {
        watchers: watchers.clone(),
        id,
        state,
        per_connection,
    })
}

type Snapshotting = Pin<Box<dyn Future<Output = Result<Encoded, tokio::task::JoinError>> + Send>>;

/// The response body of one Watch stream.
struct WatchBody {
    hub: Arc<Hub>,
    updates: BroadcastStream<Encoded>,
    seen: u64,
    need_snapshot: bool,
    snapshotting: Option<Snapshotting>,
    reg: Registration,
    done: bool,
}

impl WatchBody {
    fn blocked(&self, blocked: bool) {
        let v = if blocked {
            self.reg.watchers.now_ms()
        } else {
            0
        };
        self.reg.state.blocked_since_ms.store(v, Ordering::Relaxed);
    }

    fn send(&mut self, e: Encoded) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.seen = e.version;
        if e.message().len() > api::MAX_MESSAGE_BYTES {
            return self.end(Status::resource_exhausted(format!(
                "the update is {} bytes, more than the gateway sends ({} bytes)",
                e.message().len(),
                api::MAX_MESSAGE_BYTES
            )));
        }
        self.blocked(true);
        Poll::Ready(Some(Ok(Frame::data(e.frame))))
    }

    fn end(&mut self, status: Status) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.done = true;
        self.blocked(false);
        let mut trailers = http::HeaderMap::new();
        if status.add_header(&mut trailers).is_err() {
            return Poll::Ready(Some(Err(status)));
        }
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }
}

impl http_body::Body for WatchBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        // Asked for more: whatever was handed over last has gone.
        this.blocked(false);
        loop {
            if this.need_snapshot {
                let fut = this
                    .snapshotting
                    .get_or_insert_with(|| Box::pin(this.hub.clone().snapshot_shared()));
                match fut.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => {
                        this.snapshotting = None;
                        this.need_snapshot = false;
                        match r {
                            Ok(e) => return this.send(e),
                            Err(e) => {
                                return this.end(Status::internal(format!(
                                    "could not build a snapshot: {e}"
                                )));
                            }
                        }
                    }
                }
            }
            match Pin::new(&mut this.updates).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(e))) if e.version > this.seen => return this.send(e),
                Poll::Ready(Some(Ok(_))) => {} // already in the snapshot
                Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(n)))) => {
                    tracing::debug!(missed = n, "slow watcher resynchronised with a snapshot");
                    this.need_snapshot = true;
                }
                Poll::Ready(None) => {
                    return this.end(Status::unavailable("the gateway is stopping"));
                }
            }
        }
    }
}

/// Largest `WatchRequest` read (it has no fields).
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Reads the one `WatchRequest` of the call.
async fn read_request(body: tonic::body::Body, limits: &Limits) -> Result<(), Status> {
    let limited = http_body_util::Limited::new(body, MAX_REQUEST_BYTES);
    let collected = tokio::time::timeout(limits.handshake_timeout, limited.collect())
        .await
        .map_err(|_| {
            Status::deadline_exceeded(format!(
                "the WatchRequest did not arrive within {:?}",
                limits.handshake_timeout
            ))
        })?
        .map_err(|e| Status::invalid_argument(format!("cannot read the WatchRequest: {e}")))?;
    let mut buf = collected.to_bytes();
    if buf.len() < 5 {
        return Err(Status::invalid_argument(
            "the request has no message: send exactly one",
        ));
    }
    let compressed = buf.get_u8();
    let len = buf.get_u32() as usize;
    if compressed != 0 {
        return Err(Status::unimplemented(
            "compressed requests are not supported by this gateway",
        ));
    }
    if buf.len() != len {
        return Err(Status::invalid_argument(
            "the request is not a valid warroom.v1 message: Watch takes exactly one WatchRequest",
        ));
    }
    <pb::WatchRequest as prost::Message>::decode(buf).map_err(|e| {
        Status::invalid_argument(format!(
            "the request is not a valid warroom.v1 message: failed to decode Protobuf message: {e}"
        ))
    })?;
    Ok(())
}

async fn watch(
    hub: Arc<Hub>,
    access: Arc<Access>,
    watchers: Arc<Watchers>,
    req: http::Request<tonic::body::Body>,
) -> Result<http::Response<tonic::body::Body>, Status> {
    let (parts, body) = req.into_parts();
    access.reader(&MetadataMap::from_headers(parts.headers.clone()))?;
    hub.can_watch()?;
    let reg = register(&watchers, parts.extensions.get::<ConnInfo>())?;
    read_request(body, &watchers.limits).await?;
    // Subscribe before the snapshot is taken, so no change falls between.
    let body = WatchBody {
        updates: BroadcastStream::new(hub.subscribe()),
        hub,
        seen: 0,
        need_snapshot: true,
        snapshotting: None,
        reg,
        done: false,
    };
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .body(tonic::body::Body::new(body))
        .map_err(|e| Status::internal(e.to_string()))
}

/// `warroom.v1.WarRoom`: Watch here, everything else to the generated
/// server.
#[derive(Clone)]
pub(crate) struct WarRoomRouter {
    pub(super) grpc: pb::war_room_server::WarRoomServer<WarRoomService>,
    pub(super) hub: Arc<Hub>,
    pub(super) access: Arc<Access>,
    pub(super) watchers: Arc<Watchers>,
}

impl tonic::server::NamedService for WarRoomRouter {
    const NAME: &'static str =
        <pb::war_room_server::WarRoomServer<WarRoomService> as tonic::server::NamedService>::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tower_service::Service<http::Request<tonic::body::Body>> for WarRoomRouter {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower_service::Service::<http::Request<tonic::body::Body>>::poll_ready(&mut self.grpc, cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        if req.uri().path() == WATCH_PATH {
            let (hub, access, watchers) =
                (self.hub.clone(), self.access.clone(), self.watchers.clone());
            return Box::pin(async move {
                Ok(watch(hub, access, watchers, req)
                    .await
                    .unwrap_or_else(|s| s.into_http()))
            });
        }
        // A follower's consoles are answered by the leader (see `relay`).
        match self.hub.forward() {
            Ok(None) => Box::pin(tower_service::Service::call(&mut self.grpc, req)),
            Ok(Some((url, channel))) => Box::pin(forward(url, channel, req)),
            Err(s) => Box::pin(async move { Ok(s.into_http()) }),
        }
    }
}

/// Sends a console's call to the leader as it came (its token with it: the
/// leader checks it) and its answer back as it went.
async fn forward(
    url: String,
    mut channel: tonic::transport::Channel,
    req: http::Request<tonic::body::Body>,
) -> Result<http::Response<tonic::body::Body>, Infallible> {
    let unavailable = |e: &dyn std::fmt::Display| {
        Status::unavailable(format!(
            "this gateway follows the leader at {url}, which did not answer: {e}"
        ))
        .into_http()
    };
    if let Err(e) = futures::future::poll_fn(|cx| {
        tower_service::Service::<http::Request<tonic::body::Body>>::poll_ready(&mut channel, cx)
    })
    .await
    {
        return Ok(unavailable(&e));
    }
    match tower_service::Service::call(&mut channel, req).await {
        Ok(resp) => Ok(resp),
        Err(e) => Ok(unavailable(&e)),
    }
}
