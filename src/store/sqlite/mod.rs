//! The default store: one SQLite file (WAL, synchronous FULL: a decision
//! the gateway acknowledged survives a crash of the gateway or the machine).
//!
//! Here: opening the file and the `Store` on it; `schema.rs` checks,
//! creates and upgrades the schema.

mod schema;

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{DeliveryStatus, Store, StoreError};
use crate::domain::incident::{Columns, Entry, Event, Observation};
use crate::domain::priority::{AuditEvent, PriorityDecision};
use crate::domain::update::{Delivery, Update};
use crate::domain::{IncidentState, Priority};
pub struct SqliteStore {
    conn: Connection,
    what: String,
}

fn io(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("{what}: {e}"))
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let what = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| io(&what, format!("cannot create {}: {e}", dir.display())))?;
        }
        let existed = match std::fs::metadata(path) {
            // An empty file is not a new state: something made it (a
            // truncation, a `touch`, a full disk) and taking it as new
            // would start the war room from nothing without a word.
            Ok(m) if m.len() == 0 => {
                return Err(io(
                    &what,
                    "the file is empty (0 bytes), not a warroom state file; refusing to start \
                     with an empty war-room state (if it is new, delete it and start again; \
                     otherwise pass the right --state)",
                ));
            }
            Ok(_) => true,
            Err(_) => false,
        };
        let conn = Connection::open(path).map_err(|e| io(&what, format!("cannot open: {e}")))?;
        let store = SqliteStore { conn, what };
        store.prepare(existed)?;
        Ok(store)
    }

    pub fn in_memory() -> Self {
        let conn = Connection::open_in_memory().expect("SQLite can always open a memory database");
        let store = SqliteStore {
            conn,
            what: "in-memory state".into(),
        };
        store
            .prepare(false)
            .expect("a fresh memory database takes the schema");
        store
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        io(&self.what, e)
    }
    fn current(conn: &Connection, tenant: &str) -> rusqlite::Result<Option<PriorityDecision>> {
        conn.query_row(
            "SELECT tenant_id, priority, rank, version, set_by, set_at_ms, reason
             FROM priorities WHERE tenant_id = ?1",
            [tenant],
            decision_row,
        )
        .optional()
    }
}

fn update_id_of(seq: i64) -> String {
    update_id(seq as u64)
}

fn time(ms: i64) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or(rusqlite::Error::IntegralValueOutOfRange(0, ms))
}

fn decision_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PriorityDecision> {
    let p: i64 = r.get(1)?;
    let priority = Priority::ALL
        .get(p as usize)
        .copied()
        .ok_or(rusqlite::Error::IntegralValueOutOfRange(1, p))?;
    Ok(PriorityDecision {
        tenant_id: r.get(0)?,
        priority,
        rank: r.get(2)?,
        version: r.get::<_, i64>(3)? as u64,
        set_by: r.get(4)?,
        set_at: time(r.get(5)?)?,
        reason: r.get(6)?,
    })
}

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEvent> {
    Ok(AuditEvent {
        id: r.get::<_, i64>(0)? as u64,
        at: time(r.get(1)?)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        target: r.get(4)?,
        reason: r.get(5)?,
        detail: r.get(6)?,
    })
}

fn state_from(s: &str) -> IncidentState {
    IncidentState::parse(s).unwrap_or_default()
}

const UPDATE_COLUMNS: &str = "seq, operation_id, state, title, body, components, next_update_ms, published_by, published_at_ms, simulated";

fn update_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Update> {
    let seq = r.get::<_, i64>(0)? as u64;
    let components: String = r.get(5)?;
    Ok(Update {
        id: update_id(seq),
        seq,
        operation_id: r.get(1)?,
        state: state_from(&r.get::<_, String>(2)?),
        title: r.get(3)?,
        body: r.get(4)?,
        components: serde_json::from_str(&components).unwrap_or_default(),
        next_update: r.get::<_, Option<i64>>(6)?.map(time).transpose()?,
        published_by: r.get(7)?,
        published_at: time(r.get(8)?)?,
        simulated: r.get::<_, i64>(9)? != 0,
    })
}

/// "su-000042": a status update's id from its sequence number.
pub fn update_id(seq: u64) -> String {
    format!("su-{seq:06}")
}

fn seq_of(id: &str) -> Option<i64> {
    id.strip_prefix("su-")?.parse().ok()
}

impl Store for SqliteStore {
    fn publish(
        &mut self,
        new: &Update,
        deliveries: &[(String, String)],
        audit_detail: &str,
    ) -> Result<(Update, bool), StoreError> {
        let what = self.what.clone();
        let e = |e: rusqlite::Error| io(&what, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e)?;
        let existing = tx
            .query_row(
                &format!("SELECT {UPDATE_COLUMNS} FROM status_updates WHERE operation_id = ?1"),
                [&new.operation_id],
                update_row,
            )
            .optional()
            .map_err(e)?;
        if let Some(u) = existing {
            return Ok((u, false));
        }
        let at_ms = new.published_at.timestamp_millis();
        tx.execute(
            "INSERT INTO status_updates (operation_id, state, title, body, components, next_update_ms, published_by, published_at_ms, simulated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                new.operation_id,
                new.state.as_str(),
                new.title,
                new.body,
                serde_json::to_string(&new.components).unwrap_or_else(|_| "[]".into()),
                new.next_update.map(|t| t.timestamp_millis()),
                new.published_by,
                at_ms,
                new.simulated as i64,
            ],
        )
        .map_err(e)?;
        let seq = tx.last_insert_rowid();
        for (channel, target) in deliveries {
            tx.execute(
                "INSERT OR IGNORE INTO deliveries (seq, channel, target, state, attempts, detail, next_attempt_ms, updated_ms)
                 VALUES (?1, ?2, ?3, 'pending', 0, '', ?4, ?4)",
                params![seq, channel, target, at_ms],
            )
            .map_err(e)?;
        }
        tx.execute(
            "INSERT INTO audit (at_ms, actor, action, target, reason, detail)
             VALUES (?1, ?2, 'publish', ?3, ?4, ?5)",
            params![
                at_ms,
                new.published_by,
                update_id(seq as u64),
                new.title,
                audit_detail
            ],
        )
        .map_err(e)?;
        let u = tx
            .query_row(
                &format!("SELECT {UPDATE_COLUMNS} FROM status_updates WHERE seq = ?1"),
                [seq],
                update_row,
            )
            .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok((u, true))
    }

    fn status_updates(&self) -> Result<Vec<Update>, StoreError> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {UPDATE_COLUMNS} FROM status_updates ORDER BY seq"
            ))
            .map_err(|e| self.err(e))?;
        st.query_map([], update_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    fn update_by_operation(&self, operation_id: &str) -> Result<Option<Update>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {UPDATE_COLUMNS} FROM status_updates WHERE operation_id = ?1"),
                [operation_id],
                update_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn latest_update(&self) -> Result<Option<Update>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {UPDATE_COLUMNS} FROM status_updates ORDER BY seq DESC LIMIT 1"),
                [],
                update_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn delivery_summary(&self) -> Result<Vec<crate::domain::update::ChannelSummary>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT channel,
                        SUM(state = 'pending'), SUM(state = 'sent'), SUM(state = 'failed'),
                        (SELECT detail FROM deliveries p WHERE p.channel = d.channel
                           AND p.state != 'sent' AND p.detail != '' ORDER BY updated_ms DESC LIMIT 1)
                 FROM deliveries d GROUP BY channel ORDER BY channel",
            )
            .map_err(|e| self.err(e))?;
        st.query_map([], |r| {
            Ok(crate::domain::update::ChannelSummary {
                channel: r.get(0)?,
                pending: r.get::<_, i64>(1)? as u64,
                sent: r.get::<_, i64>(2)? as u64,
                failed: r.get::<_, i64>(3)? as u64,
                last_problem: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }

    fn deliveries(&self, update_id: Option<&str>) -> Result<Vec<DeliveryStatus>, StoreError> {
        let seq = update_id.map(|id| seq_of(id).unwrap_or(-1));
        let mut st = self
            .conn
            .prepare(
                "SELECT id, seq, channel, target, state, attempts, detail, updated_ms
                 FROM deliveries WHERE ?1 IS NULL OR seq = ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        st.query_map([seq], |r| {
            Ok(DeliveryStatus {
                id: r.get::<_, i64>(0)? as u64,
                update_id: update_id_of(r.get(1)?),
                channel: r.get(2)?,
                target: r.get(3)?,
                state: r.get(4)?,
                attempts: r.get(5)?,
                detail: r.get(6)?,
                at: time(r.get(7)?)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }

    /// One gateway owns a SQLite file: the claim is not recorded, and every
    /// due delivery is its.
    fn claim_due(
        &mut self,
        _owner: &str,
        now: DateTime<Utc>,
        _lease: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, seq, channel, target, attempts, detail, maybe_applied FROM deliveries
                 WHERE state = 'pending' AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, id LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        st.query_map(params![now.timestamp_millis(), limit as i64], |r| {
            Ok(Delivery {
                id: r.get::<_, i64>(0)? as u64,
                update_id: update_id_of(r.get(1)?),
                channel: r.get(2)?,
                target: r.get(3)?,
                attempts: r.get(4)?,
                last_detail: r.get(5)?,
                maybe_applied: r.get::<_, i64>(6)? != 0,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }

    fn renew_claim(
        &mut self,
        delivery_id: u64,
        _owner: &str,
        _now: DateTime<Utc>,
        _lease: std::time::Duration,
    ) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM deliveries WHERE id = ?1 AND state = 'pending'",
                params![delivery_id as i64],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let ms: Option<i64> = self
            .conn
            .query_row(
                "SELECT MIN(next_attempt_ms) FROM deliveries WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        ms.map(time).transpose().map_err(|e| self.err(e))
    }

    fn record_attempt(
        &mut self,
        delivery_id: u64,
        _owner: &str,
        state: &str,
        detail: &str,
        next_attempt: DateTime<Utc>,
        maybe_applied: bool,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE deliveries SET state = ?2, attempts = attempts + 1, detail = ?3,
                 next_attempt_ms = ?4, updated_ms = ?5, maybe_applied = ?6
                 WHERE id = ?1 AND state = 'pending'",
                params![
                    delivery_id as i64,
                    state,
                    detail,
                    next_attempt.timestamp_millis(),
                    Utc::now().timestamp_millis(),
                    maybe_applied
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    fn journal_append(&mut self, events: &[Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction().map_err(|e| io(&self.what, e))?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO incident_journal (at_ms, kind, mailbox, label, detail, n1, n2, x)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(|e| io(&self.what, e))?;
            for ev in events {
                let c = ev.entry.columns();
                st.execute(params![
                    ev.at.timestamp_millis(),
                    ev.entry.kind_name(),
                    c.mailbox,
                    c.label,
                    c.detail,
                    c.n1,
                    c.n2,
                    c.x
                ])
                .map_err(|e| io(&self.what, e))?;
            }
        }
        tx.commit().map_err(|e| io(&self.what, e))
    }

    fn journal(&self) -> Result<Vec<Event>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT at_ms, kind, mailbox, label, detail, n1, n2, x
                 FROM incident_journal ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, f64>(7)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for (at_ms, kind, mailbox, label, detail, n1, n2, x) in rows {
            let at = DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
            let c = Columns {
                mailbox: &mailbox,
                label: &label,
                detail: &detail,
                n1,
                n2,
                x,
            };
            let entry = Entry::from_columns(&kind, at, c).map_err(|e| self.err(e))?;
            out.push(Event { at, entry });
        }
        Ok(out)
    }

    fn observations_put(&mut self, obs: &[(String, Observation)]) -> Result<(), StoreError> {
        if obs.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction().map_err(|e| io(&self.what, e))?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO observations (mailbox, data, at_ms) VALUES (?1, ?2, ?3)",
                )
                .map_err(|e| io(&self.what, e))?;
            for (mailbox, o) in obs {
                st.execute(params![mailbox, o.data, o.at.map(|t| t.timestamp_millis())])
                    .map_err(|e| io(&self.what, e))?;
            }
        }
        tx.commit().map_err(|e| io(&self.what, e))
    }

    fn observations(&self) -> Result<Vec<(String, Observation)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT mailbox, data, at_ms FROM observations")
            .map_err(|e| self.err(e))?;
        st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Observation {
                    data: r.get(1)?,
                    at: r
                        .get::<_, Option<i64>>(2)?
                        .and_then(DateTime::from_timestamp_millis),
                },
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }

    fn memory_get(&self, channel: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT value FROM channel_memory WHERE channel = ?1 AND key = ?2",
                [channel, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn memory_put(&mut self, channel: &str, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO channel_memory (channel, key, value) VALUES (?1, ?2, ?3)",
                [channel, key, value],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn priorities(&self) -> Result<Vec<PriorityDecision>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT tenant_id, priority, rank, version, set_by, set_at_ms, reason
                 FROM priorities ORDER BY tenant_id",
            )
            .map_err(|e| self.err(e))?;
        st.query_map([], decision_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    fn record_priority(
        &mut self,
        expected_version: u64,
        decision: &PriorityDecision,
        detail: &str,
    ) -> Result<(PriorityDecision, AuditEvent), StoreError> {
        let what = self.what.clone();
        let e = |e: rusqlite::Error| io(&what, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e)?;
        let current = Self::current(&tx, &decision.tenant_id).map_err(e)?;
        if current.as_ref().map_or(0, |c| c.version) != expected_version {
            return Err(StoreError::Conflict {
                expected: expected_version,
                current,
            });
        }
        let stored = PriorityDecision {
            version: expected_version + 1,
            ..decision.clone()
        };
        let at_ms = stored.set_at.timestamp_millis();
        tx.execute(
            "INSERT OR REPLACE INTO priorities
             (tenant_id, priority, rank, version, set_by, set_at_ms, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                stored.tenant_id,
                stored.priority as i64,
                stored.rank,
                stored.version as i64,
                stored.set_by,
                at_ms,
                stored.reason
            ],
        )
        .map_err(e)?;
        tx.execute(
            "INSERT INTO audit (at_ms, actor, action, target, reason, detail)
             VALUES (?1, ?2, 'set_priority', ?3, ?4, ?5)",
            params![
                at_ms,
                stored.set_by,
                stored.tenant_id,
                stored.reason,
                detail
            ],
        )
        .map_err(e)?;
        let id = tx.last_insert_rowid() as u64;
        tx.commit().map_err(e)?;
        let event = AuditEvent {
            id,
            at: stored.set_at,
            actor: stored.set_by.clone(),
            action: "set_priority".into(),
            target: stored.tenant_id.clone(),
            reason: stored.reason.clone(),
            detail: detail.to_string(),
        };
        Ok((stored, event))
    }

    fn audit_events(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, at_ms, actor, action, target, reason, detail
                 FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        st.query_map(params![after as i64, limit as i64], audit_row)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

    fn decision(tenant: &str, p: Priority, by: &str) -> PriorityDecision {
        PriorityDecision {
            tenant_id: tenant.into(),
            priority: p,
            rank: 0,
            version: 0,
            set_by: by.into(),
            set_at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            reason: "closing property sales".into(),
        }
    }

    pub(super) fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("warroom-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("state.sqlite")
    }

    #[test]
    fn decisions_and_audit_survive_reopening() {
        let path = temp("reopen");
        {
            let mut s = SqliteStore::open(&path).unwrap();
            let (d, ev) = s
                .record_priority(0, &decision("t00001", Priority::P0, "ana"), "P2 → P0")
                .unwrap();
            assert_eq!(d.version, 1);
            assert_eq!(ev.id, 1);
            s.record_priority(1, &decision("t00001", Priority::P1, "bo"), "P0 → P1")
                .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        let all = s.priorities().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].priority, all[0].version), (Priority::P1, 2));
        assert_eq!(all[0].set_by, "bo");
        assert_eq!(all[0].set_at.timestamp_millis(), 1_700_000_000_123);
        let audit = s.audit_events(0, 10).unwrap();
        let details: Vec<_> = audit.iter().map(|e| e.detail.as_str()).collect();
        assert_eq!(details, ["P2 → P0", "P0 → P1"]);
        assert_eq!(s.audit_events(1, 10).unwrap().len(), 1);
    }

    #[test]
    fn the_incident_journal_and_observations_survive_reopening() {
        let path = temp("journal");
        let at = DateTime::from_timestamp_millis(1_733_400_000_123).unwrap();
        let events = vec![
            Event {
                at,
                entry: Entry::Found {
                    mailbox: "a@t".into(),
                    kind: "corrupt_log".into(),
                    detail: "doveadm exit code 75".into(),
                },
            },
            Event {
                at,
                entry: Entry::Scope(crate::domain::scope::ScopeRevision {
                    at,
                    previous: 0,
                    scope: 1,
                    reason: "sweep 10%".into(),
                }),
            },
            Event {
                at,
                entry: Entry::Rate {
                    job: "repair".into(),
                    per_second: 2.5,
                },
            },
            Event {
                at,
                entry: Entry::Repaired {
                    mailbox: "a@t".into(),
                },
            },
            Event {
                at,
                entry: Entry::Failed {
                    mailbox: "b@t".into(),
                    why: "exit 67".into(),
                },
            },
            Event {
                at,
                entry: Entry::PassDone {
                    pass: 1,
                    mailboxes: 240,
                },
            },
        ];
        let obs = Observation {
            data: "{\"uidnext\":7}".into(),
            at: Some(at),
        };
        {
            let mut s = SqliteStore::open(&path).unwrap();
            s.journal_append(&events[..2]).unwrap();
            s.journal_append(&events[2..]).unwrap();
            s.observations_put(&[("a@t".into(), obs.clone())]).unwrap();
            let newer = Observation {
                data: "{\"uidnext\":8}".into(),
                ..obs.clone()
            };
            s.observations_put(&[("a@t".into(), newer)]).unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.journal().unwrap(), events);
        let back = s.observations().unwrap();
        assert_eq!(back.len(), 1, "one observation per mailbox: {back:?}");
        assert_eq!(back[0].1.data, "{\"uidnext\":8}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// The channel decides whether an attempt may have taken effect; the
    /// store keeps that, across a restart, for the next attempt to read.
    #[test]
    fn whether_an_attempt_may_have_taken_effect_survives_reopening() {
        let path = temp("maybe-applied");
        let at = DateTime::from_timestamp_millis(1_733_400_000_000).unwrap();
        {
            let mut s = SqliteStore::open(&path).unwrap();
            let u = Update {
                id: String::new(),
                seq: 0,
                operation_id: "op-1".into(),
                state: IncidentState::Investigating,
                title: "t".into(),
                body: "b".into(),
                components: Vec::new(),
                next_update: None,
                published_by: "ana".into(),
                published_at: at,
                simulated: false,
            };
            s.publish(&u, &[("statuspage".into(), String::new())], "")
                .unwrap();
            let d = s
                .claim_due("gw", at + chrono::Duration::days(1), LEASE, 10)
                .unwrap();
            assert_eq!(d.len(), 1);
            assert!(!d[0].maybe_applied, "a first attempt has no doubt");
            assert!(
                s.record_attempt(d[0].id, "gw", "pending", "timed out after 30 s", at, true)
                    .unwrap()
            );
        }
        let mut s = SqliteStore::open(&path).unwrap();
        let d = s
            .claim_due("gw", at + chrono::Duration::days(1), LEASE, 10)
            .unwrap();
        assert_eq!((d[0].attempts, d[0].maybe_applied), (1, true));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_stale_version_is_refused_and_names_the_current_decision() {
        let mut s = SqliteStore::in_memory();
        s.record_priority(0, &decision("t1", Priority::P0, "ana"), "")
            .unwrap();
        match s.record_priority(0, &decision("t1", Priority::P3, "bo"), "") {
            Err(StoreError::Conflict { expected, current }) => {
                assert_eq!(expected, 0);
                let c = current.unwrap();
                assert_eq!((c.version, c.set_by.as_str()), (1, "ana"));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(s.audit_events(0, 10).unwrap().len(), 1);
    }
}
