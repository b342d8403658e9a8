//! Cost of the store's two writes that people wait for, on each store: one
//! priority decision (`record_priority`: the version check, the row and
//! its audit event in one transaction) and one publish (the update, 20
//! pending deliveries and the audit event in one transaction). SQLite: a file in
//! the temp dir, WAL, `synchronous = FULL`. PostgreSQL: the database at
//! `WARROOM_BENCH_POSTGRES` (skipped when unset), over loopback TCP.
//!
//! Run: `scripts/bench-store` (makes a throwaway PostgreSQL cluster, as
//! root), or `cargo bench --bench store` for SQLite alone.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

use std::hint::black_box;

use chrono::Utc;
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use warroom::domain::priority::PriorityDecision;
use warroom::domain::update::Update;
use warroom::domain::{IncidentState, Priority};
use warroom::store::{Location, Store};

fn stores() -> Vec<(&'static str, Box<dyn Store>)> {
    let dir = std::env::temp_dir().join(format!("wr-bench-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut out = vec![(
        "sqlite",
        warroom::store::open(&dir.join("state.sqlite")).unwrap(),
    )];
    if let Ok(url) = std::env::var("WARROOM_BENCH_POSTGRES") {
        out.push((
            "postgres",
            warroom::store::open_at(&Location::Postgres(url)).unwrap(),
        ));
    }
    out
}

fn bench(c: &mut Criterion) {
    for (label, mut store) in stores() {
        let mut g = c.benchmark_group("store");
        g.sampling_mode(SamplingMode::Flat).sample_size(30);
        let mut version = 0u64;
        g.bench_function(format!("{label}/record_priority"), |b| {
            b.iter(|| {
                let d = PriorityDecision {
                    tenant_id: "t00000".into(),
                    priority: if version.is_multiple_of(2) {
                        Priority::P0
                    } else {
                        Priority::P3
                    },
                    rank: 0,
                    version: 0,
                    set_by: "bench".into(),
                    set_at: Utc::now(),
                    reason: "bench".into(),
                };
                let (stored, _) = store.record_priority(version, &d, "bench").unwrap();
                version = stored.version;
                black_box(stored);
            })
        });
        let targets: Vec<(String, String)> = (0..20)
            .map(|i| ("email".to_string(), format!("t{i:05} noc@t{i}.example")))
            .collect();
        let mut n = 0u64;
        g.bench_function(format!("{label}/publish_20_deliveries"), |b| {
            b.iter(|| {
                n += 1;
                let u = Update {
                    id: String::new(),
                    seq: 0,
                    operation_id: format!("bench-{label}-{}-{n}", std::process::id()),
                    state: IncidentState::Identified,
                    title: "bench".into(),
                    body: "bench".into(),
                    components: vec![("imap".into(), "major_outage".into())],
                    next_update: None,
                    published_by: "bench".into(),
                    published_at: Utc::now(),
                    simulated: true,
                };
                black_box(store.publish(&u, &targets, "").unwrap());
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
