//! `Source::lookup` on the simulator at 100,000 tenants / 5,000,000
//! mailboxes, in process: exact addresses, prefixes and misspellings.
//!
//! Queries are drawn from real addresses, domains and tenant names
//! (deterministic sample). Besides criterion's timings it prints, per kind,
//! p50 / p99 / max over every query of the sample, throughput with one and
//! two threads, and for misspellings how often the intended mailbox, domain
//! or tenant is the first hit and within the first 20; plus peak RSS
//! (VmHWM) before and after building the simulator and its lookup index,
//! and the index's own heap size.
//!
//! Run: `cargo bench --bench lookup` (about 1-2 minutes, most of it
//! building the 5M simulator and sampling addresses).
//!
//! With `LOOKUP_GRPC=127.0.0.1:PORT` it is instead a load generator for a
//! running gateway, with the console's own client (tonic): for each kind in
//! `LOOKUP_KINDS` (exact,prefix,fuzzy) and each count in `LOOKUP_CLIENTS`
//! (1,4), that many clients, each a thread with its own connection and
//! runtime (like `pgbench -j`), call Lookup one query at a time for
//! `LOOKUP_SECONDS` (20), queries read from `LOOKUP_DIR/<kind>.tsv` (as
//! written by `scripts/lookup-load.py prepare`); one JSON line per run on
//! stdout. The kind `noop` calls the gateway's gRPC health check instead:
//! the per-call cost of the transport, with no lookup in it.
//! `scripts/bench-lookup` runs it.

#[path = "common/mod.rs"]
mod common;
use common::{mb, proc_status_kb};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group};
use warroom::domain::MailboxState;
use warroom::sources::simulator::index::last_build_stats;
use warroom::sources::simulator::{SimConfig, Simulator};
use warroom::sources::{LookupHit, MailboxQuery, Source};

const TENANTS: u32 = 100_000;
const MAILBOXES: u64 = 5_000_000;
/// What the gRPC Lookup asks for by default.
const LIMIT: usize = 20;
const SAMPLE: usize = 600;

/// Deterministic pseudo-random numbers (splitmix64).
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// What a query should find.
#[derive(Clone)]
enum Want {
    Mailbox(String),
    Domain(String),
    Tenant(String),
}

struct Query {
    text: String,
    want: Want,
}

fn hit_is(h: &LookupHit, w: &Want) -> bool {
    match (h, w) {
        (LookupHit::Mailbox(m), Want::Mailbox(a)) => m.address == *a,
        (LookupHit::Domain { domain, .. }, Want::Domain(d)) => domain == d,
        (LookupHit::Tenant(t), Want::Tenant(id)) => *t.id == **id,
        _ => false,
    }
}

/// One typo in the letters of `s` (never in its dots, dashes or `@`):
/// swap two neighbours, drop one, or replace one.
fn misspell(s: &str, r: &mut Mix) -> String {
    let b = s.as_bytes();
    let letters: Vec<usize> = (0..b.len().saturating_sub(1))
        .filter(|&i| b[i].is_ascii_lowercase() && b[i + 1].is_ascii_lowercase() && b[i] != b[i + 1])
        .collect();
    if letters.is_empty() {
        return s.to_string();
    }
    let i = letters[r.below(letters.len())];
    let mut v = b.to_vec();
    match r.below(3) {
        0 => v.swap(i, i + 1),
        1 => {
            v.remove(i);
        }
        _ => v[i] = if v[i] == b'x' { b'q' } else { b'x' },
    }
    String::from_utf8(v).expect("ascii")
}

struct Sample {
    exact: Vec<Query>,
    prefix: Vec<Query>,
    fuzzy: Vec<Query>,
}

fn sample(sim: &Simulator) -> Sample {
    let tenants = sim.tenants();
    let mut r = Mix(2008);
    let mut s = Sample {
        exact: Vec::new(),
        prefix: Vec::new(),
        fuzzy: Vec::new(),
    };
    for n in 0..SAMPLE {
        let t = &tenants[r.below(tenants.len())];
        let q = MailboxQuery {
            tenant_id: t.id.to_string(),
            states: MailboxState::ALL.to_vec(),
            sort_by_eta: false,
            offset: r.below(t.mailboxes as usize),
            limit: 1,
        };
        let page = sim.mailboxes(&q).expect("sampled tenant exists");
        let address = page.rows[0].address.clone();
        let (local, domain) = address.split_once('@').expect("an address");
        s.exact.push(Query {
            text: address.clone(),
            want: Want::Mailbox(address.clone()),
        });
        // Prefixes: cut the address after the `@`, inside the domain, or
        // inside the local part; a domain prefix; a tenant-name prefix.
        let (text, want) = match n % 4 {
            0 => (
                format!("{local}@{}", &domain[..(domain.len() / 2).max(1)]),
                Want::Mailbox(address.clone()),
            ),
            1 => (
                address[..r.below(local.len() - 2) + 3].to_string(),
                Want::Mailbox(address.clone()),
            ),
            2 => (
                domain[..(domain.len() * 2 / 3).max(1)].to_string(),
                Want::Domain(domain.to_string()),
            ),
            _ => (
                t.name.to_lowercase()[..(t.name.len() * 2 / 3).max(1)].to_string(),
                Want::Tenant(t.id.to_string()),
            ),
        };
        s.prefix.push(Query { text, want });
        // Misspellings: of the local part, of the domain, of both, of a
        // domain alone, of a tenant name.
        let (text, want) = match n % 5 {
            0 => (
                format!("{}@{domain}", misspell(local, &mut r)),
                Want::Mailbox(address.clone()),
            ),
            1 => (
                format!("{local}@{}", misspell(domain, &mut r)),
                Want::Mailbox(address.clone()),
            ),
            2 => (
                format!("{}@{}", misspell(local, &mut r), misspell(domain, &mut r)),
                Want::Mailbox(address.clone()),
            ),
            3 => (misspell(domain, &mut r), Want::Domain(domain.to_string())),
            _ => (
                misspell(&t.name.to_lowercase(), &mut r),
                Want::Tenant(t.id.to_string()),
            ),
        };
        s.fuzzy.push(Query { text, want });
    }
    s
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Every query of a kind once per round, timed one by one; then the same
/// with two threads for throughput; and how often the wanted hit came back.
fn report(sim: &Simulator, kind: &str, queries: &[Query]) {
    let mut times = Vec::new();
    let (mut first, mut top, mut results) = (0, 0, 0);
    for round in 0..3 {
        for q in queries {
            let t = Instant::now();
            let hits = sim.lookup(&q.text, LIMIT);
            times.push(t.elapsed());
            if round == 0 {
                if kind == "fuzzy" && !hits.first().is_some_and(|h| hit_is(h, &q.want)) {
                    let got = hits.first().map(|h| match h {
                        LookupHit::Mailbox(m) => m.address.clone(),
                        LookupHit::Domain { domain, .. } => domain.clone(),
                        LookupHit::Tenant(t) => t.name.to_string(),
                    });
                    eprintln!(
                        "[lookup] {kind:<6} miss: {:?} came first for {:?}",
                        got, q.text
                    );
                }
                results += hits.len();
                first += hits.first().is_some_and(|h| hit_is(h, &q.want)) as usize;
                top += hits.iter().any(|h| hit_is(h, &q.want)) as usize;
            }
        }
    }
    let mut slow: Vec<(Duration, &str)> = times[..queries.len()]
        .iter()
        .zip(queries)
        .map(|(t, q)| (*t, q.text.as_str()))
        .collect();
    slow.sort_by_key(|s| std::cmp::Reverse(s.0));
    for (t, q) in slow.iter().take(3) {
        eprintln!("[lookup] {kind:<6} slow: {q:?} took {t:?}");
    }
    times.sort();
    let per_thread = |threads: usize| {
        let t0 = Instant::now();
        let rounds = 3;
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for _ in 0..rounds {
                        for q in queries {
                            black_box(sim.lookup(&q.text, LIMIT));
                        }
                    }
                });
            }
        });
        (threads * rounds * queries.len()) as f64 / t0.elapsed().as_secs_f64()
    };
    let (one, two) = (per_thread(1), per_thread(2));
    let n = queries.len();
    eprintln!(
        "[lookup] {kind:<6} {n} queries x3: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}; \
         {one:.0} q/s on 1 thread, {two:.0} q/s on 2; {:.1} results per query; \
         wanted hit first {:.1}%, in the first {LIMIT} {:.1}%",
        percentile(&times, 0.5),
        percentile(&times, 0.9),
        percentile(&times, 0.99),
        times[times.len() - 1],
        results as f64 / n as f64,
        100.0 * first as f64 / n as f64,
        100.0 * top as f64 / n as f64,
    );
}

fn lookup(c: &mut Criterion) {
    let before = proc_status_kb("VmHWM:");
    let t0 = Instant::now();
    let sim = Simulator::new(SimConfig {
        tenants: TENANTS,
        mailboxes: MAILBOXES,
        ..SimConfig::default()
    })
    .expect("valid simulator config");
    let built = t0.elapsed();
    let after = proc_status_kb("VmHWM:");
    eprintln!(
        "[lookup] built {TENANTS} tenants / {MAILBOXES} mailboxes (simulator and lookup index) in {built:?}"
    );
    eprintln!(
        "[lookup] peak RSS (VmHWM) before building: {}, after: {}; RSS now {}",
        mb(before),
        mb(after),
        mb(proc_status_kb("VmRSS:"))
    );
    if let (Some(b), Some(a)) = (before, after) {
        eprintln!(
            "[lookup] peak growth while building: {:.1} MB = {:.2} MB per million mailboxes",
            (a - b) as f64 / 1024.0,
            (a - b) as f64 / 1024.0 / (MAILBOXES as f64 / 1e6)
        );
    }
    if let Some(s) = last_build_stats() {
        eprintln!(
            "[lookup] lookup index: {:.1} MB of heap ({:.2} MB per million mailboxes), \
             {} domains, {} tenant-name words, built in {:?}",
            s.heap_bytes as f64 / 1048576.0,
            s.heap_bytes as f64 / 1048576.0 / (s.mailboxes as f64 / 1e6),
            s.domains,
            s.tenant_words,
            s.build_time
        );
    }
    let t0 = Instant::now();
    let s = sample(&sim);
    eprintln!("[lookup] sampled {SAMPLE} addresses in {:?}", t0.elapsed());
    for (kind, qs) in [
        ("exact", &s.exact),
        ("prefix", &s.prefix),
        ("fuzzy", &s.fuzzy),
    ] {
        report(&sim, kind, qs);
    }
    for q in s.fuzzy.iter().take(5) {
        eprintln!("[lookup] e.g. fuzzy query {:?}", q.text);
    }

    let mut g = c.benchmark_group("lookup_100k_tenants_5m_mailboxes");
    g.sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (kind, qs) in [
        ("exact", &s.exact),
        ("prefix", &s.prefix),
        ("fuzzy", &s.fuzzy),
    ] {
        let mut i = 0;
        g.bench_function(kind, |b| {
            b.iter(|| {
                i = (i + 1) % qs.len();
                black_box(sim.lookup(&qs[i].text, LIMIT))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, lookup);

/// Lookup load on a running gateway over gRPC (see the module comment).
fn grpc_load(addr: &str) {
    use tonic::transport::Channel;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    use warroom::api::pb;
    use warroom::api::pb::war_room_client::WarRoomClient;

    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let dir = env("LOOKUP_DIR", ".");
    let seconds: f64 = env("LOOKUP_SECONDS", "20").parse().expect("LOOKUP_SECONDS");
    for kind in env("LOOKUP_KINDS", "exact,prefix,fuzzy").split(',') {
        let noop = kind == "noop";
        // The noop kind still makes one Lookup per connection, to warm it.
        let path = format!("{dir}/{}.tsv", if noop { "exact" } else { kind });
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let queries: Vec<String> = text
            .lines()
            .filter_map(|l| l.split('\t').next())
            .map(str::to_string)
            .collect();
        for clients in env("LOOKUP_CLIENTS", "1,4").split(',') {
            let clients: usize = clients.parse().expect("LOOKUP_CLIENTS");
            // Like pgbench -j: each client is a thread of its own, with its
            // own connection, calling one query at a time.
            let start = std::sync::Arc::new(std::sync::Barrier::new(clients));
            let threads: Vec<_> = (0..clients)
                .map(|n| {
                    let queries = queries.clone();
                    let addr = addr.to_string();
                    let start = start.clone();
                    std::thread::spawn(move || {
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .expect("tokio runtime");
                        rt.block_on(async move {
                            let mut c = WarRoomClient::connect(format!("http://{addr}"))
                                .await
                                .expect("gateway reachable");
                            // Warm: connected and first call done before timing.
                            c.lookup(pb::LookupRequest {
                                query: queries[0].clone(),
                                limit: LIMIT as u32,
                            })
                            .await
                            .expect("lookup");
                            // The "noop" kind: the gateway's gRPC health
                            // check, the cheapest call it answers, on the
                            // same server: what any call costs.
                            let mut floor = match noop {
                                true => Some(HealthClient::new(
                                    Channel::from_shared(format!("http://{addr}"))
                                        .expect("address")
                                        .connect()
                                        .await
                                        .expect("gateway reachable"),
                                )),
                                false => None,
                            };
                            start.wait();
                            let end = Instant::now() + Duration::from_secs_f64(seconds);
                            let mut lat = Vec::new();
                            let mut i = n * queries.len() / clients;
                            while Instant::now() < end {
                                let t = Instant::now();
                                if let Some(h) = floor.as_mut() {
                                    h.check(HealthCheckRequest::default())
                                        .await
                                        .expect("health check");
                                    lat.push(t.elapsed());
                                    continue;
                                }
                                c.lookup(pb::LookupRequest {
                                    query: queries[i % queries.len()].clone(),
                                    limit: LIMIT as u32,
                                })
                                .await
                                .expect("lookup");
                                lat.push(t.elapsed());
                                i += 1;
                            }
                            lat
                        })
                    })
                })
                .collect();
            let lat: Vec<Duration> = threads
                .into_iter()
                .flat_map(|t| t.join().expect("client thread"))
                .collect();
            let mut lat = lat;
            lat.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "{{\"system\": \"warroom gRPC (tonic)\", \"kind\": \"{kind}\", \"clients\": {clients}, \
                 \"queries\": {}, \"qps\": {:.1}, \"p50_ms\": {:.4}, \"p99_ms\": {:.4}, \"max_ms\": {:.4}, \
                 \"notes\": \"the console's client, Rust\"}}",
                lat.len(),
                lat.len() as f64 / seconds,
                ms(percentile(&lat, 0.5)),
                ms(percentile(&lat, 0.99)),
                ms(lat[lat.len() - 1]),
            );
        }
    }
}

fn main() {
    if let Ok(addr) = std::env::var("LOOKUP_GRPC") {
        grpc_load(&addr);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
