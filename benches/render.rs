//! Console frame render with 100,000 tenants in the model.
//!
//! The model is filled from a real `WatchUpdate` snapshot: a simulator with
//! 100,000 tenants / 1,000,000 mailboxes advanced 5 simulated hours, put
//! behind a `Hub`, ticked once and snapshotted (version 1, as the first
//! update a console receives). Benched:
//!
//! - `render/draw_200x50_100k_tenants`, `render/draw_120x40_100k_tenants`:
//!   one `terminal.draw(ui::render)` on a `TestBackend`, with the table
//!   already sorted (what happens on every clock second or key press when no
//!   data changed);
//! - `render_prepare/resort_100k`: `App::prepare` when the order must be
//!   rebuilt (filter + sort of all 100k rows), forced by flipping the sort
//!   direction;
//! - `render_prepare/apply_delta_and_resort_100k`: applying one real tick's
//!   delta (the rows that changed in one `Hub::tick`) and re-sorting, as the
//!   console does once per received update.
//!
//! Run: `cargo bench --bench render`.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run
#![allow(unused_must_use)] // it drives the console by hand; the commands it does not check are not the point

use std::cell::Cell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use warroom::api::pb;
use warroom::client::{ClientEvent, Update};
use warroom::console::app::App;
use warroom::console::theme::Theme;
use warroom::console::ui;
use warroom::gateway::Hub;
use warroom::sources::Source;
use warroom::sources::simulator::{SimConfig, Simulator};

const TENANTS: u32 = 100_000;

/// The first snapshot a console receives, and the delta of the next tick.
fn updates() -> (pb::WatchUpdate, pb::WatchUpdate) {
    let t0 = Instant::now();
    let mut sim = Simulator::new(SimConfig {
        tenants: TENANTS,
        mailboxes: 1_000_000,
        ..SimConfig::default()
    })
    .expect("valid simulator config");
    for _ in 0..5 * 60 {
        sim.advance(60.0);
    }
    let hub = Hub::new(Box::new(sim), 60.0, 60.0);
    hub.tick();
    let snapshot = hub.snapshot();
    assert!(snapshot.snapshot);
    assert_eq!(snapshot.version, 1);
    assert_eq!(snapshot.tenants.len(), TENANTS as usize);
    let mut rx = hub.subscribe();
    hub.tick();
    let delta = rx
        .try_recv()
        .expect("a delta after the tick")
        .decode()
        .expect("the hub's encoding decodes");
    eprintln!(
        "[render] snapshot of {} tenants and a delta of {} tenants built in {:?}",
        snapshot.tenants.len(),
        delta.tenants.len(),
        t0.elapsed()
    );
    (snapshot, delta)
}

fn app_with(snapshot: &pb::WatchUpdate) -> App {
    let mut app = App::new("http://127.0.0.1:50051".into(), Theme::mono());
    app.on_client(ClientEvent::Update(Box::new(Update::from_pb(snapshot))));
    assert_eq!(app.model.version, 1);
    assert_eq!(app.model.tenant_count(), TENANTS as usize);
    // Freeze the header clock so every frame is the same.
    app.clock = app.model.overview.incident.now.unwrap_or(app.clock);
    app.prepare();
    app
}

fn bench_draw(c: &mut Criterion, snapshot: &pb::WatchUpdate, w: u16, h: u16) {
    let app = app_with(snapshot);
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    // First frame outside the measurement (it fills the whole diff).
    terminal.draw(|f| ui::render(f, &app)).expect("first frame");
    c.bench_function(&format!("render/draw_{w}x{h}_100k_tenants"), |b| {
        b.iter(|| {
            terminal.draw(|f| ui::render(f, &app)).expect("draw");
        })
    });
    // The frame must show the table, not the "too small" message.
    let text = warroom::console::snapshot::buffer_text(terminal.backend().buffer());
    assert!(
        text.contains("Tenants 100,000"),
        "the tenants table is shown"
    );
}

fn render(c: &mut Criterion) {
    let (snapshot, delta) = updates();
    bench_draw(c, &snapshot, 200, 50);
    bench_draw(c, &snapshot, 120, 40);

    // About 40-70 ms per iteration: fewer, flat samples.
    let mut g = c.benchmark_group("render_prepare");
    g.sample_size(30)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(6));
    let mut app = app_with(&snapshot);
    g.bench_function("resort_100k", |b| {
        b.iter(|| {
            app.reverse = !app.reverse;
            app.prepare();
            black_box(app.model.ordered_len())
        })
    });

    let mut app = app_with(&snapshot);
    let version = Cell::new(app.model.version);
    g.bench_function("apply_delta_and_resort_100k", |b| {
        b.iter_batched(
            || {
                let mut d = delta.clone();
                version.set(version.get() + 1);
                d.version = version.get();
                d
            },
            // Decoding is in the measure, as it was when the model decoded:
            // the client task now does it, off the UI loop.
            |d| {
                app.on_client(ClientEvent::Update(Box::new(Update::from_pb(&d))));
                app.prepare();
                black_box(app.model.ordered_len())
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
    // Every delta followed the one before: none was dropped as a gap.
    assert_eq!(app.model.version, version.get());
}

criterion_group!(benches, render);
criterion_main!(benches);
