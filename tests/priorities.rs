//! Tenant priorities over real gRPC: who may set them, what bad input gets,
//! optimistic concurrency under load, persistence across a gateway restart,
//! and the effect on the simulated reindex.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::postgres::PgCluster;
use tonic::Code;
use warroom::api::{self, pb};
use warroom::client::Client;
use warroom::domain::priority::Role;
use warroom::gateway::{Access, Gateway, Hub};
use warroom::sources::simulator::{SimConfig, Simulator};
use warroom::store::Location;

const ANA: &str = "operator-ana-0123456789abcdef";
const BO: &str = "operator-bo-0123456789abcdef";
const VIC: &str = "viewer-vic-0123456789abcdef";
const CY: &str = "comms-cy-0123456789abcdef";

fn access() -> Access {
    Access::new(
        vec![
            (ANA.into(), "ana".into(), Role::Operator),
            (BO.into(), "bo".into(), Role::Operator),
            (VIC.into(), "vic".into(), Role::Viewer),
            (CY.into(), "cy".into(), Role::Comms),
        ],
        true,
    )
    .unwrap()
}

/// A gateway on loopback whose decisions persist in `state` (or in memory).
async fn gateway(cfg: SimConfig, state: Option<&Path>) -> Gateway {
    common::serve(common::hub_with_state(cfg, state), access()).await
}

fn req(tenant: &str, p: pb::Priority, reason: &str, expected: u64) -> pb::SetTenantPriorityRequest {
    pb::SetTenantPriorityRequest {
        tenant_id: tenant.into(),
        priority: p as i32,
        rank: 0,
        reason: reason.into(),
        expected_version: expected,
    }
}

async fn tenant(c: &mut Client, id: &str) -> pb::TenantSummary {
    c.lookup(pb::LookupRequest {
        query: id.into(),
        limit: 1,
    })
    .await
    .unwrap()
    .into_inner()
    .matches
    .into_iter()
    .find_map(|m| m.tenant.filter(|t| t.id == id))
    .unwrap_or_else(|| panic!("tenant {id} found"))
}

#[tokio::test]
async fn no_token_is_unauthenticated_and_a_viewer_is_denied() {
    let gw = gateway(common::small(), None).await;
    let r = req("t00001", pb::Priority::P0, "title company", 0);
    let e = common::client_with(&gw, None)
        .set_tenant_priority(r.clone())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = common::client_with(&gw, Some(VIC))
        .set_tenant_priority(r.clone())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("vic is a viewer"), "{}", e.message());
    let e = common::client_with(&gw, Some("not-a-token-anyone-has-0000"))
        .set_tenant_priority(r.clone())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(!e.message().contains("not-a-token"), "no secret echoed");
    // Anonymous reads still work (the switch is on), and identify as such.
    let me = common::client_with(&gw, None)
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((me.name.as_str(), me.authenticated), ("anonymous", false));
    let me = common::client_with(&gw, Some(ANA))
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (me.name.as_str(), me.role, me.authenticated),
        ("ana", pb::Role::Operator as i32, true)
    );
    // Nothing refused reached the record.
    assert!(
        common::audit(&mut common::client_with(&gw, None))
            .await
            .is_empty()
    );
    // The operator may.
    common::client_with(&gw, Some(ANA))
        .set_tenant_priority(r)
        .await
        .unwrap();
}

#[tokio::test]
async fn anonymous_reads_can_be_switched_off() {
    let sim = Simulator::new(common::small()).unwrap();
    let hub = Hub::new(Box::new(sim), common::STEP_SECONDS, 60.0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = Access::new(vec![(VIC.into(), "vic".into(), Role::Viewer)], false).unwrap();
    let gw = Gateway::serve_with(listener, hub, None, closed)
        .await
        .unwrap();
    let e = common::client_with(&gw, None)
        .list_tenants(pb::ListTenantsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(
        common::client_with(&gw, Some(VIC))
            .list_tenants(pb::ListTenantsRequest::default())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn bad_input_is_invalid_argument_naming_what_is_wrong() {
    let gw = gateway(common::small(), None).await;
    let mut c = common::client_with(&gw, Some(ANA));
    let cases = [
        (
            req("t99999", pb::Priority::P0, "x", 0),
            "unknown tenant \"t99999\"",
        ),
        (
            req("t00001", pb::Priority::P0, &"r".repeat(501), 0),
            "reason is 501 characters; the limit is 500",
        ),
        (
            req("t00001", pb::Priority::P0, "  ", 0),
            "reason is required",
        ),
        (
            pb::SetTenantPriorityRequest {
                priority: 9,
                ..req("t00001", pb::Priority::P0, "x", 0)
            },
            "priority 9 is out of range",
        ),
        (
            pb::SetTenantPriorityRequest {
                priority: 0,
                ..req("t00001", pb::Priority::P0, "x", 0)
            },
            "priority 0 is out of range",
        ),
    ];
    for (r, want) in cases {
        let e = c.set_tenant_priority(r).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(
            e.message().contains(want),
            "{:?} lacks {want:?}",
            e.message()
        );
    }
    assert!(common::audit(&mut c).await.is_empty());
}

#[tokio::test]
async fn a_stale_version_fails_and_says_what_the_priority_is_now() {
    let gw = gateway(common::small(), None).await;
    let ok = common::client_with(&gw, Some(ANA))
        .set_tenant_priority(req("t00001", pb::Priority::P0, "title company", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.priority.as_ref().unwrap().version, 1);
    let e = common::client_with(&gw, Some(BO))
        .set_tenant_priority(req("t00001", pb::Priority::P3, "not urgent", 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("P0 (version 1), set by ana") && e.message().contains("title company"),
        "{}",
        e.message()
    );
    let current: pb::TenantPriority = prost::Message::decode(e.details()).unwrap();
    assert_eq!((current.version, current.set_by.as_str()), (1, "ana"));
    // The row everyone watches carries who set it.
    let row = tenant(&mut common::client_with(&gw, None), "t00001").await;
    assert_eq!(row.priority, pb::Priority::P0 as i32);
    assert_eq!(row.priority_set.unwrap().set_by, "ana");
}

/// A gateway on loopback whose decisions persist in the store at `at`.
async fn gateway_on(cfg: SimConfig, at: &Location) -> Gateway {
    common::serve(common::hub_with_store(cfg, at), access()).await
}

/// Two clients, 500 edits each, eight in flight per client, each sent with
/// the newest version that client has seen: no accepted edit is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_making_500_concurrent_edits_each_lose_no_update() {
    let state = common::state_file("concurrent");
    let gw = gateway_on(common::small(), &Location::File(state)).await;
    two_clients_making_500_edits_each([&gw, &gw]).await;
}

/// The same, on a PostgreSQL store.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_making_500_concurrent_edits_each_lose_no_update_on_postgresql() {
    let pg = PgCluster::start("prio-concurrent");
    let url = pg.create_db("warroom");
    let gw = gateway_on(common::small(), &Location::Postgres(url)).await;
    two_clients_making_500_edits_each([&gw, &gw]).await;
}

/// The same, each operator on another replica of one PostgreSQL
/// database: the follower forwards its operator's edits to the leader.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_operators_making_500_concurrent_edits_each_on_two_replicas_lose_no_update() {
    let pg = PgCluster::start("prio-replicas");
    let url = pg.create_db("warroom");
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let hub = common::hub_with_store(common::small(), &Location::Postgres(url.clone()));
        hub.set_leadership(warroom::store::Leadership::campaign(&url).unwrap());
        replicas.push(common::serve(hub, access()).await);
    }
    // One leads; the other relays it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let leading: Vec<bool> = replicas
            .iter()
            .map(|g| g.hub.leadership().is_leading())
            .collect();
        let relaying = replicas.iter().any(|g| {
            g.hub
                .snapshot()
                .sources
                .iter()
                .any(|s| s.name == "store" && s.message.contains("follower of the leader"))
        });
        if leading.iter().filter(|l| **l).count() == 1 && relaying {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no leader relayed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    two_clients_making_500_edits_each([&replicas[0], &replicas[1]]).await;
}

/// Ana's edits through the first gateway, Bo's through the second.
async fn two_clients_making_500_edits_each(gws: [&Gateway; 2]) {
    let tenant_id = "t00003";
    let mut handles = Vec::new();
    for ((who, token), gw) in [("ana", ANA), ("bo", BO)].into_iter().zip(gws) {
        let c = common::client_with(gw, Some(token));
        let seen = Arc::new(AtomicU64::new(0));
        let sem = Arc::new(tokio::sync::Semaphore::new(8));
        let mut edits = Vec::new();
        for i in 0..500 {
            let (mut c, seen, sem) = (c.clone(), seen.clone(), sem.clone());
            edits.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await.unwrap();
                let p = [pb::Priority::P0, pb::Priority::P1, pb::Priority::P3][i % 3];
                let reason = format!("{who}-{i}");
                let r = req(tenant_id, p, &reason, seen.load(Ordering::SeqCst));
                match c.set_tenant_priority(r).await {
                    Ok(ok) => {
                        let d = ok.into_inner().priority.unwrap();
                        seen.fetch_max(d.version, Ordering::SeqCst);
                        Some((d.version, reason, d.priority))
                    }
                    Err(e) => {
                        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
                        let cur: pb::TenantPriority = prost::Message::decode(e.details()).unwrap();
                        seen.fetch_max(cur.version, Ordering::SeqCst);
                        None
                    }
                }
            }));
        }
        handles.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for e in edits {
                accepted.extend(e.await.unwrap());
            }
            accepted
        }));
    }
    let mut accepted: Vec<(u64, String, i32)> = Vec::new();
    for h in handles {
        accepted.extend(h.await.unwrap());
    }
    accepted.sort();
    assert!(
        accepted.len() >= 2,
        "some edits got through: {}",
        accepted.len()
    );
    // Versions 1..=n, each granted exactly once.
    let versions: Vec<u64> = accepted.iter().map(|a| a.0).collect();
    assert_eq!(versions, (1..=accepted.len() as u64).collect::<Vec<_>>());
    // Every accepted edit is on record, and nothing else is.
    let mut c = common::client_with(gws[1], None);
    let on_record: BTreeMap<String, String> = common::audit(&mut c)
        .await
        .into_iter()
        .filter(|e| e.action == "set_priority" && e.target == tenant_id)
        .map(|e| (e.reason, e.actor))
        .collect();
    let accepted_reasons: BTreeMap<String, String> = accepted
        .iter()
        .map(|a| (a.1.clone(), a.1.split('-').next().unwrap().to_string()))
        .collect();
    assert_eq!(on_record, accepted_reasons);
    // The final state is the last accepted edit.
    let last = accepted.last().unwrap();
    let row = tenant(&mut c, tenant_id).await;
    let set = row.priority_set.unwrap();
    assert_eq!(
        (set.version, &set.reason, set.priority),
        (last.0, &last.1, last.2)
    );
    assert_eq!(row.priority, last.2);
    eprintln!(
        "{} of 1000 edits accepted, {} refused as stale",
        accepted.len(),
        1000 - accepted.len()
    );
}

#[tokio::test]
async fn a_restarted_gateway_keeps_priorities_and_the_audit() {
    let state = common::state_file("restart");
    a_restarted_gateway_keeps(&Location::File(state)).await;
}

/// The same, on a PostgreSQL store.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[tokio::test]
async fn a_restarted_gateway_keeps_priorities_and_the_audit_on_postgresql() {
    let pg = PgCluster::start("prio-restart");
    let url = pg.create_db("warroom");
    a_restarted_gateway_keeps(&Location::Postgres(url)).await;
}

async fn a_restarted_gateway_keeps(at: &Location) {
    let gw = gateway_on(common::small(), at).await;
    common::client_with(&gw, Some(ANA))
        .set_tenant_priority(req("t00005", pb::Priority::P0, "hospital", 0))
        .await
        .unwrap();
    common::client_with(&gw, Some(BO))
        .set_tenant_priority(req("t00007", pb::Priority::P3, "test tenant", 0))
        .await
        .unwrap();
    gw.stop().await;

    let gw = gateway_on(common::small(), at).await;
    let mut c = common::client_with(&gw, None);
    let row = tenant(&mut c, "t00005").await;
    assert_eq!(row.priority, pb::Priority::P0 as i32);
    let set = row.priority_set.unwrap();
    assert_eq!(
        (set.set_by.as_str(), set.version, set.reason.as_str()),
        ("ana", 1, "hospital")
    );
    assert_eq!(
        tenant(&mut c, "t00007").await.priority,
        pb::Priority::P3 as i32
    );
    let events = common::audit(&mut c).await;
    let summary: Vec<(String, String, String)> = events
        .iter()
        .map(|e| (e.actor.clone(), e.target.clone(), e.detail.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("ana".into(), "t00005".into(), "P2 → P0".into()),
            ("bo".into(), "t00007".into(), "P2 → P3".into())
        ]
    );
    // A reader that holds the first event asks only for what is newer.
    let newer = c
        .list_audit_events(pb::ListAuditEventsRequest {
            after_id: events[0].id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(newer, events[1..]);
    // Versions continue from where they were.
    let next = common::client_with(&gw, Some(BO))
        .set_tenant_priority(req("t00005", pb::Priority::P1, "hospital back", 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.priority.unwrap().version, 2);
}

#[tokio::test]
async fn a_corrupt_state_file_stops_the_gateway_from_starting() {
    let state = common::state_file("corrupt");
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    std::fs::write(&state, vec![0xA5u8; 8192]).unwrap();
    let e = warroom::store::open(&state).err().expect("refused");
    assert!(e.to_string().contains("refusing to start"), "{e}");
}

/// In the simulated incident, a tenant moved to P0 gets an earlier ETA at
/// once (without waiting for a tick) and is restored ahead of the tenants
/// that were ahead of it.
#[tokio::test]
async fn p0_moves_a_tenant_ahead_in_the_reindex_and_every_watcher_sees_it_at_once() {
    let gw = gateway(common::small(), None).await;
    let hub = gw.hub.clone();
    // Past identification and the scan: everything found is queued.
    for _ in 0..(7 * 60) {
        hub.tick();
    }
    let mut c = common::client_with(&gw, None);
    let rows = affected_tenants(&mut c).await;
    let queued: Vec<&pb::TenantSummary> = rows.iter().filter(|t| t.reindex_rank > 0).collect();
    assert!(
        queued.len() >= 10,
        "enough tenants waiting: {}",
        queued.len()
    );
    // The tenant whose last mailbox comes last.
    let last = queued.iter().max_by_key(|t| t.reindex_rank).unwrap();
    let before_eta = api::from_ts(last.eta.as_ref().unwrap().p50.as_ref()).unwrap();
    let peers_ahead: Vec<String> = queued
        .iter()
        .filter(|t| t.reindex_rank < last.reindex_rank && t.id != last.id)
        .map(|t| t.id.clone())
        .collect();

    let mut watch = common::client_with(&gw, None)
        .watch(pb::WatchRequest {})
        .await
        .unwrap()
        .into_inner();
    let snap = watch.message().await.unwrap().unwrap();
    let ok = common::client_with(&gw, Some(ANA))
        .set_tenant_priority(req(&last.id, pb::Priority::P0, "closing sales", 0))
        .await
        .unwrap()
        .into_inner();
    let after_eta = api::from_ts(ok.eta.as_ref().unwrap().p50.as_ref()).unwrap();
    assert!(
        after_eta < before_eta,
        "ETA {after_eta} not before {before_eta}"
    );

    // The change reaches a watcher as the next version, no tick needed.
    let next = tokio::time::timeout(std::time::Duration::from_secs(1), watch.message())
        .await
        .expect("update within 1 s")
        .unwrap()
        .unwrap();
    assert_eq!(next.version, snap.version + 1);
    let row = next
        .tenants
        .iter()
        .find(|t| t.id == last.id)
        .expect("row sent");
    assert_eq!(row.priority, pb::Priority::P0 as i32);
    assert!(row.reindex_rank < last.reindex_rank);

    // Tick until it has nothing left waiting; its former peers still do.
    let mut restored_first = false;
    for _ in 0..600 {
        hub.tick();
        let t = tenant(&mut c, &last.id).await;
        if t.reindex_rank == 0 {
            let mut still_waiting = 0;
            for id in &peers_ahead {
                if tenant(&mut c, id).await.reindex_rank > 0 {
                    still_waiting += 1;
                }
            }
            assert!(still_waiting > 0, "every peer was done before it");
            restored_first = true;
            break;
        }
    }
    assert!(restored_first, "the P0 tenant was never fully reindexed");
}

/// Publishes a status update as cy (comms); the next update in 90 minutes.
async fn publish_update(gw: &Gateway, op: &str) {
    common::client_with(gw, Some(CY))
        .publish_status_update(pb::PublishStatusUpdateRequest {
            draft: Some(pb::StatusUpdateDraft {
                state: pb::IncidentState::Identified as i32,
                title: "Mailbox access failing on Cluster A".into(),
                body: "{affected_mailboxes} mailboxes cannot be opened.".into(),
                next_update_at: Some(api::ts(gw.hub.now() + chrono::Duration::minutes(90))),
                ..Default::default()
            }),
            operation_id: op.into(),
            confirm_warnings: false,
        })
        .await
        .unwrap();
}

fn p90(t: &pb::TenantSummary) -> Option<chrono::DateTime<chrono::Utc>> {
    api::from_ts(t.eta.as_ref()?.p90.as_ref())
}

/// Issue #13 item 4, "slips are shown, not hidden": a tenant moved to P0
/// pushes the tenants it passes back. Every one whose p90 is now 15 minutes
/// or more later than when the last status update went out carries the
/// slip, measured from that update, on every read (the decision's Watch
/// delta, ListTenants, Lookup); the next update clears it and the next tick
/// sends those rows again.
#[tokio::test]
async fn a_p0_that_pushes_others_back_marks_their_eta_slips_since_the_last_update() {
    let gw = gateway(common::small(), None).await;
    let hub = gw.hub.clone();
    for _ in 0..(7 * 60) {
        hub.tick();
    }
    publish_update(&gw, "op-before-p0").await;
    let mut watch = common::client_with(&gw, None)
        .watch(pb::WatchRequest {})
        .await
        .unwrap()
        .into_inner();
    let snap = watch.message().await.unwrap().unwrap();
    let published_at = snap.incident.as_ref().unwrap().now.unwrap();
    // Just published: nothing is later than the update said.
    assert!(
        snap.tenants
            .iter()
            .all(|t| t.eta_slip.as_ref().is_none_or(|s| s.withdrawn)),
        "a slip right after the update"
    );
    let before: BTreeMap<String, chrono::DateTime<chrono::Utc>> = snap
        .tenants
        .iter()
        .filter_map(|t| Some((t.id.clone(), p90(t)?)))
        .collect();
    // The tenant whose last mailbox comes last: P0 puts its whole queue
    // ahead of everyone else's.
    let last = snap
        .tenants
        .iter()
        .filter(|t| t.reindex_rank > 0)
        .max_by_key(|t| t.reindex_rank)
        .unwrap()
        .clone();
    common::client_with(&gw, Some(ANA))
        .set_tenant_priority(req(&last.id, pb::Priority::P0, "closing sales", 0))
        .await
        .unwrap();
    let next = tokio::time::timeout(std::time::Duration::from_secs(5), watch.message())
        .await
        .expect("the decision within 5 s")
        .unwrap()
        .unwrap();
    assert_eq!(next.version, snap.version + 1);
    let mut slipped = Vec::new();
    for t in &next.tenants {
        let (Some(was), Some(now)) = (before.get(&t.id), p90(t)) else {
            continue;
        };
        let later = (now - *was).num_seconds();
        match &t.eta_slip {
            Some(s) if later >= 15 * 60 => {
                assert_eq!(s.basis, pb::SlipBasis::Published as i32, "{}", t.id);
                assert_eq!(s.since, Some(published_at), "{}", t.id);
                assert_eq!(api::from_ts(s.baseline_p90.as_ref()), Some(*was));
                assert_eq!((s.later_by_seconds, s.withdrawn), (later, false));
                slipped.push(t.clone());
            }
            None if later < 15 * 60 => {}
            other => panic!("{}: p90 {later} s later, slip {other:?}", t.id),
        }
    }
    assert!(
        slipped.len() >= 3,
        "the P0 pushed at least 3 tenants back by 15 minutes: {}",
        slipped.len()
    );
    let p0 = next.tenants.iter().find(|t| t.id == last.id).unwrap();
    assert!(p0.eta_slip.is_none(), "the P0 tenant's ETA moved earlier");

    // Every read says the same.
    let mut c = common::client_with(&gw, None);
    let listed = affected_tenants(&mut c).await;
    for t in &slipped {
        let l = listed.iter().find(|l| l.id == t.id).unwrap();
        assert_eq!(l.eta_slip, t.eta_slip, "ListTenants {}", t.id);
        assert_eq!(
            tenant(&mut c, &t.id).await.eta_slip,
            t.eta_slip,
            "Lookup {}",
            t.id
        );
    }

    // The next update says the new ETAs: the slips end, and the next tick
    // sends those rows again without them.
    publish_update(&gw, "op-after-p0").await;
    hub.tick();
    let tick = tokio::time::timeout(std::time::Duration::from_secs(5), watch.message())
        .await
        .expect("the tick within 5 s")
        .unwrap()
        .unwrap();
    for t in &slipped {
        let row = tick
            .tenants
            .iter()
            .find(|r| r.id == t.id)
            .unwrap_or_else(|| panic!("{} sent again after the update", t.id));
        assert_eq!(row.eta_slip, None, "{}", t.id);
    }
}

/// Every affected tenant, as `ListTenants` answers.
async fn affected_tenants(c: &mut warroom::client::Client) -> Vec<pb::TenantSummary> {
    c.list_tenants(pb::ListTenantsRequest {
        affected_only: true,
        page_size: 1000,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .tenants
}

/// PostgreSQL stopped under a running gateway: a decision is refused as
/// unavailable, naming the database server (not its password), and nothing
/// is applied; the server back, the same gateway takes decisions again.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_postgresql_refuses_decisions_while_it_is_down_and_takes_them_when_back() {
    let pg = PgCluster::start("prio-down");
    let url = pg.create_db("warroom");
    let gw = gateway_on(common::small(), &Location::Postgres(url)).await;
    let mut ana = common::client_with(&gw, Some(ANA));
    ana.set_tenant_priority(req("t00009", pb::Priority::P0, "before", 0))
        .await
        .unwrap();
    pg.stop();
    let e = ana
        .set_tenant_priority(req("t00009", pb::Priority::P3, "during", 1))
        .await
        .expect_err("no database, no decision");
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    let server = format!("PostgreSQL at 127.0.0.1:{} unreachable", pg.port);
    assert!(e.message().contains(&server), "{}", e.message());
    assert!(
        !e.message().contains(common::postgres::PASSWORD),
        "{}",
        e.message()
    );
    let mut c = common::client_with(&gw, None);
    assert_eq!(
        tenant(&mut c, "t00009").await.priority,
        pb::Priority::P0 as i32,
        "the refused decision was applied"
    );
    pg.start_again();
    let ok = ana
        .set_tenant_priority(req("t00009", pb::Priority::P3, "after", 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.priority.unwrap().version, 2);
    assert_eq!(
        tenant(&mut c, "t00009").await.priority,
        pb::Priority::P3 as i32
    );
}
