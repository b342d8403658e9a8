//! [`AddressIndex`]: the engine over explicit entries, for a source that
//! knows its tenants, domains and mailbox addresses as lists.
//!
//! Mailbox addresses are stored lowercase, back to back in byte order.
//! Because a local part has no `@` (an address is split at its first `@`),
//! the addresses sharing a local part are neighbours in that order, and
//! local parts ordered by their text with the `@` (`alice.smith2@` <
//! `alice.smith@` < `alice.smithe@`) come in the order of their addresses.
//! So the local parts are kept as that sorted set of `local@` strings, each
//! the start of its first address (no text of their own), with where its
//! addresses start. The engine's walk over that set (the `@` as the stem
//! byte: a stem match is a whole local part) turns into ranges of
//! addresses, already in address order:
//!
//! - without `@`, every local-part match is a range of addresses (all with
//!   a local part starting with the match), merged per score level;
//! - with `@`, each whole local-part match is combined with the domain
//!   matches, through each address's domain number: by binary search in
//!   the local part's addresses (sorted by domain) when they are many, by
//!   a table of domain scores when they are few.

use std::collections::HashSet;

use super::Ranked;
use super::engine::{
    Batch, Catalog, Hit, Mailboxes, NONE, Packed, Seg, Sorted, Spans, Top, fuzzy, partition,
};

/// Nodes the cached top of the local parts' trie may hold (24 bytes each):
/// with a million local parts, walks through the top levels are most of
/// the cost of a misspelling otherwise.
const LOCALS_TOP_NODES: usize = 1 << 17;
/// An address's domain number when it has no domain (`bob`).
const NO_DOMAIN: u32 = u32::MAX;

/// One tenant as an [`AddressIndex`] is built from it.
#[derive(Debug, Clone, Copy)]
pub struct TenantEntry<'a> {
    /// Its name: each word of it is searchable (`title` finds "Acme Title
    /// & Escrow").
    pub name: &'a str,
    /// Its domains (any case).
    pub domains: &'a [String],
}

/// What a search found, in result order. Tenants are numbered in the order
/// they were given to [`AddressIndex::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A mailbox, by its id (see [`AddressIndex::build`]), and its tenant.
    Mailbox {
        tenant: u32,
        mailbox: u32,
    },
    /// A domain (lowercase) and its tenant.
    Domain {
        tenant: u32,
        domain: String,
    },
    Tenant(u32),
}

/// Prefix and fuzzy lookup over explicit mailbox addresses, domains and
/// tenant names; see the [module](super) for what a search matches and in
/// which order. Built in one go; rebuild it when the lists change.
#[derive(Default)]
pub struct AddressIndex {
    catalog: Catalog,
    /// Addresses in byte order, lowercase `local@domain` (`local@` for one
    /// without a domain). Indices into it are "positions".
    text: Packed,
    /// By position: the mailbox id, its tenant, its domain number in the
    /// catalog (or `NO_DOMAIN`).
    pos_id: Vec<u32>,
    pos_tenant: Vec<u32>,
    pos_domain: Vec<u32>,
    /// By mailbox id: its position.
    id_pos: Vec<u32>,
    /// The distinct local parts with their `@`, in order: local part `i`
    /// is the text at `local_spans[i]` (the start of its first address),
    /// and its addresses are the positions
    /// `local_start[i]..local_start[i + 1]`.
    local_spans: Vec<(u32, u32)>,
    local_start: Vec<u32>,
    locals_top: Top,
}

/// Pushes `a` lowercased, with an `@` at the end if it has none.
fn push_address(raw: &mut Packed, a: &str) {
    let a = a.trim();
    if a.is_ascii() {
        raw.text.extend(a.bytes().map(|b| b.to_ascii_lowercase()));
    } else {
        raw.text.extend_from_slice(a.to_lowercase().as_bytes());
    }
    if !a.contains('@') {
        raw.text.push(b'@');
    }
    raw.ends.push(raw.text.len() as u32);
}

/// The domain of a stored address: after its first `@`.
fn domain_of(a: &[u8]) -> &[u8] {
    let at = a.iter().position(|&b| b == b'@').unwrap_or(a.len());
    a.get(at + 1..).unwrap_or_default()
}

impl AddressIndex {
    /// Builds the index. `tenants` in tenant order (a tenant's number is its
    /// index here); `mailboxes` as (tenant number, address). Addresses are
    /// trimmed and lowercased; one without `@` is a local part with no
    /// domain (found by queries without `@` only).
    ///
    /// A mailbox's id is the position of its pair in `mailboxes`, so a
    /// caller maps ids back to its own rows. Repeated addresses are indexed
    /// once, under the first id; [`address`](Self::address) of a later one
    /// gives the same text. The domains are the tenants' and those of the
    /// addresses; a domain listed by no tenant belongs to the tenant of its
    /// first address, and of a domain two tenants list, the first tenant's.
    /// Offsets are 32-bit: up to 4 GiB of address text.
    pub fn build<'a>(
        tenants: &[TenantEntry<'a>],
        mailboxes: impl IntoIterator<Item = (u32, &'a str)>,
    ) -> Self {
        // Addresses as given, lowercase.
        let mut raw = Packed::default();
        let mut raw_tenant = Vec::new();
        for (t, a) in mailboxes {
            push_address(&mut raw, a);
            raw_tenant.push(t);
        }
        let n = raw.len();

        // Domains: the tenants', then those of the addresses, as given.
        let mut doms = Packed::default();
        let mut dom_tenant = Vec::new();
        for (ti, t) in tenants.iter().enumerate() {
            for d in t.domains {
                doms.push(d.trim().to_lowercase().as_bytes());
                dom_tenant.push(ti as u32);
            }
        }
        let mut seen: HashSet<&[u8]> = HashSet::new();
        for (id, &t) in raw_tenant.iter().enumerate() {
            let d = domain_of(raw.get(id));
            if !d.is_empty() && seen.insert(d) {
                doms.push(d);
                dom_tenant.push(t);
            }
        }
        drop(seen);
        let (catalog, _) = Catalog::build(tenants.iter().map(|t| t.name), doms, &dom_tenant);

        // Addresses in byte order; of equal ones, the first given.
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            raw.get(a as usize).cmp(raw.get(b as usize)).then(a.cmp(&b))
        });
        let mut text = Packed::with_capacity(raw.text.len(), n);
        let mut id_pos = vec![0u32; n];
        let mut pos_id = Vec::with_capacity(n);
        let mut pos_tenant = Vec::with_capacity(n);
        for &id in &order {
            let a = raw.get(id as usize);
            if text.len() == 0 || text.get(text.len() - 1) != a {
                text.push(a);
                pos_id.push(id);
                pos_tenant.push(raw_tenant[id as usize]);
            }
            id_pos[id as usize] = (text.len() - 1) as u32;
        }
        drop((raw, raw_tenant, order));
        text.text.shrink_to_fit();
        text.ends.shrink_to_fit();
        pos_id.shrink_to_fit();
        pos_tenant.shrink_to_fit();

        let domains = &catalog.domains;
        let mut pos_domain = Vec::with_capacity(text.len());
        let mut local_spans: Vec<(u32, u32)> = Vec::new();
        let mut local_start = Vec::new();
        for p in 0..text.len() {
            let a = text.get(p);
            let at = a.iter().position(|&b| b == b'@').unwrap_or(a.len() - 1);
            let d = &a[at + 1..];
            pos_domain.push(if d.is_empty() {
                NO_DOMAIN
            } else {
                let i = partition(0, domains.len(), |i| domains.get(i) < d);
                debug_assert_eq!(domains.get(i), d);
                i as u32
            });
            let local = &a[..=at];
            let new_local = match local_spans.last() {
                Some(&(s, e)) => text.text[s as usize..e as usize] != *local,
                None => true,
            };
            if new_local {
                let s = if p == 0 { 0 } else { text.ends[p - 1] };
                local_spans.push((s, s + local.len() as u32));
                local_start.push(p as u32);
            }
        }
        local_start.push(text.len() as u32);
        local_spans.shrink_to_fit();
        local_start.shrink_to_fit();

        let mut index = AddressIndex {
            catalog,
            text,
            pos_id,
            pos_tenant,
            pos_domain,
            id_pos,
            local_spans,
            local_start,
            locals_top: Top::default(),
        };
        index.locals_top = Top::build_within(&index.locals(), LOCALS_TOP_NODES);
        index
    }

    fn locals(&self) -> Spans<'_> {
        Spans {
            text: &self.text.text,
            spans: &self.local_spans,
        }
    }

    /// Up to `limit` matches of `query` (trimmed, any case): exact first,
    /// then stems and prefixes, then misspellings by distance; byte order of
    /// the matched text within a level. Nothing counts as affected: see
    /// [`lookup`](Self::lookup) for the ranking a source answers with.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Found> {
        self.lookup(query, limit, |_| false)
            .hits
            .into_iter()
            .map(|(f, _)| f)
            .collect()
    }

    /// Up to `limit` matches of `query` (trimmed, any case), ranked: exact,
    /// then prefix, then misspellings, each with those `affected` says are
    /// affected first, then in [`search`](Self::search) order; with how
    /// each matched and how many matched in all.
    pub fn lookup(
        &self,
        query: &str,
        limit: usize,
        affected: impl Fn(&Found) -> bool,
    ) -> Ranked<Found> {
        let q = query.trim().to_lowercase();
        // Domains are named only when asked about and for the page.
        self.catalog
            .search(self, q.as_bytes(), limit, |h| affected(&self.found(*h)))
            .map(|h| self.found(h))
    }

    fn found(&self, h: Hit<(u32, u32)>) -> Found {
        match h {
            Hit::Mailbox((tenant, mailbox)) => Found::Mailbox { tenant, mailbox },
            Hit::Domain { tenant, domain } => Found::Domain {
                tenant,
                domain: self.catalog.domain_name(domain),
            },
            Hit::Tenant(t) => Found::Tenant(t),
        }
    }

    /// The address of mailbox `mailbox` (an id from [`build`](Self::build)),
    /// lowercase. Panics if no such pair was given.
    pub fn address(&self, mailbox: u32) -> &str {
        let a = self.text.get(self.id_pos[mailbox as usize] as usize);
        let a = match a.iter().position(|&b| b == b'@') {
            Some(at) if at + 1 == a.len() => &a[..at],
            _ => a,
        };
        // Whole strings pushed from `str`s (and an ASCII `@`).
        std::str::from_utf8(a).unwrap_or_default()
    }

    /// Number of distinct addresses indexed.
    pub fn mailboxes(&self) -> usize {
        self.text.len()
    }

    /// Heap memory held by the index, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.catalog.heap_bytes()
            + self.text.heap_bytes()
            + 4 * (self.pos_id.capacity()
                + self.pos_tenant.capacity()
                + self.pos_domain.capacity()
                + self.id_pos.capacity()
                + self.local_start.capacity()
                + 2 * self.local_spans.capacity())
            + self.locals_top.heap_bytes()
    }

    fn push<'a>(&'a self, batch: &mut Batch<'a, (u32, u32)>, p: u32) {
        let p = p as usize;
        batch.mailbox(
            (0, 0),
            self.text.get(p),
            (self.pos_tenant[p], self.pos_id[p]),
        );
    }
}

/// One search's plan for mailboxes.
pub(crate) enum Plan {
    /// `local@domain`: (score level, position) of every match, by level,
    /// then position.
    Address(Vec<(u8, u32)>),
    /// No `@`: ranges of positions (score level, start, end), and the
    /// positions found at lower levels.
    Prefix {
        ranges: Vec<(u8, u32, u32)>,
        seen: HashSet<u32>,
    },
}

impl Mailboxes for AddressIndex {
    /// (tenant, mailbox id).
    type Id = (u32, u32);
    type Plan = Plan;

    fn plan(&self, local: &[u8], address: bool, maxd: u16, doms: Vec<Seg>) -> (Plan, bool) {
        let (segs, cut) = fuzzy(&self.locals(), &self.locals_top, local, maxd, Some(b'@'));
        let start = |i: u32| self.local_start[i as usize];
        if !address {
            // A prefix of the address within d edits, whatever the kind of
            // match on the local part: score level 3d + 2.
            let ranges = segs
                .iter()
                .map(|s| (3 * (s.score / 3) + 2, start(s.lo), start(s.hi)))
                .collect();
            return (
                Plan::Prefix {
                    ranges,
                    seen: HashSet::new(),
                },
                cut,
            );
        }
        // Whole local parts (stems: what precedes the `@`), best score each.
        let mut locals: Vec<(u32, u8)> = segs
            .iter()
            .filter(|s| s.score % 3 == 1)
            .flat_map(|s| (s.lo..s.hi).map(move |i| (i, 3 * (s.score / 3))))
            .collect();
        locals.sort_unstable();
        locals.dedup_by_key(|l| l.0);
        let mut found = Vec::new();
        // Best domain score by domain number, filled when first needed.
        let mut table: Vec<u8> = Vec::new();
        for (li, sl) in locals {
            let (a, b) = (start(li), start(li + 1));
            if (b - a) as usize <= doms.len() {
                if table.is_empty() {
                    table = vec![NONE; self.catalog.domain_count()];
                    for s in &doms {
                        for v in &mut table[s.lo as usize..s.hi as usize] {
                            *v = (*v).min(s.score);
                        }
                    }
                }
                for p in a..b {
                    if let Some(&sd) = table.get(self.pos_domain[p as usize] as usize)
                        && sd != NONE
                    {
                        found.push((sl + sd, p));
                    }
                }
            } else {
                // Many addresses: they are sorted by domain number (an
                // address without a domain sorts first), so each domain
                // match is a range of them.
                let pd = &self.pos_domain;
                let a = if pd[a as usize] == NO_DOMAIN {
                    a + 1
                } else {
                    a
                };
                let mut here: Vec<(u32, u8)> = Vec::new();
                for s in &doms {
                    let x = a + pd[a as usize..b as usize].partition_point(|&d| d < s.lo) as u32;
                    let y = x + pd[x as usize..b as usize].partition_point(|&d| d < s.hi) as u32;
                    here.extend((x..y).map(|p| (p, sl + s.score)));
                }
                here.sort_unstable();
                here.dedup_by_key(|h| h.0);
                found.extend(here.into_iter().map(|(p, level)| (level, p)));
            }
        }
        // By level; positions stay in order within one (a stable sort).
        found.sort_by_key(|f| f.0);
        (Plan::Address(found), cut)
    }

    fn at_level<'a>(
        &'a self,
        plan: &mut Plan,
        level: u8,
        need: usize,
        batch: &mut Batch<'a, (u32, u32)>,
    ) {
        match plan {
            Plan::Address(found) => {
                let a = found.partition_point(|f| f.0 < level);
                let b = found.partition_point(|f| f.0 <= level);
                for &(_, p) in found[a..b].iter().take(need) {
                    self.push(batch, p);
                }
            }
            Plan::Prefix { ranges, seen } => {
                let mut here: Vec<(u32, u32)> = ranges
                    .iter()
                    .filter(|r| r.0 == level)
                    .map(|r| (r.1, r.2))
                    .collect();
                here.sort_unstable();
                let (mut done, mut taken) = (0, 0);
                for (a, b) in here {
                    for p in a.max(done)..b {
                        if taken == need {
                            return;
                        }
                        if seen.insert(p) {
                            self.push(batch, p);
                            taken += 1;
                        }
                    }
                    done = done.max(b);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::lookup::{CANDIDATES, MatchQuality};

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Tenants as (name, domains).
    type Tenants = Vec<(&'static str, Vec<String>)>;

    /// Three tenants; the mailboxes as (tenant, address), in id order.
    fn fixture() -> (Tenants, Vec<(u32, &'static str)>) {
        let tenants = vec![
            (
                "Acme Title & Escrow",
                strings(&["acme-title.com", "Acme-Title2.com"]),
            ),
            (
                "Relief Without Borders",
                strings(&["relief-without-borders.org"]),
            ),
            ("Cmae Labs", strings(&["cmae.net"])),
        ];
        let mailboxes = vec![
            (0, "alice.smith@acme-title.com"),
            (0, "alice.smith2@acme-title.com"),
            (0, "alice.smithe@acme-title.com"),
            (0, "bob.jones@acme-title.com"),
            (0, "alice.smith@acme-title2.com"),
            (1, "alice.smith@relief-without-borders.org"),
            (1, "bob.smith@relief-without-borders.org"),
            (1, "Carol.Lee@Relief-Without-Borders.org"),
            (2, "info@cmae.net"),
            (0, "info@acme-title.com"),
        ];
        (tenants, mailboxes)
    }

    fn build(tenants: &[(&str, Vec<String>)], mailboxes: &[(u32, &str)]) -> AddressIndex {
        let entries: Vec<TenantEntry> = tenants
            .iter()
            .map(|(name, domains)| TenantEntry { name, domains })
            .collect();
        AddressIndex::build(&entries, mailboxes.iter().copied())
    }

    fn index() -> AddressIndex {
        let (t, m) = fixture();
        build(&t, &m)
    }

    /// Results as text: the address, the domain, or `tenant N`.
    fn found(ix: &AddressIndex, q: &str, limit: usize) -> Vec<String> {
        ix.search(q, limit)
            .iter()
            .map(|f| match f {
                Found::Mailbox { mailbox, .. } => ix.address(*mailbox).to_string(),
                Found::Domain { domain, .. } => domain.clone(),
                Found::Tenant(t) => format!("tenant {t}"),
            })
            .collect()
    }

    fn first(ix: &AddressIndex, q: &str) -> String {
        found(ix, q, 20).into_iter().next().unwrap_or_default()
    }

    #[test]
    fn an_exact_address_comes_first_with_its_id_and_tenant() {
        let ix = index();
        let hits = ix.search("alice.smith@acme-title.com", 20);
        assert_eq!(
            hits[0],
            Found::Mailbox {
                tenant: 0,
                mailbox: 0
            }
        );
        assert_eq!(
            ix.search("info@cmae.net", 20)[0],
            Found::Mailbox {
                tenant: 2,
                mailbox: 8
            }
        );
        assert_eq!(ix.mailboxes(), 10);
        assert!(ix.heap_bytes() > 0);
    }

    #[test]
    fn a_local_part_prefix_lists_addresses_in_byte_order() {
        let ix = index();
        assert_eq!(
            found(&ix, "alice.smith", 20)[..5],
            [
                "alice.smith2@acme-title.com", // '2' < '@'
                "alice.smith@acme-title.com",
                "alice.smith@acme-title2.com",
                "alice.smith@relief-without-borders.org",
                "alice.smithe@acme-title.com", // '@' < 'e'
            ]
        );
        // A local part and the start of a domain.
        assert_eq!(
            found(&ix, "alice.smith@acme-title", 20)[..2],
            [
                "alice.smith@acme-title.com",  // stem: acme-title
                "alice.smith@acme-title2.com", // prefix
            ]
        );
        assert_eq!(first(&ix, "bob.j"), "bob.jones@acme-title.com");
    }

    #[test]
    fn misspelled_addresses_find_the_intended_mailbox() {
        let ix = index();
        let want = "alice.smith@acme-title.com";
        // Swap, one edit in the local part, one in the domain.
        assert_eq!(first(&ix, "alcie.smith@acme-title.com"), want);
        assert_eq!(first(&ix, "alice.smth@acme-title.com"), want);
        assert_eq!(first(&ix, "alice.smith@acme-titel.com"), want);
        // Two edits in the domain; one on each side.
        assert_eq!(first(&ix, "alice.smith@acmetitle.con"), want);
        assert_eq!(first(&ix, "alcie.smith@acme-titel.com"), want);
        assert_eq!(
            first(&ix, "bob.smiht@relief-without-borders.org"),
            "bob.smith@relief-without-borders.org"
        );
        // The exact match still comes before misspellings of it.
        // Then the misspellings at one edit, in byte order.
        assert_eq!(
            found(&ix, "alice.smithe@acme-title.com", 3),
            [
                "alice.smithe@acme-title.com",
                "alice.smith2@acme-title.com",
                "alice.smith@acme-title.com"
            ]
        );
        // Too far from anything.
        assert!(ix.search("zed.zulu@nowhere.example", 20).is_empty());
    }

    #[test]
    fn domains_by_name_stem_prefix_or_misspelling() {
        let ix = index();
        assert_eq!(first(&ix, "cmae.net"), "cmae.net");
        assert_eq!(first(&ix, "relief-with"), "relief-without-borders.org");
        assert_eq!(
            first(&ix, "releif-without-borders.org"),
            "relief-without-borders.org"
        );
        assert_eq!(
            found(&ix, "acme-title", 2),
            ["acme-title.com", "acme-title2.com"]
        );
        assert_eq!(
            ix.search("acme-title2.com", 1),
            [Found::Domain {
                tenant: 0,
                domain: "acme-title2.com".into()
            }]
        );
    }

    #[test]
    fn any_word_of_a_tenant_name_finds_the_tenant() {
        let ix = index();
        assert_eq!(first(&ix, "title"), "tenant 0");
        assert_eq!(first(&ix, "escrow"), "tenant 0");
        assert_eq!(first(&ix, "Relief Without Borders"), "tenant 1");
        assert_eq!(first(&ix, "relief withuot borders"), "tenant 1");
        assert!(found(&ix, "labs", 20).contains(&"tenant 2".to_string()));
    }

    /// The first hit of a ranked lookup (nothing affected) as text, and
    /// how it matched.
    fn first_how(ix: &AddressIndex, q: &str) -> (String, MatchQuality) {
        let r = ix.lookup(q, 20, |_| false);
        let (f, how) = r.hits.first().cloned().expect("a match");
        let text = match f {
            Found::Mailbox { mailbox, .. } => ix.address(mailbox).to_string(),
            Found::Domain { domain, .. } => domain,
            Found::Tenant(t) => format!("tenant {t}"),
        };
        (text, how)
    }

    #[test]
    fn each_match_says_whether_it_is_exact_a_prefix_or_a_misspelling() {
        use MatchQuality::*;
        let ix = index();
        let cases = [
            (
                "alice.smith@acme-title.com",
                "alice.smith@acme-title.com",
                Exact,
            ),
            (
                "ALICE.smith@acme-title.com ",
                "alice.smith@acme-title.com",
                Exact,
            ),
            ("acme-title.com", "acme-title.com", Exact),
            ("acme title & escrow", "tenant 0", Exact),
            // The domain without its suffix, a prefix, a word of a name.
            ("acme-title", "acme-title.com", Prefix),
            ("bob.j", "bob.jones@acme-title.com", Prefix),
            (
                "alice.smith@acme-title",
                "alice.smith@acme-title.com",
                Prefix,
            ),
            ("escrow", "tenant 0", Prefix),
            ("relief with", "tenant 1", Prefix),
            // Misspellings: one or two edits, never called exact.
            ("acme-titel.com", "acme-title.com", Approximate),
            (
                "alcie.smith@acme-title.com",
                "alice.smith@acme-title.com",
                Approximate,
            ),
            (
                "alice.smith@acme-titel.com",
                "alice.smith@acme-title.com",
                Approximate,
            ),
            (
                "releif-without-borders.org",
                "relief-without-borders.org",
                Approximate,
            ),
            ("relief withuot borders", "tenant 1", Approximate),
        ];
        for (q, want, how) in cases {
            assert_eq!(first_how(&ix, q), (want.to_string(), how), "{q:?}");
        }
        // Every hit of a misspelling-only answer is approximate.
        let r = ix.lookup("acme-titel.com", 20, |_| false);
        assert!(r.hits.len() > 1, "{r:?}");
        assert!(r.hits.iter().all(|(_, how)| *how == Approximate), "{r:?}");
    }

    #[test]
    fn affected_matches_come_first_before_the_limit_and_the_total_counts_all() {
        let ix = index();
        // Engine order for "a": nothing affected.
        let plain = found(&ix, "a", 100);
        let all = ix.lookup("a", 100, |_| false);
        assert_eq!(all.total, plain.len());
        assert!(!all.total_is_lower_bound);
        // The last of them affected: first with the smallest limit, and
        // the total is still every match, not the page.
        let last = ix.search("a", 100).pop().expect("matches");
        let r = ix.lookup("a", 1, |f| *f == last);
        assert_eq!(r.hits.len(), 1);
        assert_eq!(r.hits[0].0, last);
        assert_eq!(r.total, plain.len());
        // Affected first, each group in engine order.
        let affected = |f: &Found| matches!(f, Found::Mailbox { tenant: 1, .. });
        let r = ix.lookup("a", 100, affected);
        let (yes, no): (Vec<_>, Vec<_>) = ix.search("a", 100).into_iter().partition(affected);
        let want: Vec<Found> = yes.into_iter().chain(no).collect();
        assert_eq!(r.hits.into_iter().map(|h| h.0).collect::<Vec<_>>(), want);
        // The limit cuts the ranked list, not the ranking.
        for limit in 1..want.len() {
            let r = ix.lookup("a", limit, affected);
            assert_eq!(
                r.hits.iter().map(|h| h.0.clone()).collect::<Vec<_>>(),
                want[..limit]
            );
        }
    }

    #[test]
    fn exact_beats_affected_and_the_closest_misspelling_comes_first() {
        let ix = index();
        // An exact tenant name first, whatever is affected.
        let r = ix.lookup("acme title & escrow", 20, |f| *f != Found::Tenant(0));
        assert_eq!(r.hits[0], (Found::Tenant(0), MatchQuality::Exact));
        // A prefix, unaffected, before an affected misspelling ("relief
        // without borders" is one edit from "relief-w").
        let r = ix.lookup("relief-w", 20, |f| *f == Found::Tenant(1));
        assert_eq!(
            r.hits,
            [
                (
                    Found::Domain {
                        tenant: 1,
                        domain: "relief-without-borders.org".into()
                    },
                    MatchQuality::Prefix
                ),
                (Found::Tenant(1), MatchQuality::Approximate)
            ]
        );
        // "did you mean" names the closest: one edit (acme-title.com,
        // unaffected) before two (acme-title2.com, affected).
        let r = ix.lookup(
            "acme-titel.com",
            20,
            |f| matches!(f, Found::Domain { domain, .. } if domain == "acme-title2.com"),
        );
        assert!(
            matches!(&r.hits[0].0, Found::Domain { domain, .. } if domain == "acme-title.com"),
            "{r:?}"
        );
    }

    #[test]
    fn more_matches_than_the_candidates_are_counted_as_at_least() {
        let tenants = [TenantEntry {
            name: "Many",
            domains: &[],
        }];
        let addresses: Vec<String> = (0..CANDIDATES + 50)
            .map(|i| format!("user{i:05}@many.example"))
            .collect();
        let ix = AddressIndex::build(&tenants, addresses.iter().map(|a| (0, a.as_str())));
        let r = ix.lookup("user", 20, |_| false);
        assert_eq!(r.hits.len(), 20);
        assert_eq!((r.total, r.total_is_lower_bound), (CANDIDATES, true));
        // Fewer: counted exactly.
        let r = ix.lookup("user0000", 5, |_| false);
        assert_eq!((r.total, r.total_is_lower_bound), (10, false));
        // Fewer than the limit: misspellings are searched too, and counted
        // (here more than the candidates).
        let r = ix.lookup("user0000", 20, |_| false);
        assert_eq!(
            r.hits[..10]
                .iter()
                .filter(|h| h.1 == MatchQuality::Prefix)
                .count(),
            10
        );
        assert_eq!(r.hits[10].1, MatchQuality::Approximate);
        assert_eq!((r.total, r.total_is_lower_bound), (CANDIDATES, true));
        // Nothing: zero, exactly.
        let r = ix.lookup("nobody@nowhere.example", 20, |_| false);
        assert_eq!(
            (r.hits.len(), r.total, r.total_is_lower_bound),
            (0, 0, false)
        );
    }

    #[test]
    fn the_limit_cuts_the_list_not_the_order() {
        let ix = index();
        let all = found(&ix, "a", 100);
        assert!(all.len() > 5, "{all:?}");
        for limit in 0..all.len() {
            assert_eq!(found(&ix, "a", limit), all[..limit], "limit {limit}");
        }
        assert!(ix.search("alice", 0).is_empty());
    }

    #[test]
    fn queries_and_addresses_in_any_case() {
        let ix = index();
        assert_eq!(
            first(&ix, "ALICE.Smith@ACME-title.COM"),
            "alice.smith@acme-title.com"
        );
        assert_eq!(
            first(&ix, "carol.lee@relief-without-borders.org"),
            "carol.lee@relief-without-borders.org"
        );
        assert_eq!(
            first(&ix, " CAROL "),
            "carol.lee@relief-without-borders.org"
        );
        assert_eq!(first(&ix, "Acme-Title2.com"), "acme-title2.com");
    }

    #[test]
    fn addresses_added_on_rebuild_are_found() {
        let (t, mut m) = fixture();
        let ix = build(&t, &m);
        assert!(ix.search("dave.new@cmae.net", 20).is_empty());
        m.push((2, "dave.new@cmae.net"));
        m.push((0, "erin@brand-new.example"));
        let ix = build(&t, &m);
        assert_eq!(
            ix.search("dave.new@cmae.net", 20)[0],
            Found::Mailbox {
                tenant: 2,
                mailbox: 10
            }
        );
        assert_eq!(first(&ix, "dave"), "dave.new@cmae.net");
        // A domain no tenant lists belongs to its first address's tenant.
        assert_eq!(
            ix.search("brand-new.example", 1),
            [Found::Domain {
                tenant: 0,
                domain: "brand-new.example".into()
            }]
        );
    }

    #[test]
    fn ids_are_input_positions_and_repeats_are_indexed_once() {
        let ix = AddressIndex::build(
            &[TenantEntry {
                name: "One",
                domains: &[],
            }],
            [
                (0, "b@x.org"),
                (0, "a@x.org"),
                (0, "B@X.org"),
                (0, "postmaster"),
            ],
        );
        assert_eq!(ix.mailboxes(), 3);
        assert_eq!(ix.address(0), "b@x.org");
        assert_eq!(ix.address(2), "b@x.org");
        assert_eq!(ix.address(3), "postmaster");
        assert_eq!(
            ix.search("b@x.org", 20),
            [Found::Mailbox {
                tenant: 0,
                mailbox: 0
            }]
        );
        // An address without a domain: found by its local part.
        assert_eq!(
            ix.search("postm", 20),
            [Found::Mailbox {
                tenant: 0,
                mailbox: 3
            }]
        );
        let empty = AddressIndex::default();
        assert!(empty.search("anything", 20).is_empty());
        assert_eq!(empty.mailboxes(), 0);
    }

    #[test]
    fn empty_oversized_and_control_queries_find_nothing_and_do_not_panic() {
        let ix = index();
        let long = "x".repeat(100_000);
        let long_address = format!("{}@{}", "a".repeat(5_000), "b".repeat(5_000));
        let umlauts = "ä".repeat(300);
        for q in [
            "",
            "   ",
            "\t\n",
            "\u{0}",
            "a\u{0}b",
            "\u{1b}[31m",
            "\u{7f}\u{7f}\u{7f}\u{7f}",
            "@",
            "@@",
            "🦀@🦀",
            long.as_str(),
            long_address.as_str(),
            umlauts.as_str(),
        ] {
            for limit in [1, 20] {
                assert!(ix.search(q, limit).is_empty(), "{q:?}");
            }
        }
        // Others only must not panic or exceed the limit.
        for q in [
            "İ",
            "ß",
            ".",
            "-",
            "@acme-title.com",
            "alice.smith@",
            "a@b@c",
        ] {
            assert!(ix.search(q, 5).len() <= 5, "{q:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 300,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        /// Every address (and domain) a naive `starts_with` scan finds is
        /// found, and an exact address comes first.
        #[test]
        fn every_exact_and_prefix_match_is_found(
            mailboxes in proptest::collection::vec(
                (0u32..3, "[ab.]{1,5}@[ab]{1,3}\\.(com|de)"), 1..40),
            pick in 0usize..1000,
            cut in 0usize..20,
            other in "[ab.@]{1,8}",
        ) {
            let tenants: Vec<(&str, Vec<String>)> = vec![
                ("Alpha Bank", strings(&["ab.com"])),
                ("Beta", vec![]),
                ("Gamma Ba", strings(&["ba.de", "abba.com"])),
            ];
            let m: Vec<(u32, &str)> = mailboxes.iter().map(|(t, a)| (*t, a.as_str())).collect();
            let ix = build(&tenants, &m);
            let address = &mailboxes[pick % mailboxes.len()].1;
            let prefix = &address[..cut.min(address.len() - 1) + 1];
            for q in [address.as_str(), prefix, other.as_str()] {
                let hits = ix.search(q, 100_000);
                let got: HashSet<String> = hits
                    .iter()
                    .map(|h| match h {
                        Found::Mailbox { mailbox, .. } => ix.address(*mailbox).to_string(),
                        Found::Domain { domain, .. } => format!("domain {domain}"),
                        Found::Tenant(t) => format!("tenant {t}"),
                    })
                    .collect();
                for (_, a) in &mailboxes {
                    if a.starts_with(q) {
                        prop_assert!(got.contains(a), "{q:?} misses {a:?}: {hits:?}");
                    }
                }
                if !q.contains('@') {
                    let domains = mailboxes
                        .iter()
                        .filter_map(|(_, a)| a.split_once('@').map(|(_, d)| d.to_string()))
                        .chain(tenants.iter().flat_map(|t| t.1.clone()));
                    for d in domains.filter(|d| d.starts_with(q)) {
                        prop_assert!(got.contains(&format!("domain {d}")), "{q:?} misses {d:?}");
                    }
                }
            }
            let exact = ix.search(address, 1);
            prop_assert!(
                matches!(exact.first(), Some(Found::Mailbox { mailbox, .. }) if ix.address(*mailbox) == address),
                "{address:?}: {exact:?}"
            );
        }
    }
}
