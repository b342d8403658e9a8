//! The hub: one source, advanced once per tick, and every watcher fed from
//! that one advance.
//!
//! Each tick builds one versioned change (the small overview plus only the
//! tenant rows that changed), encodes it once as a gRPC message, and
//! broadcasts those bytes to all watchers through a bounded
//! `tokio::sync::broadcast` channel: every stream sends the same shared
//! buffer, none holds a copy. A watcher that falls more than `BACKLOG`
//! updates behind is not waited for and nothing is buffered for it without
//! bound: it receives a fresh snapshot instead (see `watch`), itself encoded
//! once per version for every watcher that needs it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::api::{self, pb};
use crate::domain::priority::{self, AuditEvent, PriorityDecision};
use crate::domain::{Priority, TenantRow};
use crate::sources::Source;
use crate::store::{self, Store, StoreError};

/// Updates kept for watchers that are briefly behind.
pub const BACKLOG: usize = 32;

pub(super) struct State {
    /// The source, with its tenants' slips and its reindex ETA history:
    /// every row read from it carries its slip.
    pub(super) source: super::slips::Tracked,
    version: u64,
}

pub struct Hub {
    pub(super) state: RwLock<State>,
    /// The war room's record (the store) and where updates go. Lock
    /// order: the record's store before the state (see `record`).
    pub record: super::record::Record,
    /// The board last sent: a delta carries the board only when it changed
    /// (the latest update's body alone can be 25,000 characters).
    last_board: Mutex<Option<pb::StatusBoard>>,
    tx: broadcast::Sender<Encoded>,
    /// The last snapshot sent, encoded, with the board it holds: every
    /// watcher that needs one at that version sends these bytes.
    snapshot_cache: Mutex<Option<(pb::StatusBoard, Encoded)>>,
    /// Watchers that need a snapshot wait here, on the runtime, rather
    /// than each holding a blocking thread while one builds it.
    snapshot_gate: tokio::sync::Mutex<()>,
    /// Source seconds per tick.
    step_seconds: f64,
    /// Source seconds per wall-clock second, shown to consoles.
    speed: f64,
    /// This run of the gateway, in every snapshot: consoles tell a restart.
    /// Its id also owns the deliveries this gateway's outbox claims.
    run: pb::GatewayRun,
    /// Whether this gateway runs the sources (see `store::Leadership`).
    leadership: RwLock<Arc<store::Leadership>>,
    /// A follower's link to the leader and its picture (see `relay`).
    /// Lock order: the state before the relay.
    relay: Mutex<Option<super::relay::Relay>>,
    /// Where other replicas reach this gateway's gRPC.
    advertised: Mutex<String>,
    /// How this gateway reaches an `https://` leader.
    relay_tls: Mutex<crate::tls::ClientTls>,
    /// The next tick sends a whole snapshot (a follower became leader:
    /// its watchers held the old leader's picture).
    resync: AtomicBool,
    /// When this gateway became leader after following (`GatewayRun.took_over_at`).
    took_over_at: Mutex<Option<prost_types::Timestamp>>,
    /// This gateway has served its own source's picture (it led, or ran
    /// alone): a follower that never did has nothing of its own to show.
    had_own_picture: AtomicBool,
}

/// Read access to the source at one version.
pub struct SourceView<'a> {
    guard: RwLockReadGuard<'a, State>,
}

impl SourceView<'_> {
    pub fn source(&self) -> &dyn Source {
        &self.guard.source
    }
    pub fn version(&self) -> u64 {
        self.guard.version
    }
    /// The incident's figures over time.
    pub fn trends(&self) -> &crate::domain::trends::Trends {
        self.guard.source.trends()
    }
}

/// A priority change someone asked for.
#[derive(Debug, Clone)]
pub struct PriorityRequest {
    pub tenant_id: String,
    pub priority: Priority,
    pub rank: u32,
    pub reason: String,
    pub expected_version: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("{0}")]
    Invalid(String),
    #[error("no tenant with id {0:?}")]
    UnknownTenant(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl Hub {
    /// `step_seconds` of source time pass per tick; `speed` is what consoles
    /// are told (step / tick interval). Decisions live in memory only.
    pub fn new(source: Box<dyn Source>, step_seconds: f64, speed: f64) -> Arc<Self> {
        Self::with_store(source, store::in_memory(), step_seconds, speed)
            .expect("an empty store has nothing to replay")
    }

    /// A hub whose decisions persist in `store`; the ones already there are
    /// applied to the source first, so a restarted gateway reindexes in the
    /// order the war room chose.
    pub fn with_store(
        mut source: Box<dyn Source>,
        store: Box<dyn Store>,
        step_seconds: f64,
        speed: f64,
    ) -> Result<Arc<Self>, StoreError> {
        for d in store.priorities()? {
            let id = d.tenant_id.clone();
            if let Err(e) = source.set_priority(Arc::new(d)) {
                // A tenant the source no longer has: keep the record, say so.
                tracing::warn!(tenant = %id, "stored priority not applied: {e}");
            }
        }
        let (tx, _) = broadcast::channel(BACKLOG);
        let source = super::slips::Tracked::new(source);
        Ok(Arc::new(Hub {
            state: RwLock::new(State { source, version: 0 }),
            record: super::record::Record::new(store),
            last_board: Mutex::new(None),
            tx,
            snapshot_cache: Mutex::new(None),
            snapshot_gate: tokio::sync::Mutex::new(()),
            step_seconds,
            speed,
            run: {
                let started = chrono::Utc::now();
                let id = crate::random::random_hex(8).unwrap_or_else(|_| {
                    format!(
                        "{}-{}",
                        std::process::id(),
                        started.timestamp_nanos_opt().unwrap_or_default()
                    )
                });
                pb::GatewayRun {
                    id,
                    started_at: Some(api::ts(started)),
                    took_over_at: None,
                }
            },
            leadership: RwLock::new(store::Leadership::single("its state file")),
            relay: Mutex::new(None),
            advertised: Mutex::new(String::new()),
            relay_tls: Mutex::new(crate::tls::ClientTls::default()),
            resync: AtomicBool::new(false),
            had_own_picture: AtomicBool::new(false),
            took_over_at: Mutex::new(None),
        }))
    }

    /// This run of the gateway: the owner of its outbox's claims.
    pub fn run_id(&self) -> &str {
        &self.run.id
    }

    /// Replaces the channels, components and page address (see `record`).
    pub fn set_publishing(&self, p: super::publish::Publishing) {
        self.record.set_publishing(p);
    }

    /// This gateway's role among the replicas on its store.
    pub fn leadership(&self) -> Arc<store::Leadership> {
        self.leadership
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets the role this gateway follows (before it serves): a follower's
    /// ticks do not move its source, and the Watch carries a `store` source
    /// line saying which it is.
    pub fn set_leadership(&self, l: Arc<store::Leadership>) {
        *self.leadership.write().unwrap_or_else(|e| e.into_inner()) = l;
    }

    /// Records a priority decision by `actor`, then reorders the source and
    /// tells every watcher at once (one new version). Returns the stored
    /// decision and the tenant's row with its recomputed ETA.
    pub fn set_priority(
        &self,
        req: PriorityRequest,
        actor: &str,
    ) -> Result<(PriorityDecision, TenantRow), DecisionError> {
        priority::check_request(&req.tenant_id, req.rank, &req.reason)
            .map_err(DecisionError::Invalid)?;
        let mut store = self.record.store();
        let before = self
            .view()
            .source()
            .tenant(&req.tenant_id)
            .ok_or_else(|| DecisionError::UnknownTenant(req.tenant_id.clone()))?;
        let old = before.priority_set.as_deref().map_or_else(
            || before.priority.as_str().to_string(),
            PriorityDecision::label,
        );
        let decision = PriorityDecision {
            tenant_id: req.tenant_id.clone(),
            priority: req.priority,
            rank: req.rank,
            version: req.expected_version + 1,
            set_by: actor.to_string(),
            set_at: self.now(),
            reason: req.reason,
        };
        let detail = format!("{old} → {}", decision.label());
        let (stored, _event) = store.record_priority(req.expected_version, &decision, &detail)?;
        let board = self.record.board_with(&**store);
        let (row, update) = {
            let mut s = self.write();
            s.source
                .set_priority(Arc::new(stored.clone()))
                .map_err(|_| DecisionError::UnknownTenant(req.tenant_id.clone()))?;
            let update = self.next_update(&mut s, board);
            (s.source.tenant(&req.tenant_id).unwrap_or(before), update)
        };
        let _ = self.tx.send(Encoded::new(&update));
        Ok((stored, row))
    }

    /// The war room's record, oldest first, after event id `after`.
    pub fn audit_events(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        self.record.store().audit_events(after, limit)
    }

    pub(super) fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        // A panic while ticking must not take every later request down with
        // it: the data is still the last consistent tick's.
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The source now, if no tick is writing it.
    pub fn try_view(&self) -> Option<SourceView<'_>> {
        match self.state.try_read() {
            Ok(guard) => Some(SourceView { guard }),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(SourceView {
                guard: e.into_inner(),
            }),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    pub fn view(&self) -> SourceView<'_> {
        SourceView {
            guard: self.state.read().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// The incident's clock (`Source::now`): decisions and updates are
    /// stamped with it, so in a drill they sit on the same timeline as the
    /// ETAs beside them.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.view().source().now()
    }

    /// Advances the source once and broadcasts the change. Returns the new
    /// version. A follower relaying its leader broadcasts what it relays
    /// instead (`relayed`); one that has no leader to relay shows its own
    /// picture, unmoved, saying it is a follower.
    pub fn tick(&self) -> u64 {
        // The board reads the store: before the state lock (lock order).
        let board = self.record.board();
        let leading = self.leadership().is_leading();
        let update = {
            let mut s = self.write();
            if self.relay().is_some() {
                return s.version;
            }
            // Only the leader moves the source; a follower's stays where it is.
            s.source
                .advance(if leading { self.step_seconds } else { 0.0 });
            let mut u = self.next_update(&mut s, board.clone());
            if self.resync.swap(false, Ordering::Relaxed) {
                u = self.snapshot_of(&s, board);
            }
            if leading {
                self.had_own_picture.store(true, Ordering::Relaxed);
            }
            u
        };
        let version = update.version;
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(Encoded::new(&update));
        version
    }

    /// Moves the source `steps` times by `seconds` before anyone watches
    /// (a drill's `--skip`): slips, the ETA history and the trends see
    /// every step, as if the gateway had run from the start. Blocks.
    pub fn fast_forward(&self, steps: usize, seconds: f64) {
        let mut s = self.write();
        for _ in 0..steps {
            s.source.advance(seconds);
        }
    }

    /// The next version: the overview and the tenants that changed.
    fn next_update(&self, s: &mut State, board: pb::StatusBoard) -> pb::WatchUpdate {
        s.version += 1;
        let mut u = api::overview_to_pb(&self.overview_of(s), s.version, false);
        let mut last = self.last_board.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_ref() != Some(&board) {
            *last = Some(board.clone());
            u.status = Some(board);
        }
        u.tenants = s
            .source
            .changed_tenants()
            .iter()
            .map(api::tenant_to_pb)
            .collect();
        u
    }

    pub(super) fn overview_of(&self, s: &State) -> crate::domain::Overview {
        let mut o = s.source.overview();
        o.incident.speed = self.speed;
        if let Some(line) = store_line(&self.leadership().status(), None) {
            o.sources.push(line);
        }
        o
    }

    /// Everything, at the current version.
    pub fn snapshot(&self) -> pb::WatchUpdate {
        self.snapshot_with(self.record.board())
    }

    /// A follower's is the leader's picture it relays.
    fn snapshot_with(&self, board: pb::StatusBoard) -> pb::WatchUpdate {
        let s = self.state.read().unwrap_or_else(|e| e.into_inner());
        let relayed = self.relay().as_ref().and_then(|r| r.snapshot(s.version));
        relayed.unwrap_or_else(|| self.snapshot_of(&s, board))
    }

    fn snapshot_of(&self, s: &State, board: pb::StatusBoard) -> pb::WatchUpdate {
        let mut u = api::overview_to_pb(&self.overview_of(s), s.version, true);
        u.status = Some(board);
        u.run = Some(pb::GatewayRun {
            took_over_at: *self.took_over_at.lock().unwrap_or_else(|e| e.into_inner()),
            ..self.run.clone()
        });
        u.tenants = s.source.tenants().iter().map(api::tenant_to_pb).collect();
        u
    }

    /// Everything, at the current version, encoded: built and encoded once
    /// per version (and board), then shared by every watcher that asks.
    /// Blocking: call it off the async runtime.
    pub fn snapshot_encoded(&self) -> Encoded {
        let board = self.record.board();
        // Held while building: watchers arriving together wait for the one
        // build instead of each making their own.
        let mut cache = self
            .snapshot_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let version = self.version();
        if let Some((b, e)) = cache.as_ref()
            && e.version == version
            && *b == board
        {
            return e.clone();
        }
        let snap = self.snapshot_with(board.clone());
        let e = Encoded::new(&snap);
        *cache = Some((board, e.clone()));
        e
    }

    /// `snapshot_encoded` for a watcher: one at a time on the blocking
    /// pool, the others waiting on the runtime for the shared result.
    pub async fn snapshot_shared(self: Arc<Self>) -> Result<Encoded, tokio::task::JoinError> {
        let _one_at_a_time = self.snapshot_gate.lock().await;
        let hub = self.clone();
        tokio::task::spawn_blocking(move || hub.snapshot_encoded()).await
    }

    fn relay_tls(&self) -> crate::tls::ClientTls {
        self.relay_tls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn relay(&self) -> std::sync::MutexGuard<'_, Option<super::relay::Relay>> {
        self.relay.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this gateway's own source is what it serves and moves: it
    /// leads (or runs alone) and is not still relaying a leader.
    pub fn runs_sources(&self) -> bool {
        self.leadership().is_leading() && self.relay().is_none()
    }

    /// Where other replicas reach this gateway (see `advertise`).
    pub fn advertised(&self) -> String {
        self.advertised
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Says where this gateway serves gRPC: while it leads, its followers
    /// relay and forward there.
    pub fn advertise(&self, url: &str) {
        url.clone_into(&mut self.advertised.lock().unwrap_or_else(|e| e.into_inner()));
        self.leadership().advertise(url, &self.run.id);
    }

    /// Where this gateway's consoles' calls go: None to this gateway (it
    /// leads, runs alone, or follows with a picture of its own to show,
    /// which it marks); the leader's URL and channel while it relays one;
    /// an error for a follower with nothing to show.
    pub fn forward(&self) -> Result<Option<(String, tonic::transport::Channel)>, tonic::Status> {
        if let Some(r) = self.relay().as_ref() {
            return Ok(Some((r.url.clone(), r.channel.clone())));
        }
        let l = self.leadership();
        if l.is_leading() || self.had_own_picture.load(Ordering::Relaxed) {
            return Ok(None);
        }
        Err(tonic::Status::unavailable(format!(
            "this gateway follows another and has not reached it yet ({}): try again in a moment, or another replica",
            l.status()
                .leader
                .map_or_else(|| "no leader has said where it serves".into(), |i| i.url)
        )))
    }

    /// Whether this gateway has a picture to stream: its own, or a
    /// leader's it relays.
    pub fn can_watch(&self) -> Result<(), tonic::Status> {
        match self.relay().as_ref() {
            Some(r) if r.has_picture() => return Ok(()),
            Some(r) => {
                return Err(tonic::Status::unavailable(format!(
                    "this gateway follows the leader at {} and has not had its picture yet: try again in a moment, or another replica",
                    r.url
                )));
            }
            None => {}
        }
        self.forward().map(|_| ())
    }

    /// How this gateway reaches a leader that serves TLS (the CA to trust,
    /// a client certificate): `[gateway_tls]` in its config.
    pub fn set_relay_tls(&self, tls: crate::tls::ClientTls) {
        *self.relay_tls.lock().unwrap_or_else(|e| e.into_inner()) = tls;
    }

    /// Follows the leader at `url`: the channel to relay and forward on.
    /// A new leader's picture replaces the old one when it arrives; until
    /// then the old one is served, marked.
    pub fn follow(&self, url: &str) -> Result<tonic::transport::Channel, String> {
        let mut relay = self.relay();
        if let Some(r) = relay.as_ref().filter(|r| r.url == url) {
            return Ok(r.channel.clone());
        }
        let fresh = super::relay::Relay::new(url, &self.relay_tls())?;
        let channel = fresh.channel.clone();
        match relay.as_mut() {
            // The old leader's picture stays until the new one's arrives.
            Some(r) => {
                r.url = fresh.url;
                r.channel = fresh.channel;
            }
            None => *relay = Some(fresh),
        }
        Ok(channel)
    }

    /// One update from the leader: merged into the picture, renumbered in
    /// this gateway's versions, with its own `store` line, and broadcast.
    pub fn relayed(&self, u: pb::WatchUpdate) {
        let status = self.leadership().status();
        let out = {
            let mut s = self.write();
            let mut relay = self.relay();
            // Promoted meanwhile: its own source speaks now.
            let Some(r) = relay.as_mut() else { return };
            r.lost = None;
            let line = store_line(&status, Some(r)).map(|l| api::source_to_pb(&l));
            let mut out = r.merge(u, line);
            s.version += 1;
            out.version = s.version;
            out
        };
        let _ = self.tx.send(Encoded::new(&out));
    }

    /// The leader's stream broke: the picture stays, its `store` line says
    /// since when (said once per break).
    pub fn relay_lost(&self, why: String) {
        let status = self.leadership().status();
        let out = {
            let mut s = self.write();
            let mut relay = self.relay();
            let Some(r) = relay.as_mut() else {
                tracing::warn!("cannot follow the leader: {why}");
                return;
            };
            if !r.lose(why.clone()) {
                return;
            }
            tracing::warn!(leader = %r.url, "the leader's stream broke: {why}");
            let line = store_line(&status, Some(r)).map(|l| api::source_to_pb(&l));
            let Some(mut out) = r.restate(line) else {
                return;
            };
            s.version += 1;
            out.version = s.version;
            out
        };
        let _ = self.tx.send(Encoded::new(&out));
    }

    /// This follower leads now: the decisions the war room made through
    /// the old leader are applied to its own source, a drill's source is
    /// moved on to the incident time the old leader had reached, and its
    /// watchers get a whole snapshot of its own picture at the next tick.
    /// Blocking.
    pub fn promote(&self) {
        let priorities = self.record.store().priorities();
        let mut s = self.write();
        let caught_up_to = self.relay().take().and_then(|r| r.incident_now());
        match priorities {
            Ok(ds) => {
                for d in ds {
                    let id = d.tenant_id.clone();
                    if let Err(e) = s.source.set_priority(Arc::new(d)) {
                        tracing::warn!(tenant = %id, "stored priority not applied: {e}");
                    }
                }
            }
            Err(e) => tracing::error!("the war room's priorities could not be read: {e}"),
        }
        let now = s.source.now();
        if let Some(target) = caught_up_to
            && s.source.overview().simulated()
            && target > now
        {
            let seconds = (target - now).num_milliseconds() as f64 / 1000.0;
            let step = self.step_seconds.max(1.0);
            let steps = (seconds / step).floor() as usize;
            for _ in 0..steps {
                s.source.advance(step);
            }
            s.source.advance(seconds - steps as f64 * step);
        }
        *self.took_over_at.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(api::ts(chrono::Utc::now()));
        self.resync.store(true, Ordering::Relaxed);
        tracing::warn!("this gateway leads now: its own source serves the war room");
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Encoded> {
        self.tx.subscribe()
    }

    pub fn version(&self) -> u64 {
        self.view().version()
    }

    pub fn watchers(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// The `store` source line of a gateway among replicas: the database, this
/// gateway's role and since when, or since when the database has been out
/// of reach. None for a gateway alone on its store (a SQLite file).
/// `relay`: the leader this follower relays, and since when (and why) its
/// stream has been broken.
pub fn store_line(
    r: &store::RoleStatus,
    relay: Option<&super::relay::Relay>,
) -> Option<crate::domain::SourceStatus> {
    use crate::domain::Health;
    let hm = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or_else(|| "?".into(), |t| t.format("%H:%M UTC").to_string())
    };
    let relay = relay.map(|x| (x.url.as_str(), x.lost.as_ref()));
    let (health, message) = match (r.role, relay) {
        (store::Role::Single, _) => return None,
        (_, Some((url, Some((since, why))))) => (
            Health::Down,
            format!(
                "{} · follower: the leader at {url} has not answered since {} ({why}); figures as of then",
                r.store,
                hm(Some(*since))
            ),
        ),
        _ if !r.reachable => match r.reachable_since {
            Some(t) => (
                Health::Down,
                format!(
                    "{} unreachable since {} · follower: {}",
                    r.store,
                    hm(Some(t)),
                    r.problem
                ),
            ),
            None => (Health::Unknown, format!("{} · not reached yet", r.store)),
        },
        (store::Role::Leader, _) => (
            Health::Ok,
            format!("{} · leader since {}", r.store, hm(r.leader_since)),
        ),
        (store::Role::Follower, Some((url, None))) => (
            Health::Ok,
            match r.leader.as_ref().filter(|l| l.url == url) {
                Some(l) => format!(
                    "{} · follower of the leader at {url} (leading since {})",
                    r.store,
                    hm(Some(l.since))
                ),
                None => format!("{} · follower of the leader at {url}", r.store),
            },
        ),
        (store::Role::Follower, None) => (
            Health::Unknown,
            format!(
                "{} · follower, not relaying a leader yet: figures are this gateway's own, not moving",
                r.store
            ),
        ),
    };
    Some(crate::domain::SourceStatus {
        name: "store".into(),
        simulated: false,
        health,
        message,
        // The incident's clock may be a drill's: wall-clock times are in
        // the message, in UTC.
        last_success: None,
    })
}

/// One Watch update, encoded once as a gRPC message (the 5-byte prefix and
/// the protobuf): cloning it shares the bytes.
#[derive(Clone, Debug)]
pub struct Encoded {
    pub version: u64,
    /// The whole gRPC length-prefixed message.
    pub frame: Bytes,
}

impl Encoded {
    pub fn new(u: &pb::WatchUpdate) -> Self {
        let len = prost::Message::encoded_len(u);
        let mut buf = Vec::with_capacity(5 + len);
        buf.push(0); // not compressed
        // A message over 4 GiB cannot be framed; the length saturates and
        // the client refuses it (the snapshot limit is far below).
        buf.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
        prost::Message::encode_raw(u, &mut buf);
        Encoded {
            version: u.version,
            frame: Bytes::from(buf),
        }
    }

    /// The protobuf without its gRPC prefix.
    pub fn message(&self) -> &[u8] {
        self.frame.get(5..).unwrap_or_default()
    }

    /// The update back, as a client would read it.
    pub fn decode(&self) -> Result<pb::WatchUpdate, prost::DecodeError> {
        prost::Message::decode(self.message())
    }
}

/// A thread that ticks the hub at a fixed wall-clock interval, off the async
/// runtime (a tick of a large simulation is CPU work).
pub struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    pub fn start(hub: Arc<Hub>, interval: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("warroom-hub".into())
            .spawn(move || {
                let mut next = Instant::now() + interval;
                while !flag.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if now < next {
                        std::thread::sleep((next - now).min(Duration::from_millis(50)));
                        continue;
                    }
                    let started = Instant::now();
                    hub.tick();
                    tracing::trace!(elapsed = ?started.elapsed(), "tick");
                    next += interval;
                    // After a stall, do not fire a burst of catch-up ticks.
                    if next < Instant::now() {
                        next = Instant::now() + interval;
                    }
                }
            })
            .ok();
        Ticker { stop, thread }
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.halt();
    }
}
