//! The doveadm HTTP client (`sources::dovecot`), the damage probe
//! (`sources::probe`) and the reindex executor (`sources::reindex`) against
//! a real Dovecot 2.3 (Debian's dovecot-core and
//! dovecot-imapd), started by each test from `tests/fixtures/dovecot/
//! dovecot.conf.in` in a scratch directory, listening on 127.0.0.1 only
//! (IMAP, doveadm HTTP and stats on ports picked here), with two tenants
//! (acme.test, globex.test) seeded through `doveadm save`.
//!
//! As root (CI) the mail belongs to a `vmail` system user, created if
//! missing; otherwise to the user running the tests. Dovecot is stopped
//! with `kill $(cat BASE_DIR/master.pid)` when a test's guard is dropped,
//! also when the test fails. Without Dovecot every test fails with a
//! message naming the packages to install; none passes silently.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use warroom::sources::dovecot::{DoveError, Doveadm, MailboxStatus};
use warroom::sources::probe::{Damage, Depth, Observation, ProbeResult, probe, probe_to};
use warroom::sources::reindex::{Limits, Progress, Reindexer, Repairer};

#[path = "fixtures/backends/dovecot.rs"]
mod dovecot_fixture;
#[path = "fixtures/ports.rs"]
mod ports;
use dovecot_fixture::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn status(d: &Doveadm, user: &str) -> MailboxStatus {
    d.mailbox_status(user, "INBOX")
        .await
        .unwrap_or_else(|e| panic!("mailbox_status {user}: {e}"))
}

/// Seeds every user, then lets Dovecot index every INBOX with settled
/// directory mtimes (and checks the counts).
async fn seed_and_prime(dc: &Dovecot, d: &Doveadm) {
    let seeded = seeded();
    for user in seeded.keys() {
        dc.settle(user);
        let s = status(d, user).await;
        assert_eq!(
            s,
            MailboxStatus {
                messages: seeded[user],
                unseen: seeded[user]
            },
            "{user} as seeded"
        );
    }
}

// ------------------------------------------------------- recording repairer

type Hook = Box<dyn Fn() + Send + Sync>;

/// The real Doveadm repairer, recording the order of calls; optionally runs
/// a (blocking) hook when the k-th repair has succeeded, before answering.
struct Recorder {
    inner: Doveadm,
    calls: Mutex<Vec<String>>,
    ok: AtomicUsize,
    hook: Option<(usize, Arc<Hook>)>,
}

impl Recorder {
    fn new(inner: Doveadm) -> Self {
        Recorder {
            inner,
            calls: Mutex::new(Vec::new()),
            ok: AtomicUsize::new(0),
            hook: None,
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Each user once, in the order it was first called.
    fn first_calls(&self) -> Vec<String> {
        let mut first: Vec<String> = Vec::new();
        for u in self.calls() {
            if !first.contains(&u) {
                first.push(u);
            }
        }
        first
    }
}

#[async_trait::async_trait]
impl Repairer for Recorder {
    async fn repair(&self, user: &str) -> Result<Duration, DoveError> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(user.to_string());
        let result = self.inner.repair(user).await;
        if result.is_ok() {
            let n = self.ok.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some((k, hook)) = &self.hook
                && n == *k
            {
                let hook = Arc::clone(hook);
                tokio::task::spawn_blocking(move || hook())
                    .await
                    .expect("the hook runs");
            }
        }
        result
    }
}

async fn wait_for(r: &Reindexer, what: &str, cond: impl Fn(&Progress) -> bool) -> Progress {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = r.progress();
        if cond(&p) {
            return p;
        }
        assert!(Instant::now() < deadline, "never {what}: {p:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// ------------------------------------------------------------------ tests

/// `user` lists exactly one tenant's users, `mailboxStatus` gives the
/// seeded counts per user, and doveadm's failures come back typed.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Dovecot: ./scripts/test runs it"
)]
#[test]
fn lists_users_and_reads_mailbox_status() {
    let dc = Dovecot::new("status");
    dc.start();
    dc.seed_all();
    runtime().block_on(async {
        let d = dc.client();
        let acme = sorted(d.users("*@acme.test").await.expect("users acme"));
        assert_eq!(acme, ACME.map(|(u, _)| u.to_string()).to_vec());
        let globex = sorted(d.users("*@globex.test").await.expect("users globex"));
        assert_eq!(globex, GLOBEX.map(|(u, _)| u.to_string()).to_vec());
        assert!(d.users("*@initech.test").await.expect("users").is_empty());

        for (user, n) in seeded() {
            assert_eq!(
                status(&d, user).await,
                MailboxStatus {
                    messages: n,
                    unseen: n
                },
                "{user}"
            );
        }

        assert_eq!(
            d.mailbox_status("nobody@acme.test", "INBOX").await,
            Err(DoveError::Exit {
                code: 67,
                meaning: "unknown user"
            })
        );
        assert!(matches!(
            d.mailbox_status("alice@acme.test", "NoSuchFolder").await,
            Err(DoveError::Exit { code: 68, .. })
        ));
        assert!(matches!(
            d.force_resync("nobody@acme.test", "*").await,
            Err(DoveError::Exit { code: 67, .. })
        ));
        // Wildcards are refused before anything is sent.
        assert!(matches!(
            d.mailbox_status("*@acme.test", "INBOX").await,
            Err(DoveError::Invalid(_))
        ));

        let wrong = Doveadm::new(
            &format!("http://127.0.0.1:{}", dc.http_port),
            "not-the-key",
            Duration::from_secs(10),
        )
        .expect("client");
        assert_eq!(wrong.users("*").await, Err(DoveError::Auth));
    });
}

/// Stale indexes (files added behind Dovecot's back) keep reporting the old
/// counts; the reindexer with the real repairer fixes them, calling Dovecot
/// in the priority order it was given.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Dovecot: ./scripts/test runs it"
)]
#[test]
fn reindex_repairs_stale_indexes_in_priority_order() {
    let dc = Dovecot::new("reindex");
    dc.start();
    dc.seed_all();
    runtime().block_on(async {
        let d = dc.client();
        seed_and_prime(&dc, &d).await;

        // (user, files added, where)
        let damage = [
            ("grace@globex.test", 2, "new"),
            ("bob@acme.test", 1, "cur"),
            ("dave@acme.test", 3, "new"),
            ("erin@globex.test", 1, "cur"),
        ];
        for (user, n, sub) in damage {
            dc.sneak_in(user, n, sub);
        }
        let before = seeded();
        for (user, _, _) in damage {
            assert_eq!(
                status(&d, user).await.messages,
                before[user],
                "{user}: the stale index still shows the old count"
            );
        }

        // Priority order: neither alphabetical nor by tenant; a healthy
        // mailbox (alice) last.
        let order: Vec<String> = damage
            .iter()
            .map(|(u, _, _)| u.to_string())
            .chain(["alice@acme.test".to_string()])
            .collect();
        let reindexer = Arc::new(Reindexer::with_queue(
            Limits {
                max_concurrency: 2,
                slow: Duration::from_secs(10),
                retry_after: Duration::from_millis(200),
            },
            order.clone(),
        ));
        let recorder = Arc::new(Recorder::new(dc.client()));
        tokio::time::timeout(
            Duration::from_secs(120),
            Arc::clone(&reindexer).run(Arc::clone(&recorder) as Arc<dyn Repairer>),
        )
        .await
        .expect("the reindexer finishes");

        assert_eq!(recorder.calls(), order, "called once each, in order");
        let p = reindexer.progress();
        assert_eq!(sorted(p.done.clone()), sorted(order.clone()), "{p:?}");
        assert!(p.failed.is_empty() && p.queued.is_empty(), "{p:?}");
        assert_eq!(p.last_error, None);

        let mut expected = seeded();
        for (user, n, _) in damage {
            *expected.get_mut(user).expect("seeded") += n;
        }
        for (user, n) in expected {
            assert_eq!(
                status(&d, user).await,
                MailboxStatus {
                    messages: n,
                    unseen: n
                },
                "{user} after the repair"
            );
        }
    });
}

/// Dovecot stopped mid-run: the reindexer reports the error, pauses and
/// keeps every remaining mailbox in order; Dovecot started again: it
/// finishes them all.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Dovecot: ./scripts/test runs it"
)]
#[test]
fn reindex_waits_out_a_dovecot_outage() {
    let dc = Arc::new(Dovecot::new("outage"));
    dc.start();
    dc.seed_all();
    runtime().block_on(async {
        let d = dc.client();
        seed_and_prime(&dc, &d).await;
        let order = [
            "frank@globex.test",
            "alice@acme.test",
            "grace@globex.test",
            "bob@acme.test",
            "erin@globex.test",
            "dave@acme.test",
        ]
        .map(String::from)
        .to_vec();
        for (i, user) in order.iter().enumerate() {
            dc.sneak_in(
                user,
                1 + i as u64 % 2,
                if i % 2 == 0 { "new" } else { "cur" },
            );
        }

        let reindexer = Arc::new(Reindexer::with_queue(
            Limits {
                max_concurrency: 2,
                slow: Duration::from_secs(10),
                retry_after: Duration::from_millis(200),
            },
            order.clone(),
        ));
        let mut recorder = Recorder::new(dc.client());
        let killer = Arc::clone(&dc);
        let hook: Hook = Box::new(move || killer.stop());
        recorder.hook = Some((2, Arc::new(hook)));
        let recorder = Arc::new(recorder);
        let run =
            tokio::spawn(Arc::clone(&reindexer).run(Arc::clone(&recorder) as Arc<dyn Repairer>));

        // Down: the error is reported, nothing is dropped or reordered.
        let down = wait_for(&reindexer, "paused after the outage", |p| {
            p.paused && p.in_flight == 0 && p.last_error.is_some()
        })
        .await;
        assert!(!dc.http_open(), "Dovecot is down");
        assert!(down.failed.is_empty(), "{down:?}");
        assert!(down.done.len() >= 2, "{down:?}");
        assert_eq!(
            sorted(down.done.clone()),
            sorted(order[..down.done.len()].to_vec()),
            "{down:?}"
        );
        assert_eq!(down.queued, order[down.done.len()..].to_vec(), "{down:?}");
        // A call caught by the shutdown may fail with exit code 75 (its
        // user lookup lost the auth service) rather than find no listener.
        let error = down.last_error.clone().unwrap_or_default();
        assert!(
            ["unreachable", "closed", "exit code 75"]
                .iter()
                .any(|w| error.contains(w)),
            "{error}"
        );
        assert_eq!(down.concurrency, 1);

        // It keeps trying (the same, first remaining mailbox) while down.
        let calls_then = recorder.calls().len();
        wait_for(&reindexer, "retrying", |p| p.retries >= down.retries + 2).await;
        let retried: Vec<String> = recorder.calls()[calls_then..].to_vec();
        assert!(
            retried.iter().all(|u| *u == down.queued[0]),
            "{retried:?} vs {down:?}"
        );
        let still = reindexer.progress();
        assert_eq!(still.done, down.done);
        assert!(still.failed.is_empty());
        assert!(still.paused, "{still:?}");
        let error = still.last_error.unwrap_or_default();
        assert!(error.contains("doveadm API unreachable"), "{error}");
        assert!(
            error.starts_with(&format!("{}: ", down.queued[0])),
            "{error}"
        );

        // Up again: it finishes the rest.
        let starter = Arc::clone(&dc);
        tokio::task::spawn_blocking(move || starter.start())
            .await
            .expect("Dovecot starts again");
        tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .expect("the reindexer finishes")
            .expect("the reindexer does not panic");

        let p = reindexer.progress();
        assert!(p.failed.is_empty() && p.queued.is_empty(), "{p:?}");
        assert_eq!(sorted(p.done.clone()), sorted(order.clone()), "{p:?}");
        assert!(!p.paused);
        assert_eq!(recorder.first_calls(), order, "first tried in order");

        let mut expected = seeded();
        for (i, user) in order.iter().enumerate() {
            *expected.get_mut(user.as_str()).expect("seeded") += 1 + i as u64 % 2;
        }
        let d = dc.client();
        for (user, n) in expected {
            assert_eq!(
                status(&d, user).await.messages,
                n,
                "{user} after the repair"
            );
        }
    });
}

// ------------------------------------------------------------ damage probe

/// Probes each user once, in order, with the observation kept from the
/// previous sweep, and keeps the new one.
async fn sweep(
    d: &Doveadm,
    users: &[&str],
    kept: &mut BTreeMap<String, Observation>,
) -> BTreeMap<String, ProbeResult> {
    let mut results = BTreeMap::new();
    for &user in users {
        let r = probe(d, user, kept.get(user)).await;
        if let Some(o) = r.observation() {
            kept.insert(user.to_string(), o.clone());
        }
        results.insert(user.to_string(), r);
    }
    results
}

fn all_users() -> Vec<&'static str> {
    seeded().into_keys().collect()
}

fn assert_healthy(results: &BTreeMap<String, ProbeResult>, what: &str) {
    for (user, r) in results {
        assert!(
            matches!(r, ProbeResult::Healthy(_)),
            "{what}: {user}: {r:?}"
        );
    }
}

/// The one finding of a damaged result, and the observation after it.
fn one_damage<'a>(
    results: &'a BTreeMap<String, ProbeResult>,
    user: &str,
) -> (&'a Damage, &'a Observation) {
    match &results[user] {
        ProbeResult::Damaged {
            damage,
            now: Some(now),
        } if damage.len() == 1 => (&damage[0], now),
        other => panic!("{user}: one finding expected, got {other:?}"),
    }
}

/// Each kind of damage, planted after a healthy sweep (in INBOX and in
/// another folder), is found on the next sweep with the right kind, and the
/// sweep after that finds every mailbox healthy again.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Dovecot: ./scripts/test runs it"
)]
#[test]
fn probe_finds_each_kind_of_damage_in_any_folder() {
    let dc = Dovecot::new("probe-kinds");
    dc.start();
    dc.seed_all();
    dc.seed_folder("erin@globex.test", "Archive", 3);
    dc.seed_folder("grace@globex.test", "Archive", 3);
    for user in all_users() {
        dc.settle(user);
    }
    runtime().block_on(async {
        let d = dc.client();
        let users = all_users();
        let mut kept = BTreeMap::new();
        let first = sweep(&d, &users, &mut kept).await;
        assert_healthy(&first, "first sweep");
        let seeded = seeded();
        for (user, n) in &seeded {
            assert_eq!(kept[*user].inbox().map(|f| f.messages), Some(*n), "{user}");
        }
        assert_eq!(
            kept["erin@globex.test"]
                .folder("Archive")
                .map(|f| f.messages),
            Some(3)
        );

        dc.corrupt_log("alice@acme.test");
        dc.lose_uidlist("bob@acme.test");
        let added = dc.stale_index("carol@acme.test");
        dc.sneak_into("erin@globex.test", "Archive", 1, "cur");
        dc.lose_uidlist_in("grace@globex.test", "Archive");

        let second = sweep(&d, &users, &mut kept).await;

        let (damage, now) = one_damage(&second, "alice@acme.test");
        assert_eq!(damage.kind(), "corrupt_log", "{damage}");
        assert!(damage.to_string().contains("exit code 75"), "{damage}");
        assert_eq!(
            now.inbox().map(|f| f.messages),
            Some(seeded["alice@acme.test"])
        );

        let (damage, _) = one_damage(&second, "bob@acme.test");
        assert_eq!(damage.kind(), "lost_uidlist", "{damage}");
        assert_eq!(damage.folder(), Some("INBOX"));
        assert!(damage.clients_must_resync());
        let Damage::LostUidlist { before, after } = damage else {
            unreachable!()
        };
        assert_ne!(before.uidvalidity, after.uidvalidity);
        assert_eq!(after.messages, seeded["bob@acme.test"]);
        assert!(damage.to_string().contains(&format!(
            "UIDVALIDITY changed {} → {}",
            before.uidvalidity, after.uidvalidity
        )));

        let (damage, now) = one_damage(&second, "carol@acme.test");
        assert_eq!(damage.kind(), "stale_index", "{damage}");
        let Damage::StaleIndex { before, after } = damage else {
            unreachable!()
        };
        assert_eq!(before.messages, seeded["carol@acme.test"]);
        assert_eq!(after.messages, seeded["carol@acme.test"] + added);
        assert_eq!(now.inbox(), Some(after), "the probe's resync fixed it");

        let (damage, _) = one_damage(&second, "erin@globex.test");
        assert_eq!(
            (damage.kind(), damage.folder()),
            ("stale_index", Some("Archive"))
        );

        let (damage, _) = one_damage(&second, "grace@globex.test");
        assert_eq!(
            (damage.kind(), damage.folder()),
            ("lost_uidlist", Some("Archive"))
        );

        for user in ["dave@acme.test", "frank@globex.test"] {
            assert!(
                matches!(second[user], ProbeResult::Healthy(_)),
                "{user}: {:?}",
                second[user]
            );
        }

        // What the probe found, it also brought up to date: the next sweep
        // (with the observations kept from this one) finds nothing.
        let third = sweep(&d, &users, &mut kept).await;
        assert_healthy(&third, "third sweep");
    });
}

/// Healthy mailboxes stay healthy sweep after sweep, and so do new users:
/// one whose mailbox nothing ever opened (no folders at all), one whose
/// mail an MTA wrote straight into the Maildir. A uidlist lost before the first observation
/// looks exactly like the latter, so it is not seen (the documented limit).
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Dovecot: ./scripts/test runs it"
)]
#[test]
fn probe_reports_no_damage_on_healthy_or_new_mailboxes() {
    let dc = Dovecot::new("probe-healthy");
    dc.start();
    dc.seed_all();
    let (fresh, mta) = ("newbie@acme.test", "direct@globex.test");
    dc.add_users([fresh, mta]);
    dc.deliver_directly(mta, 3);
    // Lost before the gateway ever looked.
    dc.access_elsewhere("frank@globex.test")
        .expect("frank's mailbox opens");
    dc.lose_uidlist("frank@globex.test");
    runtime().block_on(async {
        let d = dc.client();
        let mut users = all_users();
        users.extend([fresh, mta]);
        let mut kept = BTreeMap::new();
        for n in 1..=3 {
            let results = sweep(&d, &users, &mut kept).await;
            assert_healthy(&results, &format!("sweep {n}"));
        }
        // Never opened: Dovecot lists no folder at all, and the probe does
        // not create the INBOX.
        assert_eq!(kept[fresh], Observation::default());
        assert!(!dc.maildir(fresh).join("cur").exists());
        assert_eq!(kept[mta].inbox().map(|f| f.messages), Some(3));
        assert_eq!(
            kept["frank@globex.test"].inbox().map(|f| f.messages),
            Some(seeded()["frank@globex.test"])
        );

        // Mail delivered by Dovecot between sweeps is not damage either.
        dc.seed("alice@acme.test", 2);
        dc.deliver_directly(mta, 1);
        let results = sweep(&d, &users, &mut kept).await;
        assert_healthy(&results, "after new mail");
        assert_eq!(kept[mta].inbox().map(|f| f.messages), Some(4));
    });
}

/// A corrupt log met first by another access (an IMAP login, a delivery)
/// is rebuilt there and gives the probe no exit code 75; what remains is
/// HIGHESTMODSEQ gone back, which the probe reports against its previous
/// observation. A status-only probe sees it too, but not a stale index.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Dovecot: ./scripts/test runs it"
)]
#[test]
fn probe_sees_an_index_rebuilt_by_another_access() {
    let dc = Dovecot::new("probe-rebuilt");
    dc.start();
    dc.seed_all();
    for user in all_users() {
        dc.settle(user);
    }
    runtime().block_on(async {
        let d = dc.client();
        let users = all_users();
        let mut kept = BTreeMap::new();
        assert_healthy(&sweep(&d, &users, &mut kept).await, "first sweep");

        dc.corrupt_log("dave@acme.test");
        let met = dc.access_elsewhere("dave@acme.test");
        assert!(
            met.is_err(),
            "the other access meets the corrupt log: {met:?}"
        );
        dc.corrupt_log("bob@acme.test");
        dc.stale_index("carol@acme.test");

        let quick = |user: &'static str| {
            let previous = kept.get(user).cloned();
            let d = &d;
            async move { probe_to(d, user, previous.as_ref(), Depth::Status).await }
        };
        let r = quick("dave@acme.test").await;
        let ProbeResult::Damaged {
            damage,
            now: Some(_),
        } = &r
        else {
            panic!("{r:?}")
        };
        assert_eq!(damage.len(), 1, "{damage:?}");
        assert_eq!(damage[0].kind(), "index_rebuilt", "{}", damage[0]);
        assert!(
            damage[0].to_string().contains("HIGHESTMODSEQ went back"),
            "{}",
            damage[0]
        );
        assert!(damage[0].clients_must_resync());

        let r = quick("bob@acme.test").await;
        let ProbeResult::Damaged { damage, .. } = &r else {
            panic!("{r:?}")
        };
        assert_eq!(damage[0].kind(), "corrupt_log", "{}", damage[0]);
        assert!(
            damage[0]
                .to_string()
                .contains("rebuilt: INBOX (HIGHESTMODSEQ"),
            "{}",
            damage[0]
        );

        // A status alone does not see the stale index; the full probe does.
        assert!(matches!(
            quick("carol@acme.test").await,
            ProbeResult::Healthy(_)
        ));
        let r = probe(&d, "carol@acme.test", kept.get("carol@acme.test")).await;
        let ProbeResult::Damaged { damage, .. } = &r else {
            panic!("{r:?}")
        };
        assert_eq!(damage[0].kind(), "stale_index");
    });
}

/// An unknown user is told apart from damage, and a stopped Dovecot is an
/// outage, not damage.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Dovecot: ./scripts/test runs it"
)]
#[test]
fn probe_reports_unknown_users_and_outages() {
    let dc = Dovecot::new("probe-outage");
    dc.start();
    dc.seed_all();
    runtime().block_on(async {
        let d = dc.client();
        assert_eq!(
            probe(&d, "nobody@acme.test", None).await,
            ProbeResult::UnknownUser
        );
        let r = probe(&d, "alice@acme.test", None).await;
        let kept = r.observation().cloned().expect("an observation");
        dc.stop();
        let r = probe(&d, "alice@acme.test", Some(&kept)).await;
        match r {
            ProbeResult::Outage(e) => assert!(e.is_outage(), "{e:?}"),
            other => panic!("{other:?}"),
        }
    });
}
