//! The search itself, shared by every index: sorted string sets, the walk
//! down their implicit trie with an edit-distance band, score levels, and
//! [`Catalog`] (tenant names and domains) with the level-by-level merge of
//! tenants, domains and mailboxes. What an index keeps of its mailboxes is
//! behind [`Mailboxes`]: explicit addresses ([`super::AddressIndex`]) or
//! the simulator's computed ones.

use std::collections::HashSet;

use super::{MatchQuality, Ranked};

/// Trie nodes one fuzzy walk may visit, per sorted set.
pub(crate) const NODE_BUDGET: u32 = 100_000;
/// Matches a search collects and ranks (affected first) before the limit
/// is applied; with more, the total is "at least" this many. 78 Acme
/// tenants and domains in the demo fit many times over; a query that
/// matches more than this is too broad to read through anyway.
pub const CANDIDATES: usize = 1_000;
/// Longest query (or part of one) that is searched with misspellings.
pub(crate) const MAX_FUZZY_BYTES: usize = 64;
/// No score (nothing matched).
pub(crate) const NONE: u8 = u8::MAX;
/// Highest score level: local 3·2 + domain 3·2 + 2.
pub(crate) const MAX_LEVEL: u8 = 14;

/// Edit distance allowed for a query (part) of `len` bytes.
pub(crate) fn max_distance(len: usize) -> u16 {
    match len {
        0..=3 => 0,
        4..=7 => 1,
        8..=MAX_FUZZY_BYTES => 2,
        _ => 0,
    }
}

// ------------------------------------------------------------ sorted sets

/// A set of byte strings in byte order, searched by [`fuzzy`].
pub(crate) trait Sorted {
    fn len(&self) -> usize;
    fn get(&self, i: usize) -> &[u8];
}

/// Strings stored back to back.
#[derive(Default)]
pub(crate) struct Packed {
    pub(crate) text: Vec<u8>,
    pub(crate) ends: Vec<u32>,
}

impl Packed {
    pub(crate) fn with_capacity(bytes: usize, strings: usize) -> Self {
        Packed {
            text: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(strings),
        }
    }

    pub(crate) fn push(&mut self, s: &[u8]) {
        self.text.extend_from_slice(s);
        self.ends.push(self.text.len() as u32);
    }

    pub(crate) fn heap_bytes(&self) -> usize {
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

/// Strings given as (start, end) in one text, in sorted order: the words
/// of tenant names (each to the end of its name), local parts.
pub(crate) struct Spans<'a> {
    pub(crate) text: &'a [u8],
    pub(crate) spans: &'a [(u32, u32)],
}

impl Sorted for Spans<'_> {
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
pub(crate) struct Top {
    nodes: Vec<TopNode>,
    /// Depths whose nodes list their children.
    depth: usize,
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

/// Depths whose nodes list their children, at least.
const TOP_DEPTH: usize = 3;
/// At most (see [`Top::build_within`]).
const TOP_MAX_DEPTH: usize = 8;
const NO_TOP: u32 = u32::MAX;

impl Top {
    /// The top `TOP_DEPTH` levels.
    pub(crate) fn build<S: Sorted>(set: &S) -> Self {
        Self::build_within(set, 0)
    }

    /// The top `TOP_DEPTH` levels, and more (up to `TOP_MAX_DEPTH`) while
    /// they hold at most `max_nodes` nodes: for big sets, whose walks would
    /// otherwise spend most of their time searching wide ranges far apart
    /// in memory.
    pub(crate) fn build_within<S: Sorted>(set: &S, max_nodes: usize) -> Self {
        let mut nodes = vec![TopNode {
            lo: 0,
            hi: set.len() as u32,
            eq: 0,
            byte: 0,
            children: 0,
            count: 0,
        }];
        let mut level = 0..1;
        let mut depth = 0;
        while depth < TOP_MAX_DEPTH && (depth < TOP_DEPTH || nodes.len() < max_nodes) {
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
            if depth >= TOP_DEPTH && nodes.len() > max_nodes {
                // One level too many: back to the previous one.
                nodes.truncate(start);
                break;
            }
            level = start..nodes.len();
            depth += 1;
            if level.is_empty() && depth >= TOP_DEPTH {
                break; // No string is longer.
            }
        }
        nodes.shrink_to_fit();
        Top { nodes, depth }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<TopNode>()
    }
}

/// First index in `lo..hi` where `f` is false (`f` true then false).
pub(crate) fn partition(mut lo: usize, mut hi: usize, f: impl Fn(usize) -> bool) -> usize {
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
pub(crate) struct Seg {
    pub(crate) lo: u32,
    pub(crate) hi: u32,
    pub(crate) score: u8,
}

/// How a result at score `level` matched. `partial`: a tenant found by a
/// later word of its name, which even whole is only part of the name
/// (`escrow` for "Acme Title & Escrow" is a prefix match, not exact).
pub(crate) fn quality(level: u8, partial: bool) -> MatchQuality {
    match level {
        0 if !partial => MatchQuality::Exact,
        0..=2 => MatchQuality::Prefix,
        _ => MatchQuality::Approximate,
    }
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
/// delete, substitute, swap two neighbours), whole or as a prefix; with a
/// `stem` byte, also strings whose text before that byte is within `maxd`
/// edits (domains use `.`: `acme-title` is the stem of `acme-title.com`).
/// The flag is true when the walk ran out of budget: some misspellings
/// may be missing (never an exact or prefix match).
pub(crate) fn fuzzy<S: Sorted>(
    set: &S,
    top: &Top,
    q: &[u8],
    maxd: u16,
    stem: Option<u8>,
) -> (Vec<Seg>, bool) {
    // Exact, stem and prefix matches by binary search, even when the walk
    // below finds them too: a walk cut short by its budget loses none.
    let mut out = Vec::new();
    exact_prefix(set, q, &mut out);
    if let Some(stem) = stem {
        let mut dotted = q.to_vec();
        dotted.push(stem);
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
        return (out, false);
    }
    let w = q.len() + 1;
    let depth_max = q.len() + maxd as usize;
    let mut walk = Walk {
        set,
        top,
        q,
        maxd,
        stem,
        rows: vec![0; (depth_max + 1) * w],
        out,
        budget: NODE_BUDGET,
        cut: false,
    };
    for (i, v) in walk.rows[..w].iter_mut().enumerate() {
        *v = i as u16;
    }
    let root = if top.nodes.is_empty() { NO_TOP } else { 0 };
    walk.node(0, set.len(), 0, 0, NONE, root);
    (walk.out, walk.cut)
}

struct Walk<'a, S> {
    set: &'a S,
    top: &'a Top,
    q: &'a [u8],
    maxd: u16,
    stem: Option<u8>,
    /// One edit-distance row per depth of the walk. Only the band of
    /// `maxd` cells either side of the diagonal is computed (cells farther
    /// out are above `maxd`), bounded by `maxd + 1` on both sides.
    rows: Vec<u16>,
    out: Vec<Seg>,
    budget: u32,
    /// The budget ran out with nodes left to visit.
    cut: bool,
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
            if let Some(stem) = self.stem {
                // Strings continuing with the stem byte: the shared prefix
                // is a stem.
                let (a, b) = match cached {
                    Some(t) => self.top.nodes[t.children as usize..][..t.count as usize]
                        .iter()
                        .find(|c| c.byte == stem)
                        .map_or((0, 0), |c| (c.lo as usize, c.hi as usize)),
                    None => {
                        let a = partition(e, hi, |x| set.get(x)[depth] < stem);
                        (a, partition(a, hi, |x| set.get(x)[depth] == stem))
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
                    self.cut = true;
                    return;
                }
                self.budget -= 1;
                let c = self.top.nodes[ci as usize];
                if self.row(depth, c.byte, prev) <= self.maxd {
                    let next = if depth + 1 < self.top.depth {
                        ci
                    } else {
                        NO_TOP
                    };
                    self.node(c.lo as usize, c.hi as usize, depth + 1, c.byte, best, next);
                }
            }
            return;
        }
        let mut i = e;
        while i < hi {
            if self.budget == 0 {
                self.cut = true;
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

/// Segments by score, then position (widest first at one position).
pub(crate) fn sort_segs(segs: &mut [Seg]) {
    segs.sort_by(|a, b| {
        (a.score, a.lo, std::cmp::Reverse(a.hi)).cmp(&(b.score, b.lo, std::cmp::Reverse(b.hi)))
    });
}

// ------------------------------------------------------------ results

/// What a search found, in result order; `M` names a mailbox the way its
/// index does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hit<M> {
    Mailbox(M),
    Domain { tenant: u32, domain: String },
    Tenant(u32),
}

/// One result of a level, before the kinds are merged.
pub(crate) struct Entry<M> {
    /// The matched text: sorted by it, then by `kind`.
    pub(crate) key: Vec<u8>,
    /// 0 tenant, 1 domain, 2 mailbox.
    pub(crate) kind: u8,
    pub(crate) hit: Hit<M>,
    /// A tenant found by a later word of its name: never an exact match.
    pub(crate) partial: bool,
}

impl<M> Entry<M> {
    pub(crate) fn mailbox(key: Vec<u8>, id: M) -> Self {
        Entry {
            key,
            kind: 2,
            hit: Hit::Mailbox(id),
            partial: false,
        }
    }
}

/// Results of one level, sorted by (matched text, kind) before merging.
pub(crate) type Batch<M> = Vec<Entry<M>>;

/// A search's matches before ranking, in the engine's order: each with its
/// score level and whether it is partial (see [`quality`]).
type Candidates<M> = Vec<(Hit<M>, u8, bool)>;

/// The mailboxes of an index, as the search asks for them: once per query
/// part a plan, then the mailboxes of each score level in turn.
pub(crate) trait Mailboxes {
    /// How a found mailbox is named.
    type Id;
    /// What one search keeps between levels.
    type Plan;

    /// Plans the mailboxes for a query's local part: with `address`, the
    /// query was `local@domain` and `domains` are the domain matches (the
    /// local part must match whole, within `maxd` edits, and the score of
    /// a mailbox is its local score plus its domain's); without, `local` is
    /// the whole query, to match as a prefix of addresses (`domains` is
    /// then one segment over every domain, score 0). The flag: a walk ran
    /// out of budget (some misspellings may be missing).
    fn plan(&self, local: &[u8], address: bool, maxd: u16, domains: Vec<Seg>)
    -> (Self::Plan, bool);

    /// Pushes up to `need` mailboxes of score `level` not pushed at a lower
    /// level, the first in address order, as [`Entry::mailbox`].
    fn at_level(&self, plan: &mut Self::Plan, level: u8, need: usize, batch: &mut Batch<Self::Id>);
}

// ------------------------------------------------------------ the catalog

/// Tenant names (every word start, sorted by the text that follows: a
/// word-level suffix array) and domains (sorted, each with its tenant): the
/// part of an index that does not depend on how mailboxes are kept.
#[derive(Default)]
pub(crate) struct Catalog {
    pub(crate) domains: Packed,
    pub(crate) dom_tenant: Vec<u32>,
    domains_top: Top,
    names: Vec<u8>,
    name_ends: Vec<u32>,
    /// Word starts of tenant names, sorted by the text that follows:
    /// (start, end of the name).
    words: Vec<(u32, u32)>,
    words_top: Top,
}

impl Catalog {
    /// `names`: tenant names in tenant order (lowercased here). `raw`:
    /// lowercase domains, `raw_tenant[i]` the tenant of `raw.get(i)`; of
    /// repeated domains the first wins. Returns the catalog and, for each
    /// of its sorted domains, the position in `raw` it came from.
    pub(crate) fn build<'a>(
        names: impl IntoIterator<Item = &'a str>,
        raw: Packed,
        raw_tenant: &[u32],
    ) -> (Self, Vec<u32>) {
        let mut names_text = Vec::new();
        let mut name_ends = Vec::new();
        let mut words: Vec<(u32, u32)> = Vec::new();
        for (ti, name) in names.into_iter().enumerate() {
            let ti = ti as u32;
            let start = names_text.len();
            names_text.extend_from_slice(name.to_lowercase().as_bytes());
            for i in start..names_text.len() {
                if names_text[i] != b' ' && (i == start || names_text[i - 1] == b' ') {
                    words.push((i as u32, ti));
                }
            }
            name_ends.push(names_text.len() as u32);
        }

        // Domains, sorted (and deduplicated: first wins).
        let mut order: Vec<u32> = (0..raw.len() as u32).collect();
        order.sort_by(|&a, &b| raw.get(a as usize).cmp(raw.get(b as usize)));
        order.dedup_by(|a, b| raw.get(*a as usize) == raw.get(*b as usize));
        let mut domains = Packed::with_capacity(raw.text.len(), order.len());
        let mut dom_tenant = Vec::with_capacity(order.len());
        for &i in &order {
            domains.push(raw.get(i as usize));
            dom_tenant.push(raw_tenant[i as usize]);
        }
        drop(raw);

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

        let mut catalog = Catalog {
            domains,
            dom_tenant,
            domains_top: Top::default(),
            names: names_text,
            name_ends,
            words,
            words_top: Top::default(),
        };
        catalog.domains_top = Top::build(&catalog.domains);
        catalog.words_top = Top::build(&catalog.words());
        (catalog, order)
    }

    pub(crate) fn domain_count(&self) -> usize {
        self.domains.len()
    }

    pub(crate) fn word_count(&self) -> usize {
        self.words.len()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.domains.heap_bytes()
            + 4 * self.dom_tenant.capacity()
            + self.names.capacity()
            + 4 * self.name_ends.capacity()
            + 8 * self.words.capacity()
            + self.domains_top.heap_bytes()
            + self.words_top.heap_bytes()
    }

    fn words(&self) -> Spans<'_> {
        Spans {
            text: &self.names,
            spans: &self.words,
        }
    }

    /// Up to `limit` matches of a lowercase, trimmed query, ranked: exact,
    /// then prefix, then misspellings; within each, those `affected` says
    /// are affected first; then by score level and byte order of the
    /// matched text. Misspellings are searched only when exact and prefix
    /// matches are fewer than `limit`; the total counts the matches of the
    /// pass that answered. Each match is `map`ped before it is ranked.
    pub(crate) fn search<M: Mailboxes, T>(
        &self,
        mailboxes: &M,
        q: &[u8],
        limit: usize,
        map: impl FnMut(Hit<M::Id>) -> T,
        affected: impl Fn(&T) -> bool,
    ) -> Ranked<T> {
        if q.is_empty() {
            return Ranked::default();
        }
        if limit == 0 {
            // Not searched: nothing is known of the total.
            return Ranked {
                total_is_lower_bound: true,
                ..Ranked::default()
            };
        }
        let mut found = self.run(mailboxes, q, false);
        let fuzzy_helps = match q.iter().rposition(|&b| b == b'@') {
            Some(at) => max_distance(at) > 0 || max_distance(q.len() - at - 1) > 0,
            None => max_distance(q.len()) > 0,
        };
        if found.0.len() < limit && fuzzy_helps {
            found = self.run(mailboxes, q, true);
        }
        let (hits, complete) = found;
        let mut map = map;
        let hits = hits.into_iter().map(|(h, l, p)| (map(h), l, p)).collect();
        rank(hits, complete, limit, affected)
    }

    /// Up to `CANDIDATES` matches in the engine's order (score level, then
    /// matched text), each with its level and whether it is partial (see
    /// [`quality`]), and whether they are all.
    fn run<M: Mailboxes>(
        &self,
        mailboxes: &M,
        q: &[u8],
        misspelt: bool,
    ) -> (Candidates<M::Id>, bool) {
        let dist = |len| if misspelt { max_distance(len) } else { 0 };
        let (tenant_segs, domain_segs, (mut plan, plan_cut), cut) =
            match q.iter().rposition(|&b| b == b'@') {
                Some(at) => {
                    let (l, d) = (&q[..at], &q[at + 1..]);
                    let (doms, cut) = self.domain_segs(d, dist(d.len()));
                    (
                        Vec::new(),
                        Vec::new(),
                        mailboxes.plan(l, true, dist(l.len()), doms),
                        cut,
                    )
                }
                None => {
                    let all = vec![Seg {
                        lo: 0,
                        hi: self.domains.len() as u32,
                        score: 0,
                    }];
                    let (mut tenants, cut_t) =
                        fuzzy(&self.words(), &self.words_top, q, dist(q.len()), None);
                    sort_segs(&mut tenants);
                    let (domains, cut_d) = self.domain_segs(q, dist(q.len()));
                    (
                        tenants,
                        domains,
                        mailboxes.plan(q, false, dist(q.len()), all),
                        cut_t || cut_d,
                    )
                }
            };
        // One more than kept: to know whether there were more.
        let cap = CANDIDATES + 1;
        let mut out = Vec::new();
        let mut seen_t = HashSet::new();
        let mut seen_d = HashSet::new();
        // Without misspellings no score is above 2 (a prefix).
        let top = if misspelt { MAX_LEVEL } else { 2 };
        for level in 0..=top {
            let need = cap - out.len();
            if need == 0 {
                break;
            }
            let mut batch = Vec::new();
            self.tenants_at(&tenant_segs, level, need, &mut seen_t, &mut batch);
            self.domains_at(&domain_segs, level, need, &mut seen_d, &mut batch);
            mailboxes.at_level(&mut plan, level, need, &mut batch);
            batch.sort_by(|a, b| (&a.key, a.kind).cmp(&(&b.key, b.kind)));
            out.extend(
                batch
                    .into_iter()
                    .take(need)
                    .map(|e| (e.hit, level, e.partial)),
            );
        }
        let more = out.len() > CANDIDATES;
        out.truncate(CANDIDATES);
        (out, !(more || cut || plan_cut))
    }

    /// Domains matching `q`: whole or prefix (scores 3d, 3d + 2), or by stem
    /// (3d + 1), sorted by score then position; and whether the walk was
    /// cut short.
    fn domain_segs(&self, q: &[u8], maxd: u16) -> (Vec<Seg>, bool) {
        let (mut segs, cut) = fuzzy(&self.domains, &self.domains_top, q, maxd, Some(b'.'));
        sort_segs(&mut segs);
        (segs, cut)
    }

    fn tenants_at<M>(
        &self,
        segs: &[Seg],
        level: u8,
        need: usize,
        seen: &mut HashSet<u32>,
        batch: &mut Batch<M>,
    ) {
        let words = self.words();
        let mut taken = 0;
        for s in segs.iter().filter(|s| s.score == level) {
            for i in s.lo as usize..s.hi as usize {
                if taken == need {
                    return;
                }
                let start = self.words[i].0;
                let t = self.name_ends.partition_point(|&e| e <= start);
                if seen.insert(t as u32) {
                    let name_start = if t == 0 { 0 } else { self.name_ends[t - 1] };
                    batch.push(Entry {
                        key: words.get(i).to_vec(),
                        kind: 0,
                        hit: Hit::Tenant(t as u32),
                        partial: start != name_start,
                    });
                    taken += 1;
                }
            }
        }
    }

    fn domains_at<M>(
        &self,
        segs: &[Seg],
        level: u8,
        need: usize,
        seen: &mut HashSet<u32>,
        batch: &mut Batch<M>,
    ) {
        let mut taken = 0;
        for s in segs.iter().filter(|s| s.score == level) {
            for i in s.lo..s.hi {
                if taken == need {
                    return;
                }
                if seen.insert(i) {
                    let name = self.domains.get(i as usize);
                    batch.push(Entry {
                        key: name.to_vec(),
                        kind: 1,
                        hit: Hit::Domain {
                            tenant: self.dom_tenant[i as usize],
                            domain: String::from_utf8_lossy(name).into_owned(),
                        },
                        partial: false,
                    });
                    taken += 1;
                }
            }
        }
    }
}

/// The first `limit` of `found` (in the engine's order, each with its score
/// level and whether it is partial) ranked: by match quality; misspellings
/// also by level (fewer edits, then whole before stem before prefix: "did
/// you mean" names the closest); then affected first; then the engine's
/// order. `complete`: `found` is every match.
///
/// `affected` is asked lazily, in that order, only until the page is full:
/// a source may pay a cache miss or two per answer.
pub(crate) fn rank<T>(
    found: Vec<(T, u8, bool)>,
    complete: bool,
    limit: usize,
    affected: impl Fn(&T) -> bool,
) -> Ranked<T> {
    let total = found.len();
    let group = |level: u8, partial: bool| {
        let q = quality(level, partial);
        (
            q,
            if q == MatchQuality::Approximate {
                level
            } else {
                0
            },
        )
    };
    // By group, then engine order.
    let mut order: Vec<((MatchQuality, u8), usize)> = found
        .iter()
        .enumerate()
        .map(|(i, (_, level, partial))| (group(*level, *partial), i))
        .collect();
    order.sort_unstable();
    let mut page: Vec<(usize, MatchQuality)> = Vec::with_capacity(limit.min(total));
    let mut g = 0;
    while g < order.len() && page.len() < limit {
        let key = order[g].0;
        let end = g + order[g..].partition_point(|o| o.0 == key);
        let need = limit - page.len();
        let (mut yes, mut no) = (Vec::new(), Vec::new());
        for &(_, i) in &order[g..end] {
            if yes.len() == need {
                break;
            }
            if affected(&found[i].0) {
                yes.push(i);
            } else if no.len() < need {
                no.push(i);
            }
        }
        no.truncate(need - yes.len());
        page.extend(yes.into_iter().chain(no).map(|i| (i, key.0)));
        g = end;
    }
    let mut found: Vec<Option<T>> = found.into_iter().map(|(h, _, _)| Some(h)).collect();
    Ranked {
        hits: page
            .into_iter()
            .filter_map(|(i, q)| Some((found[i].take()?, q)))
            .collect(),
        total,
        total_is_lower_bound: !complete,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

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
    /// the cached top of the trie, and with a deeper one (all must agree).
    fn walked(set: &Packed, q: &[u8], maxd: u16) -> Vec<u8> {
        let run = |top: &Top| {
            let mut best = vec![NONE; set.len()];
            for s in fuzzy(set, top, q, maxd, Some(b'.')).0 {
                for b in &mut best[s.lo as usize..s.hi as usize] {
                    *b = (*b).min(s.score);
                }
            }
            best
        };
        let cached = run(&Top::build(set));
        let q = String::from_utf8_lossy(q);
        assert_eq!(cached, run(&Top::default()), "{q:?}");
        assert_eq!(cached, run(&Top::build_within(set, 10_000)), "{q:?} deep");
        assert_eq!(cached, run(&Top::build_within(set, 20)), "{q:?} cut");
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

    #[test]
    fn a_top_grows_while_within_its_node_cap() {
        let set = packed(&["abcdef", "abcdeg", "abcxyz", "abd", "b", "bcdefg"]);
        let three = Top::build(&set);
        assert_eq!(three.depth, TOP_DEPTH);
        let deep = Top::build_within(&set, 1000);
        assert_eq!(
            deep.depth, 7,
            "one level per byte of the longest string, and one empty"
        );
        // The fourth level would take it past the cap: three levels.
        let cut = Top::build_within(&set, three.nodes.len() + 1);
        assert_eq!(cut.depth, TOP_DEPTH);
        assert_eq!(cut.nodes.len(), three.nodes.len());
        for q in ["abcdeh", "abdx", "bcdfg", "acbdef"] {
            let _ = walked(&set, q.as_bytes(), 2);
        }
    }

    /// The ranking spelled out: a stable sort by (quality, closeness for
    /// misspellings, not affected), then the limit.
    fn rank_by_sorting(found: &[(u32, u8, bool)], affected: &[bool], limit: usize) -> Vec<u32> {
        let mut v: Vec<(MatchQuality, u8, bool, u32)> = found
            .iter()
            .map(|&(h, level, partial)| {
                let q = quality(level, partial);
                let close = if q == MatchQuality::Approximate {
                    level
                } else {
                    0
                };
                (q, close, !affected[h as usize], h)
            })
            .collect();
        v.sort_by_key(|k| (k.0, k.1, k.2)); // stable: engine order within
        v.into_iter().take(limit).map(|k| k.3).collect()
    }

    #[test]
    fn ranking_puts_quality_then_closeness_then_affected_first() {
        // Engine order: exact 0, partial tenant 1 (prefix at level 0),
        // prefixes 2 3 4, one edit 5 6, two edits 7.
        let found = [
            (0, 0, false),
            (1, 0, true),
            (2, 1, false),
            (3, 2, false),
            (4, 2, false),
            (5, 3, false),
            (6, 3, false),
            (7, 6, false),
        ];
        let affected = [false, false, false, false, true, false, true, true];
        let asked = std::cell::RefCell::new(Vec::new());
        let r = rank(found.to_vec(), true, 4, |h| {
            asked.borrow_mut().push(*h);
            affected[*h as usize]
        });
        let hits: Vec<(u32, MatchQuality)> = r.hits;
        use MatchQuality::*;
        assert_eq!(hits, [(0, Exact), (4, Prefix), (1, Prefix), (2, Prefix)]);
        assert_eq!((r.total, r.total_is_lower_bound), (8, false));
        // Asked only until the page was full: not about the misspellings.
        assert!(
            asked.borrow().iter().all(|h| *h <= 4),
            "{:?}",
            asked.borrow()
        );
        // The closest misspelling first, affected or not.
        let r = rank(found[5..].to_vec(), false, 3, |h| affected[*h as usize]);
        assert_eq!(r.hits.iter().map(|h| h.0).collect::<Vec<_>>(), [6, 5, 7]);
        assert!(r.total_is_lower_bound);
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 300,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        #[test]
        fn ranking_lazily_is_ranking_by_sorting(
            levels in proptest::collection::vec((0u8..=MAX_LEVEL, any::<bool>(), any::<bool>()), 0..40),
            limit in 0usize..45,
        ) {
            // Engine order: by level.
            let mut levels = levels;
            levels.sort_by_key(|l| l.0);
            let found: Vec<(u32, u8, bool)> =
                levels.iter().enumerate().map(|(i, l)| (i as u32, l.0, l.1)).collect();
            let affected: Vec<bool> = levels.iter().map(|l| l.2).collect();
            let r = rank(found.clone(), true, limit, |h| affected[*h as usize]);
            let got: Vec<u32> = r.hits.iter().map(|h| h.0).collect();
            prop_assert_eq!(got, rank_by_sorting(&found, &affected, limit));
            prop_assert_eq!(r.total, found.len());
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
}
