//! What the simulator shows: a cluster, a mailbox row, addresses and positions, lookups back to mailboxes.

use super::*;

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
            // the whole queue could be delivered at what delivery can do,
            // once seen at its limit. The best rate seen before that is
            // what was released, not what can be delivered: as a floor it
            // put the held-out drill's queue an hour after its reindex.
            let capacity = f.capacity_seen.filter(|cap| *cap > 0.0);
            let floor = capacity.map(|cap| now + Duration::seconds((depth as f64 / cap) as i64));
            if let (Some(p50), Some(p90)) = (reindex.eta.p50, reindex.eta.p90) {
                // The last half hour's arrivals, taken to a day's mean by the
                // platform's load history: the mail that queues while the
                // last tenants wait arrives over hours, not at this hour's
                // rate (a morning peak's rate carried over a day).
                let typical = if load > 0.0 {
                    self.mean_load / load
                } else {
                    1.0
                };
                let per_mailbox = f.arrival_per_sec * typical / mailboxes.max(1) as f64;
                let tail = capacity
                    .filter(|_| self.scan_done())
                    .map(|cap| self.queue_tail(c, now, per_mailbox, deliverable, cap));
                let at_least = |t: DateTime<Utc>, tail: Option<DateTime<Utc>>| {
                    let t = floor.map_or(t, |f| t.max(f));
                    tail.map_or(t, |e| t.max(e))
                };
                round_eta(EtaRange::at(
                    at_least(p50, tail.map(|(a, _)| a)),
                    at_least(p90, tail.map(|(_, b)| b)),
                ))
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
    /// When cluster `c`'s queue is empty by its tenants' p50s and by their
    /// p90s, with delivery at `capacity` (its limit, once seen: the best
    /// rate of a delivery that kept up is less than it can do) and the scan
    /// done: each affected tenant's held mail is released as its mailboxes
    /// come back, by its own ETA; the biggest tenants' last, after waiting
    /// longest, can come back faster than their mail can be delivered, and
    /// the queue then empties after the reindex (in the slow drill after
    /// its second fault, 1½ hours after).
    fn queue_tail(
        &self,
        c: usize,
        now: DateTime<Utc>,
        per_mailbox: f64,
        deliverable: f64,
        capacity: f64,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        let (mut by_p50, mut by_p90) = (Vec::new(), Vec::new());
        for t in self
            .tenants
            .iter()
            .filter(|t| t.cluster == c && t.states.affected() > 0)
        {
            let release = |back: DateTime<Utc>| Release {
                held: t.backlog,
                per_sec: per_mailbox * t.states.affected() as f64,
                secs: (back - now).num_seconds().max(0) as f64,
            };
            by_p50.extend(t.eta.p50.map(&release));
            by_p90.extend(t.eta.p90.map(&release));
        }
        let empty = |releases: &[Release]| {
            now + Duration::seconds(queue_empty_after(releases, deliverable, capacity) as i64)
        };
        (empty(&by_p50), empty(&by_p90))
    }
}

/// Mail a tenant holds for its mailboxes without service: `held` now, and
/// `per_sec` more while they wait, released as they come back over the
/// next `secs`.
struct Release {
    held: f64,
    per_sec: f64,
    secs: f64,
}

/// Seconds until the queue is empty: each tenant's mail released evenly
/// until its mailboxes are back (what it holds, and half of what will
/// queue meanwhile), on top of the `deliverable` mail already released,
/// all delivered at `capacity` per second. A queue can only fall behind
/// while releases outpace delivery; what is left when the last tenant is
/// back is delivered after it.
fn queue_empty_after(releases: &[Release], deliverable: f64, capacity: f64) -> f64 {
    let mut ends: Vec<(f64, f64)> = releases
        .iter()
        .map(|r| {
            let total = r.held.max(0.0) + r.per_sec.max(0.0) * r.secs / 2.0;
            (r.secs, total)
        })
        .collect();
    ends.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Release rate while each span lasts: every tenant not back yet.
    let mut rate: f64 = ends
        .iter()
        .filter(|(secs, _)| *secs > 0.0)
        .map(|(secs, total)| total / secs)
        .sum();
    let mut queued = deliverable.max(0.0)
        + ends
            .iter()
            .filter(|(secs, _)| *secs <= 0.0)
            .map(|(_, total)| total)
            .sum::<f64>();
    let mut at = 0.0;
    for (secs, total) in ends.iter().filter(|(secs, _)| *secs > 0.0) {
        queued = (queued + (rate - capacity) * (secs - at)).max(0.0);
        rate -= total / secs;
        at = *secs;
    }
    at + queued / capacity
}

#[cfg(test)]
mod tests {
    use super::{Release, queue_empty_after};

    #[test]
    fn mail_released_faster_than_it_can_be_delivered_empties_after_the_last_tenant() {
        let quick = |held, secs| Release {
            held,
            per_sec: 0.0,
            secs,
        };
        // Nothing held: empty when what was released is delivered.
        assert_eq!(queue_empty_after(&[], 600.0, 10.0), 60.0);
        // 1,000 messages over 1,000 s at 10/s capacity: delivery keeps up.
        let t = queue_empty_after(&[quick(1_000.0, 1_000.0)], 0.0, 10.0);
        assert!((t - 1_000.0).abs() < 1e-6, "{t}");
        // 30,000 over 1,000 s: 20,000 left when the tenant is back.
        let t = queue_empty_after(&[quick(30_000.0, 1_000.0)], 0.0, 10.0);
        assert!((t - 3_000.0).abs() < 1e-6, "{t}");
        // A small tenant back early and a big one last: only the last
        // stretch, when the big one's mail alone comes, falls behind.
        let t = queue_empty_after(
            &[quick(5_000.0, 500.0), quick(24_000.0, 2_000.0)],
            0.0,
            20.0,
        );
        // 0–500 s: 10 + 12 = 22/s (2/s behind: 1,000 left); 500–2,000 s:
        // 12/s, the 1,000 delivered. Empty at 2,000 s.
        assert!((t - 2_000.0).abs() < 1e-6, "{t}");
        // What queues while waiting counts, half of it on average.
        let t = queue_empty_after(
            &[Release {
                held: 0.0,
                per_sec: 40.0,
                secs: 1_000.0,
            }],
            0.0,
            10.0,
        );
        assert!((t - 2_000.0).abs() < 1e-6, "20,000 released: {t}");
    }
}
