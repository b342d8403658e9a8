//! Drills run headless to the end, to score the ETAs they served against
//! what then happened (`warroom drill calibrate`, docs/forecasting.md).
//!
//! The ETAs recorded are the ones the source hands the gateway (the rows'
//! and clusters' `EtaRange`s, which the gateway sends unchanged), sampled
//! every quarter of a simulated hour at one-minute ticks like the demo's.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::domain::calibration::{Phase, Sample, Score, Target, score};
use crate::domain::forecast::MAX_HORIZON;

/// Simulated seconds per tick: the demo's 60× speed at one tick a second.
const TICK: f64 = 60.0;
/// ETAs are sampled four times per simulated hour: a small fault is over
/// in two hours.
pub const SAMPLE_EVERY_HOURS: f64 = 0.25;
/// A drill that has not ended after this long is stopped (its open
/// episodes count as missed).
const MAX_TICKS: u64 = 60 * 24 * 30;

/// Samples of one drill run, with their outcomes filled in.
#[derive(Debug, Clone)]
pub struct DrillRun {
    pub samples: Vec<Sample>,
    /// When the incident was resolved for good; None when stopped first.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// Runs `cfg` to the end, recording every ETA served each `every_hours`.
pub fn run(cfg: SimConfig, every_hours: f64) -> Result<DrillRun, String> {
    let mut sim = Simulator::new(cfg)?;
    let n = sim.tenants.len();
    let every = ((every_hours * HOUR / TICK).round() as u64).max(1);
    let mut tenant_ends: Vec<Vec<DateTime<Utc>>> = vec![Vec::new(); n];
    let mut cluster_ends = Vec::new();
    let mut queue_ends = Vec::new();
    let mut was_affected: Vec<bool> = sim
        .tenants
        .iter()
        .map(|t| t.states.affected() > 0)
        .collect();
    let mut cluster_busy = true;
    let mut queue_busy = false;
    let mut samples = Vec::new();
    let mut resolved_at = None;
    for tick in 1..=MAX_TICKS {
        sim.advance(TICK);
        let now = sim.now();
        for (ti, was) in was_affected.iter_mut().enumerate() {
            let is = sim.tenants[ti].states.affected() > 0;
            if *was && !is {
                tenant_ends[ti].push(now);
            }
            *was = is;
        }
        let busy = sim.reindex_left();
        if cluster_busy && !busy {
            cluster_ends.push(now);
        }
        cluster_busy = busy;
        let queued = sim.queued_on(CLUSTER_A) > 0;
        if queue_busy && !queued {
            queue_ends.push(now);
        }
        queue_busy = queued;
        if tick % every == 0 {
            sim.sample(&mut samples);
        }
        if sim.incident_state == IncidentState::Resolved
            && sim.later_faults_done == sim.sc.later_faults.len()
        {
            resolved_at = Some(now);
            break;
        }
    }
    for s in &mut samples {
        let ends = match s.target {
            Target::Tenant => &tenant_ends[s.key as usize],
            Target::Cluster => &cluster_ends,
            Target::Queue => &queue_ends,
        };
        s.episode_end = ends.iter().copied().find(|&e| e > s.at);
        s.final_end = ends.last().copied().filter(|&e| e > s.at);
    }
    Ok(DrillRun {
        samples,
        resolved_at,
    })
}

/// Scores runs from [`run_all`] per scenario.
pub fn score_runs(scenarios: &[Scenario], runs: Vec<SeededRun>) -> Vec<Score> {
    let mut per_scenario: Vec<Vec<Sample>> = vec![Vec::new(); scenarios.len()];
    for (s, _, run) in runs {
        per_scenario[s].extend(run.samples);
    }
    scenarios
        .iter()
        .zip(per_scenario)
        .flat_map(|(sc, samples)| score(&sc.name, &samples))
        .collect()
}

/// Every sample of `runs` as CSV, one line per ETA served, with what
/// happened: for reading a scenario's misses one by one.
pub fn write_samples(
    out: &mut impl std::io::Write,
    scenarios: &[Scenario],
    runs: &[SeededRun],
) -> std::io::Result<()> {
    use crate::domain::csv::{field, time};
    writeln!(
        out,
        "scenario,seed,phase,target,key,at,affected,p50,p90,naive,episode_end,final_end"
    )?;
    for (s, seed, run) in runs {
        for x in &run.samples {
            writeln!(
                out,
                "{},{seed},{},{},{},{},{},{},{},{},{},{}",
                field(&scenarios[*s].name),
                x.phase.label(),
                x.target.label(),
                x.key,
                time(Some(x.at)),
                x.weight,
                time(x.p50),
                time(x.p90),
                time(x.naive),
                time(x.episode_end),
                time(x.final_end),
            )?;
        }
    }
    Ok(())
}

/// A drill run with its scenario's index and its seed.
pub type SeededRun = (usize, u64, DrillRun);

/// Runs every scenario for `seeds` seeds (2008, 2009, …) on `threads`
/// threads: (scenario index, seed, run), in that order.
pub fn run_all(
    scenarios: &[Scenario],
    seeds: u32,
    threads: usize,
) -> Result<Vec<SeededRun>, String> {
    let jobs: Vec<(usize, u64)> = (0..scenarios.len())
        .flat_map(|s| (0..seeds as u64).map(move |k| (s, 2008 + k)))
        .collect();
    let next = AtomicUsize::new(0);
    let results: Vec<Result<Vec<SeededRun>, String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&(s, seed)) = jobs.get(i) else {
                            return Ok(mine);
                        };
                        let cfg = SimConfig {
                            seed,
                            ..SimConfig::of(scenarios[s].clone())
                        };
                        mine.push((s, seed, run(cfg, SAMPLE_EVERY_HOURS)?));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a drill panicked".into())))
            .collect()
    });
    let mut runs = Vec::new();
    for r in results {
        runs.extend(r?);
    }
    runs.sort_by_key(|r| (r.0, r.1));
    Ok(runs)
}

impl Simulator {
    fn phase(&self) -> Phase {
        if self.scope.is_none() || !self.scan_done() {
            Phase::BeforeScan
        } else if self.later_faults_done > 0 {
            Phase::AfterLaterFault
        } else {
            Phase::Reindex
        }
    }

    /// Files per second over the latest tick: the naive baseline's rate.
    fn rate_now(&self) -> Option<f64> {
        self.reindex_rate
            .latest(1)
            .first()
            .copied()
            .filter(|r| *r > 0.0)
    }

    fn naive_after(&self, work: f64, rate: Option<f64>) -> Option<DateTime<Utc>> {
        let secs = work / rate?;
        (secs.is_finite() && secs <= MAX_HORIZON.num_seconds() as f64)
            .then(|| self.now() + Duration::milliseconds((secs * 1000.0) as i64))
    }

    /// Appends what is served now: every affected tenant's ETA, the
    /// cluster's reindex ETA and the queue's drain ETA.
    fn sample(&self, out: &mut Vec<Sample>) {
        let now = self.now();
        let phase = self.phase();
        let rate = self.rate_now();
        let in_flight_files: f64 = self.in_flight.iter().map(|f| f.remaining).sum();
        let total_pending: u64 = self.tenants.iter().map(|t| t.pending.len() as u64).sum();
        let blank = |target, key, weight: u64, eta: &EtaRange, naive| Sample {
            seed: self.cfg.seed,
            phase,
            target,
            key,
            at: now,
            weight: weight as f64,
            p50: eta.p50,
            p90: eta.p90,
            naive,
            episode_end: None,
            final_end: None,
        };
        for (ti, t) in self.tenants.iter().enumerate() {
            let affected = t.states.affected();
            if affected == 0 {
                continue;
            }
            // Naive: everything affected is queued now at the tenant's
            // place, and the current rate holds.
            let k = t.pending.len() as u64 + t.states.get(MailboxState::LockedOut);
            let pos = match self.levels.get(&t.slot()) {
                Some(l) if k > 0 => l.position(k),
                _ => total_pending + k,
            };
            let work = pos as f64 * self.avg_pending_files + in_flight_files;
            let naive = self.naive_after(work, rate);
            out.push(blank(Target::Tenant, ti as u32, affected, &t.eta, naive));
        }
        let cluster = self.cluster(CLUSTER_A);
        if self.reindex_left() {
            let left = self
                .scope
                .as_ref()
                .map(|s| s.current().saturating_sub(self.done_files) as f64);
            let naive = left.and_then(|w| self.naive_after(w.max(in_flight_files), rate));
            out.push(blank(
                Target::Cluster,
                0,
                cluster.affected_mailboxes,
                &cluster.reindex.eta,
                naive,
            ));
        }
        let depth = self.queued_on(CLUSTER_A);
        if depth > 0 {
            let drain = self.flows[CLUSTER_A]
                .drain
                .latest(1)
                .first()
                .copied()
                .filter(|r| *r > 0.0);
            let naive = self.naive_after(depth as f64, drain);
            out.push(blank(
                Target::Queue,
                0,
                cluster.affected_mailboxes,
                &cluster.queue.drain_eta,
                naive,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small fast drill runs to its end, and every sample is scored
    /// against an end that came after it.
    #[test]
    fn a_drill_runs_to_the_end_and_every_outcome_follows_its_sample() {
        let mut sc = Scenario::load("small-fast-fault").unwrap();
        sc.scale.tenants = 100;
        sc.scale.mailboxes = 2_000;
        let run = run(SimConfig::of(sc), 0.25).unwrap();
        assert!(run.resolved_at.is_some(), "the drill ended");
        assert!(run.samples.iter().any(|s| s.target == Target::Tenant));
        assert!(run.samples.iter().any(|s| s.target == Target::Cluster));
        for s in &run.samples {
            let end = s.episode_end.expect("everything ended");
            assert!(end > s.at);
            assert!(s.final_end.unwrap() >= end);
            assert!(s.weight > 0.0 || s.target == Target::Queue);
        }
        let scores = score("small", &run.samples);
        assert!(scores.iter().any(|s| s.n > 0));
    }
}
