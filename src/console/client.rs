//! The console's side of the wire: a Watch subscription that reconnects by
//! itself (exponential backoff with jitter, a fresh snapshot on every
//! resubscribe), and one-off queries. Results reach the UI loop as
//! `ClientEvent`s over a channel; the UI never waits on the network.

use std::time::Duration;

use tokio::sync::mpsc;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::api::{self, pb};
use crate::domain::MailboxRow;
use crate::domain::priority::{AuditEvent, PriorityDecision};

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

#[derive(Clone)]
pub struct GatewayClient {
    inner: Client,
    url: String,
    /// Over TLS: how the gateway's certificate is checked.
    tls: Option<String>,
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
        Self::connect(url, token, &super::tls::ClientTls::default())
    }

    /// A client that presents `token` on every call; an `https://` gateway
    /// is reached over TLS as `tls` says (a CA file or the system's
    /// bundle, a client certificate); `tls` is unused for `http://`. Fails on a malformed URL or an
    /// unreadable TLS file, never on an unreachable gateway.
    pub fn connect(
        url: &str,
        token: Option<&str>,
        tls: &super::tls::ClientTls,
    ) -> anyhow::Result<Self> {
        let bearer = match token {
            None => Bearer(None),
            Some(t) => Bearer(Some(format!("Bearer {}", t.trim()).parse().map_err(
                |_| anyhow::anyhow!("the token must be printable ASCII without spaces"),
            )?)),
        };
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
            let connector = super::tls::Connector::new(tls, &shown).map_err(anyhow::Error::msg)?;
            let trust = connector.trust().to_string();
            (endpoint.connect_with_connector_lazy(connector), Some(trust))
        } else {
            (endpoint.connect_lazy(), None)
        };
        Ok(GatewayClient {
            url: shown,
            tls: trust,
            inner: pb::war_room_client::WarRoomClient::with_interceptor(channel, bearer)
                .max_decoding_message_size(api::MAX_MESSAGE_BYTES)
                .max_encoding_message_size(1024 * 1024),
        })
    }

    /// Over TLS, how the gateway's certificate is checked ("CA FILE");
    /// `None` for plain text.
    pub fn tls(&self) -> Option<&str> {
        self.tls.as_deref()
    }

    /// The gateway's URL as it may be shown: `user:password@` is `***@`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn raw(&self) -> Client {
        self.inner.clone()
    }
}

#[derive(Debug, Clone)]
pub struct MailboxRequest {
    pub serial: u64,
    pub request: pb::ListMailboxesRequest,
}

#[derive(Debug)]
pub enum ClientEvent {
    Update(Box<pb::WatchUpdate>),
    Connecting {
        attempt: u32,
    },
    Disconnected {
        error: String,
        retry_in: Duration,
    },
    Mailboxes {
        serial: u64,
        result: Result<(Vec<MailboxRow>, String, u64), String>,
    },
    Lookup {
        serial: u64,
        result: Result<super::lookup::Matches, String>,
    },
    Exported(Result<(std::path::PathBuf, usize), String>),
    Identity(Result<super::app::Me, String>),
    Priority {
        serial: u64,
        result: Result<PriorityDecision, PriorityRefused>,
    },
    /// The events after `after_id` (0: the whole log).
    Audit {
        serial: u64,
        after_id: u64,
        result: Result<Vec<AuditEvent>, String>,
    },
    /// The incident's figures over time (and one tenant's, if asked).
    Trends {
        serial: u64,
        result: Result<crate::domain::trends::History, String>,
    },
    StatusPreview {
        serial: u64,
        result: Result<PreviewAnswer, String>,
    },
    /// (update id, deliveries) or (why not, the lint findings).
    Published {
        serial: u64,
        result: Result<(String, usize), (String, Vec<super::composer::Finding>)>,
    },
}

fn findings_from_pb(f: &[pb::LintFinding]) -> Vec<super::composer::Finding> {
    f.iter()
        .map(|f| super::composer::Finding {
            error: f.error,
            field: f.field.clone(),
            message: f.message.clone(),
        })
        .collect()
}

/// The `field` of the last finding of a refusal that could not carry them
/// all: its message says how many more there are.
pub const MORE_FINDINGS: &str = "more";

/// Lint findings carried in a refusal's details, if any; when the gateway
/// left some out (the details must fit in the trailers), a last finding
/// with the field `MORE_FINDINGS` says how many.
fn refused_findings(s: &tonic::Status) -> Vec<super::composer::Finding> {
    let Ok(r) = <pb::PreviewStatusUpdateResponse as prost::Message>::decode(s.details()) else {
        return Vec::new();
    };
    let mut out = findings_from_pb(&r.findings);
    if r.findings_left_out > 0 {
        out.push(super::composer::Finding {
            error: out.last().is_some_and(|f| f.error),
            field: MORE_FINDINGS.into(),
            message: format!(
                "and {} more not shown here; a preview lists them all",
                r.findings_left_out
            ),
        });
    }
    out
}

/// The gateway's words for a refusal the author can act on.
fn refusal(s: &tonic::Status) -> String {
    match s.code() {
        tonic::Code::InvalidArgument
        | tonic::Code::FailedPrecondition
        | tonic::Code::PermissionDenied
        | tonic::Code::Unauthenticated => s.message().to_string(),
        _ => describe(s),
    }
}

/// What each channel would receive for `draft`, and the lint findings.
pub async fn preview(
    client: &GatewayClient,
    draft: pb::StatusUpdateDraft,
) -> Result<PreviewAnswer, String> {
    let request = pb::PreviewStatusUpdateRequest { draft: Some(draft) };
    within(30, client.raw().preview_status_update(request))
        .await
        .map(|r| {
            (
                findings_from_pb(&r.findings),
                r.previews
                    .into_iter()
                    .map(|p| (p.channel, p.content_type, p.content))
                    .collect(),
            )
        })
        .map_err(|f| f.refusal())
}

pub fn spawn_preview(
    client: GatewayClient,
    serial: u64,
    draft: pb::StatusUpdateDraft,
    tx: mpsc::Sender<ClientEvent>,
) {
    tokio::spawn(async move {
        let result = preview(&client, draft).await;
        let _ = tx.send(ClientEvent::StatusPreview { serial, result }).await;
    });
}

/// Publishes once per operation id: a retry after a lost answer is safe.
pub async fn publish(
    client: &GatewayClient,
    draft: pb::StatusUpdateDraft,
    operation_id: String,
    confirm_warnings: bool,
) -> Result<pb::StatusUpdate, (String, Vec<super::composer::Finding>)> {
    let request = pb::PublishStatusUpdateRequest {
        draft: Some(draft),
        operation_id,
        confirm_warnings,
    };
    match within(30, client.raw().publish_status_update(request)).await {
        Ok(r) => r.update.ok_or_else(|| {
            (
                "the gateway's answer has no update in it".to_string(),
                Vec::new(),
            )
        }),
        Err(CallFailed::Status(s)) => Err((refusal(&s), refused_findings(&s))),
        Err(silent) => Err((
            format!(
                "{}; publishing again with the same draft publishes once",
                silent.describe()
            ),
            Vec::new(),
        )),
    }
}

pub fn spawn_publish(
    client: GatewayClient,
    serial: u64,
    draft: pb::StatusUpdateDraft,
    operation_id: String,
    confirm_warnings: bool,
    tx: mpsc::Sender<ClientEvent>,
) {
    tokio::spawn(async move {
        let result = publish(&client, draft, operation_id, confirm_warnings)
            .await
            .map(|u| (u.id, u.deliveries.len()));
        let _ = tx.send(ClientEvent::Published { serial, result }).await;
    });
}

/// Lint findings and (channel, content type, content) per channel.
pub type PreviewAnswer = (Vec<super::composer::Finding>, Vec<(String, String, String)>);

/// Why the gateway refused a priority, and (on a stale version) what the
/// priority is now.
#[derive(Debug, Clone)]
pub struct PriorityRefused {
    pub message: String,
    pub current: Option<PriorityDecision>,
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

fn jitter_unit() -> f64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (n % 1_000) as f64 / 1_000.0
}

/// Explains a gRPC failure in the words an operator needs.
pub fn describe(status: &tonic::Status) -> String {
    // A TLS failure says what is wrong in its own words.
    if let Some(words) = super::tls::failure_in(status) {
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
    fn refusal(&self) -> String {
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

/// Watches until the receiver is dropped, reconnecting forever. A
/// notification on `resubscribe` drops the stream and subscribes again, for
/// a fresh snapshot.
pub async fn watch_forever(
    client: GatewayClient,
    tx: mpsc::Sender<ClientEvent>,
    resubscribe: std::sync::Arc<tokio::sync::Notify>,
) {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        if tx.send(ClientEvent::Connecting { attempt }).await.is_err() {
            return;
        }
        let error = match client.raw().watch(pb::WatchRequest {}).await {
            Ok(resp) => {
                let mut stream = resp.into_inner();
                let mut error = "gateway closed the stream".to_string();
                loop {
                    let next = tokio::select! {
                        m = stream.message() => m,
                        _ = resubscribe.notified() => {
                            error = "resynchronising with a fresh snapshot".into();
                            break;
                        }
                    };
                    match next {
                        Ok(Some(u)) => {
                            attempt = 0;
                            if tx.send(ClientEvent::Update(Box::new(u))).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(s) => {
                            error = describe(&s);
                            break;
                        }
                    }
                }
                error
            }
            Err(s) => describe(&s),
        };
        let retry_in = backoff(attempt.max(1), jitter_unit());
        tracing::warn!(%error, ?retry_in, "watch lost; reconnecting");
        if tx
            .send(ClientEvent::Disconnected { error, retry_in })
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(retry_in).await;
    }
}

/// Fetches one page of mailboxes in the background.
pub fn spawn_mailboxes(client: GatewayClient, req: MailboxRequest, tx: mpsc::Sender<ClientEvent>) {
    tokio::spawn(async move {
        let result = within(10, client.raw().list_mailboxes(req.request))
            .await
            .map(|r| {
                (
                    r.mailboxes.iter().map(api::mailbox_from_pb).collect(),
                    r.next_page_token,
                    r.total_size,
                )
            })
            .map_err(|f| f.describe());
        let _ = tx
            .send(ClientEvent::Mailboxes {
                serial: req.serial,
                result,
            })
            .await;
    });
}

/// Exports a tenant's affected mailboxes to a CSV file in the current
/// directory, in the background.
pub fn spawn_export(client: GatewayClient, tenant_id: String, tx: mpsc::Sender<ClientEvent>) {
    tokio::spawn(async move {
        let dir = std::env::current_dir().unwrap_or_else(|_| std::env::temp_dir());
        let result = super::export::to_file(&client, &tenant_id, &dir).await;
        let _ = tx.send(ClientEvent::Exported(result)).await;
    });
}

/// Runs one lookup in the background; the UI keeps only the newest answer.
pub fn spawn_lookup(
    client: GatewayClient,
    serial: u64,
    query: String,
    tx: mpsc::Sender<ClientEvent>,
) {
    tokio::spawn(async move {
        let result = super::lookup::matches(&client, &query, 20).await;
        let _ = tx.send(ClientEvent::Lookup { serial, result }).await;
    });
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

/// The incident's clock on the gateway (a drill's simulated time), for
/// times typed relative to "now" on the command line.
pub async fn source_clock(client: &GatewayClient) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    let first = first_snapshot(client).await?;
    Ok(crate::api::overview_from_pb(&first).clock(chrono::Utc::now()))
}

/// Asks the gateway who this console is.
pub fn spawn_whoami(client: GatewayClient, tx: mpsc::Sender<ClientEvent>) {
    tokio::spawn(async move {
        let result = within(10, client.raw().who_am_i(pb::WhoAmIRequest {}))
            .await
            .map(|r| super::app::Me {
                name: r.name,
                role: api::access_role_from_pb(r.role),
                authenticated: r.authenticated,
            })
            .map_err(|f| f.describe());
        let _ = tx.send(ClientEvent::Identity(result)).await;
    });
}

/// Sends one priority decision.
pub fn spawn_set_priority(
    client: GatewayClient,
    serial: u64,
    request: pb::SetTenantPriorityRequest,
    tx: mpsc::Sender<ClientEvent>,
) {
    tokio::spawn(async move {
        let result = set_priority(&client, request).await;
        let _ = tx.send(ClientEvent::Priority { serial, result }).await;
    });
}

/// One priority decision; a refusal says why, and on a stale version what
/// the priority is now (from the status details).
pub async fn set_priority(
    client: &GatewayClient,
    request: pb::SetTenantPriorityRequest,
) -> Result<PriorityDecision, PriorityRefused> {
    match within(10, client.raw().set_tenant_priority(request)).await {
        Ok(r) => r
            .priority
            .as_ref()
            .and_then(api::decision_from_pb)
            .ok_or_else(|| PriorityRefused {
                message: "the gateway's answer has no decision in it".into(),
                current: None,
            }),
        Err(CallFailed::Status(s)) => Err(PriorityRefused {
            message: refusal(&s),
            current: <pb::TenantPriority as prost::Message>::decode(s.details())
                .ok()
                .as_ref()
                .and_then(api::decision_from_pb),
        }),
        Err(silent) => Err(PriorityRefused {
            message: format!(
                "{}; the change may or may not have been made: check the timeline",
                silent.describe()
            ),
            current: None,
        }),
    }
}

/// Every audit event after the one with id `after_id` (0: all), oldest
/// first (at most 100,000).
pub async fn audit_events(
    client: &GatewayClient,
    after_id: u64,
) -> Result<Vec<AuditEvent>, String> {
    let mut raw = client.raw();
    let mut events = Vec::new();
    let mut token = String::new();
    loop {
        let request = pb::ListAuditEventsRequest {
            page_size: 1_000,
            page_token: token,
            after_id,
        };
        let page = within(10, raw.list_audit_events(request))
            .await
            .map_err(|f| f.describe())?;
        events.extend(page.events.iter().map(api::audit_from_pb));
        token = page.next_page_token;
        if token.is_empty() || events.len() >= 100_000 {
            return Ok(events);
        }
    }
}

/// Fetches the audit events after `after_id` in the background.
pub fn spawn_audit(
    client: GatewayClient,
    serial: u64,
    after_id: u64,
    tx: mpsc::Sender<ClientEvent>,
) {
    tokio::spawn(async move {
        let result = audit_events(&client, after_id).await;
        let _ = tx
            .send(ClientEvent::Audit {
                serial,
                after_id,
                result,
            })
            .await;
    });
}

/// Fetches the trends (with `tenant_id`'s series unless empty) in the
/// background.
pub fn spawn_trends(
    client: GatewayClient,
    serial: u64,
    tenant_id: String,
    tx: mpsc::Sender<ClientEvent>,
) {
    tokio::spawn(async move {
        let mut raw = client.raw();
        let result = within(10, raw.get_trends(pb::GetTrendsRequest { tenant_id }))
            .await
            .map(|r| api::trends_from_pb(&r))
            .map_err(|f| f.describe());
        let _ = tx.send(ClientEvent::Trends { serial, result }).await;
    });
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

    #[test]
    fn malformed_url_is_an_error_not_a_panic() {
        assert!(GatewayClient::new("not a url").is_err());
    }
}
