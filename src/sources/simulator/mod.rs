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
pub mod index;
mod names;
pub(crate) mod rng;
pub mod scenario;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};

use super::{LookupAnswer, LookupHit, MailboxQuery, Page, Source, SourceError};
use crate::domain::calibrated::{Class, Forecaster};
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
const CLUSTER_IDS: [&str; 2] = ["a", "b"];
const CLUSTER_NAMES: [&str; 2] = ["Cluster A", "Cluster B"];
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
            cluster_id: CLUSTER_IDS[self.cluster].into(),
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
    /// Queued mail delivered per second after its mailbox came back: its
    /// peak is what the cluster can deliver when it has a backlog.
    backlog_out: RateWindow,
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
            backlog_out: RateWindow::new(REINDEX_HISTORY),
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
        self.before + self.prefix[idx] + k * (self.sorted.len() - idx) as u64
    }
}

pub struct Simulator {
    cfg: SimConfig,
    /// `cfg.scenario`, for short.
    sc: Arc<Scenario>,
    /// Mailboxes simulated ÷ the scenario's own: speeds scale with it.
    scale: f64,
    mean_load: f64,
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
    restored_mailboxes: u64,
    reindex_rate: RateWindow,
    /// The calibrated forecaster of every ETA served.
    fc: Forecaster,
    /// `reindex_stats()` of this tick.
    rate_stats: RateStats,
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
        Ok(Simulator {
            mean_load: sc.mean_load(),
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
            restored_mailboxes: 0,
            reindex_rate: RateWindow::new(REINDEX_HISTORY),
            fc: Forecaster::default(),
            rate_stats: RateStats::from_rates(&[]),
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

    fn scan(&mut self, dt: f64) {
        if self.scan_tenant >= self.scan_order.len() {
            return;
        }
        let rate = self.mailboxes_a as f64 / (self.sc.fault.scan_hours * HOUR);
        self.scan_carry += rate * dt;
        let mut budget = self.scan_carry.floor() as u64;
        self.scan_carry -= budget as f64;
        while budget > 0 && self.scan_tenant < self.scan_order.len() {
            let ti = self.scan_order[self.scan_tenant];
            let (first, count) = (self.tenants[ti].first, self.tenants[ti].count);
            let m = first + self.scan_local;
            if self.mailbox_state(m) == MailboxState::LockedOut {
                self.set_state_of(ti, m, MailboxState::ReindexPending);
                self.files_found += self.files[m as usize] as u64;
                self.enqueue(ti, self.scan_local as u32);
            }
            self.scanned += 1;
            budget -= 1;
            self.scan_local += 1;
            if self.scan_local >= count {
                self.scan_local = 0;
                self.scan_tenant += 1;
            }
        }
        self.revise_scope();
    }

    /// Extrapolates the scope from what the scan found so far; records a
    /// revision when it grows by more than 5% (at most every 30 minutes), and
    /// the exact figure when the scan completes.
    fn revise_scope(&mut self) {
        let now = self.now();
        let done = self.scan_tenant >= self.scan_order.len();
        let fraction = self.scanned as f64 / self.mailboxes_a.max(1) as f64;
        let damaged = self.restored_mailboxes + self.pending_mailboxes();
        let (Some(scope), files_found) = (self.scope.as_mut(), self.files_found) else {
            return;
        };
        let base = scope.current();
        if done {
            let exact = files_found;
            if exact > base {
                scope.revise(
                    now,
                    exact,
                    format!(
                        "scan complete: {} files on {} damaged mailboxes",
                        format::thousands(exact),
                        format::thousands(damaged)
                    ),
                );
            }
            return;
        }
        if fraction < 0.10 || self.t - self.last_revision_t < 1800.0 {
            return;
        }
        let estimate = ((files_found as f64 / fraction) / 1000.0).ceil() as u64 * 1000;
        if estimate as f64 > base as f64 * 1.05 {
            scope.revise(
                now,
                estimate,
                format!(
                    "scan {} done: {} files found so far, more than estimated",
                    format::percent(fraction),
                    format::thousands(files_found)
                ),
            );
            self.last_revision_t = self.t;
        }
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

    fn reindex_left(&self) -> bool {
        self.scope.is_none()
            || self.scan_tenant < self.scan_order.len()
            || self.pending_mailboxes() > 0
    }

    fn pending_mailboxes(&self) -> u64 {
        self.tenants
            .iter()
            .map(|t| t.pending.len() as u64)
            .sum::<u64>()
            + self.in_flight.len() as u64
    }

    fn reindex(&mut self, dt: f64, load: f64) {
        let mut budget =
            self.sc.reindex.files_per_second * self.scale * self.sc.reindex_factor(load) * dt
                + self.budget_carry;
        let mut worked = 0.0;
        loop {
            while self.in_flight.len() < self.concurrency {
                let Some(m) = self.next_pending() else { break };
                let retry = self.mailbox_state(m) == MailboxState::Failed;
                self.set_state(m, MailboxState::Reindexing);
                let remaining = self.files[m as usize] as f64;
                self.in_flight.push_back(InFlight {
                    mailbox: m,
                    remaining,
                    retry,
                });
            }
            let Some(head) = self.in_flight.front_mut() else {
                budget = 0.0;
                break;
            };
            if budget < head.remaining {
                head.remaining -= budget;
                worked += budget;
                budget = 0.0;
                break;
            }
            budget -= head.remaining;
            worked += head.remaining;
            let InFlight {
                mailbox: m, retry, ..
            } = *head;
            self.in_flight.pop_front();
            let files = self.files[m as usize] as u64;
            if retry {
                self.failed_files = self.failed_files.saturating_sub(files);
            }
            // A few mailboxes fail their first reindex (a corrupt transaction
            // log) and wait, marked failed, at the back of their tenant's
            // queue for a retry, which succeeds.
            if !retry && unit(self.cfg.seed, 23, m) < self.sc.fault.reindex_failures {
                self.set_state(m, MailboxState::Failed);
                self.failed_files += files;
                let ti = self.tenant_of(m);
                let local = (m - self.tenants[ti].first) as u32;
                self.enqueue(ti, local);
            } else {
                self.set_state(m, MailboxState::Restored);
                self.done_files += files;
                self.restored_mailboxes += 1;
            }
        }
        self.budget_carry = budget.min(1.0);
        // Idle time (nothing queued) is not a rate: recording zeros would
        // make the next job's forecast say "no progress" for an hour.
        if worked > 0.0 || !self.in_flight.is_empty() {
            self.reindex_rate.record(worked, dt);
            let now = self.now();
            self.fc.record(now, worked, dt);
        }
    }

    /// A later fault (in 2008, a mail-server bug): a share of the mailboxes
    /// restored so far need reindexing again.
    fn later_fault(&mut self, k: usize) {
        self.later_faults_done = k + 1;
        let Some(fault) = self.sc.later_faults.get(k).cloned() else {
            return;
        };
        // New work no rate could foresee: what was promised before it is
        // not a lesson for the forecaster.
        self.fc.forget_open();
        let mut hit = 0u64;
        let mut hit_files = 0u64;
        for &ti in &self.scan_order.clone() {
            let (first, count) = (self.tenants[ti].first, self.tenants[ti].count);
            for m in first..first + count {
                if self.state[m as usize] == MailboxState::Restored as u8
                    && unit(self.cfg.seed, 29 + k as u64 * 1000, m) < fault.restored_share
                {
                    self.set_state_of(ti, m, MailboxState::ReindexPending);
                    self.enqueue(ti, (m - first) as u32);
                    self.restored_mailboxes -= 1;
                    hit += 1;
                    hit_files += self.files[m as usize] as u64;
                }
            }
        }
        let now = self.now();
        if let Some(scope) = self.scope.as_mut() {
            let new = scope.current() + hit_files;
            scope.revise(
                now,
                new,
                format!(
                    "{}: {} mailboxes to reindex again, {} files",
                    fault.reason,
                    format::thousands(hit),
                    format::thousands(hit_files)
                ),
            );
        }
        self.incident_state = IncidentState::Identified;
    }

    /// Inbound mail: arrivals for affected mailboxes are queued; backlog whose
    /// mailboxes are back is delivered at the cluster's spare capacity.
    fn mail_flow(&mut self, dt: f64, load: f64) {
        let per_mailbox = self.sc.mail.messages_per_mailbox_day / 86_400.0 * load / self.mean_load;
        let mut arrived = [0.0f64; 2];
        let mut queued_in = [0.0f64; 2];
        let mut deliverable = [0.0f64; 2];
        for t in &mut self.tenants {
            let a = t.count as f64 * per_mailbox * dt;
            let affected = t.states.affected() as f64;
            arrived[t.cluster] += a;
            let q = a * affected / t.count as f64;
            t.backlog += q;
            queued_in[t.cluster] += q;
            deliverable[t.cluster] += t.deliverable;
        }
        let capacity = self.sc.mail.backlog_delivery_per_second * self.scale * dt;
        let ratio = [
            (capacity / deliverable[0].max(1e-9)).min(1.0),
            (capacity / deliverable[1].max(1e-9)).min(1.0),
        ];
        let mut delivered = [0.0f64; 2];
        for t in &mut self.tenants {
            if t.deliverable > 0.0 {
                let d = if t.deliverable < 0.5 {
                    t.deliverable
                } else {
                    t.deliverable * ratio[t.cluster]
                };
                t.deliverable -= d;
                delivered[t.cluster] += d;
            }
            let q = t.queued();
            let diff = q.abs_diff(t.sent_queued);
            if diff > 0 && (q == 0 || diff >= 5 || diff * 100 >= t.sent_queued) {
                t.dirty = true;
            }
        }
        for c in 0..2 {
            let f = &mut self.flows[c];
            // Mail for mailboxes with service is delivered at once.
            let direct = arrived[c] - queued_in[c];
            f.arrivals.record(arrived[c], dt);
            f.deliveries.record(direct + delivered[c], dt);
            f.drain.record(delivered[c] - queued_in[c], dt);
            if delivered[c] > 0.0 {
                f.backlog_out.record(delivered[c], dt);
            }
            f.arrival_per_sec = f.arrivals.mean();
            f.delivery_per_sec = f.deliveries.mean();
        }
    }

    /// Reindex rate statistics for this tick: p50 from the last hour of
    /// samples, p90 from the last day's.
    fn reindex_stats(&self) -> RateStats {
        let per_hour = (HOUR / self.last_dt.max(1.0)).ceil() as usize;
        let per_day = (per_hour * 24).min(REINDEX_HISTORY);
        RateStats::recent_and_history(
            &self.reindex_rate.latest(per_hour.max(1)),
            &self.reindex_rate.rates(),
            self.reindex_rate.len() >= per_day,
        )
    }

    /// Recomputes every tenant's position in the reindex order and its ETA.
    fn forecast_tenants(&mut self) {
        let now = self.now();
        self.fc.refresh(now, None);
        self.rate_stats = self.reindex_stats();
        let pending_files: u64 = self
            .in_flight
            .iter()
            .map(|f| f.remaining as u64)
            .sum::<u64>()
            + self
                .tenants
                .iter()
                .flat_map(|t| t.pending.iter().map(move |&l| t.first + l as u64))
                .take(10_000)
                .map(|m| self.files[m as usize] as u64)
                .sum::<u64>();
        let sampled = self.in_flight.len() as u64
            + self
                .tenants
                .iter()
                .map(|t| t.pending.len() as u64)
                .sum::<u64>()
                .min(10_000);
        if sampled > 0 {
            self.avg_pending_files = pending_files as f64 / sampled as f64;
        }
        let in_flight_files: f64 = self.in_flight.iter().map(|f| f.remaining).sum();
        let scan_done = self.scan_tenant >= self.scan_order.len();
        let identified = self.scope.is_some();
        self.levels = levels(self.queues.iter().map(|(&slot, q)| {
            let counts = q
                .iter()
                .map(|&ti| self.tenants[ti as usize].pending.len() as u64);
            (slot, counts.collect())
        }));
        let last = self.last_positions();
        // While the scan runs: the order as it will be once every damaged
        // mailbox known to fail its logins has been found.
        let projected = if scan_done || !identified {
            BTreeMap::new()
        } else {
            let mut by_slot: BTreeMap<Slot, Vec<u64>> = BTreeMap::new();
            for t in &self.tenants {
                let k = t.pending.len() as u64 + t.states.get(MailboxState::LockedOut);
                if k > 0 {
                    by_slot.entry(t.slot()).or_default().push(k);
                }
            }
            levels(by_slot.into_iter())
        };
        let scan_rate = self.mailboxes_a as f64 / (self.sc.fault.scan_hours * HOUR);
        // Tenants with a mailbox being reindexed right now: one pass over
        // the workers, not one per tenant (4,096 workers × 100,000 tenants
        // would dominate the tick at scale).
        let mut flying_tenants: Vec<usize> = self
            .in_flight
            .iter()
            .map(|f| self.tenant_of(f.mailbox))
            .collect();
        flying_tenants.sort_unstable();
        for (ti, &last_pos) in last.iter().enumerate() {
            let t = &self.tenants[ti];
            let pending = t.pending.len() as u64;
            let flying = flying_tenants.binary_search(&ti).is_ok();
            let locked = t.states.get(MailboxState::LockedOut);
            let eta_of = |work: f64, scope_known: bool| {
                let class = Class {
                    scope_known,
                    mailboxes: t.states.affected(),
                    whole: false,
                };
                self.eta(work, class, false)
            };
            let (rank, eta, bin) = if !identified && locked > 0 {
                (
                    0,
                    EtaRange::none(NoEstimate::NotIdentified, "not identified yet"),
                    None,
                )
            } else if locked > 0 && !scan_done {
                // Not all found yet: its place once they are, and never
                // before the scan reaches its last mailbox.
                let k = pending + locked;
                let pos = projected.get(&t.slot()).map_or(k, |l| l.position(k));
                let (eta, bin) =
                    eta_of(pos as f64 * self.avg_pending_files + in_flight_files, false);
                let left = self.scan_end[ti].saturating_sub(self.scanned) as f64;
                let reach = now + Duration::seconds((left / scan_rate) as i64);
                let eta = match (eta.p50, eta.p90) {
                    (Some(a), Some(b)) => EtaRange::at(a.max(reach), b.max(reach)),
                    _ => eta,
                };
                (0, eta, bin)
            } else if pending == 0 && !flying {
                (0, EtaRange::unknown(NO_ETA), None)
            } else {
                let pos = last_pos;
                let (eta, bin) = eta_of(
                    pos as f64 * self.avg_pending_files + in_flight_files,
                    scan_done,
                );
                (pos + self.in_flight.len() as u64, eta, bin)
            };
            let eta = round_eta(eta);
            let t = &mut self.tenants[ti];
            if t.eta != eta || t.rank != rank {
                t.dirty = true;
            }
            t.eta = eta;
            t.eta_bin = bin;
            t.rank = rank;
        }
    }

    /// When `work` files will be reindexed: the calibrated range, with a
    /// p90 never earlier than the slow-rate bound (remaining ÷ the slowest
    /// tenth of a day's rates; × (1 + the latest scope growth) while the
    /// scan runs or when `work` is the scope in files, an estimate that may
    /// grow again; once the scan is done a tenant's work is its known
    /// mailboxes): a calibration learns late about long horizons, and the
    /// p90 is the promise. Returns the calibration class used, to check it
    /// later.
    fn eta(&self, work: f64, class: Class, from_scope: bool) -> (EtaRange, Option<usize>) {
        let growth = match &self.scope {
            Some(s) if from_scope || !class.scope_known => s.latest_growth(),
            _ => 0.0,
        };
        let floor = forecast_with(self.now(), work, self.rate_stats, growth);
        self.fc.eta(work, class, &floor)
    }

    /// Per tenant, the place of its last waiting mailbox in the reindex
    /// order (0 when none waits). Within a priority the queue is a
    /// round-robin in a fixed rotation, so a tenant with c mailboxes waiting
    /// is done after everyone's first c − 1 rounds and, in round c, after
    /// the tenants ahead of it in the rotation that still have a c-th.
    fn last_positions(&self) -> Vec<u64> {
        let mut last = vec![0u64; self.tenants.len()];
        for (slot, q) in &self.queues {
            let Some(level) = self.levels.get(slot) else {
                continue;
            };
            // Fenwick tree over the distinct counts: how many tenants seen
            // so far in the rotation have fewer than c waiting.
            let values = &level.sorted;
            let mut tree = vec![0u32; values.len() + 1];
            for (seen, &ti) in q.iter().enumerate() {
                let c = self.tenants[ti as usize].pending.len() as u64;
                if c == 0 {
                    continue;
                }
                let below = values.partition_point(|&v| v < c);
                let mut fewer = 0u32;
                let mut i = below;
                while i > 0 {
                    fewer += tree[i];
                    i &= i - 1;
                }
                let ahead = seen as u64 - fewer as u64;
                last[ti as usize] = level.position(c - 1) + ahead + 1;
                let mut i = below + 1;
                while i < tree.len() {
                    tree[i] += 1;
                    i += i & i.wrapping_neg();
                }
            }
        }
        last
    }

    /// Quotes served to the war room are checked later against what
    /// happened, to calibrate the next ones: every tenant's ETA every
    /// five minutes (a big tenant is one of few; its own lessons count).
    fn register_quotes(&mut self) {
        if !self.fc.quotes_due(self.now()) {
            return;
        }
        for (ti, t) in self.tenants.iter().enumerate() {
            self.fc.quote(ti as u32, t.eta_bin, &t.eta);
        }
        // The cluster's reindex ETA is checked against its own end.
        if let Some(scope) = &self.scope {
            let in_progress = self
                .in_flight
                .iter()
                .map(|f| f.remaining.ceil() as u64)
                .sum();
            let (eta, bin) = self.reindex_eta(self.now(), scope, in_progress);
            self.fc.quote(CLUSTER_KEY, bin, &eta);
        }
    }

    /// Tenants whose last affected mailbox came back this tick settle their
    /// open quotes; quotes whose time passed are misses.
    fn settle_quotes(&mut self) {
        let now = self.now();
        for (ti, t) in self.tenants.iter().enumerate() {
            self.fc.affected(ti as u32, t.states.affected() > 0, now);
        }
        let busy = self.reindex_left();
        self.fc.affected(CLUSTER_KEY, busy, now);
        self.fc.settle(now);
    }

    fn cluster(&self, c: usize) -> Cluster {
        let now = self.now();
        let load = self.sc.load_at(now);
        let (mut mailboxes, mut affected, mut backlog, mut deliverable) = (0u64, 0u64, 0.0, 0.0);
        let mut failed_backlog = 0.0;
        for t in self.tenants.iter().filter(|t| t.cluster == c) {
            mailboxes += t.count;
            let a = t.states.affected();
            affected += a;
            backlog += t.backlog;
            deliverable += t.deliverable;
            if a > 0 {
                failed_backlog += t.backlog * t.states.get(MailboxState::Failed) as f64 / a as f64;
            }
        }
        let f = &self.flows[c];
        // Only mail waiting because of the incident: what the header's
        // "queued, none lost" and the tenants' queued counts add up to.
        let per_minute = self.sc.mail.backlog_delivery_per_second * self.scale * 60.0;
        let active = deliverable.min(per_minute).round() as u64;
        let hold = failed_backlog.round() as u64;
        let deferred = ((backlog + deliverable).round() as u64).saturating_sub(active + hold);
        let depth = active + deferred + hold;
        let reindex = if c == CLUSTER_A {
            self.reindex_summary(now)
        } else {
            Reindex::default()
        };
        let drain_eta = if depth == 0 {
            EtaRange::unknown(NO_ETA)
        } else if affected > 0 {
            // Mail for mailboxes still without service waits for them: the
            // queue is empty when the last of them is back, and not before
            // the whole queue could be delivered at the best rate seen.
            let peak = f.backlog_out.rates().into_iter().fold(0.0, f64::max);
            let floor = (peak > 0.0).then(|| now + Duration::seconds((depth as f64 / peak) as i64));
            if let (Some(p50), Some(p90)) = (reindex.eta.p50, reindex.eta.p90) {
                let at_least = |t: DateTime<Utc>| floor.map_or(t, |f| t.max(f));
                round_eta(EtaRange::at(at_least(p50), at_least(p90)))
            } else if reindex.eta.reason.is_empty() {
                EtaRange::none(
                    NoEstimate::WaitsForRepair,
                    "waits for mailboxes not being reindexed",
                )
            } else {
                EtaRange::none(
                    NoEstimate::WaitsForRepair,
                    format!("waits for the reindex: {}", reindex.eta.reason),
                )
            }
        } else {
            let eta = forecast(now, depth as f64, &f.drain.rates(), 0.0);
            if eta.is_known() {
                round_eta(eta)
            } else {
                EtaRange::unknown("not draining yet")
            }
        };
        let affected_frac = if mailboxes == 0 {
            0.0
        } else {
            affected as f64 / mailboxes as f64
        };
        let reindexing = c == CLUSTER_A && !self.in_flight.is_empty();
        let storage_down = c == CLUSTER_A && self.scope.is_none();
        let mut services = Vec::with_capacity(ServiceRole::ALL.len());
        for role in ServiceRole::ALL {
            // Latency noise changes every 15 ticks: jitter that flips every
            // second tells an operator nothing and costs bandwidth on every
            // console.
            let jitter = unit(self.cfg.seed, 31 + role as u64, self.advances / 15) * 4.0;
            let (status, rate, latency, detail) = match role {
                r if r.has_logins() => {
                    let success = (1.0 - affected_frac).clamp(0.0, 1.0);
                    let latency = 35.0
                        + jitter
                        + if c == CLUSTER_A {
                            400.0 * affected_frac * load
                                + if reindexing { 150.0 * load } else { 0.0 }
                        } else {
                            10.0 * load
                        };
                    let status = if success >= 0.99 {
                        Health::Ok
                    } else if success >= 0.80 {
                        Health::Degraded
                    } else {
                        Health::Down
                    };
                    let detail = if affected > 0 {
                        format!("{} mailboxes cannot log in", format::thousands(affected))
                    } else {
                        String::new()
                    };
                    (status, Some(success), Some(latency), detail)
                }
                ServiceRole::SmtpIn => {
                    let queued = (backlog + deliverable).round() as u64;
                    if queued > 100 {
                        (
                            Health::Degraded,
                            None,
                            Some(60.0 + jitter),
                            format!("accepting; {} queued, none lost", format::thousands(queued)),
                        )
                    } else {
                        (Health::Ok, None, Some(55.0 + jitter), String::new())
                    }
                }
                ServiceRole::SmtpOut => (Health::Ok, None, Some(80.0 + jitter), String::new()),
                ServiceRole::Storage if storage_down => (
                    Health::Down,
                    None,
                    Some(2_500.0 + 100.0 * jitter),
                    "NFS: stale handles on several volumes".into(),
                ),
                ServiceRole::Storage if reindexing => (
                    Health::Degraded,
                    None,
                    Some(20.0 + 60.0 * load + jitter),
                    "reindex I/O load".into(),
                ),
                ServiceRole::Storage => (Health::Ok, None, Some(8.0 + jitter), String::new()),
                // Down: nothing answers, so there is no latency to show
                // (not measured, never "0ms").
                ServiceRole::Index if storage_down => {
                    (Health::Down, None, None, "indexes unavailable".into())
                }
                ServiceRole::Index if affected > 0 => (
                    Health::Degraded,
                    None,
                    Some(15.0 + jitter),
                    format!("{} mailboxes to reindex", format::thousands(affected)),
                ),
                _ => (Health::Ok, None, Some(5.0 + jitter), String::new()),
            };
            services.push(ServiceHealth {
                role,
                status,
                login_success_rate: rate,
                latency_ms: latency.map(f64::round),
                detail,
            });
        }
        let health = services.iter().fold(Health::Ok, |h, s| h.worst(s.status));
        Cluster {
            id: CLUSTER_IDS[c].into(),
            name: CLUSTER_NAMES[c].into(),
            health,
            services,
            queue: Queue {
                depth: Some(QueueDepth {
                    active,
                    deferred,
                    hold,
                }),
                arrival_per_min: Some(f.arrival_per_sec * 60.0),
                delivery_per_min: Some(f.delivery_per_sec * 60.0),
                unknown: String::new(),
                // The model queues every message it accepts until its
                // mailbox is back: by construction nothing is lost.
                lost: Some(0),
                // Every simulated recipient belongs to a tenant.
                unmapped: Some(0),
                stale: String::new(),
                drain_eta,
                depth_history: f.depth_history.iter().copied().collect(),
                history_step_seconds: (self.last_dt * HISTORY_EVERY as f64).round() as u32,
            },
            reindex,
            mailboxes,
            affected_mailboxes: affected,
            sweep: None,
        }
    }

    /// The cluster's reindex ETA, and the calibration bin it used.
    fn reindex_eta(
        &self,
        now: DateTime<Utc>,
        scope: &ScopeTracker,
        in_progress: u64,
    ) -> (EtaRange, Option<usize>) {
        let remaining = scope.current().saturating_sub(self.done_files) as f64;
        let scan_done = self.scan_tenant >= self.scan_order.len();
        if remaining <= 0.0 && self.in_flight.is_empty() && scan_done {
            (EtaRange::unknown(NO_ETA), None)
        } else {
            // What the scope says is left, or what the mailboxes known to
            // fail their logins add up to, whichever is more.
            let mailboxes: u64 = self.tenants.iter().map(|t| t.states.affected()).sum();
            let by_mailbox = mailboxes as f64 * self.avg_pending_files;
            let work = remaining.max(in_progress as f64).max(by_mailbox);
            let class = Class {
                scope_known: scan_done,
                mailboxes,
                whole: true,
            };
            let (eta, bin) = self.eta(work, class, true);
            // Never before the scan has found everything.
            let left = self.mailboxes_a.saturating_sub(self.scanned) as f64;
            let scan_rate = self.mailboxes_a as f64 / (self.sc.fault.scan_hours * HOUR);
            let reach = now + Duration::seconds((left / scan_rate) as i64);
            let eta = round_eta(match (eta.p50, eta.p90) {
                (Some(a), Some(b)) => EtaRange::at(a.max(reach), b.max(reach)),
                _ => eta,
            });
            (eta, bin)
        }
    }

    fn reindex_summary(&self, now: DateTime<Utc>) -> Reindex {
        let Some(scope) = &self.scope else {
            return Reindex {
                eta: EtaRange::none(NoEstimate::NotIdentified, "not identified yet"),
                ..Default::default()
            };
        };
        let in_progress: u64 = self
            .in_flight
            .iter()
            .map(|f| f.remaining.ceil() as u64)
            .sum();
        let (eta, _) = self.reindex_eta(now, scope, in_progress);
        Reindex {
            unit: ScopeUnit::Files,
            scope: scope.current().max(self.done_files),
            done: self.done_files,
            failed: self.failed_files,
            in_progress,
            rate_per_min: self.reindex_stats().median.map(|r| r * 60.0),
            eta,
            revisions: scope.revisions().to_vec(),
            mailboxes_pending: self.pending_mailboxes(),
            mailboxes_restored: self.restored_mailboxes,
            finished_at: self.reindex_done_at,
            eta_history: Vec::new(),
        }
    }

    fn address(&self, ti: usize, local: u64) -> String {
        let t = &self.tenants[ti];
        let d = (local % t.domains as u64) as u32;
        let k = local / t.domains as u64;
        format!("{}@{}", names::local_part(k), t.domain(d))
    }

    /// 1-based position of a mailbox in the reindex order (0 = not queued).
    fn position(&self, m: u64) -> u64 {
        if let Some(i) = self.in_flight.iter().position(|f| f.mailbox == m) {
            return i as u64 + 1;
        }
        let ti = self.tenant_of(m);
        let t = &self.tenants[ti];
        let local = (m - t.first) as u32;
        match t.pending.iter().position(|&l| l == local) {
            Some(k) => self.in_flight.len() as u64 + self.level_position(t.slot(), k as u64 + 1),
            None => 0,
        }
    }

    fn mailbox_row(&self, m: u64) -> MailboxRow {
        let ti = self.tenant_of(m);
        let t = &self.tenants[ti];
        let state = self.mailbox_state(m);
        let position = self.position(m);
        let eta = match state {
            MailboxState::Ok | MailboxState::Restored => EtaRange::unknown(NO_ETA),
            MailboxState::LockedOut => t.eta.clone(),
            _ => {
                let scan_done = self.scan_tenant >= self.scan_order.len();
                let work = position as f64 * self.avg_pending_files;
                let class = Class {
                    scope_known: scan_done,
                    mailboxes: 1,
                    whole: false,
                };
                round_eta(self.eta(work, class, false).0)
            }
        };
        let affected = t.states.affected();
        let queued = if state.is_affected() && affected > 0 {
            // Spread the tenant's backlog over its affected mailboxes, with a
            // deterministic per-mailbox weight (0.5x .. 1.5x).
            let w = 0.5 + unit(self.cfg.seed, 37, m);
            (t.backlog / affected as f64 * w).round() as u64
        } else {
            0
        };
        let last_error = match state {
            MailboxState::LockedOut | MailboxState::ReindexPending => {
                "IMAP login failed: mailbox index unavailable (NFS stale file handle)".into()
            }
            MailboxState::Failed => {
                "reindex failed: corrupted transaction log; retry queued".into()
            }
            _ => String::new(),
        };
        MailboxRow {
            address: self.address(ti, m - t.first),
            tenant_id: t.id.to_string(),
            cluster_id: CLUSTER_IDS[t.cluster].into(),
            volume: format!("{}-vol{:02}", CLUSTER_IDS[t.cluster], self.volume(m)),
            state: Some(state),
            reindex_position: position,
            eta,
            queued_messages: Some(queued),
            last_error,
        }
    }

    fn level_position(&self, slot: Slot, k: u64) -> u64 {
        self.levels.get(&slot).map_or(0, |l| l.position(k))
    }

    /// The mailbox number of a mailbox the lookup index found.
    fn found_mailbox(&self, m: index::Mailbox) -> Option<u64> {
        let t = self.tenants.get(m.tenant as usize)?;
        let j =
            m.k.checked_mul(t.domains as u64)?
                .checked_add(m.domain as u64)?;
        (j < t.count).then_some(t.first + j)
    }

    /// Whether a lookup match has mailboxes without service: the mailbox
    /// itself, or the tenant (of a domain: its tenant, whose figures the
    /// answer gives).
    fn found_affected(&self, f: &index::Found) -> bool {
        let tenant_affected = |ti: u32| {
            self.tenants
                .get(ti as usize)
                .is_some_and(|t| t.states.affected() > 0)
        };
        match f {
            index::Found::Mailbox(m) => self
                .found_mailbox(*m)
                .is_some_and(|m| self.mailbox_state(m).is_affected()),
            index::Found::Domain { tenant, .. } => tenant_affected(*tenant),
            index::Found::Tenant(ti) => tenant_affected(*ti),
        }
    }

    fn tenant_index(&self, id: &str) -> Option<usize> {
        let n: usize = id.strip_prefix('t')?.parse().ok()?;
        (n < self.tenants.len() && *self.tenants[n].id == *id).then_some(n)
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

/// ETAs are quoted to the minute: finer precision is noise, and rows whose
/// rounded ETA did not move need not be resent.
fn round_eta(eta: EtaRange) -> EtaRange {
    let r = |t: DateTime<Utc>| t.duration_round(Duration::minutes(1)).unwrap_or(t);
    EtaRange {
        p50: eta.p50.map(r),
        p90: eta.p90.map(r),
        ..eta
    }
}

impl Source for Simulator {
    fn now(&self) -> DateTime<Utc> {
        Simulator::now(self)
    }

    fn advance(&mut self, dt: f64) {
        let dt = if dt.is_finite() {
            dt.clamp(0.0, 86_400.0)
        } else {
            0.0
        };
        self.advances += 1;
        self.last_dt = dt;
        for t in &mut self.tenants {
            t.dirty = false;
        }
        self.t += dt;
        let now = self.now();
        let load = self.sc.load_at(now);
        if self.scope.is_none() && self.t >= self.sc.fault.identified_after_hours * HOUR {
            let initial = (self.sc.fault.initial_scope_files * self.scale).round() as u64;
            self.scope = Some(ScopeTracker::new(
                now,
                initial,
                format!(
                    "initial analysis: about {} files need reindexing",
                    format::thousands(initial)
                ),
            ));
            self.last_revision_t = self.t;
            self.incident_state = IncidentState::Identified;
        }
        if self.scope.is_some() {
            self.scan(dt);
            self.reindex(dt, load);
        }
        while let Some(f) = self.sc.later_faults.get(self.later_faults_done)
            && self.t >= f.after_hours * HOUR
        {
            self.later_fault(self.later_faults_done);
        }
        self.mail_flow(dt, load);
        self.settle_quotes();
        self.reindex_done_at = if self.reindex_left() {
            None
        } else {
            self.reindex_done_at.or(Some(now))
        };
        self.forecast_tenants();
        self.register_quotes();
        let all_back = self.tenants.iter().all(|t| t.states.affected() == 0);
        if all_back && self.scope.is_some() {
            let queued: f64 = self.tenants.iter().map(|t| t.backlog + t.deliverable).sum();
            self.incident_state = if queued < 1.0 {
                IncidentState::Resolved
            } else {
                IncidentState::Monitoring
            };
        }
        // One sparkline sample every HISTORY_EVERY ticks: a graph that shifts
        // every second repaints itself on every console every second.
        let sample = (self.advances - 1).is_multiple_of(HISTORY_EVERY);
        for c in [CLUSTER_A, CLUSTER_B].into_iter().filter(|_| sample) {
            let depth = self.queued_on(c);
            let h = &mut self.flows[c].depth_history;
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(depth);
        }
        // What watchers now hold, to judge next tick's queued change.
        for t in self.tenants.iter_mut().filter(|t| t.dirty) {
            t.sent_queued = t.queued();
        }
    }

    fn advances(&self) -> u64 {
        self.advances
    }

    fn set_priority(&mut self, d: Arc<PriorityDecision>) -> Result<(), SourceError> {
        let ti = self
            .tenant_index(&d.tenant_id)
            .ok_or_else(|| SourceError::UnknownTenant(d.tenant_id.clone()))?;
        // Rows changed by the last tick have been sent: from here on `dirty`
        // marks what this decision changes.
        for t in &mut self.tenants {
            t.dirty = false;
        }
        let t = &mut self.tenants[ti];
        let old = t.slot();
        t.priority = d.priority;
        t.priority_rank = d.rank;
        t.priority_set = Some(d);
        t.dirty = true;
        let new = t.slot();
        if old != new && !t.pending.is_empty() {
            if let Some(q) = self.queues.get_mut(&old) {
                q.retain(|&x| x as usize != ti);
            }
            self.queues.entry(new).or_default().push_back(ti as u32);
        }
        self.queues.retain(|_, q| !q.is_empty());
        // Every tenant's place in the order may have moved: recompute now,
        // not at the next tick, so every console sees the effect at once.
        self.forecast_tenants();
        Ok(())
    }

    fn overview(&self) -> Overview {
        let now = self.now();
        let clusters = vec![self.cluster(CLUSTER_A), self.cluster(CLUSTER_B)];
        let mut totals = Totals {
            tenants: self.tenants.len() as u64,
            queued_messages: Some(0),
            ..Default::default()
        };
        for t in &self.tenants {
            let a = t.states.affected();
            totals.mailboxes += t.count;
            totals.affected_mailboxes += a;
            totals.affected_tenants += (a > 0) as u64;
            totals.restored_mailboxes += t.states.get(MailboxState::Restored);
            totals.queued_messages = totals.queued_messages.map(|q| q + t.queued());
        }
        Overview {
            incident: Incident {
                title: self.sc.title.clone(),
                started_at: Some(self.cfg.start),
                state: self.incident_state,
                now: Some(now),
                speed: 1.0,
            },
            sources: vec![SourceStatus {
                name: "simulator".into(),
                simulated: true,
                health: Health::Ok,
                message: format!(
                    "{}, seed {}, {} tenants, {} mailboxes",
                    self.sc.name,
                    self.cfg.seed,
                    format::thousands(self.tenants.len() as u64),
                    format::thousands(self.state.len() as u64)
                ),
                last_success: Some(now),
            }],
            clusters,
            totals,
        }
    }

    fn tenants(&self) -> Vec<TenantRow> {
        self.tenants.iter().map(Tenant::row).collect()
    }

    fn tenant(&self, id: &str) -> Option<TenantRow> {
        self.tenant_index(id).map(|i| self.tenants[i].row())
    }

    /// The NOC of each tenant, and an IT manager for the larger ones.
    fn contacts(&self, tenant_id: &str) -> Vec<String> {
        let Some(t) = self.tenant_index(tenant_id).map(|i| &self.tenants[i]) else {
            return Vec::new();
        };
        let mut c = vec![format!("noc@{}", t.primary)];
        if &*t.tier != "small" {
            c.push(format!("it-manager@{}", t.primary));
        }
        c
    }

    fn changed_tenants(&self) -> Vec<TenantRow> {
        self.tenants
            .iter()
            .filter(|t| t.dirty)
            .map(Tenant::row)
            .collect()
    }

    fn mailboxes(&self, q: &MailboxQuery) -> Result<Page<MailboxRow>, SourceError> {
        let ti = self
            .tenant_index(&q.tenant_id)
            .ok_or_else(|| SourceError::UnknownTenant(q.tenant_id.clone()))?;
        let t = &self.tenants[ti];
        let wanted = |s: MailboxState| {
            if q.states.is_empty() {
                s != MailboxState::Ok
            } else {
                q.states.contains(&s)
            }
        };
        let range = t.first..t.first + t.count;
        let mut ids: Vec<u64> = if q.sort_by_eta {
            // Reindex order: in flight, then the tenant's queue, then the rest
            // (locked out and not yet scanned, restored) by address order.
            let mut v: Vec<u64> = self
                .in_flight
                .iter()
                .map(|f| f.mailbox)
                .filter(|m| range.contains(m))
                .collect();
            v.extend(t.pending.iter().map(|&l| t.first + l as u64));
            v.extend(range.clone().filter(|&m| {
                !matches!(
                    self.mailbox_state(m),
                    MailboxState::Reindexing | MailboxState::ReindexPending | MailboxState::Failed
                )
            }));
            v
        } else {
            // Addresses never change: sort them once per tenant, on the
            // first request (115 ms for a 330k-mailbox tenant), then every
            // page is a filter over that order.
            let order = t.address_order.get_or_init(|| {
                let mut keyed: Vec<(String, u32)> = (0..t.count)
                    .map(|l| (self.address(ti, l), l as u32))
                    .collect();
                keyed.sort_unstable();
                keyed.into_iter().map(|(_, l)| l).collect()
            });
            order.iter().map(|&l| t.first + l as u64).collect()
        };
        ids.retain(|&m| wanted(self.mailbox_state(m)));
        let total = ids.len();
        let rows = ids
            .into_iter()
            .skip(q.offset)
            .take(q.limit)
            .map(|m| self.mailbox_row(m))
            .collect();
        Ok(Page { rows, total })
    }

    fn lookup(&self, query: &str, limit: usize) -> LookupAnswer {
        let q = query.trim().to_lowercase();
        if q.is_empty() || limit == 0 {
            return LookupAnswer::default();
        }
        // An exact address, domain or tenant id is an answer, not a search.
        if let Some((local, domain)) = q.rsplit_once('@')
            && let Some(&(ti, d)) = self.domains.get(domain)
            && let Some(k) = names::parse_local_part(local)
        {
            let t = &self.tenants[ti as usize];
            let j = k
                .checked_mul(t.domains as u64)
                .and_then(|x| x.checked_add(d as u64));
            if let Some(j) = j.filter(|&j| j < t.count) {
                return LookupAnswer::exact(LookupHit::Mailbox(self.mailbox_row(t.first + j)));
            }
        }
        if let Some(&(ti, _)) = self.domains.get(&q) {
            return LookupAnswer::exact(LookupHit::Domain {
                domain: q,
                tenant: self.tenants[ti as usize].row(),
            });
        }
        if let Some(ti) = self.tenant_index(&q) {
            return LookupAnswer::exact(LookupHit::Tenant(self.tenants[ti].row()));
        }
        // Otherwise prefixes, then misspellings (see index.rs and src/lookup),
        // those with affected mailboxes first; rows only for the page.
        let found = self
            .index
            .lookup(&q, limit, |f| self.found_affected(f))
            .filter_map(|found| match found {
                index::Found::Mailbox(m) => {
                    Some(LookupHit::Mailbox(self.mailbox_row(self.found_mailbox(m)?)))
                }
                index::Found::Domain { tenant, domain } => Some(LookupHit::Domain {
                    domain,
                    tenant: self.tenants.get(tenant as usize)?.row(),
                }),
                index::Found::Tenant(ti) => {
                    Some(LookupHit::Tenant(self.tenants.get(ti as usize)?.row()))
                }
            });
        found.into()
    }
}

#[cfg(test)]
mod tests;
