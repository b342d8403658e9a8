//! The record of a platform incident as it unfolds: what the sweep found,
//! what the repairs did, how the scope was revised and how fast the work
//! went. The gateway appends to it as it learns, and replays it when it
//! starts, so a restarted gateway continues the same incident instead of
//! announcing "no damaged mailbox found".

use chrono::{DateTime, Utc};

use super::scope::ScopeRevision;

/// What the last probe of a mailbox saw, kept as the source wrote it
/// (JSON): the baseline a later probe compares with (a changed UIDVALIDITY
/// means a lost uidlist was rebuilt in between), also after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observation {
    pub data: String,
    pub at: Option<DateTime<Utc>>,
}

/// One entry of the incident journal.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// The sweep found damage of `kind` (corrupt_log, lost_uidlist,
    /// stale_index) in `mailbox`.
    Found {
        mailbox: String,
        kind: String,
        detail: String,
    },
    /// The reindex repaired `mailbox`.
    Repaired { mailbox: String },
    /// The reindex gave up on `mailbox`.
    Failed { mailbox: String, why: String },
    /// The scope of the repair was revised.
    Scope(ScopeRevision),
    /// A closed rate sample of a job ("repair", "sweep"), units per second
    /// of busy time.
    Rate { job: String, per_second: f64 },
    /// A sweep pass over `mailboxes` mailboxes was completed.
    PassDone { pass: u32, mailboxes: u64 },
}

impl Entry {
    /// The name stored with the entry.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Entry::Found { .. } => "found",
            Entry::Repaired { .. } => "repaired",
            Entry::Failed { .. } => "failed",
            Entry::Scope(_) => "scope",
            Entry::Rate { .. } => "rate",
            Entry::PassDone { .. } => "pass_done",
        }
    }
}

/// An entry and when it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub entry: Entry,
}
