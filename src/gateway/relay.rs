//! A follower serves the leader's picture. Gateways on one PostgreSQL
//! database elect a leader (`store::Leadership`), which alone runs the
//! sources; the leader writes where it serves in the database (`leader`
//! row). Each follower keeps one Watch stream open to it and relays every
//! update to its own watchers (`Hub::relayed`), and forwards every other
//! call of its consoles to the leader unchanged (`WarRoomRouter`): reads
//! are answered from the one picture, and every decision and publish is
//! checked and versioned in one place, then reaches every replica's
//! consoles through the leader's Watch.
//!
//! A follower renumbers what it relays (its watchers see one unbroken run
//! of versions whichever leader fed it) and replaces the leader's `store`
//! source line with its own. When the leader's stream breaks, the
//! follower keeps the last picture and says so (its `store` line goes
//! down, naming the leader and since when); when it becomes leader
//! itself, its own source takes over (`Hub::promote`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tonic::transport::{Channel, Endpoint};

use super::hub::Hub;
use crate::api::pb;

/// How often the relay looks at the role and the leader's address.
const LOOK: Duration = Duration::from_millis(200);
/// How long connecting to the leader may take.
const CONNECT: Duration = Duration::from_secs(1);

/// A follower's link to its leader: the channel its calls are forwarded
/// on, and the leader's picture as last relayed.
pub struct Relay {
    pub url: String,
    pub channel: Channel,
    /// The leader's whole picture: its last snapshot with every later
    /// delta merged in. None until the first update arrives.
    mirror: Option<pb::WatchUpdate>,
    /// Tenant id → position in `mirror.tenants`.
    index: HashMap<String, usize>,
    /// Since when the leader's stream has been broken, and why.
    pub lost: Option<(DateTime<Utc>, String)>,
    /// When the last update from the leader arrived.
    pub last: Option<DateTime<Utc>>,
}

impl Relay {
    /// A link to the leader at `url` (connected on first use); an
    /// `https://` leader is reached over TLS as `tls` says (`[gateway_tls]`
    /// in the gateway's config: the CA, a client certificate).
    pub fn new(url: &str, tls: &crate::tls::ClientTls) -> Result<Self, String> {
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| format!("the leader's address {url:?} is not a URL: {e}"))?
            .connect_timeout(CONNECT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(2))
            .keep_alive_timeout(Duration::from_secs(2));
        let channel = if url.starts_with("https://") {
            let shown = crate::domain::redact::url_shown(url).into_owned();
            endpoint.connect_with_connector_lazy(crate::tls::Connector::new(tls, &shown)?)
        } else {
            endpoint.connect_lazy()
        };
        Ok(Relay {
            url: url.to_string(),
            channel,
            mirror: None,
            index: HashMap::new(),
            lost: None,
            last: None,
        })
    }

    /// Whether the leader's picture has arrived.
    pub fn has_picture(&self) -> bool {
        self.mirror.is_some()
    }

    /// Merges `u` into the picture; returns `u` with `store` in place of
    /// the leader's own `store` line.
    pub fn merge(
        &mut self,
        mut u: pb::WatchUpdate,
        store: Option<pb::SourceStatus>,
    ) -> pb::WatchUpdate {
        set_store_line(&mut u.sources, store);
        self.last = Some(Utc::now());
        self.lost = None;
        if u.snapshot || self.mirror.is_none() {
            self.index = u
                .tenants
                .iter()
                .enumerate()
                .map(|(i, t)| (t.id.clone(), i))
                .collect();
            let mut m = u.clone();
            m.snapshot = true;
            self.mirror = Some(m);
            return u;
        }
        if let Some(m) = self.mirror.as_mut() {
            for t in &u.tenants {
                match self.index.get(&t.id) {
                    Some(&i) => m.tenants[i] = t.clone(),
                    None => {
                        self.index.insert(t.id.clone(), m.tenants.len());
                        m.tenants.push(t.clone());
                    }
                }
            }
            m.incident = u.incident.clone();
            m.sources = u.sources.clone();
            m.clusters = u.clusters.clone();
            m.totals = u.totals;
            if u.status.is_some() {
                m.status = u.status.clone();
            }
        }
        u
    }

    /// The stream broke (first time since it last worked: true).
    pub fn lose(&mut self, why: String) -> bool {
        let first = self.lost.is_none();
        if first {
            self.lost = Some((Utc::now(), why));
        }
        first
    }

    /// The stream is lost: puts `store` in the picture's `store` line and
    /// marks every other source unknown (what it said is as of the last
    /// update relayed, and nothing moves it now); returns the delta that
    /// tells the watchers (none before a picture).
    pub fn restate(&mut self, store: Option<pb::SourceStatus>) -> Option<pb::WatchUpdate> {
        let since = self
            .last
            .map_or_else(|| "?".into(), |t| t.format("%H:%M UTC").to_string());
        let m = self.mirror.as_mut()?;
        for src in m.sources.iter_mut().filter(|s| s.name != "store") {
            if src.health != pb::HealthStatus::Unknown as i32 {
                src.health = pb::HealthStatus::Unknown as i32;
                src.message = format!(
                    "as relayed at {since} (the leader is not answering): {}",
                    src.message
                );
            }
        }
        set_store_line(&mut m.sources, store);
        let mut u = m.clone();
        u.snapshot = false;
        u.tenants = Vec::new();
        u.status = None;
        u.run = None;
        Some(u)
    }

    /// The whole picture, as a snapshot at `version`.
    pub fn snapshot(&self, version: u64) -> Option<pb::WatchUpdate> {
        let mut m = self.mirror.clone()?;
        m.version = version;
        m.snapshot = true;
        Some(m)
    }

    /// The leader's incident clock as last relayed.
    pub fn incident_now(&self) -> Option<DateTime<Utc>> {
        let i = self.mirror.as_ref()?.incident.as_ref()?;
        crate::api::from_ts(i.now.as_ref())
    }
}

/// Replaces the `store` line in `sources` by `line` (or removes it).
fn set_store_line(sources: &mut Vec<pb::SourceStatus>, line: Option<pb::SourceStatus>) {
    sources.retain(|s| s.name != "store");
    sources.extend(line);
}

/// The gRPC address other replicas reach this gateway at: `configured`,
/// else its listening address (this machine's name for 0.0.0.0).
pub fn advertised_url(addr: std::net::SocketAddr, tls: bool, configured: Option<&str>) -> String {
    if let Some(u) = configured {
        return u.trim_end_matches('/').to_string();
    }
    let scheme = if tls { "https" } else { "http" };
    if addr.ip().is_unspecified() {
        let host = super::page::host_name().unwrap_or_else(|| "127.0.0.1".into());
        return format!("{scheme}://{host}:{}", addr.port());
    }
    format!("{scheme}://{addr}")
}

/// Keeps this gateway's relay in step with its role until the hub is
/// dropped: while it follows a leader that has said where it serves, one
/// Watch stream to it, reopened when it breaks; when it leads, none.
/// `token`: what it presents to the leader (replicas share their tokens).
pub fn spawn(hub: &Arc<Hub>, token: Option<String>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(hub);
    tokio::spawn(async move {
        let mut was_leading = None;
        loop {
            let Some(hub) = weak.upgrade() else { return };
            let leadership = hub.leadership();
            let leading = leadership.is_leading();
            if leading {
                if was_leading == Some(false) {
                    let hub = hub.clone();
                    let _ = tokio::task::spawn_blocking(move || hub.promote()).await;
                }
                was_leading = Some(true);
                drop(hub);
                tokio::time::sleep(LOOK).await;
                continue;
            }
            was_leading = Some(false);
            let leader = leadership.status().leader;
            let Some(url) = leader.map(|l| l.url).filter(|u| *u != hub.advertised()) else {
                drop(hub);
                tokio::time::sleep(LOOK).await;
                continue;
            };
            let channel = match hub.follow(&url) {
                Ok(c) => c,
                Err(e) => {
                    hub.relay_lost(e);
                    drop(hub);
                    tokio::time::sleep(LOOK).await;
                    continue;
                }
            };
            let why = stream(&hub, channel, token.as_deref(), &url).await;
            // Lost: say so, unless this gateway now leads (promote).
            if !hub.leadership().is_leading() {
                hub.relay_lost(why);
            }
            drop(hub);
            tokio::time::sleep(LOOK).await;
        }
    })
}

/// Relays the leader's Watch until it breaks, the leader changes or this
/// gateway leads; returns why it ended.
async fn stream(hub: &Arc<Hub>, channel: Channel, token: Option<&str>, url: &str) -> String {
    let mut client = pb::war_room_client::WarRoomClient::new(channel)
        .max_decoding_message_size(crate::api::MAX_MESSAGE_BYTES);
    let mut req = tonic::Request::new(pb::WatchRequest {});
    if let Some(t) = token
        && let Ok(v) = format!("Bearer {t}").parse()
    {
        req.metadata_mut().insert("authorization", v);
    }
    let mut updates = match client.watch(req).await {
        Ok(r) => r.into_inner(),
        Err(s) => return format!("{url}: {}", s.message()),
    };
    let mut leading = hub.leadership().leading();
    let mut look = tokio::time::interval(LOOK);
    loop {
        tokio::select! {
            m = updates.message() => match m {
                Ok(Some(u)) => {
                    let hub = hub.clone();
                    // Merging a 100,000-tenant snapshot is CPU work.
                    if tokio::task::spawn_blocking(move || hub.relayed(u)).await.is_err() {
                        return "the relay stopped".into();
                    }
                }
                Ok(None) => return format!("{url} ended the stream"),
                Err(s) => return format!("{url}: {}", s.message()),
            },
            changed = leading.changed() => {
                if changed.is_err() || *leading.borrow_and_update() {
                    return "this gateway leads now".into();
                }
            }
            _ = look.tick() => {
                // The database names another leader: go there.
                if hub.leadership().status().leader.is_some_and(|l| l.url != url) {
                    return format!("{url} no longer leads");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, health: pb::HealthStatus) -> pb::SourceStatus {
        pb::SourceStatus {
            name: name.into(),
            health: health as i32,
            message: format!("{name} says so"),
            ..Default::default()
        }
    }

    /// A follower whose leader stops answering keeps the last picture but
    /// no longer calls any source ok: nothing moves those figures now.
    #[tokio::test]
    async fn a_lost_leader_leaves_no_source_shown_as_ok() {
        let mut r = Relay::new("http://127.0.0.1:1", &crate::tls::ClientTls::default()).unwrap();
        let snap = pb::WatchUpdate {
            snapshot: true,
            sources: vec![
                source("dovecot", pb::HealthStatus::Ok),
                source("postfix", pb::HealthStatus::Down),
            ],
            ..Default::default()
        };
        r.merge(snap, Some(source("store", pb::HealthStatus::Ok)));
        assert!(r.lose("refused".into()));
        let u = r
            .restate(Some(source("store", pb::HealthStatus::Down)))
            .expect("a picture to restate");
        for s in &u.sources {
            assert_ne!(s.health, pb::HealthStatus::Ok as i32, "{s:?}");
        }
        let dovecot = u.sources.iter().find(|s| s.name == "dovecot").unwrap();
        assert!(
            dovecot
                .message
                .contains("(the leader is not answering): dovecot says so"),
            "{}",
            dovecot.message
        );
        assert_eq!(u.sources.iter().filter(|s| s.name == "store").count(), 1);
    }
}
