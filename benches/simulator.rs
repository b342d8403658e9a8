//! Cost of one simulator tick (`Source::advance(60.0)`) at the default scale
//! (2,000 tenants / 50,000 mailboxes) and at 100,000 tenants / 5,000,000
//! mailboxes, plus the per-tick queries the hub makes (`overview`,
//! `changed_tenants`) and a whole `Hub::tick` at 5M.
//!
//! Each simulator is built once and warmed up to 5 simulated hours (the
//! fault is identified at 3 h, so the scan and the reindex are both running).
//! `overview` and `changed_tenants` are measured at that fixed point; then
//! `advance` is measured in place: the incident keeps evolving while it is
//! measured. The default-scale simulator is rebuilt (untimed) whenever it
//! reaches 20 simulated hours, so its thousands of iterations all measure the
//! scan / reindex phase and never the quiet, resolved end of the incident.
//! After the criterion runs, the 5M hub is ticked on past the second fault
//! (26 h), whose tick walks every mailbox of cluster A, and the spread of
//! those ticks is printed.
//!
//! Run: `cargo bench --bench simulator`. Also printed on stderr: build and
//! warm-up wall times, per-phase tick percentiles, and the process peak RSS
//! (VmHWM) after building the 5M simulator.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

#[path = "common/mod.rs"]
mod common;
use common::{mb, proc_status_kb};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use warroom::gateway::Hub;
use warroom::sources::simulator::{SimConfig, Simulator};
use warroom::sources::{MailboxQuery, Source};

const STEP: f64 = 60.0;
/// 5 simulated hours at 60 s per tick.
const WARMUP_TICKS: u64 = 5 * 60;
/// The tick that crosses 26 simulated hours: the second fault.
const SECOND_FAULT_TICK: u64 = 26 * 60;
/// Rebuild the default-scale simulator after 20 simulated hours.
const DEFAULT_MAX_TICKS: u64 = 20 * 60;

fn build(tenants: u32, mailboxes: u64) -> Simulator {
    let t0 = Instant::now();
    let sim = Simulator::new(SimConfig {
        tenants,
        mailboxes,
        ..SimConfig::default()
    })
    .expect("valid simulator config");
    eprintln!(
        "[simulator] built {tenants} tenants / {mailboxes} mailboxes in {:?}",
        t0.elapsed()
    );
    sim
}

fn warm_up(sim: &mut Simulator, label: &str) {
    let mut ticks = Vec::with_capacity(WARMUP_TICKS as usize);
    let t0 = Instant::now();
    for _ in 0..WARMUP_TICKS {
        let t = Instant::now();
        sim.advance(STEP);
        ticks.push(t.elapsed());
    }
    let took = t0.elapsed();
    eprintln!(
        "[simulator] {label}: warm-up of {WARMUP_TICKS} ticks (5 simulated hours) took {took:?} \
         ({:?} per tick on average)",
        took / WARMUP_TICKS as u32
    );
    // Ticks 0-179 are before the fault is identified (3 h); from then on
    // the scan and the reindex run.
    for (phase, range) in [("0-3 h", 0..180), ("3-5 h (scan + reindex)", 180..300)] {
        let mut t = ticks[range].to_vec();
        t.sort();
        eprintln!(
            "[simulator] {label}: ticks {phase}: p50 {:?}, p90 {:?}, max {:?}",
            t[t.len() / 2],
            t[t.len() * 9 / 10],
            t[t.len() - 1]
        );
    }
}

fn default_scale(c: &mut Criterion) {
    let mut sim = build(2_000, 50_000);
    warm_up(&mut sim, "default");
    let mut g = c.benchmark_group("simulator_default_2k_tenants_50k_mailboxes");
    eprintln!(
        "[simulator] default simulator at {} ticks (queries measured here); last advance changed {} tenant rows",
        sim.advances(),
        sim.changed_tenants().len()
    );
    g.bench_function("overview", |b| b.iter(|| black_box(sim.overview())));
    g.bench_function("changed_tenants", |b| {
        b.iter(|| black_box(sim.changed_tenants()))
    });
    // The drill-down's first page: the most affected tenant's mailboxes in
    // reindex order, 100 rows, each with its place and ETA.
    let most = sim
        .tenants()
        .into_iter()
        .max_by_key(|t| t.affected())
        .expect("tenants");
    let page = MailboxQuery {
        tenant_id: most.id.to_string(),
        sort_by_eta: true,
        limit: 100,
        ..Default::default()
    };
    g.bench_function("mailbox_page_100", |b| {
        b.iter(|| black_box(sim.mailboxes(&page).expect("page")))
    });
    g.bench_function("advance_60s", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if sim.advances() >= DEFAULT_MAX_TICKS {
                    // Untimed: back to the start of the active phase.
                    sim = Simulator::new(SimConfig::default()).expect("default config");
                    for _ in 0..WARMUP_TICKS {
                        sim.advance(STEP);
                    }
                }
                let t = Instant::now();
                sim.advance(black_box(STEP));
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
}

fn five_million(c: &mut Criterion) {
    let before = proc_status_kb("VmRSS:");
    let mut sim = build(100_000, 5_000_000);
    let hwm = proc_status_kb("VmHWM:");
    let rss = proc_status_kb("VmRSS:");
    eprintln!(
        "[simulator] RSS before building the 5M simulator: {}; after: VmRSS {}, peak VmHWM {}",
        mb(before),
        mb(rss),
        mb(hwm)
    );
    if let (Some(b), Some(h)) = (before, hwm) {
        eprintln!(
            "[simulator] peak growth while building: {:.1} MB = {:.1} MB per million mailboxes",
            (h - b) as f64 / 1024.0,
            (h - b) as f64 / 1024.0 / 5.0
        );
    }
    warm_up(&mut sim, "5M");
    eprintln!(
        "[simulator] after the 5M warm-up: VmRSS {}, peak VmHWM {}",
        mb(proc_status_kb("VmRSS:")),
        mb(proc_status_kb("VmHWM:"))
    );

    let mut g = c.benchmark_group("simulator_100k_tenants_5m_mailboxes");
    let after_queries = |what: &str| {
        eprintln!(
            "[simulator] after {what}: VmRSS {}, peak VmHWM {}",
            mb(proc_status_kb("VmRSS:")),
            mb(proc_status_kb("VmHWM:"))
        )
    };
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    // The queries read the state left by the last advance: measured right
    // after the warm-up, a fixed point (5 h, mid-scan) of the incident.
    eprintln!(
        "[simulator] 5M simulator at {} ticks ({:.1} simulated hours, queries measured here); \
         last advance changed {} tenant rows",
        sim.advances(),
        sim.advances() as f64 * STEP / 3600.0,
        sim.changed_tenants().len()
    );
    g.bench_function("overview", |b| b.iter(|| black_box(sim.overview())));
    after_queries("the 5M overview bench");
    g.bench_function("changed_tenants", |b| {
        b.iter(|| black_box(sim.changed_tenants()))
    });
    after_queries("the 5M changed_tenants bench");
    let from = sim.advances();
    g.bench_function("advance_60s", |b| b.iter(|| sim.advance(black_box(STEP))));
    eprintln!(
        "[simulator] after the 5M advance bench: VmRSS {}, peak VmHWM {}",
        mb(proc_status_kb("VmRSS:")),
        mb(proc_status_kb("VmHWM:"))
    );
    eprintln!(
        "[simulator] 5M advance_60s measured over ticks {from}..{} ({:.1} h to {:.1} h)",
        sim.advances(),
        from as f64 * STEP / 3600.0,
        sim.advances() as f64 * STEP / 3600.0
    );

    // The whole tick as the gateway runs it: advance, overview,
    // changed_tenants and the conversion to the wire type, under the lock.
    let hub = Hub::new(Box::new(sim), STEP, 60.0);
    g.bench_function("hub_tick", |b| b.iter(|| black_box(hub.tick())));
    g.finish();

    // Untimed by criterion: tick on to just past the second fault (26 h),
    // whose tick walks every mailbox of cluster A once.
    let from = hub.view().source().advances();
    let mut ticks = Vec::new();
    while hub.view().source().advances() < SECOND_FAULT_TICK + 2 {
        let t = Instant::now();
        hub.tick();
        ticks.push((hub.view().source().advances(), t.elapsed()));
    }
    let fault = ticks
        .iter()
        .find(|(n, _)| *n == SECOND_FAULT_TICK)
        .map(|(_, d)| *d);
    let mut sorted: Vec<Duration> = ticks.iter().map(|(_, d)| *d).collect();
    sorted.sort();
    if sorted.is_empty() {
        eprintln!("[simulator] 5M simulator already past the second fault at tick {from}");
        return;
    }
    eprintln!(
        "[simulator] 5M hub ticks {from}..{} ({:.1} h to {:.1} h): p50 {:?}, p90 {:?}, max {:?}; \
         the second-fault tick ({SECOND_FAULT_TICK}) took {fault:?}",
        from + ticks.len() as u64,
        from as f64 * STEP / 3600.0,
        (from + ticks.len() as u64) as f64 * STEP / 3600.0,
        sorted[sorted.len() / 2],
        sorted[sorted.len() * 9 / 10],
        sorted[sorted.len() - 1]
    );
    eprintln!(
        "[simulator] after the 5M hub ticks: VmRSS {}, peak VmHWM {}",
        mb(proc_status_kb("VmRSS:")),
        mb(proc_status_kb("VmHWM:"))
    );
}

criterion_group!(benches, five_million, default_scale);
criterion_main!(benches);
