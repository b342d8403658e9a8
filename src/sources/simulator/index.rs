//! The simulator's lookup index: the general engine in [`crate::lookup`]
//! fed with the simulator's own address scheme, built once when the
//! simulator starts (addresses never change in a run).
//!
//! Mailbox addresses are never stored. An address is `local@domain` where
//! the local part of the `k`-th mailbox of a domain is one of 4,096 bases
//! (`first.last`) plus an optional number (`alice.smith2` after 4,096), so
//! besides the engine's catalog (tenant names by word, domains sorted with
//! their tenant) this index keeps:
//!
//! - for each domain its number within the tenant and how many mailboxes it
//!   has (`n`): the mailbox `k` exists on a domain iff `k < n`. Block maxima
//!   of `n` (per 64 and per 4,096 domains) find the next domain holding
//!   mailbox `k` without walking them all;
//! - the 4,096 local-part bases, sorted, searched by the engine's walk like
//!   any sorted set; numbers are handled by arithmetic, enumerated in the
//!   byte order of `number@` (`…20@` < `…2@` < `…@`).
//!
//! Searching, scoring, levels and budgets are the engine's (see
//! `src/lookup/mod.rs`). Specific to this index: digits ending a queried
//! local part are matched exactly, and digits no local part has
//! (`alice.smith1`) count as edits. Measurements: docs/lookup-benchmark.md.

use std::ops::ControlFlow;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::names;
use crate::lookup::Ranked;
use crate::lookup::engine::{
    Batch, Catalog, FastSet, Hit, Mailboxes, NONE, Packed, Seg, Sorted, Top, at_score, fuzzy,
};

/// Number of local-part bases: `local_part(k)` for `k < BASES` has no number.
const BASES: u64 = (names::FIRST.len() * names::LAST.len()) as u64;
const B1: usize = 64;
const B2: usize = 4096;

/// Size and build time of the last index built in this process, for the
/// benchmarks (`benches/lookup.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexStats {
    pub heap_bytes: usize,
    pub build_time: Duration,
    pub domains: usize,
    pub tenant_words: usize,
    pub mailboxes: u64,
}

static LAST_STATS: Mutex<Option<IndexStats>> = Mutex::new(None);

/// See [`IndexStats`].
pub fn last_build_stats() -> Option<IndexStats> {
    *LAST_STATS.lock().unwrap_or_else(|e| e.into_inner())
}

/// One tenant as the index is built from it.
pub(super) struct Entry<'a> {
    pub name: &'a str,
    pub mailboxes: u64,
    /// Its domains in domain-number order: mailbox `j` of the tenant lives on
    /// domain `j % domains.len()` as local part `j / domains.len()`.
    pub domains: Vec<String>,
}

/// A found mailbox: number `k` on domain number `domain` of `tenant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Mailbox {
    pub tenant: u32,
    pub domain: u8,
    pub k: u64,
}

/// What a search found, in result order.
pub(super) type Found = Hit<Mailbox>;

// ------------------------------------------------------------ domains

/// Mailboxes per domain, with block maxima to skip domains that do not
/// have mailbox `k`, and the big domains listed apart for large `k`.
#[derive(Default)]
struct Counts {
    n: Vec<u32>,
    b1: Vec<u32>,
    b2: Vec<u32>,
    /// `big[j]`: the domains with more than `BIG << j` mailboxes, as
    /// (position, mailboxes) in position order; the last list is empty.
    /// A local-part prefix asks for mailbox `k` of every domain for up to
    /// 64 bases times every number: for `k` past a few hundred, few domains
    /// have it, and the block maxima still cost a look at every block
    /// holding one big domain (about 2,000 at 136,000 domains) per `k`.
    big: Vec<Vec<(u32, u32)>>,
}

/// Mailboxes above which a domain is in the first list of [`Counts::big`].
const BIG: u64 = 64;

impl Counts {
    fn new(n: Vec<u32>) -> Self {
        let b1 = n
            .chunks(B1)
            .map(|c| c.iter().copied().max().unwrap_or(0))
            .collect();
        let b2 = n
            .chunks(B2)
            .map(|c| c.iter().copied().max().unwrap_or(0))
            .collect();
        let mut big: Vec<Vec<(u32, u32)>> = Vec::new();
        let mut over = BIG;
        loop {
            let list: Vec<(u32, u32)> = match big.last() {
                // Each list is a subset of the one before.
                Some(prev) => prev
                    .iter()
                    .copied()
                    .filter(|&(_, c)| c as u64 > over)
                    .collect(),
                None => (0..n.len() as u32)
                    .map(|i| (i, n[i as usize]))
                    .filter(|&(_, c)| c as u64 > over)
                    .collect(),
            };
            let empty = list.is_empty();
            big.push(list);
            if empty || over > u32::MAX as u64 {
                break;
            }
            over *= 2;
        }
        Counts { n, b1, b2, big }
    }

    /// The domains in `lo..hi` that have mailbox `k`, in order.
    fn holding(&self, lo: usize, hi: usize, k: u64) -> impl Iterator<Item = usize> + '_ {
        // For a large `k`, the list of domains above the largest threshold
        // `BIG << j` not above `k` holds every domain with more than `k`
        // (past the last list, which is empty, no domain is that big);
        // found once by binary search, then read in order.
        let list = (k >= BIG).then(|| {
            self.big
                .get((k / BIG).ilog2() as usize)
                .map_or(&[][..], |l| &l[..])
        });
        let mut p = list.map_or(0, |l| l.partition_point(|&(pos, _)| (pos as usize) < lo));
        let mut i = lo;
        std::iter::from_fn(move || match list {
            Some(l) => {
                while let Some(&(pos, c)) = l.get(p) {
                    if pos as usize >= hi {
                        return None;
                    }
                    p += 1;
                    if c as u64 > k {
                        return Some(pos as usize);
                    }
                }
                None
            }
            None => {
                let d = self.next(i, hi, k)?;
                i = d + 1;
                Some(d)
            }
        })
    }

    /// First domain in `i..end` that has mailbox `k`, by the block maxima.
    fn next(&self, mut i: usize, end: usize, k: u64) -> Option<usize> {
        while i < end {
            if i.is_multiple_of(B2) && self.b2[i / B2] as u64 <= k {
                i += B2;
            } else if i.is_multiple_of(B1) && self.b1[i / B1] as u64 <= k {
                i += B1;
            } else if self.n[i] as u64 > k {
                return Some(i);
            } else {
                i += 1;
            }
        }
        None
    }

    fn heap_bytes(&self) -> usize {
        4 * (self.n.capacity() + self.b1.capacity() + self.b2.capacity())
            + self
                .big
                .iter()
                .map(|l| 8 * l.capacity() + std::mem::size_of::<Vec<(u32, u32)>>())
                .sum::<usize>()
    }
}

// ------------------------------------------------------------ local parts

/// Calls `f(n)` for the local-part numbers `n` in `1..=nmax` (written
/// `n + 1`) whose digits start with `pre`, then `n = 0` (no digits) when
/// `pre` is empty, in the byte order of `digits@`: digits sort before `@`,
/// so `alice.smith20@` < `alice.smith2@` < `alice.smith@`.
fn numbers(pre: &[u8], nmax: u64, f: &mut impl FnMut(u64) -> ControlFlow<()>) -> ControlFlow<()> {
    fn visit(v: u64, top: u64, f: &mut impl FnMut(u64) -> ControlFlow<()>) -> ControlFlow<()> {
        if v > top {
            return ControlFlow::Continue(());
        }
        for d in 0..10 {
            match v.checked_mul(10).and_then(|x| x.checked_add(d)) {
                // Larger digits only make it larger: no call to learn so.
                Some(c) if c <= top => visit(c, top, f)?,
                _ => break,
            }
        }
        if v >= 2 {
            f(v - 1)?;
        }
        ControlFlow::Continue(())
    }
    let top = nmax.saturating_add(1);
    if pre.is_empty() {
        for d in 1..10 {
            visit(d, top, f)?;
        }
        return f(0);
    }
    if pre[0] == b'0' {
        return ControlFlow::Continue(());
    }
    match std::str::from_utf8(pre)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(v) => visit(v, top, f),
        None => ControlFlow::Continue(()),
    }
}

/// How the trailing digits of a queried local part are matched.
#[derive(Debug, Clone, Copy)]
enum Digits {
    /// None given: number 0 (address), any number (prefix).
    None,
    /// The digits as a number: exactly that (address), or numbers written
    /// with these leading digits (prefix).
    Number(u64),
    /// Digits no local part has (`1`, `007`, too long): read as typos.
    Typo(u16),
}

/// One search's plan for mailboxes (see [`Mailboxes::plan`]).
pub(super) struct LocalPlan {
    /// Whole local part (`local@…`) or a prefix of addresses (no `@`).
    address: bool,
    digits: Digits,
    pre: Vec<u8>,
    maxd: u16,
    /// (sorted base position, best whole score, best prefix score).
    bases: Vec<(u16, u8, u8)>,
    /// Domain matches, sorted by score.
    doms: Vec<Seg>,
    /// Mailboxes already found, as (k, domain position).
    seen: FastSet<(u64, u32)>,
}

// ------------------------------------------------------------ the index

pub(super) struct LookupIndex {
    catalog: Catalog,
    /// By sorted domain position: its number within its tenant.
    dom_num: Vec<u8>,
    counts: Counts,
    bases_top: Top,
    bases: Packed,
    base_k: Vec<u16>,
    /// One more than the largest local-part number of any domain.
    kmax: u64,
}

impl LookupIndex {
    pub(super) fn build<'a>(tenants: impl IntoIterator<Item = Entry<'a>>) -> Self {
        let t0 = Instant::now();
        let mut raw = Packed::default();
        let mut raw_tenant: Vec<u32> = Vec::new();
        let mut raw_meta: Vec<(u8, u32)> = Vec::new();
        let mut names_list: Vec<&str> = Vec::new();
        let mut mailboxes = 0u64;
        for (ti, e) in tenants.into_iter().enumerate() {
            let ti = ti as u32;
            names_list.push(e.name);
            mailboxes += e.mailboxes;
            let nd = e.domains.len().min(256) as u64;
            for (d, dom) in e.domains.iter().take(256).enumerate() {
                let d = d as u64;
                let n = if e.mailboxes > d {
                    (e.mailboxes - d).div_ceil(nd)
                } else {
                    0
                };
                raw.push(dom.to_lowercase().as_bytes());
                raw_tenant.push(ti);
                raw_meta.push((d as u8, n.min(u32::MAX as u64) as u32));
            }
        }

        // Domains, sorted (and deduplicated: first tenant wins) by the
        // catalog; their numbers and counts follow its order.
        let (catalog, order) = Catalog::build(names_list, raw, &raw_tenant);
        let mut dom_num = Vec::with_capacity(order.len());
        let mut n = Vec::with_capacity(order.len());
        for &i in &order {
            let (d, c) = raw_meta[i as usize];
            dom_num.push(d);
            n.push(c);
        }
        drop((raw_tenant, raw_meta, order));
        let kmax = n.iter().copied().max().unwrap_or(0) as u64;
        let counts = Counts::new(n);

        let mut base_list: Vec<(String, u16)> = (0..BASES)
            .map(|k| (names::local_part(k), k as u16))
            .collect();
        base_list.sort();
        debug_assert!(
            base_list
                .iter()
                .all(|(s, _)| !s.ends_with(|c: char| c.is_ascii_digit())),
            "local-part bases end in a letter"
        );
        let mut bases = Packed::default();
        let mut base_k = Vec::with_capacity(base_list.len());
        for (s, k) in &base_list {
            bases.push(s.as_bytes());
            base_k.push(*k);
        }

        // The top eight levels listed (7,899 nodes, 190 KB): a misspelt
        // local part walks the 4,096 bases with two edits.
        let bases_top = Top::build_within(&bases, 1 << 15);
        let index = LookupIndex {
            catalog,
            dom_num,
            counts,
            bases_top,
            bases,
            base_k,
            kmax,
        };
        let stats = IndexStats {
            heap_bytes: index.heap_bytes(),
            build_time: t0.elapsed(),
            domains: index.catalog.domain_count(),
            tenant_words: index.catalog.word_count(),
            mailboxes,
        };
        tracing::debug!(?stats, "lookup index built");
        *LAST_STATS.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
        index
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.catalog.heap_bytes()
            + self.dom_num.capacity()
            + self.counts.heap_bytes()
            + self.bases_top.heap_bytes()
            + self.bases.heap_bytes()
            + 2 * self.base_k.capacity()
    }

    /// Up to `limit` matches of a lowercase, trimmed query: exact first,
    /// then prefix, then misspellings by distance; byte order of the matched
    /// text within a level (nothing counts as affected).
    #[cfg(test)]
    pub(super) fn search(&self, q: &str, limit: usize) -> Vec<Found> {
        self.lookup(q, limit, |_| false)
            .hits
            .into_iter()
            .map(|(f, _)| f)
            .collect()
    }

    /// Up to `limit` matches of a lowercase, trimmed query, ranked: exact,
    /// prefix, then misspellings, each with those `affected` says are
    /// affected first, then in [`search`](Self::search) order; with how
    /// each matched and how many matched in all.
    pub(super) fn lookup(
        &self,
        q: &str,
        limit: usize,
        affected: impl Fn(&Found) -> bool,
    ) -> Ranked<Found> {
        self.catalog.search(self, q.as_bytes(), limit, affected)
    }

    /// The name of a found domain ([`Found::Domain`]), lowercase.
    pub(super) fn domain_name(&self, pos: u32) -> String {
        self.catalog.domain_name(pos)
    }
}

impl Mailboxes for LookupIndex {
    type Id = Mailbox;
    type Plan = LocalPlan;

    fn plan(&self, l: &[u8], address: bool, maxd: u16, doms: Vec<Seg>) -> (LocalPlan, bool) {
        let split = l.len() - l.iter().rev().take_while(|b| b.is_ascii_digit()).count();
        let (alpha, pre) = l.split_at(split);
        let digits = if pre.is_empty() {
            Digits::None
        } else {
            let v = std::str::from_utf8(pre)
                .ok()
                .and_then(|s| s.parse::<u64>().ok());
            match v {
                Some(v) if pre[0] != b'0' && (!address || v >= 2) => Digits::Number(v),
                _ => Digits::Typo(pre.len().min(u16::MAX as usize) as u16),
            }
        };
        // Each base the walk matched, by position, with its best whole and
        // best prefix score: from the matched ranges alone, not a pass over
        // all 4,096 bases.
        let (segs, cut) = fuzzy(&self.bases, &self.bases_top, alpha, maxd, None);
        let mut touched: Vec<(u16, u8, u8)> = Vec::new();
        for s in segs {
            let (full, part) = if s.score % 3 == 0 {
                (s.score, NONE)
            } else {
                (NONE, s.score)
            };
            touched.extend((s.lo..s.hi).map(|i| (i as u16, full, part)));
        }
        touched.sort_unstable_by_key(|b| b.0);
        let mut bases: Vec<(u16, u8, u8)> = Vec::with_capacity(touched.len());
        for (i, full, part) in touched {
            match bases.last_mut() {
                Some(b) if b.0 == i => {
                    b.1 = b.1.min(full);
                    b.2 = b.2.min(part);
                }
                _ => bases.push((i, full, part)),
            }
        }
        let plan = LocalPlan {
            address,
            digits,
            pre: pre.to_vec(),
            maxd,
            bases,
            doms,
            seen: FastSet::default(),
        };
        (plan, cut)
    }

    /// Mailboxes at one score level, in address order: local parts in
    /// `local@` order, then domains in order.
    fn at_level<'a>(
        &'a self,
        plan: &mut LocalPlan,
        level: u8,
        need: usize,
        batch: &mut Batch<'a, Mailbox>,
    ) {
        if self.kmax == 0 || need == 0 {
            return;
        }
        let nmax = (self.kmax - 1) / BASES;
        let mut taken = 0;
        let doms = &plan.doms;
        let seen = &mut plan.seen;
        let catalog = &self.catalog;
        // Without `@` a mailbox comes at most once: one segment of domains,
        // one level per base, one base per `k`. With `@`, domain segments
        // overlap: remember what was pushed.
        let once = !plan.address;
        // `local@` of the `k` at hand, before it is kept in the batch.
        let mut scratch = String::new();
        // All mailboxes with local part `k` whose local score is `sl`.
        let mut emit = |k: u64, sl: u8| -> ControlFlow<()> {
            if k >= self.kmax || sl > level {
                return ControlFlow::Continue(());
            }
            let want = level - sl;
            // `local@`, kept once in the batch for all its mailboxes.
            let mut local: Option<(u32, u32)> = None;
            for s in at_score(doms, want) {
                for d in self.counts.holding(s.lo as usize, s.hi as usize, k) {
                    if once || seen.insert((k, d as u32)) {
                        let head = *local.get_or_insert_with(|| {
                            scratch.clear();
                            names::push_local_part(&mut scratch, k);
                            scratch.push('@');
                            batch.text(scratch.as_bytes())
                        });
                        batch.mailbox(
                            head,
                            catalog.domains.get(d),
                            Mailbox {
                                tenant: catalog.dom_tenant[d],
                                domain: self.dom_num[d],
                                k,
                            },
                        );
                        taken += 1;
                        if taken == need {
                            return ControlFlow::Break(());
                        }
                    }
                }
            }
            ControlFlow::Continue(())
        };
        for &(pos, full, part) in &plan.bases {
            let base = self.base_k[pos as usize] as u64;
            let flow = if plan.address {
                if full == NONE {
                    continue;
                }
                match plan.digits {
                    Digits::None => emit(base, full),
                    Digits::Number(v) => {
                        match (v - 1).checked_mul(BASES).and_then(|k| k.checked_add(base)) {
                            Some(k) => emit(k, full),
                            None => continue,
                        }
                    }
                    Digits::Typo(extra) => {
                        let d = full as u16 / 3 + extra;
                        if d > plan.maxd {
                            continue;
                        }
                        emit(base, (3 * d) as u8)
                    }
                }
            } else {
                let d = match plan.digits {
                    Digits::None => full.min(part) / 3,
                    _ if full == NONE => continue,
                    Digits::Number(_) => full / 3,
                    Digits::Typo(extra) => {
                        let d = full as u16 / 3 + extra;
                        if d > plan.maxd {
                            continue;
                        }
                        d as u8
                    }
                };
                let pre = match plan.digits {
                    Digits::Number(_) => &plan.pre[..],
                    _ => &[],
                };
                numbers(pre, nmax, &mut |n| emit(n * BASES + base, 3 * d + 2))
            };
            if flow.is_break() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::super::{SimConfig, Simulator};
    use super::*;
    use crate::sources::{LookupHit, Source};

    fn default_sim() -> &'static Simulator {
        static SIM: OnceLock<Simulator> = OnceLock::new();
        SIM.get_or_init(|| Simulator::new(SimConfig::default()).unwrap())
    }

    /// Few tenants with many mailboxes: local parts past 4,096 get numbers.
    fn numbered_sim() -> &'static Simulator {
        static SIM: OnceLock<Simulator> = OnceLock::new();
        SIM.get_or_init(|| {
            Simulator::new(SimConfig {
                tenants: 3,
                mailboxes: 120_000,
                ..SimConfig::default()
            })
            .unwrap()
        })
    }

    fn all_addresses(s: &Simulator) -> Vec<String> {
        let mut v: Vec<String> = (0..s.tenants.len())
            .flat_map(|ti| (0..s.tenants[ti].count).map(move |j| s.address(ti, j)))
            .collect();
        v.sort();
        v
    }

    /// The simulator's lookup without the ranking (nothing counts as
    /// affected): the engine's order, for a query that is not exact.
    fn unranked(s: &Simulator, q: &str, limit: usize) -> Vec<LookupHit> {
        s.index
            .search(&q.trim().to_lowercase(), limit)
            .into_iter()
            .filter_map(|f| match f {
                Hit::Mailbox(m) => Some(LookupHit::Mailbox(s.mailbox_row(s.found_mailbox(m)?))),
                Hit::Domain { tenant, domain } => Some(LookupHit::Domain {
                    domain: s.index.domain_name(domain),
                    tenant: s.tenants[tenant as usize].row(),
                }),
                Hit::Tenant(t) => Some(LookupHit::Tenant(s.tenants[t as usize].row())),
            })
            .collect()
    }

    fn text(h: &LookupHit) -> String {
        match h {
            LookupHit::Mailbox(m) => m.address.clone(),
            LookupHit::Domain { domain, .. } => domain.clone(),
            LookupHit::Tenant(t) => t.name.to_lowercase(),
        }
    }

    #[test]
    fn numbers_come_in_address_order() {
        for nmax in [0u64, 1, 8, 9, 10, 120, 1234] {
            let mut got = Vec::new();
            let _ = numbers(b"", nmax, &mut |n| {
                got.push(n);
                ControlFlow::Continue(())
            });
            let mut want: Vec<u64> = (0..=nmax).collect();
            let key = |n: u64| {
                if n == 0 {
                    "@".to_string()
                } else {
                    format!("{}@", n + 1)
                }
            };
            want.sort_by_key(|&n| key(n));
            assert_eq!(got, want, "nmax {nmax}");
            // With leading digits.
            let mut got = Vec::new();
            let _ = numbers(b"1", nmax, &mut |n| {
                got.push(n);
                ControlFlow::Continue(())
            });
            want.retain(|&n| n > 0 && (n + 1).to_string().starts_with('1'));
            assert_eq!(got, want, "nmax {nmax}, digits 1");
        }
        let mut none = true;
        let _ = numbers(b"0", 100, &mut |_| {
            none = false;
            ControlFlow::Continue(())
        });
        assert!(none);
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 200,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        /// The lists of big domains find what a pass over every domain
        /// finds, whatever the sizes.
        #[test]
        fn counts_find_the_next_domain_holding_k(
            n in proptest::collection::vec(prop_oneof![0u32..80, 0u32..5000, Just(u32::MAX)], 0..300),
            k in prop_oneof![0u64..100, 0u64..6000, Just(u32::MAX as u64), Just(u64::MAX)],
            start in 0usize..300,
            len in 0usize..300,
        ) {
            let c = Counts::new(n.clone());
            let end = (start + len).min(n.len());
            let want: Vec<usize> = (start..end).filter(|&i| n[i] as u64 > k).collect();
            prop_assert_eq!(c.holding(start, end, k).collect::<Vec<_>>(), want);
        }
    }

    #[test]
    fn counts_skip_domains_without_the_mailbox() {
        let n: Vec<u32> = (0..10_000u32)
            .map(|i| (i * 7919) % 97 + (i == 6000) as u32 * 500)
            .collect();
        let c = Counts::new(n.clone());
        for k in [0u64, 5, 50, 95, 96, 97, 300, 600] {
            for start in [0usize, 1, 63, 64, 4095, 4096, 5000, 9999] {
                let want = (start..n.len()).find(|&i| n[i] as u64 > k);
                assert_eq!(c.next(start, n.len(), k), want, "k {k} from {start}");
                assert_eq!(
                    c.holding(start, n.len(), k).next(),
                    want,
                    "k {k} from {start}"
                );
                let want = (start..7000).find(|&i| n[i] as u64 > k);
                assert_eq!(c.next(start, 7000, k), want, "k {k} from {start} to 7000");
            }
        }
    }

    #[test]
    fn address_prefixes_come_in_address_order() {
        for (s, queries) in [
            (
                default_sim(),
                &[
                    "alice.smith@a",
                    "bob.jones@",
                    "zoe.sm",
                    "mallory.smith@ri",
                    "kofi.",
                ][..],
            ),
            (
                numbered_sim(),
                &["alice.smith", "bob.smith@", "alice.smith1", "carol.jones2@"][..],
            ),
        ] {
            let all = all_addresses(s);
            for q in queries {
                let want: Vec<&String> = all.iter().filter(|a| a.starts_with(q)).collect();
                for limit in [1, 7, 20, 100] {
                    let hits = unranked(s, q, limit);
                    assert!(hits.len() <= limit, "{q:?}");
                    let got: Vec<String> = hits.iter().map(text).collect();
                    let n = want.len().min(limit);
                    assert_eq!(
                        got[..n].iter().collect::<Vec<_>>(),
                        want[..n],
                        "{q:?} limit {limit}"
                    );
                    assert!(hits[..n].iter().all(|h| matches!(h, LookupHit::Mailbox(_))));
                }
            }
        }
        // Numbers sort before the bare local part: '2' < '@'.
        let hits = unranked(numbered_sim(), "alice.smith", 3);
        assert!(
            text(&hits[0]).starts_with("alice.smith2@"),
            "{}",
            text(&hits[0])
        );
    }

    #[test]
    fn domain_and_tenant_prefixes() {
        let s = default_sim();
        // A stem (domain without its suffix) first, then other prefixes.
        let hits = s.lookup("acme-title", 20).hits();
        assert!(
            matches!(&hits[0], LookupHit::Domain { domain, .. } if domain == "acme-title.com"),
            "{hits:?}"
        );
        let hits = s.lookup("relief-with", 5).hits();
        assert!(
            matches!(&hits[0], LookupHit::Domain { domain, tenant } if domain == "relief-without-borders.org" && &*tenant.id == "t00001")
        );
        // Exact name, then names starting with it; any word of the name.
        let hits = s.lookup("Acme Title & Escrow", 5).hits();
        assert!(matches!(&hits[0], LookupHit::Tenant(t) if &*t.id == "t00000"));
        let hits = s.lookup("escrow", 20).hits();
        assert!(
            hits.iter()
                .any(|h| matches!(h, LookupHit::Tenant(t) if &*t.id == "t00000"))
        );
        let hits = unranked(s, "acme", 20);
        assert_eq!(hits.len(), 20);
        // In byte order of the matched text (before the ranking puts the
        // affected first): for a tenant, its name from the matching word on.
        let texts: Vec<String> = hits
            .iter()
            .map(|h| {
                let t = text(h);
                let at = t.find("acme").expect("matches acme");
                t[at..].to_string()
            })
            .collect();
        let mut sorted = texts.clone();
        sorted.sort();
        assert_eq!(texts, sorted, "prefix hits in byte order");
    }

    fn first_is(s: &Simulator, q: &str, want: &str) {
        let hits = s.lookup(q, 20).hits();
        let got = hits.first().map(|h| match h {
            LookupHit::Tenant(t) => t.id.to_string(),
            h => text(h),
        });
        assert_eq!(
            got.as_deref(),
            Some(want),
            "{q:?}: {:?}",
            hits.iter().map(text).collect::<Vec<_>>()
        );
    }

    #[test]
    fn misspellings_find_the_intended_mailbox_domain_or_tenant() {
        let s = default_sim();
        first_is(
            s,
            "alcie.smith@acme-title.com",
            "alice.smith@acme-title.com",
        );
        first_is(s, "alice.smtih@acme-title", "alice.smith@acme-title.com");
        first_is(
            s,
            "alice.smith@acme-titel.com",
            "alice.smith@acme-title.com",
        );
        first_is(
            s,
            "alcie.smith@acme-titel.com",
            "alice.smith@acme-title.com",
        );
        first_is(
            s,
            "alice.smith1@acme-title.com",
            "alice.smith@acme-title.com",
        );
        first_is(
            s,
            "bob.smiht@relief-without-borders.org",
            "bob.smith@relief-without-borders.org",
        );
        first_is(s, "acme-titel.com", "acme-title.com");
        first_is(s, "acmetitle.com", "acme-title.com");
        first_is(
            s,
            "releif-without-borders.org",
            "relief-without-borders.org",
        );
        first_is(s, "acme titel & escrow", "t00000");
        first_is(s, "relief withuot borders", "t00001");
        // Not within two edits of anything.
        assert!(s.lookup("nobody@nowhere.example", 20).matches.is_empty());
        assert!(s.lookup("zzzzzzzzzzzz", 20).matches.is_empty());
    }

    fn small_index() -> LookupIndex {
        let entry = |name, mailboxes, domains: &[&str]| Entry {
            name,
            mailboxes,
            domains: domains.iter().map(|d| d.to_string()).collect(),
        };
        LookupIndex::build([
            entry(
                "Acme Title & Escrow",
                30,
                &["acme-title.com", "acme-title2.com"],
            ),
            entry("Acme Tile", 5, &["acme-tile.com"]),
            entry("Acme Title Group", 3, &["acme-title-group.net"]),
            entry("Cmae Labs", 2, &["acme-title.com.au"]),
        ])
    }

    fn found_text(ix: &LookupIndex, f: &Found) -> String {
        match f {
            Hit::Mailbox(Mailbox { tenant, domain, k }) => {
                let c = &ix.catalog;
                let d = (0..c.domains.len())
                    .find(|&i| c.dom_tenant[i] == *tenant && ix.dom_num[i] == *domain)
                    .unwrap();
                format!(
                    "{}@{}",
                    names::local_part(*k),
                    String::from_utf8_lossy(c.domains.get(d))
                )
            }
            Hit::Domain { domain, .. } => ix.domain_name(*domain),
            Hit::Tenant(t) => format!("tenant {t}"),
        }
    }

    fn found(ix: &LookupIndex, q: &str, limit: usize) -> Vec<String> {
        ix.search(q, limit)
            .iter()
            .map(|f| found_text(ix, f))
            .collect()
    }

    #[test]
    fn exact_then_prefix_then_misspellings() {
        let ix = small_index();
        assert_eq!(
            found(&ix, "acme-title.com", 10),
            [
                "acme-title.com",    // exact
                "acme-title.com.au", // stem "acme-title.com"
                "acme-tile.com",     // one edit, then byte order
                "acme-title2.com",   // one edit
            ]
        );
        assert_eq!(
            found(&ix, "acme-title", 10),
            [
                "acme-title.com",       // stem
                "acme-title.com.au",    // stem
                "acme-title-group.net", // prefix
                "acme-title2.com",      // prefix
                "acme-tile.com",        // stem "acme-tile": one edit
                "tenant 0",             // "acme title & escrow": one edit, prefix
                "tenant 2",             // "acme title group": one edit, prefix
                "tenant 1",             // "acme tile": two edits
            ]
        );
        // Local part exact, domain a prefix: address order; then misspellings.
        assert_eq!(
            found(&ix, "bob.smith@acme-title", 10),
            [
                "bob.smith@acme-title.com",
                "bob.smith@acme-title.com.au",
                "bob.smith@acme-title-group.net",
                "bob.smith@acme-title2.com",
                "bob.smith@acme-tile.com",
            ]
        );
        assert_eq!(
            found(&ix, "bob.smiht@acme-titel.com", 10),
            [
                "bob.smith@acme-title.com",    // one edit each side
                "bob.smith@acme-title.com.au", // one, and one to a stem
                "bob.smith@acme-tile.com",     // one, and two
                "bob.smith@acme-title2.com",   // one, and two
            ]
        );
        // Mailboxes that do not exist are not found: "Cmae Labs" has two.
        assert_eq!(
            found(&ix, "carol.smith@acme-title.com.au", 10),
            Vec::<String>::new()
        );
        assert_eq!(
            found(&ix, "bob.smith@acme-title.com.au", 10),
            ["bob.smith@acme-title.com.au"]
        );
        // Limits cut the list, not the order.
        assert_eq!(
            found(&ix, "acme-title", 3),
            found(&ix, "acme-title", 10)[..3]
        );
        assert!(ix.heap_bytes() > 0);
    }

    /// `n` queries near the simulator's addresses, without digits: cut
    /// short, two letters swapped, one dropped or replaced, a domain or
    /// local part alone (deterministic).
    fn varied_queries(s: &Simulator, n: usize) -> Vec<String> {
        let mut r = crate::sources::simulator::rng::Rng::new(7);
        let mut below = |n: usize| (r.next_u64() % n as u64) as usize;
        let all = all_addresses(s);
        let mut out = Vec::new();
        for i in 0..n {
            let a = &all[below(all.len())];
            let at = a.find('@').expect("an address");
            let mut b = a.clone().into_bytes();
            let len = b.len();
            match i % 6 {
                0 => b.truncate(1 + below(len)),
                1 => b.swap(at - 1, at - 2),
                2 => {
                    b.remove(below(len));
                }
                3 => {
                    let j = below(len);
                    b[j] = b'a' + below(26) as u8;
                    b.truncate(j + 1 + below(len - j));
                }
                4 => b = a.as_bytes()[at + 1..at + 2 + below(len - at - 1)].to_vec(),
                _ => {
                    b.truncate(at);
                    b.remove(below(at));
                }
            }
            let q = String::from_utf8(b).expect("ascii");
            if !q.bytes().any(|c| c.is_ascii_digit()) {
                out.push(q);
            }
        }
        out
    }

    /// The general index fed with every address of the simulator, one by
    /// one, answers like the simulator's own index (same hits, same order)
    /// for queries without digits, where the simulator's number rule does
    /// not apply.
    #[test]
    fn an_address_index_of_the_same_addresses_answers_alike() {
        use crate::lookup::{AddressIndex, Found as AddressFound, TenantEntry};
        let s = default_sim();
        let domains: Vec<Vec<String>> = s
            .tenants
            .iter()
            .map(|t| (0..t.domains).map(|d| t.domain(d)).collect())
            .collect();
        let entries: Vec<TenantEntry> = s
            .tenants
            .iter()
            .zip(&domains)
            .map(|(t, d)| TenantEntry {
                name: &t.name,
                domains: d,
            })
            .collect();
        let addresses: Vec<(u32, String)> = (0..s.tenants.len())
            .flat_map(|ti| (0..s.tenants[ti].count).map(move |j| (ti as u32, s.address(ti, j))))
            .collect();
        let ix = AddressIndex::build(&entries, addresses.iter().map(|(t, a)| (*t, a.as_str())));
        let sim_text = |f: &Found| match f {
            Hit::Mailbox(Mailbox { tenant, domain, k }) => {
                let t = &s.tenants[*tenant as usize];
                format!("{}@{}", names::local_part(*k), t.domain(*domain as u32))
            }
            Hit::Domain { tenant, domain } => {
                format!("{} of {tenant}", s.index.domain_name(*domain))
            }
            Hit::Tenant(t) => format!("tenant {t}"),
        };
        let ix_text = |f: &AddressFound| match f {
            AddressFound::Mailbox { mailbox, .. } => ix.address(*mailbox).to_string(),
            AddressFound::Domain { tenant, domain } => format!("{domain} of {tenant}"),
            AddressFound::Tenant(t) => format!("tenant {t}"),
        };
        let extra = varied_queries(s, 600);
        for q in extra.iter().map(String::as_str).chain([
            "a",
            "al",
            "alice",
            "alice.smith",
            "alice.smith@",
            "alice.smith@a",
            "alice.smith@acme-title",
            "alcie.smith@acme-title.com",
            "alice.smtih@acme-title",
            "alice.smith@acme-titel.com",
            "alcie.smith@acme-titel",
            "bob.smiht@relief-without-borders.org",
            "zoe.sm",
            "kofi.",
            "acme",
            "acme-title",
            "acme-titel.com",
            "acmetitle.com",
            "releif-without-borders.org",
            "relief-with",
            "title",
            "escrow",
            "acme titel & escrow",
            "relief withuot borders",
            "mallory.smith@ri",
            "nobody@nowhere.example",
        ]) {
            for limit in [1, 20, 200] {
                let want: Vec<String> = s.index.search(q, limit).iter().map(sim_text).collect();
                let got: Vec<String> = ix.search(q, limit).iter().map(ix_text).collect();
                assert_eq!(got, want, "{q:?} limit {limit}");
            }
        }
    }

    #[test]
    fn limits_are_honoured() {
        let s = default_sim();
        for q in [
            "a",
            "alice",
            "acme",
            "alice.smith@",
            "alcie.smith@acme-title",
            "t0",
            "1",
        ] {
            for limit in [0, 1, 2, 5, 20, 100] {
                assert!(s.lookup(q, limit).matches.len() <= limit, "{q:?} {limit}");
            }
            assert!(s.lookup(q, 0).matches.is_empty());
        }
        assert_eq!(s.lookup("a", 100).matches.len(), 100);
    }

    #[test]
    fn garbage_and_unicode_do_not_panic() {
        let s = default_sim();
        let long = "ä".repeat(300);
        let at = "@".repeat(600);
        for q in [
            "@",
            "@@",
            "@.",
            ".",
            "..",
            "-",
            "@acme-title.com",
            "alice.smith@",
            "ÄLICE.SMITH@ACME-TITLE.COM",
            "ß",
            "İ",
            "\u{10FFFF}",
            "🦀@🦀",
            "alice.smith0@acme-title.com",
            "alice.smith007@x",
            "alice.smith99999999999999999999999999@acme-title.com",
            "alice.smith18446744073709551616",
            long.as_str(),
            at.as_str(),
            "a\u{0}b",
            "   ",
            "\t",
            "acme title & escrow &&&& ",
        ] {
            for limit in [1, 20] {
                let hits = s.lookup(q, limit).matches;
                assert!(hits.len() <= limit, "{q:?}");
            }
        }
        let s = numbered_sim();
        for q in [
            "alice.smith2",
            "alice.smith29@",
            "alice.smith1",
            "alice.smith0",
            "alice.smith2@x",
        ] {
            assert!(s.lookup(q, 20).matches.len() <= 20);
        }
    }

    #[test]
    fn results_are_deterministic() {
        let a = default_sim();
        let b = Simulator::new(SimConfig::default()).unwrap();
        for q in ["acme", "alcie.smith@acme-titel", "zoe.sm", "title"] {
            assert_eq!(a.lookup(q, 20), b.lookup(q, 20), "{q:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 300,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        #[test]
        fn any_query_returns_at_most_limit(q in "\\PC{0,40}", limit in 0usize..40) {
            let hits = default_sim().lookup(&q, limit).matches;
            prop_assert!(hits.len() <= limit);
        }

        #[test]
        fn address_like_queries_return_at_most_limit(
            q in "[a-z0-9.@ &-]{0,30}",
            limit in 0usize..40,
        ) {
            prop_assert!(default_sim().lookup(&q, limit).matches.len() <= limit);
            prop_assert!(numbered_sim().lookup(&q, limit).matches.len() <= limit);
        }
    }
}
