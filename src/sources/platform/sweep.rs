//! The sweep: every mailbox of the platform probed for damage, at a rate
//! that protects Dovecot (probing is I/O, and a probe may repair what it
//! probes), tenants of higher priority first. Pure bookkeeping: the poller
//! asks [`SweepPlan::take_next`] what to probe and reports back; the console
//! gets [`SweepPlan::summary`].
//!
//! Until a pass is complete, "no damage found" only means "none found so
//! far": the summary carries how far the pass has got, its own ETA, and the
//! scope projected from the damage rate in what is swept (the 2008 lesson:
//! the scope grows as the scan goes).

use std::collections::{BTreeMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};

use crate::domain::Priority;
use crate::domain::forecast::{EtaRange, WorkRate, forecast_with};
use crate::domain::priority::order_key;
use crate::domain::{DamageCount, Sweep};

/// Mailboxes swept before a projection of the scope is shown: fewer say
/// too little about the rest.
const PROJECT_AFTER: u64 = 20;

/// One sweep pass and what the sweeps found.
#[derive(Debug)]
pub(crate) struct SweepPlan {
    pass: u32,
    /// Not probed yet in this pass, in probing order: (tenant, address).
    todo: VecDeque<(usize, String)>,
    /// Probed in this pass (or being probed).
    swept: HashSet<String>,
    /// Mailboxes in this pass.
    mailboxes: u64,
    found_in_pass: u64,
    kinds: BTreeMap<String, u64>,
    rate: WorkRate,
    /// Why the sweep is not probing now ("" while it is).
    paused: String,
}

impl Default for SweepPlan {
    fn default() -> Self {
        SweepPlan {
            pass: 1,
            todo: VecDeque::new(),
            swept: HashSet::new(),
            mailboxes: 0,
            found_in_pass: 0,
            kinds: BTreeMap::new(),
            // Samples of 30 s of sweeping; one counts after 5 probes.
            rate: WorkRate::new(120, 30.0, 5.0),
            paused: String::new(),
        }
    }
}

/// The tenant order of the war room: priority, explicit rank, then tenant.
fn key(priorities: &[(Priority, u32)], tenant: usize) -> ((Priority, u32), usize) {
    let (p, r) = priorities.get(tenant).copied().unwrap_or((Priority::P2, 0));
    (order_key(p, r), tenant)
}

impl SweepPlan {
    /// Continues pass `pass` of an incident replayed from the journal:
    /// `swept` were already probed in it.
    pub(crate) fn resume(&mut self, pass: u32, swept: impl IntoIterator<Item = String>) {
        self.pass = pass.max(1);
        self.swept = swept.into_iter().collect();
        self.todo.clear();
        self.mailboxes = 0;
    }

    pub(crate) fn restore_rate(&mut self, per_second: f64) {
        self.rate.restore(per_second);
    }

    pub(crate) fn pass(&self) -> u32 {
        self.pass
    }

    /// The current user list (`users[tenant]`, sorted). Mailboxes new to
    /// this pass join it in their tenant's place; gone ones leave it.
    pub(crate) fn set_users(&mut self, users: &[Vec<String>], priorities: &[(Priority, u32)]) {
        let all: HashSet<&str> = users.iter().flatten().map(String::as_str).collect();
        self.todo.retain(|(_, u)| all.contains(u.as_str()));
        self.swept.retain(|u| all.contains(u.as_str()));
        let queued: HashSet<String> = self.todo.iter().map(|(_, u)| u.clone()).collect();
        for (t, list) in users.iter().enumerate() {
            for u in list {
                if !self.swept.contains(u) && !queued.contains(u) {
                    self.todo.push_back((t, u.clone()));
                }
            }
        }
        self.mailboxes = (self.swept.len() + self.todo.len()) as u64;
        self.reorder(priorities);
    }

    /// Puts what is not swept yet in the war room's order (a `:prio`
    /// during a sweep moves that tenant's unswept mailboxes ahead).
    pub(crate) fn reorder(&mut self, priorities: &[(Priority, u32)]) {
        self.todo
            .make_contiguous()
            .sort_by(|a, b| (key(priorities, a.0), &a.1).cmp(&(key(priorities, b.0), &b.1)));
    }

    /// The next mailbox to probe, or None when this pass is done (call
    /// [`SweepPlan::next_pass`]) or there is nothing to sweep.
    pub(crate) fn take_next(&mut self) -> Option<(usize, String)> {
        let (t, u) = self.todo.pop_front()?;
        self.swept.insert(u.clone());
        Some((t, u))
    }

    /// A probe that could not be made (Dovecot unreachable): the mailbox
    /// goes back to the front, nothing is skipped.
    pub(crate) fn retry(&mut self, tenant: usize, user: String) {
        self.swept.remove(&user);
        self.todo.push_front((tenant, user));
    }

    /// A probe made over `seconds` (its own time plus the pause the rate
    /// budget put before it; time paused by an outage is not counted).
    pub(crate) fn probed(&mut self, seconds: f64) -> Option<f64> {
        self.rate.record(1.0, seconds)
    }

    /// Damage of `kind` found by a probe of this pass.
    pub(crate) fn found(&mut self, kind: &str) {
        self.found_in_pass += 1;
        *self.kinds.entry(kind.to_string()).or_default() += 1;
    }

    /// Counts a finding replayed from the journal.
    pub(crate) fn replayed(&mut self, kind: &str, in_this_pass: bool) {
        *self.kinds.entry(kind.to_string()).or_default() += 1;
        if in_this_pass {
            self.found_in_pass += 1;
        }
    }

    pub(crate) fn pass_done(&self) -> bool {
        self.todo.is_empty() && self.mailboxes > 0
    }

    /// Starts the next pass over `users`; returns the pass just completed
    /// and how many mailboxes it had.
    pub(crate) fn next_pass(
        &mut self,
        users: &[Vec<String>],
        priorities: &[(Priority, u32)],
    ) -> (u32, u64) {
        let done = (self.pass, self.mailboxes);
        self.pass += 1;
        self.swept.clear();
        self.found_in_pass = 0;
        self.todo.clear();
        self.set_users(users, priorities);
        done
    }

    pub(crate) fn set_paused(&mut self, why: impl Into<String>) {
        self.paused = why.into();
    }

    pub(crate) fn swept(&self) -> u64 {
        self.swept.len() as u64
    }

    /// What the console shows. `found` counts every damaged mailbox known
    /// (all passes, replayed ones included).
    pub(crate) fn summary(&self, now: DateTime<Utc>, found: u64, undetectable: &str) -> Sweep {
        let swept = self.swept();
        let left = self.mailboxes.saturating_sub(swept);
        let projected = (swept >= PROJECT_AFTER.min(self.mailboxes) && swept > 0).then(|| {
            let share = self.found_in_pass as f64 / swept as f64;
            found + (share * left as f64).ceil() as u64
        });
        let eta = if left == 0 {
            EtaRange::unknown(if self.mailboxes == 0 {
                "no mailboxes listed yet"
            } else {
                ""
            })
        } else if !self.paused.is_empty() {
            EtaRange::unknown(format!("paused: {}", self.paused))
        } else {
            forecast_with(now, left as f64, self.rate.stats(), 0.0)
        };
        let state = if !self.paused.is_empty() {
            format!("paused: {}", self.paused)
        } else if self.mailboxes == 0 {
            "waiting for the mailbox list".into()
        } else if left == 0 {
            "done".into()
        } else {
            "sweeping".into()
        };
        Sweep {
            pass: self.pass,
            mailboxes: self.mailboxes,
            swept,
            rate_per_min: self.rate.per_second().map(|r| r * 60.0),
            eta,
            found,
            projected,
            state,
            kinds: self
                .kinds
                .iter()
                .map(|(k, n)| DamageCount {
                    kind: k.clone(),
                    found: *n,
                })
                .collect(),
            undetectable: undetectable.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Vec<Vec<String>> {
        vec![
            vec!["a1@a".into(), "a2@a".into()],
            vec!["b1@b".into(), "b2@b".into(), "b3@b".into()],
        ]
    }

    #[test]
    fn a_p0_tenant_is_swept_first_even_when_set_mid_sweep() {
        let mut p = SweepPlan::default();
        let default = [(Priority::P2, 0), (Priority::P2, 0)];
        p.set_users(&users(), &default);
        assert_eq!(p.take_next().map(|x| x.1).as_deref(), Some("a1@a"));
        // `:prio b P0` during the sweep: b's unswept mailboxes go first.
        p.reorder(&[(Priority::P2, 0), (Priority::P0, 0)]);
        let order: Vec<String> = std::iter::from_fn(|| p.take_next().map(|x| x.1)).collect();
        assert_eq!(order, ["b1@b", "b2@b", "b3@b", "a2@a"]);
        assert!(p.pass_done());
    }

    #[test]
    fn progress_projection_and_eta_say_what_is_known() {
        let mut p = SweepPlan::default();
        let now = Utc::now();
        let s = p.summary(now, 0, "");
        assert_eq!(s.state, "waiting for the mailbox list");
        assert!(!s.complete(), "nothing swept is no finding");
        let many: Vec<Vec<String>> = vec![(0..100).map(|i| format!("u{i:03}@t")).collect()];
        p.set_users(&many, &[(Priority::P2, 0)]);
        for i in 0..40 {
            p.take_next();
            p.probed(0.1);
            if i % 10 == 0 {
                p.found("corrupt_log");
            }
        }
        let s = p.summary(now, 4, "");
        assert_eq!((s.swept, s.mailboxes, s.found), (40, 100, 4));
        // 4 in 40 swept: 6 more expected in the 60 left.
        assert_eq!(s.projected, Some(10));
        assert!(s.eta.is_known(), "{s:?}");
        let rate = s.rate_per_min.expect("measured after 5 probes");
        assert!((rate - 600.0).abs() < 1e-6, "10 probes/s: {rate}");
        assert_eq!(s.state, "sweeping");
        p.set_paused("dovecot unreachable");
        let s = p.summary(now, 4, "");
        assert!(s.state.starts_with("paused"), "{s:?}");
        assert!(!s.eta.is_known());
    }

    #[test]
    fn an_unreachable_probe_goes_back_to_the_front_and_a_pass_ends() {
        let mut p = SweepPlan::default();
        p.set_users(&users(), &[(Priority::P2, 0), (Priority::P2, 0)]);
        let (t, u) = p.take_next().unwrap();
        p.retry(t, u.clone());
        assert_eq!(p.take_next().map(|x| x.1), Some(u));
        while p.take_next().is_some() {}
        assert!(p.pass_done());
        assert_eq!(p.summary(Utc::now(), 0, "").state, "done");
        let (pass, n) = p.next_pass(&users(), &[(Priority::P2, 0), (Priority::P2, 0)]);
        assert_eq!((pass, n, p.pass(), p.swept()), (1, 5, 2, 0));
        assert!(
            p.summary(Utc::now(), 0, "").complete(),
            "a whole pass is a finding"
        );
    }

    #[test]
    fn mailboxes_listed_later_join_the_pass_and_gone_ones_leave_it() {
        let mut p = SweepPlan::default();
        let prio = [(Priority::P2, 0), (Priority::P2, 0)];
        p.set_users(&users(), &prio);
        p.take_next();
        let mut later = users();
        later[0].push("a3@a".into());
        later[1].retain(|u| u != "b3@b");
        p.set_users(&later, &prio);
        let s = p.summary(Utc::now(), 0, "");
        assert_eq!((s.swept, s.mailboxes), (1, 5));
    }
}
