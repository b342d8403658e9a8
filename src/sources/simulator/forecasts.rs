//! The simulator's ETAs: each tenant's, the reindex's, their quotes and how they settle.

use super::*;

impl Simulator {
    /// Reindex rate statistics for this tick: p50 from the last hour of
    /// samples, p90 from the last day's.
    pub(super) fn reindex_stats(&self) -> RateStats {
        let per_hour = (HOUR / self.last_dt.max(1.0)).ceil() as usize;
        let per_day = (per_hour * 24).min(REINDEX_HISTORY);
        RateStats::recent_and_history(
            &self.reindex_rate.latest(per_hour.max(1)),
            &self.reindex_rate.rates(),
            self.reindex_rate.len() >= per_day,
        )
    }

    /// Recomputes every tenant's position in the reindex order and its ETA.
    pub(super) fn forecast_tenants(&mut self) {
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
        let scan_done = self.scan_done();
        let identified = self.scope.is_some();
        self.levels = levels(self.queues.iter().map(|(&slot, q)| {
            let counts = q
                .iter()
                .map(|&ti| self.tenants[ti as usize].pending.len() as u64);
            (slot, counts.collect())
        }));
        let last = self.last_positions();
        // The whole reindex's ETA: no tenant's is later.
        let whole = self
            .scope
            .as_ref()
            .map(|scope| self.reindex_eta(now, scope));
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
        // Tenants with a mailbox being reindexed right now: one pass over
        // the workers, not one per tenant (4,096 workers × 100,000 tenants
        // would dominate the tick at scale).
        let mut flying_tenants: Vec<usize> = self
            .in_flight
            .iter()
            .map(|f| self.tenant_of(f.mailbox))
            .collect();
        flying_tenants.sort_unstable();
        // A share of first attempts fails and waits at the back of its
        // tenant's queue for a retry: a tenant whose first attempts will
        // likely fail k times (the median of that many draws) ends k
        // rounds later, behind the tenants that still have mailboxes in
        // those rounds. The tenants whose queues end before its last round
        // are retried before it too: that share of their mailboxes more
        // ahead of it (without them the slow drill's big tenants were 2%
        // early, their p50 holding for 28% of the mailboxes after its
        // second fault).
        let share = failure_share(self.attempted_files as f64, self.lost_files as f64);
        let retries = |level: Option<&Level>, c: u64, first: u64| -> u64 {
            let Some(l) = level else { return 0 };
            let k = (first as f64 * share).round() as u64;
            let others = (l.shorter_than(c) as f64 * share).round() as u64;
            others + l.position(c + k) - l.position(c) + k
        };
        for (ti, &last_pos) in last.iter().enumerate() {
            let t = &self.tenants[ti];
            let first = (t.pending.len() as u64).saturating_sub(t.states.get(MailboxState::Failed));
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
                let level = projected.get(&t.slot());
                let pos = level.map_or(k, |l| l.position(k)) + retries(level, k, first + locked);
                let (eta, bin) =
                    eta_of(pos as f64 * self.avg_pending_files + in_flight_files, false);
                let reach = self.scan_reaches(now, self.scan_end[ti]);
                // With nothing of it queued, it joins the rotation when the
                // scan reaches it, behind every tenant then in it: a round
                // after that, not at that moment.
                let joined = (pending == 0 && !flying).then(|| {
                    let round = level.map_or(1, |l| l.position(1));
                    eta_of(round as f64 * self.avg_pending_files, false).0
                });
                let after = |t: Option<DateTime<Utc>>| t.map_or(reach, |t| reach + (t - now));
                let eta = match (eta.p50, eta.p90, joined) {
                    (Some(a), Some(b), Some(j)) => {
                        EtaRange::at(a.max(after(j.p50)), b.max(after(j.p90)))
                    }
                    (Some(a), Some(b), None) => EtaRange::at(a.max(reach), b.max(reach)),
                    _ => eta,
                };
                (0, eta, bin)
            } else if pending == 0 && !flying {
                (0, EtaRange::unknown(NO_ETA), None)
            } else {
                // While the scan runs, tenants it has not reached yet will
                // join the rotation and share every round after this one:
                // the place in this round as now, the rounds before it as
                // they will be once everything known to fail is queued.
                let pos = match (projected.get(&t.slot()), self.levels.get(&t.slot())) {
                    (Some(then), Some(queued)) if pending > 0 => {
                        let this_round = last_pos.saturating_sub(queued.position(pending - 1));
                        last_pos.max(then.position(pending - 1) + this_round)
                    }
                    _ => last_pos,
                };
                // The rank is its place in the order as it stands; the
                // ETA also waits for the retries its failures will need.
                let retried = pos + retries(self.levels.get(&t.slot()), pending, first);
                let (eta, bin) = eta_of(
                    retried as f64 * self.avg_pending_files + in_flight_files,
                    scan_done,
                );
                (pos + self.in_flight.len() as u64, eta, bin)
            };
            let eta = round_eta(eta).within(whole.as_ref().map(|(w, _)| w));
            let t = &mut self.tenants[ti];
            if t.eta != eta || t.rank != rank {
                t.dirty = true;
            }
            t.eta = eta;
            t.eta_bin = bin;
            t.rank = rank;
        }
        self.whole_eta = whole;
    }

    /// When `work` files will be reindexed: the calibrated range, with a
    /// p90 never earlier than the slow-rate bound (remaining ÷ the slowest
    /// tenth of a day's rates; while the scan runs, × (1 + the latest scope
    /// growth × the share not scanned yet) when the tenant is not fully
    /// found or `work` is the scope in files, an estimate that may grow
    /// again; once the scan is done the scope and a tenant's mailboxes are
    /// known): a calibration learns late about long horizons, and the
    /// p90 is the promise. Returns the calibration class used, to check it
    /// later.
    pub(super) fn eta(
        &self,
        work: f64,
        class: Class,
        from_scope: bool,
    ) -> (EtaRange, Option<usize>) {
        self.eta_of(work, work, class, from_scope)
    }

    /// `eta`, with the p50 drawn for `median_work` (the likeliest work)
    /// and the p90's floor for `work` (what it may still turn out to be).
    pub(super) fn eta_of(
        &self,
        median_work: f64,
        work: f64,
        class: Class,
        from_scope: bool,
    ) -> (EtaRange, Option<usize>) {
        // The scope may grow again by as much as it last did, on the part
        // of the cluster the scan has not seen: an extrapolation from the
        // share scanned is less wrong the more it has seen, and once the
        // scan is done (and after a later fault, whose size is counted)
        // the scope is known. The whole latest growth, kept to the end of
        // the scan, made the slow drill's p90 before its scan 12 days away
        // on average (now 9) with the same coverage.
        let unscanned = (1.0 - self.scanned_share()).max(0.0);
        let growth = match &self.scope {
            Some(s) if from_scope || !class.scope_known => s.latest_growth() * unscanned,
            _ => 0.0,
        };
        let floor = forecast_with(self.now(), work, self.rate_stats, growth);
        self.fc.eta(median_work, class, &floor)
    }

    /// Per tenant, the place of its last waiting mailbox in the reindex
    /// order (0 when none waits). Within a priority the queue is a
    /// round-robin in a fixed rotation, so a tenant with c mailboxes waiting
    /// is done after everyone's first c − 1 rounds and, in round c, after
    /// the tenants ahead of it in the rotation that still have a c-th.
    pub(super) fn last_positions(&self) -> Vec<u64> {
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
    pub(super) fn register_quotes(&mut self) {
        if !self.fc.quotes_due(self.now()) {
            return;
        }
        for (ti, t) in self.tenants.iter().enumerate() {
            self.fc.quote(ti as u32, t.eta_bin, &t.eta);
        }
        // The cluster's reindex ETA is checked against its own end.
        if let Some((eta, bin)) = &self.whole_eta {
            self.fc.quote(CLUSTER_KEY, *bin, eta);
        }
    }

    /// Tenants whose last affected mailbox came back this tick settle their
    /// open quotes; quotes whose time passed are misses.
    pub(super) fn settle_quotes(&mut self) {
        let now = self.now();
        for (ti, t) in self.tenants.iter().enumerate() {
            self.fc.affected(ti as u32, t.states.affected() > 0, now);
        }
        let busy = self.reindex_left();
        self.fc.affected(CLUSTER_KEY, busy, now);
        self.fc.settle(now);
    }

    /// The cluster's reindex ETA, and the calibration bin it used.
    pub(super) fn reindex_eta(
        &self,
        now: DateTime<Utc>,
        scope: &ScopeTracker,
    ) -> (EtaRange, Option<usize>) {
        let in_progress = self.in_progress_files();
        let remaining = self.files_left(scope);
        let scan_done = self.scan_done();
        if remaining <= 0.0 && self.in_flight.is_empty() && scan_done {
            (EtaRange::unknown(NO_ETA), None)
        } else {
            // While the scan runs: what the scope says is left, or what the
            // mailboxes known to fail their logins add up to, whichever is
            // more. Once it is done the scope is the files it found, exact:
            // the larger of that and an estimate from a sample of mailboxes
            // was the larger of two nearly equal figures, a little too much
            // work (the slow drill's cluster p50 was late 69% of the time).
            let mailboxes: u64 = self.tenants.iter().map(|t| t.states.affected()).sum();
            let by_mailbox = mailboxes as f64 * self.avg_pending_files;
            let left = remaining.max(in_progress as f64);
            let work = self.with_retries(if scan_done {
                left
            } else {
                left.max(by_mailbox)
            });
            // While the scan runs the scope shown is the largest estimate
            // so far (an overshoot is only taken back when the scan is
            // done), which the p90 keeps; the p50 takes the mailboxes known
            // to fail their logins, each at the files of a queued mailbox,
            // as the tenants' ETAs do. It used to take the files found
            // extrapolated by the share scanned, which overshoots while few
            // tenants are scanned (in the small fault 40% scanned had found
            // 63% of the damage): the cluster's p50 before the scan held
            // 58-100% of the time, late, in every drill.
            let median_work = if scan_done {
                work
            } else {
                self.with_retries(by_mailbox.max(in_progress as f64))
            };
            let class = Class {
                scope_known: scan_done,
                mailboxes,
                whole: true,
            };
            let (eta, bin) = self.eta_of(median_work, work, class, true);
            // Never before the scan has found everything.
            let reach = self.scan_reaches(now, self.mailboxes_a);
            let eta = round_eta(match (eta.p50, eta.p90) {
                (Some(a), Some(b)) => EtaRange::at(a.max(reach), b.max(reach)),
                _ => eta,
            });
            (eta, bin)
        }
    }

    /// Files of the scope not reindexed yet: those found, less those of
    /// the mailboxes restored and what is done of the ones in flight.
    /// Counted whole, a mailbox part done made the cluster's p50 late by
    /// its done part: seconds, but in the small fault's last minutes they
    /// decided the rounding (its p50 held 66% of the time, 62% now, on 20
    /// seeds).
    pub(super) fn files_left(&self, scope: &ScopeTracker) -> f64 {
        let started: f64 = self
            .in_flight
            .iter()
            .map(|f| (self.files[f.mailbox as usize] as f64 - f.remaining).max(0.0))
            .sum();
        (scope.current().saturating_sub(self.done_files) as f64 - started).max(0.0)
    }

    /// Files left in the mailboxes being reindexed right now.
    fn in_progress_files(&self) -> u64 {
        self.in_flight
            .iter()
            .map(|f| f.remaining.ceil() as u64)
            .sum()
    }

    /// When the scan will have been through its first `scanned` mailboxes.
    pub(super) fn scan_reaches(&self, now: DateTime<Utc>, scanned: u64) -> DateTime<Utc> {
        let left = scanned.saturating_sub(self.scanned) as f64;
        now + Duration::seconds((left / self.scan_rate()) as i64)
    }

    /// `files` left to reindex, as work (see [`with_retries`]).
    fn with_retries(&self, files: f64) -> f64 {
        with_retries(
            files,
            self.failed_files as f64,
            self.attempted_files as f64,
            self.lost_files as f64,
        )
    }

    pub(super) fn reindex_summary(&self, now: DateTime<Utc>) -> Reindex {
        let Some(scope) = &self.scope else {
            return Reindex {
                eta: EtaRange::none(NoEstimate::NotIdentified, "not identified yet"),
                ..Default::default()
            };
        };
        let eta = match &self.whole_eta {
            Some((eta, _)) => eta.clone(),
            None => self.reindex_eta(now, scope).0,
        };
        // The scenario's load curve is the simulated platform's traffic,
        // always known.
        let eta_assumes = self
            .fc
            .eta_assumes(&eta, || "no traffic history".to_string());
        Reindex {
            eta_assumes,
            unit: ScopeUnit::Files,
            scope: scope.current().max(self.done_files),
            done: self.done_files,
            failed: self.failed_files,
            in_progress: self.in_progress_files(),
            rate_per_min: self.rate_stats.median.map(|r| r * 60.0),
            eta,
            revisions: scope.revisions().to_vec(),
            mailboxes_pending: self.pending_mailboxes(),
            mailboxes_restored: self.restored_mailboxes,
            finished_at: self.reindex_done_at,
            eta_history: Vec::new(),
        }
    }
}

/// The share of first attempts that failed so far: `lost` files of the
/// `attempted` (0 before any attempt).
fn failure_share(attempted: f64, lost: f64) -> f64 {
    if attempted > 0.0 {
        lost / attempted
    } else {
        0.0
    }
}

/// `files` left to reindex as work: a share of first attempts fails and is
/// done again (the share seen so far: `lost` files of `attempted`), so the
/// files not tried yet cost that much more than their count; the `waiting`
/// ones (failed, queued for their retry) cost their count. Measured: the
/// slow drill's cluster p50 was early by the work its 2% of failures lost.
fn with_retries(files: f64, waiting: f64, attempted: f64, lost: f64) -> f64 {
    let share = failure_share(attempted, lost);
    let waiting = waiting.min(files);
    (files - waiting) * (1.0 + share) + waiting
}

#[cfg(test)]
mod tests {
    use super::with_retries;

    #[test]
    fn files_not_tried_yet_cost_the_retries_their_share_of_failures_will_need() {
        assert_eq!(
            with_retries(1_000.0, 0.0, 0.0, 0.0),
            1_000.0,
            "nothing tried yet"
        );
        // 2% of the files tried failed: 900 untried cost 918, the 100
        // waiting for their retry cost 100.
        let w = with_retries(1_000.0, 100.0, 5_000.0, 100.0);
        assert!((w - 1_018.0).abs() < 1e-9, "{w}");
    }
}
