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

pub mod index;
mod names;
pub(crate) mod rng;
pub mod scenario;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};

use super::{LookupAnswer, LookupHit, LookupMatch, MailboxQuery, Page, Source, SourceError};
use crate::domain::forecast::{EtaRange, RateStats, RateWindow, forecast, forecast_with};
use crate::domain::priority::PriorityDecision;
use crate::domain::scope::ScopeTracker;
use crate::domain::*;
use rng::{Rng, pick, unit};
use scenario::*;

/// How big an incident to simulate, and from which seed.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub tenants: u32,
    pub mailboxes: u64,
    pub start: DateTime<Utc>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 2008,
            tenants: 2_000,
            mailboxes: 50_000,
            start: default_start(),
        }
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
const CLUSTER_B: usize = 1;
const CLUSTER_IDS: [&str; 2] = ["a", "b"];
const CLUSTER_NAMES: [&str; 2] = ["Cluster A", "Cluster B"];
const NO_ETA: &str = "";

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
        self.before + self.prefix[idx] + k * (self.sorted.len() - idx) as u64
    }
}

pub struct Simulator {
    cfg: SimConfig,
    scale: f64,
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
    second_fault_done: bool,
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
        let scale = cfg.mailboxes as f64 / DEFAULT_MAILBOXES;

        // Long-tailed sizes: Pareto weights (α ≈ 1.16, the 80/20 rule),
        // capped so no single tenant swallows a small simulation.
        let mut weights: Vec<f64> = (0..n)
            .map(|_| (1.0 - rng.f64()).powf(-1.0 / 1.16).min(2_000.0))
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
            let cluster = if i < 2 || pick(seed, 7, i64_, 100) < 55 {
                CLUSTER_A
            } else {
                CLUSTER_B
            };
            let share = match i {
                0 => 0.82,
                1 => 0.95,
                _ if cluster == CLUSTER_B => 0.0,
                _ => {
                    let r = rng.f64();
                    if r < 0.40 {
                        0.0
                    } else if r < 0.60 {
                        rng.range(0.65, 0.9)
                    } else {
                        rng.range(0.05, 0.6)
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
                files.push(1 + pick(seed, 13, m, 10) as u8);
            }
            first += count;
            tenants.push(t);
        }
        let scan_order: Vec<usize> = (0..n)
            .filter(|&i| tenants[i].cluster == CLUSTER_A)
            .collect();
        let mailboxes_a = scan_order.iter().map(|&i| tenants[i].count).sum();
        let concurrency = (CONCURRENCY * scale).clamp(CONCURRENCY, 4096.0) as usize;
        let index = index::LookupIndex::build(tenants.iter().map(|t| index::Entry {
            name: &t.name,
            mailboxes: t.count,
            domains: (0..t.domains).map(|d| t.domain(d)).collect(),
        }));
        Ok(Simulator {
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
            second_fault_done: false,
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
        let rate = self.mailboxes_a as f64 / SCAN_SECONDS;
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

    fn pending_mailboxes(&self) -> u64 {
        self.tenants
            .iter()
            .map(|t| t.pending.len() as u64)
            .sum::<u64>()
            + self.in_flight.len() as u64
    }

    fn reindex(&mut self, dt: f64, load: f64) {
        let mut budget =
            REINDEX_FILES_PER_SEC * self.scale * reindex_factor(load) * dt + self.budget_carry;
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
            if !retry && unit(self.cfg.seed, 23, m) < 0.004 {
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
        }
    }

    /// The mail-server bug: mailboxes reindexed on every third volume of
    /// cluster A need reindexing again.
    fn second_fault(&mut self) {
        self.second_fault_done = true;
        let mut hit = 0u64;
        let mut hit_files = 0u64;
        for &ti in &self.scan_order.clone() {
            let (first, count) = (self.tenants[ti].first, self.tenants[ti].count);
            for m in first..first + count {
                if self.state[m as usize] == MailboxState::Restored as u8
                    && self.volume(m) % 3 == 1
                    && unit(self.cfg.seed, 29, m) < 0.8
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
                    "mail-server bug: reindex of {} mailboxes ineffective, redo {} files",
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
        let per_mailbox = MESSAGES_PER_MAILBOX_DAY / 86_400.0 * load / MEAN_LOAD;
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
        let capacity = BACKLOG_DELIVERY_PER_SEC * self.scale * dt;
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
        let stats = self.reindex_stats();
        let growth = self.scope.as_ref().map_or(0.0, |s| s.latest_growth());
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
        let mut before = 0u64;
        self.levels.clear();
        for (&slot, q) in &self.queues {
            let mut sorted: Vec<u64> = q
                .iter()
                .map(|&ti| self.tenants[ti as usize].pending.len() as u64)
                .collect();
            sorted.sort_unstable();
            let mut prefix = Vec::with_capacity(sorted.len() + 1);
            prefix.push(0);
            let mut acc = 0;
            for c in &sorted {
                acc += c;
                prefix.push(acc);
            }
            self.levels.insert(
                slot,
                Level {
                    sorted,
                    prefix,
                    before,
                },
            );
            before += acc;
        }
        let scan_done = self.scan_tenant >= self.scan_order.len();
        let identified = self.scope.is_some();
        // Tenants with a mailbox being reindexed right now: one pass over
        // the workers, not one per tenant (4,096 workers × 100,000 tenants
        // would dominate the tick at scale).
        let mut flying_tenants: Vec<usize> = self
            .in_flight
            .iter()
            .map(|f| self.tenant_of(f.mailbox))
            .collect();
        flying_tenants.sort_unstable();
        for ti in 0..self.tenants.len() {
            let t = &self.tenants[ti];
            let pending = t.pending.len() as u64;
            let flying = flying_tenants.binary_search(&ti).is_ok();
            let locked = t.states.get(MailboxState::LockedOut);
            let (rank, eta) = if !identified && locked > 0 {
                (0, EtaRange::unknown("not identified yet"))
            } else if locked > 0 && !scan_done {
                (
                    0,
                    EtaRange::unknown(format!("{} not scanned yet", format::thousands(locked))),
                )
            } else if pending == 0 && !flying {
                (0, EtaRange::unknown(NO_ETA))
            } else {
                let pos = if pending > 0 {
                    self.level_position(t.slot(), pending)
                } else {
                    0
                };
                let remaining = pos as f64 * self.avg_pending_files + in_flight_files;
                let eta = forecast_with(now, remaining, stats, growth);
                (pos + self.in_flight.len() as u64, round_eta(eta))
            };
            let t = &mut self.tenants[ti];
            if t.eta != eta || t.rank != rank {
                t.dirty = true;
            }
            t.eta = eta;
            t.rank = rank;
        }
    }

    fn cluster(&self, c: usize) -> Cluster {
        let now = self.now();
        let load = load(now);
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
        let active = (deliverable.min(BACKLOG_DELIVERY_PER_SEC * self.scale * 60.0)).round() as u64;
        let hold = failed_backlog.round() as u64;
        let deferred = ((backlog + deliverable).round() as u64).saturating_sub(active + hold);
        let depth = active + deferred + hold;
        let drain_eta = if depth == 0 {
            EtaRange::unknown(NO_ETA)
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
                    (status, Some(success), latency, detail)
                }
                ServiceRole::SmtpIn => {
                    let queued = (backlog + deliverable).round() as u64;
                    if queued > 100 {
                        (
                            Health::Degraded,
                            None,
                            60.0 + jitter,
                            format!("accepting; {} queued, none lost", format::thousands(queued)),
                        )
                    } else {
                        (Health::Ok, None, 55.0 + jitter, String::new())
                    }
                }
                ServiceRole::SmtpOut => (Health::Ok, None, 80.0 + jitter, String::new()),
                ServiceRole::Storage if storage_down => (
                    Health::Down,
                    None,
                    2_500.0 + 100.0 * jitter,
                    "NFS: stale handles on several volumes".into(),
                ),
                ServiceRole::Storage if reindexing => (
                    Health::Degraded,
                    None,
                    20.0 + 60.0 * load + jitter,
                    "reindex I/O load".into(),
                ),
                ServiceRole::Storage => (Health::Ok, None, 8.0 + jitter, String::new()),
                ServiceRole::Index if storage_down => {
                    (Health::Down, None, 0.0, "indexes unavailable".into())
                }
                ServiceRole::Index if affected > 0 => (
                    Health::Degraded,
                    None,
                    15.0 + jitter,
                    format!("{} mailboxes to reindex", format::thousands(affected)),
                ),
                _ => (Health::Ok, None, 5.0 + jitter, String::new()),
            };
            services.push(ServiceHealth {
                role,
                status,
                login_success_rate: rate,
                latency_ms: Some(latency.round()),
                detail,
            });
        }
        let health = services.iter().fold(Health::Ok, |h, s| h.worst(s.status));
        let reindex = if c == CLUSTER_A {
            self.reindex_summary(now)
        } else {
            Reindex::default()
        };
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

    fn reindex_summary(&self, now: DateTime<Utc>) -> Reindex {
        let Some(scope) = &self.scope else {
            return Reindex {
                eta: EtaRange::unknown("not identified yet"),
                ..Default::default()
            };
        };
        let in_progress: u64 = self
            .in_flight
            .iter()
            .map(|f| f.remaining.ceil() as u64)
            .sum();
        let remaining = scope.current().saturating_sub(self.done_files) as f64;
        let eta = if remaining <= 0.0 && self.in_flight.is_empty() {
            EtaRange::unknown(NO_ETA)
        } else {
            round_eta(forecast_with(
                now,
                remaining.max(in_progress as f64),
                self.reindex_stats(),
                scope.latest_growth(),
            ))
        };
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
        let now = self.now();
        let position = self.position(m);
        let eta = match state {
            MailboxState::Ok | MailboxState::Restored => EtaRange::unknown(NO_ETA),
            MailboxState::LockedOut => t.eta.clone(),
            _ => {
                let growth = self.scope.as_ref().map_or(0.0, |s| s.latest_growth());
                round_eta(forecast_with(
                    now,
                    position as f64 * self.avg_pending_files,
                    self.reindex_stats(),
                    growth,
                ))
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

/// ETAs are quoted to the minute: finer precision is noise, and rows whose
/// rounded ETA did not move need not be resent.
fn round_eta(eta: EtaRange) -> EtaRange {
    let r = |t: DateTime<Utc>| t.duration_round(Duration::minutes(1)).unwrap_or(t);
    EtaRange {
        p50: eta.p50.map(r),
        p90: eta.p90.map(r),
        reason: eta.reason,
    }
}

impl Source for Simulator {
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
        let load = load(now);
        if self.scope.is_none() && self.t >= IDENTIFIED_AT {
            let initial = (INITIAL_SCOPE_FILES * self.scale).round() as u64;
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
        if !self.second_fault_done && self.t >= SECOND_FAULT_AT {
            self.second_fault();
        }
        self.mail_flow(dt, load);
        self.forecast_tenants();
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
            let depth: f64 = self
                .tenants
                .iter()
                .filter(|t| t.cluster == c)
                .map(|t| t.backlog + t.deliverable)
                .sum();
            let h = &mut self.flows[c].depth_history;
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(depth.round() as u64);
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
                title: "Cluster A: mailbox access failures (storage/NFS fault)".into(),
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
                    "seed {}, {} tenants, {} mailboxes",
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
        LookupAnswer {
            matches: found
                .hits
                .into_iter()
                .map(|(hit, quality)| LookupMatch { hit, quality })
                .collect(),
            total: found.total,
            total_is_lower_bound: found.total_is_lower_bound,
        }
    }
}

#[cfg(test)]
mod tests;
