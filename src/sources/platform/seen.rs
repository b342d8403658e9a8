//! What the pollers last saw, shared with `advance` under one mutex held
//! only to copy or record: each backend's state, the damaged mailboxes, the
//! queue's flow, the lookup index, the scope and its revisions.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::TenantSpec;
use super::sweep::SweepPlan;
use crate::domain::calibrated::QUARTERS;
use crate::domain::incident::{Entry, Event, Observation};
use crate::domain::scope::ScopeRevision;
use crate::domain::*;
use crate::lookup::{AddressIndex, TenantEntry};
use crate::sources::postfix::QueueCounts;
use crate::sources::prometheus::PromError;

/// What one backend last said.
#[derive(Debug, Clone, Default)]
pub(super) struct BackendState {
    pub(super) health: Health,
    pub(super) message: String,
    pub(super) last_success: Option<DateTime<Utc>>,
    /// When it went down (None while it answers).
    pub(super) down_since: Option<DateTime<Utc>>,
}

impl BackendState {
    pub(super) fn ok(&mut self, message: String) {
        self.health = Health::Ok;
        self.message = message;
        self.last_success = Some(Utc::now());
        self.down_since = None;
    }
    pub(super) fn down(&mut self, message: String) {
        if self.health != Health::Down {
            tracing::warn!("{message}");
            self.down_since = Some(Utc::now());
        }
        self.health = Health::Down;
        self.message = message;
    }
    /// "since 14:02:10 (26 s), last answer 14:02:05": for figures it fed.
    pub(super) fn stale_reason(&self, name: &str, now: DateTime<Utc>) -> String {
        if self.health != Health::Down {
            return String::new();
        }
        let last = match self.last_success {
            Some(t) => format!(
                "last answer {} ({} ago)",
                t.format("%H:%M:%S"),
                format::duration(now - t)
            ),
            None => "no answer yet".into(),
        };
        format!("{name} down: {last}")
    }
}

/// One damaged mailbox, as found.
#[derive(Debug, Clone)]
pub(super) struct Damaged {
    pub(super) mailbox: String,
    pub(super) kind: String,
    pub(super) detail: String,
}

/// What goes through the reindexer: kinds a repair fixes. A lost uidlist
/// was already rebuilt by the access that found it: its clients must
/// resync, there is nothing to repair.
pub(super) fn needs_repair(kind: &str) -> bool {
    kind != "lost_uidlist"
}

/// One interval of the queue's flow between two polls.
#[derive(Debug, Clone, Copy)]
pub(super) struct Flow {
    pub(super) arrived: u64,
    pub(super) left: u64,
    pub(super) seconds: f64,
}

/// The lookup index over the listed users, rebuilt when the list changes
/// (the same engine the simulator's lookup uses: exact, prefix and
/// misspelled queries answer alike on a platform and in the demo).
pub(super) struct Lookup {
    pub(super) index: AddressIndex,
    /// Mailbox id → (tenant, address).
    pub(super) mailboxes: Vec<(usize, String)>,
    /// Address → tenant, for exact answers.
    pub(super) by_address: HashMap<String, usize>,
}

impl Lookup {
    pub(super) fn build(tenants: &[TenantSpec], users: &[Vec<String>]) -> Lookup {
        let entries: Vec<TenantEntry<'_>> = tenants
            .iter()
            .map(|t| TenantEntry {
                name: &t.name,
                domains: &t.domains,
            })
            .collect();
        let mailboxes: Vec<(usize, String)> = users
            .iter()
            .enumerate()
            .flat_map(|(t, list)| list.iter().map(move |u| (t, u.clone())))
            .collect();
        let index = AddressIndex::build(
            &entries,
            mailboxes.iter().map(|(t, u)| (*t as u32, u.as_str())),
        );
        let by_address = mailboxes.iter().map(|(t, u)| (u.clone(), *t)).collect();
        Lookup {
            index,
            mailboxes,
            by_address,
        }
    }
}

/// What the pollers have seen, shared with `advance`.
#[derive(Default)]
pub(super) struct Seen {
    /// Users per tenant index, sorted; None until the first listing.
    pub(super) users: Option<Vec<Vec<String>>>,
    /// Built from `users`.
    pub(super) lookup: Option<Arc<Lookup>>,
    /// Damage found, in the order found (a mailbox found again later is
    /// listed again).
    pub(super) damaged: Vec<Damaged>,
    /// The latest finding per mailbox (index into `damaged`).
    pub(super) damage_of: HashMap<String, usize>,
    pub(super) observations: HashMap<String, Observation>,
    pub(super) sweep: SweepPlan,
    /// Written to the store by the next flush.
    pub(super) pending_events: Vec<Event>,
    pub(super) pending_obs: Vec<(String, Observation)>,
    pub(super) probe_latency_ms: VecDeque<f64>,
    /// Postfix: messages per recipient domain and address, by queue.
    pub(super) queued_per_domain: BTreeMap<String, u64>,
    pub(super) queued_per_address: HashMap<String, u64>,
    pub(super) queue: Option<QueueCounts>,
    /// When `queue` was last read.
    pub(super) queue_at: Option<DateTime<Utc>>,
    /// Why the last read of the queue failed (None: it answered): the
    /// figures kept are stale from that poll on.
    pub(super) queue_failed: Option<String>,
    /// Postfix is read directly (else the queue comes from Prometheus).
    pub(super) postfix_configured: bool,
    pub(super) flows: VecDeque<Flow>,
    /// The queue's arrivals and departures per minute from Postfix's log
    /// counters (through Prometheus), which count every message, also mail
    /// that passes between two polls: (when, arrivals, departures), one per
    /// poll over the last [`LOG_RATES_KEPT`].
    pub(super) log_rates: VecDeque<(DateTime<Utc>, f64, f64)>,
    /// Why the last read of those counters failed (None: it answered).
    pub(super) log_rates_failed: Option<String>,
    /// Postfix' own word on whether it runs (Ok, Down; Unknown when the
    /// check could not tell), with what it said.
    pub(super) postfix_running: Option<(Health, String)>,
    /// Prometheus `up` per job: (job, up, all).
    pub(super) jobs: Vec<(String, u64, u64)>,
    pub(super) dovecot: BackendState,
    pub(super) postfix: BackendState,
    pub(super) prometheus: BackendState,
    /// The users' load as last read with the load query: (when, load).
    pub(super) load: Option<(DateTime<Utc>, f64)>,
    /// The platform's traffic (the typical load of each quarter hour of the
    /// day, from a week of the load query), and how many times it was read:
    /// the source hands each new one to its forecaster.
    pub(super) traffic: Option<Box<[f64; QUARTERS]>>,
    pub(super) traffic_reads: u64,
    /// Why the last read of the traffic failed (the one before is kept: a
    /// week's history does not age in an hour).
    pub(super) traffic_failed: Option<String>,
    pub(super) first_damage: Option<DateTime<Utc>>,
    /// The reindexer's done and failed lists already in the journal.
    pub(super) journaled: (usize, usize),
    /// (priority, explicit rank) per tenant index: the sweep and reindex
    /// order.
    pub(super) priorities: Vec<(Priority, u32)>,
    pub(super) scope: Vec<ScopeRevision>,
    /// How many times the journal was read back after following: the
    /// repairs counted done jump then, which is not work done this tick.
    pub(super) replays: u64,
}

/// How long the log counters' rates are kept, as samples for the drain ETA.
const LOG_RATES_KEPT: chrono::Duration = chrono::Duration::minutes(5);

impl Seen {
    /// Keeps the queue's arrival and departure rates (per second) read from
    /// Postfix's log counters, or why they could not be read.
    pub(super) fn read_log_rates(
        &mut self,
        now: DateTime<Utc>,
        arrivals: Result<f64, PromError>,
        departures: Result<f64, PromError>,
    ) {
        self.log_rates_failed = match (arrivals, departures) {
            (Ok(a), Ok(d)) if a.is_finite() && d.is_finite() && a >= 0.0 && d >= 0.0 => {
                self.log_rates.push_back((now, a * 60.0, d * 60.0));
                while self
                    .log_rates
                    .front()
                    .is_some_and(|(at, ..)| *at < now - LOG_RATES_KEPT)
                {
                    self.log_rates.pop_front();
                }
                None
            }
            (Ok(a), Ok(d)) => Some(format!("{a} and {d} are not rates")),
            (Err(PromError::Empty), _) | (_, Err(PromError::Empty)) => Some(
                "Prometheus has no rate of Postfix's log counters (prometheus-postfix-exporter \
                 not scraped, or not twice yet)"
                    .into(),
            ),
            (Err(e), _) | (_, Err(e)) => Some(e.to_string()),
        };
    }

    /// Keeps what the load query said now and, when it was read again, of
    /// the last week; says it in words for the Prometheus line.
    pub(super) fn read_load(
        &mut self,
        now: DateTime<Utc>,
        load: Result<f64, PromError>,
        traffic: Option<Result<[f64; QUARTERS], PromError>>,
    ) -> String {
        match traffic {
            Some(Ok(t)) => {
                self.traffic = Some(Box::new(t));
                self.traffic_reads += 1;
                self.traffic_failed = None;
            }
            Some(Err(e)) => self.traffic_failed = Some(e.to_string()),
            None => {}
        }
        let load = match load {
            Ok(v) if v.is_finite() && v >= 0.0 => {
                self.load = Some((now, v));
                format!("load {v:.2}")
            }
            Ok(v) => {
                self.load = None;
                format!("load query: {v} is not a load")
            }
            Err(e) => {
                self.load = None;
                format!("load query: {e}")
            }
        };
        let traffic = match (&self.traffic, &self.traffic_failed) {
            (Some(_), None) => "the week's traffic read".to_string(),
            (Some(_), Some(e)) => format!("traffic kept from an earlier read ({e})"),
            (None, Some(e)) => format!("no traffic history: {e}"),
            (None, None) => "no traffic history yet".to_string(),
        };
        format!("{load}, {traffic}")
    }

    /// Records a finding (also one replayed from the journal).
    pub(super) fn add_damage(&mut self, at: DateTime<Utc>, d: Damaged) {
        self.first_damage.get_or_insert(at);
        self.damage_of.insert(d.mailbox.clone(), self.damaged.len());
        self.damaged.push(d);
    }

    /// Mailboxes that need a repair, latest finding each, in order found.
    pub(super) fn repair_scope(&self) -> u64 {
        self.damage_of
            .values()
            .filter(|&&i| needs_repair(&self.damaged[i].kind))
            .count() as u64
    }

    /// Revises the repair scope when it changed, saying what the sweep
    /// knows at this point.
    pub(super) fn revise_scope(&mut self, now: DateTime<Utc>) {
        let scope = self.repair_scope();
        let previous = self.scope.last().map_or(0, |r| r.scope);
        if scope == previous {
            return;
        }
        let s = self.sweep.summary(now, self.damage_of.len() as u64, "");
        let reason = format!(
            "sweep pass {} at {}: {} damaged found{}",
            s.pass,
            format::percent(s.fraction()),
            s.found,
            s.projected
                .map(|p| format!(", {p} projected"))
                .unwrap_or_default()
        );
        let r = ScopeRevision {
            at: now,
            previous,
            scope,
            reason,
        };
        tracing::info!(previous, scope, "reindex scope revised: {}", r.reason);
        self.pending_events.push(Event {
            at: now,
            entry: Entry::Scope(r.clone()),
        });
        self.scope.push(r);
    }
}

pub(super) fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_and_the_traffic_are_kept_only_when_they_are_a_load_and_said_either_way() {
        let mut s = Seen::default();
        let now = Utc::now();
        let week = [0.5; QUARTERS];
        let said = s.read_load(now, Ok(0.423), Some(Ok(week)));
        assert_eq!(said, "load 0.42, the week's traffic read");
        assert_eq!((s.load, s.traffic_reads), (Some((now, 0.423)), 1));
        // Not a load: forgotten, not kept as the last good one or as 0.
        let said = s.read_load(now, Ok(f64::NAN), None);
        assert_eq!(
            said,
            "load query: NaN is not a load, the week's traffic read"
        );
        assert_eq!(s.load, None);
        let said = s.read_load(now, Ok(-1.0), None);
        assert!(said.starts_with("load query: -1 is not a load"), "{said}");
        // A failed read of the week keeps the one before, and says so.
        let said = s.read_load(
            now,
            Err(PromError::Empty),
            Some(Err(PromError::History(
                "the load history covers 40 of the day's 96 quarter hours".into(),
            ))),
        );
        assert_eq!(
            said,
            "load query: the query returned no samples, traffic kept from an earlier read \
             (the load history covers 40 of the day's 96 quarter hours)"
        );
        assert_eq!((s.traffic.as_deref(), s.traffic_reads), (Some(&week), 1));
        // Never read: said, not assumed.
        let mut fresh = Seen::default();
        let said = fresh.read_load(now, Ok(0.2), Some(Err(PromError::Empty)));
        assert_eq!(
            said,
            "load 0.20, no traffic history: the query returned no samples"
        );
        assert_eq!(fresh.traffic, None);
    }

    #[test]
    fn the_log_counters_rates_are_kept_per_minute_for_five_minutes_and_their_failures_said() {
        let mut s = Seen::default();
        let t0 = Utc::now();
        s.read_log_rates(t0, Ok(0.5), Ok(0.25));
        assert_eq!(s.log_rates.back(), Some(&(t0, 30.0, 15.0)));
        assert_eq!(s.log_rates_failed, None);
        // Not rates: nothing kept, and said.
        s.read_log_rates(t0, Ok(f64::NAN), Ok(0.25));
        s.read_log_rates(t0, Ok(-1.0), Ok(0.25));
        assert_eq!(s.log_rates.len(), 1);
        assert_eq!(
            s.log_rates_failed.as_deref(),
            Some("-1 and 0.25 are not rates")
        );
        // No series: the exporter is not scraped (or not twice yet).
        s.read_log_rates(t0, Ok(0.5), Err(PromError::Empty));
        assert!(
            s.log_rates_failed
                .as_deref()
                .is_some_and(|w| w.contains("prometheus-postfix-exporter")),
            "{:?}",
            s.log_rates_failed
        );
        // Samples older than five minutes go.
        let later = t0 + chrono::Duration::minutes(6);
        s.read_log_rates(later, Ok(0.0), Ok(1.0));
        assert_eq!(s.log_rates.iter().map(|r| r.0).collect::<Vec<_>>(), [later]);
        assert_eq!(s.log_rates_failed, None);
    }
}
