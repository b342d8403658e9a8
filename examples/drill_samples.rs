//! Every ETA sample of one drill as CSV, for looking into forecast errors
//! beyond the summary of `warroom drill calibrate`:
//!
//!     cargo run --release --example drill_samples -- [SCENARIO] [SEED] > samples.csv
//!
//! Columns: phase, target, key, hours since the start, affected mailboxes,
//! then p50, p90, naive and episode end as hours from the sample (empty when
//! there is none).

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

use warroom::sources::simulator::SimConfig;
use warroom::sources::simulator::drill::{SAMPLE_EVERY_HOURS, run};
use warroom::sources::simulator::scenario::Scenario;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let scenario = Scenario::load(&args.next().unwrap_or_else(|| "cluster-a-2008".into()))
        .map_err(|e| e.to_string())?;
    let seed = args
        .next()
        .map_or(Ok(2008), |s| s.parse())
        .map_err(|e| format!("seed: {e}"))?;
    let start = scenario.start;
    let cfg = SimConfig {
        seed,
        ..SimConfig::of(scenario)
    };
    let drill = run(cfg, SAMPLE_EVERY_HOURS)?;
    println!("phase,target,key,at_h,weight,p50_h,p90_h,naive_h,end_h");
    let h = |t: Option<chrono::DateTime<chrono::Utc>>, from: chrono::DateTime<chrono::Utc>| {
        t.map(|t| format!("{:.3}", (t - from).num_seconds() as f64 / 3600.0))
            .unwrap_or_default()
    };
    for s in &drill.samples {
        println!(
            "{},{},{},{:.2},{},{},{},{},{}",
            s.phase.label(),
            s.target.label(),
            s.key,
            (s.at - start).num_seconds() as f64 / 3600.0,
            s.weight,
            h(s.p50, s.at),
            h(s.p90, s.at),
            h(s.naive, s.at),
            h(s.episode_end, s.at)
        );
    }
    Ok(())
}
