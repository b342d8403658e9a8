//! How the simulated incident moves: the scan, scope revisions, the reindex, later faults, the mail flow.

use super::*;

impl Simulator {
    pub(super) fn scan(&mut self, dt: f64) {
        if self.scan_done() {
            return;
        }
        self.scan_carry += self.scan_rate() * dt;
        let mut budget = self.scan_carry.floor() as u64;
        self.scan_carry -= budget as f64;
        while budget > 0 && !self.scan_done() {
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
    pub(super) fn revise_scope(&mut self) {
        let now = self.now();
        let done = self.scan_done();
        let fraction = self.scanned_share();
        let damaged = self.restored_mailboxes + self.pending_mailboxes();
        let (Some(scope), files_found) = (self.scope.as_mut(), self.files_found) else {
            return;
        };
        let base = scope.current();
        if done {
            let exact = files_found;
            if exact != base {
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

    /// This simulated hour's factor on the reindex rate apart from the load
    /// (storage contention, mailbox contents, retries inside Dovecot):
    /// lognormal with mean 1 and the scenario's `speed_spread`, the same for
    /// a seed and hour forever.
    pub(super) fn speed_noise(&self) -> f64 {
        let sigma = self.sc.reindex.speed_spread;
        if sigma == 0.0 {
            return 1.0;
        }
        let hour = (self.t / 3600.0).floor().max(0.0) as u64;
        // Box–Muller from two stateless uniforms; 1 − u is in (0, 1].
        let u1 = 1.0 - unit(self.cfg.seed, 41, hour);
        let u2 = unit(self.cfg.seed, 43, hour);
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (sigma * z - sigma * sigma / 2.0).exp()
    }

    pub(super) fn reindex(&mut self, dt: f64, load: f64) {
        let mut budget = self.sc.reindex.files_per_second
            * self.scale
            * self.sc.reindex_factor(load)
            * self.speed_noise()
            * dt
            + self.budget_carry;
        let full = budget;
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
            self.attempted_files += files;
            if retry {
                self.failed_files = self.failed_files.saturating_sub(files);
            }
            // A few mailboxes fail their first reindex (a corrupt transaction
            // log) and wait, marked failed, at the back of their tenant's
            // queue for a retry, which succeeds.
            if !retry && unit(self.cfg.seed, 23, m) < self.sc.fault.reindex_failures {
                self.set_state(m, MailboxState::Failed);
                self.failed_files += files;
                self.lost_files += files;
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
            // A queue that ran dry within the tick worked only part of it:
            // its rate is the work over the time it had work, not over the
            // tick (for two hours after Cluster A's reindex, its last
            // mailboxes trickle in, and those ticks were recorded as hours
            // of a reindex running at a tenth of its speed).
            let busy = if self.in_flight.is_empty() && full > 0.0 {
                dt * (worked / full).min(1.0)
            } else {
                dt
            };
            self.reindex_rate.record(worked, busy);
            let now = self.now();
            self.fc.record(now, worked, busy, Some(load));
        }
    }

    /// A later fault (in 2008, a mail-server bug): a share of the mailboxes
    /// restored so far need reindexing again.
    pub(super) fn later_fault(&mut self, k: usize) {
        self.later_faults_done = k + 1;
        let Some(fault) = self.sc.later_faults.get(k).cloned() else {
            return;
        };
        // New work no rate could foresee: what was promised before it is
        // not a lesson for the forecaster.
        self.fc.later_fault();
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
                    "{}: {} to reindex again, {} files",
                    fault.reason,
                    format::counted(hit, "mailbox", "mailboxes"),
                    format::thousands(hit_files)
                ),
            );
        }
        self.incident_state = IncidentState::Identified;
    }

    /// Inbound mail: arrivals for affected mailboxes are queued; backlog whose
    /// mailboxes are back is delivered at the cluster's spare capacity.
    pub(super) fn mail_flow(&mut self, dt: f64, load: f64) {
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
        let capacity = self.delivery_limit() * dt;
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
}
