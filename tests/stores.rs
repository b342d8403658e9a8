//! The same behaviour from both stores: the SQLite file (the default) and a
//! PostgreSQL database (a real server, made with initdb for the test). Each
//! behaviour is one function taking a way to open a connection to the
//! store, run once per store: what a war room relies on (nothing lost on
//! reopening, a stale edit refused, a publish sent twice stored once, two
//! writers losing no update) does not depend on where the state lives.
//! PostgreSQL's own refusals (a newer schema, foreign tables) and its
//! losing and finding the server again are tested below them.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::postgres::{PASSWORD, PgCluster};
use warroom::domain::incident::{Entry, Event, Observation};
use warroom::domain::priority::PriorityDecision;
use warroom::domain::scope::ScopeRevision;
use warroom::domain::update::Update;
use warroom::domain::{IncidentState, Priority};
use warroom::store::{Location, Store, StoreError};

type Open<'a> = &'a (dyn Fn() -> Box<dyn Store> + Sync);

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_733_400_000_123).unwrap()
}

fn decision(tenant: &str, p: Priority, by: &str, reason: &str) -> PriorityDecision {
    PriorityDecision {
        tenant_id: tenant.into(),
        priority: p,
        rank: 2,
        version: 0,
        set_by: by.into(),
        set_at: at(),
        reason: reason.into(),
    }
}

fn update(op: &str, title: &str) -> Update {
    Update {
        id: String::new(),
        seq: 0,
        operation_id: op.into(),
        state: IncidentState::Identified,
        title: title.into(),
        body: "Mailboxes on cluster A are being reindexed.".into(),
        components: vec![("imap".into(), "major_outage".into())],
        next_update: Some(at() + chrono::Duration::minutes(90)),
        published_by: "cy".into(),
        published_at: at(),
        simulated: true,
    }
}

fn sqlite(tag: &str) -> impl Fn() -> Box<dyn Store> + Sync {
    let path = common::state_file(&format!("stores-{tag}"));
    move || warroom::store::open(&path).unwrap()
}

fn postgres(url: String) -> impl Fn() -> Box<dyn Store> + Sync {
    move || warroom::store::open_at(&Location::Postgres(url.clone())).unwrap()
}

// ---- behaviour shared by both stores -------------------------------------

/// Every operation, written on one connection and read back on a new one.
fn every_operation_round_trips(open: Open<'_>) {
    let journal = vec![
        Event {
            at: at(),
            entry: Entry::Found {
                mailbox: "a@t".into(),
                kind: "corrupt_log".into(),
                detail: "doveadm exit code 75".into(),
            },
        },
        Event {
            at: at(),
            entry: Entry::Scope(ScopeRevision {
                at: at(),
                previous: 25_000,
                scope: 61_000,
                reason: "sweep 10%".into(),
            }),
        },
        Event {
            at: at(),
            entry: Entry::Rate {
                job: "repair".into(),
                per_second: 2.5,
            },
        },
        Event {
            at: at(),
            entry: Entry::Repaired {
                mailbox: "a@t".into(),
            },
        },
        Event {
            at: at(),
            entry: Entry::Failed {
                mailbox: "b@t".into(),
                why: "exit 67".into(),
            },
        },
        Event {
            at: at(),
            entry: Entry::PassDone {
                pass: 1,
                mailboxes: 240,
            },
        },
    ];
    let first = update("op-1", "Mailbox access on cluster A");
    {
        let mut s = open();
        let (d, ev) = s
            .record_priority(
                0,
                &decision("t1", Priority::P0, "ana", "hospital"),
                "P2 → P0",
            )
            .unwrap();
        assert_eq!((d.version, ev.action.as_str()), (1, "set_priority"));
        s.record_priority(1, &decision("t1", Priority::P1, "bo", "later"), "P0 → P1")
            .unwrap();
        s.record_priority(0, &decision("t2", Priority::P3, "cy", "test"), "P2 → P3")
            .unwrap();
        let (u, fresh) = s
            .publish(
                &first,
                &[
                    ("webhook".into(), String::new()),
                    ("email".into(), "t1 ops@t1.example".into()),
                    ("email".into(), "t2 noc@t2.example".into()),
                ],
                "to 3 targets",
            )
            .unwrap();
        assert!(fresh);
        assert_eq!((u.id.as_str(), u.seq), ("su-000001", 1));
        let (u2, _) = s
            .publish(
                &update("op-2", "Reindex at 40%"),
                &[("webhook".into(), String::new())],
                "",
            )
            .unwrap();
        assert_eq!(u2.id, "su-000002");
        // Claimed for no time at all: the claims below change nothing
        // for the next owner, as on a SQLite file, where they are not kept.
        let due = s.claim_due("gw", at(), Duration::ZERO, 10).unwrap();
        assert_eq!(due.len(), 4, "{due:?}");
        assert_eq!(
            due.iter()
                .map(|d| (d.update_id.as_str(), d.channel.as_str(), d.attempts))
                .collect::<Vec<_>>(),
            [
                ("su-000001", "webhook", 0),
                ("su-000001", "email", 0),
                ("su-000001", "email", 0),
                ("su-000002", "webhook", 0)
            ]
        );
        assert!(
            s.record_attempt(due[0].id, "gw", "sent", "HTTP 200", at(), false)
                .unwrap()
        );
        let retry_at = at() + chrono::Duration::minutes(1);
        assert!(
            s.record_attempt(
                due[1].id,
                "gw",
                "pending",
                "timed out after 30 s",
                retry_at,
                true
            )
            .unwrap()
        );
        assert!(
            s.record_attempt(due[2].id, "gw", "failed", "550 no such user", at(), false)
                .unwrap()
        );
        s.memory_put("statuspage", "incident", "abc").unwrap();
        s.memory_put("statuspage", "incident", "def").unwrap();
        s.journal_append(&journal[..2]).unwrap();
        s.journal_append(&journal[2..]).unwrap();
        let obs = |d: &str| Observation {
            data: d.into(),
            at: Some(at()),
        };
        s.observations_put(&[("a@t".into(), obs("{\"uidnext\":7}"))])
            .unwrap();
        s.observations_put(&[
            ("a@t".into(), obs("{\"uidnext\":8}")),
            ("b@t".into(), obs("{\"uidnext\":3}")),
        ])
        .unwrap();
    }
    let mut s = open();
    let p = s.priorities().unwrap();
    assert_eq!(
        p.iter()
            .map(|d| (
                d.tenant_id.as_str(),
                d.priority,
                d.rank,
                d.version,
                d.set_by.as_str(),
                d.reason.as_str(),
                d.set_at
            ))
            .collect::<Vec<_>>(),
        [
            ("t1", Priority::P1, 2, 2, "bo", "later", at()),
            ("t2", Priority::P3, 2, 1, "cy", "test", at())
        ]
    );
    let audit = s.audit_events(0, 100).unwrap();
    assert_eq!(
        audit
            .iter()
            .map(|e| (e.action.as_str(), e.target.as_str(), e.detail.as_str()))
            .collect::<Vec<_>>(),
        [
            ("set_priority", "t1", "P2 → P0"),
            ("set_priority", "t1", "P0 → P1"),
            ("set_priority", "t2", "P2 → P3"),
            ("publish", "su-000001", "to 3 targets"),
            ("publish", "su-000002", "")
        ]
    );
    assert_eq!(s.audit_events(audit[0].id, 2).unwrap(), audit[1..3]);
    let updates = s.status_updates().unwrap();
    assert_eq!(updates.len(), 2);
    assert_eq!(
        updates[0],
        Update {
            id: "su-000001".into(),
            seq: 1,
            ..first.clone()
        }
    );
    assert_eq!(s.update_by_operation("op-2").unwrap().unwrap().seq, 2);
    assert_eq!(s.update_by_operation("op-9").unwrap(), None);
    assert_eq!(s.latest_update().unwrap().unwrap().id, "su-000002");
    let of_first = s.deliveries(Some("su-000001")).unwrap();
    assert_eq!(
        of_first
            .iter()
            .map(|d| (d.state.as_str(), d.attempts, d.detail.as_str()))
            .collect::<Vec<_>>(),
        [
            ("sent", 1, "HTTP 200"),
            ("pending", 1, "timed out after 30 s"),
            ("failed", 1, "550 no such user")
        ]
    );
    assert_eq!(s.deliveries(None).unwrap().len(), 4);
    assert!(s.deliveries(Some("su-000099")).unwrap().is_empty());
    let summary = s.delivery_summary().unwrap();
    assert_eq!(
        summary
            .iter()
            .map(|c| (c.channel.as_str(), c.pending, c.sent, c.failed))
            .collect::<Vec<_>>(),
        [("email", 1, 0, 1), ("webhook", 1, 1, 0)]
    );
    assert!(
        ["timed out after 30 s", "550 no such user"].contains(&summary[0].last_problem.as_str()),
        "{summary:?}"
    );
    // The retried one is due a minute later, and carries its doubt.
    assert_eq!(s.next_due().unwrap(), Some(at()));
    let due = s.claim_due("gw2", at(), Duration::ZERO, 10).unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    let due = s
        .claim_due(
            "gw2",
            at() + chrono::Duration::minutes(1),
            Duration::ZERO,
            10,
        )
        .unwrap();
    assert_eq!(due.len(), 2);
    let retried = due.iter().find(|d| d.channel == "email").unwrap();
    assert_eq!(
        (
            retried.attempts,
            retried.maybe_applied,
            retried.last_detail.as_str()
        ),
        (1, true, "timed out after 30 s")
    );
    assert_eq!(
        s.memory_get("statuspage", "incident").unwrap().as_deref(),
        Some("def")
    );
    assert_eq!(s.memory_get("statuspage", "other").unwrap(), None);
    assert_eq!(s.journal().unwrap(), journal);
    let mut obs = s.observations().unwrap();
    obs.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        obs.iter()
            .map(|(m, o)| (m.as_str(), o.data.as_str(), o.at))
            .collect::<Vec<_>>(),
        [
            ("a@t", "{\"uidnext\":8}", Some(at())),
            ("b@t", "{\"uidnext\":3}", Some(at()))
        ]
    );
}

fn a_stale_version_is_refused_as_a_conflict_naming_the_current_decision(open: Open<'_>) {
    let mut s = open();
    s.record_priority(0, &decision("t1", Priority::P0, "ana", "first"), "")
        .unwrap();
    for stale in [0, 5] {
        match s.record_priority(stale, &decision("t1", Priority::P3, "bo", "late"), "") {
            Err(StoreError::Conflict { expected, current }) => {
                assert_eq!(expected, stale);
                let c = current.unwrap();
                assert_eq!((c.version, c.set_by.as_str()), (1, "ana"));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    // Nothing of the refused edits is stored, not even in the audit.
    assert_eq!(s.audit_events(0, 10).unwrap().len(), 1);
    assert_eq!(s.priorities().unwrap()[0].reason, "first");
    // A version for a tenant nobody prioritized is stale too.
    assert!(matches!(
        s.record_priority(3, &decision("t9", Priority::P0, "bo", "x"), ""),
        Err(StoreError::Conflict { current: None, .. })
    ));
}

fn publishing_the_same_operation_twice_publishes_once(open: Open<'_>) {
    let (mut a, mut b) = (open(), open());
    let targets = [("webhook".to_string(), String::new())];
    let (u, fresh) = a
        .publish(&update("op-same", "First"), &targets, "")
        .unwrap();
    assert!(fresh);
    // Again, on the same connection and on another, even with other text.
    let (again, fresh) = a
        .publish(&update("op-same", "Second"), &targets, "")
        .unwrap();
    assert!(!fresh);
    assert_eq!(again, u);
    let (other, fresh) = b
        .publish(&update("op-same", "Third"), &targets, "")
        .unwrap();
    assert!(!fresh);
    assert_eq!(other.title, "First");
    assert_eq!(a.status_updates().unwrap().len(), 1);
    assert_eq!(a.deliveries(None).unwrap().len(), 1, "one delivery");
    let publishes = a
        .audit_events(0, 10)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "publish")
        .count();
    assert_eq!(publishes, 1);
}

/// Two publishers on two connections send the same 50 operations at the
/// same time (a retry reaching a second gateway): each is stored once, with
/// one set of deliveries and one audit event, both are answered with the
/// same update, and the update numbers run on without gaps.
fn the_same_operations_published_at_once_on_two_connections_are_stored_once(open: Open<'_>) {
    drop(open());
    let targets = [
        ("webhook".to_string(), String::new()),
        ("email".to_string(), "t1 ops@t1.example".to_string()),
    ];
    let answers: Vec<Vec<(String, u64, bool)>> = std::thread::scope(|scope| {
        let publishers: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|who| {
                let targets = &targets;
                scope.spawn(move || {
                    let mut s = open();
                    (0..50)
                        .map(|i| {
                            let op = format!("op-{i}");
                            let (u, fresh) = s
                                .publish(&update(&op, &format!("{who} {i}")), targets, "")
                                .unwrap();
                            (op, u.seq, fresh)
                        })
                        .collect()
                })
            })
            .collect();
        publishers.into_iter().map(|p| p.join().unwrap()).collect()
    });
    for (a, b) in answers[0].iter().zip(&answers[1]) {
        assert_eq!(a.1, b.1, "{}: both answered with one update", a.0);
        assert!(a.2 ^ b.2, "{}: stored by exactly one of them", a.0);
    }
    let s = open();
    let updates = s.status_updates().unwrap();
    assert_eq!(updates.len(), 50);
    let ops: BTreeSet<&str> = updates.iter().map(|u| u.operation_id.as_str()).collect();
    assert_eq!(ops.len(), 50);
    assert_eq!(
        updates.iter().map(|u| u.id.as_str()).next_back(),
        Some("su-000050"),
        "update numbers without gaps"
    );
    assert_eq!(s.deliveries(None).unwrap().len(), 100);
    assert_eq!(s.audit_events(0, 1000).unwrap().len(), 50);
}

/// Two writers on two connections, 500 edits each on one tenant, each sent
/// with the newest version its writer has seen: every version is granted
/// once, every accepted edit is in the audit and nothing else is.
fn two_writers_making_500_edits_each_lose_no_update(open: Open<'_>) {
    // Made before the writers start: two SQLite connections creating one
    // file at once would see each other's empty file.
    drop(open());
    let accepted: Vec<(u64, String)> = std::thread::scope(|scope| {
        let writers: Vec<_> = ["ana", "bo"]
            .into_iter()
            .map(|who| {
                scope.spawn(move || {
                    let mut s = open();
                    let mut seen = 0;
                    let mut accepted = Vec::new();
                    for i in 0..500 {
                        let p = [Priority::P0, Priority::P1, Priority::P3][i % 3];
                        let reason = format!("{who}-{i}");
                        match s.record_priority(seen, &decision("t3", p, who, &reason), "") {
                            Ok((d, _)) => {
                                seen = d.version;
                                accepted.push((d.version, reason));
                            }
                            Err(StoreError::Conflict { current, .. }) => {
                                seen = current.map_or(0, |c| c.version);
                            }
                            Err(e) => panic!("{who}: {e}"),
                        }
                    }
                    accepted
                })
            })
            .collect();
        writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let mut accepted = accepted;
    accepted.sort();
    let versions: Vec<u64> = accepted.iter().map(|a| a.0).collect();
    assert_eq!(versions, (1..=accepted.len() as u64).collect::<Vec<_>>());
    assert!(accepted.len() >= 500, "{} accepted", accepted.len());
    let s = open();
    let on_record: BTreeSet<String> = s
        .audit_events(0, 10_000)
        .unwrap()
        .into_iter()
        .map(|e| e.reason)
        .collect();
    let reasons: BTreeSet<String> = accepted.iter().map(|a| a.1.clone()).collect();
    assert_eq!(on_record, reasons);
    let now = &s.priorities().unwrap()[0];
    let last = accepted.last().unwrap();
    assert_eq!((now.version, &now.reason), (last.0, &last.1));
    eprintln!("{} of 1000 edits accepted", accepted.len());
}

// ---- the SQLite file -------------------------------------------------------

#[test]
fn sqlite_every_operation_round_trips() {
    every_operation_round_trips(&sqlite("round-trip"));
}

#[test]
fn sqlite_a_stale_version_is_refused_as_a_conflict() {
    a_stale_version_is_refused_as_a_conflict_naming_the_current_decision(&sqlite("stale"));
}

#[test]
fn sqlite_publishing_the_same_operation_twice_publishes_once() {
    publishing_the_same_operation_twice_publishes_once(&sqlite("twice"));
}

#[test]
fn sqlite_the_same_operations_published_at_once_are_stored_once() {
    the_same_operations_published_at_once_on_two_connections_are_stored_once(&sqlite("at-once"));
}

#[test]
fn sqlite_two_writers_making_500_edits_each_lose_no_update() {
    two_writers_making_500_edits_each_lose_no_update(&sqlite("writers"));
}

// ---- a PostgreSQL database ----------------------------------------------

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[test]
fn postgres_every_operation_round_trips() {
    let pg = PgCluster::start("round-trip");
    every_operation_round_trips(&postgres(pg.create_db("warroom")));
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[test]
fn postgres_a_stale_version_is_refused_as_a_conflict() {
    let pg = PgCluster::start("stale");
    a_stale_version_is_refused_as_a_conflict_naming_the_current_decision(&postgres(
        pg.create_db("warroom"),
    ));
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[test]
fn postgres_publishing_the_same_operation_twice_publishes_once() {
    let pg = PgCluster::start("twice");
    publishing_the_same_operation_twice_publishes_once(&postgres(pg.create_db("warroom")));
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[test]
fn postgres_two_writers_making_500_edits_each_lose_no_update() {
    let pg = PgCluster::start("writers");
    two_writers_making_500_edits_each_lose_no_update(&postgres(pg.create_db("warroom")));
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[test]
fn postgres_the_same_operations_published_at_once_are_stored_once() {
    let pg = PgCluster::start("at-once");
    the_same_operations_published_at_once_on_two_connections_are_stored_once(&postgres(
        pg.create_db("warroom"),
    ));
}

/// Two gateways' outboxes on one database: a delivery one has claimed is
/// not the other's while the claim lives; once it has expired the other
/// takes it, and the first one's late attempt is refused, so the delivery
/// is counted once.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[test]
fn postgres_a_claimed_delivery_is_one_gateways_until_its_lease_expires() {
    let pg = PgCluster::start("claims");
    let open = postgres(pg.create_db("warroom"));
    let (mut a, mut b) = (open(), open());
    let targets: Vec<(String, String)> = (0..6)
        .map(|i| ("email".to_string(), format!("t{i}@example.net")))
        .collect();
    a.publish(&update("op-1", "Logins failing"), &targets, "")
        .unwrap();
    let lease = Duration::from_secs(60);
    let now = at();
    let mine = a.claim_due("gw-a", now, lease, 4).unwrap();
    let theirs = b.claim_due("gw-b", now, lease, 10).unwrap();
    assert_eq!((mine.len(), theirs.len()), (4, 2));
    let ids =
        |v: &[warroom::domain::update::Delivery]| v.iter().map(|d| d.id).collect::<BTreeSet<_>>();
    assert!(ids(&mine).is_disjoint(&ids(&theirs)), "{mine:?} {theirs:?}");
    assert!(
        b.claim_due("gw-b", now, lease, 10).unwrap().len() == 2,
        "b keeps its own"
    );
    assert!(
        !b.renew_claim(mine[0].id, "gw-b", now, lease).unwrap(),
        "a claim held by another is not renewed"
    );
    // The holder sees it is free again when the claims expire.
    assert_eq!(
        b.next_due().unwrap(),
        Some(now + chrono::Duration::seconds(60))
    );

    // gw-a stalls past its lease: gw-b takes its deliveries and sends one.
    let later = now + chrono::Duration::seconds(61);
    let taken = b.claim_due("gw-b", later, lease, 10).unwrap();
    assert_eq!(
        ids(&taken),
        ids(&mine).union(&ids(&theirs)).copied().collect()
    );
    assert!(b.renew_claim(mine[0].id, "gw-b", later, lease).unwrap());
    assert!(
        b.record_attempt(mine[0].id, "gw-b", "sent", "250 ok", later, false)
            .unwrap()
    );
    // gw-a wakes up: neither its renewal nor its attempt counts.
    assert!(!a.renew_claim(mine[0].id, "gw-a", later, lease).unwrap());
    assert!(!a.renew_claim(mine[1].id, "gw-a", later, lease).unwrap());
    assert!(
        !a.record_attempt(mine[1].id, "gw-a", "sent", "250 ok", later, false)
            .unwrap(),
        "an attempt by a gateway whose claim was taken over is refused"
    );
    let all = a.deliveries(None).unwrap();
    let d0 = all.iter().find(|d| d.id == mine[0].id).unwrap();
    let d1 = all.iter().find(|d| d.id == mine[1].id).unwrap();
    assert_eq!((d0.state.as_str(), d0.attempts), ("sent", 1));
    assert_eq!((d1.state.as_str(), d1.attempts), ("pending", 0));
    // A sent delivery is nobody's to claim again.
    assert!(!ids(&b.claim_due("gw-b", later, lease, 10).unwrap()).contains(&mine[0].id));
}

/// A database made by an earlier build (schema 1, before claims and the
/// leader's row) is
/// brought to schema 3 at start, keeping what it held.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[test]
fn postgres_a_schema_1_database_is_upgraded_keeping_its_state() {
    let pg = PgCluster::start("upgrade");
    let url = pg.create_db("warroom");
    let mut s = postgres(url.clone())();
    s.record_priority(0, &decision("t1", Priority::P0, "ana", "kept"), "")
        .unwrap();
    s.publish(
        &update("op-1", "Old"),
        &[("webhook".into(), String::new())],
        "",
    )
    .unwrap();
    drop(s);
    pg.psql(
        "warroom",
        "ALTER TABLE deliveries DROP COLUMN claimed_by, DROP COLUMN claimed_until_ms;
         DROP TABLE leader;
         UPDATE warroom_meta SET value = '1' WHERE key = 'schema_version'",
    );
    let mut s = postgres(url)();
    assert_eq!(
        pg.psql(
            "warroom",
            "SELECT value FROM warroom_meta WHERE key = 'schema_version'"
        ),
        "3"
    );
    assert_eq!(s.priorities().unwrap()[0].reason, "kept");
    let due = s
        .claim_due("gw", at(), Duration::from_secs(60), 10)
        .unwrap();
    assert_eq!(due.len(), 1, "the old pending delivery is claimable");
}

/// What a database holds, to compare before and after a refusal.
fn dump(pg: &PgCluster, db: &str) -> String {
    pg.psql(
        db,
        "SELECT string_agg(table_name || '.' || column_name, ',' ORDER BY table_name, column_name)
         FROM information_schema.columns WHERE table_schema = 'public'",
    ) + &pg.psql(
        db,
        "SELECT string_agg(key || '=' || value, ',' ORDER BY key) FROM warroom_meta",
    )
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[test]
fn postgres_a_newer_schema_is_refused_and_the_database_left_as_it_was() {
    let pg = PgCluster::start("newer");
    let url = pg.create_db("warroom");
    let mut s = postgres(url.clone())();
    s.record_priority(0, &decision("t1", Priority::P0, "ana", "kept"), "")
        .unwrap();
    drop(s);
    pg.psql(
        "warroom",
        "UPDATE warroom_meta SET value = '7' WHERE key = 'schema_version';
         CREATE TABLE shiny_new_feature (x int)",
    );
    let before = dump(&pg, "warroom");
    let e = warroom::store::open_at(&Location::Postgres(url.clone()))
        .err()
        .expect("a newer schema refused")
        .to_string();
    eprintln!("newer: {e}");
    assert!(
        e.contains("database \"warroom\": schema 7, this build reads schema 3"),
        "{e}"
    );
    assert!(e.contains("refusing to start"), "{e}");
    assert!(!e.contains(PASSWORD), "password shown: {e}");
    assert_eq!(dump(&pg, "warroom"), before, "the database changed");
    assert_eq!(pg.psql("warroom", "SELECT reason FROM priorities"), "kept");
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[test]
fn postgres_a_database_of_someone_else_or_damaged_is_refused_and_left_as_it_was() {
    let pg = PgCluster::start("foreign");
    // Another application's database.
    let url = pg.create_db("billing");
    pg.psql(
        "billing",
        "CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1)",
    );
    let e = warroom::store::open_at(&Location::Postgres(url))
        .err()
        .expect("foreign database refused")
        .to_string();
    assert!(
        e.contains("not a warroom database") && e.contains("invoices"),
        "{e}"
    );
    assert!(e.contains("refusing to start"), "{e}");
    assert_eq!(
        pg.psql(
            "billing",
            "SELECT string_agg(table_name, ',') FROM information_schema.tables WHERE table_schema = 'public'"
        ),
        "invoices",
        "warroom made tables in it"
    );
    // Ours, with a table added beside it.
    let url = pg.create_db("shared");
    drop(postgres(url.clone())());
    pg.psql("shared", "CREATE TABLE invoices (id int)");
    let e = warroom::store::open_at(&Location::Postgres(url))
        .err()
        .expect("a foreign table refused")
        .to_string();
    assert!(
        e.contains("holds tables warroom did not make: invoices"),
        "{e}"
    );
    // Ours, missing a table or a column.
    for (db, sql, want) in [
        ("noaudit", "DROP TABLE audit", "the table audit"),
        (
            "nocolumn",
            "ALTER TABLE deliveries DROP COLUMN maybe_applied",
            "the column deliveries.maybe_applied",
        ),
    ] {
        let url = pg.create_db(db);
        drop(postgres(url.clone())());
        pg.psql(db, sql);
        let before = dump(&pg, db);
        let e = warroom::store::open_at(&Location::Postgres(url))
            .err()
            .unwrap_or_else(|| panic!("{db}: accepted"))
            .to_string();
        assert!(
            e.contains("the database is damaged") && e.contains(want),
            "{db}: {e}"
        );
        assert_eq!(dump(&pg, db), before, "{db}: changed");
    }
}

/// The server stops under a running store: each call says so, naming the
/// server and not the password; the server comes back: the same store
/// works again, no restart needed. A wrong port is the same clear error.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[test]
fn postgres_stopped_gives_a_clear_error_and_restarted_works_again() {
    let pg = PgCluster::start("stop");
    let url = pg.create_db("warroom");
    let mut s = postgres(url)();
    s.record_priority(0, &decision("t1", Priority::P0, "ana", "before"), "")
        .unwrap();
    pg.stop();
    let server = format!("PostgreSQL at 127.0.0.1:{} unreachable", pg.port);
    for _ in 0..2 {
        let e = s
            .priorities()
            .expect_err("no server, no answer")
            .to_string();
        eprintln!("stopped: {e}");
        assert!(e.contains(&server), "{e}");
        assert!(!e.contains(PASSWORD), "password shown: {e}");
    }
    let e = s
        .record_priority(1, &decision("t1", Priority::P1, "bo", "during"), "")
        .expect_err("no write without the server");
    assert!(matches!(e, StoreError::Io(_)), "{e:?}");
    pg.start_again();
    let (d, _) = s
        .record_priority(1, &decision("t1", Priority::P1, "bo", "after"), "")
        .unwrap();
    assert_eq!(d.version, 2);
    assert_eq!(s.priorities().unwrap()[0].reason, "after");

    let nowhere = format!(
        "postgres://postgres:{PASSWORD}@127.0.0.1:{}/warroom",
        common::tmux::free_port()
    );
    let e = warroom::store::open_at(&Location::Postgres(nowhere))
        .err()
        .expect("nothing listens there")
        .to_string();
    eprintln!("nowhere: {e}");
    assert!(e.contains("unreachable"), "{e}");
    assert!(!e.contains(PASSWORD), "password shown: {e}");
}

/// A peer that accepts the connection and never answers (a hung server, a
/// wrong service behind the port): the store gives up with a clear error
/// instead of holding the gateway forever. No PostgreSQL needed.
#[test]
fn a_server_that_accepts_and_never_answers_is_reported_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        conn
    });
    let url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:{port}/warroom?connect_timeout=1");
    let e = warroom::store::open_at(&Location::Postgres(url))
        .err()
        .expect("no answer, no store")
        .to_string();
    assert!(
        e.contains(&format!(
            "PostgreSQL at 127.0.0.1:{port} unreachable: no answer in 1 s"
        )),
        "{e}"
    );
    assert!(!e.contains(PASSWORD), "password shown: {e}");
    drop(held.join().unwrap());
}

/// `warroom gateway --store postgres://…`, stopped and started again, serves
/// the decisions made before; what it prints names the database without
/// its password.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_restarted_gateway_binary_keeps_its_decisions() {
    use warroom::api::pb;
    let pg = PgCluster::start("gateway");
    let url = pg.create_db("warroom");
    let dir = std::env::temp_dir().join(format!("wr-pg-gw-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("warroom")).unwrap();
    const TOKEN: &str = "operator-ana-0123456789abcdef";
    std::fs::write(
        dir.join("warroom/config.toml"),
        format!(
            "[server]\n[[server.tokens]]\nname = \"ana\"\nrole = \"operator\"\ntoken = \"{TOKEN}\"\n"
        ),
    )
    .unwrap();
    let port = common::tmux::free_port();
    let page = common::tmux::free_port().to_string();
    let start = || {
        let gw = common::tmux::spawn_gateway(
            port,
            &dir,
            &[
                "--store",
                &url,
                "--page-listen",
                &format!("127.0.0.1:{page}"),
            ],
            &[],
        );
        common::tmux::wait_listening(port);
        gw
    };
    let gw_url = format!("http://127.0.0.1:{port}");
    let client = |token| {
        warroom::client::GatewayClient::with_token(&gw_url, token)
            .unwrap()
            .raw()
    };
    let mut gw = start();
    client(Some(TOKEN))
        .set_tenant_priority(pb::SetTenantPriorityRequest {
            tenant_id: "t00005".into(),
            priority: pb::Priority::P0 as i32,
            rank: 0,
            reason: "hospital".into(),
            expected_version: 0,
        })
        .await
        .unwrap();
    gw.kill().unwrap();
    gw.wait().unwrap();
    let mut gw = start();
    let mut c = client(None);
    let row = c
        .lookup(pb::LookupRequest {
            query: "t00005".into(),
            limit: 1,
        })
        .await
        .unwrap()
        .into_inner()
        .matches
        .into_iter()
        .find_map(|m| m.tenant.filter(|t| t.id == "t00005"))
        .unwrap();
    assert_eq!(row.priority, pb::Priority::P0 as i32);
    let set = row.priority_set.unwrap();
    assert_eq!((set.set_by.as_str(), set.version), ("ana", 1));
    let audit = common::audit(&mut c).await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].reason, "hospital");
    gw.kill().unwrap();
    let _ = gw.wait();
    let _ = std::fs::remove_dir_all(&dir);
    drop(pg);
}
