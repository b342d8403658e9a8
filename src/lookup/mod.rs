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
//! How a search works (`engine.rs`):
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
//! - Work per query is bounded: a walk visits at most 100,000 trie nodes
//!   per set, and results stop at the limit. Exact and prefix ranges are
//!   also found by binary search, so a walk cut short loses no exact or
//!   prefix match.
//!
//! Measurements: docs/lookup-benchmark.md.

mod address;
pub(crate) mod engine;

pub use address::{AddressIndex, Found, TenantEntry};
