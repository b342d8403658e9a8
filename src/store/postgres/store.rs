//! The `Store` on PostgreSQL: each method one job on the connection thread,
//! decisions and publishes in one transaction with their audit event.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{Failure, PgStore, WRITE_LOCK, in_tx};
use crate::domain::incident::{Columns, Entry, Event, Observation};
use crate::domain::priority::{AuditEvent, PriorityDecision};
use crate::domain::update::{ChannelSummary, Delivery, Update};
use crate::domain::{IncidentState, Priority};
use crate::store::{DeliveryStatus, Store, StoreError, update_id};

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn bad(e: impl std::fmt::Display) -> Failure {
    Failure::Store(StoreError::Io(e.to_string()))
}

fn decision_row(r: &Row) -> Result<PriorityDecision, Failure> {
    let p: i32 = r.try_get(1)?;
    let priority = usize::try_from(p)
        .ok()
        .and_then(|p| Priority::ALL.get(p).copied())
        .ok_or_else(|| bad(format!("priority {p} out of range")))?;
    Ok(PriorityDecision {
        tenant_id: r.try_get(0)?,
        priority,
        rank: u32::try_from(r.try_get::<_, i64>(2)?).unwrap_or(0),
        version: r.try_get::<_, i64>(3)?.max(0) as u64,
        set_by: r.try_get(4)?,
        set_at: time(r.try_get(5)?),
        reason: r.try_get(6)?,
    })
}

const DECISION_COLUMNS: &str = "tenant_id, priority, rank, version, set_by, set_at_ms, reason";

fn audit_row(r: &Row) -> Result<AuditEvent, Failure> {
    Ok(AuditEvent {
        id: r.try_get::<_, i64>(0)?.max(0) as u64,
        at: time(r.try_get(1)?),
        actor: r.try_get(2)?,
        action: r.try_get(3)?,
        target: r.try_get(4)?,
        reason: r.try_get(5)?,
        detail: r.try_get(6)?,
    })
}

const UPDATE_COLUMNS: &str = "seq, operation_id, state, title, body, components, next_update_ms, published_by, published_at_ms, simulated";

fn update_row(r: &Row) -> Result<Update, Failure> {
    let seq = r.try_get::<_, i64>(0)?.max(0) as u64;
    let components: String = r.try_get(5)?;
    Ok(Update {
        id: update_id(seq),
        seq,
        operation_id: r.try_get(1)?,
        state: IncidentState::parse(r.try_get::<_, &str>(2)?).unwrap_or_default(),
        title: r.try_get(3)?,
        body: r.try_get(4)?,
        components: serde_json::from_str(&components).unwrap_or_default(),
        next_update: r.try_get::<_, Option<i64>>(6)?.map(time),
        published_by: r.try_get(7)?,
        published_at: time(r.try_get(8)?),
        simulated: r.try_get(9)?,
    })
}

fn rows<T>(rows: Vec<Row>, f: fn(&Row) -> Result<T, Failure>) -> Result<Vec<T>, Failure> {
    rows.iter().map(f).collect()
}

fn seq_of(id: &str) -> i64 {
    id.strip_prefix("su-")
        .and_then(|s| s.parse().ok())
        .unwrap_or(-1)
}

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

impl Store for PgStore {
    fn priorities(&self) -> Result<Vec<PriorityDecision>, StoreError> {
        self.call(|c| async move {
            let q = format!("SELECT {DECISION_COLUMNS} FROM priorities ORDER BY tenant_id");
            rows(c.query(&q, &[]).await?, decision_row)
        })
    }

    fn record_priority(
        &mut self,
        expected_version: u64,
        decision: &PriorityDecision,
        detail: &str,
    ) -> Result<(PriorityDecision, AuditEvent), StoreError> {
        let stored = PriorityDecision {
            version: expected_version + 1,
            ..decision.clone()
        };
        let detail = detail.to_string();
        self.call(move |c| async move {
            let c = &*c;
            in_tx(c, async {
                c.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
                    .await?;
                let at_ms = stored.set_at.timestamp_millis();
                let (version, expected) = (stored.version as i64, expected_version as i64);
                let (priority, rank) = (stored.priority as i32, i64::from(stored.rank));
                // The check and the write are one statement: a concurrent
                // writer's commit is waited for and the row read again.
                let written = if expected_version == 0 {
                    c.execute(
                        &format!(
                            "INSERT INTO priorities ({DECISION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
                             ON CONFLICT (tenant_id) DO NOTHING"
                        ),
                        &[&stored.tenant_id, &priority, &rank, &version, &stored.set_by, &at_ms, &stored.reason],
                    )
                    .await?
                } else {
                    c.execute(
                        "UPDATE priorities SET priority = $2, rank = $3, version = $4, set_by = $5,
                         set_at_ms = $6, reason = $7 WHERE tenant_id = $1 AND version = $8",
                        &[&stored.tenant_id, &priority, &rank, &version, &stored.set_by, &at_ms, &stored.reason, &expected],
                    )
                    .await?
                };
                if written == 0 {
                    let q = format!("SELECT {DECISION_COLUMNS} FROM priorities WHERE tenant_id = $1");
                    let current = match c.query_opt(&q, &[&stored.tenant_id]).await? {
                        Some(r) => Some(decision_row(&r)?),
                        None => None,
                    };
                    return Err(Failure::Store(StoreError::Conflict {
                        expected: expected_version,
                        current,
                    }));
                }
                let id: i64 = c
                    .query_one(
                        "INSERT INTO audit (at_ms, actor, action, target, reason, detail)
                         VALUES ($1, $2, 'set_priority', $3, $4, $5) RETURNING id",
                        &[&at_ms, &stored.set_by, &stored.tenant_id, &stored.reason, &detail],
                    )
                    .await?
                    .try_get(0)?;
                let event = AuditEvent {
                    id: id.max(0) as u64,
                    at: stored.set_at,
                    actor: stored.set_by.clone(),
                    action: "set_priority".into(),
                    target: stored.tenant_id.clone(),
                    reason: stored.reason.clone(),
                    detail: detail.clone(),
                };
                Ok((stored.clone(), event))
            })
            .await
        })
    }

    fn audit_events(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let (after, limit) = (
            after.min(i64::MAX as u64) as i64,
            limit.min(i64::MAX as usize) as i64,
        );
        self.call(move |c| async move {
            rows(
                c.query(
                    "SELECT id, at_ms, actor, action, target, reason, detail
                     FROM audit WHERE id > $1 ORDER BY id LIMIT $2",
                    &[&after, &limit],
                )
                .await?,
                audit_row,
            )
        })
    }

    fn publish(
        &mut self,
        new: &Update,
        deliveries: &[(String, String)],
        audit_detail: &str,
    ) -> Result<(Update, bool), StoreError> {
        let new = new.clone();
        let deliveries = deliveries.to_vec();
        let audit_detail = audit_detail.to_string();
        self.call(move |c| async move {
            let c = &*c;
            let by_op = format!("SELECT {UPDATE_COLUMNS} FROM status_updates WHERE operation_id = $1");
            in_tx(c, async {
                c.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
                    .await?;
                if let Some(r) = c.query_opt(&by_op, &[&new.operation_id]).await? {
                    return Ok((update_row(&r)?, false));
                }
                let at_ms = new.published_at.timestamp_millis();
                let components =
                    serde_json::to_string(&new.components).unwrap_or_else(|_| "[]".into());
                let next = new.next_update.map(|t| t.timestamp_millis());
                // Under the write lock no other publish is in flight; the
                // unique operation id stays the last word all the same.
                let inserted = c
                    .query_opt(
                        &format!(
                            "INSERT INTO status_updates (operation_id, state, title, body, components, next_update_ms, published_by, published_at_ms, simulated)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                             ON CONFLICT (operation_id) DO NOTHING RETURNING {UPDATE_COLUMNS}"
                        ),
                        &[
                            &new.operation_id,
                            &new.state.as_str(),
                            &new.title,
                            &new.body,
                            &components,
                            &next,
                            &new.published_by,
                            &at_ms,
                            &new.simulated,
                        ],
                    )
                    .await?;
                let Some(row) = inserted else {
                    let r = c.query_one(&by_op, &[&new.operation_id]).await?;
                    return Ok((update_row(&r)?, false));
                };
                let u = update_row(&row)?;
                let seq = u.seq as i64;
                let (channels, targets): (Vec<&str>, Vec<&str>) = deliveries
                    .iter()
                    .map(|(ch, t)| (ch.as_str(), t.as_str()))
                    .unzip();
                c.execute(
                    "INSERT INTO deliveries (seq, channel, target, state, attempts, detail, next_attempt_ms, updated_ms)
                     SELECT $1, d.channel, d.target, 'pending', 0, '', $2, $2
                     FROM UNNEST($3::text[], $4::text[]) WITH ORDINALITY AS d(channel, target, n)
                     ORDER BY d.n
                     ON CONFLICT (seq, channel, target) DO NOTHING",
                    &[&seq, &at_ms, &channels, &targets],
                )
                .await?;
                c.execute(
                    "INSERT INTO audit (at_ms, actor, action, target, reason, detail)
                     VALUES ($1, $2, 'publish', $3, $4, $5)",
                    &[&at_ms, &new.published_by, &u.id, &new.title, &audit_detail],
                )
                .await?;
                Ok((u, true))
            })
            .await
        })
    }

    fn status_updates(&self) -> Result<Vec<Update>, StoreError> {
        self.call(|c| async move {
            let q = format!("SELECT {UPDATE_COLUMNS} FROM status_updates ORDER BY seq");
            rows(c.query(&q, &[]).await?, update_row)
        })
    }

    fn update_by_operation(&self, operation_id: &str) -> Result<Option<Update>, StoreError> {
        let op = operation_id.to_string();
        self.call(move |c| async move {
            let q = format!("SELECT {UPDATE_COLUMNS} FROM status_updates WHERE operation_id = $1");
            c.query_opt(&q, &[&op])
                .await?
                .as_ref()
                .map(update_row)
                .transpose()
        })
    }

    fn latest_update(&self) -> Result<Option<Update>, StoreError> {
        self.call(|c| async move {
            let q =
                format!("SELECT {UPDATE_COLUMNS} FROM status_updates ORDER BY seq DESC LIMIT 1");
            c.query_opt(&q, &[])
                .await?
                .as_ref()
                .map(update_row)
                .transpose()
        })
    }

    fn delivery_summary(&self) -> Result<Vec<ChannelSummary>, StoreError> {
        self.call(|c| async move {
            let rs = c
                .query(
                    "SELECT channel,
                            COUNT(*) FILTER (WHERE state = 'pending'),
                            COUNT(*) FILTER (WHERE state = 'sent'),
                            COUNT(*) FILTER (WHERE state = 'failed'),
                            (SELECT detail FROM deliveries p WHERE p.channel = d.channel
                               AND p.state != 'sent' AND p.detail != ''
                               ORDER BY updated_ms DESC, id DESC LIMIT 1)
                     FROM deliveries d GROUP BY channel ORDER BY channel",
                    &[],
                )
                .await?;
            rs.iter()
                .map(|r| {
                    Ok(ChannelSummary {
                        channel: r.try_get(0)?,
                        pending: count(r.try_get(1)?),
                        sent: count(r.try_get(2)?),
                        failed: count(r.try_get(3)?),
                        last_problem: r.try_get::<_, Option<String>>(4)?.unwrap_or_default(),
                    })
                })
                .collect()
        })
    }

    fn deliveries(&self, update_id: Option<&str>) -> Result<Vec<DeliveryStatus>, StoreError> {
        let seq = update_id.map(seq_of);
        self.call(move |c| async move {
            let rs = c
                .query(
                    "SELECT id, seq, channel, target, state, attempts, detail, updated_ms
                     FROM deliveries WHERE $1::BIGINT IS NULL OR seq = $1 ORDER BY id",
                    &[&seq],
                )
                .await?;
            rs.iter()
                .map(|r| {
                    Ok(DeliveryStatus {
                        id: count(r.try_get(0)?),
                        update_id: crate::store::update_id(count(r.try_get(1)?)),
                        channel: r.try_get(2)?,
                        target: r.try_get(3)?,
                        state: r.try_get(4)?,
                        attempts: r.try_get::<_, i32>(5)?.max(0) as u32,
                        detail: r.try_get(6)?,
                        at: time(r.try_get(7)?),
                    })
                })
                .collect()
        })
    }

    fn claim_due(
        &mut self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let (now, limit) = (now.timestamp_millis(), limit.min(i64::MAX as usize) as i64);
        let until = now.saturating_add(lease.as_millis().min(i64::MAX as u128) as i64);
        let owner = owner.to_string();
        self.call(move |c| async move {
            // One statement: the rows another replica is claiming right now
            // are skipped, not waited for, and what is returned is ours.
            let rs = c
                .query(
                    "WITH due AS (
                        SELECT id FROM deliveries
                        WHERE state = 'pending' AND next_attempt_ms <= $1
                          AND (claimed_until_ms IS NULL OR claimed_until_ms <= $1
                               OR claimed_by = $3)
                        ORDER BY next_attempt_ms, id LIMIT $2
                        FOR UPDATE SKIP LOCKED)
                     UPDATE deliveries d SET claimed_by = $3, claimed_until_ms = $4
                     FROM due WHERE d.id = due.id
                     RETURNING d.id, d.seq, d.channel, d.target, d.attempts, d.detail,
                               d.maybe_applied, d.next_attempt_ms",
                    &[&now, &limit, &owner, &until],
                )
                .await?;
            let mut out = rs
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get::<_, i64>(7)?,
                        Delivery {
                            id: count(r.try_get(0)?),
                            update_id: crate::store::update_id(count(r.try_get(1)?)),
                            channel: r.try_get(2)?,
                            target: r.try_get(3)?,
                            attempts: r.try_get::<_, i32>(4)?.max(0) as u32,
                            last_detail: r.try_get(5)?,
                            maybe_applied: r.try_get(6)?,
                        },
                    ))
                })
                .collect::<Result<Vec<_>, Failure>>()?;
            out.sort_by_key(|(due, d)| (*due, d.id));
            Ok(out.into_iter().map(|(_, d)| d).collect())
        })
    }

    fn renew_claim(
        &mut self,
        delivery_id: u64,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let id = delivery_id.min(i64::MAX as u64) as i64;
        let until = now
            .timestamp_millis()
            .saturating_add(lease.as_millis().min(i64::MAX as u128) as i64);
        let owner = owner.to_string();
        self.call(move |c| async move {
            let n = c
                .execute(
                    "UPDATE deliveries SET claimed_until_ms = $3
                     WHERE id = $1 AND state = 'pending' AND claimed_by = $2",
                    &[&id, &owner, &until],
                )
                .await?;
            Ok(n > 0)
        })
    }

    fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.call(|c| async move {
            // A delivery another replica holds is due for us when its claim
            // expires, not before.
            let ms: Option<i64> = c
                .query_one(
                    "SELECT MIN(GREATEST(next_attempt_ms, COALESCE(claimed_until_ms, 0)))
                     FROM deliveries WHERE state = 'pending'",
                    &[],
                )
                .await?
                .try_get(0)?;
            Ok(ms.map(time))
        })
    }

    fn record_attempt(
        &mut self,
        delivery_id: u64,
        owner: &str,
        state: &str,
        detail: &str,
        next_attempt: DateTime<Utc>,
        maybe_applied: bool,
    ) -> Result<bool, StoreError> {
        let (id, state, detail) = (
            delivery_id.min(i64::MAX as u64) as i64,
            state.to_string(),
            detail.to_string(),
        );
        let owner = owner.to_string();
        let (next, now) = (
            next_attempt.timestamp_millis(),
            Utc::now().timestamp_millis(),
        );
        self.call(move |c| async move {
            // Fencing: only the claim's holder records, and the claim ends.
            let n = c
                .execute(
                    "UPDATE deliveries SET state = $2, attempts = attempts + 1, detail = $3,
                     next_attempt_ms = $4, updated_ms = $5, maybe_applied = $6,
                     claimed_by = NULL, claimed_until_ms = NULL
                     WHERE id = $1 AND state = 'pending' AND claimed_by = $7",
                    &[&id, &state, &detail, &next, &now, &maybe_applied, &owner],
                )
                .await?;
            Ok(n > 0)
        })
    }

    fn journal_append(&mut self, events: &[Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        // Column arrays: one statement, one round trip, in order.
        let mut cols = JournalColumns::default();
        for ev in events {
            let c = ev.entry.columns();
            cols.at.push(ev.at.timestamp_millis());
            cols.kind.push(ev.entry.kind_name().to_string());
            cols.mailbox.push(c.mailbox.to_string());
            cols.label.push(c.label.to_string());
            cols.detail.push(c.detail.to_string());
            cols.n1.push(c.n1);
            cols.n2.push(c.n2);
            cols.x.push(c.x);
        }
        self.call(move |c| async move {
            let c = &*c;
            c.execute(
                "INSERT INTO incident_journal (at_ms, kind, mailbox, label, detail, n1, n2, x)
                 SELECT at_ms, kind, mailbox, label, detail, n1, n2, x
                 FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::bigint[], $7::bigint[], $8::float8[])
                      WITH ORDINALITY AS j(at_ms, kind, mailbox, label, detail, n1, n2, x, n)
                 ORDER BY n",
                &[
                    &cols.at,
                    &cols.kind,
                    &cols.mailbox,
                    &cols.label,
                    &cols.detail,
                    &cols.n1,
                    &cols.n2,
                    &cols.x,
                ],
            )
            .await?;
            Ok(())
        })
    }

    fn journal(&self) -> Result<Vec<Event>, StoreError> {
        self.call(|c| async move {
            let rs = c
                .query(
                    "SELECT at_ms, kind, mailbox, label, detail, n1, n2, x
                     FROM incident_journal ORDER BY id",
                    &[],
                )
                .await?;
            let mut out = Vec::with_capacity(rs.len());
            for r in &rs {
                let at = time(r.try_get(0)?);
                let kind: String = r.try_get(1)?;
                let (mailbox, label, detail): (String, String, String) =
                    (r.try_get(2)?, r.try_get(3)?, r.try_get(4)?);
                let (n1, n2, x): (i64, i64, f64) = (r.try_get(5)?, r.try_get(6)?, r.try_get(7)?);
                let c = Columns {
                    mailbox: &mailbox,
                    label: &label,
                    detail: &detail,
                    n1,
                    n2,
                    x,
                };
                let entry = Entry::from_columns(&kind, at, c).map_err(bad)?;
                out.push(Event { at, entry });
            }
            Ok(out)
        })
    }

    fn observations_put(&mut self, obs: &[(String, Observation)]) -> Result<(), StoreError> {
        if obs.is_empty() {
            return Ok(());
        }
        // The last observation of a mailbox wins, as it would row by row
        // (one statement may not touch a row twice).
        let mut last: std::collections::HashMap<&str, &Observation> =
            std::collections::HashMap::new();
        for (m, o) in obs {
            last.insert(m.as_str(), o);
        }
        let mut mailboxes = Vec::with_capacity(last.len());
        let mut data = Vec::with_capacity(last.len());
        let mut at = Vec::with_capacity(last.len());
        for (m, o) in last {
            mailboxes.push(m.to_string());
            data.push(o.data.clone());
            at.push(o.at.map(|t| t.timestamp_millis()));
        }
        self.call(move |c| async move {
            c.execute(
                "INSERT INTO observations (mailbox, data, at_ms)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[])
                 ON CONFLICT (mailbox) DO UPDATE SET data = EXCLUDED.data, at_ms = EXCLUDED.at_ms",
                &[&mailboxes, &data, &at],
            )
            .await?;
            Ok(())
        })
    }

    fn observations(&self) -> Result<Vec<(String, Observation)>, StoreError> {
        self.call(|c| async move {
            let rs = c
                .query("SELECT mailbox, data, at_ms FROM observations", &[])
                .await?;
            rs.iter()
                .map(|r| {
                    Ok((
                        r.try_get(0)?,
                        Observation {
                            data: r.try_get(1)?,
                            at: r
                                .try_get::<_, Option<i64>>(2)?
                                .and_then(DateTime::from_timestamp_millis),
                        },
                    ))
                })
                .collect()
        })
    }

    fn memory_get(&self, channel: &str, key: &str) -> Result<Option<String>, StoreError> {
        let (channel, key) = (channel.to_string(), key.to_string());
        self.call(move |c| async move {
            Ok(c.query_opt(
                "SELECT value FROM channel_memory WHERE channel = $1 AND key = $2",
                &[&channel, &key],
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?)
        })
    }

    fn memory_put(&mut self, channel: &str, key: &str, value: &str) -> Result<(), StoreError> {
        let (channel, key, value) = (channel.to_string(), key.to_string(), value.to_string());
        self.call(move |c| async move {
            c.execute(
                "INSERT INTO channel_memory (channel, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT (channel, key) DO UPDATE SET value = EXCLUDED.value",
                &[&channel, &key, &value],
            )
            .await?;
            Ok(())
        })
    }
}

#[derive(Default)]
struct JournalColumns {
    at: Vec<i64>,
    kind: Vec<String>,
    mailbox: Vec<String>,
    label: Vec<String>,
    detail: Vec<String>,
    n1: Vec<i64>,
    n2: Vec<i64>,
    x: Vec<f64>,
}
