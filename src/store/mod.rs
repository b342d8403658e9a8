//! The war room's durable state: the decisions people made (priorities) and
//! the record of who did what (audit). The gateway writes here before it
//! changes anything a console sees, so a restart loses nothing.
//!
//! One trait, so a PostgreSQL implementation can serve several gateway
//! replicas: the version check of a decision happens inside the store's
//! transaction, not only in one gateway's memory.

mod leader;
mod postgres;
mod sqlite;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::domain::incident::{Event, Observation};
use crate::domain::priority::{AuditEvent, PriorityDecision};
use crate::domain::update::{Delivery, Update};

pub use leader::{LeaderInfo, Leadership, Role, RoleStatus};
pub use postgres::{PgStore, is_postgres_url};
pub use sqlite::{SqliteStore, update_id};

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

pub use crate::domain::update::DeliveryStatus;

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

    /// Stores a status update (under the next sequence number: its `id`
    /// and `seq` are not read), one pending delivery per (channel, target)
    /// and the audit event, in one transaction. An `operation_id` seen
    /// before returns that update and `false`: publishing twice publishes
    /// once.
    fn publish(
        &mut self,
        update: &Update,
        deliveries: &[(String, String)],
        audit_detail: &str,
    ) -> Result<(Update, bool), StoreError>;
    /// Every status update, oldest first.
    fn status_updates(&self) -> Result<Vec<Update>, StoreError>;
    /// The update published under `operation_id`, if any.
    fn update_by_operation(&self, operation_id: &str) -> Result<Option<Update>, StoreError>;
    /// The newest status update.
    fn latest_update(&self) -> Result<Option<Update>, StoreError>;
    /// Deliveries counted per channel, with the newest problem of each.
    fn delivery_summary(&self) -> Result<Vec<crate::domain::update::ChannelSummary>, StoreError>;
    /// Deliveries of one update (or of all), oldest first.
    fn deliveries(&self, update_id: Option<&str>) -> Result<Vec<DeliveryStatus>, StoreError>;
    /// Claims for `owner` (a gateway run) up to `limit` pending deliveries
    /// whose next attempt is due at `now` and that no other owner holds a
    /// live claim on, until `now + lease`; returns them, oldest due first.
    /// On PostgreSQL two replicas never get the same delivery while its
    /// claim lives (`FOR UPDATE SKIP LOCKED`); a SQLite file has one owner,
    /// and its claims are not recorded.
    fn claim_due(
        &mut self,
        owner: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Extends `owner`'s claim on a pending delivery to `now + lease`, just
    /// before an attempt; `false` when the delivery is no longer pending or
    /// another owner took it (its claim had expired): do not attempt it.
    fn renew_claim(
        &mut self,
        delivery_id: u64,
        owner: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> Result<bool, StoreError>;
    /// When the next pending delivery is due, if any is pending.
    fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Records `owner`'s attempt: `state` pending (retry at `next_attempt`),
    /// sent or failed, with what happened and whether it may have taken
    /// effect unconfirmed (read back as `Delivery::maybe_applied`), and
    /// releases the claim. `false`, and nothing recorded, when `owner` no
    /// longer holds the claim (it stalled past its lease and another owner
    /// took the delivery, or it is no longer pending): fencing, so a
    /// delivery is counted once across replicas.
    fn record_attempt(
        &mut self,
        delivery_id: u64,
        owner: &str,
        state: &str,
        detail: &str,
        next_attempt: DateTime<Utc>,
        maybe_applied: bool,
    ) -> Result<bool, StoreError>;
    /// Appends to the platform incident's journal, in one transaction.
    fn journal_append(&mut self, events: &[Event]) -> Result<(), StoreError>;
    /// The whole journal, oldest first.
    fn journal(&self) -> Result<Vec<Event>, StoreError>;
    /// Keeps the latest observation of each mailbox (replacing older ones).
    fn observations_put(&mut self, obs: &[(String, Observation)]) -> Result<(), StoreError>;
    /// The latest observation of every mailbox observed.
    fn observations(&self) -> Result<Vec<(String, Observation)>, StoreError>;

    /// A channel's durable memory.
    fn memory_get(&self, channel: &str, key: &str) -> Result<Option<String>, StoreError>;
    fn memory_put(&mut self, channel: &str, key: &str, value: &str) -> Result<(), StoreError>;
}

/// Opens the SQLite state file at `path`, creating it (and its directory)
/// when absent. A file that exists but is not a warroom state database is an
/// error: starting empty would silently drop every decision made so far.
pub fn open(path: &Path) -> Result<Box<dyn Store>, StoreError> {
    Ok(Box::new(SqliteStore::open(path)?))
}

/// Where the war room's state is kept: `[server] store` and `--store`.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    /// A SQLite file (the default).
    File(PathBuf),
    /// A PostgreSQL database, `postgres://USER:PASSWORD@HOST:PORT/DB`.
    Postgres(String),
}

impl Location {
    /// A `postgres://` or `postgresql://` URL is a database; anything else
    /// is a file path.
    pub fn parse(s: &str) -> Self {
        if is_postgres_url(s) {
            Location::Postgres(s.trim().to_string())
        } else {
            Location::File(PathBuf::from(s))
        }
    }

    /// As it may be shown: a URL without its password.
    pub fn shown(&self) -> String {
        match self {
            Location::File(p) => p.display().to_string(),
            Location::Postgres(url) => crate::domain::redact::url_shown(url).into_owned(),
        }
    }
}

/// Opens the store at `location`: the SQLite file (as `open`) or the
/// PostgreSQL database, whose schema is made or upgraded; a database that
/// is not a warroom database, or of a newer schema, is refused untouched.
pub fn open_at(location: &Location) -> Result<Box<dyn Store>, StoreError> {
    match location {
        Location::File(path) => open(path),
        Location::Postgres(url) => Ok(Box::new(PgStore::open(url)?)),
    }
}

/// A store that lives as long as the process: the embedded demo's.
pub fn in_memory() -> Box<dyn Store> {
    Box::new(SqliteStore::in_memory())
}
