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
//! The group `address_index_1m` does the same for `lookup::AddressIndex`
//! over 1,000,000 explicit (generated) addresses of 20,000 tenants, as a
//! platform source would feed it, plus the time to build it:
//! `cargo bench --bench lookup -- address_index` (the simulator is only
//! built when one of its benchmarks runs).
//!
//! With `LOOKUP_GRPC=127.0.0.1:PORT` it is instead a load generator for a
//! running gateway, with the console's own client (tonic): for each kind in
//! `LOOKUP_KINDS` (exact,prefix,fuzzy) and each count in `LOOKUP_CLIENTS`
//! (1,4), that many clients, each a thread with its own connection and
//! runtime (like `pgbench -j`), call Lookup one query at a time for
//! `LOOKUP_SECONDS` (20) or until each has made `LOOKUP_CALLS` calls
//! (unlimited; for instruction counts, `scripts/lookup-callgrind`),
//! queries read from `LOOKUP_DIR/<kind>.tsv` (as
//! written by `scripts/lookup-load.py prepare`); one JSON line per run on
//! stdout. The kind `noop` calls the gateway's gRPC health check instead:
//! the per-call cost of the transport, with no lookup in it.
//! `scripts/bench-lookup` runs it.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

#[path = "common/mod.rs"]
mod common;
use common::{mb, proc_status_kb};
use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group};
use warroom::domain::MailboxState;
use warroom::lookup::{AddressIndex, Found, TenantEntry};
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

/// What `report` measures: a search (at most `LIMIT` hits), whether a hit
/// is the wanted one, and how to show it.
trait Searcher: Sync {
    type Hit;
    fn search(&self, q: &str) -> Vec<Self::Hit>;
    fn is(&self, h: &Self::Hit, w: &Want) -> bool;
    fn show(&self, h: &Self::Hit) -> String;
}

impl Searcher for Simulator {
    type Hit = LookupHit;

    fn search(&self, q: &str) -> Vec<LookupHit> {
        self.lookup(q, LIMIT).hits()
    }

    fn is(&self, h: &LookupHit, w: &Want) -> bool {
        match (h, w) {
            (LookupHit::Mailbox(m), Want::Mailbox(a)) => m.address == *a,
            (LookupHit::Domain { domain, .. }, Want::Domain(d)) => domain == d,
            (LookupHit::Tenant(t), Want::Tenant(id)) => *t.id == **id,
            _ => false,
        }
    }

    fn show(&self, h: &LookupHit) -> String {
        match h {
            LookupHit::Mailbox(m) => m.address.clone(),
            LookupHit::Domain { domain, .. } => domain.clone(),
            LookupHit::Tenant(t) => t.name.to_string(),
        }
    }
}

/// Tenants are wanted by number (`Want::Tenant("17")`).
impl Searcher for AddressIndex {
    type Hit = Found;

    fn search(&self, q: &str) -> Vec<Found> {
        AddressIndex::search(self, q, LIMIT)
    }

    fn is(&self, h: &Found, w: &Want) -> bool {
        match (h, w) {
            (Found::Mailbox { mailbox, .. }, Want::Mailbox(a)) => self.address(*mailbox) == a,
            (Found::Domain { domain, .. }, Want::Domain(d)) => domain == d,
            (Found::Tenant(t), Want::Tenant(id)) => t.to_string() == *id,
            _ => false,
        }
    }

    fn show(&self, h: &Found) -> String {
        match h {
            Found::Mailbox { mailbox, .. } => self.address(*mailbox).to_string(),
            Found::Domain { domain, .. } => domain.clone(),
            Found::Tenant(t) => format!("tenant {t}"),
        }
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
fn report<S: Searcher>(engine: &S, tag: &str, kind: &str, queries: &[Query]) {
    let mut times = Vec::new();
    let (mut first, mut top, mut results) = (0, 0, 0);
    for round in 0..3 {
        for q in queries {
            let t = Instant::now();
            let hits = engine.search(&q.text);
            times.push(t.elapsed());
            if round == 0 {
                let is = |h: &S::Hit| engine.is(h, &q.want);
                if kind == "fuzzy" && !hits.first().is_some_and(is) {
                    let got = hits.first().map(|h| engine.show(h));
                    eprintln!(
                        "[{tag}] {kind:<6} miss: {:?} came first for {:?}",
                        got, q.text
                    );
                }
                results += hits.len();
                first += hits.first().is_some_and(is) as usize;
                top += hits.iter().any(is) as usize;
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
        eprintln!("[{tag}] {kind:<6} slow: {q:?} took {t:?}");
    }
    if kind == "prefix" {
        // The sample's four forms, in turn (see `sample`): the gRPC load
        // (scripts/lookup-load.py) draws only the first two.
        let forms = [
            "local@domain-prefix",
            "local-part prefix",
            "domain prefix",
            "name prefix",
        ];
        let mut by_form = [(Duration::ZERO, 0u32); 4];
        for (i, t) in times.iter().enumerate() {
            let f = &mut by_form[(i % queries.len()) % 4];
            f.0 += *t;
            f.1 += 1;
        }
        let means: Vec<String> = forms
            .iter()
            .zip(by_form)
            .map(|(name, (sum, n))| format!("{name} {:?}", sum / n.max(1)))
            .collect();
        eprintln!("[{tag}] {kind:<6} mean by form: {}", means.join(", "));
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
                            black_box(engine.search(&q.text));
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
        "[{tag}] {kind:<6} {n} queries x3: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}; \
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

/// The 5M simulator, its sample of queries, and the reports above (once,
/// when a benchmark of the group first runs: a filter that excludes them
/// skips the minute of building).
fn simulator_setup() -> (Simulator, Sample) {
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
        report(&sim, "lookup", kind, qs);
    }
    for q in s.fuzzy.iter().take(5) {
        eprintln!("[lookup] e.g. fuzzy query {:?}", q.text);
    }

    (sim, s)
}

fn lookup(c: &mut Criterion) {
    let setup = OnceLock::new();
    let mut g = c.benchmark_group("lookup_100k_tenants_5m_mailboxes");
    g.sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for kind in ["exact", "prefix", "fuzzy"] {
        let mut i = 0;
        g.bench_function(kind, |b| {
            let (sim, s) = setup.get_or_init(simulator_setup);
            let qs = match kind {
                "exact" => &s.exact,
                "prefix" => &s.prefix,
                _ => &s.fuzzy,
            };
            b.iter(|| {
                i = (i + 1) % qs.len();
                black_box(sim.lookup(&qs[i].text, LIMIT))
            })
        });
    }
    g.finish();
}

// ------------------------------------------------------- AddressIndex

/// Explicit addresses for `AddressIndex` (pairs given; repeats are indexed
/// once).
const EXPLICIT: usize = 1_000_000;
const EXPLICIT_TENANTS: usize = 20_000;
const SYLLABLES: [&str; 32] = [
    "an", "be", "ca", "da", "el", "fi", "go", "ha", "is", "jo", "ka", "li", "ma", "ne", "ol", "pa",
    "qu", "ra", "si", "ta", "ul", "va", "we", "xi", "yo", "za", "ber", "con", "dor", "mar", "son",
    "ton",
];
const ROLES: [&str; 8] = [
    "info",
    "admin",
    "sales",
    "support",
    "billing",
    "office",
    "contact",
    "postmaster",
];

/// A platform as a source would list it: tenants with names and domains,
/// and (tenant, address) pairs.
struct Platform {
    names: Vec<String>,
    domains: Vec<Vec<String>>,
    mailboxes: Vec<(u32, String)>,
}

fn word(r: &mut Mix, syllables: usize) -> String {
    (0..syllables)
        .map(|_| SYLLABLES[r.below(SYLLABLES.len())])
        .collect()
}

/// 20,000 tenants with one to three domains, and 1,000,000 addresses:
/// `first.last` mostly, also `firstlast`, `f.last`, `first.last42` and
/// role accounts; tenant sizes skewed (a few large, many small).
fn platform() -> Platform {
    let mut r = Mix(1999);
    let kinds = [
        "Labs",
        "Group",
        "& Sons",
        "Title & Escrow",
        "Foods",
        "Clinic",
        "Partners",
        "Logistics",
    ];
    let tlds = ["com", "net", "org", "de", "co.uk", "nl"];
    let mut names = Vec::new();
    let mut domains = Vec::new();
    for _ in 0..EXPLICIT_TENANTS {
        let n = 2 + r.below(2);
        let base = word(&mut r, n);
        let kind = kinds[r.below(kinds.len())];
        let mut name = base.clone();
        name[..1].make_ascii_uppercase();
        names.push(format!("{name} {kind}"));
        let slug: String = kind
            .chars()
            .filter(char::is_ascii_alphabetic)
            .collect::<String>()
            .to_lowercase();
        let mut d = vec![format!("{base}-{slug}.{}", tlds[r.below(tlds.len())])];
        for _ in 0..r.below(3) {
            d.push(format!("{base}.{}", tlds[r.below(tlds.len())]));
        }
        domains.push(d);
    }
    let mut mailboxes = Vec::with_capacity(EXPLICIT);
    for _ in 0..EXPLICIT {
        let t = r.below(EXPLICIT_TENANTS) * r.below(EXPLICIT_TENANTS) / EXPLICIT_TENANTS;
        let n = 2 + r.below(2);
        let (first, last) = (word(&mut r, 2), word(&mut r, n));
        let local = match r.below(10) {
            0..=5 => format!("{first}.{last}"),
            6 => format!("{first}{last}"),
            7 => format!("{}.{last}", &first[..1]),
            8 => format!("{first}.{last}{}", 2 + r.below(98)),
            _ => ROLES[r.below(ROLES.len())].to_string(),
        };
        let d = &domains[t];
        mailboxes.push((t as u32, format!("{local}@{}", d[r.below(d.len())])));
    }
    Platform {
        names,
        domains,
        mailboxes,
    }
}

fn build_index(p: &Platform) -> AddressIndex {
    let tenants: Vec<TenantEntry> = p
        .names
        .iter()
        .zip(&p.domains)
        .map(|(name, domains)| TenantEntry { name, domains })
        .collect();
    AddressIndex::build(&tenants, p.mailboxes.iter().map(|(t, a)| (*t, a.as_str())))
}

/// Queries like `sample` makes from the simulator's: exact addresses,
/// prefixes (after the `@`, inside the domain or the local part, of a
/// domain, of a tenant name) and one typo (local part, domain, both, a
/// domain alone, a tenant name).
fn explicit_sample(p: &Platform) -> Sample {
    let mut r = Mix(2008);
    let mut s = Sample {
        exact: Vec::new(),
        prefix: Vec::new(),
        fuzzy: Vec::new(),
    };
    for n in 0..SAMPLE {
        let (t, address) = &p.mailboxes[r.below(p.mailboxes.len())];
        let name = p.names[*t as usize].to_lowercase();
        let (local, domain) = address.split_once('@').expect("an address");
        let mailbox = || Want::Mailbox(address.clone());
        let tenant = || Want::Tenant(t.to_string());
        s.exact.push(Query {
            text: address.clone(),
            want: mailbox(),
        });
        let (text, want) = match n % 4 {
            0 => (
                format!("{local}@{}", &domain[..(domain.len() / 2).max(1)]),
                mailbox(),
            ),
            1 => (
                address[..r.below(local.len().saturating_sub(2)) + 3].to_string(),
                mailbox(),
            ),
            2 => (
                domain[..(domain.len() * 2 / 3).max(1)].to_string(),
                Want::Domain(domain.to_string()),
            ),
            _ => (name[..(name.len() * 2 / 3).max(1)].to_string(), tenant()),
        };
        s.prefix.push(Query { text, want });
        let (text, want) = match n % 5 {
            0 => (format!("{}@{domain}", misspell(local, &mut r)), mailbox()),
            1 => (format!("{local}@{}", misspell(domain, &mut r)), mailbox()),
            2 => (
                format!("{}@{}", misspell(local, &mut r), misspell(domain, &mut r)),
                mailbox(),
            ),
            3 => (misspell(domain, &mut r), Want::Domain(domain.to_string())),
            _ => (misspell(&name, &mut r), tenant()),
        };
        s.fuzzy.push(Query { text, want });
    }
    s
}

/// The platform, its index built once (timed, with its size), the sample
/// and the reports (once, when a benchmark of the group first runs).
fn address_setup() -> (Platform, AddressIndex, Sample) {
    let t0 = Instant::now();
    let p = platform();
    let domains: std::collections::HashSet<&String> = p.domains.iter().flatten().collect();
    let bytes: usize = p.mailboxes.iter().map(|(_, a)| a.len()).sum();
    eprintln!(
        "[address_index] generated {EXPLICIT_TENANTS} tenants ({} distinct domains) / \
         {EXPLICIT} addresses ({:.1} MB of text) in {:?}",
        domains.len(),
        bytes as f64 / 1048576.0,
        t0.elapsed()
    );
    let before = proc_status_kb("VmHWM:");
    let t0 = Instant::now();
    let ix = build_index(&p);
    let built = t0.elapsed();
    let after = proc_status_kb("VmHWM:");
    eprintln!(
        "[address_index] built in {built:?}: {} distinct addresses, {:.1} MB of heap; \
         peak RSS (VmHWM) {} before, {} after",
        ix.mailboxes(),
        ix.heap_bytes() as f64 / 1048576.0,
        mb(before),
        mb(after)
    );
    let s = explicit_sample(&p);
    for (kind, qs) in [
        ("exact", &s.exact),
        ("prefix", &s.prefix),
        ("fuzzy", &s.fuzzy),
    ] {
        report(&ix, "address_index", kind, qs);
    }
    (p, ix, s)
}

fn address_index(c: &mut Criterion) {
    let setup = OnceLock::new();
    let mut g = c.benchmark_group("address_index_1m");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    g.bench_function("build", |b| {
        let (p, _, _) = setup.get_or_init(address_setup);
        b.iter(|| black_box(build_index(p)))
    });
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    for kind in ["exact", "prefix", "fuzzy"] {
        let mut i = 0;
        g.bench_function(kind, |b| {
            let (_, ix, s) = setup.get_or_init(address_setup);
            let qs = match kind {
                "exact" => &s.exact,
                "prefix" => &s.prefix,
                _ => &s.fuzzy,
            };
            b.iter(|| {
                i = (i + 1) % qs.len();
                black_box(ix.search(&qs[i].text, LIMIT))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, lookup, address_index);

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
    let calls: usize = env("LOOKUP_CALLS", &usize::MAX.to_string())
        .parse()
        .expect("LOOKUP_CALLS");
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
                            let began = Instant::now();
                            let end = began + Duration::from_secs_f64(seconds);
                            let mut lat = Vec::new();
                            let mut i = n * queries.len() / clients;
                            while Instant::now() < end && lat.len() < calls {
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
                            (lat, began.elapsed())
                        })
                    })
                })
                .collect();
            let mut lat: Vec<Duration> = Vec::new();
            // The longest client's time: the run's (shorter than
            // LOOKUP_SECONDS when LOOKUP_CALLS ended it).
            let mut took = Duration::ZERO;
            for t in threads {
                let (l, d) = t.join().expect("client thread");
                lat.extend(l);
                took = took.max(d);
            }
            lat.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "{{\"system\": \"warroom gRPC (tonic)\", \"kind\": \"{kind}\", \"clients\": {clients}, \
                 \"queries\": {}, \"qps\": {:.1}, \"p50_ms\": {:.4}, \"p99_ms\": {:.4}, \"max_ms\": {:.4}, \
                 \"notes\": \"the console's client, Rust\"}}",
                lat.len(),
                lat.len() as f64 / took.as_secs_f64(),
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
