//! Cost of one priority decision through the hub (`Hub::set_priority`):
//! validate, an SQLite transaction with the version check and the audit
//! event (synchronous = FULL, on a file in the temp dir), reorder the
//! source, recompute every tenant's place and ETA, build the update every
//! watcher receives. At the default demo scale and at 100,000 tenants /
//! 5,000,000 mailboxes, 5 simulated hours in (scan and reindex running).
//!
//! Run: `cargo bench --bench priority`.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

use std::hint::black_box;

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use warroom::domain::Priority;
use warroom::gateway::Hub;
use warroom::gateway::hub::PriorityRequest;
use warroom::sources::Source;
use warroom::sources::simulator::{SimConfig, Simulator};

fn hub(tenants: u32, mailboxes: u64, tag: &str) -> std::sync::Arc<Hub> {
    let mut sim = Simulator::new(SimConfig {
        tenants,
        mailboxes,
        ..SimConfig::default()
    })
    .expect("valid simulator config");
    for _ in 0..5 * 60 {
        sim.advance(60.0);
    }
    let dir = std::env::temp_dir().join(format!("wr-bench-prio-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = warroom::store::open(&dir.join("state.sqlite")).expect("state file");
    Hub::with_store(Box::new(sim), store, 60.0, 60.0).expect("hub")
}

fn bench(c: &mut Criterion) {
    for (label, tenants, mailboxes) in [
        ("2k_tenants_50k", 2_000, 50_000),
        ("100k_tenants_5M", 100_000, 5_000_000),
    ] {
        let hub = hub(tenants, mailboxes, label);
        let mut version = 0u64;
        let mut g = c.benchmark_group("set_priority");
        g.sampling_mode(SamplingMode::Flat).sample_size(20);
        g.bench_function(label, |b| {
            b.iter(|| {
                let p = if version.is_multiple_of(2) {
                    Priority::P0
                } else {
                    Priority::P3
                };
                let (d, row) = hub
                    .set_priority(
                        PriorityRequest {
                            tenant_id: "t00000".into(),
                            priority: p,
                            rank: 0,
                            reason: "bench".into(),
                            expected_version: version,
                        },
                        "bench",
                    )
                    .expect("accepted");
                version = d.version;
                black_box(row);
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
