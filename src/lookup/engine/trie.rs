//! Sorted string sets and the walk down their implicit trie with an
//! edit-distance band: the ranges of a set within a query's allowed
//! distance, with their scores.

/// Trie nodes one fuzzy walk may visit, per sorted set.
pub(crate) const NODE_BUDGET: u32 = 100_000;
/// Longest query (or part of one) that is searched with misspellings.
pub(crate) const MAX_FUZZY_BYTES: usize = 64;
/// No score (nothing matched).
pub(crate) const NONE: u8 = u8::MAX;
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
