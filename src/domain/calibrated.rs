//! Calibrated ETAs: when will this much work be done, with a p50 and a p90
//! that hold about as often as they claim.
//!
//! Three parts:
//! - [`RateProfile`] learns the work rate by hour of day (a reindex competes
//!   with users for I/O and slows at their peaks) and, from the current
//!   level and that shape, draws a [`WorkCurve`]: cumulative work expected
//!   over the next 30 days.
//! - The curve turns work into a time, so an ETA that crosses a busy
//!   morning is later than remaining ÷ tonight's rate. An hour the
//!   incident has not lived through yet is drawn from the platform's
//!   traffic history when the source knows it ([`LoadModel`]): the rate's
//!   dependence on the users' load is learnt from the hours seen, and the
//!   typical load of that hour says how busy it will be.
//! - [`Calibrator`] corrects the work by multipliers learnt online from
//!   the forecaster's own past errors (adaptive conformal inference, Gibbs
//!   & Candès 2021): every quote it is shown is checked when its time
//!   comes (held if its target finished by then); each miss moves the
//!   multiplier up and each hit moves it down, in proportions that settle
//!   where a p50 is missed half of the time and a p90 a tenth. Multipliers
//!   are kept per horizon and per whether the scope is known, since a
//!   20-minute ETA and a two-day one are wrong in different ways.

use chrono::{DateTime, Duration, Timelike, Utc};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use super::forecast::{EtaRange, MAX_HORIZON, NoEstimate, percentile};

/// The curve's resolution.
const STEP_SECS: f64 = 900.0;
/// Weight, in samples, of an hour's previous visit in its new one.
const PREVIOUS_VISIT: f64 = 5.0;
/// How long the "current level" looks back.
const RECENT: Duration = Duration::hours(1);

/// Work rate by hour of day, and the recent level.
#[derive(Debug, Clone, Copy)]
struct HourRate {
    mean: f64,
    /// Samples in `mean` (the previous visit's counting as a few).
    weight: f64,
    day: chrono::NaiveDate,
}

#[derive(Debug, Clone, Default)]
pub struct RateProfile {
    hours: [Option<HourRate>; 24],
    recent: VecDeque<(DateTime<Utc>, f64)>,
    load: LoadModel,
}

/// Quarter hours in a day: the traffic history's resolution.
pub const QUARTERS: usize = 96;

/// The quarter hour of the day `t` falls in (UTC), an index into a
/// traffic history.
pub fn quarter_of(t: DateTime<Utc>) -> usize {
    (t.hour() * 4 + t.minute() / 15) as usize % QUARTERS
}

/// The typical load of each quarter hour of the day from a platform's
/// load history (e.g. a week of its metrics): the median of the points in
/// each quarter hour, on any day. Points that are not a load (negative,
/// not finite) are left out. Err says why the history cannot serve: a
/// quarter hour with no point in it (less than a day of history, or a
/// gap), since an hour drawn from a guess is what the history is there to
/// avoid.
pub fn typical_by_quarter(
    points: impl IntoIterator<Item = (DateTime<Utc>, f64)>,
) -> Result<[f64; QUARTERS], String> {
    let mut by: Vec<Vec<f64>> = vec![Vec::new(); QUARTERS];
    for (t, load) in points {
        if load.is_finite() && load >= 0.0 {
            by[quarter_of(t)].push(load);
        }
    }
    let missing = by.iter().filter(|v| v.is_empty()).count();
    if missing > 0 {
        return Err(format!(
            "the load history covers {} of the day's {QUARTERS} quarter hours",
            QUARTERS - missing
        ));
    }
    Ok(std::array::from_fn(|q| {
        percentile(&by[q], 0.5).unwrap_or_default()
    }))
}

/// How long (load, rate) pairs are kept to learn how the rate depends on
/// the load: a day, which spans the quiet and the busy hours.
const PAIRS_FOR: Duration = Duration::hours(24);
/// Pairs needed before the dependence is trusted: 20 minutes of ticks.
/// Read within quarter hours, the slope needs no hour-to-hour spread to
/// average out; waiting for an hour (as before) drew the held-out drill's
/// first hour, a reindex slowing into a 02:00 peak, at its slowest rate
/// all the way (its ETA 1.1-1.4 times too far before the scan ended).
const PAIRS_NEEDED: usize = 20;
/// The loads seen must spread by this share of their mean: a rate seen at
/// one load says nothing about its slope.
const LOAD_SPREAD: f64 = 0.05;
/// A rate drawn for a busier hour than any seen is never below this share
/// of the slowest the fit gives for a load seen: a straight line carried
/// far past what was seen can reach zero.
const LOAD_FLOOR: f64 = 0.2;
/// Knee candidates at each end of the loads seen (their quantiles), and
/// the share of a straight line's squared error a knee may leave at most
/// to be kept (a line through noise is not a plateau).
const KNEES: usize = 32;
const KNEE_GAIN: f64 = 0.5;
/// The load at which the platform is saturated: the load is the users'
/// demand as a share of what the storage serves, and past 1 they cannot
/// take more of it, so the reindex slows no further (the simulator's
/// `1.2 − peak_slowdown × min(load, 1)`). Loads are read as at most this:
/// a line carried past it drew Cluster A's 09:00 peak (load 1.15) at 0.28
/// of top speed where it ran at 0.40, and its reindex ETA hours late.
const SATURATED: f64 = 1.0;

/// How the work rate depends on the users' load, to draw hours the
/// incident has not lived through yet. A reindex competes with the users
/// for I/O; an incident that began in the evening has never seen a
/// morning, but the platform has: its traffic history (the typical load
/// of each quarter hour of the day) says how busy the morning will be, and
/// the (load, rate) pairs of the hours seen say what that load does to
/// the rate (a straight line, rate = a + b × load, its slope read within
/// quarter hours; used only when the loads seen spread and the rate falls
/// as the load rises).
#[derive(Debug, Clone, Default)]
struct LoadModel {
    /// The typical load of each quarter hour of the day, when known.
    typical: Option<Box<[f64; QUARTERS]>>,
    /// (when, load, rate) seen while working.
    pairs: VecDeque<(DateTime<Utc>, f64, f64)>,
}

/// Sums of the pairs' deviations from their quarter hour's means, and
/// the means of all pairs (see [`LoadModel::within`]).
#[derive(Debug, Default)]
struct Within {
    sxx: f64,
    sxr: f64,
    srr: f64,
    mean_x: f64,
    mean_r: f64,
}

impl Within {
    /// The line's slope within quarter hours, its intercept through the
    /// means of all pairs: (a, b) of rate = a + b × load, when it falls.
    fn line(&self) -> Option<(f64, f64)> {
        let b = self.sxr / self.sxx;
        (self.sxx > 0.0 && b < 0.0).then_some((self.mean_r - b * self.mean_x, b))
    }

    /// The squared error left within quarter hours by the best slope.
    fn sse(&self) -> f64 {
        if self.sxx > 0.0 {
            self.srr - self.sxr * self.sxr / self.sxx
        } else {
            self.srr
        }
    }
}

impl LoadModel {
    fn typical_at(&self, t: DateTime<Utc>) -> Option<f64> {
        self.typical
            .as_ref()
            .map(|a| a[quarter_of(t)].min(SATURATED))
    }

    fn record(&mut self, at: DateTime<Utc>, load: f64, rate: f64) {
        if !(load.is_finite() && load >= 0.0) {
            return;
        }
        let load = load.min(SATURATED);
        self.pairs.push_back((at, load, rate));
        while self
            .pairs
            .front()
            .is_some_and(|(t, ..)| *t < at - PAIRS_FOR)
        {
            self.pairs.pop_front();
        }
    }

    /// The rate as a function of the load, from the pairs kept; None until
    /// they say something (enough of them, spread loads, a falling rate).
    ///
    /// A straight line, unless the rate was seen to stop moving with the
    /// load at either end: a reindex throttled by its users' I/O has a
    /// floor (its reserved share, reached before the peak's top) and a
    /// ceiling (its workers' own speed on a quiet night). A line drawn
    /// through a plateau is flattened by it and carries that error to every
    /// load not seen: the held-out drill's reindex began on a peak past its
    /// floor, and its afternoon was drawn a tenth too slow. So the fit also
    /// tries a knee at either end or both (the loads beyond a knee taken as
    /// the knee's) among the loads' quantiles, and keeps the best when it
    /// leaves at most half the line's squared error and the loads it
    /// flattens spread as much as a line's must.
    ///
    /// The chosen line's slope is then read within quarter hours (each
    /// pair against its quarter hour's means): the reindex also drifts
    /// from hour to hour for reasons of its own, and an evening whose load
    /// falls steadily lines that drift up with the load. Fitted across
    /// hours, 2% of drift over a load range of 0.13 steepened Cluster A's
    /// slope by a third, and carried to the next day's peaks it drew them
    /// at half their rate.
    fn fit(&self) -> Option<impl Fn(f64) -> f64> {
        let n = self.pairs.len();
        if n < PAIRS_NEEDED {
            return None;
        }
        let mut v: Vec<(f64, f64)> = self.pairs.iter().map(|&(_, l, r)| (l, r)).collect();
        v.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        // Prefix sums of l, l², r, l·r and r², for each candidate in O(1).
        let mut sums = Vec::with_capacity(n + 1);
        sums.push([0.0; 5]);
        for &(l, r) in &v {
            let p: [f64; 5] = sums[sums.len() - 1];
            sums.push([p[0] + l, p[1] + l * l, p[2] + r, p[3] + l * r, p[4] + r * r]);
        }
        let sum = |a: usize, b: usize, k: usize| sums[b][k] - sums[a][k];
        let nf = n as f64;
        let min_spread = LOAD_SPREAD * sums[n][0] / nf;
        // rate = a + b × load, the loads below v[c]'s taken as v[c]'s and
        // those above v[p - 1]'s as v[p - 1]'s: (a, b, squared error).
        let line = |c: usize, p: usize| -> Option<(f64, f64, f64)> {
            let (lo, hi) = (v[c].0, v[p - 1].0);
            if hi - lo < min_spread {
                return None;
            }
            let (below, above) = (c as f64, (n - p) as f64);
            let sx = below * lo + sum(c, p, 0) + above * hi;
            let sxx = below * lo * lo + sum(c, p, 1) + above * hi * hi;
            let sr = sums[n][2];
            let sxr = lo * sum(0, c, 2) + sum(c, p, 3) + hi * sum(p, n, 2);
            let sxx = sxx - sx * sx / nf;
            let sxr = sxr - sx * sr / nf;
            if sxx <= 0.0 {
                return None;
            }
            let b = sxr / sxx;
            if b.is_nan() || b >= 0.0 {
                return None;
            }
            let sse = (sums[n][4] - sr * sr / nf - b * sxr).max(0.0);
            Some(((sr - b * sx) / nf, b, sse))
        };
        let (a0, b0, sse0) = line(0, n)?;
        let cuts: Vec<usize> = (0..=KNEES).map(|k| k * n / KNEES).collect();
        let flat = |from: usize, to: usize| v[to].0 - v[from].0 >= min_spread;
        let mut best = (a0, b0, sse0, f64::NEG_INFINITY, f64::INFINITY);
        for &c in &cuts[..KNEES] {
            if c > 0 && !flat(0, c) {
                continue;
            }
            for &p in cuts.iter().filter(|&&p| p > c + 1) {
                if (c, p) == (0, n) || (p < n && !flat(p - 1, n - 1)) {
                    continue;
                }
                if let Some((a, b, sse)) = line(c, p)
                    && sse < KNEE_GAIN * sse0
                    && sse < best.2
                {
                    let lo = if c > 0 { v[c].0 } else { f64::NEG_INFINITY };
                    let hi = if p < n { v[p - 1].0 } else { f64::INFINITY };
                    best = (a, b, sse, lo, hi);
                }
            }
        }
        let (mut a, mut b, _, mut lo, mut hi) = best;
        let mut within = self.within(lo, hi);
        // A knee must also hold within quarter hours, where the reindex's
        // own hour-to-hour steps do not reach: across hours, an evening
        // whose first hour ran 3% slow and the next 2% fast reads as a
        // rate that stopped falling with the load, and the next day's
        // peak was drawn at the night's speed (see `within`).
        if (lo, hi) != (f64::NEG_INFINITY, f64::INFINITY) {
            let straight = self.within(f64::NEG_INFINITY, f64::INFINITY);
            if within.sse() > KNEE_GAIN * straight.sse() {
                (a, b, lo, hi) = (a0, b0, f64::NEG_INFINITY, f64::INFINITY);
                within = straight;
            }
        }
        let (a, b) = within.line().unwrap_or((a, b));
        let at = move |l: f64| a + b * l.clamp(lo, hi);
        let floor = LOAD_FLOOR * at(v[n - 1].0).max(0.0);
        (floor > 0.0).then_some(move |l: f64| at(l).max(floor))
    }

    /// How the rate moved with the load within each quarter hour (loads
    /// clamped to `lo..hi`): each pair against its quarter hour's means.
    fn within(&self, lo: f64, hi: f64) -> Within {
        let mut groups: Vec<(i64, f64, f64, f64)> = Vec::new();
        let mut members: Vec<(usize, f64, f64)> = Vec::with_capacity(self.pairs.len());
        for &(t, l, r) in &self.pairs {
            let q = t.timestamp().div_euclid(900);
            if groups.last().is_none_or(|g| g.0 != q) {
                groups.push((q, 0.0, 0.0, 0.0));
            }
            let g = groups.len() - 1;
            let x = l.clamp(lo, hi);
            groups[g].1 += x;
            groups[g].2 += r;
            groups[g].3 += 1.0;
            members.push((g, x, r));
        }
        let mut w = Within::default();
        for &(g, x, r) in &members {
            let (_, sx, sr, n) = groups[g];
            let (dx, dr) = (x - sx / n, r - sr / n);
            w.sxx += dx * dx;
            w.sxr += dx * dr;
            w.srr += dr * dr;
            w.mean_x += x;
            w.mean_r += r;
        }
        let n = members.len().max(1) as f64;
        w.mean_x /= n;
        w.mean_r /= n;
        w
    }

    /// The median load of the pairs since `since`.
    fn recent(&self, since: DateTime<Utc>) -> Option<f64> {
        let v: Vec<f64> = self
            .pairs
            .iter()
            .filter(|(t, ..)| *t >= since)
            .map(|(_, l, _)| *l)
            .collect();
        percentile(&v, 0.5)
    }
}

impl RateProfile {
    /// The platform's typical load by quarter hour of the day (from
    /// midnight UTC), to draw the hours not seen yet.
    pub fn set_traffic(&mut self, typical: [f64; QUARTERS]) {
        self.load.typical = Some(Box::new(typical));
    }

    /// Records a rate (units per second of busy time) seen at `at`, with
    /// the users' load then when the source measures it.
    pub fn record(&mut self, at: DateTime<Utc>, per_second: f64, load: Option<f64>) {
        if !per_second.is_finite() || per_second < 0.0 {
            return;
        }
        if let Some(load) = load {
            self.load.record(at, load, per_second);
        }
        // The hour's mean over its latest visit (the day it was last seen),
        // the previous visit's mean counting as a few samples until this
        // one has its own: a per-sample average would be the hour's last
        // minutes, late in a rising or falling hour.
        let day = at.date_naive();
        let h = &mut self.hours[at.hour() as usize];
        *h = Some(match *h {
            Some(v) if v.day == day => HourRate {
                mean: v.mean + (per_second - v.mean) / (v.weight + 1.0),
                weight: v.weight + 1.0,
                day,
            },
            Some(v) => HourRate {
                mean: (v.mean * PREVIOUS_VISIT + per_second) / (PREVIOUS_VISIT + 1.0),
                weight: PREVIOUS_VISIT + 1.0,
                day,
            },
            None => HourRate {
                mean: per_second,
                weight: 1.0,
                day,
            },
        });
        self.recent.push_back((at, per_second));
        while self.recent.front().is_some_and(|(t, _)| *t < at - RECENT) {
            self.recent.pop_front();
        }
    }

    /// The profile's rate at `at`'s hour, when seen.
    fn hour_mean(&self, at: DateTime<Utc>) -> Option<f64> {
        self.hours[at.hour() as usize].map(|h| h.mean)
    }

    /// Whether the work ran in `at`'s hour on `at`'s day.
    fn ran_in(&self, at: DateTime<Utc>) -> bool {
        self.hours[at.hour() as usize].is_some_and(|h| h.day == at.date_naive())
    }

    /// Median rate over the hour before `now`.
    pub fn recent(&self, now: DateTime<Utc>) -> Option<f64> {
        let v: Vec<f64> = self
            .recent
            .iter()
            .filter(|(t, _)| *t >= now - RECENT)
            .map(|(_, r)| *r)
            .collect();
        percentile(&v, 0.5).filter(|r| *r > 0.0)
    }

    /// Expected cumulative work from `now`: the recent level, shaped by the
    /// hours already seen (an hour not seen yet is assumed at the recent
    /// level, or at what its typical load gives). Work that resumes after
    /// an idle spell (a later fault) has no recent level yet: it starts at
    /// what this hour of the day ran at when last seen, else at what its
    /// typical load gives, not at the rate the work last had hours ago
    /// (after Cluster A's later fault, the afternoon peak's rate made the
    /// first ETAs twice too late). None before any progress.
    pub fn curve(&self, now: DateTime<Utc>) -> Option<WorkCurve> {
        if let Some(level) = self.recent(now) {
            return self.curve_at(now, level);
        }
        // This hour as last seen is the profile itself, not a level to
        // scale it by: against the hour before it, it drew the slow
        // drill's afternoon after its second fault at the ratio of 14:00
        // to the 13:00 peak, and its first ETA two hours early.
        if let Some(level) = self.hour_mean(now) {
            return self.draw(now, level, false);
        }
        // Else what the load says of this hour, the hours seen as they
        // were: the level is drawn from those very hours, so there is
        // nothing to scale them by (drawn flat at this hour's level, the
        // night Cluster A's later fault had seen ran 25% slow in the first
        // ETA after it, its p50 40 minutes late in every seed).
        self.draw(now, self.load.fit()?(self.load.typical_at(now)?), false)
    }

    /// `curve` at a given level (units per second) for the next hour.
    pub fn curve_at(&self, now: DateTime<Utc>, level: f64) -> Option<WorkCurve> {
        self.draw(now, level, true)
    }

    /// The curve from `level`, the hours seen `scaled` to it or not.
    fn draw(&self, now: DateTime<Utc>, level: f64, scaled: bool) -> Option<WorkCurve> {
        if !(level.is_finite() && level > 0.0) {
            return None;
        }
        // The recent level against what the profile says of the same last
        // hour (the level is a median over it, half an hour behind a
        // trend), when the profile's hour is from an earlier day: work that
        // resumes at half its old speed keeps its daily shape at half
        // height. An hour being lived through now is made of the very
        // samples the level is: in a morning whose rate falls by half in
        // two hours, their ratio (a median centred up to half an hour later
        // than the hour's mean, then a partial hour's mean from :30) swung
        // by ±20% every half hour, and carried over every hour of a 25-hour
        // ETA it moved the slow drill's reindex ETA by 5 to 10 hours and
        // back.
        let ref_at = now - RECENT / 2;
        let back = self.hours[ref_at.hour() as usize];
        let scale = match back {
            Some(h) if scaled && h.day != ref_at.date_naive() && h.mean > 0.0 => {
                (level / h.mean).clamp(0.25, 4.0)
            }
            _ => 1.0,
        };
        // Hours seen keep their shape when it can be put at the level (the
        // hour before now seen too), or when the level is not a rate of
        // this work but what the profile itself says of this hour.
        let shaped = back.is_some() || !scaled;
        // An hour not seen yet: the level, moved by what the typical load
        // of that hour does to the rate against the load of the last hour
        // (the typical load now when none was measured in it: work that
        // resumes after an idle spell).
        let fit = self.load.fit();
        let before = fit
            .as_ref()
            .zip(
                self.load
                    .recent(now - RECENT)
                    .or_else(|| self.load.typical_at(now)),
            )
            .map(|(f, load)| f(load))
            .filter(|r| *r > 0.0);
        let unseen = |t: DateTime<Utc>| -> f64 {
            let by_load = || {
                let then = fit.as_ref()?(self.load.typical_at(t)?);
                Some((then / before?).clamp(0.1, 4.0))
            };
            level * by_load().unwrap_or(1.0)
        };
        // The hour being lived through is, today, only its first minutes
        // so far: drawn at their mean for the rest of it, a morning whose
        // load rises all hour was drawn 15-20% fast at :00 (Cluster A's
        // reindex ETA early through 05:00-08:00). On a later day its mean
        // is the day before's, then more and more today's first minutes:
        // Cluster A's tenants after its later fault held 35% of the time
        // at :00 and 63% at :15. When the load says how the rest of it
        // will go, it is drawn as an hour not seen yet (still counted as
        // seen: it is being watched); those tenants then held 39-49% in
        // every quarter hour.
        let lived_through = fit.is_some() && self.load.typical.is_some() && self.ran_in(now);
        // Hours seen run at their shape, scaled to the level (None: drawn
        // as not seen, though the hour just begun counts as seen).
        let from_seen = |t: DateTime<Utc>| match (shaped, self.hour_mean(t)) {
            (true, Some(h)) if !(lived_through && t.hour() == now.hour()) => Some(h * scale),
            _ => None,
        };
        let this_hour = now - Duration::seconds(i64::from(now.minute() * 60 + now.second()));
        let steps = (MAX_HORIZON.num_seconds() as f64 / STEP_SECS) as usize;
        let mut cum = Vec::with_capacity(steps + 1);
        let mut seen = Vec::with_capacity(steps + 1);
        cum.push(0.0);
        seen.push(0);
        let (mut acc, mut known) = (0.0, 0u32);
        for i in 0..steps {
            let t = now + Duration::seconds((i as f64 * STEP_SECS) as i64);
            if shaped && self.hour_mean(t).is_some() {
                known += 1;
            }
            let rate = match from_seen(t) {
                // An hour's mean is its rate at half past: between half
                // pasts the rate moves in a line, not in a step as the hour
                // strikes. In Cluster A's evening after its later fault
                // (a rate rising as the load falls), the steps drew the
                // next half hour's work from 0.2% (at :00) to 3.1% (at
                // :20) short of what was done, the line 1.2-1.9% short
                // throughout; its tenants' p50s held 40% of the time in
                // steps, 44% on the line (60 seeds). An hour already past
                // counts only when the work ran in it: after an idle
                // spell, the hour it had the day before is not where
                // today's rate comes from.
                Some(rate) => {
                    let mid = t + Duration::seconds((STEP_SECS / 2.0) as i64);
                    let off = f64::from(mid.minute() * 60 + mid.second()) / 3600.0 - 0.5;
                    let other = mid + Duration::seconds((off.signum() * 3600.0) as i64);
                    let next = if other < this_hour && !self.ran_in(other) {
                        rate
                    } else {
                        from_seen(other).unwrap_or_else(|| unseen(other))
                    };
                    rate + (next - rate) * off.abs()
                }
                None => unseen(t),
            };
            acc += rate.max(0.0) * STEP_SECS;
            cum.push(acc);
            seen.push(known);
        }
        let unseen = match (&self.load.typical, &fit) {
            (None, _) => Unseen::NoTraffic,
            (Some(_), None) => Unseen::LoadEffectUnknown,
            (Some(_), Some(_)) => Unseen::FromTraffic,
        };
        Some(WorkCurve {
            start: now,
            cum,
            seen,
            unseen,
        })
    }
}

/// How a curve drew the hours the work has not lived through yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unseen {
    /// From the platform's traffic and what the load does to the rate.
    FromTraffic,
    /// At the level: no traffic history.
    NoTraffic,
    /// At the level: the work not yet seen at loads that spread enough to
    /// tell what the load does to it.
    LoadEffectUnknown,
}

/// Work expected done by each step from `start`.
#[derive(Debug, Clone)]
pub struct WorkCurve {
    start: DateTime<Utc>,
    cum: Vec<f64>,
    /// Steps up to each one drawn from an hour already seen (the others
    /// are the level, or the load's guess).
    seen: Vec<u32>,
    unseen: Unseen,
}

impl WorkCurve {
    /// A curve at `per_second` for each quarter hour from `start`, all
    /// drawn from hours seen (tests).
    #[cfg(test)]
    pub fn from_rates(start: DateTime<Utc>, per_second: &[f64]) -> Self {
        let mut cum = vec![0.0];
        for r in per_second {
            cum.push(cum.last().copied().unwrap_or(0.0) + r * STEP_SECS);
        }
        let seen = (0..cum.len() as u32).collect();
        WorkCurve {
            start,
            cum,
            seen,
            unseen: Unseen::FromTraffic,
        }
    }

    /// The share of the next `secs` drawn from hours already seen: how
    /// much the curve knows of that span.
    pub fn seen_share(&self, secs: f64) -> f64 {
        let i = ((secs / STEP_SECS).ceil() as usize).min(self.seen.len() - 1);
        if i == 0 {
            return 1.0;
        }
        f64::from(self.seen[i]) / i as f64
    }

    /// Work expected done `secs` from the start.
    pub fn work_by(&self, secs: f64) -> f64 {
        let x = (secs / STEP_SECS).max(0.0);
        let i = x.floor() as usize;
        if i + 1 >= self.cum.len() {
            return self.cum.last().copied().unwrap_or(0.0);
        }
        self.cum[i] + (self.cum[i + 1] - self.cum[i]) * (x - i as f64)
    }

    /// When `work` units will be done; None beyond the horizon.
    pub fn time_for(&self, work: f64) -> Option<DateTime<Utc>> {
        if !work.is_finite() {
            return None;
        }
        if work <= 0.0 {
            return Some(self.start);
        }
        let i = self.cum.partition_point(|&c| c < work);
        if i == 0 || i >= self.cum.len() {
            return None;
        }
        let (a, b) = (self.cum[i - 1], self.cum[i]);
        let frac = if b > a { (work - a) / (b - a) } else { 1.0 };
        let secs = ((i - 1) as f64 + frac) * STEP_SECS;
        Some(self.start + Duration::milliseconds((secs * 1000.0) as i64))
    }
}

/// Lags at which the curve's promises are checked against the work done.
const LAGS_SECS: [f64; 8] = [
    900.0, 1_800.0, 3_600.0, 7_200.0, 14_400.0, 28_800.0, 57_600.0, 115_200.0,
];
/// How often a promise is recorded, and how many checks per lag are kept
/// (a day's worth).
const PROMISE_EVERY_SECS: i64 = 300;
const CHECKS_KEPT: usize = 288;

#[derive(Debug, Clone)]
struct Promise {
    at: DateTime<Utc>,
    /// Work and busy seconds done so far, when promised.
    worked: f64,
    busy: f64,
    /// What the curve promised would be done after each lag, and how
    /// much of that span it drew from hours seen (its knowledge bucket).
    promised: [f64; LAGS_SECS.len()],
    knowledge: [usize; LAGS_SECS.len()],
    checked: usize,
}

/// Knowledge buckets of the track record: a promise drawn mostly from
/// hours not seen yet is evidence about curves that know as little, not
/// about one drawn from hours seen since. The slow drill's first-day
/// promises (its nights not seen yet, drawn at the evening's rate) did a
/// third more than promised; applied to the next day's curves, which had
/// seen the night, they put the cluster's p50 hours early.
/// The third bucket is a span drawn wholly from hours seen: its p50 is
/// judged only by promises that were too (see [`ProgressCheck::multipliers`]).
const KNOWLEDGE_BUCKETS: usize = 3;
const ALL_SEEN: usize = 2;

fn knowledge(seen_share: f64) -> usize {
    if seen_share >= 1.0 {
        ALL_SEEN
    } else if seen_share >= 0.5 {
        1
    } else {
        0
    }
}

/// The curve's own track record: every few minutes it promises how much
/// work will be done over each lag; when the lag has passed, the work
/// actually done is compared (only when the job was busy all along: a
/// queue that ran dry says nothing about the rate). The ratios, per lag,
/// say how far the curve can be trusted over that horizon, the day it is
/// asked, without waiting for any target to finish.
#[derive(Debug, Clone, Default)]
pub struct ProgressCheck {
    worked: f64,
    busy: f64,
    promises: VecDeque<Promise>,
    ratios: [[VecDeque<f64>; LAGS_SECS.len()]; KNOWLEDGE_BUCKETS],
}

impl ProgressCheck {
    /// `work` units done over `seconds`, of which the job was busy
    /// `busy_seconds`.
    pub fn record(&mut self, work: f64, busy_seconds: f64) {
        if work.is_finite() && work > 0.0 {
            self.worked += work;
        }
        if busy_seconds.is_finite() && busy_seconds > 0.0 {
            self.busy += busy_seconds;
        }
    }

    /// Checks the promises whose lags have passed, and records a new one
    /// from `curve` every few minutes.
    pub fn check(&mut self, now: DateTime<Utc>, curve: Option<&WorkCurve>) {
        for p in &mut self.promises {
            while p.checked < LAGS_SECS.len() {
                let lag = LAGS_SECS[p.checked];
                if p.at + Duration::seconds(lag as i64) > now {
                    break;
                }
                let busy = self.busy - p.busy;
                if busy >= 0.95 * lag && p.promised[p.checked] > 0.0 {
                    let r = &mut self.ratios[p.knowledge[p.checked]][p.checked];
                    if r.len() == CHECKS_KEPT {
                        r.pop_front();
                    }
                    r.push_back((self.worked - p.worked) / p.promised[p.checked]);
                }
                p.checked += 1;
            }
        }
        self.promises.retain(|p| p.checked < LAGS_SECS.len());
        let due = self
            .promises
            .back()
            .is_none_or(|p| now - p.at >= Duration::seconds(PROMISE_EVERY_SECS));
        if let (true, Some(c)) = (due, curve) {
            let mut promised = [0.0; LAGS_SECS.len()];
            let mut known = [0; LAGS_SECS.len()];
            for ((p, k), lag) in promised.iter_mut().zip(&mut known).zip(LAGS_SECS) {
                *p = c.work_by(lag);
                *k = knowledge(c.seen_share(lag));
            }
            self.promises.push_back(Promise {
                at: now,
                worked: self.worked,
                busy: self.busy,
                promised,
                knowledge: known,
                checked: 0,
            });
        }
    }

    /// New work after a later fault: the record starts over. What the
    /// curve's promises did in the job before (its days not seen yet, a
    /// scan that starved it) is not how the new job's curve, drawn from
    /// hours seen, will fare: carried over, the first job's record of 1%
    /// too little work put the slow drill's cluster p50 after its second
    /// fault early (held 36% of the time), and of 0.4% too much put
    /// Cluster A's late. Promises still being checked stay: they compare
    /// the rate with what was promised, and new work does not change it.
    pub fn forget(&mut self) {
        self.ratios = Default::default();
    }

    /// Work multipliers (p50, p90) for an ETA `horizon_secs` away: from
    /// the ratios of the nearest lag checked at least 12 times (the longest
    /// such lag when the horizon is beyond them). The p90's only when that
    /// lag is at least half the horizon: four hours of a night the curve
    /// foretold exactly say little of how a 15-hour ETA through a day not
    /// seen yet may slip (taken for it, they put the p90 five minutes after
    /// the p50). The p50's (1 otherwise) only when the lag is at least an
    /// eighth of the horizon: in the slow drill's first day, the record of
    /// lags of an hour to four (promises drawn on the morning's floor rate,
    /// which the afternoon beat) was taken for ETAs two to four days away,
    /// through nights and mornings it says nothing of, and put the
    /// cluster's p50 before the scan hours early. The record of promises
    /// drawn with as much knowledge as the ETA (`seen_share`: how much of
    /// its span is drawn from hours seen) when it has any lag checked
    /// enough, else another's; but a span drawn wholly from hours seen
    /// takes its p50 only from promises that were too: the others' misses
    /// are of the hours they had to guess, which this curve has seen since
    /// (the slow drill's promises of one morning, drawn before it had seen
    /// one, put its cluster's p50 three hours late at 10:00 the next day,
    /// through hours all seen). None before any.
    pub fn multipliers(&self, horizon_secs: f64, seen_share: f64) -> Option<(f64, Option<f64>)> {
        let wanted = LAGS_SECS.partition_point(|&l| l < horizon_secs);
        let nearest = |ratios: &'_ [VecDeque<f64>; LAGS_SECS.len()]| {
            (0..LAGS_SECS.len())
                .filter(|&i| ratios[i].len() >= 12)
                .min_by_key(|&i| i.abs_diff(wanted))
        };
        let own = knowledge(seen_share);
        let (bucket, lag) = std::iter::once(own)
            .chain((0..KNOWLEDGE_BUCKETS).filter(|&k| k != own))
            .find_map(|k| Some((k, nearest(&self.ratios[k])?)))?;
        let r: Vec<f64> = self.ratios[bucket][lag].iter().copied().collect();
        let median = percentile(&r, 0.5)?.max(0.05);
        let slow = percentile(&r, 0.1)?.max(0.05);
        let long_enough = LAGS_SECS[lag] * 2.0 >= horizon_secs;
        let near_enough = LAGS_SECS[lag] * P50_REACH >= horizon_secs;
        let judges_p50 = near_enough && (own != ALL_SEEN || bucket == own);
        Some((
            if judges_p50 { 1.0 / median } else { 1.0 },
            long_enough.then_some(1.0 / slow),
        ))
    }
}

/// How many times its lag's length a track record's p50 correction
/// reaches (see [`ProgressCheck::multipliers`]).
const P50_REACH: f64 = 8.0;

/// Horizon classes of the calibration (the base ETA's distance).
const EDGES_SECS: [f64; 4] = [1_800.0, 7_200.0, 21_600.0, 86_400.0];
/// Size classes (mailboxes the ETA is about): one mailbox's ETA and a
/// big tenant's last mailbox's are wrong in different ways.
const SIZE_EDGES: [u64; 3] = [2, 11, 101];
const HORIZONS: usize = EDGES_SECS.len() + 1;
const SIZES: usize = SIZE_EDGES.len() + 1;
/// Bins per kind of target (a tenant's last mailbox, or the whole job).
const BINS_PER_KIND: usize = HORIZONS * SIZES * 2;
const BINS: usize = BINS_PER_KIND * 2;
/// Groups of bins that differ only by horizon.
const GROUPS: usize = BINS / HORIZONS;
/// Share of quotes each quantile is meant to miss.
const MISS: [f64; 2] = [0.5, 0.1];
/// Log-multipliers at the start: the model's own p50, and 60% more work
/// for the p90 until the incident has taught better.
const PRIOR: [f64; 2] = [0.0, 0.47];
/// Step of each update, in log space, for a batch that missed every time
/// (or never). Quotes are checked in batches (one per tick) because they
/// are correlated: a thousand tenants behind one slow hour miss together,
/// and a step per quote would move the multiplier a thousand steps at once.
const GAMMA: f64 = 0.01;
/// A batch of this many quotes counts half as much as a large one.
const BATCH_HALF: f64 = 2.0;
const LOG_LIMIT: f64 = 3.0;
/// How long a p50 lesson lasts: a bin's log-multiplier fades by 1/e over
/// this time once the bin has had no outcome for `RENEWED_FOR`; the part
/// shared by a group's horizons (a common shift, learnt fast from the
/// short ones) fades all the time, so that in a steady state the bins
/// carry the correction. A lesson about a slow morning is about that
/// morning: by the next ETAs, the curve has seen those hours.
const P50_MEMORY_SECS: f64 = 6.0 * 3600.0;
const RENEWED_FOR: Duration = Duration::hours(1);

/// What an ETA is about, for the choice of its multipliers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    /// Whether the scan has found all the damage (the scope is known).
    pub scope_known: bool,
    /// Mailboxes still to be restored.
    pub mailboxes: u64,
    /// Whether the ETA is the whole job's (a cluster's reindex or repair),
    /// rather than a tenant's: the job ends with its slowest part, one
    /// episode at a time, and learns from its own quotes, not the
    /// tenants' (the biggest tenant's lesson made the cluster's p50 days
    /// late in the slow drill).
    pub whole: bool,
}

/// Which multipliers apply to an ETA `base_secs` away.
pub fn bin(base_secs: f64, class: Class) -> usize {
    let h = EDGES_SECS.partition_point(|&e| e <= base_secs);
    let s = SIZE_EDGES.partition_point(|&e| e <= class.mailboxes);
    usize::from(class.whole) * BINS_PER_KIND
        + (usize::from(!class.scope_known) * SIZES + s) * HORIZONS
        + h
}

/// The update of quantile `q`'s log-multiplier for `n` quotes settled in
/// one tick, `missed` of them missed. A batch counts less than its size: a
/// thousand tenants behind one slow hour miss together. A target's own
/// quotes, held or missed, fall due one a tick as their times come (see
/// [`Calibrator::finished`]), each a step.
fn step(missed: f64, n: f64, q: usize) -> f64 {
    GAMMA * (missed - MISS[q] * n) / (n + BATCH_HALF)
}

/// How much slower bin `b`'s own multipliers learn than a short horizon's:
/// its shortest horizon in half hours (at least 1). Its outcomes arrive
/// that much later, and until the first quote served after a correction
/// falls due, every older one still misses and pushes again: at the same
/// step, the slow drill's mid-sized tenants 6–24 hours away, 7% early,
/// were taken to 19 times their work over a day (ETAs four days out for
/// a job that ended that night). A gain inversely proportional to the
/// delay keeps such a loop from overshooting; the part shared by a
/// group's horizons still learns at the short horizons' pace.
fn delay(b: usize) -> f64 {
    let h = b % HORIZONS;
    let shortest = if h == 0 { 0.0 } else { EDGES_SECS[h - 1] };
    (shortest / 1_800.0).max(1.0)
}

/// Quotes by the time they fall due, soonest first.
type DueHeap = BinaryHeap<Reverse<(DateTime<Utc>, u64)>>;

#[derive(Debug, Clone)]
struct Quote {
    bin: usize,
    at: [DateTime<Utc>; 2],
    open: [bool; 2],
    /// When its target's work finished, if it has.
    done: Option<DateTime<Utc>>,
}

/// Online calibration of the work multipliers (see the module's notes).
#[derive(Debug, Clone)]
pub struct Calibrator {
    log_m: [[f64; 2]; BINS],
    /// The p50's log-multiplier shared by every horizon of a group (kind,
    /// scope known, size): short horizons are checked within minutes and
    /// teach the long ones, whose own outcomes take hours.
    log_shared: [f64; GROUPS],
    quotes: HashMap<u64, Quote>,
    by_key: HashMap<u32, Vec<u64>>,
    due: [DueHeap; 2],
    next_id: u64,
    /// (misses, quotes) settled since the last update, per bin and quantile.
    batch: [[(f64, f64); 2]; BINS],
    /// Misses and hits seen, per quantile.
    pub seen: [(u64, u64); 2],
    /// When `passed` last ran (the p50's lessons fade with time).
    last_pass: Option<DateTime<Utc>>,
    /// When each bin's p50 last had an outcome.
    renewed: [Option<DateTime<Utc>>; BINS],
}

impl Default for Calibrator {
    fn default() -> Self {
        Calibrator {
            log_m: [PRIOR; BINS],
            log_shared: [0.0; GROUPS],
            quotes: HashMap::new(),
            by_key: HashMap::new(),
            due: [BinaryHeap::new(), BinaryHeap::new()],
            next_id: 0,
            batch: [[(0.0, 0.0); 2]; BINS],
            seen: [(0, 0); 2],
            last_pass: None,
            renewed: [None; BINS],
        }
    }
}

impl Calibrator {
    /// Work multipliers for the p50 and the p90 of `bin`.
    pub fn multipliers(&self, bin: usize) -> (f64, f64) {
        let bin = bin.min(BINS - 1);
        let [a, b] = self.log_m[bin];
        let a = a + self.log_shared[bin / HORIZONS];
        (a.exp(), b.max(a).exp())
    }

    /// A quote shown for `key`, to be checked against what happens.
    pub fn register(&mut self, key: u32, bin: usize, p50: DateTime<Utc>, p90: DateTime<Utc>) {
        let id = self.next_id;
        self.next_id += 1;
        self.quotes.insert(
            id,
            Quote {
                bin: bin.min(BINS - 1),
                at: [p50, p90],
                open: [true, true],
                done: None,
            },
        );
        let ids = self.by_key.entry(key).or_default();
        if ids.len() >= 64 {
            let quotes = &self.quotes;
            ids.retain(|id| quotes.contains_key(id));
        }
        ids.push(id);
        self.due[0].push(Reverse((p50, id)));
        self.due[1].push(Reverse((p90, id)));
    }

    /// Quote `id`'s quantile `q`, whose time has come: held when its
    /// target finished by then.
    fn settle(&mut self, id: u64, q: usize) {
        let Some(quote) = self.quotes.get_mut(&id) else {
            return;
        };
        let missed = quote.done.is_none_or(|done| done > quote.at[q]);
        quote.open[q] = false;
        let b = &mut self.batch[quote.bin][q];
        b.0 += f64::from(u8::from(missed));
        b.1 += 1.0;
        if missed {
            self.seen[q].0 += 1;
        } else {
            self.seen[q].1 += 1;
        }
        if !quote.open[0] && !quote.open[1] {
            self.quotes.remove(&id);
        }
    }

    /// `key`'s work finished at `at`. Its quotes are still settled when
    /// their times come, not now: settled in the tick it finished, a
    /// target's hits made one batch, one step, while its misses came one a
    /// tick as their times passed, each a step. A tenant's dozens of quotes
    /// counted as a few misses' worth when they held and as dozens when
    /// they missed: the p50s of the slow drill's tenants of 11–100
    /// mailboxes, right before the calibration, were taken to 1.5 times
    /// their work within hours of its scan's end (the whole job's quotes
    /// had been counted one by one for the same reason).
    pub fn finished(&mut self, key: u32, at: DateTime<Utc>) {
        for id in self.by_key.remove(&key).unwrap_or_default() {
            if let Some(quote) = self.quotes.get_mut(&id) {
                quote.done = Some(at);
            }
        }
    }

    /// Quotes whose time came before `now` are settled: held when their
    /// target finished by then, else missed. Then the multipliers learn
    /// from everything settled since the last call (call once per tick,
    /// after `finished`).
    pub fn passed(&mut self, now: DateTime<Utc>) {
        for q in 0..2 {
            while let Some(Reverse((at, id))) = self.due[q].peek().copied() {
                if at >= now {
                    break;
                }
                self.due[q].pop();
                self.settle(id, q);
            }
        }
        let dt = self
            .last_pass
            .map_or(0.0, |t| (now - t).num_seconds().max(0) as f64);
        self.last_pass = Some(now);
        let keep = (-dt / P50_MEMORY_SECS).exp();
        let mut group = [(0.0, 0.0); GROUPS];
        let stale = |last: Option<DateTime<Utc>>| last.is_none_or(|t| now - t > RENEWED_FOR);
        for (b, (m, batch)) in self.log_m.iter_mut().zip(self.batch.iter_mut()).enumerate() {
            if batch[0].1 > 0.0 {
                self.renewed[b] = Some(now);
            } else if stale(self.renewed[b]) {
                m[0] *= keep;
            }
            for q in 0..2 {
                let (missed, n) = std::mem::take(&mut batch[q]);
                if n > 0.0 {
                    let step = step(missed, n, q) / delay(b);
                    m[q] = (m[q] + step).clamp(-LOG_LIMIT, LOG_LIMIT);
                    if q == 0 {
                        let g = &mut group[b / HORIZONS];
                        g.0 += missed;
                        g.1 += n;
                    }
                }
            }
        }
        for (s, (missed, n)) in self.log_shared.iter_mut().zip(group) {
            *s *= keep;
            if n > 0.0 {
                *s = (*s + step(missed, n, 0)).clamp(-LOG_LIMIT, LOG_LIMIT);
            }
        }
    }

    /// New work that no rate could have foreseen (a later fault): the
    /// quotes not yet due are dropped, not counted (a target still busy
    /// did not miss; one that finished held for the job before), and the
    /// p50 multipliers start again from the model's own.
    pub fn later_fault(&mut self) {
        self.quotes.clear();
        self.by_key.clear();
        self.due = [BinaryHeap::new(), BinaryHeap::new()];
        // The p50 lessons were about the job before: its hours not seen
        // yet, its queue, its big tenants. The new work starts from the
        // model's own p50, drawn from hours now seen. Kept, the tenants'
        // left the big tenants' p50s after Cluster A's later fault late
        // for 80% of their mailboxes, and the whole job's (2-5% more
        // work) its cluster's p50 late 64% of the time. The p90s are kept:
        // the promise stays as careful as it learnt to be.
        for m in &mut self.log_m {
            m[0] = 0.0;
        }
        self.log_shared = [0.0; GROUPS];
    }

    /// Open quotes (bounded by targets × horizon ÷ quote interval).
    pub fn open(&self) -> usize {
        self.quotes.len()
    }
}

/// The calibrated ETA of `work` units on `curve`: the base time from the
/// curve, then the p50 and p90 of the work corrected by `calib`'s
/// multipliers. Returns the range and the bin it used (to register it).
pub fn eta(
    curve: Option<&WorkCurve>,
    calib: &Calibrator,
    progress: &ProgressCheck,
    work: f64,
    class: Class,
) -> (EtaRange, Option<usize>) {
    let Some(curve) = curve else {
        return (
            EtaRange::none(NoEstimate::NoProgressYet, "no progress measured yet"),
            None,
        );
    };
    let Some(base) = curve.time_for(work) else {
        return (
            EtaRange::none(NoEstimate::TooSlow, "more than 30 days at the current rate"),
            None,
        );
    };
    let secs = (base - curve.start).num_seconds() as f64;
    let b = bin(secs, class);
    let (mut m50, mut m90) = calib.multipliers(b);
    // The curve's track record over this horizon, when there is one; the
    // calibration then corrects what remains (work added ahead).
    if let Some((p50, p90)) = progress.multipliers(secs, curve.seen_share(secs)) {
        m50 *= p50;
        if let Some(p90) = p90 {
            m90 = m90 / PRIOR[1].exp() * p90;
        }
    }
    let Some(p50) = curve.time_for(work * m50) else {
        return (
            EtaRange::none(NoEstimate::TooSlow, "more than 30 days at the current rate"),
            None,
        );
    };
    let p90 = curve
        .time_for(work * m90)
        .unwrap_or(curve.start + MAX_HORIZON);
    (EtaRange::at(p50, p90), Some(b))
}

/// How often the ETAs served are recorded to be checked later.
const QUOTE_EVERY: Duration = Duration::minutes(5);

/// The calibrated forecaster of one source: the rate profile and its curve,
/// the curve's track record, the online calibration, and when quotes were
/// last recorded. The source tells it what work was done, which targets
/// finished, and asks it for ETAs.
#[derive(Debug, Clone, Default)]
pub struct Forecaster {
    profile: RateProfile,
    curve: Option<WorkCurve>,
    progress: ProgressCheck,
    calib: Calibrator,
    last_quotes: Option<DateTime<Utc>>,
    /// Targets with work left at the last `affected` call.
    busy: std::collections::HashSet<u32>,
}

impl Forecaster {
    /// The platform's typical load by quarter hour of the day (its traffic
    /// history), when the source knows it.
    pub fn set_traffic(&mut self, typical: [f64; QUARTERS]) {
        self.profile.set_traffic(typical);
    }

    /// `work` units done over `seconds` of busy time, ending at `at`, with
    /// the users' load then when the source measures it.
    pub fn record(&mut self, at: DateTime<Utc>, work: f64, seconds: f64, load: Option<f64>) {
        if seconds > 0.0 {
            self.profile.record(at, work / seconds, load);
            self.progress.record(work, seconds);
        }
    }

    /// Redraws the curve for `now` (at `level_hint` units per second when
    /// nothing was recorded in the last hour, e.g. rates restored after a
    /// restart) and checks the curve's earlier promises.
    pub fn refresh(&mut self, now: DateTime<Utc>, level_hint: Option<f64>) {
        self.curve = self
            .profile
            .curve(now)
            .or_else(|| self.profile.curve_at(now, level_hint?));
        self.progress.check(now, self.curve.as_ref());
    }

    /// The ETA of `work` units for a target of `class`, with a p90 never
    /// earlier than `floor`'s (a plain slow-rate forecast: the calibration
    /// learns late about long horizons, and the p90 is the promise).
    /// Returns the class's bin, to record the quote.
    pub fn eta(&self, work: f64, class: Class, floor: &EtaRange) -> (EtaRange, Option<usize>) {
        let (eta, bin) = eta(
            self.curve.as_ref(),
            &self.calib,
            &self.progress,
            work,
            class,
        );
        let eta = match (eta.p50, eta.p90, floor.p90) {
            (Some(p50), Some(p90), Some(f)) => EtaRange::at(p50, p90.max(f)),
            _ => eta,
        };
        (eta, bin)
    }

    /// The curve of the work ahead as last drawn (None before any progress).
    pub fn curve(&self) -> Option<&WorkCurve> {
        self.curve.as_ref()
    }

    /// What an ETA of this forecaster assumes that was not measured, in
    /// words (empty: nothing, or no ETA): as the last curve was drawn, the
    /// hours the work has not lived through yet at the current rate ("ETA
    /// assumes the current rate: …"), not from the platform's traffic, when
    /// there is none (`no_traffic` says why, in the source's words) or not
    /// yet enough work seen at loads that spread to tell what the load does
    /// to the rate.
    pub fn eta_assumes(&self, eta: &EtaRange, no_traffic: impl FnOnce() -> String) -> String {
        let why = match (eta.p50, self.curve.as_ref().map(|c| c.unseen)) {
            (Some(_), Some(Unseen::NoTraffic)) => no_traffic(),
            (Some(_), Some(Unseen::LoadEffectUnknown)) => "load's effect not learnt yet".into(),
            _ => return String::new(),
        };
        format!("ETA assumes the current rate: {why}")
    }

    /// Whether it is time to record the quotes served (every 5 minutes);
    /// the caller then calls `quote` for each.
    pub fn quotes_due(&mut self, now: DateTime<Utc>) -> bool {
        let due = self.last_quotes.is_none_or(|t| now - t >= QUOTE_EVERY);
        if due {
            self.last_quotes = Some(now);
        }
        due
    }

    /// An ETA served for target `key`, from `bin`.
    pub fn quote(&mut self, key: u32, bin: Option<usize>, eta: &EtaRange) {
        if let (Some(b), Some(p50), Some(p90)) = (bin, eta.p50, eta.p90) {
            self.calib.register(key, b, p50, p90);
        }
    }

    /// Whether target `key` has work left as of `at`; the moment it goes
    /// from some to none settles the quotes served for it.
    pub fn affected(&mut self, key: u32, affected: bool, at: DateTime<Utc>) {
        if affected {
            self.busy.insert(key);
        } else if self.busy.remove(&key) {
            self.calib.finished(key, at);
        }
    }

    /// Once per tick, after `finished`: quotes passed unfinished are misses,
    /// and the calibration learns.
    pub fn settle(&mut self, now: DateTime<Utc>) {
        self.calib.passed(now);
    }

    /// New work no rate could foresee (a later fault): the calibration's
    /// open quotes and p50 lessons, and the curve's track record, are of
    /// the job before.
    pub fn later_fault(&mut self) {
        self.calib.later_fault();
        self.progress.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn midnight() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2008, 10, 7, 0, 0, 0).single().unwrap()
    }

    /// A profile with `traffic` that saw the evening before midnight, from
    /// 18:00, the load falling evenly from `from` to `to` and the work
    /// running at `rate(load)`.
    fn evening(
        traffic: [f64; QUARTERS],
        from: f64,
        to: f64,
        rate: impl Fn(f64) -> f64,
    ) -> RateProfile {
        let mut p = RateProfile::default();
        p.set_traffic(traffic);
        for m in 0..6 * 60 {
            let t = midnight() - Duration::hours(6) + Duration::minutes(m);
            let load = from - (from - to) * m as f64 / 360.0;
            p.record(t, rate(load), Some(load));
        }
        p
    }

    #[test]
    fn the_curve_slows_through_hours_seen_to_be_slow() {
        let mut p = RateProfile::default();
        assert!(p.curve(midnight()).is_none(), "no progress yet");
        // A day: 10/s at night, 2/s from 08:00 to 18:00.
        for m in 0..24 * 60 {
            let t = midnight() + Duration::minutes(m);
            let slow = (8..18).contains(&t.hour());
            p.record(t, if slow { 2.0 } else { 10.0 }, None);
        }
        // Next night, 00:00: 8 h at 10/s, then 2/s.
        let now = midnight() + Duration::days(1);
        p.record(now, 10.0, None);
        let c = p.curve(now).unwrap();
        assert_eq!(c.time_for(36_000.0), Some(now + Duration::hours(1)));
        let eight = 8.0 * 3600.0 * 10.0;
        let at = c.time_for(eight + 7_200.0).unwrap();
        assert_eq!(at, now + Duration::hours(9), "one more hour at 2/s");
        assert_eq!(c.time_for(0.0), Some(now));
        assert_eq!(c.time_for(1e15), None, "beyond 30 days");
    }

    /// An incident that began in the evening has not seen a morning, but
    /// the platform's traffic says how busy the morning will be, and the
    /// evening showed what load does to the rate: the morning is drawn at
    /// the rate its load gives, not at the night's level. A rate that did
    /// not fall as the load rose says nothing of it, nor does a source
    /// without the traffic.
    #[test]
    fn an_hour_not_seen_yet_is_drawn_from_the_traffic_it_will_have() {
        // 0.2 at night, 1.0 from 08:00 to 12:00.
        let mut traffic = [0.2; QUARTERS];
        traffic[32..48].fill(1.0);
        let mut by_load = RateProfile::default();
        by_load.set_traffic(traffic);
        let mut flat = by_load.clone();
        let mut blind = RateProfile::default();
        // 18:00 to midnight: the load falls from 0.6 to 0.2, and the rate
        // is 10 − 8 × load (flat: 5 whatever the load).
        for m in 0..6 * 60 {
            let t = midnight() - Duration::hours(6) + Duration::minutes(m);
            let load = 0.6 - 0.4 * m as f64 / 360.0;
            by_load.record(t, 10.0 - 8.0 * load, Some(load));
            blind.record(t, 10.0 - 8.0 * load, Some(load));
            flat.record(t, 5.0, Some(load));
        }
        let now = midnight();
        let morning = |p: &RateProfile| {
            let c = p.curve(now).unwrap();
            (c.work_by(10.0 * 3600.0) - c.work_by(8.0 * 3600.0)) / 7200.0
        };
        let night = |p: &RateProfile| {
            let c = p.curve(now).unwrap();
            c.work_by(3.0 * 3600.0) / (3.0 * 3600.0)
        };
        // At load 1.0 the rate is 2/s; the night's, at 0.2, 8.4/s.
        assert!(
            (morning(&by_load) - 2.0).abs() < 0.2,
            "{}",
            morning(&by_load)
        );
        assert!((night(&by_load) - 8.4).abs() < 0.3, "{}", night(&by_load));
        // Without a falling rate or the traffic: the level of the last hour.
        assert!((morning(&flat) - 5.0).abs() < 0.01, "{}", morning(&flat));
        let level = blind.recent(now).unwrap();
        assert!(
            (morning(&blind) - level).abs() < 0.01,
            "{}",
            morning(&blind)
        );
    }

    #[test]
    fn a_rate_that_stopped_falling_with_the_load_does_not_flatten_the_hours_not_seen() {
        // The reindex began on a peak: from 18:00 to midnight the load
        // falls from 0.95 to 0.45 and the rate is 10 − 8 × load but never
        // below 3.2 (its floor, reached at load 0.85). The night ahead runs
        // at load 0.3: 7.6/s. A straight line through the floor says 7.5
        // (and 2.7 at the peak, where it runs at 3.2).
        let mut traffic = [0.3; QUARTERS];
        traffic[..4].fill(0.45);
        let p = evening(traffic, 0.95, 0.45, |load| (10.0 - 8.0 * load).max(3.2));
        let c = p.curve(midnight()).unwrap();
        let night = (c.work_by(4.0 * 3600.0) - c.work_by(2.0 * 3600.0)) / 7200.0;
        assert!((night - 7.6).abs() < 0.05, "{night}");
        // The fit itself: the line between the loads seen, the floor past
        // the knee.
        let fit = p.load.fit().unwrap();
        assert!((fit(0.6) - 5.2).abs() < 0.05, "{}", fit(0.6));
        assert!((fit(0.95) - 3.2).abs() < 0.05, "{}", fit(0.95));
    }

    /// Cluster A's evening: three hours in which the load fell from 0.39
    /// to 0.27, and the reindex ran 2% faster each hour for reasons of its
    /// own (its hour-to-hour spread). Across the hours that drift reads as
    /// the load's doing, and carried to the next day's peak it drew the
    /// morning at half its rate (the reindex ETA hours late); within each
    /// quarter hour the load's effect is what moves the rate.
    #[test]
    fn an_hourly_drift_is_not_read_as_the_loads_effect() {
        let mut p = RateProfile::default();
        for m in 0..3 * 60 {
            let t = midnight() - Duration::hours(3) + Duration::minutes(m);
            let load = 0.39 - 0.12 * m as f64 / 180.0;
            let drift = [0.98, 1.0, 1.02][m as usize / 60];
            p.record(t, drift * (1.2 - 0.8 * load), Some(load));
        }
        let fit = p.load.fit().unwrap();
        // At the morning's load of 1.0 the rate is 0.4 (± the drift).
        assert!((fit(1.0) - 0.4).abs() < 0.02, "{}", fit(1.0));
    }

    /// Outcomes a horizon late: quotes 8 hours away for work that takes
    /// 7% longer than the model says. Every quote served before the
    /// correction still misses when it falls due; the multiplier must not
    /// keep climbing on them (at a short horizon's gain it did, to e^3).
    #[test]
    fn a_long_horizons_late_lessons_do_not_overshoot() {
        let class = Class {
            scope_known: true,
            mailboxes: 50,
            whole: false,
        };
        let base = 8.0 * 3600.0;
        let b = bin(base, class);
        let mut c = Calibrator::default();
        let t0 = midnight();
        let mut ends = std::collections::VecDeque::new();
        let mut highest: f64 = 0.0;
        for i in 0..4 * 24 * 60u32 {
            let now = t0 + Duration::minutes(i64::from(i));
            while let Some(&(end, key)) = ends.front() {
                if end > now {
                    break;
                }
                ends.pop_front();
                c.finished(key, end);
            }
            c.passed(now);
            let (m50, m90) = c.multipliers(b);
            highest = highest.max(m50);
            let at = |m: f64| now + Duration::seconds((base * m) as i64);
            c.register(i, b, at(m50), at(m90));
            ends.push_back((now + Duration::seconds((base * 1.07) as i64), i));
        }
        // At a short horizon's gain: up to 3.5, and 1.7 at the end with
        // the p90 pressed against the p50. The part shared with the short
        // horizons still learns at their pace from these outcomes (1.7 at
        // the highest, then below 1 for a while).
        assert!(
            highest < 2.0,
            "p50 multiplier went up to {highest} for 1.07"
        );
        let (m50, m90) = c.multipliers(b);
        assert!((0.7..1.5).contains(&m50), "p50 multiplier {m50} for 1.07");
        assert!(m90 > m50 * 1.2, "the p90 is not the p50: {m50} {m90}");
    }

    #[test]
    fn the_calibrator_settles_where_a_p90_misses_a_tenth() {
        // Work takes 1.0 to 3.0 times what the model says (uniform): the
        // true p50 multiplier is 2.0 and the p90 2.8.
        let mut c = Calibrator::default();
        let t0 = midnight();
        let mut rng = 7u64;
        for i in 0..20_000u32 {
            let now = t0 + Duration::minutes(i as i64);
            let (m50, m90) = c.multipliers(0);
            let base = 10.0; // minutes
            let q = |m: f64| now + Duration::seconds((base * m * 60.0) as i64);
            c.register(i, 0, q(m50), q(m90));
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (rng >> 11) as f64 / (1u64 << 53) as f64;
            let end = now + Duration::seconds((base * (1.0 + 2.0 * u) * 60.0) as i64);
            c.passed(now);
            c.finished(i, end);
        }
        let (m50, m90) = c.multipliers(0);
        assert!((m50 - 2.0).abs() < 0.25, "p50 multiplier {m50}");
        assert!((m90 - 2.8).abs() < 0.3, "p90 multiplier {m90}");
        assert!(c.open() < 100, "settled quotes are dropped: {}", c.open());
        let (miss, hit) = c.seen[1];
        let rate = miss as f64 / (miss + hit) as f64;
        assert!((rate - 0.1).abs() < 0.03, "p90 missed {rate}");
    }

    #[test]
    fn progress_checks_say_how_far_the_curve_is_trusted() {
        // The curve promises 10/s (all it has seen); the job does 5/s.
        let mut p = RateProfile::default();
        p.record(midnight(), 10.0, None);
        let curve = p.curve(midnight());
        let mut check = ProgressCheck::default();
        assert_eq!(check.multipliers(3_600.0, 0.0), None, "nothing checked yet");
        for m in 0..6 * 60 {
            let now = midnight() + Duration::minutes(m);
            check.check(now, curve.as_ref());
            check.record(5.0 * 60.0, 60.0);
        }
        let (m50, m90) = check.multipliers(3_600.0, 0.0).unwrap();
        assert!((m50 - 2.0).abs() < 0.05, "twice the work: {m50}");
        assert!(m90.unwrap() >= m50);
        // Six hours checked say how far a 12-hour ETA's p50 is off, not
        // how far its p90 may slip: the calibration's own p90 is kept.
        let (m50, m90) = check.multipliers(12.0 * 3_600.0, 0.0).unwrap();
        assert!((m50 - 2.0).abs() < 0.05, "{m50}");
        assert_eq!(m90, None);
        // Nor, with at most two hours checked, of a 3-day ETA's p50.
        let mut short = ProgressCheck::default();
        for m in 0..3 * 60 {
            short.check(midnight() + Duration::minutes(m), curve.as_ref());
            short.record(5.0 * 60.0, 60.0);
        }
        assert_eq!(short.multipliers(72.0 * 3_600.0, 0.0), Some((1.0, None)));
        let (m50, _) = short.multipliers(7_200.0, 0.0).unwrap();
        assert!((m50 - 2.0).abs() < 0.05, "{m50}");
        // A queue that ran dry says nothing about the rate.
        let mut idle = ProgressCheck::default();
        for m in 0..6 * 60 {
            idle.check(midnight() + Duration::minutes(m), curve.as_ref());
            idle.record(1.0, 1.0);
        }
        assert_eq!(idle.multipliers(3_600.0, 0.0), None);
    }

    #[test]
    fn a_later_fault_starts_the_curves_track_record_over() {
        // The curve promises 10/s; the job did 5/s for six hours, then a
        // later fault brings new work.
        let mut f = Forecaster::default();
        for m in 0..=6 * 60 {
            let now = midnight() + Duration::minutes(m);
            f.profile.record(now, 10.0, None);
            f.refresh(now, None);
            f.progress.record(5.0 * 60.0, 60.0);
        }
        let eta = |f: &Forecaster| {
            let class = Class {
                scope_known: true,
                mailboxes: 1_000,
                whole: true,
            };
            f.eta(36_000.0, class, &EtaRange::unknown(""))
                .0
                .p50
                .unwrap()
        };
        let now = midnight() + Duration::hours(6);
        assert!(eta(&f) - now >= Duration::minutes(115), "twice the work");
        f.later_fault();
        assert!(
            eta(&f) - now <= Duration::minutes(61),
            "the curve's own hour"
        );
    }

    /// Promises drawn from hours not seen yet judge curves that know as
    /// little, not one drawn from hours seen since (the slow drill's first
    /// day, applied to its second, put the cluster's p50 hours early).
    #[test]
    fn a_track_record_over_hours_not_seen_does_not_judge_a_curve_that_has_seen_them() {
        let mut p = RateProfile::default();
        p.record(midnight() - Duration::minutes(20), 10.0, None);
        p.record(midnight(), 10.0, None);
        let seen = p.curve(midnight()).unwrap();
        assert!((seen.seen_share(3_600.0) - 1.0).abs() < 1e-9, "its hour");
        assert!(seen.seen_share(16.0 * 3_600.0) < 0.1);
        // From 01:00 every hour ahead of the curve is one not seen yet.
        let blind = p.curve(midnight() + Duration::hours(1)).unwrap();
        assert_eq!(blind.seen_share(3_600.0), 0.0);
        let mut check = ProgressCheck::default();
        for m in 0..6 * 60 {
            check.check(midnight() + Duration::minutes(m), Some(&blind));
            check.record(5.0 * 60.0, 60.0);
        }
        let (m50, _) = check.multipliers(3_600.0, 0.0).unwrap();
        assert!((m50 - 2.0).abs() < 0.05, "twice the work: {m50}");
        // With no record of its own, an ETA that still guesses part of its
        // span takes the blind one's; one drawn wholly from hours seen
        // keeps its p50 (the blind promises missed hours it has seen
        // since), and takes only the p90's spread.
        assert_eq!(
            check.multipliers(3_600.0, 0.75),
            check.multipliers(3_600.0, 0.0)
        );
        let (m50, m90) = check.multipliers(3_600.0, 1.0).unwrap();
        assert_eq!(m50, 1.0);
        assert_eq!(m90, check.multipliers(3_600.0, 0.0).unwrap().1);
        // Once informed promises have their own record, it is theirs.
        for m in 6 * 60..12 * 60 {
            check.check(midnight() + Duration::minutes(m), Some(&seen));
            check.record(9.0 * 60.0, 60.0);
        }
        let (m50, _) = check.multipliers(3_600.0, 1.0).unwrap();
        assert!((m50 - 10.0 / 9.0).abs() < 0.05, "a tenth short: {m50}");
        let (m50, _) = check.multipliers(3_600.0, 0.0).unwrap();
        assert!((m50 - 2.0).abs() < 0.05, "the blind record is kept: {m50}");
    }

    /// Quotes of `minutes` for `bin`, one a minute, each finishing after
    /// `actual(i)` times its base: returns the share of the last `tail`
    /// p50s that held.
    fn stream(
        c: &mut Calibrator,
        bin: usize,
        minutes: f64,
        n: u32,
        tail: u32,
        mut actual: impl FnMut(u32) -> f64,
    ) -> f64 {
        let t0 = midnight();
        let mut held = 0;
        for i in 0..n {
            let now = t0 + Duration::minutes(i as i64);
            let (m50, m90) = c.multipliers(bin);
            let q = |m: f64| now + Duration::seconds((minutes * m * 60.0) as i64);
            let end = q(actual(i));
            c.register(i, bin, q(m50), q(m90));
            if i >= n - tail && end <= q(m50) {
                held += 1;
            }
            c.passed(now);
            c.finished(i, end);
        }
        held as f64 / tail as f64
    }

    #[test]
    fn a_p50_that_outcomes_keep_beating_moves_later_until_about_half_hold() {
        // Every target takes 1.2 to 1.4 times what the model says: at
        // first no p50 holds.
        let mut c = Calibrator::default();
        assert_eq!(c.multipliers(0).0, 1.0);
        let mut rng = 11u64;
        let held = stream(&mut c, 0, 20.0, 3_000, 1_000, |_| {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            1.2 + 0.2 * ((rng >> 11) as f64 / (1u64 << 53) as f64)
        });
        let m50 = c.multipliers(0).0;
        assert!((1.25..1.35).contains(&m50), "p50 multiplier {m50}");
        assert!((0.4..=0.6).contains(&held), "p50 held {held}");
    }

    #[test]
    fn short_horizons_teach_the_long_ones_their_p50() {
        // Only 10-minute ETAs have come back so far, all 30% late; a
        // 10-hour ETA of the same class is moved later too, not left at
        // the model's time until its own outcomes come back hours later.
        let class = Class {
            scope_known: true,
            mailboxes: 500,
            whole: false,
        };
        let short = bin(600.0, class);
        let long = bin(36_000.0, class);
        assert_ne!(short, long);
        let mut c = Calibrator::default();
        // Two hours of outcomes: the shared part has moved the long ETA
        // later (it fades again as the short bin's own multiplier takes
        // over, in a steady state).
        stream(&mut c, short, 10.0, 120, 1, |_| 1.3);
        let (m_short, _) = c.multipliers(short);
        let (m_long, _) = c.multipliers(long);
        assert!(m_short > 1.1, "short {m_short}");
        assert!(m_long > 1.05, "long {m_long}");
        // Another class (a small tenant) has learnt nothing.
        let small = bin(
            36_000.0,
            Class {
                mailboxes: 1,
                ..class
            },
        );
        assert_eq!(c.multipliers(small).0, 1.0);
    }

    #[test]
    fn a_p50_lesson_fades_when_no_outcome_renews_it() {
        // A slow morning taught the p50 a third more work; a day later,
        // with nothing checked since, the lesson has faded (the hours it
        // was about are now in the curve), while the p90 keeps its own.
        let mut c = Calibrator::default();
        stream(&mut c, 0, 10.0, 600, 1, |_| 1.3);
        let (m50, m90) = c.multipliers(0);
        assert!(m50 > 1.2, "learnt {m50}");
        let later = midnight() + Duration::minutes(600);
        for m in 0..24 * 60 {
            c.passed(later + Duration::minutes(m));
        }
        let (faded, m90_after) = c.multipliers(0);
        assert!(faded < 1.02, "faded to {faded}");
        assert!((m90_after - m90).abs() < 1e-9 || m90_after >= faded);
    }

    /// Cluster A's next morning: the evening showed loads up to 0.6, the
    /// traffic says 09:00 brings 1.15. Past a load of 1 the storage is
    /// saturated and the reindex slows no further: the line is not carried
    /// to 1.15 (0.28 of its night's speed; it runs at 0.40).
    #[test]
    fn a_load_past_saturation_slows_the_work_no_further() {
        let mut traffic = [0.25; QUARTERS];
        traffic[36..40].fill(1.15);
        let p = evening(traffic, 0.6, 0.25, |load| 1.2 - 0.8 * load);
        let c = p.curve(midnight()).unwrap();
        let at_nine = (c.work_by(10.0 * 3600.0) - c.work_by(9.0 * 3600.0)) / 3600.0;
        assert!(
            (at_nine - 0.4).abs() < 0.01,
            "09:00-10:00 at {at_nine:.3}/s"
        );
    }

    #[test]
    fn an_hour_just_begun_is_not_drawn_at_its_first_minutes() {
        // The users arrive from 05:00: the load rises 0.2 an hour, and the
        // rate is 10 − 8 × load; it falls back through the evening. The
        // hour 06:00 so far is its first minutes, its fastest; the rest of
        // it runs slower as the load keeps rising, as the traffic history
        // says it will. On the first morning at 06:01; on the next at
        // 06:15, when the hour's mean is yesterday's and 15 of today's
        // fastest minutes (drawn at it, the next hour was 6% fast).
        let load = |t: DateTime<Utc>| {
            let h = f64::from(t.hour()) + f64::from(t.minute()) / 60.0;
            if h >= 18.0 {
                0.2 + 0.4 * (24.0 - h) / 6.0
            } else {
                0.2 + 0.2 * (h - 5.0).clamp(0.0, 4.0)
            }
        };
        for (from, now, mean_load) in [
            (midnight() - Duration::hours(6), 6 * 60 + 1, 0.5),
            (midnight() - Duration::hours(30), 6 * 60 + 15, 0.55),
        ] {
            let mut p = RateProfile::default();
            p.set_traffic(std::array::from_fn(|q| {
                load(midnight() + Duration::seconds(q as i64 * 900 + 450))
            }));
            let now = midnight() + Duration::minutes(now);
            let mut t = from;
            while t <= now {
                p.record(t, 10.0 - 8.0 * load(t), Some(load(t)));
                t += Duration::minutes(1);
            }
            let c = p.curve(now).unwrap();
            let truth = 3600.0 * (10.0 - 8.0 * mean_load);
            let work = c.work_by(3600.0);
            assert!(
                (work / truth - 1.0).abs() < 0.03,
                "{now}, the next hour: {work:.0} vs {truth:.0}"
            );
        }
    }

    /// Cluster A's first evening and night (seed 2026): the load falls
    /// from 0.39 to 0.25, and the reindex's own hour-to-hour spread (2%)
    /// happened to run 3% slow in the first hour, then 2% fast. Across
    /// hours that reads as a rate that stops rising below a load of 0.28
    /// and stops falling above 0.35: a knee at each end, which halves the
    /// straight line's error, carried the rate at 0.35 to every busier
    /// hour, and drew the next day's peak at 0.93 of the night's rate
    /// where it ran at 0.4 (the reindex ETA hours early). Within quarter
    /// hours the rate moved with the load all along: no knee.
    #[test]
    fn an_hourly_step_is_not_read_as_a_knee() {
        let bump = |h: f64, c: f64, w: f64| (-(h - c).powi(2) / (2.0 * w * w)).exp();
        let spread = [0.968, 1.017, 1.019, 1.010, 1.005, 0.992];
        let mut p = RateProfile::default();
        for m in 0..5 * 60 + 30 {
            let t = midnight() - Duration::minutes(3 * 60 + 30) + Duration::minutes(m);
            let h = 20.5 + m as f64 / 60.0;
            let load = 0.25 + 0.9 * bump(h, 33.0, 2.0) + bump(h, 15.5, 2.5);
            p.record(t, spread[m as usize / 60] * (1.2 - 0.8 * load), Some(load));
        }
        let fit = p.load.fit().unwrap();
        let peak = fit(1.0) / fit(0.25);
        assert!(
            (peak - 0.4).abs() < 0.02,
            "the peak at {peak:.3} of the night"
        );
    }

    #[test]
    fn a_morning_seen_for_the_first_time_is_drawn_as_it_was() {
        // A reindex that began at midnight: 2/s until 05:00, then falling
        // by 0.5/s an hour as the users arrive. At 07:15 the last hour's
        // median (the rate at 06:45) is below hour 6's mean (its rate at
        // 06:30); both are today's samples, and tomorrow's 05:00-06:00 is
        // the hour seen today, not that hour scaled by their ratio.
        let mut p = RateProfile::default();
        let rate = |t: DateTime<Utc>| {
            let h = (t - midnight()).num_seconds() as f64 / 3600.0;
            2.0 - 0.5 * (h - 5.0).max(0.0)
        };
        let now = midnight() + Duration::minutes(7 * 60 + 15);
        let mut t = midnight();
        while t <= now {
            p.record(t, rate(t), None);
            t += Duration::minutes(1);
        }
        let c = p.curve(now).unwrap();
        let from = (midnight() + Duration::hours(29) - now).num_seconds() as f64;
        let work = c.work_by(from + 3600.0) - c.work_by(from);
        // Hour 5's mean (2 falling to 1.5), on the line between the half
        // pasts of hours 4 (2/s), 5 and 6 (1.25/s): an eighth of each
        // neighbour in the hour.
        let seen = 3600.0 * (0.75 * 1.75 + 0.125 * (2.0 + 1.25));
        let err = (work / seen - 1.0).abs();
        assert!(err < 0.01, "tomorrow 05:00-06:00: {work:.0} vs {seen:.0}");
    }

    #[test]
    fn work_that_resumes_runs_this_hour_as_it_was_last_seen() {
        // Yesterday 12:00-14:00 ran at 10/s, then 5/s through the 13:00
        // peak; the work stopped and resumes today at 13:05.
        let mut p = RateProfile::default();
        let mut t = midnight() + Duration::hours(12);
        while t < midnight() + Duration::hours(14) {
            p.record(t, if t.hour() == 12 { 10.0 } else { 5.0 }, None);
            t += Duration::minutes(1);
        }
        let now = midnight() + Duration::minutes(37 * 60 + 5);
        let c = p.curve(now).unwrap();
        let rate = c.work_by(900.0) / 900.0;
        assert!((rate - 5.0).abs() < 1e-9, "13:00 ran at 5/s: {rate}");
    }

    #[test]
    fn work_that_resumes_in_an_hour_never_seen_still_runs_the_hours_seen_as_seen() {
        // The load swings through the day between 0.2 (02:00) and 0.9
        // (14:00); the rate is 10 − 8 × load, and 2/s more from midnight
        // to 06:00 (what the load does not say). The work ran from 20:00
        // to 17:00 the next day, stopped, and resumes at 19:30, an hour it
        // never saw.
        let load_at = |t: DateTime<Utc>| {
            let h = f64::from(t.hour()) + f64::from(t.minute()) / 60.0;
            0.55 - 0.35 * (std::f64::consts::TAU * (h - 2.0) / 24.0).cos()
        };
        let mut traffic = [0.0; QUARTERS];
        for (q, v) in traffic.iter_mut().enumerate() {
            *v = load_at(midnight() + Duration::minutes(15 * q as i64 + 7));
        }
        let mut p = RateProfile::default();
        p.set_traffic(traffic);
        let mut t = midnight() - Duration::hours(4);
        let mut night = (0.0, 0.0);
        while t < midnight() + Duration::hours(17) {
            let load = load_at(t);
            let small_hours = t >= midnight() && t.hour() < 6;
            let rate = 10.0 - 8.0 * load + if small_hours { 2.0 } else { 0.0 };
            p.record(t, rate, Some(load));
            if small_hours {
                night = (night.0 + rate, night.1 + 1.0);
            }
            t += Duration::minutes(1);
        }
        let now = midnight() + Duration::minutes(19 * 60 + 30);
        let c = p.curve(now).unwrap();
        // The night as it was seen, 2/s above what its load gives (the old
        // curve drew every hour at what the load gives this one).
        let from = (midnight() + Duration::days(1) - now).num_seconds() as f64;
        let drawn = (c.work_by(from + 6.0 * 3600.0) - c.work_by(from)) / (6.0 * 3600.0);
        let seen = night.0 / night.1;
        // Within 2%: the line between half pasts takes in an eighth of the
        // hours on either side (2/s slower) at each end of the night.
        assert!(
            (drawn / seen - 1.0).abs() < 0.02,
            "00:00-06:00: {drawn} vs {seen}"
        );
    }

    #[test]
    fn a_rate_rising_through_the_evening_rises_within_each_hour_too() {
        // Yesterday 18:00-23:00 and today 19:00-20:00 the rate rose by 2/s
        // an hour, from 10/s at 18:00. At 20:00 the next half hour runs
        // from 14/s to 15/s; hour 20's mean, 15/s, is its rate at half
        // past, not from the hour's first minute (drawn so, the half hour
        // was 3.4% fast and ETAs quoted on the hour early).
        let mut p = RateProfile::default();
        let rate = |t: DateTime<Utc>| {
            10.0 + 2.0 * (f64::from(t.hour()) - 18.0 + f64::from(t.minute()) / 60.0)
        };
        let yesterday = midnight() - Duration::days(1);
        for (from, to) in [(18, 23), (19, 20)] {
            let day = if from == 18 { yesterday } else { midnight() };
            let mut t = day + Duration::hours(from);
            while t < day + Duration::hours(to) {
                p.record(t, rate(t), None);
                t += Duration::minutes(1);
            }
        }
        let now = midnight() + Duration::hours(20);
        let c = p.curve(now).unwrap();
        for (mins, truth) in [(30.0, 14.5), (120.0, 16.0)] {
            let drawn = c.work_by(mins * 60.0) / (mins * 60.0);
            let err = (drawn / truth - 1.0).abs();
            assert!(
                err < 0.005,
                "first {mins} min: {drawn:.3}/s, ran at {truth}/s"
            );
        }
    }

    #[test]
    fn the_curve_follows_a_rising_rate_from_the_hours_it_has_seen() {
        // The rate rises through every day, from 10/s at midnight by 1/s
        // an hour. At noon on the second day the last hour's median is
        // half an hour behind; the curve must still say what 13:00-15:00
        // will do (the work of those hours yesterday), not a level scaled
        // against the end of the current hour.
        let mut p = RateProfile::default();
        let rate = |t: DateTime<Utc>| 10.0 + t.hour() as f64 + t.minute() as f64 / 60.0;
        let noon = midnight() + Duration::hours(36);
        let mut t = midnight();
        while t <= noon {
            p.record(t, rate(t), None);
            t += Duration::minutes(1);
        }
        let c = p.curve(noon).unwrap();
        let work = c.work_by(3.0 * 3600.0) - c.work_by(3600.0);
        let truth = 48.0 * 3600.0; // the integral of 10 + h over 13..15
        let err = (work / truth - 1.0).abs();
        assert!(err < 0.015, "curve {work:.0} vs {truth:.0} ({err:.3})");
    }

    /// A hundred quotes of `bin`'s target, one a minute, each `p50_in`
    /// away (p90 ten hours after it), the target finishing at `end`
    /// minutes: the p50 multiplier after.
    fn episode(bin: usize, p50_in: Duration, end: i64) -> f64 {
        let mut c = Calibrator::default();
        let t0 = midnight();
        for i in 0..100 {
            let now = t0 + Duration::minutes(i);
            let p50 = now + p50_in;
            c.register(7, bin, p50, p50 + Duration::hours(10));
            c.passed(now);
        }
        let mut now = t0 + Duration::minutes(100);
        while now < t0 + Duration::minutes(end) {
            c.passed(now);
            now += Duration::minutes(1);
        }
        c.finished(7, now);
        // Quotes are settled when their times come: run to the last one's.
        let last = t0 + Duration::minutes(100) + p50_in.max(Duration::zero());
        while now <= last {
            c.passed(now);
            now += Duration::minutes(1);
        }
        c.multipliers(bin).0
    }

    #[test]
    fn a_target_that_beats_its_p50s_learns_as_much_as_one_that_misses_them() {
        // A target quoted every tick that finishes ahead of a hundred open
        // p50s has a hundred hits, as a hundred p50s passed one a tick
        // are a hundred misses: its p50 comes out earlier, not only ever
        // later. The cluster's reindex and a tenant alike: a tenant's hits
        // used to be settled in the tick it finished, one batch, one step.
        for whole in [true, false] {
            let b = bin(
                36_000.0,
                Class {
                    scope_known: true,
                    mailboxes: 500,
                    whole,
                },
            );
            let early = episode(b, Duration::hours(10), 101);
            let late = episode(b, Duration::minutes(1), 110);
            assert!(
                early < 0.9,
                "whole {whole}: p50 after finishing early: {early}"
            );
            assert!(
                late > 1.1,
                "whole {whole}: p50 after finishing late: {late}"
            );
            let lopsided = (early.ln() + late.ln()).abs();
            assert!(lopsided < 0.1, "whole {whole}: early {early}, late {late}");
        }
        // A class counts one tick's outcomes as one batch: a thousand
        // tenants behind one slow hour miss together.
        let b = bin(
            3_600.0,
            Class {
                scope_known: true,
                mailboxes: 500,
                whole: false,
            },
        );
        let mut c = Calibrator::default();
        let t0 = midnight();
        let due = t0 + Duration::hours(1);
        for key in 0..1000 {
            c.register(key, b, due, due + Duration::hours(1));
        }
        c.passed(due + Duration::minutes(1));
        let (m50, _) = c.multipliers(b);
        assert!(m50 > 1.0 && m50 < 1.02, "a tick's batch is one step: {m50}");
    }

    #[test]
    fn a_later_fault_is_not_a_miss() {
        let mut c = Calibrator::default();
        let t0 = midnight();
        c.register(1, 0, t0 + Duration::minutes(10), t0 + Duration::minutes(20));
        let before = c.multipliers(0);
        c.later_fault();
        c.passed(t0 + Duration::hours(1));
        assert_eq!(c.multipliers(0), before);
        assert_eq!(c.open(), 0);
    }

    /// After a later fault the p50s, a tenant's and the whole job's,
    /// start again from the model's own; what the p90s learnt is kept.
    #[test]
    fn a_later_fault_starts_the_p50_afresh_and_keeps_the_p90() {
        let mut c = Calibrator::default();
        let t0 = midnight();
        let tenant = bin(
            3_600.0,
            Class {
                scope_known: true,
                mailboxes: 50,
                whole: false,
            },
        );
        let whole = bin(
            3_600.0,
            Class {
                scope_known: true,
                mailboxes: 50,
                whole: true,
            },
        );
        // Every quote missed by far for a while: both p50s and p90s rise.
        for i in 0..200 {
            let now = t0 + Duration::minutes(i);
            for (key, b) in [(1, tenant), (2, whole)] {
                c.register(key, b, now, now);
            }
            c.passed(now + Duration::seconds(1));
        }
        let (t50, t90) = c.multipliers(tenant);
        let (w50, w90) = c.multipliers(whole);
        assert!(t50 > 1.2 && w50 > 1.2, "{t50} {w50}");
        c.later_fault();
        for (b, p90) in [(tenant, t90), (whole, w90)] {
            let (p50_after, p90_after) = c.multipliers(b);
            assert!((p50_after - 1.0).abs() < 1e-9, "{p50_after}");
            assert_eq!(p90_after, p90);
        }
    }

    #[test]
    fn an_eta_says_when_it_assumes_the_current_rate_for_hours_not_seen() {
        let eta = EtaRange::at(
            midnight() + Duration::hours(9),
            midnight() + Duration::hours(12),
        );
        // As the curve is drawn now (a source redraws it every tick).
        let said = |f: &mut Forecaster, eta: &EtaRange| {
            f.refresh(midnight(), None);
            f.eta_assumes(eta, || "no history".into())
        };
        // Work seen at a steady load, no traffic history: said, in the
        // source's words.
        let mut f = Forecaster::default();
        for m in 0..60 {
            f.record(
                midnight() - Duration::minutes(60 - m),
                600.0,
                60.0,
                Some(0.5),
            );
        }
        assert_eq!(
            said(&mut f, &eta),
            "ETA assumes the current rate: no history"
        );
        // With the traffic but loads that never spread: nothing to tell
        // what a busier hour does to the rate.
        f.set_traffic([0.5; QUARTERS]);
        assert_eq!(
            said(&mut f, &eta),
            "ETA assumes the current rate: load's effect not learnt yet"
        );
        // An evening whose load fell and rate rose: the hours ahead are
        // drawn from the traffic, nothing assumed; no ETA, nothing to say.
        f.profile = evening([0.5; QUARTERS], 0.9, 0.3, |l| 10.0 * (1.2 - 0.8 * l));
        assert_eq!(said(&mut f, &eta), "");
        assert_eq!(
            said(
                &mut Forecaster::default(),
                &EtaRange::unknown("no progress")
            ),
            ""
        );
    }

    #[test]
    fn a_weeks_load_history_gives_each_quarter_hours_typical_load() {
        // Seven days of a load that peaks at 09:00, every 5 minutes; one
        // day's 09:00 an outlier (a backup), and points that are no load.
        let start = midnight() - Duration::days(7);
        let curve = |t: DateTime<Utc>| {
            let h = f64::from(t.hour()) + f64::from(t.minute()) / 60.0;
            0.25 + 0.9 * (-(h - 9.0).powi(2) / 8.0).exp()
        };
        let mut points: Vec<(DateTime<Utc>, f64)> = (0..7 * 288)
            .map(|i| start + Duration::minutes(5 * i))
            .map(|t| (t, curve(t)))
            .collect();
        points.push((start + Duration::hours(9), 40.0));
        points.push((start + Duration::hours(3), f64::NAN));
        points.push((start + Duration::hours(3), -1.0));
        let typical = typical_by_quarter(points.iter().copied()).unwrap();
        for q in [0, 12, 36, 37, 60, 95] {
            let mid = midnight() + Duration::minutes(15 * q as i64 + 5);
            assert!(
                (typical[q] - curve(mid)).abs() < 0.01,
                "quarter {q}: {} against {}",
                typical[q],
                curve(mid)
            );
        }
        // Less than a day: refused, saying how much there is.
        let err = typical_by_quarter(points[..200].iter().copied()).unwrap_err();
        assert!(err.contains("covers 67 of the day's 96"), "{err}");
        assert!(typical_by_quarter(std::iter::empty()).is_err());
    }

    #[test]
    fn eta_uses_the_bin_of_its_horizon() {
        let mut p = RateProfile::default();
        p.record(midnight(), 1.0, None);
        let c = Calibrator::default();
        let curve = p.curve(midnight());
        let one = Class {
            scope_known: true,
            mailboxes: 1,
            whole: false,
        };
        let (e, b) = eta(curve.as_ref(), &c, &ProgressCheck::default(), 600.0, one);
        assert_eq!(b, Some(0), "10 minutes away");
        assert_eq!(e.p50, Some(midnight() + Duration::minutes(10)));
        assert!(e.p90 > e.p50, "the prior widens the p90");
        let unknown = Class {
            scope_known: false,
            ..one
        };
        let (_, b2) = eta(
            curve.as_ref(),
            &c,
            &ProgressCheck::default(),
            600.0,
            unknown,
        );
        let (_, b3) = eta(curve.as_ref(), &c, &ProgressCheck::default(), 6_000.0, one);
        let big = Class {
            mailboxes: 500,
            ..one
        };
        let (_, b4) = eta(curve.as_ref(), &c, &ProgressCheck::default(), 600.0, big);
        let whole = Class { whole: true, ..big };
        let (_, b5) = eta(curve.as_ref(), &c, &ProgressCheck::default(), 600.0, whole);
        let bins = [b, b2, b3, b4, b5];
        for (i, x) in bins.iter().enumerate() {
            assert!(x.is_some_and(|x| x < BINS));
            assert!(!bins[..i].contains(x), "distinct classes: {bins:?}");
        }
        let (e, _) = eta(None, &c, &ProgressCheck::default(), 600.0, one);
        assert!(!e.is_known());
    }
}
