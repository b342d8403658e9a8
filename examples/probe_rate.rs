//! How fast the damage probe (`sources::probe`) sweeps a real Dovecot 2.3:
//! starts a private Dovecot (the test fixture of `tests/backend_dovecot.rs`,
//! 127.0.0.1 only, files under the temp dir), gives it N users whose mail
//! an MTA wrote straight into their Maildirs, then sweeps every mailbox at
//! concurrency 1 and 4, status-only and with the resync, and prints
//! mailboxes per second. Needs dovecot-core and root (or the mail owner).
//!
//!     cargo run --example probe_rate -- [MAILBOXES [MESSAGES [FOLDERS]]]
//!
//! Defaults: 1000 mailboxes of 20 messages in INBOX and no other folder.
//! FOLDERS extra folders of 5 messages each are created with doveadm
//! (slow to seed: a few hundred per second).

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

#[path = "common/cli.rs"]
mod cli;
#[path = "../tests/fixtures/backends/dovecot.rs"]
mod dovecot_fixture;
#[path = "../tests/fixtures/ports.rs"]
mod ports;

use cli::arg;
use std::time::Instant;

use dovecot_fixture::Dovecot;
use futures::StreamExt;
use warroom::sources::dovecot::Doveadm;
use warroom::sources::probe::{Depth, ProbeResult, probe_to};

/// Probes every user once at `concurrency`; answers (seconds, how many
/// were not healthy).
async fn sweep(d: &Doveadm, users: &[String], depth: Depth, concurrency: usize) -> (f64, usize) {
    let started = Instant::now();
    let results: Vec<ProbeResult> = futures::stream::iter(users)
        .map(|u| probe_to(d, u, None, depth))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    let odd = results
        .iter()
        .filter(|r| !matches!(r, ProbeResult::Healthy(_)))
        .count();
    (secs, odd)
}

fn main() -> Result<(), String> {
    let mailboxes = arg(1, 1000)?;
    let messages = arg(2, 20)?;
    let folders = arg(3, 0)?;
    let dc = Dovecot::new("probe-rate");
    dc.start();
    let users: Vec<String> = (1..=mailboxes)
        .map(|i| format!("u{i:06}@bench.test"))
        .collect();
    let t = Instant::now();
    dc.add_users(users.iter().map(String::as_str));
    for u in &users {
        dc.deliver_directly(u, messages);
        for f in 1..=folders {
            dc.seed_folder(u, &format!("Folder{f}"), 5);
        }
    }
    println!(
        "{mailboxes} mailboxes, {messages} messages in INBOX, {folders} other folders \
         of 5 messages each; seeded in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    println!("dovecot {}", dovecot_fixture::version()?);

    let rt = cli::runtime()?;
    rt.block_on(async {
        let d = dc.client();
        let report = |what: &str, (secs, odd): (f64, usize)| {
            let rate = mailboxes as f64 / secs;
            println!(
                "{what:<44} {rate:>7.1} mailboxes/s  {:>6.1} ms each  \
                 10k: {:>5.1} min  100k: {:>5.1} h  1M: {:>5.1} h  (not healthy: {odd})",
                1000.0 / rate,
                1e4 / rate / 60.0,
                1e5 / rate / 3600.0,
                1e6 / rate / 3600.0,
            );
        };
        report(
            "first sweep (Dovecot indexes), rescan, c=4",
            sweep(&d, &users, Depth::Rescan, 4).await,
        );
        for depth in [Depth::Status, Depth::Rescan] {
            for c in [1, 4] {
                report(
                    &format!("{depth:?}, concurrency {c}"),
                    sweep(&d, &users, depth, c).await,
                );
            }
        }
    });
    Ok(())
}
