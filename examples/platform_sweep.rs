//! How long the platform's damage sweep takes to find damage on a real
//! Dovecot 2.3, end to end through `PlatformSource` (the gateway's own
//! code): a private Dovecot (the test fixture: 127.0.0.1 only, files under
//! the temp dir) with MAILBOXES users in TENANTS tenants; K mailboxes with a
//! corrupt transaction log before the gateway starts, K stale indexes and
//! K lost uidlists after the first pass (both need an index Dovecot built,
//! and a lost uidlist is seen against an earlier observation). Prints when each kind was all found,
//! the pass duration and the sweep rate. Needs dovecot-core and root.
//!
//!     cargo run --release --example platform_sweep -- \
//!         [MAILBOXES [TENANTS [K [PROBES_PER_POLL [POLL_MS]]]]] [--serve PORT]
//!
//! Defaults: 600 mailboxes, 6 tenants, K = 5, 50 probes per 5,000 ms (the
//! gateway's defaults: 10 probes/s at most). With `--serve PORT` the
//! gateway then serves the result on 127.0.0.1:PORT until interrupted, for
//! a look with `warroom --gateway http://127.0.0.1:PORT`.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

#[path = "common/cli.rs"]
mod cli;
#[path = "../tests/fixtures/backends/dovecot.rs"]
mod dovecot_fixture;
#[path = "../tests/fixtures/ports.rs"]
mod ports;

use cli::arg;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dovecot_fixture::Dovecot;
use warroom::api::pb;
use warroom::gateway::{Gateway, Hub};
use warroom::sources::platform::{DovecotSpec, PlatformConfig, PlatformSource, TenantSpec};

fn kinds_found(u: &pb::WatchUpdate) -> Vec<(String, u64)> {
    u.clusters
        .first()
        .and_then(|c| c.sweep.as_ref())
        .map(|s| s.kinds.iter().map(|k| (k.kind.clone(), k.found)).collect())
        .unwrap_or_default()
}

fn found(u: &pb::WatchUpdate, kind: &str) -> u64 {
    kinds_found(u)
        .into_iter()
        .find(|(k, _)| k == kind)
        .map_or(0, |(_, n)| n)
}

fn sweep(u: &pb::WatchUpdate) -> pb::Sweep {
    u.clusters
        .first()
        .and_then(|c| c.sweep.clone())
        .unwrap_or_default()
}

/// Ticks the hub every 200 ms until `done`; answers the seconds since
/// `started`.
async fn until(
    hub: &Hub,
    started: Instant,
    what: &str,
    done: impl Fn(&pb::WatchUpdate) -> bool,
) -> f64 {
    let mut shown = Instant::now();
    loop {
        hub.tick();
        let snap = hub.snapshot();
        if shown.elapsed() > Duration::from_secs(10) {
            let s = sweep(&snap);
            eprintln!(
                "  … waiting for {what}: pass {}, swept {}/{}, found {:?}",
                s.pass,
                s.swept,
                s.mailboxes,
                kinds_found(&snap)
            );
            shown = Instant::now();
        }
        if done(&snap) {
            let secs = started.elapsed().as_secs_f64();
            let s = sweep(&snap);
            println!(
                "{what}: {secs:.1} s (pass {}, swept {}/{}, {:.0} probes/min, found {:?})",
                s.pass,
                s.swept,
                s.mailboxes,
                s.rate_per_min.unwrap_or(0.0),
                kinds_found(&snap)
            );
            return secs;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    let mailboxes = arg(1, 600)?;
    let tenants = arg(2, 6)?.max(1);
    let k = arg(3, 5)?;
    let per_poll = arg(4, 50)?.max(1) as usize;
    let poll_ms = arg(5, 5000)?.max(100);
    let serve: Option<u16> = std::env::args()
        .skip_while(|a| a != "--serve")
        .nth(1)
        .map(|p| p.parse().map_err(|_| format!("--serve {p:?}: not a port")))
        .transpose()?;
    if 3 * k > mailboxes {
        return Err(format!("3 × K = {} damaged > {mailboxes} mailboxes", 3 * k));
    }

    let dc = Dovecot::new("platform-sweep");
    dc.start();
    let user = |i: u64| format!("u{i:05}@t{}.test", i % tenants);
    let users: Vec<String> = (0..mailboxes).map(user).collect();
    let t = Instant::now();
    dc.add_users(users.iter().map(String::as_str));
    // Damaged ones spread over the tenants, from the end. Those planted
    // after pass 1 are kept out of tenant t0, which the next pass starts
    // with: planting into a mailbox while it is probed races Dovecot's own
    // sync, which may then see the new files itself (no stale index left).
    let spread = |skip: usize, avoid_t0: bool| -> Vec<&String> {
        users
            .iter()
            .enumerate()
            .rev()
            .skip(skip)
            .step_by(3)
            .filter(|(i, _)| !avoid_t0 || tenants == 1 || !(*i as u64).is_multiple_of(tenants))
            .take(k as usize)
            .map(|(_, u)| u)
            .collect()
    };
    let corrupt = spread(0, false);
    let stale = spread(1, true);
    let lost = spread(2, true);
    for u in &users {
        if corrupt.contains(&u) {
            // A log only, no dovecot.index yet: what a garbled record needs.
            dc.seed(u, 3);
        } else {
            dc.deliver_directly(u, 5);
        }
    }
    println!(
        "{mailboxes} mailboxes in {tenants} tenants seeded in {:.1} s; budget {per_poll} probes per {poll_ms} ms",
        t.elapsed().as_secs_f64()
    );
    for u in &corrupt {
        dc.corrupt_log(u);
    }

    let specs: Vec<TenantSpec> = (0..tenants)
        .map(|j| TenantSpec {
            id: format!("t{j}"),
            name: format!("Tenant {j}"),
            domains: vec![format!("t{j}.test")],
            contacts: Vec::new(),
        })
        .collect();
    let source = PlatformSource::start(
        PlatformConfig {
            name: "Sweep bench".into(),
            tenants: specs,
            dovecot: Some(DovecotSpec {
                client: dc.client(),
                probes_per_poll: per_poll,
                limits: Default::default(),
            }),
            postqueue: None,
            postfix_status: None,
            prometheus: None,
            load_query: None,
            poll: Duration::from_millis(poll_ms),
            store: None,
        },
        &tokio::runtime::Handle::current(),
    )
    .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let hub = Hub::new(Box::new(source), 1.0, 1.0);
    let k_found = |kind: &'static str| move |u: &pb::WatchUpdate| found(u, kind) >= k;
    until(
        &hub,
        started,
        "all corrupt logs found, since the start",
        k_found("corrupt_log"),
    )
    .await;
    let pass = until(&hub, started, "first pass complete, since the start", |u| {
        sweep(u).pass >= 2
    })
    .await;
    println!(
        "first pass: {mailboxes} mailboxes in {pass:.1} s = {:.1} mailboxes/s",
        mailboxes as f64 / pass
    );
    let planted = Instant::now();
    // Both need an index Dovecot already built: planted after pass 1.
    for u in &stale {
        dc.stale_index(u);
    }
    for u in &lost {
        dc.lose_uidlist(u);
    }
    until(
        &hub,
        planted,
        "all stale indexes found (pass 2, since planted)",
        k_found("stale_index"),
    )
    .await;
    until(
        &hub,
        planted,
        "all lost uidlists found (pass 2, since planted)",
        k_found("lost_uidlist"),
    )
    .await;

    if let Some(port) = serve {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| format!("127.0.0.1:{port}: {e}"))?;
        let hub: Arc<Hub> = hub;
        let gw = Gateway::serve(listener, hub, Some(Duration::from_secs(1)))
            .await
            .map_err(|e| e.to_string())?;
        println!("serving {}: warroom --gateway {}", gw.url(), gw.url());
        let _ = tokio::signal::ctrl_c().await;
        gw.stop().await;
    }
    Ok(())
}
