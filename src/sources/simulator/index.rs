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
//! - the lowercase tenant names back to back, and every word start in them
//!   sorted by the text that follows (a word-level suffix array), so `title`
//!   finds "Acme Title & Escrow";
//! - the 4,096 local-part bases, sorted;
//! - for each of these sorted sets, the top three levels of its trie with
//!   their children listed (a few thousand nodes in all).
//!
//! Every sorted set is searched the same way: a walk down the implicit trie
//! of the sorted strings (children from the cached top, then by galloping
//! search) carrying the band of an optimal-string-alignment edit-distance
//! row for the query (insert, delete, replace, swap), pruned as soon
//! as the row's minimum exceeds the allowed distance (0 for queries shorter
//! than 4 bytes, 1 up to 7, 2 from 8 to 64, 0 beyond). The walk yields
//! ranges of the sorted set with a score `3d` (the whole string is within
//! `d` edits), `3d + 1` (a domain whose stem, its text before a dot, is
//! within `d` edits) or `3d + 2` (a prefix of it is). A query `local@domain` combines a local-part score
//! (whole local part only) with a domain score; a query without `@` is
//! matched as a prefix of local parts, domains and tenant-name words.
//! Results come by score level (0: exact, 1-2: prefix, then misspellings by
//! distance), then in byte order of the matched text within a level: a
//! deterministic order, lexicographic for plain prefix matches.
//!
//! Per-query cost is bounded: the walk visits at most `NODE_BUDGET` trie
//! nodes per set, and results stop at `limit`. Exact and prefix ranges are
//! also found by binary search, so a walk cut short loses no exact or prefix
//! match. Measurements: docs/lookup-benchmark.md.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::names;

/// Number of local-part bases: `local_part(k)` for `k < BASES` has no number.
const BASES: u64 = (names::FIRST.len() * names::LAST.len()) as u64;
/// Trie nodes one fuzzy walk may visit, per sorted set.
const NODE_BUDGET: u32 = 100_000;
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
    Mailbox {
        tenant: u32,
        domain: u8,
        k: u64,
    },
    Domain {
        tenant: u32,
        domain: String,
    },
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

/// The text of tenant names from each word start to the end of the name:
/// (start, end) in `text`.
struct Words<'a> {
    text: &'a [u8],
    spans: &'a [(u32, u32)],
}

impl Sorted for Words<'_> {
    fn len(&self) -> usize {
        self.spans.len()
    }

    fn get(&self, i: usize) -> &[u8] {
        let (a, b) = self.spans[i];
        &self.text[a as usize..b as usize]
    }
}

/// The first levels of a sorted set's implicit trie with their children
/// listed: walks skip the searches over its widest ranges.
#[derive(Default)]
struct Top {
    nodes: Vec<TopNode>,
}

#[derive(Clone, Copy)]
struct TopNode {
    lo: u32,
    hi: u32,
    /// End of the strings equal to the node's prefix.
    eq: u32,
    byte: u8,
    children: u32,
    count: u32,
}

/// Depths whose nodes list their children.
const TOP_DEPTH: usize = 3;
const NO_TOP: u32 = u32::MAX;

impl Top {
    fn build<S: Sorted>(set: &S) -> Self {
        let mut nodes = vec![TopNode {
            lo: 0,
            hi: set.len() as u32,
            eq: 0,
            byte: 0,
            children: 0,
            count: 0,
        }];
        let mut level = 0..1;
        for depth in 0..TOP_DEPTH {
            let start = nodes.len();
            for t in level.clone() {
                let (lo, hi) = (nodes[t].lo as usize, nodes[t].hi as usize);
                let eq = partition(lo, hi, |i| set.get(i).len() == depth);
                let first = nodes.len() as u32;
                let mut i = eq;
                while i < hi {
                    let c = set.get(i)[depth];
                    let j = partition(i, hi, |x| set.get(x)[depth] == c);
                    nodes.push(TopNode {
                        lo: i as u32,
                        hi: j as u32,
                        eq: 0,
                        byte: c,
                        children: 0,
                        count: 0,
                    });
                    i = j;
                }
                let count = nodes.len() as u32 - first;
                let n = &mut nodes[t];
                n.eq = eq as u32;
                n.children = first;
                n.count = count;
            }
            level = start..nodes.len();
        }
        Top { nodes }
    }

    fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<TopNode>()
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

/// Like `partition`, for `f(lo)` true and a short run: doubling steps
/// from `lo`, then a binary search (cost grows with the run, not the range).
fn gallop(lo: usize, hi: usize, f: impl Fn(usize) -> bool) -> usize {
    let mut step = 1;
    let mut a = lo;
    while a + step < hi && f(a + step) {
        a += step;
        step *= 2;
    }
    partition(a + 1, (a + step).min(hi), f)
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
/// delete, substitute, swap two neighbours), whole or as a prefix; with
/// `stems`, also strings whose text before a `.` is within `maxd` edits.
fn fuzzy<S: Sorted>(set: &S, top: &Top, q: &[u8], maxd: u16, stems: bool) -> Vec<Seg> {
    // Exact, stem and prefix matches by binary search, even when the walk
    // below finds them too: a walk cut short by its budget loses none.
    let mut out = Vec::new();
    exact_prefix(set, q, &mut out);
    if stems {
        let mut dotted = q.to_vec();
        dotted.push(b'.');
        let n = set.len();
        let lo = partition(0, n, |i| set.get(i) < &dotted[..]);
        let hi = partition(lo, n, |i| set.get(i).starts_with(&dotted));
        if hi > lo {
            out.push(Seg {
                lo: lo as u32,
                hi: hi as u32,
                score: 1,
            });
        }
    }
    if maxd == 0 || q.len() > MAX_FUZZY_BYTES {
        return out;
    }
    let w = q.len() + 1;
    let depth_max = q.len() + maxd as usize;
    let mut walk = Walk {
        set,
        top,
        q,
        maxd,
        stems,
        rows: vec![0; (depth_max + 1) * w],
        out,
        budget: NODE_BUDGET,
    };
    for (i, v) in walk.rows[..w].iter_mut().enumerate() {
        *v = i as u16;
    }
    let root = if top.nodes.is_empty() { NO_TOP } else { 0 };
    walk.node(0, set.len(), 0, 0, NONE, root);
    walk.out
}

struct Walk<'a, S> {
    set: &'a S,
    top: &'a Top,
    q: &'a [u8],
    maxd: u16,
    stems: bool,
    /// One edit-distance row per depth of the walk. Only the band of
    /// `maxd` cells either side of the diagonal is computed (cells farther
    /// out are above `maxd`), bounded by `maxd + 1` on both sides.
    rows: Vec<u16>,
    out: Vec<Seg>,
    budget: u32,
}

impl<S: Sorted> Walk<'_, S> {
    /// Strings `lo..hi` share their first `depth` bytes (the last is
    /// `prev`), whose distance row is `rows[depth]`; `best` is the best
    /// prefix score already recorded for all of them; `top` is the node in
    /// the cached top of the trie, if it is there.
    fn node(&mut self, lo: usize, hi: usize, depth: usize, prev: u8, mut best: u8, top: u32) {
        let set = self.set;
        let m = self.q.len();
        let w = m + 1;
        let maxd = self.maxd as usize;
        let inf = self.maxd + 1;
        let dlast = if m <= depth + maxd && depth <= m + maxd {
            self.rows[depth * w + m]
        } else {
            inf
        };
        let cached = (top != NO_TOP).then(|| self.top.nodes[top as usize]);
        // Strings equal to the shared prefix sort first.
        let e = match cached {
            Some(t) => t.eq as usize,
            None if lo < hi && set.get(lo).len() == depth => {
                gallop(lo, hi, |i| set.get(i).len() == depth)
            }
            None => lo,
        };
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
            if self.stems {
                // Strings continuing with a dot: the shared prefix is a stem.
                let (a, b) = match cached {
                    Some(t) => self.top.nodes[t.children as usize..][..t.count as usize]
                        .iter()
                        .find(|c| c.byte == b'.')
                        .map_or((0, 0), |c| (c.lo as usize, c.hi as usize)),
                    None => {
                        let a = partition(e, hi, |x| set.get(x)[depth] < b'.');
                        (a, partition(a, hi, |x| set.get(x)[depth] == b'.'))
                    }
                };
                if b > a {
                    self.out.push(Seg {
                        lo: a as u32,
                        hi: b as u32,
                        score: 3 * d + 1,
                    });
                }
            }
        }
        if depth >= m + maxd {
            return;
        }
        if let Some(t) = cached {
            for ci in t.children..t.children + t.count {
                if self.budget == 0 {
                    return;
                }
                self.budget -= 1;
                let c = self.top.nodes[ci as usize];
                if self.row(depth, c.byte, prev) <= self.maxd {
                    let next = if depth + 1 < TOP_DEPTH { ci } else { NO_TOP };
                    self.node(c.lo as usize, c.hi as usize, depth + 1, c.byte, best, next);
                }
            }
            return;
        }
        let mut i = e;
        while i < hi {
            if self.budget == 0 {
                return;
            }
            self.budget -= 1;
            let c = set.get(i)[depth];
            let j = gallop(i, hi, |x| set.get(x)[depth] == c);
            if self.row(depth, c, prev) <= self.maxd {
                self.node(i, j, depth + 1, c, best, NO_TOP);
            }
            i = j;
        }
    }

    /// Computes the row for depth + 1 (next byte `c`) from the rows above;
    /// returns its minimum.
    fn row(&mut self, depth: usize, c: u8, prev: u8) -> u16 {
        let m = self.q.len();
        let w = m + 1;
        let maxd = self.maxd as usize;
        let inf = self.maxd + 1;
        let first = (depth + 1).saturating_sub(maxd).max(1);
        let last = (depth + 1 + maxd).min(m);
        let (done, next) = self.rows.split_at_mut((depth + 1) * w);
        let cur = &done[depth * w..];
        let next = &mut next[..w];
        next[0] = (depth as u16 + 1).min(inf);
        if first > 1 {
            next[first - 1] = inf;
        }
        let mut min = next[0];
        for col in first..=last {
            let cost = (self.q[col - 1] != c) as u16;
            let mut v = (cur[col] + 1)
                .min(next[col - 1] + 1)
                .min(cur[col - 1] + cost);
            if col > 1 && depth > 0 && self.q[col - 1] == prev && self.q[col - 2] == c {
                v = v.min(done[(depth - 1) * w + col - 2] + 1);
            }
            let v = v.min(inf);
            next[col] = v;
            min = min.min(v);
        }
        if last < m {
            next[last + 1] = inf;
        }
        min
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
        let b1 = n
            .chunks(B1)
            .map(|c| c.iter().copied().max().unwrap_or(0))
            .collect();
        let b2 = n
            .chunks(B2)
            .map(|c| c.iter().copied().max().unwrap_or(0))
            .collect();
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
    fn visit(v: u64, top: u64, f: &mut impl FnMut(u64) -> ControlFlow<()>) -> ControlFlow<()> {
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
    names: Vec<u8>,
    name_ends: Vec<u32>,
    /// Word starts of tenant names, sorted by the text that follows.
    words: Vec<(u32, u32)>,
    domains_top: Top,
    words_top: Top,
    bases_top: Top,
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

        words.sort_by(|&(a, ta), &(b, tb)| {
            let sa = &names_text[a as usize..name_ends[ta as usize] as usize];
            let sb = &names_text[b as usize..name_ends[tb as usize] as usize];
            sa.cmp(sb).then(a.cmp(&b))
        });
        // (start, tenant) becomes (start, end of the name), in place.
        for w in &mut words {
            w.1 = name_ends[w.1 as usize];
        }
        words.shrink_to_fit();
        names_text.shrink_to_fit();
        name_ends.shrink_to_fit();

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

        let mut index = LookupIndex {
            domains,
            dom_tenant,
            dom_num,
            counts,
            names: names_text,
            name_ends,
            words,
            domains_top: Top::default(),
            words_top: Top::default(),
            bases_top: Top::default(),
            bases,
            base_k,
            kmax,
        };
        index.domains_top = Top::build(&index.domains);
        index.words_top = Top::build(&index.words());
        index.bases_top = Top::build(&index.bases);
        let stats = IndexStats {
            heap_bytes: index.heap_bytes(),
            build_time: t0.elapsed(),
            domains: index.domains.len(),
            tenant_words: index.words.len(),
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
            + self.names.capacity()
            + 4 * self.name_ends.capacity()
            + 8 * self.words.capacity()
            + self.domains_top.heap_bytes()
            + self.words_top.heap_bytes()
            + self.bases_top.heap_bytes()
            + self.bases.heap_bytes()
            + 2 * self.base_k.capacity()
    }

    fn words(&self) -> Words<'_> {
        Words {
            text: &self.names,
            spans: &self.words,
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

    fn run(&self, q: &[u8], limit: usize, misspelt: bool) -> Vec<Found> {
        let dist = |len| if misspelt { max_distance(len) } else { 0 };
        let (tenant_segs, domain_segs, local, mailbox_domains) =
            match q.iter().rposition(|&b| b == b'@') {
                Some(at) => {
                    let (l, d) = (&q[..at], &q[at + 1..]);
                    let doms = self.domain_segs(d, dist(d.len()));
                    (
                        Vec::new(),
                        Vec::new(),
                        self.local_plan(l, true, dist(l.len())),
                        doms,
                    )
                }
                None => {
                    let all = vec![Seg {
                        lo: 0,
                        hi: self.domains.len() as u32,
                        score: 0,
                    }];
                    let mut tenants =
                        fuzzy(&self.words(), &self.words_top, q, dist(q.len()), false);
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
            self.mailboxes_at(
                &local,
                &mailbox_domains,
                level,
                need,
                &mut seen_m,
                &mut batch,
            );
            batch.items.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            out.extend(batch.items.into_iter().take(need).map(|(_, _, f)| f));
        }
        out
    }

    /// Domains matching `q`: whole or prefix (scores 3d, 3d + 2), or by stem
    /// (3d + 1), sorted by score then position.
    fn domain_segs(&self, q: &[u8], maxd: u16) -> Vec<Seg> {
        let mut segs = fuzzy(&self.domains, &self.domains_top, q, maxd, true);
        sort_segs(&mut segs);
        segs
    }

    fn local_plan<'q>(&self, l: &'q [u8], address: bool, maxd: u16) -> LocalPlan<'q> {
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
        let mut full = vec![NONE; self.bases.len()];
        let mut part = vec![NONE; self.bases.len()];
        for s in fuzzy(&self.bases, &self.bases_top, alpha, maxd, false) {
            let slot = if s.score % 3 == 0 {
                &mut full
            } else {
                &mut part
            };
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
                let start = self.words[i].0;
                let t = self.name_ends.partition_point(|&e| e <= start) as u32;
                if seen.insert(t) {
                    batch
                        .items
                        .push((words.get(i).to_vec(), 0, Found::Tenant(t)));
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
                    Digits::Number(_) => plan.pre,
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

fn sort_segs(segs: &mut [Seg]) {
    segs.sort_by(|a, b| {
        (a.score, a.lo, std::cmp::Reverse(a.hi)).cmp(&(b.score, b.lo, std::cmp::Reverse(b.hi)))
    });
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

    fn text(h: &LookupHit) -> String {
        match h {
            LookupHit::Mailbox(m) => m.address.clone(),
            LookupHit::Domain { domain, .. } => domain.clone(),
            LookupHit::Tenant(t) => t.name.to_lowercase(),
        }
    }

    fn osa(a: &[u8], b: &[u8]) -> usize {
        let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for (i, row) in d.iter_mut().enumerate() {
            row[0] = i;
        }
        for (j, v) in d[0].iter_mut().enumerate() {
            *v = j;
        }
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let cost = (a[i - 1] != b[j - 1]) as usize;
                let mut v = (d[i - 1][j] + 1)
                    .min(d[i][j - 1] + 1)
                    .min(d[i - 1][j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(d[i - 2][j - 2] + 1);
                }
                d[i][j] = v;
            }
        }
        d[a.len()][b.len()]
    }

    fn packed(words: &[&str]) -> Packed {
        let mut v: Vec<&str> = words.to_vec();
        v.sort();
        v.dedup();
        let mut p = Packed::default();
        for w in v {
            p.push(w.as_bytes());
        }
        p
    }

    /// Best score of every string of `set` for `q`, by brute force.
    fn brute(set: &Packed, q: &[u8], maxd: usize) -> Vec<u8> {
        (0..set.len())
            .map(|i| {
                let s = set.get(i);
                let mut best = NONE;
                let d = osa(q, s);
                if d <= maxd {
                    best = best.min(3 * d as u8);
                }
                for p in 0..s.len() {
                    let d = osa(q, &s[..p]);
                    if d <= maxd {
                        best = best.min(3 * d as u8 + 2);
                    }
                    if s[p] == b'.' && d <= maxd {
                        best = best.min(3 * d as u8 + 1);
                    }
                }
                best
            })
            .collect()
    }

    /// Best score of every string of `set` by the walk, with and without
    /// the cached top of the trie (both must agree).
    fn walked(set: &Packed, q: &[u8], maxd: u16) -> Vec<u8> {
        let run = |top: &Top| {
            let mut best = vec![NONE; set.len()];
            for s in fuzzy(set, top, q, maxd, true) {
                for b in &mut best[s.lo as usize..s.hi as usize] {
                    *b = (*b).min(s.score);
                }
            }
            best
        };
        let cached = run(&Top::build(set));
        assert_eq!(
            cached,
            run(&Top::default()),
            "{:?}",
            String::from_utf8_lossy(q)
        );
        cached
    }

    #[test]
    fn the_banded_walk_scores_like_plain_edit_distance() {
        let set = packed(&[
            "acme-title.com",
            "acme-title.de",
            "acme-title2.com",
            "acme-tile.com",
            "acme-title-7.com",
            "acme",
            "acne.org",
            "cmae.net",
            "title.co.uk",
            "a",
            "ab",
            "ba.com",
        ]);
        for q in [
            "acme-titel.com",
            "acme-title",
            "acme",
            "acem",
            "cmae",
            "ab",
            "ba",
            "title.co",
            "titel.co.uk",
            "acme-title.com",
            "xx",
            "acme-title2",
        ] {
            for maxd in 0..=2u16 {
                let got = walked(&set, q.as_bytes(), maxd);
                let want = brute(&set, q.as_bytes(), maxd as usize);
                if maxd == 0 {
                    // The exact pass: whole, stem and prefix only.
                    assert_eq!(got, want, "{q:?} exact");
                } else {
                    assert_eq!(got, want, "{q:?} maxd {maxd}");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 200,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        #[test]
        fn walk_matches_brute_force_on_random_sets(
            words in proptest::collection::vec("[abc.]{0,6}", 1..20),
            q in "[abc.]{0,6}",
            maxd in 1..=2u16,
        ) {
            let refs: Vec<&str> = words.iter().map(String::as_str).collect();
            let set = packed(&refs);
            prop_assert_eq!(walked(&set, q.as_bytes(), maxd), brute(&set, q.as_bytes(), maxd as usize));
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
                    let hits = s.lookup(q, limit);
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
        let hits = numbered_sim().lookup("alice.smith", 3);
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
        let hits = s.lookup("acme-title", 20);
        assert!(
            matches!(&hits[0], LookupHit::Domain { domain, .. } if domain == "acme-title.com"),
            "{hits:?}"
        );
        let hits = s.lookup("relief-with", 5);
        assert!(
            matches!(&hits[0], LookupHit::Domain { domain, tenant } if domain == "relief-without-borders.org" && &*tenant.id == "t00001")
        );
        // Exact name, then names starting with it; any word of the name.
        let hits = s.lookup("Acme Title & Escrow", 5);
        assert!(matches!(&hits[0], LookupHit::Tenant(t) if &*t.id == "t00000"));
        let hits = s.lookup("escrow", 20);
        assert!(
            hits.iter()
                .any(|h| matches!(h, LookupHit::Tenant(t) if &*t.id == "t00000"))
        );
        let hits = s.lookup("acme", 20);
        assert_eq!(hits.len(), 20);
        // In byte order of the matched text: for a tenant, its name from
        // the matching word on.
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
        let hits = s.lookup(q, 20);
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
        assert!(s.lookup("nobody@nowhere.example", 20).is_empty());
        assert!(s.lookup("zzzzzzzzzzzz", 20).is_empty());
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
            Found::Mailbox { tenant, domain, k } => {
                let d = (0..ix.domains.len())
                    .find(|&i| ix.dom_tenant[i] == *tenant && ix.dom_num[i] == *domain)
                    .unwrap();
                format!(
                    "{}@{}",
                    names::local_part(*k),
                    String::from_utf8_lossy(ix.domains.get(d))
                )
            }
            Found::Domain { domain, .. } => domain.clone(),
            Found::Tenant(t) => format!("tenant {t}"),
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
                assert!(s.lookup(q, limit).len() <= limit, "{q:?} {limit}");
            }
            assert!(s.lookup(q, 0).is_empty());
        }
        assert_eq!(s.lookup("a", 100).len(), 100);
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
                let hits = s.lookup(q, limit);
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
            assert!(s.lookup(q, 20).len() <= 20);
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
            let hits = default_sim().lookup(&q, limit);
            prop_assert!(hits.len() <= limit);
        }

        #[test]
        fn address_like_queries_return_at_most_limit(
            q in "[a-z0-9.@ &-]{0,30}",
            limit in 0usize..40,
        ) {
            prop_assert!(default_sim().lookup(&q, limit).len() <= limit);
            prop_assert!(numbered_sim().lookup(&q, limit).len() <= limit);
        }
    }
}
