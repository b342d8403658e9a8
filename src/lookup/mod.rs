//! One lookup engine for every source: prefix and fuzzy search over mailbox
//! addresses, domains and tenant names.
//!
//! Why a module of its own: the search started inside the simulator, mixed
//! with the simulator's computed addresses, and a real platform answered
//! the same query with a plain `starts_with` scan, so the demo and a
//! platform disagreed on what `alcie.smith@acme` finds. Here the search is
//! general and any source feeds it: [`AddressIndex`] is built from explicit
//! entries (tenant names, their domains, mailbox addresses) and rebuilt when
//! a poll changes the user list; the simulator keeps its own thin index
//! (`sources::simulator::index`) over the same engine, because its
//! addresses are computed, not stored.
//!
//! How a search works (`engine/`):
//!
//! - Every string set is sorted and searched the same way: a walk down the
//!   implicit trie of the sorted strings (children from a cached top of the
//!   trie, then by galloping search) carrying the band of an
//!   optimal-string-alignment edit-distance row for the query (insert,
//!   delete, replace, swap), pruned as soon as the row's minimum exceeds the
//!   allowed distance: 0 for queries (or query parts) shorter than 4 bytes,
//!   1 up to 7, 2 from 8 to 64, 0 beyond.
//! - The walk yields ranges of the sorted set with a score `3d` (the whole
//!   string is within `d` edits), `3d + 1` (its stem, the text before a
//!   stem byte, is: `acme-title` for the domain `acme-title.com`, the local
//!   part for `alice@`) or `3d + 2` (a prefix of it is).
//! - A query `local@domain` combines a local-part score (whole local part
//!   only) with a domain score; misspellings never cross the `@`. A query
//!   without `@` is matched as a prefix of local parts, of domains and of
//!   tenant-name words (`title` finds "Acme Title & Escrow").
//! - Results come by score level (0: exact, 1-2: stem and prefix, then
//!   misspellings by distance), then in byte order of the matched text
//!   within a level (the address, the domain, or a tenant name from the
//!   matching word on): deterministic, and lexicographic for plain prefix
//!   matches.
//! - Each result says how it matched ([`MatchQuality`]): exact (score 0,
//!   the whole address, domain or tenant name), prefix (scores 1-2, and a
//!   tenant found by a later word of its name) or approximate (3 and
//!   above: at least one edit).
//! - Ranking: a search collects up to [`CANDIDATES`] matches in the order
//!   above, then ranks them by match quality, affected first within a
//!   quality (the source says what is affected), then that order; the
//!   limit is applied last. So `acme` shows the Acme tenants with affected
//!   mailboxes first however many Acme tenants sort before them. The total
//!   is the number of candidates, exact unless the search stopped at the
//!   cap or a walk ran out of budget (then it is a lower bound).
//! - Work per query is bounded: a walk visits at most 100,000 trie nodes
//!   per set, and at most `CANDIDATES + 1` results are collected. Exact and
//!   prefix ranges are also found by binary search, so a walk cut short
//!   loses no exact or prefix match.
//!
//! Measurements: docs/lookup-benchmark.md.

mod address;
pub(crate) mod engine;

pub use address::{AddressIndex, Found, TenantEntry};
pub use engine::CANDIDATES;

/// How a result matched the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchQuality {
    /// The whole address, domain or tenant name is what was typed (any
    /// case).
    Exact,
    /// What was typed starts it (or, for a tenant, a word of its name; for
    /// a domain, its name without the suffix).
    Prefix,
    /// A misspelling: within one or two edits of what was typed, not
    /// exactly it.
    Approximate,
}

impl MatchQuality {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchQuality::Exact => "exact",
            MatchQuality::Prefix => "prefix",
            MatchQuality::Approximate => "approximate",
        }
    }
}

/// Up to the limit of a search's results, ranked, and how many there were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked<T> {
    /// Best first: by match quality (exact, prefix, approximate), then
    /// affected first, then the engine's order (score level, byte order).
    pub hits: Vec<(T, MatchQuality)>,
    /// How many matched in all; `hits` are the first of them.
    pub total: usize,
    /// `total` is a lower bound: the search stopped counting (more than
    /// [`CANDIDATES`] matches, or a misspelling walk ran out of budget).
    pub total_is_lower_bound: bool,
}

impl<T> Default for Ranked<T> {
    fn default() -> Self {
        Ranked {
            hits: Vec::new(),
            total: 0,
            total_is_lower_bound: false,
        }
    }
}

impl<T> Ranked<T> {
    /// The same ranking with each hit mapped.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Ranked<U> {
        self.filter_map(|h| Some(f(h)))
    }

    /// The same ranking with each hit mapped (or dropped: then the total
    /// is kept, and may count it).
    pub fn filter_map<U>(self, mut f: impl FnMut(T) -> Option<U>) -> Ranked<U> {
        Ranked {
            hits: self
                .hits
                .into_iter()
                .filter_map(|(h, q)| f(h).map(|u| (u, q)))
                .collect(),
            total: self.total,
            total_is_lower_bound: self.total_is_lower_bound,
        }
    }
}
