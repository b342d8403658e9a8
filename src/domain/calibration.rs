//! Scoring forecasts against what happened: how often an ETA held.
//!
//! A drill records every ETA served (per tenant, for the cluster's reindex
//! and for the queue's drain) at regular times, and afterwards when each of
//! those actually finished. An ETA is scored against the end of the episode
//! it was about (the first later time with nothing affected / nothing left /
//! the queue empty) and, separately, against the final end (across later
//! faults). A p90 "holds" when the actual end is at or before it; over many
//! samples a calibrated p90 holds about 90% of the time and a p50 about
//! half of the time. Coverage is reported per sample and weighted by the
//! affected mailboxes at the sample, since a big tenant's ETA is read to
//! many more customers.
//!
//! The samples of one run are not independent: a seed whose reindex ran a
//! little slow makes every ETA of that run early together. So each p50
//! coverage comes with its standard error across runs (clustered by seed):
//! with 20 seeds, the cluster's coverage, one ETA per quarter hour of a
//! handful of runs' worth of information, is known to 5–10 points.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

use super::forecast::percentile;

/// What an ETA is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Tenant,
    Cluster,
    Queue,
}

/// When in the incident the ETA was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before the scan for damage completes: the scope is not known.
    BeforeScan,
    /// The scan is complete; no later fault yet.
    Reindex,
    /// After a later fault sent restored mailboxes back.
    AfterLaterFault,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::BeforeScan, Phase::Reindex, Phase::AfterLaterFault];
    pub fn label(self) -> &'static str {
        match self {
            Phase::BeforeScan => "before_scan",
            Phase::Reindex => "reindex",
            Phase::AfterLaterFault => "after_later_fault",
        }
    }
}

impl Target {
    pub const ALL: [Target; 3] = [Target::Tenant, Target::Cluster, Target::Queue];
    pub fn label(self) -> &'static str {
        match self {
            Target::Tenant => "tenant",
            Target::Cluster => "cluster",
            Target::Queue => "queue",
        }
    }
}

/// One ETA as served, and what then happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The run's seed: samples of one run share its luck.
    pub seed: u64,
    pub phase: Phase,
    pub target: Target,
    /// Which tenant (or 0): tells slips of different tenants apart.
    pub key: u32,
    pub at: DateTime<Utc>,
    /// Affected mailboxes at the sample.
    pub weight: f64,
    pub p50: Option<DateTime<Utc>>,
    pub p90: Option<DateTime<Utc>>,
    /// The naive baseline: remaining ÷ current rate, a point.
    pub naive: Option<DateTime<Utc>>,
    /// The end of this episode; None when the drill stopped first.
    pub episode_end: Option<DateTime<Utc>>,
    /// The last end over the whole drill; None when it never ended.
    pub final_end: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Forecaster {
    Warroom,
    Naive,
}

/// Coverage and error of one forecaster on one (scenario, phase, target).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    pub scenario: String,
    pub phase: &'static str,
    pub target: &'static str,
    pub forecaster: Forecaster,
    /// Samples with an estimate.
    pub n: usize,
    /// Samples where no estimate was given (with a reason).
    pub no_estimate: usize,
    pub p50_coverage: f64,
    pub p90_coverage: f64,
    pub p50_coverage_by_mailbox: f64,
    pub p90_coverage_by_mailbox: f64,
    /// Standard errors of the two p50 coverages across runs (clustered by
    /// seed; NaN with fewer than two seeds).
    pub p50_coverage_se: f64,
    pub p50_coverage_by_mailbox_se: f64,
    /// Against the final end instead of the episode's.
    pub p50_coverage_final: f64,
    pub p90_coverage_final: f64,
    pub median_abs_error_minutes: f64,
    pub p90_abs_error_minutes: f64,
    pub mean_width_minutes: f64,
    /// Distinct p90s (per tenant) passed while still affected.
    pub slips: usize,
}

fn held(quote: DateTime<Utc>, end: Option<DateTime<Utc>>) -> bool {
    end.is_some_and(|e| e <= quote)
}

/// The weighted share of hits among `(hit, weight, seed)`, and its
/// standard error across seeds: the cluster-robust error of a ratio,
/// √(S/(S−1) · Σₛ (hitsₛ − share · weightₛ)²) ÷ Σ weight over S seeds.
fn share(hits: impl Iterator<Item = (bool, f64, u64)>) -> (f64, f64) {
    let mut per_seed: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for (hit, w, seed) in hits {
        let s = per_seed.entry(seed).or_default();
        s.1 += w;
        if hit {
            s.0 += w;
        }
    }
    let (h, n) = per_seed
        .values()
        .fold((0.0, 0.0), |(h, n), s| (h + s.0, n + s.1));
    if n <= 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let p = h / n;
    let seeds = per_seed.len() as f64;
    let se = if seeds < 2.0 {
        f64::NAN
    } else {
        let ss: f64 = per_seed.values().map(|s| (s.0 - p * s.1).powi(2)).sum();
        (ss * seeds / (seeds - 1.0)).sqrt() / n
    };
    (p, se)
}

fn minutes(d: chrono::Duration) -> f64 {
    d.num_seconds() as f64 / 60.0
}

/// Scores every (phase, target, forecaster) present in `samples`.
pub fn score(scenario: &str, samples: &[Sample]) -> Vec<Score> {
    let mut out = Vec::new();
    for phase in Phase::ALL {
        for target in Target::ALL {
            let group: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.phase == phase && s.target == target)
                .collect();
            if group.is_empty() {
                continue;
            }
            for forecaster in [Forecaster::Warroom, Forecaster::Naive] {
                let quotes: Vec<Quote> = group
                    .iter()
                    .filter_map(|s| match forecaster {
                        Forecaster::Warroom => Some((*s, s.p50?, s.p90?)),
                        Forecaster::Naive => Some((*s, s.naive?, s.naive?)),
                    })
                    .collect();
                out.push(score_group(
                    scenario,
                    phase,
                    target,
                    forecaster,
                    &quotes,
                    group.len(),
                ));
            }
        }
    }
    out
}

/// A sample with the two times a forecaster quoted for it (p50, p90).
type Quote<'a> = (&'a Sample, DateTime<Utc>, DateTime<Utc>);

fn score_group(
    scenario: &str,
    phase: Phase,
    target: Target,
    forecaster: Forecaster,
    quotes: &[Quote],
    samples: usize,
) -> Score {
    let cov = |pick: fn(&Quote) -> DateTime<Utc>, final_end: bool, weighted: bool| {
        share(quotes.iter().map(|q| {
            let end = if final_end {
                q.0.final_end
            } else {
                q.0.episode_end
            };
            (
                held(pick(q), end),
                if weighted { q.0.weight } else { 1.0 },
                q.0.seed,
            )
        }))
    };
    let p50 = |q: &Quote| q.1;
    let p90 = |q: &Quote| q.2;
    let (p50_all, p50_mbx) = (cov(p50, false, false), cov(p50, false, true));
    // Errors only where the end is known (a drill that stopped first has
    // no error to measure, and is counted as a miss above).
    let errors: Vec<f64> = quotes
        .iter()
        .filter_map(|(s, p50, _)| Some(minutes(*p50 - s.episode_end?).abs()))
        .collect();
    let widths: Vec<f64> = quotes.iter().map(|(_, a, b)| minutes(*b - *a)).collect();
    let slips: HashSet<(u32, DateTime<Utc>)> = quotes
        .iter()
        .filter(|(s, _, p90)| !held(*p90, s.episode_end))
        .map(|(s, _, p90)| (s.key, *p90))
        .collect();
    Score {
        scenario: scenario.to_string(),
        phase: phase.label(),
        target: target.label(),
        forecaster,
        n: quotes.len(),
        no_estimate: samples - quotes.len(),
        p50_coverage: p50_all.0,
        p90_coverage: cov(p90, false, false).0,
        p50_coverage_by_mailbox: p50_mbx.0,
        p90_coverage_by_mailbox: cov(p90, false, true).0,
        p50_coverage_se: p50_all.1,
        p50_coverage_by_mailbox_se: p50_mbx.1,
        p50_coverage_final: cov(p50, true, false).0,
        p90_coverage_final: cov(p90, true, false).0,
        median_abs_error_minutes: percentile(&errors, 0.5).unwrap_or(f64::NAN),
        p90_abs_error_minutes: percentile(&errors, 0.9).unwrap_or(f64::NAN),
        mean_width_minutes: if widths.is_empty() {
            f64::NAN
        } else {
            widths.iter().sum::<f64>() / widths.len() as f64
        },
        slips: slips.len(),
    }
}

/// Whether a score meets the goal: p90 held at least 90% of the time and
/// p50 between 40% and 60%, per sample and by mailbox.
pub fn meets_goal(s: &Score) -> bool {
    let p90 = |c: f64| c >= 0.90;
    let p50 = |c: f64| (0.40..=0.60).contains(&c);
    s.n == 0
        || (p90(s.p90_coverage)
            && p90(s.p90_coverage_by_mailbox)
            && p50(s.p50_coverage)
            && p50(s.p50_coverage_by_mailbox))
}

/// The scores as a fixed-width table, one line per score.
pub fn table(scores: &[Score]) -> String {
    let pct = |x: f64| {
        if x.is_nan() {
            "   -".to_string()
        } else {
            format!("{:>3.0}%", x * 100.0)
        }
    };
    // The larger of the p50's two standard errors, in points.
    let spread = |x: f64| {
        if x.is_nan() {
            "-".to_string()
        } else {
            format!("±{:.0}", x * 100.0)
        }
    };
    let mins = |x: f64| {
        if x.is_nan() {
            "-".to_string()
        } else if x >= 600.0 {
            format!("{:.0}h", x / 60.0)
        } else {
            format!("{x:.0}m")
        }
    };
    let mut out = format!(
        "{:<18} {:<17} {:<7} {:<7} {:>6} {:>5}  {:>4} {:>4} {:>5} {:>5} {:>4}  {:>5} {:>5}  {:>6} {:>6} {:>6} {:>5}  goal\n",
        "scenario",
        "phase",
        "target",
        "by",
        "n",
        "none",
        "p50",
        "p90",
        "p50/m",
        "p90/m",
        "±p50",
        "p50/F",
        "p90/F",
        "err50",
        "err90",
        "width",
        "slips"
    );
    for s in scores {
        out.push_str(&format!(
            "{:<18} {:<17} {:<7} {:<7} {:>6} {:>5}  {} {}  {}  {} {:>4}   {}  {}  {:>6} {:>6} {:>6} {:>5}  {}\n",
            s.scenario,
            s.phase,
            s.target,
            match s.forecaster {
                Forecaster::Warroom => "warroom",
                Forecaster::Naive => "naive",
            },
            s.n,
            s.no_estimate,
            pct(s.p50_coverage),
            pct(s.p90_coverage),
            pct(s.p50_coverage_by_mailbox),
            pct(s.p90_coverage_by_mailbox),
            spread(s.p50_coverage_se.max(s.p50_coverage_by_mailbox_se)),
            pct(s.p50_coverage_final),
            pct(s.p90_coverage_final),
            mins(s.median_abs_error_minutes),
            mins(s.p90_abs_error_minutes),
            mins(s.mean_width_minutes),
            s.slips,
            if meets_goal(s) { "ok" } else { "MISSED" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2008, 10, 7, 0, 0, 0).single().unwrap() + Duration::hours(h)
    }

    fn sample(key: u32, p50: i64, p90: i64, end: Option<i64>, weight: f64) -> Sample {
        Sample {
            seed: 2008,
            phase: Phase::Reindex,
            target: Target::Tenant,
            key,
            at: t(0),
            weight,
            p50: Some(t(p50)),
            p90: Some(t(p90)),
            naive: Some(t(p50)),
            episode_end: end.map(t),
            final_end: end.map(|e| t(e + 10)),
        }
    }

    #[test]
    fn coverage_counts_ends_at_or_before_the_quote() {
        let samples = [
            sample(1, 2, 4, Some(1), 1.0),  // both hold
            sample(2, 2, 4, Some(2), 1.0),  // both hold (at the quote)
            sample(3, 2, 4, Some(3), 1.0),  // p50 missed, p90 held
            sample(4, 2, 4, Some(5), 97.0), // both missed: a slip
            sample(4, 2, 4, None, 1.0),     // never ended: the same slip
        ];
        let s = &score("x", &samples)[0];
        assert_eq!((s.n, s.no_estimate), (5, 0));
        assert_eq!(s.p50_coverage, 0.4);
        assert_eq!(s.p90_coverage, 0.6);
        assert_eq!(s.p90_coverage_by_mailbox, 3.0 / 101.0);
        assert_eq!(s.p90_coverage_final, 0.0, "the final end is 10 h later");
        assert_eq!(s.slips, 1, "the same p90 of one tenant is one slip");
        assert_eq!(s.mean_width_minutes, 120.0);
        // |p50 − end| over the four that ended: 1h, 0, 1h, 3h.
        assert_eq!(s.median_abs_error_minutes, 60.0);
        assert!(!meets_goal(s));
    }

    #[test]
    fn samples_without_an_estimate_are_counted_apart() {
        let mut none = sample(1, 2, 4, Some(1), 1.0);
        none.p50 = None;
        none.p90 = None;
        let s = &score("x", &[none, sample(2, 2, 4, Some(1), 1.0)])[0];
        assert_eq!((s.n, s.no_estimate), (1, 1));
        assert_eq!(s.p90_coverage, 1.0);
        let naive = &score("x", &[sample(2, 2, 4, Some(3), 1.0)])[1];
        assert_eq!(naive.forecaster, Forecaster::Naive);
        assert_eq!(naive.p90_coverage, 0.0, "a point forecast: p90 = p50");
    }

    #[test]
    fn the_goal_needs_both_quantiles_per_sample_and_by_mailbox() {
        let mut samples: Vec<Sample> = (0..10)
            .map(|k| sample(k, 2, 4, Some(if k < 5 { 1 } else { 3 }), 1.0))
            .collect();
        let s = &score("x", &samples)[0];
        assert!(meets_goal(s), "{s:?}");
        samples[8].episode_end = Some(t(9));
        samples[9].episode_end = Some(t(9));
        let s = &score("x", &samples)[0];
        assert!(!meets_goal(s), "p90 held 8 of 10 samples only");
        assert!(table(&score("x", &samples)).contains("MISSED"));
    }

    /// Two runs, one whose every p50 held and one whose none did: half
    /// held, but that half is one run's luck against another's, and the
    /// error says so; runs that agree leave none.
    #[test]
    fn the_p50s_error_is_counted_in_runs_not_in_samples() {
        let run = |seed: u64, end: i64| {
            (0..10).map(move |k| Sample {
                seed,
                ..sample(k, 2, 4, Some(end), 1.0)
            })
        };
        let split: Vec<Sample> = run(1, 1).chain(run(2, 3)).collect();
        let s = &score("x", &split)[0];
        assert_eq!(s.p50_coverage, 0.5);
        assert!(
            (s.p50_coverage_se - 0.5).abs() < 1e-9,
            "{}",
            s.p50_coverage_se
        );
        assert!(table(&score("x", &split)).contains("±50"));

        let mixed: Vec<Sample> = run(1, 1)
            .take(5)
            .chain(run(1, 3).take(5))
            .chain(run(2, 1).take(5))
            .chain(run(2, 3).take(5))
            .collect();
        let s = &score("x", &mixed)[0];
        assert_eq!((s.p50_coverage, s.p50_coverage_se), (0.5, 0.0));
        let one = &score("x", &mixed[..10])[0];
        assert!(
            one.p50_coverage_se.is_nan(),
            "one run says nothing of the next"
        );
    }
}
