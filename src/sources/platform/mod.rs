//! A real mail platform as a source: Dovecot (tenants' mailboxes from the
//! userdb, the damage sweep, the reindex), Postfix (the inbound queue per
//! tenant and per mailbox, its liveness, arrival and delivery rates) and
//! Prometheus (targets up per job, queue depth when Postfix is not read
//! directly), with tenants mapped from recipient domains in the config.
//!
//! Each backend has its own poller task (`poll.rs`), never the hub's tick:
//! a slow or dead backend makes its own figures stale and says so, it never
//! delays another backend's figures nor stalls a console. `advance` only
//! reads what the pollers last saw.
//!
//! Truthfulness rules this module keeps:
//! - a figure no backend measured is None (unknown, with why), never 0;
//! - a backend that stopped answering is Down with the age of its last
//!   success, and every figure it fed is marked stale;
//! - "no damaged mailbox found" is said only with how much of the sweep
//!   is done.
//!
//! The incident survives a gateway restart: findings, repairs, failures,
//! scope revisions, rate samples and each mailbox's last observation go to
//! the store's journal and are replayed at start.
//!
//! Here: the configuration, the source's rows, overview and lookup.
//! `seen.rs` is what the pollers share with `advance`; `start.rs` starts
//! and stops the source; `figures.rs` the headline and source lines.

mod figures;
mod poll;
mod replay;
mod seen;
mod start;
pub use start::StartError;
pub(crate) mod sweep;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use self::seen::{Damaged, Flow, Lookup, Seen, lock, needs_repair};
use super::dovecot::Doveadm;
use super::postfix::{self, Postqueue};
use super::prometheus::Prometheus;
use super::reindex::{Limits, Reindexer};
use super::{LookupAnswer, LookupHit, MailboxQuery, Page, Source, SourceError};
use crate::domain::calibrated::{Class, Forecaster};
use crate::domain::forecast::{EtaRange, WorkRate, forecast_with};
use crate::domain::incident::{Entry, Event};
use crate::domain::priority::PriorityDecision;
use crate::domain::*;
use crate::lookup::Found;
use crate::store::Store;

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
    /// Mailboxes probed per poll interval: the sweep's rate budget.
    pub probes_per_poll: usize,
    pub limits: Limits,
}

pub struct PlatformConfig {
    /// What the console calls this platform ("Production", "Cluster A").
    pub name: String,
    pub tenants: Vec<TenantSpec>,
    pub dovecot: Option<DovecotSpec>,
    pub postqueue: Option<Postqueue>,
    /// The command that tells whether Postfix runs (`postfix status`).
    pub postfix_status: Option<postfix::PostfixStatus>,
    pub prometheus: Option<Prometheus>,
    /// PromQL for the users' load (see `config::PrometheusSection::load`).
    pub load_query: Option<String>,
    pub poll: Duration,
    /// Where the incident's journal lives (the gateway's state file); None
    /// keeps it for the run only.
    pub store: Option<Box<dyn Store>>,
}
/// What the sweep cannot see, in words for the console and docs.
pub const UNDETECTABLE: &str = "uidlists lost before their first probe";
/// How old a load reading may be to go with the repairs of this tick.
const LOAD_FRESH: chrono::Duration = chrono::Duration::minutes(5);
/// The calibration key of the whole repair's ETA (tenants use their row index).
const WHOLE_KEY: u32 = u32::MAX;

pub struct PlatformSource {
    name: String,
    tenants: Vec<TenantSpec>,
    domain_to_tenant: HashMap<String, usize>,
    seen: Arc<Mutex<Seen>>,
    reindexer: Option<Arc<Reindexer>>,
    configured: Configured,
    priorities: Vec<(Priority, u32, Option<Arc<PriorityDecision>>)>,
    // Computed by `advance`.
    rows: Vec<TenantRow>,
    changed: Vec<usize>,
    states: HashMap<String, MailboxState>,
    overview: Overview,
    advances: u64,
    repair_rate: WorkRate,
    /// When the repair queue was seen to run dry (None while repairing,
    /// and when this run never saw it repairing: a queue already empty at
    /// start has no finish time this process measured).
    repairs_done_at: Option<DateTime<Utc>>,
    /// Whether the last compute saw repairs waiting or running.
    repairing: bool,
    /// The traffic reads handed to the forecaster (`Seen::traffic_reads`).
    traffic_reads: u64,
    /// The calibrated forecaster of the repair ETAs (as the simulator's).
    fc: Forecaster,
    last_done: usize,
    /// `Seen::replays` as last seen.
    replays: u64,
    poll_ms: f64,
    depth_history: VecDeque<u64>,
    pollers: Vec<tokio::task::JoinHandle<()>>,
    journal: Option<poll::Journal>,
}

#[derive(Debug, Clone, Copy)]
struct Configured {
    dovecot: bool,
    postfix: bool,
    prometheus: bool,
    /// A load query is read with Prometheus.
    load: bool,
}
/// The tenant index of `address`, by its domain.
fn tenant_of(domain_to_tenant: &HashMap<String, usize>, address: &str) -> Option<usize> {
    postfix::recipient_domain(address).and_then(|d| domain_to_tenant.get(&d).copied())
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
            let (p, r) = tenant_of(domain_to_tenant, u)
                .and_then(|t| priorities.get(t).copied())
                .unwrap_or((Priority::P3, 0));
            (crate::domain::priority::order_key(p, r), i, u)
        })
        .collect();
    v.sort();
    v.into_iter().map(|x| x.2.clone()).collect()
}
impl PlatformSource {
    /// The repair queue, for callers that watch its progress (tests).
    pub fn reindexer(&self) -> Option<Arc<Reindexer>> {
        self.reindexer.clone()
    }

    /// Rebuilds rows and the overview from what the pollers saw.
    fn compute(&mut self, dt: f64) {
        let now = Utc::now();
        let progress = self
            .reindexer
            .as_ref()
            .map(|r| r.progress())
            .unwrap_or_default();
        // Repairs per second of repairing: idle and paused time not counted.
        let done_now = progress.done.len();
        let (replays, load, traffic) = {
            let s = lock(&self.seen);
            let load = s
                .load
                .filter(|(at, _)| now - *at <= LOAD_FRESH)
                .map(|l| l.1);
            let traffic = (s.traffic_reads != self.traffic_reads)
                .then(|| s.traffic.as_deref().copied())
                .flatten();
            self.traffic_reads = s.traffic_reads;
            (s.replays, load, traffic)
        };
        if let Some(t) = traffic {
            self.fc.set_traffic(t);
        }
        if replays != self.replays {
            self.replays = replays;
            self.last_done = done_now;
        }
        let repaired = done_now.saturating_sub(self.last_done);
        let busy = progress.in_flight > 0 || repaired > 0;
        let closed = if dt > 0.0 && busy && !progress.paused {
            // With the users' load, the forecaster learns what it does to
            // the rate, and draws the hours not seen yet from the traffic.
            self.fc.record(now, repaired as f64, dt, load);
            self.repair_rate.record(repaired as f64, dt)
        } else {
            None
        };
        // Rates restored from the journal set the level until new ones come.
        self.fc.refresh(now, self.repair_rate.per_second());
        self.last_done = done_now;

        let seen = self.seen.clone();
        let s = &mut *lock(&seen);
        if let Some(per_second) = closed {
            s.pending_events.push(Event {
                at: now,
                entry: Entry::Rate {
                    job: "repair".into(),
                    per_second,
                },
            });
        }
        let no_users = Vec::new();
        let users = s.users.as_ref().unwrap_or(&no_users);
        let done: HashSet<&String> = progress.done.iter().collect();
        let failed: HashMap<&String, &String> =
            progress.failed.iter().map(|f| (&f.0, &f.1)).collect();
        let queued: HashSet<&String> = progress.queued.iter().collect();
        let active: HashSet<&String> = progress.active.iter().collect();
        // A mailbox's state from its latest finding and the reindex.
        let mut states: HashMap<String, MailboxState> = HashMap::new();
        for (m, &i) in &s.damage_of {
            let st = if !needs_repair(&s.damaged[i].kind) {
                MailboxState::ResyncNeeded
            } else if active.contains(m) {
                MailboxState::Reindexing
            } else if queued.contains(m) {
                MailboxState::ReindexPending
            } else if failed.contains_key(m) {
                MailboxState::Failed
            } else if done.contains(m) {
                MailboxState::Restored
            } else {
                MailboxState::ReindexPending
            };
            states.insert(m.clone(), st);
        }
        // Positions in the reindex order: active first, then the queue.
        let position: HashMap<&String, u64> = progress
            .active
            .iter()
            .chain(progress.queued.iter())
            .enumerate()
            .map(|(i, u)| (u, i as u64 + 1))
            .collect();
        let stats = self.repair_rate.stats();
        let pending = (progress.queued.len() + progress.active.len()) as f64;
        let postfix_known = s.queue.is_some() && self.configured.postfix;

        // The scope is known once the sweep has probed every mailbox once.
        let scope_known = s.sweep.pass() > 1 || s.sweep.pass_done();
        // The whole repair's ETA, and the calibration bin it used: no
        // tenant's is later.
        let whole = (pending > 0.0).then(|| {
            let floor = forecast_with(now, pending, stats, 0.0);
            let class = Class {
                scope_known,
                mailboxes: pending as u64,
                whole: true,
            };
            self.fc.eta(pending, class, &floor)
        });
        let mut bins = Vec::with_capacity(self.tenants.len());
        let mut rows = Vec::with_capacity(self.tenants.len());
        for (i, t) in self.tenants.iter().enumerate() {
            let mut counts = StateCounts::default();
            let mut last_pos = 0;
            let list = users.get(i).map_or(&[][..], Vec::as_slice);
            for u in list {
                // A mailbox the sweep has not probed yet is counted nowhere:
                // the tenant's row then says how many are not checked.
                let st = match states.get(u) {
                    Some(st) => *st,
                    None if s.observations.contains_key(u) => MailboxState::Ok,
                    None => continue,
                };
                counts.add(st, 1);
                last_pos = last_pos.max(position.get(u).copied().unwrap_or(0));
            }
            let queued_messages = postfix_known.then(|| {
                t.domains
                    .iter()
                    .map(|d| {
                        s.queued_per_domain
                            .get(&d.to_lowercase())
                            .copied()
                            .unwrap_or(0)
                    })
                    .sum()
            });
            let (eta, bin) = if last_pos > 0 {
                let floor = forecast_with(now, last_pos as f64, stats, 0.0);
                let class = Class {
                    scope_known,
                    mailboxes: counts.affected(),
                    whole: false,
                };
                let (eta, bin) = self.fc.eta(last_pos as f64, class, &floor);
                (eta.within(whole.as_ref().map(|(w, _)| w)), bin)
            } else {
                (EtaRange::unknown(""), None)
            };
            bins.push(bin);
            let (priority, _, set) = &self.priorities[i];
            rows.push(TenantRow {
                id: t.id.as_str().into(),
                name: t.name.as_str().into(),
                primary_domain: t.domains.first().map_or("", String::as_str).into(),
                domain_count: t.domains.len() as u32,
                tier: "".into(),
                cluster_id: "main".into(),
                mailboxes: list.len() as u64,
                states: counts,
                queued_messages,
                priority: *priority,
                priority_set: set.clone(),
                reindex_rank: last_pos,
                eta,
                eta_slip: None,
            });
        }
        // Tenants with nothing affected any more settle the ETAs served to
        // them; then every ETA served is recorded to be checked in turn.
        for (i, r) in rows.iter().enumerate() {
            self.fc.affected(i as u32, r.affected() > 0, now);
        }
        self.fc.settle(now);
        let quotes_due = self.fc.quotes_due(now);
        if quotes_due {
            for (i, (r, bin)) in rows.iter().zip(&bins).enumerate() {
                self.fc.quote(i as u32, *bin, &r.eta);
            }
        }
        self.changed = rows
            .iter()
            .enumerate()
            .filter(|(i, r)| self.rows.get(*i) != Some(r))
            .map(|(i, _)| i)
            .collect();
        self.rows = rows;
        self.states = states;

        let found = s.damage_of.len() as u64;
        let sweep = self
            .configured
            .dovecot
            .then(|| s.sweep.summary(now, found, UNDETECTABLE));
        let affected: u64 = self.rows.iter().map(|r| r.affected()).sum();
        let restored = self.rows.iter().map(|r| r.restored()).sum();
        let total: u64 = self.rows.iter().map(|r| r.mailboxes).sum();
        let queue = self.queue(s, now, dt);
        let resync: u64 = self
            .rows
            .iter()
            .map(|r| r.states.get(MailboxState::ResyncNeeded))
            .sum();
        let services = self.services(s, &progress, affected, resync, now);
        // No role measured is no health known, not "ok".
        let health = if services.is_empty() {
            Health::Unknown
        } else {
            services.iter().fold(Health::Ok, |h, sv| h.worst(sv.status))
        };
        let scope = s.repair_scope();
        let dovecot_down = self.configured.dovecot && s.dovecot.health == Health::Down;
        let (title, state) = self.headline(s, sweep.as_ref(), scope, affected, dovecot_down);
        let repairing = pending > 0.0 || progress.in_flight > 0;
        if repairing {
            self.repairs_done_at = None;
        } else if self.repairing {
            self.repairs_done_at = Some(now);
        }
        self.repairing = repairing;
        let repair_eta = if let Some((eta, bin)) = whole {
            // The whole repair's ETA is checked against its own end.
            if quotes_due {
                self.fc.quote(WHOLE_KEY, bin, &eta);
            }
            eta
        } else if !self.configured.dovecot {
            // Nothing looked for damage: not "none found".
            EtaRange::unknown("damage not measured: no Dovecot configured")
        } else if scope == 0 {
            EtaRange::unknown("no damage found to repair")
        } else {
            EtaRange::unknown("nothing waiting: all damage found so far is repaired")
        };
        self.fc.affected(WHOLE_KEY, repairing, now);
        let sources = self.sources(s, now);
        self.overview = Overview {
            incident: Incident {
                title,
                started_at: s.first_damage,
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
                queue,
                reindex: Reindex {
                    unit: ScopeUnit::Mailboxes,
                    scope,
                    done: progress.done.len() as u64,
                    failed: progress.failed.len() as u64,
                    in_progress: progress.in_flight as u64,
                    rate_per_min: self.repair_rate.per_second().map(|r| r * 60.0),
                    eta_assumes: self.fc.eta_assumes(&repair_eta, || {
                        match (self.configured.load, &s.traffic_failed) {
                            (false, _) => {
                                "no traffic history (set [platform.prometheus] load)".into()
                            }
                            (true, Some(e)) => format!("no traffic history: {e}"),
                            (true, None) => "no traffic history read yet".into(),
                        }
                    }),
                    eta: repair_eta,
                    revisions: s.scope.clone(),
                    mailboxes_pending: pending as u64,
                    mailboxes_restored: restored,
                    finished_at: self.repairs_done_at,
                    eta_history: Vec::new(),
                },
                mailboxes: total,
                affected_mailboxes: affected,
                sweep,
            }],
            totals: Totals {
                tenants: self.rows.len() as u64,
                affected_tenants: self.rows.iter().filter(|r| r.affected() > 0).count() as u64,
                mailboxes: total,
                affected_mailboxes: affected,
                restored_mailboxes: restored,
                queued_messages: postfix_known
                    .then(|| self.rows.iter().filter_map(|r| r.queued_messages).sum()),
            },
        };
    }

    /// Each waiting mailbox's 1-based place in the reindex order.
    fn positions(&self) -> HashMap<String, u64> {
        let mut position = HashMap::new();
        if let Some(r) = &self.reindexer {
            let p = r.progress();
            for (i, u) in p.active.into_iter().chain(p.queued).enumerate() {
                position.entry(u).or_insert(i as u64 + 1);
            }
        }
        position
    }

    /// The rows of `picks` (tenant, address), reading what the pollers saw
    /// once for all of them. A mailbox the sweep has not probed yet has no
    /// state (unknown), not "ok".
    fn rows_for(
        &self,
        picks: &[(usize, &str)],
        position: &HashMap<String, u64>,
    ) -> Vec<MailboxRow> {
        let s = lock(&self.seen);
        let queued_known = s.queue.is_some() && self.configured.postfix;
        picks
            .iter()
            .map(|&(t, m)| {
                let probed = s.observations.contains_key(m) || s.damage_of.contains_key(m);
                let state = match self.states.get(m) {
                    Some(st) => Some(*st),
                    None if probed => Some(MailboxState::Ok),
                    None => None,
                };
                let last_error = match s.damage_of.get(m) {
                    Some(&i) => s.damaged[i].detail.clone(),
                    None if !probed => "not probed yet by the damage sweep".into(),
                    None => String::new(),
                };
                MailboxRow {
                    address: m.to_string(),
                    tenant_id: self.tenants[t].id.clone(),
                    cluster_id: "main".into(),
                    volume: String::new(),
                    state,
                    reindex_position: position.get(m).copied().unwrap_or(0),
                    eta: self.rows.get(t).map(|r| r.eta.clone()).unwrap_or_default(),
                    queued_messages: queued_known.then(|| {
                        s.queued_per_address
                            .get(&m.to_lowercase())
                            .copied()
                            .unwrap_or(0)
                    }),
                    last_error,
                }
            })
            .collect()
    }

    fn tenant_index(&self, id: &str) -> Option<usize> {
        self.tenants.iter().position(|t| t.id == id)
    }
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
        {
            let mut s = lock(&self.seen);
            s.priorities[t] = (d.priority, d.rank);
            let prio = s.priorities.clone();
            // The sweep's unswept mailboxes and the repairs waiting both
            // follow the war room's order.
            s.sweep.reorder(&prio);
            if let Some(r) = &self.reindexer {
                let waiting = r.progress().queued;
                r.reorder(reindex_order(&self.domain_to_tenant, &prio, &waiting));
            }
        }
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
        let position = self.positions();
        let page: Vec<String>;
        let total;
        {
            let s = lock(&self.seen);
            let users = s
                .users
                .as_ref()
                .and_then(|u| u.get(t))
                .map_or(&[][..], Vec::as_slice);
            let mut chosen: Vec<&String> = users
                .iter()
                .filter(|u| {
                    // Not probed yet: no state, so in no state's list.
                    let st = match self.states.get(*u) {
                        Some(st) => *st,
                        None if s.observations.contains_key(*u) => MailboxState::Ok,
                        None => return false,
                    };
                    if q.states.is_empty() {
                        st != MailboxState::Ok
                    } else {
                        q.states.contains(&st)
                    }
                })
                .collect();
            if q.sort_by_eta {
                let at = |u: &String| position.get(u).copied().unwrap_or(0);
                chosen.sort_by_key(|u| (at(u) == 0, at(u)));
            }
            total = chosen.len();
            // Rows only for the page asked for.
            page = chosen
                .into_iter()
                .skip(q.offset)
                .take(q.limit)
                .cloned()
                .collect();
        }
        let page: Vec<(usize, &str)> = page.iter().map(|u| (t, u.as_str())).collect();
        let rows = self.rows_for(&page, &position);
        Ok(Page { rows, total })
    }

    fn lookup(&self, query: &str, limit: usize) -> LookupAnswer {
        let q = query.trim().to_lowercase();
        if q.is_empty() || limit == 0 {
            return LookupAnswer::default();
        }
        let row = |t: usize| self.rows.get(t).cloned().unwrap_or_default();
        let lookup = lock(&self.seen).lookup.clone();
        // An exact address, domain or tenant id is an answer, not a search.
        if let Some(&t) = lookup.as_ref().and_then(|l| l.by_address.get(&q)) {
            let rows = self.rows_for(&[(t, &q)], &self.positions());
            if let Some(r) = rows.into_iter().next() {
                return LookupAnswer::exact(LookupHit::Mailbox(r));
            }
        }
        if let Some(&t) = self.domain_to_tenant.get(&q) {
            return LookupAnswer::exact(LookupHit::Domain {
                domain: q,
                tenant: row(t),
            });
        }
        if let Some(t) = self.tenants.iter().position(|t| t.id.to_lowercase() == q) {
            return LookupAnswer::exact(LookupHit::Tenant(row(t)));
        }
        // Otherwise prefixes, then misspellings (src/lookup). Before the
        // first user listing only tenants and their domains are known.
        let built;
        let l = match &lookup {
            Some(l) => l.as_ref(),
            None => {
                built = Lookup::build(&self.tenants, &[]);
                &built
            }
        };
        // Those with affected mailboxes first: the mailbox's state as the
        // sweep found it, a tenant's (a domain's tenant's) row.
        let tenant_affected = |t: u32| self.rows.get(t as usize).is_some_and(|r| r.affected() > 0);
        let found = l.index.lookup(&q, limit, |f| match f {
            Found::Mailbox { mailbox, .. } => l
                .mailboxes
                .get(*mailbox as usize)
                .and_then(|(_, u)| self.states.get(u))
                .is_some_and(|s| s.is_affected()),
            Found::Domain { tenant, .. } => tenant_affected(*tenant),
            Found::Tenant(t) => tenant_affected(*t),
        });
        let picks: Vec<(usize, &str)> = found
            .hits
            .iter()
            .map(|(f, _)| f)
            .filter_map(|f| match f {
                Found::Mailbox { mailbox, .. } => l
                    .mailboxes
                    .get(*mailbox as usize)
                    .map(|(t, u)| (*t, u.as_str())),
                _ => None,
            })
            .collect();
        let mut rows = if picks.is_empty() {
            Vec::new()
        } else {
            self.rows_for(&picks, &self.positions())
        }
        .into_iter();
        let found = found.filter_map(|f| match f {
            Found::Mailbox { mailbox, .. } => {
                l.mailboxes.get(mailbox as usize)?;
                rows.next().map(LookupHit::Mailbox)
            }
            Found::Domain { tenant, domain } => Some(LookupHit::Domain {
                domain,
                tenant: row(tenant as usize),
            }),
            Found::Tenant(t) => Some(LookupHit::Tenant(row(t as usize))),
        });
        found.into()
    }
}
