//! The database's schema: made in an empty database, checked in one that
//! has tables (ours, whole, of a schema this build reads), migrated when
//! older; all in the one transaction that checked it.

use tokio_postgres::Client;

use super::{APPLICATION, Failure, SCHEMA_LOCK, SCHEMA_VERSION, in_tx};
use crate::store::StoreError;

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

fn refused(db: &str, why: String) -> Failure {
    Failure::Store(StoreError::Io(format!(
        "database {db:?}: {why}; refusing to start with an empty war-room state (use an empty database, or pass another --store)"
    )))
}

/// Checks the database is ours and whole, or empty; gives an empty one the
/// schema and an older one the migrations. Everything is checked before
/// anything is written, in one transaction: a refused database is left as
/// it was.
pub(super) async fn prepare(c: &Client) -> Result<(), Failure> {
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
