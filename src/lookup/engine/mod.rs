//! The search itself, shared by every index: sorted string sets, the walk
//! down their implicit trie with an edit-distance band, score levels, and
//! [`Catalog`] (tenant names and domains) with the level-by-level merge of
//! tenants, domains and mailboxes. What an index keeps of its mailboxes is
//! behind [`Mailboxes`]: explicit addresses ([`super::AddressIndex`]) or
//! the simulator's computed ones.
//!
//! Here: the results, [`Catalog`] and the ranking; `trie.rs` holds the
//! sorted sets and the walk.

mod trie;

pub(crate) use trie::{
    NONE, Packed, Seg, Sorted, Spans, Top, fuzzy, max_distance, partition, sort_segs,
};

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use super::{MatchQuality, Ranked};

/// A multiply-rotate hash for the small integer keys of a search's
/// seen-sets (domain positions, `(k, domain)` pairs): a search inserts up
/// to [`CANDIDATES`] of them, and SipHash was a visible share of a
/// misspelling pass. The keys are positions in the index, not text a
/// client chooses freely, and a set holds at most a few thousand.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHash(u64);

impl Hasher for FastHash {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0xf135_7aea_2e62_a9c5);
    }

    fn finish(&self) -> u64 {
        // The product's high bits are its best mixed: bring them down to
        // where the table picks its bucket.
        self.0.rotate_left(26)
    }
}

/// A set with [`FastHash`].
pub(crate) type FastSet<T> = HashSet<T, BuildHasherDefault<FastHash>>;

/// Matches a search collects and ranks (affected first) before the limit
/// is applied; with more, the total is "at least" this many. 78 Acme
/// tenants and domains in the demo fit many times over; a query that
/// matches more than this is too broad to read through anyway.
pub const CANDIDATES: usize = 1_000;
/// Highest score level: local 3·2 + domain 3·2 + 2.
pub(crate) const MAX_LEVEL: u8 = 14;
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
// ------------------------------------------------------------ results

/// What a search found, in result order; `M` names a mailbox the way its
/// index does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hit<M> {
    Mailbox(M),
    /// A domain by its position in the catalog's sorted domains (its name:
    /// [`Catalog::domain_name`], built only for the results shown).
    Domain {
        tenant: u32,
        domain: u32,
    },
    Tenant(u32),
}

/// One result of a level, before the kinds are merged. Its matched text is
/// `head` (a span of its batch's own text, for text an index computes)
/// followed by `tail` (text the index holds): no text is copied per
/// result.
pub(crate) struct Entry<'a, M> {
    head: (u32, u32),
    tail: &'a [u8],
    /// 0 tenant, 1 domain, 2 mailbox.
    kind: u8,
    hit: Hit<M>,
    /// A tenant found by a later word of its name: never an exact match.
    partial: bool,
}

/// Results of one level, sorted by (matched text, kind) before merging.
pub(crate) struct Batch<'a, M> {
    text: Vec<u8>,
    entries: Vec<Entry<'a, M>>,
    /// Results the level may take: room for them is made at the first,
    /// once, instead of growing the entries ten times on the way to a
    /// thousand (most levels of a search find nothing and allocate nothing).
    need: usize,
}

impl<'a, M> Batch<'a, M> {
    fn new(need: usize) -> Self {
        Batch {
            text: Vec::new(),
            entries: Vec::new(),
            need,
        }
    }

    fn add(&mut self, e: Entry<'a, M>) {
        if self.entries.capacity() == 0 {
            // Each kind takes at most `need`; one kind is the usual case.
            self.entries.reserve(self.need);
        }
        self.entries.push(e);
    }

    /// Keeps `t` in the batch's own text, for [`mailbox`](Self::mailbox)
    /// results that start with it.
    pub(crate) fn text(&mut self, t: &[u8]) -> (u32, u32) {
        let start = self.text.len() as u32;
        self.text.extend_from_slice(t);
        (start, self.text.len() as u32)
    }

    /// A mailbox whose address is the text at `head` (from
    /// [`text`](Self::text), or `(0, 0)`) followed by `tail`.
    pub(crate) fn mailbox(&mut self, head: (u32, u32), tail: &'a [u8], id: M) {
        self.add(Entry {
            head,
            tail,
            kind: 2,
            hit: Hit::Mailbox(id),
            partial: false,
        });
    }

    fn push(&mut self, tail: &'a [u8], kind: u8, hit: Hit<M>, partial: bool) {
        self.add(Entry {
            head: (0, 0),
            tail,
            kind,
            hit,
            partial,
        });
    }

    /// By matched text, then kind; stable. The kinds come each in order
    /// already, and most levels hold one kind: then nothing moves.
    fn sort(&mut self) {
        let order = |text: &[u8], a: &Entry<'a, M>, b: &Entry<'a, M>| {
            let span = |e: &Entry<'a, M>| (&text[e.head.0 as usize..e.head.1 as usize], e.tail);
            let text_order = if a.head == b.head {
                // The same local part (or none): only the rest differs.
                a.tail.cmp(b.tail)
            } else {
                cmp_joined(span(a), span(b))
            };
            text_order.then(a.kind.cmp(&b.kind))
        };
        let text = &self.text;
        if !self.entries.is_sorted_by(|a, b| order(text, a, b).is_le()) {
            self.entries.sort_by(|a, b| order(text, a, b));
        }
    }
}

/// `a.0 ++ a.1` against `b.0 ++ b.1`, bytewise, without joining them.
fn cmp_joined(a: (&[u8], &[u8]), b: (&[u8], &[u8])) -> std::cmp::Ordering {
    let (mut a0, mut a1) = a;
    let (mut b0, mut b1) = b;
    loop {
        if a0.is_empty() {
            (a0, a1) = (a1, &[]);
        }
        if b0.is_empty() {
            (b0, b1) = (b1, &[]);
        }
        if a0.is_empty() || b0.is_empty() {
            return a0.len().cmp(&b0.len());
        }
        let n = a0.len().min(b0.len());
        match a0[..n].cmp(&b0[..n]) {
            std::cmp::Ordering::Equal => {
                a0 = &a0[n..];
                b0 = &b0[n..];
            }
            o => return o,
        }
    }
}

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
    /// level, the first in address order, with [`Batch::mailbox`].
    fn at_level<'a>(
        &'a self,
        plan: &mut Self::Plan,
        level: u8,
        need: usize,
        batch: &mut Batch<'a, Self::Id>,
    );
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
        // Domains deeper than the default: a misspelt `local@domain` walks
        // the domains with two edits, most of its nodes within the first
        // few bytes, where children listed in order cost less than
        // searching the sorted strings for them. Domains share long
        // prefixes, so the cap is not what stops it: the simulator's
        // 136,193 domains have 3,575 distinct prefixes of up to eight bytes
        // (the deepest a top goes; 86 KB at 24 bytes a node; three levels
        // were 166 nodes). Going on to 13 bytes (28,370 nodes, 0.6 MB more)
        // saved under 3% of a misspelt query's instructions: not kept.
        let cap = catalog.domains.len().max(1 << 10);
        catalog.domains_top = Top::build_within(&catalog.domains, cap);
        catalog.words_top = Top::build(&catalog.words());
        (catalog, order)
    }

    /// The domain at a position of the sorted domains (from a
    /// [`Hit::Domain`]), lowercase; empty if there is none.
    pub(crate) fn domain_name(&self, pos: u32) -> String {
        if (pos as usize) < self.domains.len() {
            String::from_utf8_lossy(self.domains.get(pos as usize)).into_owned()
        } else {
            String::new()
        }
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
    /// pass that answered.
    pub(crate) fn search<M: Mailboxes>(
        &self,
        mailboxes: &M,
        q: &[u8],
        limit: usize,
        affected: impl Fn(&Hit<M::Id>) -> bool,
    ) -> Ranked<Hit<M::Id>> {
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
        let mut seen_t = FastSet::default();
        let mut seen_d = FastSet::default();
        // Without misspellings no score is above 2 (a prefix).
        let top = if misspelt { MAX_LEVEL } else { 2 };
        for level in 0..=top {
            let need = cap - out.len();
            if need == 0 {
                break;
            }
            let mut batch = Batch::new(need);
            self.tenants_at(&tenant_segs, level, need, &mut seen_t, &mut batch);
            self.domains_at(&domain_segs, level, need, &mut seen_d, &mut batch);
            mailboxes.at_level(&mut plan, level, need, &mut batch);
            batch.sort();
            out.extend(
                batch
                    .entries
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

    fn tenants_at<'a, M>(
        &'a self,
        segs: &[Seg],
        level: u8,
        need: usize,
        seen: &mut FastSet<u32>,
        batch: &mut Batch<'a, M>,
    ) {
        let mut taken = 0;
        for s in at_score(segs, level) {
            for i in s.lo as usize..s.hi as usize {
                if taken == need {
                    return;
                }
                let start = self.words[i].0;
                let t = self.name_ends.partition_point(|&e| e <= start);
                if seen.insert(t as u32) {
                    let name_start = if t == 0 { 0 } else { self.name_ends[t - 1] };
                    let text = &self.names[start as usize..self.words[i].1 as usize];
                    batch.push(text, 0, Hit::Tenant(t as u32), start != name_start);
                    taken += 1;
                }
            }
        }
    }

    fn domains_at<'a, M>(
        &'a self,
        segs: &[Seg],
        level: u8,
        need: usize,
        seen: &mut FastSet<u32>,
        batch: &mut Batch<'a, M>,
    ) {
        let mut taken = 0;
        for s in at_score(segs, level) {
            for i in s.lo..s.hi {
                if taken == need {
                    return;
                }
                if seen.insert(i) {
                    let hit = Hit::Domain {
                        tenant: self.dom_tenant[i as usize],
                        domain: i,
                    };
                    batch.push(self.domains.get(i as usize), 1, hit, false);
                    taken += 1;
                }
            }
        }
    }
}

/// The segments of score `score` among `segs` sorted by score (as
/// [`sort_segs`] leaves them): found by binary search, not by a pass over
/// all of them once per level.
pub(crate) fn at_score(segs: &[Seg], score: u8) -> &[Seg] {
    let a = segs.partition_point(|s| s.score < score);
    let b = a + segs[a..].partition_point(|s| s.score <= score);
    &segs[a..b]
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
        fn text_in_two_parts_sorts_as_the_joined_text(
            a in proptest::collection::vec(b'a'..=b'd', 0..6),
            b in proptest::collection::vec(b'a'..=b'd', 0..6),
            c in proptest::collection::vec(b'a'..=b'd', 0..6),
            d in proptest::collection::vec(b'a'..=b'd', 0..6),
        ) {
            let joined = |x: &[u8], y: &[u8]| [x, y].concat();
            prop_assert_eq!(
                cmp_joined((&a, &b), (&c, &d)),
                joined(&a, &b).cmp(&joined(&c, &d))
            );
        }

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
}
