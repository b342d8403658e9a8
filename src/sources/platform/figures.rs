//! The overview's figures on a platform: the headline, the source lines,
//! the queue and the service roles, each saying what is unknown (None,
//! with why) and what is stale (the last known figure, and since when).

use chrono::{DateTime, Utc};

use super::{PlatformSource, Seen};
use crate::domain::forecast::{EtaRange, forecast, percentile};
use crate::domain::*;

/// What the rates from successive queue listings count.
const QUEUED_FOR_A_POLL: &str = "mail queued for a poll or more";

impl PlatformSource {
    /// The header's title and the incident state: what is known, and how
    /// far the search has got.
    pub(super) fn headline(
        &self,
        s: &Seen,
        sweep: Option<&Sweep>,
        scope: u64,
        affected: u64,
        dovecot_down: bool,
    ) -> (String, IncidentState) {
        let name = &self.name;
        let found = s.damage_of.len();
        if dovecot_down {
            let since = s
                .dovecot
                .down_since
                .map(|t| format!(" since {}", t.format("%H:%M:%S")))
                .unwrap_or_default();
            return (
                format!(
                    "{name}: Dovecot unreachable{since} — {found} damaged known, figures stale"
                ),
                IncidentState::Investigating,
            );
        }
        let Some(sw) = sweep else {
            return (
                format!("{name}: damage not measured (no Dovecot configured)"),
                IncidentState::Investigating,
            );
        };
        let progress = if sw.complete() {
            "sweep complete".to_string()
        } else {
            format!("swept {}", format::percent(sw.fraction()))
        };
        if found == 0 {
            if sw.complete() {
                (
                    format!("{name}: no damaged mailbox found ({progress})"),
                    IncidentState::Monitoring,
                )
            } else {
                (
                    format!("{name}: none found so far ({progress})"),
                    IncidentState::Investigating,
                )
            }
        } else {
            let state = if affected > 0 || scope > 0 && !sw.complete() {
                IncidentState::Identified
            } else {
                IncidentState::Monitoring
            };
            (
                format!("{name}: {found} damaged mailboxes found ({progress})"),
                state,
            )
        }
    }

    /// Every configured backend, with how long ago it last answered.
    pub(super) fn sources(&self, s: &Seen, now: DateTime<Utc>) -> Vec<SourceStatus> {
        let list = [
            ("dovecot", self.configured.dovecot, &s.dovecot),
            ("postfix", self.configured.postfix, &s.postfix),
            ("prometheus", self.configured.prometheus, &s.prometheus),
        ];
        list.into_iter()
            .filter(|(_, on, _)| *on)
            .map(|(name, _, b)| {
                let message = match (b.health, b.down_since) {
                    (Health::Unknown, _) => "waiting for the first poll".to_string(),
                    (Health::Down, Some(t)) => format!(
                        "{} (down since {}, {})",
                        b.message,
                        t.format("%H:%M:%S"),
                        format::duration(now - t)
                    ),
                    _ => b.message.clone(),
                };
                SourceStatus {
                    name: name.into(),
                    simulated: false,
                    health: b.health,
                    message,
                    last_success: b.last_success,
                }
            })
            .collect()
    }

    /// The inbound queue: from Postfix, or from Prometheus without it;
    /// rates from the flow between polls; stale when its backend is down.
    pub(super) fn queue(&mut self, s: &Seen, now: DateTime<Utc>, dt: f64) -> Queue {
        let (fed_by, backend) = if self.configured.postfix {
            ("postfix", &s.postfix)
        } else {
            ("prometheus", &s.prometheus)
        };
        let fed = self.configured.postfix || self.configured.prometheus;
        if let (true, Some(q)) = (dt > 0.0, &s.queue) {
            if self.depth_history.len() == 60 {
                self.depth_history.pop_front();
            }
            self.depth_history.push_back(q.total());
        }
        let depth = s.queue.as_ref().map(|q| QueueDepth {
            active: q.active + q.incoming + q.maildrop,
            deferred: q.deferred,
            hold: q.hold,
        });
        // From successive queue listings, over the last minute of polls:
        // only the mail that stayed queued for a poll or more.
        let mut arrived = 0;
        let mut left = 0;
        let mut seconds = 0.0;
        for f in s.flows.iter().rev() {
            arrived += f.arrived;
            left += f.left;
            seconds += f.seconds;
            if seconds >= 60.0 {
                break;
            }
        }
        let listed = (seconds > 0.0).then(|| {
            (
                arrived as f64 * 60.0 / seconds,
                left as f64 * 60.0 / seconds,
            )
        });
        // From Postfix's log counters, which count every message: shown
        // while read recently.
        let logged = s
            .log_rates
            .back()
            .filter(|(at, ..)| self.read_recently(*at, now))
            .map(|&(_, a, d)| (a, d));
        let (rates, rates_cover) = match (logged, listed) {
            (Some(r), _) => (Some(r), String::new()),
            (None, Some(r)) => (Some(r), QUEUED_FOR_A_POLL.to_string()),
            (None, None) => (None, String::new()),
        };
        let unknown = if !fed {
            "no queue source configured".to_string()
        } else if depth.is_none() {
            s.queue_failed
                .clone()
                .unwrap_or_else(|| format!("waiting for the first {fed_by} poll"))
        } else if rates.is_none() {
            match (&s.log_rates_failed, self.configured.postfix) {
                (_, true) => "rates need two polls".into(),
                (Some(why), false) => format!("rates: {why}"),
                (None, false) => "rates need two reads of Postfix's log counters".into(),
            }
        } else {
            String::new()
        };
        // The drain from the queue's own flow when it is listed (the mail
        // that passes through leaves as it came), else from the log
        // counters' last minutes: (arrivals, departures), the net rates,
        // and what no departure means.
        let basis = match (listed, logged) {
            (Some(r), _) => Some((
                r,
                s.flows
                    .iter()
                    .filter(|f| f.seconds > 0.0)
                    .map(|f| (f.left as f64 - f.arrived as f64) / f.seconds)
                    .collect::<Vec<f64>>(),
                "none of it left in 1 min",
            )),
            (None, Some(r)) => Some((
                r,
                s.log_rates.iter().map(|(_, a, d)| (d - a) / 60.0).collect(),
                "none of it left in 5 min",
            )),
            (None, None) => None,
        };
        let drain_eta = match (depth, basis) {
            (Some(d), _) if d.total() == 0 => EtaRange::unknown(""),
            (Some(d), Some(((a, l), net, none_left))) => {
                if l == 0.0 {
                    EtaRange::unknown(none_left)
                } else if l <= a {
                    EtaRange::unknown("arrivals ≥ deliveries")
                } else {
                    forecast(now, d.total() as f64, &net, 0.0)
                }
            }
            _ => EtaRange::unknown("no delivery rate measured yet"),
        };
        let unmapped = (self.configured.postfix && depth.is_some()).then(|| {
            s.queued_per_domain
                .iter()
                .filter(|(d, _)| !self.domain_to_tenant.contains_key(*d))
                .map(|(_, n)| n)
                .sum()
        });
        Queue {
            depth,
            arrival_per_min: rates.map(|r| r.0),
            delivery_per_min: rates.map(|r| r.1),
            unknown,
            rates_cover,
            // Postfix' bounces are not read: losses are not measured.
            lost: None,
            unmapped,
            // Stale from the first failed read (or when not read recently):
            // the figures are the last known ones, not live.
            stale: match s.queue_at {
                Some(at) if s.queue_failed.is_some() || !self.read_recently(at, now) => {
                    let why = s
                        .queue_failed
                        .as_deref()
                        .or((!backend.message.is_empty()).then_some(backend.message.as_str()))
                        .map(|w| format!("; {w}"))
                        .unwrap_or_default();
                    format!(
                        "{fed_by} last read {} ({} ago){why}",
                        at.format("%H:%M:%S"),
                        format::duration(now - at)
                    )
                }
                _ => String::new(),
            },
            drain_eta,
            depth_history: self.depth_history.iter().copied().collect(),
            history_step_seconds: dt.round().max(1.0) as u32,
        }
    }

    /// Whether a figure read at `at` is live: read within the last 2.5
    /// polls (a poll may run late; two missed are an outage).
    fn read_recently(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        (now - at).num_milliseconds() as f64 <= 2.5 * self.poll_ms
    }

    pub(super) fn services(
        &self,
        s: &Seen,
        progress: &crate::sources::reindex::Progress,
        affected: u64,
        resync: u64,
        now: DateTime<Utc>,
    ) -> Vec<ServiceHealth> {
        let mut out = Vec::new();
        // A Prometheus target down counts against its own job's role.
        let job_of = |role: ServiceRole| -> Vec<&(String, u64, u64)> {
            s.jobs
                .iter()
                .filter(|(job, _, _)| job_role(job) == Some(role))
                .collect()
        };
        let prom_stale = s.prometheus.stale_reason("prometheus", now);
        // (health, note) of the role's Prometheus jobs; Ok and no note when
        // no job serves the role (nothing to add, nothing against it).
        let jobs_note = |role: ServiceRole| -> (Health, String) {
            let jobs = job_of(role);
            if jobs.is_empty() {
                return (Health::Ok, String::new());
            }
            let down: Vec<String> = jobs
                .iter()
                .filter(|(_, up, all)| up < all)
                .map(|(j, up, all)| format!("job {j}: {up} of {all} targets up"))
                .collect();
            if !prom_stale.is_empty() {
                (Health::Unknown, prom_stale.clone())
            } else if down.is_empty() {
                (Health::Ok, String::new())
            } else {
                (Health::Degraded, down.join("; "))
            }
        };
        if self.configured.dovecot || !job_of(ServiceRole::Imap).is_empty() {
            let (jh, jnote) = jobs_note(ServiceRole::Imap);
            let d = &s.dovecot;
            let (status, detail) = match d.health {
                _ if !self.configured.dovecot => (jh, jnote),
                Health::Down => (Health::Down, d.stale_reason("dovecot", now)),
                Health::Unknown => (Health::Unknown, "waiting for the first poll".into()),
                _ if affected > 0 => (
                    Health::Degraded.worst(jh),
                    format!("{affected} mailboxes without service"),
                ),
                h if resync > 0 => (
                    h.worst(jh),
                    format!("{resync} mailboxes: IMAP clients must resync"),
                ),
                h => (h.worst(jh), jnote),
            };
            let lat: Vec<f64> = s.probe_latency_ms.iter().copied().collect();
            let p95 = percentile(&lat, 0.95).filter(|_| d.health == Health::Ok);
            out.push(ServiceHealth {
                role: ServiceRole::Imap,
                status,
                login_success_rate: None,
                latency_ms: p95,
                detail,
            });
        }
        for role in [ServiceRole::SmtpIn, ServiceRole::SmtpOut] {
            let (jh, jnote) = jobs_note(role);
            let (status, detail) = if self.configured.postfix {
                match &s.postfix_running {
                    Some((Health::Ok, _)) => (jh.worst(Health::Ok), jnote),
                    Some((h, said)) => (*h, said.clone()),
                    None => (Health::Unknown, "waiting for the first poll".into()),
                }
            } else if job_of(role).is_empty() {
                // Nothing measures this role on this platform.
                continue;
            } else {
                (jh, jnote)
            };
            out.push(ServiceHealth {
                role,
                status,
                login_success_rate: None,
                latency_ms: None,
                detail,
            });
        }
        if self.configured.dovecot {
            out.push(ServiceHealth {
                role: ServiceRole::Index,
                status: if progress.paused || s.dovecot.health == Health::Down {
                    Health::Down
                } else if progress.in_flight + progress.queued.len() > 0 {
                    Health::Degraded
                } else {
                    Health::Ok
                },
                login_success_rate: None,
                latency_ms: None,
                detail: progress.last_error.clone().unwrap_or_default(),
            });
        }
        out
    }
}

/// The role a Prometheus job's targets serve, from its name; None: a job
/// the console lists under Prometheus itself.
fn job_role(job: &str) -> Option<ServiceRole> {
    let j = job.to_lowercase();
    if j.contains("postfix") || j.contains("smtp") {
        Some(ServiceRole::SmtpIn)
    } else if j.contains("dovecot") || j.contains("imap") {
        Some(ServiceRole::Imap)
    } else {
        None
    }
}
