//! The store on a PostgreSQL database: `[server] store = "postgres://…"`.
//!
//! `Store` is synchronous and is called from inside tokio tasks (behind the
//! hub's std `Mutex`), where blocking on a runtime would panic. So each
//! `PgStore` owns one OS thread that runs its own current-thread tokio
//! runtime, holding the tokio-postgres connection; a `Store` method sends a
//! job over a channel and waits for the reply on a std channel. The thread
//! drives the connection between calls too, so a server that goes away is
//! noticed, and the next call reconnects by itself.
//!
//! The guarantees are SQLite's: a decision or a publish and its audit event
//! are one transaction; the version check is inside it (an `UPDATE … WHERE
//! version = expected`, which PostgreSQL re-checks after a concurrent
//! writer commits, so two gateways on one database lose no update); an
//! `operation_id` is unique in the table, so a publish sent twice, even to
//! two gateways, is stored once.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::{Client, NoTls, Row};

use super::{DeliveryStatus, Store, StoreError, update_id};
use crate::domain::incident::{Columns, Entry, Event, Observation};
use crate::domain::priority::{AuditEvent, PriorityDecision};
use crate::domain::redact::{Redactor, url_shown};
use crate::domain::update::{ChannelSummary, Delivery, Update};
use crate::domain::{IncidentState, Priority};

/// What `warroom_meta.application` says in a warroom database.
const APPLICATION: &str = "warroom";
/// The schema this build reads and writes (PostgreSQL's own numbering).
pub(super) const SCHEMA_VERSION: i64 = 3;
/// Held (for one transaction) while the schema is checked or made, so two
/// gateways starting on an empty database do not both create it.
const SCHEMA_LOCK: i64 = 0x5761_526d;
/// Held (for one transaction) by every decision and publish: the audit
/// ids and the update numbers they take are then committed in the order
/// they were handed out, so a reader paging by id never passes one that
/// commits later, and a publish that finds its operation already stored
/// takes no number (no gap in su-… ids).
const WRITE_LOCK: i64 = 0x5761_526e;
/// A call that gets no answer in this long is given up, and the connection
/// with it (its state is unknown).
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a (re)connection may take, unless the URL says `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE warroom_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE priorities (
    tenant_id TEXT PRIMARY KEY,
    priority  INTEGER NOT NULL,
    rank      BIGINT NOT NULL,
    version   BIGINT NOT NULL,
    set_by    TEXT NOT NULL,
    set_at_ms BIGINT NOT NULL,
    reason    TEXT NOT NULL
);
CREATE TABLE audit (
    id     BIGSERIAL PRIMARY KEY,
    at_ms  BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE status_updates (
    seq             BIGSERIAL PRIMARY KEY,
    operation_id    TEXT NOT NULL UNIQUE,
    state           TEXT NOT NULL,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    components      TEXT NOT NULL,
    next_update_ms  BIGINT,
    published_by    TEXT NOT NULL,
    published_at_ms BIGINT NOT NULL,
    simulated       BOOLEAN NOT NULL
);
CREATE TABLE deliveries (
    id              BIGSERIAL PRIMARY KEY,
    seq             BIGINT NOT NULL REFERENCES status_updates(seq),
    channel         TEXT NOT NULL,
    target          TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    detail          TEXT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL,
    maybe_applied   BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (seq, channel, target)
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_ms);
CREATE INDEX deliveries_channel ON deliveries (channel, updated_ms);
CREATE TABLE channel_memory (
    channel TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (channel, key)
);
CREATE TABLE incident_journal (
    id      BIGSERIAL PRIMARY KEY,
    at_ms   BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    label   TEXT NOT NULL,
    detail  TEXT NOT NULL,
    n1      BIGINT NOT NULL,
    n2      BIGINT NOT NULL,
    x       DOUBLE PRECISION NOT NULL
);
CREATE TABLE observations (
    mailbox TEXT PRIMARY KEY,
    data    TEXT NOT NULL,
    at_ms   BIGINT
);
";

/// Schema upgrades: `MIGRATIONS[i]` takes a schema `i + 1` database to
/// `i + 2`; `prepare` runs the missing ones (an empty database gets
/// `SCHEMA`, schema 1, then all of them), in the transaction that checked
/// the database.
const MIGRATIONS: &[&str] = &[
    // 2: a delivery is claimed by one gateway run (`claimed_by`) until
    // `claimed_until_ms`, so replicas on one database never attempt it
    // side by side, and an attempt recorded by a run that lost its claim
    // is refused.
    "ALTER TABLE deliveries ADD COLUMN claimed_by TEXT,
                            ADD COLUMN claimed_until_ms BIGINT;",
    // 3: the leader says where its gRPC listens (`url`), which run it is,
    // since when it leads and when it last said so (`beat_ms`): followers
    // relay its Watch and forward their consoles' calls there.
    "CREATE TABLE leader (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        url       TEXT NOT NULL,
        run_id    TEXT NOT NULL,
        since_ms  BIGINT NOT NULL,
        beat_ms   BIGINT NOT NULL
    );",
];

/// The tables and columns of schema `SCHEMA_VERSION`: a database that lacks
/// one would start, then fail every write.
const COLUMNS: &[(&str, &[&str])] = &[
    ("warroom_meta", &["key", "value"]),
    (
        "priorities",
        &[
            "tenant_id",
            "priority",
            "rank",
            "version",
            "set_by",
            "set_at_ms",
            "reason",
        ],
    ),
    (
        "audit",
        &[
            "id", "at_ms", "actor", "action", "target", "reason", "detail",
        ],
    ),
    (
        "status_updates",
        &[
            "seq",
            "operation_id",
            "state",
            "title",
            "body",
            "components",
            "next_update_ms",
            "published_by",
            "published_at_ms",
            "simulated",
        ],
    ),
    (
        "deliveries",
        &[
            "id",
            "seq",
            "channel",
            "target",
            "state",
            "attempts",
            "detail",
            "next_attempt_ms",
            "updated_ms",
            "maybe_applied",
            "claimed_by",
            "claimed_until_ms",
        ],
    ),
    ("channel_memory", &["channel", "key", "value"]),
    ("leader", &["id", "url", "run_id", "since_ms", "beat_ms"]),
    (
        "incident_journal",
        &[
            "id", "at_ms", "kind", "mailbox", "label", "detail", "n1", "n2", "x",
        ],
    ),
    ("observations", &["mailbox", "data", "at_ms"]),
];

/// Why a job failed: the database said no (or the link broke), or the
/// store decided (a stale version).
enum Failure {
    Pg(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Pg(e)
    }
}

type Job =
    Box<dyn FnOnce(Result<Rc<Client>, String>) -> Pin<Box<dyn Future<Output = bool>>> + Send>;

/// A warroom store in a PostgreSQL database. Each instance is one
/// connection (opened again when lost), on its own thread.
pub struct PgStore {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
    /// "PostgreSQL at HOST:PORT": every message starts with it.
    what: String,
    /// The URL's password: no message says it, whatever the server or the
    /// client library put in theirs.
    redactor: Redactor,
}

/// Whether `location` names a PostgreSQL database rather than a file.
pub fn is_postgres_url(location: &str) -> bool {
    let l = location.trim_start().to_ascii_lowercase();
    l.starts_with("postgres://") || l.starts_with("postgresql://")
}

/// `e` and its causes, one after the other: tokio-postgres says "db error"
/// and keeps what the server said in the source.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let next = c.to_string();
        if !s.contains(&next) {
            s.push_str(": ");
            s.push_str(&next);
        }
        cur = c.source();
    }
    s
}

/// Whether `e` means the connection is gone (or never came): the server
/// stopped, restarted, the network broke.
fn is_lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(db) = e.as_db_error() {
        // 08: connection exception; 57: operator intervention (shutdown,
        // crash recovery, "the database system is starting up").
        let code = db.code().code();
        return code.starts_with("08") || code.starts_with("57");
    }
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        if c.is::<std::io::Error>() {
            return true;
        }
        cur = c.source();
    }
    false
}

impl PgStore {
    /// Connects to the database at `url`, checks it is a warroom database
    /// (or empty) and brings its schema up to date. A database holding
    /// tables that are not ours, or a newer schema, is refused and left as
    /// it was. The password in `url` is never part of a message.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let redactor = Redactor::new().url_userinfo(url);
        let shown = url_shown(url).into_owned();
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
            StoreError::Io(redactor.redact_owned(format!("{shown}: not a PostgreSQL URL: {e}")))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let what = format!("PostgreSQL at {}", endpoint(&config));
        let (jobs, rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let (worker_what, worker_redactor) = (what.clone(), redactor.clone());
        // The runtime is made (and dropped) on its own thread: dropping a
        // runtime inside the gateway's would panic.
        std::thread::Builder::new()
            .name("warroom-postgres".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(serve(config, worker_what, worker_redactor, rx)),
                    // Every call then says the thread has stopped.
                    Err(e) => tracing::error!("{worker_what}: cannot start its runtime: {e}"),
                }
            })
            .map_err(|e| StoreError::Io(format!("{what}: cannot start its thread: {e}")))?;
        let store = PgStore {
            jobs,
            what,
            redactor,
        };
        store.call(|c| async move { prepare(&c).await })?;
        Ok(store)
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Io(format!("{}: {e}", self.what))
    }

    /// Runs `f` on the connection thread and waits for its answer.
    fn call<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Rc<Client>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Failure>> + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let what = self.what.clone();
        let redactor = self.redactor.clone();
        let job: Job = Box::new(move |client| {
            Box::pin(async move {
                let client = match client {
                    Ok(c) => c,
                    Err(why) => {
                        let _ = tx.send(Err(StoreError::Io(why)));
                        return false;
                    }
                };
                let (answer, lost) = match tokio::time::timeout(CALL_TIMEOUT, f(client)).await {
                    Err(_) => (
                        Err(StoreError::Io(format!(
                            "{what} unreachable: no answer in {} s",
                            CALL_TIMEOUT.as_secs()
                        ))),
                        true,
                    ),
                    Ok(Ok(v)) => (Ok(v), false),
                    Ok(Err(Failure::Store(StoreError::Io(e)))) => {
                        (Err(StoreError::Io(format!("{what}: {e}"))), false)
                    }
                    Ok(Err(Failure::Store(e))) => (Err(e), false),
                    Ok(Err(Failure::Pg(e))) if is_lost(&e) => (
                        Err(StoreError::Io(format!("{what} unreachable: {}", chain(&e)))),
                        true,
                    ),
                    Ok(Err(Failure::Pg(e))) => {
                        (Err(StoreError::Io(format!("{what}: {}", chain(&e)))), false)
                    }
                };
                let answer = answer.map_err(|e| match e {
                    StoreError::Io(m) => StoreError::Io(redactor.redact_owned(m)),
                    other => other,
                });
                let _ = tx.send(answer);
                lost
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| self.err("its connection thread has stopped"))?;
        rx.recv()
            .map_err(|_| self.err("its connection thread stopped during a call"))?
    }
}

/// "HOST:PORT" of the first host the URL names.
pub(super) fn endpoint(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The connection thread: one job at a time, (re)connecting when there is
/// no live connection.
async fn serve(
    config: tokio_postgres::Config,
    what: String,
    redactor: Redactor,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<Job>,
) {
    let limit = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(CONNECT_TIMEOUT);
    let mut client: Option<Rc<Client>> = None;
    while let Some(job) = jobs.recv().await {
        if client.as_ref().is_some_and(|c| c.is_closed()) {
            client = None;
        }
        let conn = match &client {
            Some(c) => Ok(c.clone()),
            // The connect timeout covers the TCP connection only: a peer
            // that accepts and never answers is bounded here.
            None => match tokio::time::timeout(limit, config.connect(NoTls)).await {
                Err(_) => Err(format!(
                    "{what} unreachable: no answer in {} s",
                    limit.as_secs()
                )),
                Ok(Err(e)) => {
                    Err(redactor.redact_owned(format!("{what} unreachable: {}", chain(&e))))
                }
                Ok(Ok((c, connection))) => {
                    let what = what.clone();
                    let redactor = redactor.clone();
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::warn!(
                                "{what}: connection lost: {}",
                                redactor.redact(&chain(&e))
                            );
                        }
                    });
                    let c = Rc::new(c);
                    client = Some(c.clone());
                    Ok(c)
                }
            },
        };
        if job(conn).await {
            client = None;
        }
    }
}

/// Runs `body` in a transaction: committed when it succeeds, rolled back
/// when it fails.
async fn in_tx<T>(
    c: &Client,
    body: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    c.batch_execute("BEGIN").await?;
    match body.await {
        Ok(v) => {
            c.batch_execute("COMMIT").await?;
            Ok(v)
        }
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

fn refused(db: &str, why: String) -> Failure {
    Failure::Store(StoreError::Io(format!(
        "database {db:?}: {why}; refusing to start with an empty war-room state (use an empty database, or pass another --store)"
    )))
}

/// Checks the database is ours and whole, or empty; gives an empty one the
/// schema and an older one the migrations. Everything is checked before
/// anything is written, in one transaction: a refused database is left as
/// it was.
async fn prepare(c: &Client) -> Result<(), Failure> {
    in_tx(c, async {
        c.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await?;
        let db: String = c.query_one("SELECT current_database()::text", &[]).await?.try_get(0)?;
        let tables: Vec<String> = c
            .query(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() ORDER BY table_name",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if tables.is_empty() {
            c.batch_execute(SCHEMA).await?;
            c.execute(
                "INSERT INTO warroom_meta (key, value) VALUES ('application', $1), ('schema_version', '1')",
                &[&APPLICATION],
            )
            .await?;
            return migrate(c, 1).await;
        }
        let foreign: Vec<&str> = tables
            .iter()
            .map(String::as_str)
            .filter(|t| !COLUMNS.iter().any(|(ours, _)| ours == t))
            .collect();
        if !tables.iter().any(|t| t == "warroom_meta") {
            return Err(refused(&db, format!(
                "not a warroom database (it holds tables warroom did not make: {})",
                foreign.join(", ")
            )));
        }
        let meta: Vec<(String, String)> = c
            .query("SELECT key, value FROM warroom_meta", &[])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let get = |k: &str| meta.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        if get("application") != Some(APPLICATION) {
            return Err(refused(&db,
                "not a warroom database (its warroom_meta table is not ours)".into(),
            ));
        }
        let version = get("schema_version").and_then(|v| v.parse::<i64>().ok());
        let version = match version {
            Some(v) if (1..=SCHEMA_VERSION).contains(&v) => v,
            Some(v) if v > SCHEMA_VERSION => {
                return Err(refused(&db, format!(
                    "schema {v}, this build reads schema {SCHEMA_VERSION} (a newer warroom made it)"
                )));
            }
            _ => {
                return Err(refused(&db, format!(
                    "the database is damaged: schema_version is {:?}",
                    get("schema_version").unwrap_or("missing")
                )));
            }
        };
        if !foreign.is_empty() {
            return Err(refused(&db, format!(
                "the database holds tables warroom did not make: {}",
                foreign.join(", ")
            )));
        }
        if version == SCHEMA_VERSION {
            let have: Vec<(String, String)> = c
                .query(
                    "SELECT table_name::text, column_name::text FROM information_schema.columns
                     WHERE table_schema = current_schema()",
                    &[],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let mut lacking = Vec::new();
            for (table, cols) in COLUMNS {
                if !tables.iter().any(|t| t == table) {
                    lacking.push(format!("the table {table}"));
                    continue;
                }
                lacking.extend(
                    cols.iter()
                        .filter(|col| !have.iter().any(|(t, c)| t == table && c == *col))
                        .map(|col| format!("the column {table}.{col}")),
                );
            }
            if !lacking.is_empty() {
                return Err(refused(&db, format!(
                    "the database is damaged: schema {version} needs {}",
                    lacking.join(", ")
                )));
            }
        }
        migrate(c, version).await
    })
    .await
}

/// Takes a schema `version` database to `SCHEMA_VERSION`.
async fn migrate(c: &Client, version: i64) -> Result<(), Failure> {
    for (i, m) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(version.max(1) as usize - 1)
    {
        c.batch_execute(m).await?;
        c.execute(
            "UPDATE warroom_meta SET value = $1 WHERE key = 'schema_version'",
            &[&(i as i64 + 2).to_string()],
        )
        .await?;
    }
    Ok(())
}

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
                        update_id: super::update_id(count(r.try_get(1)?)),
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
                            update_id: super::update_id(count(r.try_get(1)?)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_is_told_from_a_path() {
        assert!(is_postgres_url("postgres://u:p@db:5432/warroom"));
        assert!(is_postgres_url("postgresql://db/warroom"));
        assert!(!is_postgres_url("/var/lib/warroom/state.sqlite"));
        assert!(!is_postgres_url("postgres.sqlite"));
    }

    #[test]
    fn a_bad_url_is_refused_without_its_password() {
        let e = PgStore::open("postgres://ana:S3CRETPW@db:notaport/warroom")
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("not a PostgreSQL URL"), "{e}");
        assert!(!e.contains("S3CRETPW"), "{e}");
    }
}
