//! Slips: an ETA that moved later than what was published or first shown.
//!
//! In the 2008 outage the worst failure was not a wrong first estimate but
//! ETAs promised to customers and missed, again and again, with nobody
//! saying so. Support staff read ETAs to customers; when one moves later,
//! the room must see it, say it, and put it on the record.
//!
//! [`SlipTracker`] remembers, per tenant and per *episode* (from the moment
//! a tenant has mailboxes affected until it has none), the p90 it measures
//! slips from, the *baseline*:
//!
//! - the p90 the tenant had when the last status update was published, if it
//!   had one then ([`SlipBasis::Published`]);
//! - otherwise the first p90 shown in this episode ([`SlipBasis::FirstShown`]).
//!
//! A **slip** is the current p90 at least [`THRESHOLD`] later than the
//! baseline, or no estimate any more after there was one (the estimate was
//! *withdrawn*). An ETA that moves earlier is not a slip, and a slip that
//! comes back within the threshold ends. A tenant with nothing affected ends
//! its episode: the next one starts afresh.
//!
//! Pure and clocked by the caller (the gateway's hub feeds it every row it
//! sends, with the source clock), so every console, script and report shows
//! the same slip.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::forecast::EtaRange;
use super::model::TenantRow;

/// Moves smaller than this are the forecast's noise, not news for a
/// customer (ETAs beyond the hour are shown in 5-minute steps).
pub(crate) const THRESHOLD: Duration = Duration::minutes(15);

/// What a slip is measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlipBasis {
    /// The first p90 shown in this episode (no status update gave one).
    FirstShown,
    /// The p90 when the last status update was published.
    Published,
}

impl SlipBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            SlipBasis::FirstShown => "first_shown",
            SlipBasis::Published => "published",
        }
    }
}

/// A tenant's ETA, later than its baseline (or withdrawn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtaSlip {
    pub basis: SlipBasis,
    /// When the baseline was shown or published (source clock).
    pub since: DateTime<Utc>,
    /// The p90 then.
    pub baseline_p90: DateTime<Utc>,
    /// How much later the p90 is now (at least [`THRESHOLD`]); None: there
    /// is no estimate now (the estimate was withdrawn).
    pub later_by: Option<Duration>,
}

impl EtaSlip {
    /// No estimate now, after there was one.
    pub fn withdrawn(&self) -> bool {
        self.later_by.is_none()
    }
}

/// A p90 and when it was shown or published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shown {
    p90: DateTime<Utc>,
    at: DateTime<Utc>,
}

/// One tenant's episode: from affected to nothing affected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Episode {
    first: Option<Shown>,
    published: Option<Shown>,
    /// The p90 shown now; None: no estimate now.
    p90: Option<DateTime<Utc>>,
}

impl Episode {
    fn slip(&self) -> Option<EtaSlip> {
        let (base, basis) = match (self.published, self.first) {
            (Some(p), _) => (p, SlipBasis::Published),
            (None, Some(f)) => (f, SlipBasis::FirstShown),
            (None, None) => return None,
        };
        let later_by = match self.p90 {
            Some(p90) if p90 - base.p90 >= THRESHOLD => Some(p90 - base.p90),
            Some(_) => return None,
            None => None,
        };
        Some(EtaSlip {
            basis,
            since: base.at,
            baseline_p90: base.p90,
            later_by,
        })
    }
}

/// The p90 a row shows; None when it shows no estimate.
fn shown_p90(eta: &EtaRange) -> Option<DateTime<Utc>> {
    eta.p90.or(eta.p50)
}

/// Baselines and slips of every tenant in an episode. See the module
/// documentation for the rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct SlipTracker {
    episodes: HashMap<Arc<str>, Episode>,
}

impl SlipTracker {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// `row` as it is shown at `at` (source clock). Returns whether the
    /// tenant's slip changed.
    pub(crate) fn observe(&mut self, row: &TenantRow, at: DateTime<Utc>) -> bool {
        if row.affected() == 0 {
            // The episode ends: nothing is promised any more.
            return self
                .episodes
                .remove(&row.id)
                .is_some_and(|e| e.slip().is_some());
        }
        let p90 = shown_p90(&row.eta);
        let e = self.episodes.entry(row.id.clone()).or_default();
        let before = e.slip();
        e.p90 = p90;
        if e.first.is_none()
            && let Some(p90) = p90
        {
            e.first = Some(Shown { p90, at });
        }
        e.slip() != before
    }

    /// A status update was published at `at` (source clock): from now on
    /// each tenant's slip is measured from the p90 it has now, if it has
    /// one (otherwise still from its first p90). Returns the tenants whose
    /// slip changed, so their rows can be sent again.
    pub(crate) fn published(&mut self, at: DateTime<Utc>) -> Vec<Arc<str>> {
        let mut changed = Vec::new();
        for (id, e) in &mut self.episodes {
            let before = e.slip();
            e.published = e.p90.map(|p90| Shown { p90, at });
            if e.slip() != before {
                changed.push(id.clone());
            }
        }
        changed.sort();
        changed
    }

    /// The tenant's slip now, if its ETA slipped.
    pub(crate) fn slip(&self, tenant_id: &str) -> Option<EtaSlip> {
        self.episodes.get(tenant_id).and_then(Episode::slip)
    }

    /// Sets `row.eta_slip` to what this tracker knows.
    pub(crate) fn annotate(&self, row: &mut TenantRow) {
        row.eta_slip = self.slip(&row.id);
    }

    #[cfg(test)]
    /// Tenants in an episode (affected when last seen).
    pub fn tracked(&self) -> usize {
        self.episodes.len()
    }
}

/// The slipped tenants among `rows`, worst first: withdrawn estimates,
/// then the most moved, then by name.
pub(crate) fn slipped<'a>(rows: impl IntoIterator<Item = &'a TenantRow>) -> Vec<&'a TenantRow> {
    let mut out: Vec<&TenantRow> = rows.into_iter().filter(|t| t.eta_slip.is_some()).collect();
    out.sort_by_cached_key(|t| {
        let later = t.eta_slip.as_ref().and_then(|s| s.later_by);
        (
            later.is_some(),
            std::cmp::Reverse(later),
            t.name.to_lowercase(),
            t.id.clone(),
        )
    });
    out
}

/// One sample of an ETA's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtaSample {
    /// When it was shown (source clock).
    pub at: DateTime<Utc>,
    pub eta: EtaRange,
}

/// An ETA over time, one sample per step (an hour at first), with a fixed
/// number of samples: when full, every other sample goes and the step
/// doubles, so the history always reaches back to the first sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EtaHistory {
    samples: Vec<EtaSample>,
    step: Duration,
    capacity: usize,
}

/// The first step of an [`EtaHistory`].
pub(crate) const HISTORY_STEP: Duration = Duration::hours(1);
/// Samples kept: two days at one an hour.
pub(crate) const HISTORY_SAMPLES: usize = 48;

impl Default for EtaHistory {
    fn default() -> Self {
        Self::new(HISTORY_STEP, HISTORY_SAMPLES)
    }
}

impl EtaHistory {
    pub(crate) fn new(step: Duration, capacity: usize) -> Self {
        EtaHistory {
            samples: Vec::new(),
            step: step.max(Duration::seconds(1)),
            capacity: capacity.max(2),
        }
    }

    /// The step-aligned slot `t` falls in.
    fn slot(t: DateTime<Utc>, step: Duration) -> i64 {
        t.timestamp().div_euclid(step.num_seconds().max(1))
    }

    /// Records `eta` as shown at `at`: the first sample of each step is
    /// kept, the rest of that step is not.
    pub(crate) fn record(&mut self, at: DateTime<Utc>, eta: &EtaRange) {
        if let Some(last) = self.samples.last()
            && (at <= last.at || Self::slot(at, self.step) == Self::slot(last.at, self.step))
        {
            return;
        }
        self.samples.push(EtaSample {
            at,
            eta: eta.clone(),
        });
        if self.samples.len() > self.capacity {
            self.step = self.step * 2;
            let step = self.step;
            let mut last_slot = None;
            self.samples.retain(|s| {
                let slot = Some(Self::slot(s.at, step));
                let keep = slot != last_slot;
                last_slot = slot;
                keep
            });
        }
    }

    pub(crate) fn samples(&self) -> &[EtaSample] {
        &self.samples
    }

    #[cfg(test)]
    /// The time between two samples now.
    pub fn step(&self) -> Duration {
        self.step
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MailboxState, StateCounts};

    fn t(h: i64, m: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_223_314_200, 0).unwrap()
            + Duration::hours(h)
            + Duration::minutes(m)
    }

    /// A tenant with `affected` mailboxes and p90 `p90` (None: no estimate).
    fn row(id: &str, affected: u64, p90: Option<DateTime<Utc>>) -> TenantRow {
        let mut states = StateCounts::default();
        states.add(MailboxState::ReindexPending, affected);
        states.add(MailboxState::Ok, 10);
        TenantRow {
            id: id.into(),
            mailboxes: affected + 10,
            states,
            eta: match p90 {
                Some(p) => EtaRange::at(p - Duration::hours(1), p),
                None => EtaRange::unknown("no progress at the current rate"),
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_first_p90_shown_is_the_baseline_and_a_later_one_is_a_slip() {
        let mut s = SlipTracker::new();
        assert!(!s.observe(&row("a", 5, Some(t(4, 0))), t(0, 0)));
        assert_eq!(s.slip("a"), None);
        // Ten minutes later: noise, not a slip.
        assert!(!s.observe(&row("a", 5, Some(t(4, 10))), t(1, 0)));
        assert_eq!(s.slip("a"), None);
        // Two hours later: a slip, measured from the first p90 and its time.
        assert!(s.observe(&row("a", 5, Some(t(6, 0))), t(2, 0)));
        assert_eq!(
            s.slip("a"),
            Some(EtaSlip {
                basis: SlipBasis::FirstShown,
                since: t(0, 0),
                baseline_p90: t(4, 0),
                later_by: Some(Duration::hours(2)),
            })
        );
        // Exactly the threshold is a slip; one second less is not.
        s.observe(&row("a", 5, Some(t(4, 15))), t(3, 0));
        assert_eq!(
            s.slip("a").and_then(|x| x.later_by),
            Some(Duration::minutes(15))
        );
        s.observe(&row("a", 5, Some(t(4, 15) - Duration::seconds(1))), t(3, 1));
        assert_eq!(s.slip("a"), None, "back within the threshold: no slip");
    }

    #[test]
    fn an_earlier_eta_is_not_a_slip_and_does_not_move_the_baseline() {
        let mut s = SlipTracker::new();
        s.observe(&row("a", 5, Some(t(4, 0))), t(0, 0));
        s.observe(&row("a", 5, Some(t(2, 0))), t(1, 0));
        assert_eq!(s.slip("a"), None);
        // Later again, but only 30 minutes after the first p90.
        s.observe(&row("a", 5, Some(t(4, 30))), t(2, 0));
        let slip = s.slip("a").unwrap();
        assert_eq!(slip.later_by, Some(Duration::minutes(30)));
        assert_eq!((slip.since, slip.baseline_p90), (t(0, 0), t(4, 0)));
    }

    #[test]
    fn a_publish_moves_the_baseline_to_the_p90_of_that_moment() {
        let mut s = SlipTracker::new();
        s.observe(&row("a", 5, Some(t(4, 0))), t(0, 0));
        s.observe(&row("a", 5, Some(t(6, 0))), t(1, 0));
        assert!(s.slip("a").is_some());
        // The update told the customer 06:00: the slip is said, it ends.
        assert_eq!(s.published(t(1, 30)), vec![Arc::<str>::from("a")]);
        assert_eq!(s.slip("a"), None);
        // Later than what was published: a slip since the publish.
        s.observe(&row("a", 5, Some(t(7, 0))), t(2, 0));
        assert_eq!(
            s.slip("a"),
            Some(EtaSlip {
                basis: SlipBasis::Published,
                since: t(1, 30),
                baseline_p90: t(6, 0),
                later_by: Some(Duration::hours(1)),
            })
        );
        // Earlier than published but later than first shown: no slip, the
        // published p90 is the baseline.
        s.observe(&row("a", 5, Some(t(5, 0))), t(3, 0));
        assert_eq!(s.slip("a"), None);
        // A publish that changes no slip reports nobody.
        assert!(s.published(t(3, 30)).is_empty());
    }

    #[test]
    fn a_tenant_without_an_eta_at_the_publish_keeps_its_first_p90_as_baseline() {
        let mut s = SlipTracker::new();
        s.observe(&row("a", 5, Some(t(4, 0))), t(0, 0));
        s.observe(&row("a", 5, None), t(1, 0));
        s.published(t(1, 30));
        s.observe(&row("a", 5, Some(t(5, 0))), t(2, 0));
        let slip = s.slip("a").unwrap();
        assert_eq!(slip.basis, SlipBasis::FirstShown);
        assert_eq!(
            (slip.since, slip.later_by),
            (t(0, 0), Some(Duration::hours(1)))
        );
    }

    #[test]
    fn an_estimate_withdrawn_after_one_was_shown_is_a_slip() {
        let mut s = SlipTracker::new();
        // No estimate before the first one is not a slip (nothing was said).
        s.observe(&row("a", 5, None), t(0, 0));
        assert_eq!(s.slip("a"), None);
        s.observe(&row("a", 5, Some(t(4, 0))), t(1, 0));
        assert!(s.observe(&row("a", 5, None), t(2, 0)));
        let slip = s.slip("a").unwrap();
        assert!(slip.withdrawn());
        assert_eq!((slip.since, slip.baseline_p90), (t(1, 0), t(4, 0)));
        // An estimate again, no later than the baseline: the slip ends.
        assert!(s.observe(&row("a", 5, Some(t(4, 5))), t(3, 0)));
        assert_eq!(s.slip("a"), None);
    }

    #[test]
    fn nothing_affected_ends_the_episode_and_the_next_starts_afresh() {
        let mut s = SlipTracker::new();
        s.observe(&row("a", 5, Some(t(4, 0))), t(0, 0));
        s.observe(&row("a", 5, Some(t(8, 0))), t(1, 0));
        assert!(s.slip("a").is_some());
        assert!(
            s.observe(&row("a", 0, None), t(2, 0)),
            "the slip is cleared"
        );
        assert_eq!((s.slip("a"), s.tracked()), (None, 0));
        // A later fault: the first p90 of the new episode is its baseline,
        // whatever the old one promised.
        s.observe(&row("a", 3, Some(t(10, 0))), t(5, 0));
        assert_eq!(s.slip("a"), None);
        s.observe(&row("a", 3, Some(t(11, 0))), t(6, 0));
        assert_eq!(s.slip("a").unwrap().since, t(5, 0));
    }

    #[test]
    fn annotate_sets_the_row_and_leaves_others_alone() {
        let mut s = SlipTracker::new();
        s.observe(&row("a", 5, Some(t(4, 0))), t(0, 0));
        s.observe(&row("a", 5, Some(t(5, 0))), t(1, 0));
        s.observe(&row("b", 5, Some(t(4, 0))), t(0, 0));
        let mut a = row("a", 5, Some(t(5, 0)));
        let mut b = row("b", 5, Some(t(4, 0)));
        let mut c = row("c", 0, None);
        for r in [&mut a, &mut b, &mut c] {
            s.annotate(r);
        }
        assert_eq!(a.eta_slip.unwrap().later_by, Some(Duration::hours(1)));
        assert_eq!((b.eta_slip, c.eta_slip), (None, None));
    }

    #[test]
    fn slipped_tenants_come_worst_first() {
        let mut s = SlipTracker::new();
        let mut rows = Vec::new();
        for (id, later) in [("a", Some(1)), ("b", None), ("c", Some(3)), ("d", Some(0))] {
            s.observe(&row(id, 5, Some(t(4, 0))), t(0, 0));
            let mut r = row(id, 5, later.map(|h| t(4 + h, 0)));
            s.observe(&r, t(1, 0));
            s.annotate(&mut r);
            rows.push(r);
        }
        let ids: Vec<&str> = slipped(&rows).iter().map(|r| &*r.id).collect();
        assert_eq!(ids, ["b", "c", "a"]);
    }

    #[test]
    fn the_history_keeps_one_sample_an_hour_and_thins_when_full() {
        let mut h = EtaHistory::new(Duration::hours(1), 4);
        let eta = |p: i64| EtaRange::at(t(p, 0), t(p + 1, 0));
        for (i, m) in [0, 10, 50, 70, 130].into_iter().enumerate() {
            h.record(t(0, m), &eta(i as i64));
        }
        // 17:30, 18:20 and 19:40 start their hours; 17:40 and 18:40 do not.
        let at: Vec<DateTime<Utc>> = h.samples().iter().map(|s| s.at).collect();
        assert_eq!(at, vec![t(0, 0), t(0, 50), t(0, 130)]);
        // A sample from the past or the same moment is ignored.
        h.record(t(0, 0), &eta(9));
        assert_eq!(h.samples().len(), 3);
        h.record(t(0, 190), &eta(5));
        h.record(t(0, 250), &eta(6));
        // Five samples in a history of four: every other step goes, the
        // step doubles, the first sample stays.
        assert_eq!(h.step(), Duration::hours(2));
        assert_eq!(h.samples().first().unwrap().at, t(0, 0));
        assert!(h.samples().len() <= 4, "{:?}", h.samples());
        for w in h.samples().windows(2) {
            assert_ne!(
                EtaHistory::slot(w[0].at, h.step()),
                EtaHistory::slot(w[1].at, h.step())
            );
        }
    }
}
