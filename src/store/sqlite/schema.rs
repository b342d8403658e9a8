//! The state file's schema: given to a new file, checked in an existing
//! one (ours, whole, of a schema this build reads), upgraded when older.

use rusqlite::Connection;

use super::SqliteStore;
use crate::store::StoreError;

/// `PRAGMA application_id` of a warroom state file ("WaRm").
const APPLICATION_ID: i32 = 0x5761_526d;
const SCHEMA_VERSION: i32 = 3;

const SCHEMA: &str = "
CREATE TABLE priorities (
    tenant_id TEXT PRIMARY KEY,
    priority  INTEGER NOT NULL,
    rank      INTEGER NOT NULL,
    version   INTEGER NOT NULL,
    set_by    TEXT NOT NULL,
    set_at_ms INTEGER NOT NULL,
    reason    TEXT NOT NULL
);
CREATE TABLE audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms  INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL
);
";

/// Added in schema 2: status updates and their outbox.
const SCHEMA_2: &str = "
CREATE TABLE status_updates (
    seq             INTEGER PRIMARY KEY,
    operation_id    TEXT NOT NULL UNIQUE,
    state           TEXT NOT NULL,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    components      TEXT NOT NULL,
    next_update_ms  INTEGER,
    published_by    TEXT NOT NULL,
    published_at_ms INTEGER NOT NULL,
    simulated       INTEGER NOT NULL
);
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    seq             INTEGER NOT NULL REFERENCES status_updates(seq),
    channel         TEXT NOT NULL,
    target          TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    detail          TEXT NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
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
";

/// Added in schema 3: a platform incident's journal and each mailbox's
/// latest observation (the baselines a restarted gateway compares with),
/// and whether a delivery's last attempt may have taken effect.
const SCHEMA_3: &str = "
ALTER TABLE deliveries ADD COLUMN maybe_applied INTEGER NOT NULL DEFAULT 0;
CREATE TABLE incident_journal (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms   INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    label   TEXT NOT NULL,
    detail  TEXT NOT NULL,
    n1      INTEGER NOT NULL,
    n2      INTEGER NOT NULL,
    x       REAL NOT NULL
);
CREATE TABLE observations (
    mailbox TEXT PRIMARY KEY,
    data    TEXT NOT NULL,
    at_ms   INTEGER
);
";
impl SqliteStore {
    /// The tables and columns `schema` makes that this file does not have:
    /// "the table audit", "the column deliveries.detail". A file that
    /// lacks one would start, then fail every write with "no such table".
    fn lacking(&self, schema: &str) -> Result<Vec<String>, StoreError> {
        let shape = |c: &Connection| -> rusqlite::Result<Vec<(String, Vec<String>)>> {
            let mut tables = c.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
            )?;
            let names = tables
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut columns = c.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
            names
                .into_iter()
                .map(|t| {
                    let cols = columns
                        .query_map([&t], |r| r.get::<_, String>(0))?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    Ok((t, cols))
                })
                .collect()
        };
        let reference = Connection::open_in_memory()
            .and_then(|c| c.execute_batch(schema).map(|()| c))
            .and_then(|c| shape(&c))
            .map_err(|e| self.err(format!("cannot build the reference schema: {e}")))?;
        let have =
            shape(&self.conn).map_err(|e| self.err(format!("cannot read the schema: {e}")))?;
        let mut lacking = Vec::new();
        for (table, cols) in reference {
            match have.iter().find(|(t, _)| *t == table) {
                None => lacking.push(format!("the table {table}")),
                Some((_, got)) => lacking.extend(
                    cols.iter()
                        .filter(|c| !got.contains(c))
                        .map(|c| format!("the column {table}.{c}")),
                ),
            }
        }
        Ok(lacking)
    }
    /// Checks an existing file is ours and whole; gives a new one the schema.
    pub(super) fn prepare(&self, existed: bool) -> Result<(), StoreError> {
        let not_ours = |why: String| {
            self.err(format!(
                "{why}; refusing to start with an empty war-room state (move the file away, or pass another --state)"
            ))
        };
        let pragma = |name: &str| -> Result<i32, StoreError> {
            self.conn
                .pragma_query_value(None, name, |r| r.get(0))
                .map_err(|e| not_ours(format!("not a warroom state file ({e})")))
        };
        let app = pragma("application_id")?;
        let version = pragma("user_version")?;
        if existed || app != 0 || version != 0 {
            if app != APPLICATION_ID {
                return Err(not_ours(
                    "not a warroom state file (another SQLite database)".into(),
                ));
            }
            // What a file of that schema holds, and, for an older one,
            // the tables it lacks.
            let (had, missing) = match version {
                1 => (SCHEMA.to_string(), Some(format!("{SCHEMA_2} {SCHEMA_3}"))),
                2 => (format!("{SCHEMA} {SCHEMA_2}"), Some(SCHEMA_3.to_string())),
                SCHEMA_VERSION => (format!("{SCHEMA} {SCHEMA_2} {SCHEMA_3}"), None),
                _ => {
                    return Err(not_ours(format!(
                        "state file schema {version}, this build reads schema {SCHEMA_VERSION}"
                    )));
                }
            };
            let check: String = self
                .conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(|e| not_ours(format!("integrity check failed ({e})")))?;
            if check != "ok" {
                return Err(not_ours(format!("the file is damaged ({check})")));
            }
            // Checked before anything is written: a refused file is left
            // as it was.
            let lacking = self.lacking(&had)?;
            if !lacking.is_empty() {
                return Err(not_ours(format!(
                    "the file is damaged: schema {version} needs {}",
                    lacking.join(", ")
                )));
            }
            if let Some(tables) = missing {
                self.conn
                    .execute_batch(&format!(
                        "BEGIN; {tables} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                    ))
                    .map_err(|e| self.err(format!("cannot upgrade the schema: {e}")))?;
            }
        } else {
            self.conn
                .execute_batch(&format!(
                    "BEGIN; {SCHEMA} {SCHEMA_2} {SCHEMA_3} PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                ))
                .map_err(|e| self.err(format!("cannot create the schema: {e}")))?;
        }
        // WAL keeps readers off the writer's back; FULL syncs every commit.
        self.conn
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::temp;
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_schema_1_file_is_upgraded_and_keeps_its_decisions() {
        let path = temp("upgrade");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let c = Connection::open(&path).unwrap();
        c.execute_batch(&format!(
            "{SCHEMA} PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1;"
        ))
        .unwrap();
        c.execute(
            "INSERT INTO priorities VALUES ('t1', 0, 0, 1, 'ana', 0, 'kept')",
            [],
        )
        .unwrap();
        drop(c);
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.priorities().unwrap()[0].reason, "kept");
        assert!(
            s.status_updates().unwrap().is_empty(),
            "status tables added"
        );
        let v: i32 = s
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    /// A state file made by this build, with `sql` run on it after.
    fn state_file_then(name: &str, sql: &str) -> std::path::PathBuf {
        let path = temp(name);
        drop(SqliteStore::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute_batch(sql).unwrap();
        drop(c);
        path
    }

    #[test]
    fn an_empty_file_is_refused_and_left_empty() {
        let path = temp("empty");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"").unwrap();
        let e = SqliteStore::open(&path)
            .err()
            .expect("an empty file refused")
            .to_string();
        assert!(e.contains("the file is empty (0 bytes)"), "{e}");
        assert!(e.contains("refusing to start"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"", "written to");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_file_missing_a_table_or_a_column_is_refused_and_left_as_it_was() {
        for (name, sql, want) in [
            ("no-audit", "DROP TABLE audit;", "the table audit"),
            (
                "no-updates",
                "DROP TABLE deliveries; DROP TABLE status_updates;",
                "the table status_updates, the table deliveries",
            ),
            (
                "no-deliveries",
                "DROP TABLE deliveries;",
                "the table deliveries",
            ),
            (
                "no-journal",
                "DROP TABLE incident_journal;",
                "the table incident_journal",
            ),
            (
                "no-column",
                "ALTER TABLE deliveries DROP COLUMN maybe_applied;",
                "the column deliveries.maybe_applied",
            ),
        ] {
            let path = state_file_then(name, sql);
            let before = std::fs::read(&path).unwrap();
            let e = SqliteStore::open(&path)
                .err()
                .unwrap_or_else(|| panic!("{name}: accepted"))
                .to_string();
            assert!(e.contains(want), "{name}: {e}");
            assert!(e.contains("refusing to start"), "{name}: {e}");
            assert_eq!(
                std::fs::read(&path).unwrap(),
                before,
                "{name}: file changed"
            );
            let _ = std::fs::remove_dir_all(path.parent().unwrap());
        }
        // A schema 1 file without its audit table is not upgraded either.
        let path = temp("v1-no-audit");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let c = Connection::open(&path).unwrap();
        c.execute_batch(&format!(
            "{SCHEMA} DROP TABLE audit; PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1;"
        ))
        .unwrap();
        drop(c);
        let before = std::fs::read(&path).unwrap();
        let e = SqliteStore::open(&path).err().expect("refused").to_string();
        assert!(e.contains("schema 1 needs the table audit"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "upgraded anyway");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_file_that_is_not_a_state_file_is_refused() {
        let path = temp("garbage");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            b"this is not a database, it is a shopping list\n".repeat(100),
        )
        .unwrap();
        let e = SqliteStore::open(&path)
            .err()
            .expect("garbage refused")
            .to_string();
        assert!(e.contains("not a warroom state file"), "{e}");
        assert!(e.contains("refusing to start"), "{e}");
        // Nothing was written over it.
        assert!(std::fs::read(&path).unwrap().starts_with(b"this is not"));

        let other = temp("other-db");
        std::fs::create_dir_all(other.parent().unwrap()).unwrap();
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE x (y); INSERT INTO x VALUES (1);")
            .unwrap();
        let e = SqliteStore::open(&other)
            .err()
            .expect("foreign db refused")
            .to_string();
        assert!(e.contains("another SQLite database"), "{e}");
    }
}
