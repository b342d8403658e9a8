//! The war room's durable state: the decisions people made (priorities) and
//! the record of who did what (audit). The gateway writes here before it
//! changes anything a console sees, so a restart loses nothing.
//!
//! One trait, so a PostgreSQL implementation can serve several gateway
//! replicas: the version check of a decision happens inside the store's
//! transaction, not only in one gateway's memory.

mod sqlite;

use std::path::Path;

use crate::domain::priority::{AuditEvent, PriorityDecision};

pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The caller's `expected_version` is not the current one.
    #[error("stale version {expected}: the tenant's priority is now at version {}", current.as_ref().map_or(0, |c| c.version))]
    Conflict {
        expected: u64,
        current: Option<PriorityDecision>,
    },
    #[error("state store: {0}")]
    Io(String),
}

pub trait Store: Send {
    /// Every tenant whose priority someone set, at its latest version.
    fn priorities(&self) -> Result<Vec<PriorityDecision>, StoreError>;
    /// Stores `decision` and its audit event (action `set_priority`, with
    /// `detail`) in one transaction, if the tenant's current version is
    /// still `expected_version`; the stored decision gets version
    /// `expected_version + 1`, whatever `decision.version` says.
    fn record_priority(
        &mut self,
        expected_version: u64,
        decision: &PriorityDecision,
        detail: &str,
    ) -> Result<(PriorityDecision, AuditEvent), StoreError>;
    /// Audit events with an id above `after`, oldest first.
    fn audit_events(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError>;
}

/// Opens the SQLite state file at `path`, creating it (and its directory)
/// when absent. A file that exists but is not a warroom state database is an
/// error: starting empty would silently drop every decision made so far.
pub fn open(path: &Path) -> Result<Box<dyn Store>, StoreError> {
    Ok(Box::new(SqliteStore::open(path)?))
}

/// A store that lives as long as the process: the embedded demo's.
pub fn in_memory() -> Box<dyn Store> {
    Box::new(SqliteStore::in_memory())
}
