//! Start to first complete frame in demo mode, in process: from nothing to
//!
//! 1. the simulator built at the default scale (2,000 tenants / 50,000
//!    mailboxes) and ticked once behind a `Hub` (as `warroom` does before
//!    serving, so the first snapshot already has rates and ETAs),
//! 2. the gateway serving on 127.0.0.1:0,
//! 3. a `GatewayClient` and the console's Watch task (`watch_forever`, with
//!    its real reconnect loop), up to the first snapshot received,
//! 4. that snapshot applied to an `App`, sorted, and rendered once to a
//!    120x40 `TestBackend`.
//!
//! Stopping the gateway afterwards is not timed. The tokio runtime (two
//! workers, as `main` builds it) is created once, outside the measurement;
//! `demo_start_to_first_frame_including_runtime` also times building it.
//!
//! Run: `cargo bench --bench startup`. One instrumented start is printed on
//! stderr, step by step.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;
use warroom::client::{self, ClientEvent, GatewayClient};
use warroom::console::app::{App, Conn};
use warroom::console::theme::Theme;
use warroom::console::ui;
use warroom::gateway::{Gateway, Hub};
use warroom::sources::simulator::{SimConfig, Simulator};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Time since `t0` at each step of one start.
#[derive(Debug, Default)]
struct Steps {
    simulator_built: Duration,
    first_tick: Duration,
    serving: Duration,
    snapshot_received: Duration,
    applied_and_sorted: Duration,
    frame_rendered: Duration,
}

/// One demo start up to the first complete frame; returns the running
/// gateway (to be stopped, untimed) and the step times.
async fn start_to_first_frame() -> (Gateway, Steps) {
    let t0 = Instant::now();
    let mut steps = Steps::default();
    // `main` builds the simulator on a blocking thread too.
    let sim = tokio::task::spawn_blocking(|| Simulator::new(SimConfig::default()))
        .await
        .expect("join")
        .expect("default config is valid");
    steps.simulator_built = t0.elapsed();
    let hub = Hub::new(Box::new(sim), 60.0, 60.0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    hub.tick();
    steps.first_tick = t0.elapsed();
    let gw = Gateway::serve(listener, hub, None)
        .await
        .expect("gateway serves");
    steps.serving = t0.elapsed();

    let gc = GatewayClient::new(&gw.url()).expect("valid url");
    let (tx, mut rx) = mpsc::channel::<ClientEvent>(64);
    let watch = tokio::spawn(client::watch_forever(gc, tx, Default::default()));
    let mut app = App::new(gw.url(), Theme::mono());
    app.simulated_hint = true;
    loop {
        let ev = rx.recv().await.expect("watch task alive");
        let is_update = matches!(ev, ClientEvent::Update(_));
        if is_update {
            steps.snapshot_received = t0.elapsed();
        }
        let _ = app.on_client(ev); // the first frame only
        if is_update {
            break;
        }
    }
    assert_eq!(app.conn, Conn::Live, "the first update is a snapshot");
    app.prepare();
    steps.applied_and_sorted = t0.elapsed();
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("test backend");
    terminal.draw(|f| ui::render(f, &app)).expect("first frame");
    steps.frame_rendered = t0.elapsed();

    // Untimed from here on.
    watch.abort();
    let _ = watch.await;
    let text = warroom::console::snapshot::buffer_text(terminal.backend().buffer());
    assert!(text.contains("Tenants 2,000"), "a complete frame");
    (gw, steps)
}

fn startup(c: &mut Criterion) {
    let rt = runtime();

    // One instrumented start, for where the time goes.
    let (gw, steps) = rt.block_on(start_to_first_frame());
    let hub = gw.hub.clone();
    let t = Instant::now();
    rt.block_on(gw.stop());
    eprintln!("[startup] one start, cumulative: {steps:#?}");
    eprintln!("[startup] gateway stop took {:?} (untimed)", t.elapsed());
    // Is the hub (and its simulator) released once the gateway is stopped
    // and the console's Watch has gone?
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(200)).await });
    eprintln!(
        "[startup] 200 ms after stop, the hub still has {} owners besides this one",
        Arc::strong_count(&hub) - 1
    );
    drop(hub);
    let rss_before = vm_rss_kb();

    let mut g = c.benchmark_group("startup");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(5));
    g.bench_function("demo_start_to_first_frame_120x40", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (gw, steps) = rt.block_on(start_to_first_frame());
                total += steps.frame_rendered;
                rt.block_on(gw.stop());
            }
            total
        })
    });
    g.bench_function("demo_start_to_first_frame_including_runtime", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t0 = Instant::now();
                let rt = runtime();
                let (gw, _) = rt.block_on(start_to_first_frame());
                total += t0.elapsed();
                rt.block_on(gw.stop());
                drop(rt);
            }
            total
        })
    });
    g.finish();
    eprintln!(
        "[startup] VmRSS before the measured starts: {} kB, after: {} kB",
        rss_before.unwrap_or(0),
        vm_rss_kb().unwrap_or(0)
    );
}

fn vm_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

criterion_group!(benches, startup);
criterion_main!(benches);
