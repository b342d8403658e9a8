//! The incident's figures over time, for the trends view: inbound queue
//! depth and mailboxes without service, for the whole platform and per
//! tenant, one point per step of the source clock.
//!
//! The gateway keeps one [`Trends`] for whatever source it serves (see
//! `gateway::slips::Tracked`): a console opened late, or restarted, sees
//! the incident's curve from the gateway's start, not from its own.
//! Memory is bounded: past [`Trends::MAX_POINTS`] points every other one
//! goes and the step doubles, so the history always starts at the first
//! point and spans the whole incident at a coarser grain.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::{Overview, TenantRow};

/// The platform's figures at one moment (source clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrendPoint {
    pub at: DateTime<Utc>,
    /// Inbound queue depth over all clusters; None when any cluster's was
    /// not measured then, or was only its last known (stale) figure.
    pub queue_depth: Option<u64>,
    /// Mailboxes without service; None when no mailbox was listed then (a
    /// platform before Dovecot's first answer): nothing measured, not 0.
    pub affected: Option<u64>,
    pub restored: u64,
}

/// A tenant's affected mailboxes, from the point it was first seen on.
/// Stored sparsely: nothing while every count so far is 0 (most tenants of
/// a big platform are never affected; 100,000 tenants at 720 points would
/// otherwise cost 288 MB).
#[derive(Debug, Clone, Default)]
struct Series {
    /// The point at which the tenant was first seen (points before it: not
    /// known).
    first: usize,
    /// The counts from `first` on; empty while all of them were 0.
    values: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Trends {
    step: Duration,
    points: Vec<TrendPoint>,
    index: HashMap<Arc<str>, usize>,
    /// Per tenant (by `index`), its affected mailboxes over the points.
    tenants: Vec<Series>,
    /// Each tenant's affected mailboxes now, recorded at the next point.
    current: Vec<u32>,
}

impl Default for Trends {
    fn default() -> Self {
        Trends::new(Duration::minutes(1))
    }
}

impl Trends {
    /// Points kept before the step doubles: 12 hours at one minute.
    pub const MAX_POINTS: usize = 720;

    pub fn new(step: Duration) -> Self {
        Trends {
            step: step.max(Duration::seconds(1)),
            points: Vec::new(),
            index: HashMap::new(),
            tenants: Vec::new(),
            current: Vec::new(),
        }
    }

    /// The time between points now.
    pub fn step(&self) -> Duration {
        self.step
    }

    /// Oldest first.
    pub fn points(&self) -> &[TrendPoint] {
        &self.points
    }

    /// A tenant's row as it is now: its count goes into the next point.
    pub fn observe(&mut self, row: &TenantRow) {
        let affected = u32::try_from(row.affected()).unwrap_or(u32::MAX);
        match self.index.get(&row.id) {
            Some(&i) => self.current[i] = affected,
            None => {
                self.index.insert(row.id.clone(), self.current.len());
                self.current.push(affected);
                self.tenants.push(Series {
                    first: self.points.len(),
                    values: Vec::new(),
                });
            }
        }
    }

    /// Records the overview at `now` if a step has passed since the last
    /// point (or there is none). A clock that went back records nothing.
    pub fn record(&mut self, o: &Overview, now: DateTime<Utc>) {
        if let Some(last) = self.points.last()
            && now < last.at + self.step
        {
            return;
        }
        self.points.push(TrendPoint {
            at: now,
            queue_depth: o.live_queue_depth(),
            affected: (o.totals.mailboxes > 0).then_some(o.totals.affected_mailboxes),
            restored: o.totals.restored_mailboxes,
        });
        let at = self.points.len() - 1;
        for (series, &now) in self.tenants.iter_mut().zip(&self.current) {
            if series.values.is_empty() && now == 0 {
                continue;
            }
            // The zeros before its first count, then the count.
            series.values.resize(at - series.first, 0);
            series.values.push(now);
        }
        if self.points.len() > Self::MAX_POINTS {
            self.thin();
        }
    }

    /// Keeps every other point (the first always) and doubles the step.
    fn thin(&mut self) {
        fn halve<T: Copy>(v: &mut Vec<T>) {
            let kept: Vec<T> = v.iter().copied().step_by(2).collect();
            *v = kept;
        }
        halve(&mut self.points);
        for series in &mut self.tenants {
            // Points at even positions stay: the series keeps those of its
            // values, and starts at the first kept point at or after its own.
            let skip = series.first % 2;
            let kept: Vec<u32> = series
                .values
                .iter()
                .copied()
                .skip(skip)
                .step_by(2)
                .collect();
            series.values = kept;
            series.first = series.first.div_ceil(2);
        }
        self.step = self.step * 2;
    }

    /// A tenant's affected mailboxes at each of [`Trends::points`]; None
    /// where the gateway did not know the tenant yet. None for a tenant it
    /// never saw.
    pub fn tenant(&self, id: &str) -> Option<Vec<Option<u64>>> {
        let &i = self.index.get(id)?;
        let s = &self.tenants[i];
        Some(
            (0..self.points.len())
                .map(|p| {
                    let k = p.checked_sub(s.first)?;
                    Some(u64::from(s.values.get(k).copied().unwrap_or(0)))
                })
                .collect(),
        )
    }

    /// Counts stored over all tenants (for the memory bound's test).
    pub fn tenant_values_stored(&self) -> usize {
        self.tenants.iter().map(|s| s.values.len()).sum()
    }
}

/// What a client receives: the points, and one tenant's series beside
/// them when it asked for one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct History {
    pub points: Vec<TrendPoint>,
    /// Empty: no tenant was asked for.
    pub tenant_id: String,
    /// The tenant's affected mailboxes at each point (None: not known
    /// then); empty when no tenant was asked for.
    pub tenant: Vec<Option<u64>>,
    pub step: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Cluster, MailboxState, QueueDepth, StateCounts};

    fn at(min: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_223_314_200, 0).unwrap() + Duration::minutes(min)
    }

    fn overview(affected: u64, depth: Option<u64>) -> Overview {
        let mut o = Overview::default();
        o.totals.affected_mailboxes = affected;
        o.totals.mailboxes = 1_000;
        let mut c = Cluster::default();
        c.queue.depth = depth.map(|d| QueueDepth {
            active: d,
            deferred: 0,
            hold: 0,
        });
        o.clusters.push(c);
        o
    }

    fn tenant(id: &str, locked: u64) -> TenantRow {
        let mut states = StateCounts::default();
        states.add(MailboxState::LockedOut, locked);
        TenantRow {
            id: id.into(),
            mailboxes: 100,
            states,
            ..Default::default()
        }
    }

    #[test]
    fn a_point_per_step_of_the_source_clock_and_none_for_an_unmeasured_queue() {
        let mut t = Trends::new(Duration::minutes(5));
        t.observe(&tenant("a", 10));
        t.record(&overview(10, Some(400)), at(0));
        t.record(&overview(9, Some(390)), at(3)); // within the step: skipped
        t.observe(&tenant("a", 8));
        t.record(&overview(8, None), at(5));
        t.record(&overview(7, Some(1)), at(-10)); // the clock went back
        let p = t.points();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].affected, p[0].queue_depth), (Some(10), Some(400)));
        assert_eq!((p[1].affected, p[1].queue_depth), (Some(8), None));
        assert_eq!(t.tenant("a"), Some(vec![Some(10), Some(8)]));
        assert_eq!(t.tenant("nobody"), None);
    }

    #[test]
    fn no_mailbox_listed_is_no_affected_count_not_zero() {
        let mut t = Trends::default();
        let mut o = overview(0, Some(0));
        o.totals.mailboxes = 0;
        t.record(&o, at(0));
        assert_eq!(t.points()[0].affected, None);
    }

    #[test]
    fn a_stale_queue_is_not_drawn_as_measured() {
        let mut t = Trends::default();
        let mut o = overview(1, Some(50));
        o.clusters[0].queue.stale = "postfix down since 14:02".into();
        t.record(&o, at(0));
        assert_eq!(t.points()[0].queue_depth, None);
    }

    #[test]
    fn a_tenant_seen_late_is_unknown_before_not_zero() {
        let mut t = Trends::default();
        t.record(&overview(0, Some(0)), at(0));
        t.observe(&tenant("late", 4));
        t.record(&overview(4, Some(0)), at(1));
        assert_eq!(t.tenant("late"), Some(vec![None, Some(4)]));
    }

    #[test]
    fn a_tenant_never_affected_costs_no_memory_and_reads_as_zero() {
        let mut t = Trends::default();
        t.observe(&tenant("calm", 0));
        for m in 0..10 {
            t.record(&overview(0, Some(0)), at(m));
        }
        assert_eq!(t.tenant_values_stored(), 0);
        assert_eq!(t.tenant("calm"), Some(vec![Some(0); 10]));
        // Affected from the sixth point: zeros before, counts after.
        t.observe(&tenant("calm", 3));
        t.record(&overview(3, Some(0)), at(10));
        let series = t.tenant("calm").unwrap();
        assert_eq!(series.len(), 11);
        assert_eq!(series[9], Some(0));
        assert_eq!(series[10], Some(3));
    }

    #[test]
    fn thinning_keeps_each_tenants_series_aligned_with_the_points() {
        let mut t = Trends::new(Duration::minutes(1));
        t.record(&overview(0, Some(0)), at(0));
        // Seen at point 1 (odd), affected from point 3.
        t.observe(&tenant("odd", 0));
        for m in 1..(Trends::MAX_POINTS as i64 + 1) {
            if m == 3 {
                t.observe(&tenant("odd", 7));
            }
            t.record(&overview(0, Some(0)), at(m));
        }
        assert_eq!(t.step(), Duration::minutes(2), "thinned once");
        let series = t.tenant("odd").unwrap();
        assert_eq!(series.len(), t.points().len());
        // Kept points are minutes 0, 2, 4, …: not seen at 0, 0 at 2, 7 from 4.
        assert_eq!(&series[..4], &[None, Some(0), Some(7), Some(7)]);
    }

    #[test]
    fn a_long_incident_keeps_its_first_point_and_a_bounded_history() {
        let mut t = Trends::new(Duration::minutes(1));
        t.observe(&tenant("a", 1));
        for m in 0..(3 * Trends::MAX_POINTS as i64) {
            t.record(&overview(m as u64, Some(0)), at(m));
        }
        assert!(t.points().len() <= Trends::MAX_POINTS);
        assert_eq!(t.points()[0].at, at(0), "starts at the first point");
        assert_eq!(t.step(), Duration::minutes(4));
        assert_eq!(t.tenant("a").unwrap().len(), t.points().len());
        // Evenly spaced at the new step from the start.
        for w in t.points().windows(2) {
            assert!(w[1].at - w[0].at <= t.step(), "{:?}", w);
        }
    }
}
