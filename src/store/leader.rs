//! Which gateway on a database runs the sources: the leader.
//!
//! Gateways sharing one PostgreSQL database elect one of them with a
//! session advisory lock (`pg_try_advisory_lock`) held on a connection of
//! its own, on its own thread (as `PgStore`'s). The others are followers
//! and try again every second. The lock lives as long as the session: a
//! leader killed with `kill -9` loses it as soon as the server sees its
//! connection close. A leader that cannot reach the server stops leading
//! at once, without waiting for the server to notice (fencing): its
//! heartbeat (`SELECT 1`, every second, 2 s to answer) fails and the
//! connection is dropped. A gateway on a SQLite file is `Single`: it
//! always runs its sources.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::NoTls;

use super::StoreError;
use crate::domain::redact::Redactor;

/// The session advisory lock the leader holds (per database).
const LEADER_LOCK: i64 = 0x5761_526f;
/// How often a follower tries to lead, and a leader checks its connection.
pub(super) const RETRY: Duration = Duration::from_secs(1);
/// How long the heartbeat and the lock attempt may take.
const ANSWER: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The only gateway on its store (a SQLite file).
    Single,
    /// Runs the sources for every gateway on the database.
    Leader,
    /// Another gateway leads; this one does not run its sources.
    Follower,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Single => "single",
            Role::Leader => "leader",
            Role::Follower => "follower",
        }
    }
}

/// A gateway's role and its store's reachability, as shown to people.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleStatus {
    pub role: Role,
    /// When this gateway became leader (`Leader` only).
    pub leader_since: Option<DateTime<Utc>>,
    /// "PostgreSQL at HOST:PORT", or the SQLite file.
    pub store: String,
    /// Whether the store answered the last time it was asked.
    pub reachable: bool,
    /// Since when it has (or has not) been reachable; None before the
    /// first answer or failure.
    pub reachable_since: Option<DateTime<Utc>>,
    /// Why it is unreachable, as the client library said (no password).
    /// Empty while it is reachable.
    pub problem: String,
    /// The leader as the database last told this gateway (a follower's
    /// view; a leader's own advertisement).
    pub leader: Option<LeaderInfo>,
}

/// Where the leader serves, as it wrote it in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    /// Its gRPC URL (`http://HOST:PORT`): followers relay and forward there.
    pub url: String,
    /// Its run id (`WatchUpdate.run`).
    pub run_id: String,
    pub since: DateTime<Utc>,
    /// When it last said it leads (every `RETRY`).
    pub beat: DateTime<Utc>,
}

/// This gateway's role, kept up to date by a campaign thread on
/// PostgreSQL. `leading()` is what source work waits on.
pub struct Leadership {
    status: Mutex<RoleStatus>,
    leading: tokio::sync::watch::Sender<bool>,
    /// Where this gateway serves and its run id, once it does: written to
    /// the `leader` row while it leads.
    advertised: Mutex<Option<(String, String)>>,
}

impl Leadership {
    /// The only gateway on `store` (a SQLite file): always runs its sources.
    pub fn single(store: &str) -> Arc<Self> {
        let (leading, _) = tokio::sync::watch::channel(true);
        Arc::new(Leadership {
            status: Mutex::new(RoleStatus {
                role: Role::Single,
                leader_since: None,
                store: store.to_string(),
                reachable: true,
                reachable_since: None,
                problem: String::new(),
                leader: None,
            }),
            leading,
            advertised: Mutex::new(None),
        })
    }

    /// Starts campaigning on the database at `url`: a follower until the
    /// lock is taken. Returns once the first attempt has been answered (or
    /// has failed), later ones follow every `RETRY`.
    pub fn campaign(url: &str) -> Result<Arc<Self>, StoreError> {
        let (mut config, redactor) = super::postgres::url_config(url)?;
        config.application_name("warroom leader election");
        let first_round = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(Duration::from_secs(5))
            + ANSWER;
        let what = format!("PostgreSQL at {}", super::postgres::endpoint(&config));
        let (leading, _) = tokio::sync::watch::channel(false);
        let me = Arc::new(Leadership {
            status: Mutex::new(RoleStatus {
                role: Role::Follower,
                leader_since: None,
                store: what.clone(),
                reachable: false,
                reachable_since: None,
                problem: String::new(),
                leader: None,
            }),
            leading,
            advertised: Mutex::new(None),
        });
        let worker = me.clone();
        std::thread::Builder::new()
            .name("warroom-leader".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(worker.run(config, redactor)),
                    Err(e) => tracing::error!("{what}: leader election cannot start: {e}"),
                }
            })
            .map_err(|e| {
                StoreError::Io(format!("leader election: cannot start its thread: {e}"))
            })?;
        // The first round before the gateway serves: a gateway alone on its
        // database leads from its first call, rather than refusing calls as
        // a follower with nothing to show for up to a second.
        let first = std::time::Instant::now() + first_round;
        while me.status().reachable_since.is_none() && std::time::Instant::now() < first {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(me)
    }

    /// Whether this gateway runs its sources now.
    pub fn is_leading(&self) -> bool {
        *self.leading.borrow()
    }

    /// Follows `is_leading`: source work starts when it turns true and
    /// stops when it turns false.
    pub fn leading(&self) -> tokio::sync::watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Where this gateway serves gRPC (`url`) and its run: followers find
    /// it in the database while it leads. Before this is set, a leader
    /// leads without saying where (its followers wait).
    pub fn advertise(&self, url: &str, run_id: &str) {
        *self.advertised.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((url.to_string(), run_id.to_string()));
    }

    pub fn status(&self) -> RoleStatus {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RoleStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, role: Role, reachable: bool, problem: String) {
        let now = Utc::now();
        let changed_role = {
            let mut s = self.lock();
            if s.reachable != reachable || s.reachable_since.is_none() {
                s.reachable_since = Some(now);
            }
            s.reachable = reachable;
            s.problem = problem;
            let changed = s.role != role;
            if changed {
                s.leader_since = (role == Role::Leader).then_some(now);
                s.role = role;
            }
            changed
        };
        if changed_role {
            tracing::warn!(
                role = role.as_str(),
                "this gateway is now {}",
                role.as_str()
            );
            self.leading.send_replace(role == Role::Leader);
        }
    }

    async fn run(self: Arc<Self>, config: tokio_postgres::Config, redactor: Redactor) {
        let limit = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(Duration::from_secs(5));
        let mut client: Option<tokio_postgres::Client> = None;
        // Until the process ends: the session (and the lock) ends with it.
        loop {
            if client.as_ref().is_some_and(|c| c.is_closed()) {
                client = None;
                self.set(Role::Follower, false, "connection closed".into());
            }
            if client.is_none() {
                match tokio::time::timeout(limit, config.connect(NoTls)).await {
                    Ok(Ok((c, connection))) => {
                        tokio::spawn(async move {
                            let _ = connection.await;
                        });
                        // The server's side of a session whose gateway
                        // vanished without closing it (a machine lost, a
                        // network cut) ends in about 4 s, and the lock with
                        // it, rather than after the system's keep-alive (2
                        // hours by default). Ignored on a Unix socket;
                        // tcp_user_timeout needs PostgreSQL 12.
                        let _ = c
                            .batch_execute(
                                "SET tcp_keepalives_idle = 2; SET tcp_keepalives_interval = 1;
                                 SET tcp_keepalives_count = 2",
                            )
                            .await;
                        let _ = c.batch_execute("SET tcp_user_timeout = 4000").await;
                        client = Some(c);
                    }
                    Ok(Err(e)) => {
                        self.set(Role::Follower, false, redactor.redact_owned(e.to_string()));
                    }
                    Err(_) => self.set(
                        Role::Follower,
                        false,
                        format!("no answer in {} s", limit.as_secs()),
                    ),
                }
            }
            if let Some(c) = &client {
                let leading = self.is_leading();
                let asked = if leading {
                    tokio::time::timeout(ANSWER, c.query_one("SELECT true", &[])).await
                } else {
                    tokio::time::timeout(
                        ANSWER,
                        c.query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK]),
                    )
                    .await
                };
                let asked = match asked {
                    Ok(Ok(row)) => {
                        let got: bool = row.try_get(0).unwrap_or(false);
                        // The leader says where it serves; a follower reads it.
                        let since = if got {
                            self.lock().leader_since.unwrap_or_else(Utc::now)
                        } else {
                            Utc::now()
                        };
                        tokio::time::timeout(ANSWER, self.leader_row(c, got, since))
                            .await
                            .unwrap_or_else(|_| Err(format!("no answer in {} s", ANSWER.as_secs())))
                            .map(|info| (got, info))
                            .map_err(|e| Some(redactor.redact_owned(e)))
                    }
                    Ok(Err(e)) => Err(Some(redactor.redact_owned(e.to_string()))),
                    Err(_) => Err(None),
                };
                match asked {
                    Ok((got, info)) => {
                        let role = if got { Role::Leader } else { Role::Follower };
                        self.lock().leader = info;
                        self.set(role, true, String::new());
                    }
                    Err(Some(e)) => {
                        // Whatever the server holds for this session, this
                        // gateway stops leading now; closing the session
                        // releases the lock if it still has it.
                        client = None;
                        self.set(Role::Follower, false, e);
                    }
                    Err(None) => {
                        client = None;
                        self.set(
                            Role::Follower,
                            false,
                            format!("no answer in {} s", ANSWER.as_secs()),
                        );
                    }
                }
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    /// A leader (`leading`) writes the `leader` row (where it serves, since
    /// when, now); a follower reads it. None: no leader has said yet.
    async fn leader_row(
        &self,
        c: &tokio_postgres::Client,
        leading: bool,
        since: DateTime<Utc>,
    ) -> Result<Option<LeaderInfo>, String> {
        let ms = |t: DateTime<Utc>| t.timestamp_millis();
        let at = |v: i64| DateTime::from_timestamp_millis(v).unwrap_or_default();
        if leading {
            let me = self
                .advertised
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let Some((url, run_id)) = me else {
                return Ok(None);
            };
            let now = Utc::now();
            c.execute(
                "INSERT INTO leader (id, url, run_id, since_ms, beat_ms) VALUES (1, $1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET url = $1, run_id = $2, since_ms = $3, beat_ms = $4",
                &[&url, &run_id, &ms(since), &ms(now)],
            )
            .await
            .map_err(|e| e.to_string())?;
            return Ok(Some(LeaderInfo {
                url,
                run_id,
                since,
                beat: now,
            }));
        }
        let row = c
            .query_opt(
                "SELECT url, run_id, since_ms, beat_ms FROM leader WHERE id = 1",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.and_then(|r| {
            Some(LeaderInfo {
                url: r.try_get(0).ok()?,
                run_id: r.try_get(1).ok()?,
                since: at(r.try_get(2).ok()?),
                beat: at(r.try_get(3).ok()?),
            })
        }))
    }
}
