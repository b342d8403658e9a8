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
//!
//! Here: the connection thread and the calls to it. `schema.rs` checks,
//! creates and migrates the schema; `store.rs` is the `Store` on it.

mod schema;
mod store;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use self::schema::prepare;
use super::StoreError;
use crate::domain::redact::{Redactor, url_shown};

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

/// The connection settings of a PostgreSQL URL (5 s to connect unless it
/// says otherwise) and the redactor that keeps its password out of every
/// message; a URL that is not one is refused without showing the password.
/// The store and the leader election both connect this way.
pub(super) fn url_config(url: &str) -> Result<(tokio_postgres::Config, Redactor), StoreError> {
    let redactor = Redactor::new().url_userinfo(url);
    let shown = url_shown(url).into_owned();
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
        StoreError::Io(redactor.redact_owned(format!("{shown}: not a PostgreSQL URL: {e}")))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok((config, redactor))
}

impl PgStore {
    /// Connects to the database at `url`, checks it is a warroom database
    /// (or empty) and brings its schema up to date. A database holding
    /// tables that are not ours, or a newer schema, is refused and left as
    /// it was. The password in `url` is never part of a message.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let (config, redactor) = url_config(url)?;
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
