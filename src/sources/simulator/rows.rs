//! What the simulator shows: a cluster, a mailbox row, addresses and positions, lookups back to mailboxes.

use super::*;
use crate::domain::calibrated::{WorkCurve, quarter_of};

impl Simulator {
    pub(super) fn cluster(&self, c: usize) -> Cluster {
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
        let per_minute = self.delivery_limit() * 60.0;
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
            // Mail for mailboxes still without service waits for them: it is
            // released as the reindex brings them back and delivered at the
            // platform's limit, so the queue is empty when the last of them
            // is back, or after, when the last night's releases outrun
            // delivery.
            if let (Some(p50), Some(p90)) = (reindex.eta.p50, reindex.eta.p90) {
                // The last half hour's arrivals, taken to a day's mean by the
                // platform's load history (and drawn from there along it):
                // the mail that queues while the last tenants wait arrives
                // over hours, not at this hour's rate (a morning peak's rate
                // carried over a day).
                let typical = if load > 0.0 {
                    self.mean_load / load
                } else {
                    1.0
                };
                let per_mailbox = f.arrival_per_sec * typical / mailboxes.max(1) as f64;
                // The mail of mailboxes whose reindex failed is released too:
                // they are retried at the back of their tenants' queues, and
                // the biggest tenants' come back last (left out, the slow
                // drill's queue was drawn empty minutes early all through its
                // reindex, and its p50 held 20% of the time).
                let release = QueuedMail {
                    held: backlog,
                    arriving: per_mailbox * affected as f64,
                    traffic: Some(&self.traffic),
                    deliverable,
                    limit: self.delivery_limit(),
                };
                let (p50, p90) = release.eta(now, p50, p90, self.fc.curve());
                round_eta(EtaRange::at(p50, p90))
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
                        format!(
                            "{} cannot log in",
                            format::counted(affected, "mailbox", "mailboxes")
                        )
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
                    format!(
                        "{} to reindex",
                        format::counted(affected, "mailbox", "mailboxes")
                    ),
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
        let named = self.sc.clusters.both()[c];
        Cluster {
            id: named.id.clone(),
            name: named.name.clone(),
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
                // The model counts every message it accepts and delivers.
                rates_cover: String::new(),
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

    pub(super) fn address(&self, ti: usize, local: u64) -> String {
        let t = &self.tenants[ti];
        let d = (local % t.domains as u64) as u32;
        let k = local / t.domains as u64;
        let mut a = String::with_capacity(24 + t.base.len() + t.tld.len());
        names::push_local_part(&mut a, k);
        a.push('@');
        names::push_domain(&mut a, &t.base, t.tld, d);
        a
    }

    /// 1-based position of mailbox `m` of tenant `ti` in the reindex order
    /// (0 = not queued).
    fn position(&self, ti: usize, m: u64) -> u64 {
        if let Some(i) = self.in_flight.iter().position(|f| f.mailbox == m) {
            return i as u64 + 1;
        }
        let t = &self.tenants[ti];
        let local = (m - t.first) as u32;
        match t.pending.iter().position(|&l| l == local) {
            Some(k) => self.in_flight.len() as u64 + self.level_position(t.slot(), k as u64 + 1),
            None => 0,
        }
    }

    pub(super) fn mailbox_row(&self, m: u64) -> MailboxRow {
        self.mailbox_row_of(self.tenant_of(m), m)
    }

    /// [`mailbox_row`](Self::mailbox_row) of a mailbox of tenant `ti`, for
    /// callers that know it: finding the tenant of a mailbox is a binary
    /// search over every tenant, a cache miss a step at 100,000 tenants,
    /// and was most of a bulk lookup's time in the simulator.
    pub(super) fn mailbox_row_of(&self, ti: usize, m: u64) -> MailboxRow {
        debug_assert_eq!(ti, self.tenant_of(m));
        let t = &self.tenants[ti];
        let state = self.mailbox_state(m);
        let position = self.position(ti, m);
        let eta = match state {
            MailboxState::Ok | MailboxState::Restored => EtaRange::unknown(NO_ETA),
            MailboxState::LockedOut => t.eta.clone(),
            _ => {
                let scan_done = self.scan_done();
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
            tenant_id: String::from(&*t.id),
            cluster_id: String::from(&*t.cluster_id),
            volume: names::volume(&t.cluster_id, self.volume(m)),
            state: Some(state),
            reindex_position: position,
            eta,
            queued_messages: Some(queued),
            last_error,
        }
    }

    pub(super) fn level_position(&self, slot: Slot, k: u64) -> u64 {
        self.levels.get(&slot).map_or(0, |l| l.position(k))
    }

    /// The mailbox number of a mailbox the lookup index found.
    pub(super) fn found_mailbox(&self, m: index::Mailbox) -> Option<u64> {
        let t = self.tenants.get(m.tenant as usize)?;
        let j =
            m.k.checked_mul(t.domains as u64)?
                .checked_add(m.domain as u64)?;
        (j < t.count).then_some(t.first + j)
    }

    /// Whether a lookup match has mailboxes without service: the mailbox
    /// itself, or the tenant (of a domain: its tenant, whose figures the
    /// answer gives).
    pub(super) fn found_affected(&self, f: &index::Found) -> bool {
        let tenant_affected = |ti: u32| {
            self.tenants
                .get(ti as usize)
                .is_some_and(|t| t.states.affected() > 0)
        };
        match f {
            // A tenant with nothing affected has no affected mailbox: its
            // counts are in the row `found_mailbox` reads anyway, the
            // mailbox's state is one more cache miss.
            index::Found::Mailbox(m) => {
                tenant_affected(m.tenant)
                    && self
                        .found_mailbox(*m)
                        .is_some_and(|m| self.mailbox_state(m).is_affected())
            }
            index::Found::Domain { tenant, .. } => tenant_affected(*tenant),
            index::Found::Tenant(ti) => tenant_affected(*ti),
        }
    }

    pub(super) fn tenant_index(&self, id: &str) -> Option<usize> {
        let n: usize = id.strip_prefix('t')?.parse().ok()?;
        (n < self.tenants.len() && *self.tenants[n].id == *id).then_some(n)
    }
}

impl Simulator {
    /// What the cluster can deliver of its queued mail per second. Known
    /// from the platform's history, as its traffic is: a hosted platform has
    /// drained backlogs before (after maintenance, a spam wave), and its
    /// delivery rate then is in its metrics. Learnt only when delivery was
    /// seen at its limit, it was seen in the slow drill 36 hours in, two
    /// thirds through its reindex, and its queue's ETA was two hours early
    /// until then.
    pub(super) fn delivery_limit(&self) -> f64 {
        self.sc.mail.backlog_delivery_per_second * self.scale
    }
}

/// A cluster's queued mail: `held` for mailboxes without service now,
/// `arriving` more per second for them while they wait (at the day's mean
/// load; more at busy hours and less at night, as the platform's `traffic`
/// by quarter hour of the day says, when known), `deliverable` already
/// released, all delivered at `limit` per second.
struct QueuedMail<'a> {
    held: f64,
    arriving: f64,
    traffic: Option<&'a [f64; QUARTERS]>,
    deliverable: f64,
    limit: f64,
}

impl QueuedMail<'_> {
    /// The load `t` seconds after `now` against the day's mean (1 without
    /// a traffic history).
    fn busy(&self, now: DateTime<Utc>) -> impl Fn(f64) -> f64 + '_ {
        let mean = self
            .traffic
            .map_or(0.0, |a| a.iter().sum::<f64>() / QUARTERS as f64);
        move |t: f64| match self.traffic {
            Some(a) if mean > 0.0 => {
                a[quarter_of(now + Duration::milliseconds((t * 1000.0) as i64))] / mean
            }
            _ => 1.0,
        }
    }

    /// When the queue is empty if the reindex ends at its `p50`, and at the
    /// latest if it ends by its `p90`. The tail after the reindex is itself
    /// a forecast (of how fast the last mailboxes come back and how much
    /// mail they have waiting): the p90 allows it half again as long. In
    /// the slow drill it was 124 minutes at the median and up to 46
    /// minutes short one time in ten (60 seeds); drawn from the reindex's
    /// p90 alone, the queue's p90 was passed 60 times in its last four
    /// hours (20 seeds), the reindex's p90 then minutes after its p50.
    fn eta(
        &self,
        now: DateTime<Utc>,
        p50: DateTime<Utc>,
        p90: DateTime<Utc>,
        curve: Option<&WorkCurve>,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        let at_p50 = self.empty_by(now, p50, curve);
        let tail = (at_p50 - p50.max(now)).max(Duration::zero());
        let at_p90 = self.empty_by(now, p90, curve).max(at_p50 + tail / 2);
        (at_p50, at_p90)
    }

    /// When the queue is empty if the mailboxes come back in step with the
    /// reindex's `curve` of work, the last at `end`: the mail each has
    /// waiting is released when it comes back. The reindex runs several
    /// times faster at night than at peak hours, and mail waits longer for
    /// the last mailboxes: released evenly over the time left, as each
    /// tenant's ETA came, the slow drill's last night, when most of its mail
    /// comes, was drawn at half its rate, and its queue empty with the
    /// reindex, two hours early.
    fn empty_by(
        &self,
        now: DateTime<Utc>,
        end: DateTime<Utc>,
        curve: Option<&WorkCurve>,
    ) -> DateTime<Utc> {
        const STEP_SECS: f64 = 300.0;
        let (held, arriving) = (self.held.max(0.0), self.arriving.max(0.0));
        let limit = self.limit.max(1e-9);
        let span = (end - now).num_seconds().max(0) as f64;
        // Without a curve (no progress yet) the work is taken as even.
        let work = |t: f64| curve.map_or(t, |c| c.work_by(t));
        let total = work(span);
        // Share of the mailboxes back `t` seconds from now (all of them at
        // `end` when the curve draws no work before it).
        let back_by = |t: f64| {
            if total > 0.0 {
                (work(t.min(span)) / total).clamp(0.0, 1.0)
            } else if t >= span {
                1.0
            } else {
                0.0
            }
        };
        let busy = self.busy(now);
        let mut queued = self.deliverable.max(0.0);
        if span == 0.0 {
            queued += held;
        }
        // Mail that queues for the mailboxes still waiting, the same for
        // each, half of a step's at its middle. It follows the users' day:
        // the last night, when the reindex runs fastest and the most mail
        // comes back, brings little more (drawn at the day's mean, the slow
        // drill's tail after a reindex that ended in the night was drawn 18%
        // too long before its scan, and its queue's p50 held 60%).
        let mut arrived = 0.0;
        let mut t = 0.0;
        while t < span {
            let dt = STEP_SECS.min(span - t);
            let step = arriving * busy(t + dt / 2.0) * dt;
            let waiting = held + arrived + step / 2.0;
            arrived += step;
            let released = (back_by(t + dt) - back_by(t)) * waiting;
            queued = (queued + released - limit * dt).max(0.0);
            t += dt;
        }
        end.max(now) + Duration::seconds((queued / limit) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::QueuedMail;
    use crate::domain::calibrated::{QUARTERS, WorkCurve};
    use chrono::{DateTime, Duration, Utc};

    fn now() -> DateTime<Utc> {
        "2026-11-15T18:00:00Z".parse().unwrap()
    }

    /// Seconds from now until the queue is empty.
    fn empty(r: &QueuedMail, secs: i64, curve: Option<&WorkCurve>) -> i64 {
        (r.empty_by(now(), now() + Duration::seconds(secs), curve) - now()).num_seconds()
    }

    fn held(held: f64, limit: f64) -> QueuedMail<'static> {
        QueuedMail {
            held,
            arriving: 0.0,
            traffic: None,
            deliverable: 0.0,
            limit,
        }
    }

    #[test]
    fn the_queue_empties_with_the_last_mailbox_unless_its_mail_outruns_delivery() {
        // Nothing held: empty when what was released is delivered.
        let released = QueuedMail {
            deliverable: 600.0,
            ..held(0.0, 10.0)
        };
        assert_eq!(empty(&released, 0, None), 60);
        // 9,000 messages over 1,000 s at 10/s: delivery keeps up.
        assert_eq!(empty(&held(9_000.0, 10.0), 1_000, None), 1_000);
        // 30,000 over 1,000 s: 20,000 left when the last mailbox is back.
        assert_eq!(empty(&held(30_000.0, 10.0), 1_000, None), 3_000);
        // What queues while the mailboxes wait counts too, more of it for the
        // last ones: 40/s for 1,000 s, released at 0.04·t per second, past
        // delivery's 10/s from 250 s: 11,250 left at 1,000 s (2,125 s
        // exactly; five-minute steps see a little less).
        let waiting = QueuedMail {
            arriving: 40.0,
            ..held(0.0, 10.0)
        };
        let t = empty(&waiting, 1_000, None);
        assert!((2_100..=2_125).contains(&t), "{t}");
        // The last mailbox already due: everything held is released now.
        assert_eq!(empty(&held(6_000.0, 10.0), 0, None), 600);
    }

    #[test]
    fn the_p90_allows_the_tail_after_the_reindex_half_again_as_long() {
        let queue = held(30_000.0, 10.0);
        let at = |secs| now() + Duration::seconds(secs);
        // A 2,000 s tail after a reindex due at 1,000 s (p90 at 1,100 s,
        // where the tail alone would be 1,900 s): the p90 is 1,000 s after
        // the p50, not 0.
        let (p50, p90) = queue.eta(now(), at(1_000), at(1_100), None);
        assert_eq!((p50, p90), (at(3_000), at(4_000)));
        // No tail: the reindex's own range.
        let (p50, p90) = held(1_000.0, 10.0).eta(now(), at(1_000), at(1_100), None);
        assert_eq!((p50, p90), (at(1_000), at(1_100)));
    }

    #[test]
    fn mail_that_arrives_in_a_quiet_night_is_drawn_at_the_nights_load() {
        // 18:00 to 06:00, a night at a third of the day's mean load: 40
        // messages a second at the mean are 13⅓ at night. Released evenly
        // over the twelve hours, the waiting mail outruns a 10/s delivery
        // only in the last three, and 18,000 are left (1,800 s). At the
        // mean all night, 486,000 would be: the queue empty 13½ hours after
        // the reindex rather than half an hour.
        let mut traffic = [0.2; QUARTERS];
        traffic[24..72].fill(1.0);
        let night = QueuedMail {
            arriving: 40.0,
            traffic: Some(&traffic),
            ..held(0.0, 10.0)
        };
        let t = empty(&night, 43_200, None);
        assert!((43_200 + 1_700..=43_200 + 1_900).contains(&t), "{t}");
        let mean = QueuedMail {
            traffic: None,
            ..night
        };
        let t = empty(&mean, 43_200, None);
        assert!((43_200 + 48_000..=43_200 + 48_700).contains(&t), "{t}");
    }

    #[test]
    fn mail_released_in_a_fast_last_night_empties_the_queue_after_the_reindex() {
        // Ten hours left: four at 1 unit/s (a peak), six at 4/s (the night):
        // 24 of the 28 units, and 86% of the mail, come back in the night.
        let rates: Vec<f64> = (0..40).map(|q| if q < 16 { 1.0 } else { 4.0 }).collect();
        let curve = WorkCurve::from_rates(now(), &rates);
        let queue = held(360_000.0, 12.0);
        // Evenly over ten hours (10/s) a 12/s delivery keeps up; in step with
        // the work, the night releases 14.3/s and leaves 50,000 behind.
        assert_eq!(empty(&queue, 36_000, None), 36_000);
        let t = empty(&queue, 36_000, Some(&curve));
        assert!((36_000 + 4_000..36_000 + 4_400).contains(&t), "{t}");
    }
}
