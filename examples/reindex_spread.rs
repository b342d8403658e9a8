//! How steady a real Dovecot 2.3 reindex runs: the spread of its speed from
//! one time window to the next, the figure the drill scenarios' reindex
//! `speed_spread` stands for (docs/scenarios.md). Starts a private Dovecot
//! (the test fixture of `tests/backend_dovecot.rs`, 127.0.0.1 only, files
//! under the temp dir), gives it MAILBOXES users of MESSAGES messages each,
//! then for SECONDS keeps reindexing them in batches: each batch loses its
//! uidlist and index files (the damage the drills simulate) and is probed
//! with the resync (`sources::probe`, concurrency 4), which rebuilds them.
//! Prints, for windows of 5, 15 and 60 seconds, the standard deviation of
//! the log of the messages reindexed per second, and the correlation of one
//! window's with the next. Needs dovecot-core and root (or the mail owner).
//!
//!     cargo run --release --example reindex_spread -- [SECONDS [MAILBOXES [MESSAGES]]]
//!
//! Defaults: 600 seconds, 400 mailboxes of 200 messages. The machine is
//! whatever it is while this runs (a shared host's neighbours included):
//! that is the point, and also why two runs differ.

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
use warroom::sources::probe::{Depth, ProbeResult, probe_to};

/// (standard deviation of ln(rate), lag-1 correlation of ln(rate), windows)
/// over windows of `width` seconds, from (end second, messages) batches.
fn spread(batches: &[(f64, u64)], width: f64) -> (f64, f64, usize) {
    let mut windows: Vec<(f64, u64)> = Vec::new();
    for &(end, messages) in batches {
        let w = (end / width).floor();
        match windows.last_mut() {
            Some((last, m)) if *last == w => *m += messages,
            _ => windows.push((w, messages)),
        }
    }
    // The last window is cut short by the end of the run.
    windows.pop();
    let logs: Vec<f64> = windows
        .iter()
        .filter(|(_, m)| *m > 0)
        .map(|(_, m)| (*m as f64 / width).ln())
        .collect();
    let n = logs.len();
    if n < 3 {
        return (0.0, 0.0, n);
    }
    let mean = logs.iter().sum::<f64>() / n as f64;
    let var = logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let cov = logs
        .windows(2)
        .map(|w| (w[0] - mean) * (w[1] - mean))
        .sum::<f64>()
        / (n - 1) as f64;
    let rho = if var > 0.0 { cov / var } else { 0.0 };
    (var.sqrt(), rho, n)
}

fn main() -> Result<(), String> {
    let seconds = arg(1, 600)? as f64;
    let mailboxes = arg(2, 400)?;
    let messages = arg(3, 200)?;
    let dc = Dovecot::new("reindex-spread");
    dc.start();
    let users: Vec<String> = (1..=mailboxes)
        .map(|i| format!("r{i:05}@spread.test"))
        .collect();
    dc.add_users(users.iter().map(String::as_str));
    for u in &users {
        dc.deliver_directly(u, messages);
    }
    println!(
        "dovecot {}; {mailboxes} mailboxes of {messages} messages",
        dovecot_fixture::version()?
    );
    let rt = cli::runtime()?;
    let batch = 10;
    let batches = rt.block_on(async {
        let d = dc.client();
        // The first pass builds the indexes the later batches lose.
        futures::stream::iter(&users)
            .map(|u| probe_to(&d, u, None, Depth::Rescan))
            .buffer_unordered(4)
            .collect::<Vec<ProbeResult>>()
            .await;
        let started = Instant::now();
        let mut batches = Vec::new();
        let mut next = 0;
        while started.elapsed().as_secs_f64() < seconds {
            let chunk: Vec<&String> = users.iter().cycle().skip(next).take(batch).collect();
            next = (next + batch) % users.len();
            for u in &chunk {
                dc.lose_uidlist_in(u, "INBOX");
            }
            futures::stream::iter(chunk)
                .map(|u| probe_to(&d, u, None, Depth::Rescan))
                .buffer_unordered(4)
                .collect::<Vec<ProbeResult>>()
                .await;
            batches.push((started.elapsed().as_secs_f64(), batch as u64 * messages));
        }
        batches
    });
    let total: u64 = batches.iter().map(|b| b.1).sum();
    println!(
        "{} batches of {batch} mailboxes in {seconds:.0} s: {:.0} messages/s on average",
        batches.len(),
        total as f64 / seconds
    );
    for width in [5.0, 15.0, 60.0] {
        match spread(&batches, width) {
            (sd, rho, n) if n >= 3 => println!(
                "windows of {width:>3.0} s: sd of ln(rate) {sd:.3}, lag-1 correlation {rho:+.2} ({n} windows)"
            ),
            (_, _, n) => {
                println!("windows of {width:>3.0} s: {n} whole windows, too few (run longer)")
            }
        }
    }
    Ok(())
}
