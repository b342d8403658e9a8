//! The war-room picture as plain data: what a source reports and what the
//! console draws.

use chrono::{DateTime, Utc};
use std::sync::Arc;

use super::forecast::EtaRange;
use super::scope::ScopeRevision;

/// State of one mailbox during an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum MailboxState {
    Ok = 0,
    LockedOut = 1,
    ReindexPending = 2,
    Reindexing = 3,
    Restored = 4,
    Failed = 5,
    /// Serves mail again, but its UIDVALIDITY changed (a lost uidlist was
    /// rebuilt): every IMAP client of the mailbox must resync.
    ResyncNeeded = 6,
}

impl MailboxState {
    pub const ALL: [MailboxState; 7] = [
        MailboxState::Ok,
        MailboxState::LockedOut,
        MailboxState::ReindexPending,
        MailboxState::Reindexing,
        MailboxState::Restored,
        MailboxState::Failed,
        MailboxState::ResyncNeeded,
    ];

    /// The name used in the API, CLI and CSV exports.
    pub fn as_str(self) -> &'static str {
        match self {
            MailboxState::Ok => "ok",
            MailboxState::LockedOut => "locked_out",
            MailboxState::ReindexPending => "reindex_pending",
            MailboxState::Reindexing => "reindexing",
            MailboxState::Restored => "restored",
            MailboxState::Failed => "failed",
            MailboxState::ResyncNeeded => "resync_needed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The states without service right now (cannot log in or read mail).
    pub const AFFECTED: [MailboxState; 4] = [
        MailboxState::LockedOut,
        MailboxState::ReindexPending,
        MailboxState::Reindexing,
        MailboxState::Failed,
    ];

    /// Without service right now (cannot log in or read mail).
    pub fn is_affected(self) -> bool {
        Self::AFFECTED.contains(&self)
    }

    pub fn from_u8(v: u8) -> Self {
        Self::ALL
            .get(v as usize)
            .copied()
            .unwrap_or(MailboxState::Ok)
    }
}

/// Counts of mailboxes by state, indexed by `MailboxState as usize`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts(pub [u64; 7]);

impl StateCounts {
    pub fn get(&self, s: MailboxState) -> u64 {
        self.0[s as usize]
    }
    pub fn add(&mut self, s: MailboxState, n: u64) {
        self.0[s as usize] += n;
    }
    pub fn sub(&mut self, s: MailboxState, n: u64) {
        self.0[s as usize] = self.0[s as usize].saturating_sub(n);
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    /// Of `mailboxes`, how many have no state here (not probed yet).
    pub fn unknown_of(&self, mailboxes: u64) -> u64 {
        mailboxes.saturating_sub(self.total())
    }
    /// Mailboxes without service now.
    pub fn affected(&self) -> u64 {
        MailboxState::ALL
            .iter()
            .filter(|s| s.is_affected())
            .map(|s| self.get(*s))
            .sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceRole {
    Imap,
    Pop,
    Webmail,
    SmtpIn,
    SmtpOut,
    Storage,
    Index,
}

impl ServiceRole {
    pub const ALL: [ServiceRole; 7] = [
        ServiceRole::Imap,
        ServiceRole::Pop,
        ServiceRole::Webmail,
        ServiceRole::SmtpIn,
        ServiceRole::SmtpOut,
        ServiceRole::Storage,
        ServiceRole::Index,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceRole::Imap => "imap",
            ServiceRole::Pop => "pop",
            ServiceRole::Webmail => "webmail",
            ServiceRole::SmtpIn => "smtp-in",
            ServiceRole::SmtpOut => "smtp-out",
            ServiceRole::Storage => "storage",
            ServiceRole::Index => "index",
        }
    }
    /// Roles where users log in, so a login success rate means something.
    pub fn has_logins(self) -> bool {
        matches!(
            self,
            ServiceRole::Imap | ServiceRole::Pop | ServiceRole::Webmail
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Health {
    Ok,
    Degraded,
    Down,
    #[default]
    Unknown,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Degraded => "degraded",
            Health::Down => "down",
            Health::Unknown => "unknown",
        }
    }
    /// The worse of two.
    pub fn worst(self, other: Health) -> Health {
        fn rank(h: Health) -> u8 {
            match h {
                Health::Ok => 0,
                Health::Unknown => 1,
                Health::Degraded => 2,
                Health::Down => 3,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum IncidentState {
    #[default]
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

impl IncidentState {
    pub const ALL: [IncidentState; 4] = [
        IncidentState::Investigating,
        IncidentState::Identified,
        IncidentState::Monitoring,
        IncidentState::Resolved,
    ];

    /// "identified" (any case, spaces around) → Identified.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_lowercase();
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Investigating => "investigating",
            IncidentState::Identified => "identified",
            IncidentState::Monitoring => "monitoring",
            IncidentState::Resolved => "resolved",
        }
    }
}

/// Tenant priority for the reindex: P0 goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Priority {
    P0,
    P1,
    #[default]
    P2,
    P3,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::P0, Priority::P1, Priority::P2, Priority::P3];
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P0 => "P0",
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScopeUnit {
    #[default]
    Files,
    Mailboxes,
}

impl ScopeUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeUnit::Files => "files",
            ScopeUnit::Mailboxes => "mailboxes",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Incident {
    pub title: String,
    pub started_at: Option<DateTime<Utc>>,
    pub state: IncidentState,
    /// The source clock: what "now" is for every ETA in the same picture.
    pub now: Option<DateTime<Utc>>,
    /// Source seconds per wall-clock second.
    pub speed: f64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceStatus {
    pub name: String,
    pub simulated: bool,
    pub health: Health,
    pub message: String,
    pub last_success: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceHealth {
    pub role: ServiceRole,
    pub status: Health,
    pub login_success_rate: Option<f64>,
    /// None: nothing measured it.
    pub latency_ms: Option<f64>,
    pub detail: String,
}

/// Messages waiting, by queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    pub active: u64,
    pub deferred: u64,
    pub hold: u64,
}

impl QueueDepth {
    pub fn total(&self) -> u64 {
        self.active + self.deferred + self.hold
    }
}

/// The inbound queue. A figure that is None was not measured; `unknown`
/// says why. Nothing here defaults to 0.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Queue {
    pub depth: Option<QueueDepth>,
    pub arrival_per_min: Option<f64>,
    pub delivery_per_min: Option<f64>,
    /// Why a figure above is None ("waiting for the first poll").
    pub unknown: String,
    /// Messages known lost; Some(0) only where a source backs the claim.
    pub lost: Option<u64>,
    /// Of the depth, messages for recipients of no tenant.
    pub unmapped: Option<u64>,
    /// Non-empty: the last known figures, not live ones, and why.
    pub stale: String,
    /// Non-empty: the rates count only this part of the mail.
    pub rates_cover: String,
    pub drain_eta: EtaRange,
    pub depth_history: Vec<u64>,
    pub history_step_seconds: u32,
}

impl Queue {
    /// Messages waiting in all queues, if measured.
    pub fn depth(&self) -> Option<u64> {
        self.depth.map(|d| d.total())
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reindex {
    pub unit: ScopeUnit,
    pub scope: u64,
    pub done: u64,
    pub failed: u64,
    pub in_progress: u64,
    /// None until measured.
    pub rate_per_min: Option<f64>,
    pub eta: EtaRange,
    pub revisions: Vec<ScopeRevision>,
    pub mailboxes_pending: u64,
    pub mailboxes_restored: u64,
    /// When it last ran out of work (None while working or before it started).
    pub finished_at: Option<DateTime<Utc>>,
    /// The ETA over time, oldest first. Sources leave it empty; the
    /// gateway's hub keeps it (see `domain::slip::EtaHistory`).
    pub eta_history: Vec<super::slip::EtaSample>,
    /// What the ETA assumes that was not measured, in words (empty:
    /// nothing): a war room reading "10:35" should know it takes this
    /// hour's rate through tomorrow's peak.
    pub eta_assumes: String,
}

impl Reindex {
    /// Share of the current scope that is done, 0..=1.
    pub fn fraction_done(&self) -> f64 {
        if self.scope == 0 {
            return 0.0;
        }
        (self.done as f64 / self.scope as f64).clamp(0.0, 1.0)
    }
}

/// How many damaged mailboxes of one kind a sweep found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DamageCount {
    pub kind: String,
    pub found: u64,
}

/// The sweep that probes every mailbox for damage (see the proto's
/// `Sweep`): until a pass is complete, "none found" means "none found so
/// far".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sweep {
    pub pass: u32,
    pub mailboxes: u64,
    pub swept: u64,
    pub rate_per_min: Option<f64>,
    pub eta: EtaRange,
    pub found: u64,
    pub projected: Option<u64>,
    /// sweeping, paused: <why>, done.
    pub state: String,
    pub kinds: Vec<DamageCount>,
    pub undetectable: String,
}

impl Sweep {
    /// Share of this pass that is swept, 0..=1.
    pub fn fraction(&self) -> f64 {
        if self.mailboxes == 0 {
            return 1.0;
        }
        (self.swept as f64 / self.mailboxes as f64).clamp(0.0, 1.0)
    }
    /// At least one whole pass is done: "nothing found" is then a finding.
    pub fn complete(&self) -> bool {
        self.pass > 1 || (self.mailboxes > 0 && self.swept >= self.mailboxes)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cluster {
    pub id: String,
    pub name: String,
    pub health: Health,
    pub services: Vec<ServiceHealth>,
    pub queue: Queue,
    pub reindex: Reindex,
    pub mailboxes: u64,
    pub affected_mailboxes: u64,
    /// None where damage is known without a sweep (the simulator).
    pub sweep: Option<Sweep>,
}

/// One row of the tenants table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TenantRow {
    pub id: Arc<str>,
    pub name: Arc<str>,
    pub primary_domain: Arc<str>,
    pub domain_count: u32,
    pub tier: Arc<str>,
    pub cluster_id: Arc<str>,
    pub mailboxes: u64,
    /// Mailboxes by state, of those whose state is known: a platform counts
    /// a mailbox only once the damage sweep has probed it, so before its
    /// first pass `states.total()` is below `mailboxes` (see `unchecked`).
    pub states: StateCounts,
    /// None: not measured (yet).
    pub queued_messages: Option<u64>,
    pub priority: Priority,
    /// Who set `priority` and why; None while it is the default.
    pub priority_set: Option<Arc<super::priority::PriorityDecision>>,
    pub reindex_rank: u64,
    pub eta: EtaRange,
    /// The ETA moved later than it was published or first shown (or was
    /// withdrawn). Sources leave it None; the gateway's hub sets it (see
    /// `domain::slip`).
    pub eta_slip: Option<super::slip::EtaSlip>,
}

impl TenantRow {
    pub fn affected(&self) -> u64 {
        self.states.affected()
    }
    pub fn restored(&self) -> u64 {
        self.states.get(MailboxState::Restored)
    }
    /// Mailboxes whose state nobody knows yet (not probed): neither ok nor
    /// affected. While any are, `affected()` is a lower bound.
    pub fn unchecked(&self) -> u64 {
        self.states.unknown_of(self.mailboxes)
    }
    /// Share of mailboxes without service, 0..=1.
    pub fn affected_fraction(&self) -> f64 {
        if self.mailboxes == 0 {
            0.0
        } else {
            self.affected() as f64 / self.mailboxes as f64
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub tenants: u64,
    pub affected_tenants: u64,
    pub mailboxes: u64,
    pub affected_mailboxes: u64,
    pub restored_mailboxes: u64,
    /// For the tenants' recipients; None: unknown.
    pub queued_messages: Option<u64>,
}

/// Everything but the tenant rows: small, sent whole with every update.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Overview {
    pub incident: Incident,
    pub sources: Vec<SourceStatus>,
    pub clusters: Vec<Cluster>,
    pub totals: Totals,
}

impl Overview {
    pub fn simulated(&self) -> bool {
        self.sources.iter().any(|s| s.simulated)
    }

    /// The incident's clock at wall time `wall`: in a drill, the simulated
    /// time of this picture (the one every ETA in it is relative to); on a
    /// real platform, the wall clock.
    pub fn clock(&self, wall: DateTime<Utc>) -> DateTime<Utc> {
        match self.incident.now {
            Some(t) if self.simulated() => t,
            _ => wall,
        }
    }

    /// A damage sweep whose first pass has not checked every mailbox yet:
    /// until it has, the affected counts are what was found so far.
    pub fn first_sweep_running(&self) -> Option<&Sweep> {
        self.clusters
            .iter()
            .filter_map(|c| c.sweep.as_ref())
            .find(|sw| !sw.complete())
    }

    /// Messages known lost over every cluster; None unless every cluster's
    /// source measured it.
    pub fn lost_messages(&self) -> Option<u64> {
        self.sum_measured(|q| q.lost)
    }

    /// Messages queued for recipients of no tenant, over every cluster;
    /// None unless measured everywhere.
    pub fn unmapped_messages(&self) -> Option<u64> {
        self.sum_measured(|q| q.unmapped)
    }

    /// A queue figure summed over the clusters: unknown if any cluster's
    /// is, or if there is no cluster at all.
    /// Inbound queue depth over every cluster, live: None unless every
    /// cluster's depth was measured and is not a stale last-known figure.
    pub fn live_queue_depth(&self) -> Option<u64> {
        self.sum_measured(|q| q.depth().filter(|_| q.stale.is_empty()))
    }

    fn sum_measured(&self, figure: impl Fn(&Queue) -> Option<u64>) -> Option<u64> {
        if self.clusters.is_empty() {
            return None;
        }
        self.clusters
            .iter()
            .try_fold(0, |sum, c| figure(&c.queue).map(|n| sum + n))
    }
}

/// One mailbox as a lookup or a drill-down shows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MailboxRow {
    pub address: String,
    pub tenant_id: String,
    pub cluster_id: String,
    pub volume: String,
    pub state: Option<MailboxState>,
    pub reindex_position: u64,
    pub eta: EtaRange,
    /// None: not measured per mailbox (yet).
    pub queued_messages: Option<u64>,
    pub last_error: String,
}
