//! A deterministic, time-compressed replay of the Cluster A incident of
//! October 2008, as a source like any other.
//!
//! - Two clusters: A suffers a storage fault at the start, B stays healthy.
//! - Tenants of very different sizes (Pareto), each with its own share of
//!   affected mailboxes (many 0%, some near 80%).
//! - Affected mailboxes are locked out; once the fault is identified a scan
//!   finds them volume by volume and queues them for reindexing. The scope
//!   starts at the famous "about 25,000 files" and is revised upward as the
//!   scan finds more.
//! - The reindex works through the queue in tenant-priority order, round-robin
//!   between tenants of one priority, and slows at peak load.
//! - Inbound mail for affected mailboxes is queued and drains once they are
//!   restored.
//! - A second fault later sends part of the reindexed mailboxes back.
//!
//! State is kept as flat arrays (one byte of state and one of file count per
//! mailbox) and per-tenant counters, so a tick costs O(tenants + work done),
//! not O(mailboxes), and 5,000,000 mailboxes fit in tens of MB. Addresses are
//! computed, never stored.

pub mod drill;
mod forecasts;
pub mod index;
mod names;
pub(crate) mod rng;
mod rows;
pub mod scenario;
mod source;
mod step;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};

use super::{LookupAnswer, LookupHit, MailboxQuery, Page, Source, SourceError};
use crate::domain::calibrated::{Class, Forecaster, QUARTERS};
use crate::domain::forecast::{
    EtaRange, NoEstimate, RateStats, RateWindow, forecast, forecast_with,
};
use crate::domain::priority::PriorityDecision;
use crate::domain::scope::ScopeTracker;
use crate::domain::*;
use rng::{Rng, pick, unit};
use scenario::*;

/// Which incident to simulate, how big, and from which seed.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub tenants: u32,
    pub mailboxes: u64,
    pub start: DateTime<Utc>,
    pub scenario: Arc<Scenario>,
}

impl SimConfig {
    /// A scenario at its own scale and start, seed 2008.
    pub fn of(scenario: Scenario) -> Self {
        SimConfig {
            seed: 2008,
            tenants: scenario.scale.tenants,
            mailboxes: scenario.scale.mailboxes,
            start: scenario.start,
            scenario: Arc::new(scenario),
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig::of(Scenario::default())
    }
}

/// Upper bounds that keep a mistyped flag from eating the machine.
pub const MAX_TENANTS: u32 = 1_000_000;
pub const MAX_MAILBOXES: u64 = 20_000_000;

impl SimConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.tenants < 2 {
            return Err(format!(
                "--tenants must be at least 2 (got {})",
                self.tenants
            ));
        }
        if self.tenants > MAX_TENANTS {
            return Err(format!(
                "--tenants must be at most {MAX_TENANTS} (got {})",
                self.tenants
            ));
        }
        if self.mailboxes < self.tenants as u64 {
            return Err(format!(
                "--mailboxes ({}) must be at least --tenants ({}): every tenant has a mailbox",
                self.mailboxes, self.tenants
            ));
        }
        if self.mailboxes > MAX_MAILBOXES {
            return Err(format!(
                "--mailboxes must be at most {MAX_MAILBOXES} (got {})",
                self.mailboxes
            ));
        }
        Ok(())
    }
}

const CLUSTER_A: usize = 0;
/// Storage volumes per cluster (shown per mailbox).
const VOLUMES: u64 = 24;
const CLUSTER_B: usize = 1;
const NO_ETA: &str = "";
/// The calibration key of the cluster's reindex ETA (tenants use their index).
const CLUSTER_KEY: u32 = u32::MAX;

/// (priority, explicit rank or u32::MAX for the fair round-robin).
type Slot = (Priority, u32);

struct Tenant {
    id: Arc<str>,
    name: Arc<str>,
    base: String,
    tld: &'static str,
    primary: Arc<str>,
    tier: Arc<str>,
    cluster: usize,
    cluster_id: Arc<str>,
    first: u64,
    count: u64,
    domains: u32,
    states: StateCounts,
    priority: Priority,
    /// Explicit position within the priority (1 = first); 0 = fair order.
    priority_rank: u32,
    priority_set: Option<Arc<PriorityDecision>>,
    /// Local indices of mailboxes waiting for the reindex, in order.
    pending: VecDeque<u32>,
    /// Messages queued for mailboxes that are still without service.
    backlog: f64,
    /// Messages whose mailboxes are back, waiting for delivery.
    deliverable: f64,
    eta: EtaRange,
    /// The calibration class of `eta` (None: no estimate to check).
    eta_bin: Option<usize>,
    rank: u64,
    /// Last queued count sent to watchers, to decide whether the row changed.
    sent_queued: u64,
    /// Local indices in address order, computed on the first drill-down.
    address_order: std::sync::OnceLock<Vec<u32>>,
    dirty: bool,
}

impl Tenant {
    /// Where the tenant waits in the reindex order: by priority, then ranked
    /// tenants one after the other, then the fair round-robin.
    fn slot(&self) -> Slot {
        crate::domain::priority::order_key(self.priority, self.priority_rank)
    }

    fn queued(&self) -> u64 {
        (self.backlog + self.deliverable).round() as u64
    }

    fn row(&self) -> TenantRow {
        TenantRow {
            id: self.id.clone(),
            name: self.name.clone(),
            primary_domain: self.primary.clone(),
            domain_count: self.domains,
            tier: self.tier.clone(),
            cluster_id: self.cluster_id.clone(),
            mailboxes: self.count,
            states: self.states,
            queued_messages: Some(self.queued()),
            priority: self.priority,
            priority_set: self.priority_set.clone(),
            reindex_rank: self.rank,
            eta: self.eta.clone(),
            eta_slip: None,
        }
    }

    fn domain(&self, d: u32) -> String {
        names::domain(&self.base, self.tld, d)
    }
}

#[derive(Clone, Copy)]
struct InFlight {
    mailbox: u64,
    remaining: f64,
    /// Second attempt after a failure.
    retry: bool,
}

struct ClusterFlow {
    arrivals: RateWindow,
    deliveries: RateWindow,
    /// Net change of the queue per second (positive: draining).
    drain: RateWindow,
    depth_history: VecDeque<u64>,
    arrival_per_sec: f64,
    delivery_per_sec: f64,
}

impl ClusterFlow {
    fn new() -> Self {
        ClusterFlow {
            arrivals: RateWindow::new(30),
            deliveries: RateWindow::new(30),
            drain: RateWindow::new(30),
            depth_history: VecDeque::with_capacity(HISTORY),
            arrival_per_sec: 0.0,
            delivery_per_sec: 0.0,
        }
    }
}

/// Sorted pending counts of the tenants of one priority, for positions in a
/// round-robin order: the k-th pending mailbox of a tenant is reached after
/// Σ min(c, k) mailboxes of its peers.
#[derive(Default, Clone)]
struct Level {
    sorted: Vec<u64>,
    prefix: Vec<u64>,
    before: u64,
}

impl Level {
    /// Mailboxes processed before round `k` (1-based) completes.
    fn position(&self, k: u64) -> u64 {
        let idx = self.sorted.partition_point(|&c| c < k);
        self.shorter_than(k) + k * (self.sorted.len() - idx) as u64
    }

    /// Mailboxes of the higher priorities and of the tenants with fewer
    /// than `k` waiting: all done before round `k` completes.
    fn shorter_than(&self, k: u64) -> u64 {
        self.before + self.prefix[self.sorted.partition_point(|&c| c < k)]
    }
}

pub struct Simulator {
    cfg: SimConfig,
    /// `cfg.scenario`, for short.
    sc: Arc<Scenario>,
    /// Mailboxes simulated ÷ the scenario's own: speeds scale with it.
    scale: f64,
    mean_load: f64,
    /// The platform's typical load by quarter hour of the day, as the
    /// forecasts read it.
    traffic: [f64; QUARTERS],
    t: f64,
    advances: u64,
    tenants: Vec<Tenant>,
    state: Vec<u8>,
    files: Vec<u8>,
    domains: HashMap<String, (u32, u32)>,
    /// Prefix and fuzzy lookup over addresses, domains and tenant names.
    index: index::LookupIndex,
    incident_state: IncidentState,
    // Scan of cluster A for damaged mailboxes.
    scan_order: Vec<usize>,
    /// Per tenant: mailboxes of the faulty cluster up to the tenant's last
    /// one in scan order (when the scan will have found all its damage).
    scan_end: Vec<u64>,
    scan_tenant: usize,
    scan_local: u64,
    scan_carry: f64,
    scanned: u64,
    mailboxes_a: u64,
    files_found: u64,
    last_revision_t: f64,
    scope: Option<ScopeTracker>,
    // Reindex scheduler: tenants with pending mailboxes, per slot, served
    // slot by slot in order and round-robin within a slot.
    queues: BTreeMap<Slot, VecDeque<u32>>,
    in_flight: VecDeque<InFlight>,
    concurrency: usize,
    budget_carry: f64,
    done_files: u64,
    failed_files: u64,
    /// Files of every finished reindex attempt, and of those that failed
    /// (a failed mailbox is done again: the first attempt was work lost).
    attempted_files: u64,
    lost_files: u64,
    restored_mailboxes: u64,
    reindex_rate: RateWindow,
    /// The calibrated forecaster of every ETA served.
    fc: Forecaster,
    /// `reindex_stats()` of this tick.
    rate_stats: RateStats,
    /// The cluster's reindex ETA of this tick and the calibration bin it
    /// used (None before the fault is identified): what the panel shows,
    /// what is quoted, and what caps every tenant's.
    whole_eta: Option<(EtaRange, Option<usize>)>,
    /// When the reindex last ran out of work.
    reindex_done_at: Option<DateTime<Utc>>,
    /// Later faults that have happened (they are in time order).
    later_faults_done: usize,
    levels: BTreeMap<Slot, Level>,
    avg_pending_files: f64,
    flows: [ClusterFlow; 2],
    last_dt: f64,
}

impl Simulator {
    pub fn new(cfg: SimConfig) -> Result<Self, String> {
        cfg.validate()?;
        let seed = cfg.seed;
        let mut rng = Rng::new(seed);
        let n = cfg.tenants as usize;
        let sc = cfg.scenario.clone();
        let scale = cfg.mailboxes as f64 / sc.scale.mailboxes as f64;
        let alpha = sc.scale.pareto_alpha;

        // Long-tailed sizes: Pareto weights (α = 1.16 is the 80/20 rule),
        // capped so no single tenant swallows a small simulation.
        let mut weights: Vec<f64> = (0..n)
            .map(|_| (1.0 - rng.f64()).powf(-1.0 / alpha).min(2_000.0))
            .collect();
        let spare = cfg.mailboxes - n as u64;
        let sum: f64 = weights.iter().sum();
        // The seed's title company: ~260 mailboxes at the default scale.
        weights[0] = sum * 260.0 / cfg.mailboxes as f64;
        weights[1] = sum * 60.0 / cfg.mailboxes as f64;
        let sum: f64 = weights.iter().sum();
        let mut counts: Vec<u64> = weights
            .iter()
            .map(|w| 1 + (w / sum * spare as f64).floor() as u64)
            .collect();
        let mut left = cfg.mailboxes - counts.iter().sum::<u64>();
        let mut i = 0;
        while left > 0 {
            counts[i % n] += 1;
            left -= 1;
            i += 1;
        }

        let mut tenants = Vec::with_capacity(n);
        let mut domains = HashMap::new();
        let mut state = Vec::with_capacity(cfg.mailboxes as usize);
        let mut files = Vec::with_capacity(cfg.mailboxes as usize);
        let mut first = 0u64;
        for (i, &count) in counts.iter().enumerate() {
            let i64_ = i as u64;
            let (name, mut base, tld) =
                names::tenant_name(i64_, |salt, m| pick(seed, 100 + salt, i64_, m));
            if (0..8).any(|d| domains.contains_key(&names::domain(&base, tld, d))) {
                base = format!("{base}-{i}");
            }
            let faulty_percent = (sc.scale.faulty_cluster_share * 100.0).round() as u64;
            let cluster = if i < 2 || pick(seed, 7, i64_, 100) < faulty_percent {
                CLUSTER_A
            } else {
                CLUSTER_B
            };
            let share = match i {
                0 => 0.82,
                1 => 0.95,
                _ if cluster == CLUSTER_B => 0.0,
                _ => {
                    let f = &sc.fault;
                    let r = rng.f64();
                    if r < f.undamaged_tenants {
                        0.0
                    } else if r < f.undamaged_tenants + f.heavy_tenants {
                        rng.range(f.heavy_damage[0], f.heavy_damage[1])
                    } else {
                        rng.range(f.light_damage[0], f.light_damage[1])
                    }
                }
            };
            let dom_count = 1 + (count / 400).min(7) as u32 + (pick(seed, 9, i64_, 3) == 0) as u32;
            let tier = match count {
                0..=20 => "small",
                21..=500 => "business",
                _ => "enterprise",
            };
            let mut t = Tenant {
                id: format!("t{i:05}").into(),
                name: name.into(),
                base,
                tld,
                primary: "".into(),
                tier: tier.into(),
                cluster,
                cluster_id: sc.clusters.both()[cluster].id.as_str().into(),
                first,
                count,
                domains: dom_count,
                states: StateCounts::default(),
                priority: Priority::P2,
                priority_rank: 0,
                priority_set: None,
                pending: VecDeque::new(),
                backlog: 0.0,
                deliverable: 0.0,
                eta: EtaRange::unknown(NO_ETA),
                eta_bin: None,
                rank: 0,
                sent_queued: 0,
                address_order: std::sync::OnceLock::new(),
                dirty: true,
            };
            t.primary = t.domain(0).into();
            for d in 0..dom_count {
                domains.insert(t.domain(d), (i as u32, d));
            }
            for m in first..first + count {
                let affected = unit(seed, 11, m) < share;
                let s = if affected {
                    MailboxState::LockedOut
                } else {
                    MailboxState::Ok
                };
                t.states.add(s, 1);
                state.push(s as u8);
                let [fmin, fmax] = sc.scale.files_per_mailbox;
                files.push(fmin + pick(seed, 13, m, (fmax - fmin) as u64 + 1) as u8);
            }
            first += count;
            tenants.push(t);
        }
        let scan_order: Vec<usize> = (0..n)
            .filter(|&i| tenants[i].cluster == CLUSTER_A)
            .collect();
        let mut scan_end = vec![0u64; n];
        let mut acc = 0;
        for &i in &scan_order {
            acc += tenants[i].count;
            scan_end[i] = acc;
        }
        let mailboxes_a = acc;
        let workers = sc.reindex.concurrency as f64;
        let concurrency = (workers * scale).clamp(workers, 4096.0) as usize;
        let index = index::LookupIndex::build(tenants.iter().map(|t| index::Entry {
            name: &t.name,
            mailboxes: t.count,
            domains: (0..t.domains).map(|d| t.domain(d)).collect(),
        }));
        let traffic = sc.traffic();
        Ok(Simulator {
            mean_load: sc.mean_load(),
            traffic,
            sc,
            scale,
            t: 0.0,
            advances: 0,
            tenants,
            state,
            files,
            domains,
            index,
            incident_state: IncidentState::Investigating,
            scan_order,
            scan_end,
            scan_tenant: 0,
            scan_local: 0,
            scan_carry: 0.0,
            scanned: 0,
            mailboxes_a,
            files_found: 0,
            last_revision_t: 0.0,
            scope: None,
            queues: Default::default(),
            in_flight: VecDeque::new(),
            concurrency,
            budget_carry: 0.0,
            done_files: 0,
            failed_files: 0,
            attempted_files: 0,
            lost_files: 0,
            restored_mailboxes: 0,
            reindex_rate: RateWindow::new(REINDEX_HISTORY),
            fc: {
                let mut fc = Forecaster::default();
                fc.set_traffic(traffic);
                fc
            },
            rate_stats: RateStats::from_rates(&[]),
            whole_eta: None,
            reindex_done_at: None,
            later_faults_done: 0,
            levels: Default::default(),
            avg_pending_files: 5.5,
            flows: [ClusterFlow::new(), ClusterFlow::new()],
            last_dt: 0.0,
            cfg,
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.cfg.start + Duration::milliseconds((self.t * 1000.0) as i64)
    }

    fn tenant_of(&self, m: u64) -> usize {
        self.tenants.partition_point(|t| t.first + t.count <= m)
    }

    fn mailbox_state(&self, m: u64) -> MailboxState {
        MailboxState::from_u8(self.state[m as usize])
    }

    fn set_state(&mut self, m: u64, s: MailboxState) {
        let ti = self.tenant_of(m);
        self.set_state_of(ti, m, s);
    }

    /// `set_state` when the caller already knows the tenant (saves a binary
    /// search over all tenants per mailbox in bulk changes).
    fn set_state_of(&mut self, ti: usize, m: u64, s: MailboxState) {
        let old = self.mailbox_state(m);
        if old == s {
            return;
        }
        let t = &mut self.tenants[ti];
        // Queued mail follows the mailbox: when it gets service back, its
        // share of the tenant's backlog becomes deliverable.
        if old.is_affected() && !s.is_affected() {
            let affected = t.states.affected().max(1) as f64;
            let share = t.backlog / affected;
            t.backlog -= share;
            t.deliverable += share;
        }
        t.states.sub(old, 1);
        t.states.add(s, 1);
        t.dirty = true;
        self.state[m as usize] = s as u8;
    }

    fn volume(&self, m: u64) -> u64 {
        pick(self.cfg.seed, 17, m, VOLUMES)
    }

    fn enqueue(&mut self, ti: usize, local: u32) {
        let t = &mut self.tenants[ti];
        if t.pending.is_empty() {
            self.queues
                .entry(t.slot())
                .or_default()
                .push_back(ti as u32);
        }
        t.pending.push_back(local);
    }

    /// Next mailbox in reindex order: the highest priority with work,
    /// round-robin between its tenants.
    fn next_pending(&mut self) -> Option<u64> {
        for q in self.queues.values_mut() {
            while let Some(ti) = q.pop_front() {
                let t = &mut self.tenants[ti as usize];
                if let Some(local) = t.pending.pop_front() {
                    if !t.pending.is_empty() {
                        q.push_back(ti);
                    }
                    return Some(t.first + local as u64);
                }
            }
        }
        None
    }

    /// Whether the cluster's reindex has work left (or its scope is not
    /// known yet).
    /// Messages queued for a cluster's tenants (waiting or deliverable).
    fn queued_on(&self, c: usize) -> u64 {
        self.tenants
            .iter()
            .filter(|t| t.cluster == c)
            .map(|t| t.backlog + t.deliverable)
            .sum::<f64>()
            .round() as u64
    }

    /// The share of the faulty cluster's mailboxes the scan has been through.
    fn scanned_share(&self) -> f64 {
        self.scanned as f64 / self.mailboxes_a.max(1) as f64
    }

    /// Mailboxes the scan goes through per second.
    fn scan_rate(&self) -> f64 {
        self.mailboxes_a as f64 / (self.sc.fault.scan_hours * HOUR)
    }

    /// Whether the scan has been through every mailbox of the cluster.
    fn scan_done(&self) -> bool {
        self.scan_tenant >= self.scan_order.len()
    }

    fn reindex_left(&self) -> bool {
        self.scope.is_none() || !self.scan_done() || self.pending_mailboxes() > 0
    }

    fn pending_mailboxes(&self) -> u64 {
        self.tenants
            .iter()
            .map(|t| t.pending.len() as u64)
            .sum::<u64>()
            + self.in_flight.len() as u64
    }
}

/// Round-robin levels (sorted counts and prefix sums) of each slot, in
/// reindex order.
fn levels(slots: impl Iterator<Item = (Slot, Vec<u64>)>) -> BTreeMap<Slot, Level> {
    let mut out = BTreeMap::new();
    let mut before = 0u64;
    for (slot, mut sorted) in slots {
        sorted.sort_unstable();
        let mut prefix = Vec::with_capacity(sorted.len() + 1);
        prefix.push(0);
        let mut acc = 0;
        for c in &sorted {
            acc += c;
            prefix.push(acc);
        }
        out.insert(
            slot,
            Level {
                sorted,
                prefix,
                before,
            },
        );
        before += acc;
    }
    out
}

/// ETAs are quoted to the minute. The p90 is a promise, read as "back
/// by 14:05": a mailbox back at 14:04:20 is back by 14:05, so it is
/// rounded up. The p50 is a median, rounded to the nearest minute: rounded
/// up it was late by half a minute on average, which on an ETA an hour or
/// three away is the whole of its error, and such ETAs held 75-77% of the
/// time where half is meant (60 seeds of the drills: Cluster A after its
/// later fault 75% → 68%, the small fault's reindex 77% → 60%). Finer
/// precision is noise, and rows whose rounded ETA did not move need not be
/// resent.
fn round_eta(eta: EtaRange) -> EtaRange {
    let minute = Duration::minutes(1);
    let up = |t: DateTime<Utc>| {
        let down = t.duration_trunc(minute).unwrap_or(t);
        if down < t { down + minute } else { down }
    };
    let nearest = |t: DateTime<Utc>| t.duration_round(minute).unwrap_or(t);
    EtaRange {
        p50: eta.p50.map(nearest),
        p90: eta.p90.map(up),
        ..eta
    }
}

#[cfg(test)]
mod tests;
