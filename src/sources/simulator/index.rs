//! Prefix and fuzzy lookup over mailbox addresses, domains and tenant names,
//! built once when the simulator starts (addresses never change in a run).
//!
//! Mailbox addresses are never stored. An address is `local@domain` where
//! the local part of the `k`-th mailbox of a domain is one of 4,096 bases
//! (`first.last`) plus an optional number (`alice.smith2` after 4,096), so
//! the index keeps:
//!
//! - the domains, sorted, back to back in one buffer, each with its tenant,
//!   its number within the tenant and how many mailboxes it has (`n`): the
//!   mailbox `k` exists on a domain iff `k < n`. Block maxima of `n` (per 64
//!   and per 4,096 domains) find the next domain holding mailbox `k` without
//!   walking them all;
//! - the domains again in the order of their stem (the part before the first
//!   dot), so `acme-title` finds `acme-title.com` before `acme-title-77.com`;
//! - the lowercase tenant names back to back, and every word start in them
//!   sorted by the text that follows (a word-level suffix array), so `title`
//!   finds "Acme Title & Escrow";
//! - the 4,096 local-part bases, sorted.
//!
//! Every sorted set is searched the same way: a walk down the implicit trie
//! of the sorted strings (children found by binary search) carrying an
//! optimal-string-alignment edit-distance row for the query, pruned as soon
//! as the row's minimum exceeds the allowed distance (0 for queries shorter
//! than 4 bytes, 1 up to 7, 2 from 8 to 64, 0 beyond). The walk yields
//! ranges of the sorted set with a score `3d` (the whole string is within
//! `d` edits), `3d + 1` (a domain whose stem is within `d` edits) or `3d + 2`
//! (a prefix of it is). A query `local@domain` combines a local-part score
//! (whole local part only) with a domain score; a query without `@` is
//! matched as a prefix of local parts, domains and tenant-name words.
//! Results come by score level (0: exact, 1-2: prefix, then misspellings by
//! distance), then in byte order of the matched text within a level: a
//! deterministic order, lexicographic for plain prefix matches.
//!
//! Per-query cost is bounded: the walk visits at most `NODE_BUDGET` trie
//! nodes per set, and results stop at `limit`.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::names;

/// Number of local-part bases: `local_part(k)` for `k < BASES` has no number.
const BASES: u64 = (names::FIRST.len() * names::LAST.len()) as u64;
/// Trie nodes one fuzzy walk may visit, per sorted set.
const NODE_BUDGET: u32 = 200_000;
/// Longest query (or part of one) that is searched with misspellings.
const MAX_FUZZY_BYTES: usize = 64;
const NONE: u8 = u8::MAX;
/// Highest score level: local 3·2 + domain 3·2 + 2.
const MAX_LEVEL: u8 = 14;
const B1: usize = 64;
const B2: usize = 4096;

/// Edit distance allowed for a query (part) of `len` bytes.
fn max_distance(len: usize) -> u16 {
    match len {
        0..=3 => 0,
        4..=7 => 1,
        8..=MAX_FUZZY_BYTES => 2,
        _ => 0,
    }
}

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

/// What a search found, in result order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Found {
    /// Mailbox number `k` on domain number `domain` of `tenant`.
    Mailbox { tenant: u32, domain: u8, k: u64 },
    Domain { tenant: u32, domain: String },
    Tenant(u32),
}

// ------------------------------------------------------------ sorted sets

trait Sorted {
    fn len(&self) -> usize;
    fn get(&self, i: usize) -> &[u8];
}

/// Strings stored back to back.
#[derive(Default)]
struct Packed {
    text: Vec<u8>,
    ends: Vec<u32>,
}

impl Packed {
    fn push(&mut self, s: &[u8]) {
        self.text.extend_from_slice(s);
        self.ends.push(self.text.len() as u32);
    }

    fn heap_bytes(&self) -> usize {
        self.text.capacity() + 4 * self.ends.capacity()
    }
}

impl Sorted for Packed {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }
}

/// Domains in the order of their stems (the text before the first dot).
struct Stems<'a> {
    domains: &'a Packed,
    order: &'a [u32],
    lens: &'a [u16],
}

impl Sorted for Stems<'_> {
    fn len(&self) -> usize {
        self.order.len()
    }

    fn get(&self, i: usize) -> &[u8] {
        &self.domains.get(self.order[i] as usize)[..self.lens[i] as usize]
    }
}

/// The text of tenant names from each word start to the end of the name.
struct Words<'a> {
    text: &'a [u8],
    name_ends: &'a [u32],
    starts: &'a [u32],
    owners: &'a [u32],
}

impl Sorted for Words<'_> {
    fn len(&self) -> usize {
        self.starts.len()
    }

    fn get(&self, i: usize) -> &[u8] {
        &self.text[self.starts[i] as usize..self.name_ends[self.owners[i] as usize] as usize]
    }
}

/// First index in `lo..hi` where `f` is false (`f` true then false).
fn partition(mut lo: usize, mut hi: usize, f: impl Fn(usize) -> bool) -> usize {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if f(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// A range of a sorted set and its score: `3d` whole string within `d`
/// edits, `3d + 1` stem within `d` edits, `3d + 2` a prefix within `d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seg {
    lo: u32,
    hi: u32,
    score: u8,
}

/// Exact (score 0) and prefix (score 2) matches of `q`.
fn exact_prefix<S: Sorted>(set: &S, q: &[u8], out: &mut Vec<Seg>) {
    let n = set.len();
    let lo = partition(0, n, |i| set.get(i) < q);
    let hi = partition(lo, n, |i| set.get(i).starts_with(q));
    let e = partition(lo, hi, |i| set.get(i).len() == q.len());
    if e > lo {
        out.push(Seg {
            lo: lo as u32,
            hi: e as u32,
            score: 0,
        });
    }
    if hi > e {
        out.push(Seg {
            lo: e as u32,
            hi: hi as u32,
            score: 2,
        });
    }
}

/// Matches of `q` within `maxd` edits (optimal string alignment: insert,
/// delete, substitute, swap two neighbours), whole or as a prefix.
fn fuzzy<S: Sorted>(set: &S, q: &[u8], maxd: u16) -> Vec<Seg> {
    let mut out = Vec::new();
    if maxd == 0 || q.len() > MAX_FUZZY_BYTES {
        exact_prefix(set, q, &mut out);
        return out;
    }
    let w = q.len() + 1;
    let depth_max = q.len() + maxd as usize;
    let mut walk = Walk {
        set,
        q,
        maxd,
        rows: vec![0; (depth_max + 1) * w],
        out,
        budget: NODE_BUDGET,
    };
    for (i, v) in walk.rows[..w].iter_mut().enumerate() {
        *v = i as u16;
    }
    walk.node(0, set.len(), 0, 0, NONE);
    walk.out
}

struct Walk<'a, S> {
    set: &'a S,
    q: &'a [u8],
    maxd: u16,
    /// One edit-distance row per depth of the walk.
    rows: Vec<u16>,
    out: Vec<Seg>,
    budget: u32,
}

impl<S: Sorted> Walk<'_, S> {
    /// Strings `lo..hi` share their first `depth` bytes (the last is
    /// `prev`), whose distance row is `rows[depth]`; `best` is the best
    /// prefix score already recorded for all of them.
    fn node(&mut self, lo: usize, hi: usize, depth: usize, prev: u8, mut best: u8) {
        let set = self.set;
        let m = self.q.len();
        let w = m + 1;
        let dlast = self.rows[depth * w + m];
        // Strings equal to the shared prefix sort first.
        let e = partition(lo, hi, |i| set.get(i).len() == depth);
        if dlast <= self.maxd {
            let d = dlast as u8;
            if e > lo {
                self.out.push(Seg {
                    lo: lo as u32,
                    hi: e as u32,
                    score: 3 * d,
                });
            }
            if e < hi && 3 * d + 2 < best {
                best = 3 * d + 2;
                self.out.push(Seg {
                    lo: e as u32,
                    hi: hi as u32,
                    score: best,
                });
            }
        }
        if depth >= m + self.maxd as usize {
            return;
        }
        let mut i = e;
        while i < hi {
            if self.budget == 0 {
                return;
            }
            self.budget -= 1;
            let c = set.get(i)[depth];
            let j = partition(i, hi, |x| set.get(x)[depth] <= c);
            let (done, next) = self.rows.split_at_mut((depth + 1) * w);
            let cur = &done[depth * w..];
            let next = &mut next[..w];
            next[0] = depth as u16 + 1;
            let mut min = next[0];
            for col in 1..=m {
                let cost = (self.q[col - 1] != c) as u16;
                let mut v = (cur[col] + 1).min(next[col - 1] + 1).min(cur[col - 1] + cost);
                if col > 1 && depth > 0 && self.q[col - 1] == prev && self.q[col - 2] == c {
                    v = v.min(done[(depth - 1) * w + col - 2] + 1);
                }
                next[col] = v;
                min = min.min(v);
            }
            if min <= self.maxd {
                self.node(i, j, depth + 1, c, best);
            }
            i = j;
        }
    }
}

// ------------------------------------------------------------ domains

/// Mailboxes per domain, with block maxima to skip domains that do not
/// have mailbox `k`.
#[derive(Default)]
struct Counts {
    n: Vec<u32>,
    b1: Vec<u32>,
    b2: Vec<u32>,
}

impl Counts {
    fn new(n: Vec<u32>) -> Self {
        let b1 = n.chunks(B1).map(|c| c.iter().copied().max().unwrap_or(0)).collect();
        let b2 = n.chunks(B2).map(|c| c.iter().copied().max().unwrap_or(0)).collect();
        Counts { n, b1, b2 }
    }

    /// First domain in `i..end` that has mailbox `k`.
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
    }
}

// ------------------------------------------------------------ local parts

/// Calls `f(n)` for the local-part numbers `n` in `1..=nmax` (written
/// `n + 1`) whose digits start with `pre`, then `n = 0` (no digits) when
/// `pre` is empty, in the byte order of `digits@`: digits sort before `@`,
/// so `alice.smith20@` < `alice.smith2@` < `alice.smith@`.
fn numbers(pre: &[u8], nmax: u64, f: &mut impl FnMut(u64) -> ControlFlow<()>) -> ControlFlow<()> {
    fn visit(
        v: u64,
        top: u64,
        f: &mut impl FnMut(u64) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        if v > top {
            return ControlFlow::Continue(());
        }
        for d in 0..10 {
            if let Some(c) = v.checked_mul(10).and_then(|x| x.checked_add(d)) {
                visit(c, top, f)?;
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
    match std::str::from_utf8(pre).ok().and_then(|s| s.parse::<u64>().ok()) {
        Some(v) => visit(v, top, f),
        None => ControlFlow::Continue(()),
    }
}

/// How the trailing digits of a queried local part are matched.
#[derive(Debug, Clone, Copy)]
enum Digits {
    /// None given: number 0 (address), any number (prefix).
    None,
    /// Valid digits: exactly that number (address); numbers written with
    /// these leading digits (prefix).
    Given,
    /// Digits no local part has (`1`, `007`, too long): read as typos.
    Typo(u16),
}

struct LocalPlan<'q> {
    /// Whole local part (`local@…`) or a prefix of addresses (no `@`).
    address: bool,
    digits: Digits,
    pre: &'q [u8],
    maxd: u16,
    /// (sorted base position, best whole score, best prefix score).
    bases: Vec<(u16, u8, u8)>,
}

// ------------------------------------------------------------ the index

pub(super) struct LookupIndex {
    domains: Packed,
    dom_tenant: Vec<u32>,
    dom_num: Vec<u8>,
    counts: Counts,
    stem_order: Vec<u32>,
    stem_lens: Vec<u16>,
    names: Vec<u8>,
    name_ends: Vec<u32>,
    word_starts: Vec<u32>,
    word_owners: Vec<u32>,
    bases: Packed,
    base_k: Vec<u16>,
    /// One more than the largest local-part number of any domain.
    kmax: u64,
}

/// Results of one level of one kind, before the kinds are merged.
struct Batch {
    items: Vec<(Vec<u8>, u8, Found)>,
}

impl LookupIndex {
    pub(super) fn build<'a>(tenants: impl IntoIterator<Item = Entry<'a>>) -> Self {
        let t0 = Instant::now();
        let mut raw = Packed::default();
        let mut raw_meta: Vec<(u32, u8, u32)> = Vec::new();
        let mut names_text = Vec::new();
        let mut name_ends = Vec::new();
        let mut words: Vec<(u32, u32)> = Vec::new();
        let mut mailboxes = 0u64;
        for (ti, e) in tenants.into_iter().enumerate() {
            let ti = ti as u32;
            let start = names_text.len();
            names_text.extend_from_slice(e.name.to_lowercase().as_bytes());
            for i in start..names_text.len() {
                if names_text[i] != b' ' && (i == start || names_text[i - 1] == b' ') {
                    words.push((i as u32, ti));
                }
            }
            name_ends.push(names_text.len() as u32);
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
                raw_meta.push((ti, d as u8, n.min(u32::MAX as u64) as u32));
            }
        }

        // Domains, sorted (and deduplicated: first tenant wins).
        let mut order: Vec<u32> = (0..raw.len() as u32).collect();
        order.sort_by(|&a, &b| raw.get(a as usize).cmp(raw.get(b as usize)));
        order.dedup_by(|a, b| raw.get(*a as usize) == raw.get(*b as usize));
        let mut domains = Packed {
            text: Vec::with_capacity(raw.text.len()),
            ends: Vec::with_capacity(order.len()),
        };
        let mut dom_tenant = Vec::with_capacity(order.len());
        let mut dom_num = Vec::with_capacity(order.len());
        let mut n = Vec::with_capacity(order.len());
        for &i in &order {
            domains.push(raw.get(i as usize));
            let (t, d, c) = raw_meta[i as usize];
            dom_tenant.push(t);
            dom_num.push(d);
            n.push(c);
        }
        drop((raw, raw_meta, order));
        let kmax = n.iter().copied().max().unwrap_or(0) as u64;
        let counts = Counts::new(n);

        let stem_len = |i: usize| {
            let s = domains.get(i);
            s.iter().position(|&b| b == b'.').unwrap_or(s.len()).min(u16::MAX as usize)
        };
        let mut stem_order: Vec<u32> = (0..domains.len() as u32).collect();
        stem_order.sort_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            domains.get(a)[..stem_len(a)].cmp(&domains.get(b)[..stem_len(b)])
        });
        let stem_lens = stem_order.iter().map(|&i| stem_len(i as usize) as u16).collect();

        words.sort_by(|&(a, ta), &(b, tb)| {
            let sa = &names_text[a as usize..name_ends[ta as usize] as usize];
            let sb = &names_text[b as usize..name_ends[tb as usize] as usize];
            sa.cmp(sb).then(a.cmp(&b))
        });
        let (word_starts, word_owners) = words.into_iter().unzip();

        let mut base_list: Vec<(String, u16)> =
            (0..BASES).map(|k| (names::local_part(k), k as u16)).collect();
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

        let index = LookupIndex {
            domains,
            dom_tenant,
            dom_num,
            counts,
            stem_order,
            stem_lens,
            names: names_text,
            name_ends,
            word_starts,
            word_owners,
            bases,
            base_k,
            kmax,
        };
        let stats = IndexStats {
            heap_bytes: index.heap_bytes(),
            build_time: t0.elapsed(),
            domains: index.domains.len(),
            tenant_words: index.word_starts.len(),
            mailboxes,
        };
        tracing::debug!(?stats, "lookup index built");
        *LAST_STATS.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
        index
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.domains.heap_bytes()
            + 4 * self.dom_tenant.capacity()
            + self.dom_num.capacity()
            + self.counts.heap_bytes()
            + 4 * self.stem_order.capacity()
            + 2 * self.stem_lens.capacity()
            + self.names.capacity()
            + 4 * self.name_ends.capacity()
            + 4 * self.word_starts.capacity()
            + 4 * self.word_owners.capacity()
            + self.bases.heap_bytes()
            + 2 * self.base_k.capacity()
    }

    fn stems(&self) -> Stems<'_> {
        Stems {
            domains: &self.domains,
            order: &self.stem_order,
            lens: &self.stem_lens,
        }
    }

    fn words(&self) -> Words<'_> {
        Words {
            text: &self.names,
            name_ends: &self.name_ends,
            starts: &self.word_starts,
            owners: &self.word_owners,
        }
    }

    /// Up to `limit` matches of a lowercase, trimmed query: exact first,
    /// then prefix, then misspellings by distance; byte order of the matched
    /// text within a level.
    pub(super) fn search(&self, q: &str, limit: usize) -> Vec<Found> {
        let q = q.as_bytes();
        if q.is_empty() || limit == 0 {
            return Vec::new();
        }
        let found = self.run(q, limit, false);
        let fuzzy_helps = match q.iter().rposition(|&b| b == b'@') {
            Some(at) => max_distance(at) > 0 || max_distance(q.len() - at - 1) > 0,
            None => max_distance(q.len()) > 0,
        };
        if found.len() >= limit || !fuzzy_helps {
            return found;
        }
        self.run(q, limit, true)
    }

    fn run(&self, q: &[u8], limit: usize, fuzzy: bool) -> Vec<Found> {
        let dist = |len| if fuzzy { max_distance(len) } else { 0 };
        let (tenant_segs, domain_segs, local, mailbox_domains) =
            match q.iter().rposition(|&b| b == b'@') {
                Some(at) => {
                    let (l, d) = (&q[..at], &q[at + 1..]);
                    let doms = self.domain_segs(d, dist(d.len()));
                    (Vec::new(), Vec::new(), self.local_plan(l, true, dist(l.len())), doms)
                }
                None => {
                    let all = vec![Seg {
                        lo: 0,
                        hi: self.domains.len() as u32,
                        score: 0,
                    }];
                    let mut tenants = fuzzy_all(&self.words(), q, dist(q.len()));
                    sort_segs(&mut tenants);
                    (
                        tenants,
                        self.domain_segs(q, dist(q.len())),
                        self.local_plan(q, false, dist(q.len())),
                        all,
                    )
                }
            };
        let mut out = Vec::new();
        let mut seen_t = HashSet::new();
        let mut seen_d = HashSet::new();
        let mut seen_m = HashSet::new();
        for level in 0..=MAX_LEVEL {
            let need = limit - out.len();
            if need == 0 {
                break;
            }
            let mut batch = Batch { items: Vec::new() };
            self.tenants_at(&tenant_segs, level, need, &mut seen_t, &mut batch);
            self.domains_at(&domain_segs, level, need, &mut seen_d, &mut batch);
            self.mailboxes_at(&local, &mailbox_domains, level, need, &mut seen_m, &mut batch);
            batch.items.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            out.extend(batch.items.into_iter().take(need).map(|(_, _, f)| f));
        }
        out
    }

    /// Domains matching `q`: whole or prefix (scores 3d, 3d + 2), or by stem
    /// (3d + 1), sorted by score then position.
    fn domain_segs(&self, q: &[u8], maxd: u16) -> Vec<Seg> {
        let mut segs = fuzzy_all(&self.domains, q, maxd);
        let stems = self.stems();
        for s in fuzzy_all(&stems, q, maxd) {
            if s.score % 3 != 0 {
                continue;
            }
            for i in s.lo..s.hi {
                let d = self.stem_order[i as usize];
                segs.push(Seg {
                    lo: d,
                    hi: d + 1,
                    score: s.score + 1,
                });
            }
        }
        sort_segs(&mut segs);
        segs
    }

    fn local_plan<'q>(&self, l: &'q [u8], address: bool, maxd: u16) -> LocalPlan<'q> {
        let split = l.len() - l.iter().rev().take_while(|b| b.is_ascii_digit()).count();
        let (alpha, pre) = l.split_at(split);
        let digits = if pre.is_empty() {
            Digits::None
        } else {
            let mut any = false;
            let _ = numbers(pre, u64::MAX - 1, &mut |_| {
                any = true;
                ControlFlow::Break(())
            });
            if any {
                Digits::Given
            } else {
                Digits::Typo(pre.len().min(u16::MAX as usize) as u16)
            }
        };
        let mut full = vec![NONE; self.bases.len()];
        let mut part = vec![NONE; self.bases.len()];
        for s in fuzzy_all(&self.bases, alpha, maxd) {
            let slot = if s.score % 3 == 0 { &mut full } else { &mut part };
            for v in &mut slot[s.lo as usize..s.hi as usize] {
                *v = (*v).min(s.score);
            }
        }
        let bases = (0..self.bases.len())
            .filter(|&i| full[i] != NONE || part[i] != NONE)
            .map(|i| (i as u16, full[i], part[i]))
            .collect();
        LocalPlan {
            address,
            digits,
            pre,
            maxd,
            bases,
        }
    }

    fn tenants_at(
        &self,
        segs: &[Seg],
        level: u8,
        need: usize,
        seen: &mut HashSet<u32>,
        batch: &mut Batch,
    ) {
        let words = self.words();
        let mut taken = 0;
        for s in segs.iter().filter(|s| s.score == level) {
            for i in s.lo as usize..s.hi as usize {
                if taken == need {
                    return;
                }
                let t = self.word_owners[i];
                if seen.insert(t) {
                    batch.items.push((words.get(i).to_vec(), 0, Found::Tenant(t)));
                    taken += 1;
                }
            }
        }
    }

    fn domains_at(
        &self,
        segs: &[Seg],
        level: u8,
        need: usize,
        seen: &mut HashSet<u32>,
        batch: &mut Batch,
    ) {
        let mut taken = 0;
        for s in segs.iter().filter(|s| s.score == level) {
            for i in s.lo..s.hi {
                if taken == need {
                    return;
                }
                if seen.insert(i) {
                    let name = self.domains.get(i as usize);
                    batch.items.push((
                        name.to_vec(),
                        1,
                        Found::Domain {
                            tenant: self.dom_tenant[i as usize],
                            domain: String::from_utf8_lossy(name).into_owned(),
                        },
                    ));
                    taken += 1;
                }
            }
        }
    }

    /// Mailboxes at one score level, in address order: local parts in
    /// `local@` order, then domains in order.
    fn mailboxes_at(
        &self,
        plan: &LocalPlan,
        doms: &[Seg],
        level: u8,
        need: usize,
        seen: &mut HashSet<(u64, u32)>,
        batch: &mut Batch,
    ) {
        if self.kmax == 0 || need == 0 {
            return;
        }
        let nmax = (self.kmax - 1) / BASES;
        let mut taken = 0;
        // All mailboxes with local part `k` whose local score is `sl`.
        let mut emit = |k: u64, sl: u8| -> ControlFlow<()> {
            if k >= self.kmax || sl > level {
                return ControlFlow::Continue(());
            }
            let want = level - sl;
            for s in doms.iter().filter(|s| s.score == want) {
                let mut i = s.lo as usize;
                while let Some(d) = self.counts.next(i, s.hi as usize, k) {
                    if seen.insert((k, d as u32)) {
                        let mut key = names::local_part(k).into_bytes();
                        key.push(b'@');
                        key.extend_from_slice(self.domains.get(d));
                        batch.items.push((
                            key,
                            2,
                            Found::Mailbox {
                                tenant: self.dom_tenant[d],
                                domain: self.dom_num[d],
                                k,
                            },
                        ));
                        taken += 1;
                        if taken == need {
                            return ControlFlow::Break(());
                        }
                    }
                    i = d + 1;
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
                    Digits::Given => numbers(plan.pre, nmax, &mut |n| {
                        // Only the number written exactly as given.
                        if (n + 1).to_string().as_bytes() == plan.pre {
                            emit(n * BASES + base, full)
                        } else {
                            ControlFlow::Continue(())
                        }
                    }),
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
                    Digits::Given => full / 3,
                    Digits::Typo(extra) => {
                        let d = full as u16 / 3 + extra;
                        if d > plan.maxd {
                            continue;
                        }
                        d as u8
                    }
                };
                let pre = match plan.digits {
                    Digits::Given => plan.pre,
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

fn fuzzy_all<S: Sorted>(set: &S, q: &[u8], maxd: u16) -> Vec<Seg> {
    fuzzy(set, q, maxd)
}

fn sort_segs(segs: &mut [Seg]) {
    segs.sort_by(|a, b| (a.score, a.lo, std::cmp::Reverse(a.hi)).cmp(&(b.score, b.lo, std::cmp::Reverse(b.hi))));
}
