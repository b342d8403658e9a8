//! Prefix lookups as the gRPC load sends them (scripts/lookup-load.py:
//! `local@half-a-domain` and a cut inside the local part, in turn) on the
//! 100,000-tenant / 5,000,000-mailbox simulator, in process, for profiles
//! and instruction counts: criterion cannot isolate the queries from the
//! minute it takes to build the simulator.
//!
//!     cargo run --release --example lookup_profile            # times by form
//!     valgrind --tool=callgrind --collect-atstart=no \
//!         --toggle-collect='*run_queries*' \
//!         target/release/examples/lookup_profile              # instructions
//!
//! `ROUNDS` (default 3) rounds over `QUERIES` (default 600) queries (with
//! `FORM=0` or `FORM=1` only the first or the second form); it
//! prints the mean time per query of each form, and how many answers and
//! hits in all (the same figures before and after a change that must not
//! change what lookups answer).

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

use std::hint::black_box;
use std::time::{Duration, Instant};

use warroom::domain::MailboxState;
use warroom::sources::simulator::{SimConfig, Simulator};
use warroom::sources::{LookupHit, MailboxQuery, Source};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The load script's prefix queries, drawn the same way from real addresses.
fn queries(sim: &Simulator, n: usize) -> Vec<String> {
    let tenants = sim.tenants();
    let mut x = 2008u64;
    let mut next = |below: usize| {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % below.max(1) as u64) as usize
    };
    (0..n)
        .map(|i| {
            let t = &tenants[next(tenants.len())];
            let q = MailboxQuery {
                tenant_id: t.id.to_string(),
                states: MailboxState::ALL.to_vec(),
                sort_by_eta: false,
                offset: next(t.mailboxes as usize),
                limit: 1,
            };
            let address = sim.mailboxes(&q).unwrap().rows[0].address.clone();
            let (local, domain) = address.split_once('@').unwrap();
            if i % 2 == 0 {
                format!("{local}@{}", &domain[..(domain.len() / 2).max(1)])
            } else {
                address[..3 + next(local.len().saturating_sub(2))].to_string()
            }
        })
        .collect()
}

#[inline(never)]
fn run_queries(sim: &Simulator, qs: &[String], rounds: usize) -> (usize, u64) {
    let (mut hits, mut total) = (0, 0);
    for _ in 0..rounds {
        for q in qs {
            let a = black_box(sim.lookup(q, 20));
            hits += a.matches.len();
            total += a.total as u64;
        }
    }
    (hits, total)
}

fn main() -> Result<(), String> {
    let t0 = Instant::now();
    let sim = Simulator::new(SimConfig {
        tenants: 100_000,
        mailboxes: 5_000_000,
        ..SimConfig::default()
    })?;
    let mut qs = queries(&sim, env("QUERIES", 600));
    // FORM=0 or 1: only `local@half-a-domain` or only local-part cuts.
    if let Some(form) = std::env::var("FORM")
        .ok()
        .and_then(|f| f.parse::<usize>().ok())
    {
        qs = qs.into_iter().skip(form).step_by(2).collect();
    }
    eprintln!("built and sampled in {:?}", t0.elapsed());
    if let Some(s) = warroom::sources::simulator::index::last_build_stats() {
        println!(
            "lookup index: {} bytes of heap, built in {:?} ({} domains)",
            s.heap_bytes, s.build_time, s.domains
        );
    }
    let rounds = env("ROUNDS", 3);
    let mut by_form = [Duration::ZERO; 2];
    for _ in 0..rounds {
        for (i, q) in qs.iter().enumerate() {
            let t = Instant::now();
            black_box(sim.lookup(q, 20));
            by_form[i % 2] += t.elapsed();
        }
    }
    let per = |d: Duration| d / (rounds * qs.len() / 2).max(1) as u32;
    println!(
        "mean per query: local@half-a-domain {:?}, local-part cut {:?}",
        per(by_form[0]),
        per(by_form[1])
    );
    let (hits, total) = run_queries(&sim, &qs, 1);
    // A fingerprint of every answer: the same before and after a change
    // that must not change them.
    let (mut sum, mut lower) = (0u64, 0);
    for q in &qs {
        let a = sim.lookup(q, 20);
        lower += a.total_is_lower_bound as usize;
        sum = sum.wrapping_mul(31).wrapping_add(a.total as u64);
        sum = sum
            .wrapping_mul(31)
            .wrapping_add(a.total_is_lower_bound as u64);
        for m in &a.matches {
            let text = match &m.hit {
                LookupHit::Mailbox(r) => r.address.clone(),
                LookupHit::Domain { domain, .. } => domain.clone(),
                LookupHit::Tenant(t) => t.id.to_string(),
            };
            for b in text.bytes() {
                sum = sum.wrapping_mul(31).wrapping_add(b as u64);
            }
        }
    }
    println!(
        "{} queries: {hits} answers, totals {total} ({lower} lower bounds), fingerprint {sum:016x}",
        qs.len()
    );
    Ok(())
}
