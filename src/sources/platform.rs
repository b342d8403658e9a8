//! A real mail platform as a source: Dovecot (tenants' mailboxes from the
//! userdb, health probes, the reindex), Postfix (the inbound queue per
//! tenant) and Prometheus (queue depth and targets up), with tenants mapped
//! from recipient domains in the gateway's config.
//!
//! Backends are polled by a background task, never by the hub's tick: a
//! slow or dead backend makes its part of the picture stale and says so in
//! the source's status, it never stalls every console. `advance` only reads
//! what the poller last saw.
//!
//! Damage is found by probing mailboxes a few at a time (probing all at once
//! is itself a reindex storm) and repaired by the `Reindexer` in the war
//! room's priority order, with bounded concurrency that backs off when
//! Dovecot slows down, and that waits through a Dovecot outage.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::dovecot::{DoveError, Doveadm};
use super::postfix::{self, Postqueue, QueueCounts};
use super::prometheus::{Prometheus, queries};
use super::reindex::{Limits, Reindexer, Repairer};
use super::{LookupHit, MailboxQuery, Page, Source, SourceError};
use crate::domain::forecast::{EtaRange, RateWindow, forecast};
use crate::domain::priority::PriorityDecision;
use crate::domain::*;

/// One tenant of the platform, from the gateway's config.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSpec {
    pub id: String,
    pub name: String,
    /// Recipient domains; a mailbox belongs to the tenant of its domain.
    pub domains: Vec<String>,
    /// Emergency contacts for tenant notices.
    pub contacts: Vec<String>,
}

pub struct DovecotSpec {
    pub client: Doveadm,
    /// Mailboxes probed per poll (the rest wait for later polls).
    pub probes_per_poll: usize,
    pub limits: Limits,
}

pub struct PlatformConfig {
    /// What the console calls this platform ("Production", "Cluster A").
    pub name: String,
    pub tenants: Vec<TenantSpec>,
    pub dovecot: Option<DovecotSpec>,
    pub postqueue: Option<Postqueue>,
    pub prometheus: Option<Prometheus>,
    pub poll: Duration,
}

/// What one backend last said.
#[derive(Debug, Clone, Default)]
struct BackendState {
    health: Health,
    message: String,
    last_success: Option<DateTime<Utc>>,
}

impl BackendState {
    fn ok(&mut self, message: String) {
        self.health = Health::Ok;
        self.message = message;
        self.last_success = Some(Utc::now());
    }
    fn down(&mut self, message: String) {
        self.health = Health::Down;
        self.message = message;
    }
}

/// What the poller has seen, shared with `advance`.
#[derive(Default)]
struct Seen {
    /// Users per tenant index, sorted.
    users: Vec<Vec<String>>,
    /// Damaged users found by probes, with why, in the order found.
    damaged: Vec<(String, String)>,
    damaged_set: HashSet<String>,
    probe_cursor: usize,
    /// Messages queued per recipient domain (Postfix).
    queued_per_domain: BTreeMap<String, u64>,
    queue: Option<QueueCounts>,
    targets_up: Option<(u64, u64)>,
    dovecot: BackendState,
    postfix: BackendState,
    prometheus: BackendState,
    first_damage: Option<DateTime<Utc>>,
    probe_latency_ms: f64,
    /// (priority, explicit rank) per tenant index: the reindex order.
    priorities: Vec<(Priority, u32)>,
}

/// `users` in the war room's order: priority, explicit rank, then as given.
fn reindex_order(
    domain_to_tenant: &HashMap<String, usize>,
    priorities: &[(Priority, u32)],
    users: &[String],
) -> Vec<String> {
    let mut v: Vec<((Priority, u32), usize, &String)> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let t = postfix::recipient_domain(u).and_then(|d| domain_to_tenant.get(&d).copied());
            let (p, r) = t
                .and_then(|t| priorities.get(t).copied())
                .unwrap_or((Priority::P3, 0));
            (crate::domain::priority::order_key(p, r), i, u)
        })
        .collect();
    v.sort();
    v.into_iter().map(|x| x.2.clone()).collect()
}

pub struct PlatformSource {
    name: String,
    tenants: Vec<TenantSpec>,
    domain_to_tenant: HashMap<String, usize>,
    seen: Arc<Mutex<Seen>>,
    reindexer: Option<Arc<Reindexer>>,
    configured: [bool; 3],
    priorities: Vec<(Priority, u32, Option<Arc<PriorityDecision>>)>,
    // Computed by `advance`.
    rows: Vec<TenantRow>,
    changed: Vec<usize>,
    states: HashMap<String, MailboxState>,
    overview: Overview,
    advances: u64,
    repaired_rate: RateWindow,
    last_done: usize,
    depth_history: VecDeque<u64>,
    poller: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for PlatformSource {
    fn drop(&mut self) {
        if let Some(p) = self.poller.take() {
            p.abort();
        }
        if let Some(r) = &self.reindexer {
            r.stop();
        }
    }
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|e| e.into_inner())
}

impl PlatformSource {
    /// Starts polling on `runtime` at once. Tenants need unique ids and
    /// domains.
    pub fn start(cfg: PlatformConfig, runtime: &tokio::runtime::Handle) -> Result<Self, String> {
        let mut domain_to_tenant = HashMap::new();
        let mut ids = HashSet::new();
        for (i, t) in cfg.tenants.iter().enumerate() {
            if t.id.trim().is_empty() || !ids.insert(t.id.clone()) {
                return Err(format!("tenant id {:?} is empty or given twice", t.id));
            }
            for d in &t.domains {
                if let Some(j) = domain_to_tenant.insert(d.to_lowercase(), i) {
                    return Err(format!(
                        "domain {d:?} belongs to two tenants: {} and {}",
                        cfg.tenants[j].id, t.id
                    ));
                }
            }
        }
        let seen = Arc::new(Mutex::new(Seen {
            users: vec![Vec::new(); cfg.tenants.len()],
            priorities: vec![(Priority::P2, 0); cfg.tenants.len()],
            ..Seen::default()
        }));
        let configured = [
            cfg.dovecot.is_some(),
            cfg.postqueue.is_some(),
            cfg.prometheus.is_some(),
        ];
        let reindexer = cfg
            .dovecot
            .as_ref()
            .map(|d| Arc::new(Reindexer::new(d.limits.clone())));
        let poller = Poller {
            tenants: cfg.tenants.clone(),
            domain_to_tenant: domain_to_tenant.clone(),
            seen: seen.clone(),
            dovecot: cfg
                .dovecot
                .map(|d| (Arc::new(d.client), d.probes_per_poll.max(1))),
            postqueue: cfg.postqueue,
            prometheus: cfg.prometheus,
            reindexer: reindexer.clone(),
            poll: cfg.poll.max(Duration::from_millis(100)),
        };
        let poller = runtime.spawn(poller.run());
        let n = cfg.tenants.len();
        let mut me = PlatformSource {
            name: cfg.name,
            tenants: cfg.tenants,
            domain_to_tenant,
            seen,
            reindexer,
            configured,
            priorities: vec![(Priority::P2, 0, None); n],
            rows: Vec::new(),
            changed: Vec::new(),
            states: HashMap::new(),
            overview: Overview::default(),
            advances: 0,
            repaired_rate: RateWindow::new(120),
            last_done: 0,
            depth_history: VecDeque::new(),
            poller: Some(poller),
        };
        me.compute(0.0);
        Ok(me)
    }

    /// The repair queue, for callers that watch its progress (tests, a
    /// future progress RPC).
    pub fn reindexer(&self) -> Option<Arc<Reindexer>> {
        self.reindexer.clone()
    }

    /// Rebuilds rows and the overview from what the poller saw.
    fn compute(&mut self, dt: f64) {
        let now = Utc::now();
        let (users, damaged, queued, queue, up, backends, first_damage, latency) = {
            let s = lock(&self.seen);
            (
                s.users.clone(),
                s.damaged.clone(),
                s.queued_per_domain.clone(),
                s.queue.clone(),
                s.targets_up,
                [s.dovecot.clone(), s.postfix.clone(), s.prometheus.clone()],
                s.first_damage,
                s.probe_latency_ms,
            )
        };
        let progress = self
            .reindexer
            .as_ref()
            .map(|r| r.progress())
            .unwrap_or_default();
        // Keep the reindex in the war room's order, new damage included.
        if let Some(r) = &self.reindexer {
            let done: HashSet<&String> = progress.done.iter().collect();
            let failed: HashSet<&String> = progress.failed.iter().map(|f| &f.0).collect();
            let active: HashSet<&String> = progress.active.iter().collect();
            let waiting: Vec<String> = damaged
                .iter()
                .map(|(u, _)| u)
                .filter(|u| !done.contains(u) && !failed.contains(u) && !active.contains(u))
                .cloned()
                .collect();
            let prio: Vec<(Priority, u32)> = self.priorities.iter().map(|p| (p.0, p.1)).collect();
            let order = reindex_order(&self.domain_to_tenant, &prio, &waiting);
            if order != progress.queued {
                r.reorder(order);
            }
        }
        let mut states: HashMap<String, MailboxState> = HashMap::new();
        for u in &progress.done {
            states.insert(u.clone(), MailboxState::Restored);
        }
        for (u, _) in &progress.failed {
            states.insert(u.clone(), MailboxState::Failed);
        }
        for (u, _) in &damaged {
            states
                .entry(u.clone())
                .or_insert(MailboxState::ReindexPending);
        }
        for u in &progress.active {
            states.insert(u.clone(), MailboxState::Reindexing);
        }
        // Positions in the reindex order: active first, then the queue.
        let position: HashMap<&String, u64> = progress
            .active
            .iter()
            .chain(progress.queued.iter())
            .enumerate()
            .map(|(i, u)| (u, i as u64 + 1))
            .collect();
        // Repairs per second, for the ETA.
        let done_now = progress.done.len();
        if dt > 0.0 {
            self.repaired_rate
                .record(done_now.saturating_sub(self.last_done) as f64, dt);
        }
        self.last_done = done_now;
        let rates = self.repaired_rate.rates();
        let pending = (progress.queued.len() + progress.active.len()) as f64;

        let mut rows = Vec::with_capacity(self.tenants.len());
        for (i, t) in self.tenants.iter().enumerate() {
            let mut counts = StateCounts::default();
            let mut last_pos = 0;
            for u in &users[i] {
                let st = states.get(u).copied().unwrap_or(MailboxState::Ok);
                counts.add(st, 1);
                last_pos = last_pos.max(position.get(u).copied().unwrap_or(0));
            }
            let queued_messages: u64 = t
                .domains
                .iter()
                .map(|d| queued.get(&d.to_lowercase()).copied().unwrap_or(0))
                .sum();
            let eta = if last_pos > 0 {
                forecast(now, last_pos as f64, &rates, 0.0)
            } else {
                EtaRange::unknown("")
            };
            let (priority, _, set) = &self.priorities[i];
            rows.push(TenantRow {
                id: t.id.as_str().into(),
                name: t.name.as_str().into(),
                primary_domain: t.domains.first().map_or("", String::as_str).into(),
                domain_count: t.domains.len() as u32,
                tier: "".into(),
                cluster_id: "main".into(),
                mailboxes: users[i].len() as u64,
                states: counts,
                queued_messages: queue.as_ref().map(|_| queued_messages),
                priority: *priority,
                priority_set: set.clone(),
                reindex_rank: last_pos,
                eta,
            });
        }
        self.changed = rows
            .iter()
            .enumerate()
            .filter(|(i, r)| self.rows.get(*i) != Some(r))
            .map(|(i, _)| i)
            .collect();
        self.rows = rows;
        self.states = states;

        // The overview.
        let names = ["dovecot", "postfix", "prometheus"];
        let sources: Vec<SourceStatus> = names
            .iter()
            .zip(&backends)
            .zip(self.configured)
            .filter(|(_, on)| *on)
            .map(|((name, b), _)| SourceStatus {
                name: (*name).into(),
                simulated: false,
                health: b.health,
                message: b.message.clone(),
                last_success: b.last_success,
            })
            .collect();
        let affected: u64 = self.rows.iter().map(|r| r.affected()).sum();
        let restored = progress.done.len() as u64;
        let total: u64 = self.rows.iter().map(|r| r.mailboxes).sum();
        if let (true, Some(q)) = (dt > 0.0, &queue) {
            if self.depth_history.len() == 60 {
                self.depth_history.pop_front();
            }
            self.depth_history.push_back(q.total());
        }
        let dovecot = &backends[0];
        let imap = match (self.configured[0], dovecot.health) {
            (false, _) => Health::Unknown,
            (true, Health::Ok) if affected > 0 => Health::Degraded,
            (true, h) => h,
        };
        let smtp_in = match (self.configured[1], backends[1].health, up) {
            (_, _, Some((up, all))) if up < all => Health::Degraded,
            (true, h, _) => h,
            (false, _, Some(_)) => Health::Ok,
            (false, _, None) => Health::Unknown,
        };
        let services = vec![
            ServiceHealth {
                role: ServiceRole::Imap,
                status: imap,
                login_success_rate: None,
                latency_ms: (latency > 0.0).then_some(latency),
                detail: if affected > 0 {
                    format!("{affected} mailboxes damaged")
                } else {
                    dovecot.message.clone()
                },
            },
            ServiceHealth {
                role: ServiceRole::SmtpIn,
                status: smtp_in,
                login_success_rate: None,
                latency_ms: None,
                detail: match up {
                    Some((up, all)) => format!("{up} of {all} scrape targets up"),
                    None => String::new(),
                },
            },
            ServiceHealth {
                role: ServiceRole::Index,
                status: if progress.paused {
                    Health::Down
                } else if pending > 0.0 {
                    Health::Degraded
                } else if self.configured[0] {
                    Health::Ok
                } else {
                    Health::Unknown
                },
                login_success_rate: None,
                latency_ms: None,
                detail: progress.last_error.clone().unwrap_or_default(),
            },
        ];
        let health = services
            .iter()
            .map(|s| s.status)
            .max_by_key(|h| match h {
                Health::Down => 3,
                Health::Degraded => 2,
                Health::Ok => 1,
                Health::Unknown => 0,
            })
            .unwrap_or_default();
        let scope = damaged.len() as u64;
        let reindex = Reindex {
            unit: ScopeUnit::Mailboxes,
            scope,
            done: restored,
            failed: progress.failed.len() as u64,
            in_progress: progress.in_flight as u64,
            rate_per_min: (!self.repaired_rate.is_empty())
                .then(|| self.repaired_rate.mean() * 60.0),
            eta: if pending > 0.0 {
                forecast(now, pending, &rates, 0.0)
            } else {
                EtaRange::unknown("")
            },
            revisions: Vec::new(),
            mailboxes_pending: pending as u64,
            mailboxes_restored: restored,
        };
        let state = if scope == 0 {
            IncidentState::Monitoring
        } else if affected > 0 {
            IncidentState::Identified
        } else {
            IncidentState::Monitoring
        };
        self.overview = Overview {
            incident: Incident {
                title: if scope == 0 {
                    format!("{}: no damaged mailbox found", self.name)
                } else {
                    format!("{}: {scope} damaged mailboxes found", self.name)
                },
                started_at: first_damage,
                state,
                now: Some(now),
                speed: 1.0,
            },
            sources,
            clusters: vec![Cluster {
                id: "main".into(),
                name: self.name.clone(),
                health,
                services,
                queue: Queue {
                    depth: queue.as_ref().map(|q| QueueDepth {
                        active: q.active + q.incoming + q.maildrop,
                        deferred: q.deferred,
                        hold: q.hold,
                    }),
                    arrival_per_min: None,
                    delivery_per_min: None,
                    unknown: "arrival and delivery rates not measured on this platform".into(),
                    lost: None,
                    unmapped: None,
                    stale: String::new(),
                    drain_eta: EtaRange::unknown("no delivery rate from this platform"),
                    depth_history: self.depth_history.iter().copied().collect(),
                    history_step_seconds: dt.round().max(1.0) as u32,
                },
                reindex,
                mailboxes: total,
                affected_mailboxes: affected,
                sweep: None,
            }],
            totals: Totals {
                tenants: self.rows.len() as u64,
                affected_tenants: self.rows.iter().filter(|r| r.affected() > 0).count() as u64,
                mailboxes: total,
                affected_mailboxes: affected,
                restored_mailboxes: restored,
                queued_messages: self.rows.iter().map(|r| r.queued_messages).sum(),
            },
        };
    }

    /// The reindex positions and the probes' errors, read once for all the
    /// rows of one answer (per row, they cost a copy of the reindexer's
    /// lists and a scan of the damage list each).
    fn row_facts(&self) -> RowFacts {
        let mut position = HashMap::new();
        if let Some(r) = &self.reindexer {
            let p = r.progress();
            for (i, u) in p.active.into_iter().chain(p.queued).enumerate() {
                position.entry(u).or_insert(i as u64 + 1);
            }
        }
        let mut error = HashMap::new();
        for (u, why) in &lock(&self.seen).damaged {
            error.entry(u.clone()).or_insert_with(|| why.clone());
        }
        RowFacts { position, error }
    }

    fn row_of(&self, m: &str, t: usize, f: &RowFacts) -> MailboxRow {
        let state = self.states.get(m).copied().unwrap_or(MailboxState::Ok);
        let position = f.position.get(m).copied().unwrap_or(0);
        let last_error = f.error.get(m).cloned().unwrap_or_default();
        MailboxRow {
            address: m.to_string(),
            tenant_id: self.tenants[t].id.clone(),
            cluster_id: "main".into(),
            volume: String::new(),
            state: Some(state),
            reindex_position: position,
            eta: self.rows.get(t).map(|r| r.eta.clone()).unwrap_or_default(),
            queued_messages: None,
            last_error,
        }
    }

    fn tenant_index(&self, id: &str) -> Option<usize> {
        self.tenants.iter().position(|t| t.id == id)
    }
}

/// What the rows of one answer share; see `PlatformSource::row_facts`.
struct RowFacts {
    position: HashMap<String, u64>,
    error: HashMap<String, String>,
}

impl Source for PlatformSource {
    fn advance(&mut self, dt_seconds: f64) {
        self.advances += 1;
        self.compute(dt_seconds);
    }

    fn advances(&self) -> u64 {
        self.advances
    }

    fn set_priority(&mut self, d: Arc<PriorityDecision>) -> Result<(), SourceError> {
        let t = self
            .tenant_index(&d.tenant_id)
            .ok_or_else(|| SourceError::UnknownTenant(d.tenant_id.clone()))?;
        lock(&self.seen).priorities[t] = (d.priority, d.rank);
        self.priorities[t] = (d.priority, d.rank, Some(d));
        self.compute(0.0);
        Ok(())
    }

    fn overview(&self) -> Overview {
        self.overview.clone()
    }

    fn tenants(&self) -> Vec<TenantRow> {
        self.rows.clone()
    }

    fn tenant(&self, id: &str) -> Option<TenantRow> {
        self.tenant_index(id)
            .and_then(|i| self.rows.get(i).cloned())
    }

    fn contacts(&self, tenant_id: &str) -> Vec<String> {
        self.tenant_index(tenant_id)
            .map(|i| self.tenants[i].contacts.clone())
            .unwrap_or_default()
    }

    fn changed_tenants(&self) -> Vec<TenantRow> {
        self.changed.iter().map(|&i| self.rows[i].clone()).collect()
    }

    fn mailboxes(&self, q: &MailboxQuery) -> Result<Page<MailboxRow>, SourceError> {
        let t = self
            .tenant_index(&q.tenant_id)
            .ok_or_else(|| SourceError::UnknownTenant(q.tenant_id.clone()))?;
        let users = lock(&self.seen).users.get(t).cloned().unwrap_or_default();
        let f = self.row_facts();
        let mut chosen: Vec<&String> = users
            .iter()
            .filter(|u| {
                let st = self.states.get(*u).copied().unwrap_or(MailboxState::Ok);
                if q.states.is_empty() {
                    st != MailboxState::Ok
                } else {
                    q.states.contains(&st)
                }
            })
            .collect();
        if q.sort_by_eta {
            let at = |u: &String| f.position.get(u).copied().unwrap_or(0);
            chosen.sort_by_key(|u| (at(u) == 0, at(u)));
        }
        let total = chosen.len();
        // Rows only for the page asked for.
        let rows = chosen
            .into_iter()
            .skip(q.offset)
            .take(q.limit)
            .map(|u| self.row_of(u, t, &f))
            .collect();
        Ok(Page { rows, total })
    }

    fn lookup(&self, query: &str, limit: usize) -> Vec<LookupHit> {
        let q = query.trim().to_lowercase();
        let mut hits = Vec::new();
        for (i, t) in self.tenants.iter().enumerate() {
            let row = || self.rows.get(i).cloned().unwrap_or_default();
            if t.id.to_lowercase() == q || t.name.to_lowercase().contains(&q) {
                hits.push(LookupHit::Tenant(row()));
            }
            for d in t
                .domains
                .iter()
                .filter(|d| d.to_lowercase().starts_with(&q))
            {
                hits.push(LookupHit::Domain {
                    domain: d.clone(),
                    tenant: row(),
                });
            }
        }
        hits.truncate(limit);
        if hits.len() < limit {
            let users = lock(&self.seen).users.clone();
            let f = self.row_facts();
            let mailboxes = users.iter().enumerate().flat_map(|(t, list)| {
                list.iter()
                    .filter(|u| u.to_lowercase().starts_with(&q))
                    .map(move |u| (t, u))
            });
            for (t, u) in mailboxes.take(limit - hits.len()) {
                hits.push(LookupHit::Mailbox(self.row_of(u, t, &f)));
            }
        }
        hits
    }
}

/// Polls the backends into `Seen`.
struct Poller {
    tenants: Vec<TenantSpec>,
    domain_to_tenant: HashMap<String, usize>,
    seen: Arc<Mutex<Seen>>,
    dovecot: Option<(Arc<Doveadm>, usize)>,
    postqueue: Option<Postqueue>,
    prometheus: Option<Prometheus>,
    reindexer: Option<Arc<Reindexer>>,
    poll: Duration,
}

/// Errors a probe reads as damage of the mailbox (not of Dovecot).
fn damage(e: &DoveError) -> Option<String> {
    match e {
        DoveError::Exit { code, meaning } if *code != 67 => {
            Some(format!("doveadm exit code {code} ({meaning})"))
        }
        _ => None,
    }
}

impl Poller {
    async fn run(self) {
        loop {
            self.poll_dovecot().await;
            self.poll_postfix().await;
            self.poll_prometheus().await;
            tokio::time::sleep(self.poll).await;
        }
    }

    async fn poll_dovecot(&self) {
        let Some((client, per_poll)) = &self.dovecot else {
            return;
        };
        // Users, per tenant domain.
        let mut users = vec![Vec::new(); self.tenants.len()];
        for (i, t) in self.tenants.iter().enumerate() {
            for d in &t.domains {
                match client.users(&format!("*@{d}")).await {
                    Ok(list) => users[i].extend(list),
                    Err(e) => {
                        lock(&self.seen).dovecot.down(format!("listing users: {e}"));
                        return;
                    }
                }
            }
            users[i].sort();
            users[i].dedup();
        }
        let all: Vec<String> = users.iter().flatten().cloned().collect();
        let cursor = {
            let mut s = lock(&self.seen);
            s.users = users;
            s.probe_cursor
        };
        // A few probes per poll, round-robin over every mailbox.
        let mut found = Vec::new();
        let mut probed = 0;
        let mut latency = 0.0;
        let mut outage = None;
        for k in 0..(*per_poll).min(all.len()) {
            let u = &all[(cursor + k) % all.len()];
            let started = std::time::Instant::now();
            match client.mailbox_status(u, "INBOX").await {
                Ok(_) => {}
                Err(e) => match damage(&e) {
                    Some(why) => found.push((u.clone(), why)),
                    None if e.is_outage() => {
                        outage = Some(e.to_string());
                        break;
                    }
                    None => {}
                },
            }
            latency += started.elapsed().as_secs_f64() * 1000.0;
            probed += 1;
        }
        let mut s = lock(&self.seen);
        if let Some(why) = outage {
            s.dovecot.down(why);
            return;
        }
        s.probe_cursor = if all.is_empty() {
            0
        } else {
            (cursor + probed) % all.len()
        };
        if probed > 0 {
            s.probe_latency_ms = latency / probed as f64;
        }
        let mut fresh = Vec::new();
        for (u, why) in found {
            if s.damaged_set.insert(u.clone()) {
                s.first_damage.get_or_insert_with(Utc::now);
                s.damaged.push((u.clone(), why));
                fresh.push(u);
            }
        }
        let n = all.len();
        s.dovecot
            .ok(format!("{n} mailboxes, {probed} probed this poll"));
        let fresh = reindex_order(&self.domain_to_tenant, &s.priorities, &fresh);
        let queued_order: Vec<String> = s.damaged.iter().map(|(u, _)| u.clone()).collect();
        let order = reindex_order(&self.domain_to_tenant, &s.priorities, &queued_order);
        drop(s);
        if let (Some(r), false) = (&self.reindexer, fresh.is_empty()) {
            for u in fresh {
                r.push(u);
            }
            // New damage takes its place in the war room's order before
            // any of it is dispatched.
            r.reorder(order);
            let (r, repairer): (Arc<Reindexer>, Arc<dyn Repairer>) = (r.clone(), client.clone());
            tokio::spawn(r.run(repairer));
        }
    }

    async fn poll_postfix(&self) {
        let Some(pq) = &self.postqueue else {
            return;
        };
        match pq.poll().await {
            Ok(msgs) => {
                let per = postfix::per_domain(&msgs);
                let counts = postfix::counts(&msgs);
                let unmapped: u64 = per
                    .iter()
                    .filter(|(d, _)| !self.domain_to_tenant.contains_key(*d))
                    .map(|(_, n)| n)
                    .sum();
                let mut s = lock(&self.seen);
                s.postfix.ok(format!(
                    "{} messages queued{}",
                    counts.total(),
                    if unmapped > 0 {
                        format!(", {unmapped} for domains of no configured tenant")
                    } else {
                        String::new()
                    }
                ));
                s.queued_per_domain = per;
                s.queue = Some(counts);
            }
            Err(e) => lock(&self.seen).postfix.down(e),
        }
    }

    async fn poll_prometheus(&self) {
        let Some(p) = &self.prometheus else {
            return;
        };
        let up = p.query(queries::TARGETS_UP).await;
        let depth = p.query(queries::QUEUE_DEPTH_BY_QUEUE).await;
        let mut s = lock(&self.seen);
        match (up, depth) {
            (Ok(up), depth) => {
                let total = up.len() as u64;
                let ok = up.iter().filter(|x| x.value >= 1.0).count() as u64;
                s.targets_up = Some((ok, total));
                // Without Postfix polled directly, the queue comes from here.
                if let (Ok(depth), None) = (&depth, &self.postqueue) {
                    let mut q = QueueCounts::default();
                    for x in depth {
                        let n = if x.value.is_finite() {
                            x.value.max(0.0) as u64
                        } else {
                            0
                        };
                        q.add(x.labels.get("queue").map_or("", String::as_str), n);
                    }
                    s.queue = Some(q);
                }
                match depth {
                    Ok(_) => s.prometheus.ok(format!("{ok} of {total} targets up")),
                    Err(e) => {
                        s.prometheus
                            .ok(format!("{ok} of {total} targets up; queue query: {e}"));
                        s.prometheus.health = Health::Degraded;
                    }
                }
            }
            (Err(e), _) => s.prometheus.down(e.to_string()),
        }
    }
}
