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

/// An entry as a store keeps it: plain columns, the same in every store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Columns<'a> {
    pub mailbox: &'a str,
    pub label: &'a str,
    pub detail: &'a str,
    pub n1: i64,
    pub n2: i64,
    pub x: f64,
}

impl Entry {
    /// The columns a store writes for this entry (with `kind_name`).
    pub fn columns(&self) -> Columns<'_> {
        let n = |v: u64| v.min(i64::MAX as u64) as i64;
        let (mailbox, label, detail, n1, n2, x): (&str, &str, &str, u64, u64, f64) = match self {
            Entry::Found {
                mailbox,
                kind,
                detail,
            } => (mailbox, kind, detail, 0, 0, 0.0),
            Entry::Repaired { mailbox } => (mailbox, "", "", 0, 0, 0.0),
            Entry::Failed { mailbox, why } => (mailbox, "", why, 0, 0, 0.0),
            Entry::Scope(r) => ("", "", &r.reason, r.previous, r.scope, 0.0),
            Entry::Rate { job, per_second } => ("", job, "", 0, 0, *per_second),
            Entry::PassDone { pass, mailboxes } => ("", "", "", u64::from(*pass), *mailboxes, 0.0),
        };
        Columns {
            mailbox,
            label,
            detail,
            n1: n(n1),
            n2: n(n2),
            x,
        }
    }

    /// The entry a store read back: `kind` its `kind_name`, the rest its
    /// `columns`, `at` when it happened. An unknown kind is an error.
    pub fn from_columns(kind: &str, at: DateTime<Utc>, c: Columns<'_>) -> Result<Entry, String> {
        let count = |n: i64| n.max(0) as u64;
        Ok(match kind {
            "found" => Entry::Found {
                mailbox: c.mailbox.into(),
                kind: c.label.into(),
                detail: c.detail.into(),
            },
            "repaired" => Entry::Repaired {
                mailbox: c.mailbox.into(),
            },
            "failed" => Entry::Failed {
                mailbox: c.mailbox.into(),
                why: c.detail.into(),
            },
            "scope" => Entry::Scope(ScopeRevision {
                at,
                previous: count(c.n1),
                scope: count(c.n2),
                reason: c.detail.into(),
            }),
            "rate" => Entry::Rate {
                job: c.label.into(),
                per_second: c.x,
            },
            "pass_done" => Entry::PassDone {
                pass: u32::try_from(c.n1).unwrap_or(0),
                mailboxes: count(c.n2),
            },
            other => return Err(format!("unknown journal entry {other:?}")),
        })
    }
}

/// An entry and when it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub entry: Entry,
}
