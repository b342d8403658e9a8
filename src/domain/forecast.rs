//! ETA forecasting: from the work left and the rates seen recently, a range
//! (p50, p90) that an operator can say out loud, or an honest "no estimate"
//! with the reason.
//!
//! The p50 divides the remaining work by the median observed rate. The p90
//! is deliberately pessimistic: it uses the 10th-percentile rate (floored at a
//! quarter of the median so a single stalled sample cannot make it infinite)
//! and adds the extra work the caller expects from scope growth — in the 2008
//! incident the estimate of "about 25,000 files" turned out far too small.

use chrono::{DateTime, Duration, Utc};
use std::collections::VecDeque;

/// Beyond this horizon an ETA is not worth quoting.
pub const MAX_HORIZON: Duration = Duration::days(30);

#[derive(Debug, Clone, Eq, Default)]
pub struct EtaRange {
    pub p50: Option<DateTime<Utc>>,
    pub p90: Option<DateTime<Utc>>,
    /// Why there is no estimate (empty when there is one).
    pub reason: String,
    /// The same, as a kind a program acts on (what support tells a
    /// customer); `Unspecified` when there is an estimate or no kind fits.
    pub no_estimate: NoEstimate,
}

/// Why there is no estimate. The customer's sentence is chosen by this,
/// never by the wording of `EtaRange::reason`, which is for people and
/// may be reworded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoEstimate {
    #[default]
    Unspecified,
    /// The fault is not identified yet: nothing to estimate against.
    NotIdentified,
    /// The repair has made no measurable progress yet.
    NoProgressYet,
    /// Stalled, or more than 30 days at the current rate.
    TooSlow,
    /// Waits for other work (queued mail waits for its mailboxes' repair).
    WaitsForRepair,
}

/// Compared once per tenant per tick to decide whether a row changed. The
/// derived comparison of two empty `reason`s measured ~110 ns on the CI
/// machine (glibc's AVX-512 memcmp on Rust's dangling empty-string pointer)
/// and was a third of a 5M-mailbox tick; the lengths settle it first.
impl PartialEq for EtaRange {
    fn eq(&self, other: &Self) -> bool {
        self.p50 == other.p50
            && self.p90 == other.p90
            && self.no_estimate == other.no_estimate
            && self.reason.len() == other.reason.len()
            && (self.reason.is_empty() || self.reason == other.reason)
    }
}

impl EtaRange {
    pub fn unknown(reason: impl Into<String>) -> Self {
        EtaRange {
            p50: None,
            p90: None,
            reason: reason.into(),
            no_estimate: NoEstimate::Unspecified,
        }
    }

    /// No estimate, for a reason of a kind (see `NoEstimate`).
    pub fn none(kind: NoEstimate, reason: impl Into<String>) -> Self {
        EtaRange {
            no_estimate: kind,
            ..EtaRange::unknown(reason)
        }
    }
    pub fn at(p50: DateTime<Utc>, p90: DateTime<Utc>) -> Self {
        EtaRange {
            p50: Some(p50),
            p90: Some(p90.max(p50)),
            ..EtaRange::default()
        }
    }
    /// This range for a part of a job, never later than the whole job's
    /// `whole` range when there is one (p50 against p50, p90 against p90):
    /// a tenant's mailboxes are back by the time the whole reindex is done.
    pub fn within(self, whole: Option<&EtaRange>) -> EtaRange {
        let Some(whole) = whole else { return self };
        match (self.p50, self.p90, whole.p50, whole.p90) {
            (Some(a), Some(b), Some(c), Some(d)) => EtaRange::at(a.min(c), b.min(d)),
            _ => self,
        }
    }
    pub fn is_known(&self) -> bool {
        self.p50.is_some()
    }
}

/// Rates observed over a sliding window, as (work done per second) samples.
#[derive(Debug, Clone)]
pub struct RateWindow {
    samples: VecDeque<f64>,
    capacity: usize,
}

impl RateWindow {
    pub fn new(capacity: usize) -> Self {
        RateWindow {
            samples: VecDeque::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }
    /// Records `work` units done over `seconds`. Non-finite or non-positive
    /// intervals are ignored.
    pub fn record(&mut self, work: f64, seconds: f64) {
        if seconds.is_nan() || seconds <= 0.0 || !work.is_finite() {
            return;
        }
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(work / seconds);
    }
    pub fn rates(&self) -> Vec<f64> {
        self.samples.iter().copied().collect()
    }
    /// The latest `n` samples.
    pub fn latest(&self, n: usize) -> Vec<f64> {
        let skip = self.samples.len().saturating_sub(n);
        self.samples.iter().skip(skip).copied().collect()
    }
    pub fn len(&self) -> usize {
        self.samples.len()
    }
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
    /// Mean rate per second over the window, 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.samples.is_empty() {
            0.0
        } else {
            self.samples.iter().sum::<f64>() / self.samples.len() as f64
        }
    }
}

/// Throughput of a job that is sometimes idle or paused (a repair queue
/// that empties, a sweep waiting out an outage): work over the time spent
/// working, so idle seconds do not dilute it (120 repairs in 3 busy seconds
/// is 2,400/min, whatever the minute around them). Samples close after
/// `sample_seconds` of busy time; the open one counts as soon as it holds
/// `min_work` units, so an estimate appears after the first few units of
/// work instead of after a whole sample.
#[derive(Debug, Clone)]
pub struct WorkRate {
    /// (work, busy seconds) of closed samples, oldest first.
    closed: VecDeque<(f64, f64)>,
    open: (f64, f64),
    capacity: usize,
    sample_seconds: f64,
    min_work: f64,
}

impl WorkRate {
    pub fn new(capacity: usize, sample_seconds: f64, min_work: f64) -> Self {
        WorkRate {
            closed: VecDeque::with_capacity(capacity.max(1)),
            open: (0.0, 0.0),
            capacity: capacity.max(1),
            sample_seconds: sample_seconds.max(f64::MIN_POSITIVE),
            min_work: min_work.max(f64::MIN_POSITIVE),
        }
    }

    /// Records `work` units done over `busy_seconds` of work. Returns the
    /// rate (units per second) of the sample this closed, if it closed one
    /// (for a caller that keeps the history). Idle or paused time is not
    /// recorded at all.
    pub fn record(&mut self, work: f64, busy_seconds: f64) -> Option<f64> {
        if !work.is_finite() || work < 0.0 || !busy_seconds.is_finite() || busy_seconds <= 0.0 {
            return None;
        }
        self.open.0 += work;
        self.open.1 += busy_seconds;
        if self.open.1 < self.sample_seconds || self.open.0 <= 0.0 {
            return None;
        }
        let (w, s) = std::mem::take(&mut self.open);
        self.push(w, s);
        Some(w / s)
    }

    /// Restores a closed sample of `per_second` (from a stored history).
    pub fn restore(&mut self, per_second: f64) {
        if per_second.is_finite() && per_second > 0.0 {
            self.push(per_second * self.sample_seconds, self.sample_seconds);
        }
    }

    fn push(&mut self, work: f64, seconds: f64) {
        if self.closed.len() == self.capacity {
            self.closed.pop_front();
        }
        self.closed.push_back((work, seconds));
    }

    /// The samples that count: the closed ones, and the open one once it
    /// holds `min_work`.
    fn samples(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        let open = (self.open.0 >= self.min_work && self.open.1 > 0.0).then_some(self.open);
        self.closed.iter().copied().chain(open)
    }

    /// Work per busy second over the window; None before anything counts.
    pub fn per_second(&self) -> Option<f64> {
        let (w, s) = self
            .samples()
            .fold((0.0, 0.0), |(w, s), (dw, ds)| (w + dw, s + ds));
        (s > 0.0 && w > 0.0).then(|| w / s)
    }

    /// Median and slow (10th percentile) sample rates, for `forecast_with`.
    pub fn stats(&self) -> RateStats {
        let rates: Vec<f64> = self.samples().map(|(w, s)| w / s).collect();
        RateStats::from_rates(&rates)
    }

    pub fn is_empty(&self) -> bool {
        self.samples().next().is_none()
    }
}

/// Nearest-rank percentile of `values` (q in 0..=1); None when empty.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let q = q.clamp(0.0, 1.0);
    let idx = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    Some(v[idx])
}

/// The two rates a forecast needs, computed once and reused for every
/// tenant and mailbox of a tick (sorting the samples per tenant would cost
/// O(tenants × samples) per tick).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateStats {
    /// Median rate: the p50 forecast.
    pub median: Option<f64>,
    /// 10th-percentile rate: the p90 forecast.
    pub slow: Option<f64>,
}

impl RateStats {
    /// From one set of samples (units per second).
    pub fn from_rates(rates: &[f64]) -> Self {
        RateStats {
            median: percentile(rates, 0.5),
            slow: percentile(rates, 0.1),
        }
    }

    /// p50 from recent samples, p90 from a longer history: a job that ran
    /// all night at full speed will slow down at the morning peak, as the
    /// 2008 reindex did. Until the history covers a whole day
    /// (`full_day == false`) nobody has seen the peak yet, so the p90 assumes
    /// the rate may halve.
    pub fn recent_and_history(recent: &[f64], history: &[f64], full_day: bool) -> Self {
        let median = percentile(recent, 0.5);
        let mut slow = percentile(history, 0.1).or_else(|| percentile(recent, 0.1));
        if !full_day {
            slow = match (slow, median) {
                (Some(s), Some(m)) => Some(s.min(m * 0.5)),
                (s, _) => s,
            };
        }
        RateStats { median, slow }
    }
}

/// Forecasts when `remaining` units of work will be done, given recent rates
/// (units per second) and `extra_p90_fraction` (≥ 0) more work expected in
/// the pessimistic case.
pub fn forecast(
    now: DateTime<Utc>,
    remaining: f64,
    rates: &[f64],
    extra_p90_fraction: f64,
) -> EtaRange {
    forecast_with(
        now,
        remaining,
        RateStats::from_rates(rates),
        extra_p90_fraction,
    )
}

/// `forecast` with the rate statistics already computed.
pub fn forecast_with(
    now: DateTime<Utc>,
    remaining: f64,
    stats: RateStats,
    extra_p90_fraction: f64,
) -> EtaRange {
    if remaining.is_nan() || remaining <= 0.0 {
        return EtaRange::at(now, now);
    }
    let Some(median) = stats.median else {
        return EtaRange::none(NoEstimate::NoProgressYet, "no progress measured yet");
    };
    if median.is_nan() || median <= 0.0 {
        return EtaRange::none(NoEstimate::TooSlow, "no progress at the current rate");
    }
    let slow = stats.slow.unwrap_or(median).max(median * 0.25).min(median);
    let extra = if extra_p90_fraction.is_finite() {
        extra_p90_fraction.clamp(0.0, 10.0)
    } else {
        0.0
    };
    let p50_secs = remaining / median;
    let p90_secs = remaining * (1.0 + extra) / slow;
    let horizon = MAX_HORIZON.num_seconds() as f64;
    if p50_secs > horizon {
        return EtaRange::unknown("more than 30 days at the current rate");
    }
    let p90_secs = p90_secs.min(horizon);
    EtaRange::at(
        now + Duration::milliseconds((p50_secs * 1000.0) as i64),
        now + Duration::milliseconds((p90_secs * 1000.0) as i64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2008, 10, 7, 12, 0, 0)
            .single()
            .unwrap()
    }

    #[test]
    fn a_part_of_a_job_is_never_promised_after_the_whole_job() {
        let h = |n| t0() + Duration::hours(n);
        let tenant = EtaRange::at(h(5), h(9));
        assert_eq!(
            tenant.clone().within(Some(&EtaRange::at(h(4), h(8)))),
            EtaRange::at(h(4), h(8))
        );
        assert_eq!(
            tenant.clone().within(Some(&EtaRange::at(h(6), h(7)))),
            EtaRange::at(h(5), h(7))
        );
        assert_eq!(
            tenant.clone().within(Some(&EtaRange::at(h(6), h(10)))),
            tenant
        );
        let unknown = EtaRange::unknown("no progress measured yet");
        assert_eq!(
            tenant.clone().within(Some(&unknown)),
            tenant,
            "nothing to cap by"
        );
        assert_eq!(
            unknown.clone().within(Some(&tenant)),
            unknown,
            "no estimate stays none"
        );
        assert_eq!(tenant.clone().within(None), tenant, "no whole job");
    }

    #[test]
    fn work_rate_ignores_idle_time_and_counts_the_first_few_units() {
        let mut r = WorkRate::new(10, 30.0, 3.0);
        assert_eq!(r.per_second(), None, "nothing measured yet");
        r.record(2.0, 1.0);
        assert_eq!(r.per_second(), None, "two units are not a rate yet");
        // 120 repairs in 3 busy seconds: 40/s, however long the queue was
        // idle around them (idle time is never recorded).
        r.record(118.0, 2.0);
        assert_eq!(r.per_second(), Some(40.0));
        assert!(r.stats().median.is_some(), "an ETA can be made at once");
    }

    #[test]
    fn work_rate_closes_samples_and_restores_them() {
        let mut r = WorkRate::new(3, 10.0, 1.0);
        assert_eq!(r.record(10.0, 5.0), None);
        assert_eq!(
            r.record(10.0, 5.0),
            Some(2.0),
            "10 busy seconds close a sample"
        );
        for _ in 0..5 {
            r.record(10.0, 10.0);
        }
        assert_eq!(r.per_second(), Some(1.0), "only the newest 3 samples count");
        let mut back = WorkRate::new(3, 10.0, 1.0);
        back.restore(1.0);
        back.restore(f64::NAN);
        assert_eq!(back.per_second(), Some(1.0));
        assert!(!back.is_empty());
    }

    #[test]
    fn steady_rate_gives_exact_p50() {
        let eta = forecast(t0(), 600.0, &[10.0, 10.0, 10.0], 0.0);
        assert_eq!(eta.p50, Some(t0() + Duration::seconds(60)));
        assert_eq!(eta.p90, Some(t0() + Duration::seconds(60)));
    }

    #[test]
    fn slow_samples_and_scope_growth_push_p90_later() {
        let rates = [10.0, 10.0, 10.0, 10.0, 5.0, 10.0, 10.0, 10.0, 10.0, 10.0];
        let eta = forecast(t0(), 600.0, &rates, 0.5);
        assert_eq!(eta.p50, Some(t0() + Duration::seconds(60)));
        // 600 × 1.5 at the 10th-percentile rate of 5/s.
        assert_eq!(eta.p90, Some(t0() + Duration::seconds(180)));
    }

    #[test]
    fn no_samples_or_no_progress_is_unknown_with_reason() {
        let eta = forecast(t0(), 100.0, &[], 0.0);
        assert!(!eta.is_known());
        assert_eq!(eta.reason, "no progress measured yet");
        let eta = forecast(t0(), 100.0, &[0.0, 0.0, 0.0], 0.0);
        assert!(!eta.is_known());
        assert_eq!(eta.reason, "no progress at the current rate");
        // A draining queue with more arrivals than deliveries: negative net rate.
        let eta = forecast(t0(), 100.0, &[-3.0, -2.0], 0.0);
        assert!(!eta.is_known());
    }

    #[test]
    fn nothing_left_is_now() {
        let eta = forecast(t0(), 0.0, &[], 0.0);
        assert_eq!(eta.p50, Some(t0()));
    }

    #[test]
    fn absurd_horizon_is_not_quoted() {
        let eta = forecast(t0(), 1e12, &[1.0], 0.0);
        assert!(!eta.is_known());
        assert!(eta.reason.contains("30 days"));
    }

    #[test]
    fn p90_uses_the_slow_rates_of_a_longer_history() {
        // All night at 10/s; yesterday's peak ran at 4/s.
        let recent = [10.0; 10];
        let mut history = vec![10.0; 80];
        history.extend([4.0; 20]);
        let stats = RateStats::recent_and_history(&recent, &history, true);
        let eta = forecast_with(t0(), 600.0, stats, 0.0);
        assert_eq!(eta.p50, Some(t0() + Duration::seconds(60)));
        assert_eq!(eta.p90, Some(t0() + Duration::seconds(150)));
        // Before a full day has been seen, the p90 allows for the rate halving.
        let stats = RateStats::recent_and_history(&recent, &recent, false);
        let eta = forecast_with(t0(), 600.0, stats, 0.0);
        assert_eq!(eta.p90, Some(t0() + Duration::seconds(120)));
    }

    #[test]
    fn rate_window_keeps_the_latest_samples() {
        let mut w = RateWindow::new(3);
        for i in 1..=5 {
            w.record(i as f64 * 10.0, 10.0);
        }
        w.record(5.0, 0.0); // ignored
        assert_eq!(w.rates(), vec![3.0, 4.0, 5.0]);
        assert_eq!(w.mean(), 4.0);
    }

    proptest! {
        #[test]
        fn p50_never_after_p90(remaining in 0.0f64..1e9, rates in proptest::collection::vec(-10.0f64..1e4, 0..50), extra in -1.0f64..5.0) {
            let eta = forecast(t0(), remaining, &rates, extra);
            if let (Some(a), Some(b)) = (eta.p50, eta.p90) {
                prop_assert!(a <= b);
                prop_assert!(a >= t0());
            } else {
                prop_assert!(!eta.reason.is_empty());
            }
        }

        #[test]
        fn more_work_is_never_sooner(a in 1.0f64..1e6, b in 1.0f64..1e6, rate in 0.1f64..1e3) {
            let (small, large) = if a <= b { (a, b) } else { (b, a) };
            let e1 = forecast(t0(), small, &[rate], 0.0);
            let e2 = forecast(t0(), large, &[rate], 0.0);
            if let (Some(x), Some(y)) = (e1.p50, e2.p50) {
                prop_assert!(x <= y);
            }
        }
    }
}
