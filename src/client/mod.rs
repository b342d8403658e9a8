//! The gateway's clients' side of the wire, apart from any screen: the
//! connection (`GatewayClient`: the URL, the bearer token, TLS), deadlines
//! and the words for a failure, a Watch subscription that reconnects by
//! itself (exponential backoff with jitter, a fresh snapshot on every
//! resubscribe), and one-off queries. The console (the TUI) and
//! the command line use it; it converts the wire's messages (`api::pb`)
//! into domain types, so the console never sees them.
//!
//! The console's results reach its UI loop as `ClientEvent`s over a
//! channel (`events`); the UI never waits on the network. `lookup`,
//! `export`, `report` and `draft` are the queries and files behind
//! `warroom lookup`, `export`, `report` and `publish`, shared with the
//! console's screens.

pub mod calls;
pub mod draft;
pub mod events;
pub mod export;
pub mod lookup;
pub mod report;
/// The client side of TLS (shared with a gateway that follows another).
pub use crate::tls;
pub mod types;

pub use calls::{
    MORE_FINDINGS, PreviewAnswer, PriorityRefused, audit_events, preview, publish, set_priority,
};
pub use events::{
    ClientEvent, spawn_audit, spawn_export, spawn_lookup, spawn_mailboxes, spawn_preview,
    spawn_publish, spawn_set_priority, spawn_trends, spawn_whoami, watch_forever,
};
pub use types::{MailboxQuery, MailboxRequest, Me, PriorityRequest, Run, Update};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::api::{self, pb};

pub type Client = pb::war_room_client::WarRoomClient<InterceptedService<Channel, Bearer>>;

/// Adds `authorization: Bearer <token>` to every call, when there is a token.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// One gateway replica: its connection and how it is shown.
struct Replica {
    inner: Client,
    /// The same connection, for the standard health service.
    channel: Channel,
    /// The URL as it may be shown: `user:password@` is `***@`.
    url: String,
    /// Over TLS: how the gateway's certificate is checked.
    tls: Option<String>,
}

/// A client of one gateway, or of several replicas of it (`URL1,URL2`):
/// every call goes to the current replica; the Watch moves on to the next
/// when it loses one (`fail_over`), and every clone follows.
#[derive(Clone)]
pub struct GatewayClient {
    replicas: Arc<[Replica]>,
    current: Arc<AtomicUsize>,
}

/// The URLs of a `--gateway` value or a config's `gateway`: one URL, or
/// several separated by commas (spaces around them ignored).
pub fn gateway_urls(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect()
}

/// A replica's name for the header: `host:port` of its URL, without the
/// scheme, user, password or path.
pub fn replica_label(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_string()
}

impl GatewayClient {
    /// A lazily connecting client without a token (an anonymous reader):
    /// creating it never fails on an unreachable gateway, only on a
    /// malformed URL.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        Self::with_token(url, None)
    }

    /// A client that presents `token` on every call.
    pub fn with_token(url: &str, token: Option<&str>) -> anyhow::Result<Self> {
        Self::connect(url, token, &tls::ClientTls::default())
    }

    /// A client that presents `token` on every call; an `https://` gateway
    /// is reached over TLS as `tls` says (a CA file or the system's
    /// bundle, a client certificate); `tls` is unused for `http://`.
    /// `urls` is one URL or several replicas' separated by commas, each
    /// reached with the same token and TLS options. Fails on a malformed
    /// URL or an unreadable TLS file, never on an unreachable gateway.
    pub fn connect(urls: &str, token: Option<&str>, tls: &tls::ClientTls) -> anyhow::Result<Self> {
        let bearer = match token {
            None => Bearer(None),
            Some(t) => Bearer(Some(format!("Bearer {}", t.trim()).parse().map_err(
                |_| anyhow::anyhow!("the token must be printable ASCII without spaces"),
            )?)),
        };
        let list = gateway_urls(urls);
        if list.is_empty() {
            anyhow::bail!("no gateway URL given (e.g. http://127.0.0.1:50051)");
        }
        let replicas = list
            .into_iter()
            .map(|url| Replica::connect(url, &bearer, tls))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(GatewayClient {
            replicas: replicas.into(),
            current: Arc::new(AtomicUsize::new(0)),
        })
    }

    fn replica(&self) -> &Replica {
        let i = self.current.load(Ordering::Relaxed) % self.replicas.len();
        &self.replicas[i]
    }

    /// Over TLS, how the gateway's certificate is checked ("CA FILE");
    /// `None` for plain text.
    pub fn tls(&self) -> Option<&str> {
        self.replica().tls.as_deref()
    }

    /// The current replica's URL as it may be shown: `user:password@` is
    /// `***@`.
    pub fn url(&self) -> &str {
        &self.replica().url
    }

    /// How many replicas the client knows (1: a single gateway).
    pub fn replicas(&self) -> usize {
        self.replicas.len()
    }

    /// Which replica calls go to now (0-based, in the order given).
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed) % self.replicas.len()
    }

    /// Moves on from replica `from` to the next one in the list (round
    /// robin), unless another task already moved on from it; returns the
    /// replica calls go to now.
    pub fn fail_over(&self, from: usize) -> usize {
        let next = (from + 1) % self.replicas.len();
        let _ = self
            .current
            .compare_exchange(from, next, Ordering::Relaxed, Ordering::Relaxed);
        self.current()
    }

    /// With several replicas, for a one-shot command: the first one, in
    /// the order given, that answers at all (a refused connection, an
    /// unavailable gateway or silence for 3 s → the next). An answer that is
    /// an error (a refused token, say) is an answer: that replica is used
    /// and the command meets the same error there. None answering, the
    /// first is used, and the command says why it failed.
    pub async fn pick_answering(&self) {
        if self.replicas.len() < 2 {
            return;
        }
        for (i, r) in self.replicas.iter().enumerate() {
            let mut raw = r.inner.clone();
            match within(3, raw.who_am_i(pb::WhoAmIRequest {})).await {
                Err(CallFailed::Silent(_)) => {}
                Err(CallFailed::Status(s)) if s.code() == tonic::Code::Unavailable => {}
                Ok(_) | Err(CallFailed::Status(_)) => {
                    self.current.store(i, Ordering::Relaxed);
                    return;
                }
            }
            tracing::warn!(gateway = %r.url, "gateway replica does not answer; trying the next");
        }
        self.current.store(0, Ordering::Relaxed);
    }

    pub fn raw(&self) -> Client {
        self.replica().inner.clone()
    }

    /// Whether the current replica runs the sources (the leader among
    /// replicas, or a gateway alone): the health service's answer for
    /// `warroom.v1.Leader`, asked within 3 s.
    pub async fn leads(&self) -> anyhow::Result<bool> {
        use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
        let mut health =
            tonic_health::pb::health_client::HealthClient::new(self.replica().channel.clone());
        let request = HealthCheckRequest {
            service: "warroom.v1.Leader".into(),
        };
        let answer = tokio::time::timeout(Duration::from_secs(3), health.check(request))
            .await
            .map_err(|_| anyhow::anyhow!("the gateway did not answer within 3 s"))?
            .map_err(|s| anyhow::anyhow!("{}", describe(&s)))?;
        Ok(answer.into_inner().status == ServingStatus::Serving as i32)
    }
}

impl Replica {
    fn connect(url: &str, bearer: &Bearer, tls: &tls::ClientTls) -> anyhow::Result<Self> {
        // What is shown of it (the header, errors, `info`): never a password.
        let shown = crate::domain::redact::url_shown(url).into_owned();
        let https = url.starts_with("https://");
        if !https && !url.starts_with("http://") {
            anyhow::bail!(
                "gateway URL {shown:?} must start with https:// (TLS) or http:// (plain text)"
            );
        }
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| anyhow::anyhow!("invalid gateway URL {shown:?}: {e}"))?
            .connect_timeout(Duration::from_secs(3))
            .tcp_keepalive(Some(Duration::from_secs(20)))
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10));
        let (channel, trust) = if https {
            let connector = tls::Connector::new(tls, &shown).map_err(anyhow::Error::msg)?;
            let trust = connector.trust().to_string();
            (endpoint.connect_with_connector_lazy(connector), Some(trust))
        } else {
            (endpoint.connect_lazy(), None)
        };
        Ok(Replica {
            url: shown,
            tls: trust,
            channel: channel.clone(),
            inner: pb::war_room_client::WarRoomClient::with_interceptor(channel, bearer.clone())
                .max_decoding_message_size(api::MAX_MESSAGE_BYTES)
                .max_encoding_message_size(1024 * 1024),
        })
    }
}

/// Delay before reconnect attempt `attempt` (1-based): 250 ms doubling to a
/// 1.2 s cap, ±25% jitter so a room full of consoles does not reconnect in
/// lockstep after a gateway restart. The cap keeps a console within 1.5 s of
/// a gateway that comes back.
pub fn backoff(attempt: u32, jitter_unit: f64) -> Duration {
    let base = 250u64
        .saturating_mul(1 << attempt.saturating_sub(1).min(6))
        .min(1_200);
    let jitter = 0.75 + 0.5 * jitter_unit.clamp(0.0, 1.0);
    Duration::from_millis((base as f64 * jitter) as u64)
}

pub(crate) fn jitter_unit() -> f64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (n % 1_000) as f64 / 1_000.0
}

/// Explains a gRPC failure in the words an operator needs.
pub fn describe(status: &tonic::Status) -> String {
    // A TLS failure says what is wrong in its own words.
    if let Some(words) = tls::failure_in(status) {
        return words;
    }
    let msg = status.message();
    match status.code() {
        // A TLS listener's answer to plain text says what to do.
        tonic::Code::Unavailable if msg.starts_with("the gateway speaks TLS") => msg.to_string(),
        tonic::Code::Unavailable => format!("gateway unreachable ({msg})"),
        tonic::Code::DeadlineExceeded => "gateway did not answer in time".into(),
        _ => format!("{:?}: {msg}", status.code()),
    }
}

/// The gateway's words for a refusal the author can act on.
pub(crate) fn refusal(s: &tonic::Status) -> String {
    match s.code() {
        tonic::Code::InvalidArgument
        | tonic::Code::FailedPrecondition
        | tonic::Code::PermissionDenied
        | tonic::Code::Unauthenticated => s.message().to_string(),
        _ => describe(s),
    }
}

/// Why a call with a deadline brought no answer.
pub enum CallFailed {
    /// The gateway answered with an error status.
    Status(tonic::Status),
    /// No answer within this many seconds.
    Silent(u64),
}

impl CallFailed {
    /// In words: the status described, or "gateway did not answer within
    /// N s".
    pub fn describe(&self) -> String {
        match self {
            CallFailed::Status(s) => describe(s),
            CallFailed::Silent(secs) => format!("gateway did not answer within {secs} s"),
        }
    }

    /// As `describe`, with the gateway's own words for a refusal the
    /// author can act on.
    pub(crate) fn refusal(&self) -> String {
        match self {
            CallFailed::Status(s) => refusal(s),
            silent => silent.describe(),
        }
    }
}

/// One unary call, given `secs` seconds to answer; its message.
pub async fn within<T>(
    secs: u64,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, CallFailed> {
    match tokio::time::timeout(Duration::from_secs(secs), call).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(s)) => Err(CallFailed::Status(s)),
        Err(_) => Err(CallFailed::Silent(secs)),
    }
}

/// The gateway's first Watch message (a full snapshot), for one-shot
/// commands (snapshot, lookup, report).
pub async fn first_snapshot(client: &GatewayClient) -> anyhow::Result<pb::WatchUpdate> {
    tokio::time::timeout(Duration::from_secs(10), async {
        client
            .raw()
            .watch(pb::WatchRequest {})
            .await
            .map_err(|s| anyhow::anyhow!("{}", describe(&s)))?
            .into_inner()
            .message()
            .await
            .map_err(|s| anyhow::anyhow!("{}", describe(&s)))?
            .ok_or_else(|| anyhow::anyhow!("gateway closed the stream before sending data"))
    })
    .await
    .map_err(|_| anyhow::anyhow!("gateway {} sent nothing within 10 s", client.url()))?
}

/// The gateway's first Watch message as the console holds it.
pub async fn first_update(client: &GatewayClient) -> anyhow::Result<Update> {
    Ok(Update::from_pb(&first_snapshot(client).await?))
}

/// The incident's clock on the gateway (a drill's simulated time), for
/// times typed relative to "now" on the command line.
pub async fn source_clock(client: &GatewayClient) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    let first = first_snapshot(client).await?;
    Ok(crate::api::overview_from_pb(&first).clock(chrono::Utc::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_cap_with_jitter() {
        assert_eq!(backoff(1, 0.5), Duration::from_millis(250));
        assert_eq!(backoff(2, 0.5), Duration::from_millis(500));
        assert_eq!(backoff(10, 0.5), Duration::from_millis(1_200));
        assert!(backoff(10, 1.0) <= Duration::from_millis(1_500));
        assert!(backoff(10, 0.0) >= Duration::from_millis(900));
    }

    #[tokio::test]
    async fn malformed_url_is_an_error_not_a_panic() {
        assert!(GatewayClient::new("not a url").is_err());
        assert!(GatewayClient::new("http://127.0.0.1:1,not a url").is_err());
        assert!(GatewayClient::new(" , ").is_err());
    }

    /// A list of replicas: calls go to the first; losing it moves every
    /// clone to the next, round robin; a second loss of the same replica
    /// (another task noticing late) does not skip one.
    #[tokio::test]
    async fn a_list_of_gateways_fails_over_round_robin() {
        let c = GatewayClient::new("http://ana:pw@gw1:7000, http://gw2:7000/x,http://gw3:7000")
            .unwrap();
        let other = c.clone();
        assert_eq!(c.replicas(), 3);
        assert_eq!(c.url(), "http://***@gw1:7000");
        assert_eq!(c.fail_over(0), 1);
        assert_eq!(other.url(), "http://gw2:7000/x");
        assert_eq!(other.fail_over(0), 1, "already moved on from gw1");
        assert_eq!(other.fail_over(1), 2);
        assert_eq!(c.fail_over(2), 0, "round robin");
        assert_eq!(replica_label(c.url()), "gw1:7000", "no user or password");
        assert_eq!(replica_label("http://gw2:7000/x"), "gw2:7000");
    }
}
