//! The gateway: the only process that talks to backends. It advances each
//! source once per tick whatever the number of consoles, keeps the current
//! picture, and serves it over gRPC (`warroom.v1`), with gRPC health checking
//! and server reflection so stock clients work.

pub(crate) mod auth;
pub(crate) mod codes;
pub mod conn;
pub mod hub;
pub(crate) mod outbox;
pub(crate) mod page;
pub mod publish;
pub(crate) mod record;
pub mod relay;
pub(crate) mod service;
pub(crate) mod slips;
pub mod tls;
pub(crate) mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::ReceiverStream;

use crate::api::{self, pb};
pub use auth::Access;
pub use conn::Limits;
pub use hub::Hub;

/// A running gateway: its address, its hub, and a way to stop it.
pub struct Gateway {
    pub addr: SocketAddr,
    pub hub: Arc<Hub>,
    shutdown: Option<oneshot::Sender<()>>,
    ticker: Option<hub::Ticker>,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    outbox: tokio::task::JoinHandle<()>,
    page: Option<tokio::task::JoinHandle<()>>,
    sweeper: tokio::task::JoinHandle<()>,
    /// Keeps `warroom.v1.Leader` in the health service in step with the role.
    leader_health: tokio::task::JoinHandle<()>,
    /// A replica's relay of its leader (see `relay`).
    relay: Option<tokio::task::JoinHandle<()>>,
    limits: Limits,
    /// The gRPC listener's connections.
    pub connections: Arc<conn::Tracker>,
    /// The status page's connections, once it serves.
    pub page_connections: Option<Arc<conn::Tracker>>,
    /// The Watch streams open.
    pub watchers: Arc<watch::Watchers>,
    /// The TLS served, when it is.
    pub tls: Option<Arc<tls::ServerTls>>,
    /// Reloads the TLS files on SIGHUP or a change.
    tls_watch: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Serves `hub` on `listener` to anonymous readers; nobody can change
    /// anything. See `serve_with`.
    pub async fn serve(
        listener: TcpListener,
        hub: Arc<Hub>,
        tick: Option<Duration>,
    ) -> anyhow::Result<Self> {
        Self::serve_with(listener, hub, tick, Access::open_read_only()).await
    }

    /// Serves `hub` on `listener` to the callers `access` knows, within
    /// the default `Limits`. See `serve_limited`.
    pub async fn serve_with(
        listener: TcpListener,
        hub: Arc<Hub>,
        tick: Option<Duration>,
        access: Access,
    ) -> anyhow::Result<Self> {
        Self::serve_limited(listener, hub, tick, access, Limits::default()).await
    }

    /// Serves `hub` on `listener` to the callers `access` knows, holding no
    /// more connections and Watch streams than `limits` allow. With
    /// `tick`, a ticker thread advances the source every `tick` of
    /// wall-clock time; without, the caller ticks (tests do, to be
    /// deterministic).
    pub async fn serve_limited(
        listener: TcpListener,
        hub: Arc<Hub>,
        tick: Option<Duration>,
        access: Access,
        limits: Limits,
    ) -> anyhow::Result<Self> {
        Self::serve_secured(listener, hub, tick, access, limits, None).await
    }

    /// As `serve_limited`, over TLS when `tls` is given: each connection's
    /// handshake is done in the accept path, within the connection caps and
    /// the handshake time-out; the files are reloaded on SIGHUP or when
    /// they change.
    pub async fn serve_secured(
        listener: TcpListener,
        hub: Arc<Hub>,
        tick: Option<Duration>,
        access: Access,
        limits: Limits,
        tls: Option<Arc<tls::ServerTls>>,
    ) -> anyhow::Result<Self> {
        let addr = listener.local_addr()?;
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<pb::war_room_server::WarRoomServer<service::WarRoomService>>()
            .await;
        let leader_health = tokio::spawn(leader_health(hub.clone(), health_reporter.clone()));
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;
        // Among replicas: say where this one serves, follow the leader.
        let relay = (hub.leadership().status().role != crate::store::Role::Single).then(|| {
            if hub.advertised().is_empty() {
                hub.advertise(&relay::advertised_url(addr, tls.is_some(), None));
            }
            relay::spawn(&hub, access.relay_token())
        });
        let access = Arc::new(access);
        let grpc = pb::war_room_server::WarRoomServer::new(service::WarRoomService::new(
            hub.clone(),
            access.clone(),
        ))
        .max_encoding_message_size(api::MAX_MESSAGE_BYTES)
        .max_decoding_message_size(1024 * 1024);
        let watchers = watch::Watchers::new(limits.clone());
        let sweeper = watch::Watchers::sweeper(&watchers);
        let svc = watch::WarRoomRouter {
            grpc,
            hub: hub.clone(),
            access,
            watchers: watchers.clone(),
        };
        let (tx, rx) = oneshot::channel::<()>();
        // Within the connection caps, each connection once it has sent a
        // byte; with TCP_NODELAY (Nagle's algorithm would hold multi-frame
        // answers for the client's delayed ACK, ~40 ms per lookup).
        let connections = conn::Tracker::new("gRPC", limits.clone());
        let incoming =
            ReceiverStream::new(conn::incoming(listener, connections.clone(), tls.clone()));
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .http2_keepalive_interval(Some(limits.keepalive_interval))
                .http2_keepalive_timeout(Some(limits.keepalive_timeout))
                .add_service(health_service)
                .add_service(reflection)
                .add_service(reflection_alpha)
                .add_service(codes::ExactCodes(svc))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                }),
        );
        let ticker = tick.map(|t| hub::Ticker::start(hub.clone(), t));
        let outbox = tokio::spawn(outbox::run(hub.clone()));
        let tls_watch = tls.as_ref().map(|t| t.watch());
        tracing::info!(%addr, tls = tls.is_some(), "gateway listening");
        Ok(Gateway {
            addr,
            hub,
            shutdown: Some(tx),
            ticker,
            server,
            outbox,
            page: None,
            sweeper,
            leader_health,
            relay,
            limits,
            connections,
            page_connections: None,
            watchers,
            tls,
            tls_watch,
        })
    }

    /// Serves the built-in status page on `listener`; every console shows
    /// its address.
    pub fn serve_page(&mut self, listener: TcpListener) -> anyhow::Result<String> {
        self.serve_page_as(listener, None)
    }

    /// As `serve_page`, shown to consoles as `page_url` when given (the
    /// address its readers use, behind a proxy or a name). A page on
    /// 0.0.0.0 without one is shown under this machine's name, and warned
    /// about, as any page beyond loopback is.
    pub fn serve_page_as(
        &mut self,
        listener: TcpListener,
        page_url: Option<&str>,
    ) -> anyhow::Result<String> {
        let addr = listener.local_addr()?;
        let host = page::host_name();
        let (url, warning) = page::public_url(addr, page_url, host.as_deref());
        if let Some(w) = warning {
            tracing::warn!("{w}");
        }
        self.hub.record.set_page_url(url.clone());
        let tracker = conn::Tracker::new("status page", self.limits.clone());
        self.page = Some(page::serve(listener, self.hub.clone(), tracker.clone()));
        self.page_connections = Some(tracker);
        tracing::info!(%url, "status page");
        Ok(url)
    }

    /// `http://ADDR`, or `https://ADDR` over TLS, for clients.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops ticking and serving; returns when the server has stopped.
    pub async fn stop(mut self) {
        if let Some(t) = self.ticker.take() {
            t.stop();
        }
        self.outbox.abort();
        self.sweeper.abort();
        self.leader_health.abort();
        if let Some(r) = self.relay.take() {
            r.abort();
        }
        if let Some(w) = self.tls_watch.take() {
            w.abort();
        }
        if let Some(p) = self.page.take() {
            p.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Streams (Watch) keep connections open; do not wait for them forever.
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.server).await;
        self.server.abort();
    }

    /// Runs until the server fails or `stop` is called elsewhere.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        (&mut self.server).await??;
        Ok(())
    }
}

/// The health service's name for "this gateway runs the sources": SERVING
/// on the leader (and on a gateway alone on its SQLite file), NOT_SERVING
/// on a follower. A load balancer or a script finds the leader with it.
pub const LEADER_SERVICE: &str = "warroom.v1.Leader";

/// Sets `LEADER_SERVICE` from the hub's role, now and at every change.
async fn leader_health(hub: Arc<Hub>, reporter: tonic_health::server::HealthReporter) {
    let mut leading = hub.leadership().leading();
    loop {
        let status = if *leading.borrow_and_update() {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        reporter.set_service_status(LEADER_SERVICE, status).await;
        if leading.changed().await.is_err() {
            return;
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.stop();
        }
        self.outbox.abort();
        self.sweeper.abort();
        self.leader_health.abort();
        if let Some(r) = self.relay.take() {
            r.abort();
        }
        if let Some(w) = self.tls_watch.take() {
            w.abort();
        }
        if let Some(p) = self.page.take() {
            p.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
