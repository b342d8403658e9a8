//! Times every tick of a 100,000-tenant / 5,000,000-mailbox simulation
//! through the second fault (T+26h), which criterion cannot isolate: it is
//! one tick per incident.
//!
//!     cargo run --release --example tick_profile

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

use std::time::Instant;

use warroom::sources::Source;
use warroom::sources::simulator::{SimConfig, Simulator};

fn main() -> Result<(), String> {
    let cfg = SimConfig {
        tenants: 100_000,
        mailboxes: 5_000_000,
        ..SimConfig::default()
    };
    let fault_tick = (cfg.scenario.later_faults[0].after_hours * 60.0) as usize - 1;
    let mut s = Simulator::new(cfg)?;
    let mut times = Vec::new();
    for i in 0..fault_tick + 60 {
        let t = Instant::now();
        s.advance(60.0);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if i == fault_tick {
            println!("second-fault tick (T+26h): {ms:.1} ms");
        }
        times.push(ms);
    }
    let worst = times.iter().cloned().fold(0.0, f64::max);
    times.sort_by(f64::total_cmp);
    println!(
        "{} ticks: p50 {:.1} ms, p99 {:.1} ms, max {worst:.1} ms",
        times.len(),
        times[times.len() / 2],
        times[times.len() * 99 / 100]
    );
    Ok(())
}
