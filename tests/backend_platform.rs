//! The platform source end to end: real backends on 127.0.0.1, the gateway
//! (hub + gRPC) on top, and what a console would be told. Needs root.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

#[path = "fixtures/backends/daemons.rs"]
mod daemons;
#[path = "fixtures/ports.rs"]
mod ports;

use std::time::{Duration, Instant};

use warroom::api::pb;
use warroom::gateway::{Gateway, Hub};
use warroom::sources::platform::{PlatformConfig, PlatformSource, TenantSpec};
use warroom::sources::postfix::{PostfixStatus, Postqueue};
use warroom::sources::prometheus::Prometheus;

fn tenant(id: &str, name: &str, domains: &[&str]) -> TenantSpec {
    TenantSpec {
        id: id.into(),
        name: name.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        contacts: vec![format!("noc@{}", domains[0])],
    }
}

/// A platform called "Test platform" with no backend, polled every 200
/// ms, its journal in memory; each test sets what it uses.
fn base() -> PlatformConfig {
    PlatformConfig {
        name: "Test platform".into(),
        tenants: Vec::new(),
        dovecot: None,
        postqueue: None,
        postfix_status: None,
        prometheus: None,
        load_query: None,
        poll: Duration::from_millis(200),
        store: None,
    }
}

/// Acme and Globex on `dc`, probed 100 per poll, repaired one at a time,
/// the incident's journal in the state file `state`.
fn repairing(dc: &dovecot_fixture::Dovecot, state: &std::path::Path) -> PlatformConfig {
    PlatformConfig {
        tenants: vec![
            tenant("acme", "Acme Title", &["acme.test"]),
            tenant("globex", "Globex", &["globex.test"]),
        ],
        dovecot: Some(warroom::sources::platform::DovecotSpec {
            client: dc.client(),
            probes_per_poll: 100,
            limits: warroom::sources::reindex::Limits {
                max_concurrency: 1,
                ..Default::default()
            },
        }),
        store: Some(warroom::store::open(state).unwrap()),
        ..base()
    }
}

/// Ticks the hub until `done` holds for a fresh snapshot (the poller runs
/// on its own; a tick only reads what it saw), or fails after 30 s.
async fn until(hub: &Hub, what: &str, done: impl Fn(&pb::WatchUpdate) -> bool) -> pb::WatchUpdate {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        hub.tick();
        let snap = hub.snapshot();
        if done(&snap) {
            return snap;
        }
        assert!(Instant::now() < deadline, "never {what}: {snap:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Dovecot, Postfix, Prometheus and root: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_mail_per_tenant_and_a_dead_backend_reach_the_console() {
    let mut pf = daemons::Postfix::start();
    for (to, n) in [
        ("a@acme.test", 4),
        ("b@globex.test", 2),
        ("c@nobody.test", 1),
    ] {
        for i in 0..n {
            pf.sendmail("sender@example.test", &[to], &format!("m{i}"));
        }
    }
    let dead = daemons::free_port();
    let pq = Postqueue::new(pf.postqueue_command(), Duration::from_secs(10)).unwrap();
    let source = PlatformSource::start(
        PlatformConfig {
            tenants: vec![
                tenant("acme", "Acme Title", &["acme.test"]),
                tenant("globex", "Globex", &["globex.test"]),
            ],
            postfix_status: Some(
                PostfixStatus::for_postqueue(&pq, Duration::from_secs(10)).unwrap(),
            ),
            postqueue: Some(pq),
            prometheus: Some(
                Prometheus::new(&format!("http://127.0.0.1:{dead}"), Duration::from_secs(2))
                    .unwrap(),
            ),
            ..base()
        },
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    let hub = Hub::new(Box::new(source), 1.0, 1.0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = Gateway::serve(listener, hub.clone(), None).await.unwrap();

    // The poller asks Postfix, then Prometheus: wait for both answers.
    let snap = until(
        &hub,
        "saw the 7 queued messages and Prometheus' state",
        |u| {
            u.totals
                .as_ref()
                .is_some_and(|t| t.queued_messages == Some(6))
                && u.clusters
                    .first()
                    .and_then(|c| c.queue.as_ref())
                    .is_some_and(|q| {
                        q.active
                            .zip(q.deferred)
                            .zip(q.hold)
                            .map(|((a, d), h)| a + d + h)
                            == Some(7)
                    })
                && u.sources
                    .iter()
                    .any(|s| s.name == "prometheus" && !s.message.is_empty())
        },
    )
    .await;
    // Per tenant, by recipient domain; mail for no tenant counts in the
    // queue but in no tenant's row.
    let queued = |id: &str| {
        snap.tenants
            .iter()
            .find(|t| t.id == id)
            .and_then(|t| t.queued_messages)
    };
    assert_eq!((queued("acme"), queued("globex")), (Some(4), Some(2)));
    let sources: Vec<(String, i32, String)> = snap
        .sources
        .iter()
        .map(|s| (s.name.clone(), s.health, s.message.clone()))
        .collect();
    let postfix = sources
        .iter()
        .find(|s| s.0 == "postfix")
        .expect("postfix listed");
    assert_eq!(postfix.1, pb::HealthStatus::Ok as i32, "{sources:?}");
    assert!(postfix.2.contains("running"), "{sources:?}");
    // Prometheus on a closed port: a visible source state, not a crash.
    let prom = sources
        .iter()
        .find(|s| s.0 == "prometheus")
        .expect("prometheus listed");
    assert_eq!(prom.1, pb::HealthStatus::Down as i32, "{sources:?}");
    assert!(prom.2.contains("unreachable"), "{sources:?}");
    assert!(
        !sources.iter().any(|s| s.0 == "dovecot"),
        "not configured, not listed"
    );
    // Not simulated: the console shows no SIMULATED badge for this source.
    assert!(snap.sources.iter().all(|s| !s.simulated));

    // Over real gRPC, as a console sees it.
    let mut c = warroom::client::GatewayClient::new(&gw.url())
        .unwrap()
        .raw();
    let rows = c
        .list_tenants(pb::ListTenantsRequest {
            // Largest first: the natural order of a count.
            sort: pb::TenantSort::Queued as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let order: Vec<(String, Option<u64>)> = rows
        .tenants
        .iter()
        .map(|t| (t.id.clone(), t.queued_messages))
        .collect();
    assert_eq!(
        order,
        [
            ("acme".to_string(), Some(4)),
            ("globex".to_string(), Some(2))
        ]
    );
    // Mail for no tenant is counted in the queue and said to be so.
    let q = snap.clusters[0].queue.as_ref().unwrap();
    assert_eq!(q.unmapped, Some(1));
    // Nobody measured losses: the gateway does not claim "none lost".
    assert_eq!(q.lost, None);

    // Postfix stopped: `postqueue -j` still lists the queue (as root), but
    // smtp-in/out and the postfix source say it is down.
    pf.stop();
    let snap = until(&hub, "saw Postfix stopped", |u| {
        u.sources
            .iter()
            .any(|s| s.name == "postfix" && s.health == pb::HealthStatus::Down as i32)
    })
    .await;
    let services = &snap.clusters[0].services;
    for role in [pb::ServiceRole::SmtpIn, pb::ServiceRole::SmtpOut] {
        let s = services
            .iter()
            .find(|s| s.role == role as i32)
            .unwrap_or_else(|| panic!("{role:?} listed: {services:?}"));
        assert_eq!(s.status, pb::HealthStatus::Down as i32, "{s:?}");
        assert!(s.detail.contains("not running"), "{s:?}");
    }
    gw.stop().await;
}

/// A Dovecot that accepts and never answers (a hung or very slow one) does
/// not hold back the queue figures: each backend has its own poller.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Dovecot, Postfix, Prometheus and root: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_dovecot_does_not_delay_the_queue_figures() {
    let pf = daemons::Postfix::start();
    pf.sendmail("s@example.test", &["a@acme.test"], "m");
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = warroom::sources::dovecot::Doveadm::new(
        &format!("http://{}", hung.local_addr().unwrap()),
        "key",
        Duration::from_secs(300),
    )
    .unwrap();
    let source = PlatformSource::start(
        PlatformConfig {
            tenants: vec![tenant("acme", "Acme Title", &["acme.test"])],
            dovecot: Some(warroom::sources::platform::DovecotSpec {
                client,
                probes_per_poll: 10,
                limits: Default::default(),
            }),
            postqueue: Some(
                Postqueue::new(pf.postqueue_command(), Duration::from_secs(10)).unwrap(),
            ),
            ..base()
        },
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    let hub = Hub::new(Box::new(source), 1.0, 1.0);
    let snap = until(&hub, "read the queue", |u| {
        u.totals
            .as_ref()
            .is_some_and(|t| t.queued_messages == Some(1))
    })
    .await;
    let dovecot = snap.sources.iter().find(|s| s.name == "dovecot").unwrap();
    assert_eq!(
        dovecot.health,
        pb::HealthStatus::Unknown as i32,
        "Dovecot has not answered, and the queue did not wait for it: {dovecot:?}"
    );
    assert_eq!(dovecot.message, "waiting for the first poll");
}

/// Before any poll answered, nothing is shown as 0, ok or "none lost".
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Dovecot, Postfix, Prometheus and root: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_the_first_poll_every_figure_is_unknown() {
    let dead = daemons::free_port();
    let source = PlatformSource::start(
        PlatformConfig {
            tenants: vec![tenant("acme", "Acme Title", &["acme.test"])],
            postqueue: Some(Postqueue::new(vec!["false".into()], Duration::from_secs(2)).unwrap()),
            prometheus: Some(
                Prometheus::new(&format!("http://127.0.0.1:{dead}"), Duration::from_secs(2))
                    .unwrap(),
            ),
            poll: Duration::from_secs(3600),
            ..base()
        },
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    let hub = Hub::new(Box::new(source), 1.0, 1.0);
    hub.tick();
    let snap = hub.snapshot();
    let q = snap.clusters[0].queue.as_ref().unwrap();
    assert_eq!((q.active, q.deferred, q.hold), (None, None, None), "{q:?}");
    assert_eq!((q.arrival_per_min, q.delivery_per_min), (None, None));
    assert!(!q.unknown_reason.is_empty(), "says why: {q:?}");
    assert_eq!(snap.totals.as_ref().unwrap().queued_messages, None);
    assert_eq!(snap.tenants[0].queued_messages, None);
    for s in &snap.clusters[0].services {
        assert_ne!(s.status, pb::HealthStatus::Ok as i32, "{s:?}");
        assert_eq!(s.latency_ms, None, "{s:?}");
    }
}

#[path = "fixtures/backends/dovecot.rs"]
mod dovecot_fixture;

fn state_of(snap: &pb::WatchUpdate, tenant: &str) -> (u64, u64) {
    let t = snap
        .tenants
        .iter()
        .find(|t| t.id == tenant)
        .expect("tenant row");
    let restored = t.states.as_ref().map_or(0, |s| s.restored);
    (t.affected, restored)
}

/// Before the damage sweep has probed a tenant's mailboxes, nothing calls
/// them ok: its row counts only probed mailboxes (the rest are "not checked
/// yet"), a lookup of the tenant says so, and no state's list holds them.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Dovecot, Postfix, Prometheus and root: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailboxes_the_sweep_has_not_probed_are_not_counted_as_ok() {
    let dc = dovecot_fixture::Dovecot::new("unprobed");
    dc.start();
    dc.seed_all();
    // One probe per hour-long poll: the sweep probes one mailbox, then waits.
    let source = PlatformSource::start(
        PlatformConfig {
            tenants: vec![
                tenant("acme", "Acme Title", &["acme.test"]),
                tenant("globex", "Globex", &["globex.test"]),
            ],
            dovecot: Some(warroom::sources::platform::DovecotSpec {
                client: dc.client(),
                probes_per_poll: 1,
                limits: Default::default(),
            }),
            poll: Duration::from_secs(3600),
            ..base()
        },
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    let hub = Hub::new(Box::new(source), 1.0, 1.0);
    let snap = until(&hub, "every tenant's users listed", |u| {
        u.tenants.len() == 2 && u.tenants.iter().all(|t| t.mailboxes > 0)
    })
    .await;
    let mut unchecked = 0;
    for t in &snap.tenants {
        let row = warroom::api::tenant_from_pb(t);
        assert!(row.mailboxes >= 2, "{row:?}");
        assert!(
            row.unchecked() + 1 >= row.mailboxes,
            "at most one mailbox probed, the rest not counted: {row:?}"
        );
        assert_eq!(row.affected(), 0, "{row:?}");
        unchecked += row.unchecked();
    }
    let listed = dovecot_fixture::seeded().len() as u64;
    assert!(unchecked + 1 >= listed, "{unchecked} of {listed}");

    let hit = hub.view().source().lookup("acme.test", 1).hits();
    let Some(warroom::sources::LookupHit::Domain { tenant, .. }) = hit.first() else {
        panic!("acme.test: {hit:?}")
    };
    assert!(tenant.unchecked() > 0, "{tenant:?}");

    let ok_list = hub
        .view()
        .source()
        .mailboxes(&warroom::sources::MailboxQuery {
            tenant_id: "acme".into(),
            states: vec![warroom::domain::MailboxState::Ok],
            sort_by_eta: false,
            offset: 0,
            limit: 100,
        })
        .unwrap();
    assert!(
        ok_list.total <= 1,
        "only a probed mailbox is ok: {:?}",
        ok_list.rows
    );
}

/// Dovecot's users become the tenants' mailboxes; probes find damaged
/// mailboxes; the reindexer repairs them in the war room's priority order;
/// stopping Dovecot is a visible source state and the work resumes when it
/// is back.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Dovecot, Postfix, Prometheus and root: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_mailboxes_are_found_and_repaired_in_priority_order() {
    let dc = dovecot_fixture::Dovecot::new("platform");
    dc.start();
    dc.seed_all();
    // Mail that arrived long ago for the mailbox that will get a stale
    // index: Dovecot rescans a directory whose mtime is within a second of
    // its last sync anyway, so only behind an old mtime does a file added
    // behind its back stay unseen, as in a real stale index.
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for sub in ["new", "cur"] {
        dovecot_fixture::set_mtime(&dc.maildir("frank@globex.test").join(sub), an_hour_ago);
    }
    // Damage in both tenants before the gateway starts, and Dovecot down
    // until Globex is made P0: the sweep then meets Globex's mailboxes
    // first, so they are found, and repaired, first.
    for user in [
        "alice@acme.test",
        "bob@acme.test",
        "erin@globex.test",
        "grace@globex.test",
    ] {
        dc.corrupt_log(user);
    }
    dc.stop();
    let state = dc.dir.join("state.sqlite");
    let source =
        PlatformSource::start(repairing(&dc, &state), &tokio::runtime::Handle::current()).unwrap();
    let reindexer = source.reindexer().expect("a reindexer with Dovecot");
    let hub = Hub::new(Box::new(source), 1.0, 1.0);
    // Before the first answer, nothing is claimed.
    hub.tick();
    let title = hub.snapshot().incident.unwrap().title;
    assert!(!title.contains("no damaged mailbox found"), "{title}");
    hub.set_priority(
        warroom::gateway::hub::PriorityRequest {
            tenant_id: "globex".into(),
            priority: warroom::domain::Priority::P0,
            rank: 0,
            reason: "hospital".into(),
            expected_version: 0,
        },
        "ana",
    )
    .unwrap();
    dc.start();
    let snap = until(&hub, "repaired all four", |u| {
        u.totals
            .as_ref()
            .is_some_and(|t| t.restored_mailboxes == 4 && t.affected_mailboxes == 0)
    })
    .await;
    let sweep = snap.clusters[0]
        .sweep
        .clone()
        .expect("a sweep on a platform");
    assert_eq!(sweep.found, 4, "{sweep:?}");
    assert_eq!(state_of(&snap, "acme"), (0, 2));
    assert_eq!(state_of(&snap, "globex"), (0, 2));

    // One lookup engine: a platform answers exact, prefix and misspelled
    // queries as the demo does (the index follows the user list).
    let found = |q: &str| -> Vec<String> {
        hub.view()
            .source()
            .lookup(q, 5)
            .hits()
            .into_iter()
            .map(|h| match h {
                warroom::sources::LookupHit::Mailbox(m) => m.address,
                warroom::sources::LookupHit::Domain { domain, .. } => domain,
                warroom::sources::LookupHit::Tenant(t) => t.id.to_string(),
            })
            .collect()
    };
    assert_eq!(found("carol@acme.test"), ["carol@acme.test"], "exact");
    assert_eq!(found("CAROL@ACME.TEST"), ["carol@acme.test"], "any case");
    assert_eq!(found("fra")[0], "frank@globex.test", "prefix");
    assert_eq!(found("frnak@globex.test")[0], "frank@globex.test", "a swap");
    assert_eq!(found("globx.test")[0], "globex.test", "a misspelled domain");
    assert_eq!(found("title"), ["acme"], "a word of a tenant's name");
    let done = reindexer.progress().done;
    let tenants_in_order: Vec<&str> = done.iter().map(|u| u.split('@').nth(1).unwrap()).collect();
    assert_eq!(
        tenants_in_order,
        ["globex.test", "globex.test", "acme.test", "acme.test"],
        "P0 tenant repaired first: {done:?}"
    );

    // A whole pass done: every mailbox has a baseline (a uidlist lost
    // before a mailbox's first probe cannot be told from a new one).
    until(&hub, "completed a sweep pass", |u| {
        u.clusters[0].sweep.as_ref().is_some_and(|s| s.pass >= 2)
    })
    .await;

    // Dovecot stops: a visible source state, the gateway keeps answering.
    dc.stop();
    let snap = until(&hub, "saw Dovecot down", |u| {
        u.sources
            .iter()
            .any(|s| s.name == "dovecot" && s.health == pb::HealthStatus::Down as i32)
    })
    .await;
    let dovecot = snap.sources.iter().find(|s| s.name == "dovecot").unwrap();
    // "unreachable", or "closed the connection" when the stop caught a call.
    assert!(
        dovecot.message.contains("doveadm"),
        "says why: {}",
        dovecot.message
    );
    assert_eq!(snap.totals.as_ref().unwrap().mailboxes, 7, "last data kept");
    // Back: the source is healthy again.
    assert_eq!(
        snap.incident.as_ref().unwrap().state,
        pb::IncidentState::Investigating as i32,
        "an outage of Dovecot shows in the incident state"
    );
    assert!(
        snap.incident
            .as_ref()
            .unwrap()
            .title
            .contains("Dovecot unreachable"),
        "{:?}",
        snap.incident
    );
    // While Dovecot is down (the sweep paused, so no probe can race the
    // planting), the other two kinds: a lost uidlist (clients must resync)
    // and a stale index (messages on disk the index does not show).
    dc.lose_uidlist("carol@acme.test");
    dc.stale_index("frank@globex.test");
    dc.start();
    until(&hub, "saw Dovecot back", |u| {
        u.sources
            .iter()
            .any(|s| s.name == "dovecot" && s.health == pb::HealthStatus::Ok as i32)
    })
    .await;
    // Found once Dovecot answers again.
    let snap = until(&hub, "found all three kinds", |u| {
        u.clusters[0].sweep.as_ref().is_some_and(|s| {
            ["corrupt_log", "lost_uidlist", "stale_index"]
                .iter()
                .all(|k| s.kinds.iter().any(|d| d.kind == *k))
        }) && u.totals.as_ref().is_some_and(|t| t.restored_mailboxes == 5)
    })
    .await;
    let carol = snap
        .tenants
        .iter()
        .find(|t| t.id == "acme")
        .and_then(|t| t.states)
        .map(|s| s.resync_needed);
    assert_eq!(carol, Some(1), "a lost uidlist is a state of its own");
    let found = snap.clusters[0].sweep.as_ref().unwrap().found;

    let revisions = snap.clusters[0].reindex.as_ref().unwrap().revisions.len();
    assert!(revisions >= 2, "scope revised as damage was found");

    // A restarted gateway on the same state file continues the incident.
    drop(hub);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let again = PlatformSource::start(
        PlatformConfig {
            tenants: vec![
                tenant("acme", "Acme Title", &["acme.test"]),
                tenant("globex", "Globex", &["globex.test"]),
            ],
            dovecot: Some(warroom::sources::platform::DovecotSpec {
                client: dc.client(),
                probes_per_poll: 100,
                limits: Default::default(),
            }),
            store: Some(warroom::store::open(&state).unwrap()),
            ..base()
        },
        &tokio::runtime::Handle::current(),
    )
    .unwrap();
    let hub = Hub::new(Box::new(again), 1.0, 1.0);
    let snap = until(&hub, "resumed the incident", |u| {
        u.totals.as_ref().is_some_and(|t| t.mailboxes == 7)
    })
    .await;
    assert_eq!(snap.totals.as_ref().unwrap().restored_mailboxes, 5);
    assert_eq!(snap.clusters[0].sweep.as_ref().unwrap().found, found);
    let r = snap.clusters[0].reindex.as_ref().unwrap();
    assert!(r.revisions.len() >= revisions, "scope history kept: {r:?}");
}

/// Mail that Postfix delivers within a second never shows in a queue
/// listing: rates from successive listings say they count only the mail
/// queued for a poll or more. With Prometheus scraping the exporter, the
/// rates come from Postfix's log counters, which count that mail too, and
/// say nothing is left out.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Postfix, Prometheus, aiosmtpd and root: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_that_passes_straight_through_is_counted_from_postfixs_log() {
    let mut pf = daemons::Postfix::start();
    let sink = daemons::SmtpSink::start();
    pf.postconf(&[&format!(
        "transport_maps = inline:{{acme.test=relay:[127.0.0.1]:{}}}",
        sink.port
    )]);
    pf.stop();
    pf.start_again();
    let stack = daemons::PromStack::start(&pf, &[]);
    let platform = |prometheus: bool| {
        let source = PlatformSource::start(
            PlatformConfig {
                tenants: vec![tenant("acme", "Acme Title", &["acme.test"])],
                postqueue: Some(
                    Postqueue::new(pf.postqueue_command(), Duration::from_secs(10)).unwrap(),
                ),
                prometheus: prometheus
                    .then(|| Prometheus::new(&stack.url(), Duration::from_secs(10)).unwrap()),
                ..base()
            },
            &tokio::runtime::Handle::current(),
        )
        .unwrap();
        Hub::new(Box::new(source), 1.0, 1.0)
    };
    let (listed, logged) = (platform(false), platform(true));
    let queue = |u: &pb::WatchUpdate| u.clusters.first().and_then(|c| c.queue.clone());
    // The exporter counts from its start: wait until Prometheus has two
    // scrapes of its counters (a rate, of nothing yet) before sending.
    until(&logged, "read a rate from the log counters", |u| {
        queue(u).is_some_and(|q| q.arrival_per_min == Some(0.0) && q.rates_cover.is_empty())
    })
    .await;
    for i in 0..10 {
        pf.sendmail("s@example.test", &["alice@acme.test"], &format!("m{i}"));
    }
    sink.wait_for(10, &pf).await;
    let q = queue(
        &until(&logged, "counted the mail that passed through", |u| {
            queue(u).is_some_and(|q| {
                q.arrival_per_min.is_some_and(|r| r > 0.0)
                    && q.delivery_per_min.is_some_and(|r| r > 0.0)
            })
        })
        .await,
    )
    .unwrap();
    assert_eq!(q.rates_cover, "", "the log counts every message: {q:?}");
    let q = queue(
        &until(&listed, "measured rates from the listings", |u| {
            queue(u).is_some_and(|q| q.arrival_per_min.is_some())
        })
        .await,
    )
    .unwrap();
    assert_eq!(q.rates_cover, "mail queued for a poll or more", "{q:?}");
}

/// `warroom gateway` (the real binary) on the config in `dir`, with `env`;
/// the config's `[platform]` selects the platform by itself.
fn spawn_gateway(dir: &std::path::Path, env: &[(&str, &str)]) -> (daemons::ChildGuard, u16) {
    let port = daemons::free_port();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_warroom"));
    c.args([
        "gateway",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--page-listen",
        "127.0.0.1:0",
    ])
    .env("WARROOM_CONFIG", dir.join("gateway.toml"))
    .env("XDG_DATA_HOME", dir)
    .env("WARROOM_LOG", "warn");
    for (k, v) in env {
        c.env(k, v);
    }
    let gw = daemons::ChildGuard::spawn("warroom gateway", c, dir.join("gateway.log"));
    (gw, port)
}

/// `warroom snapshot` (the console's own drawing) of the gateway on `port`,
/// 120x30, taken again until `done` holds (30 s at most).
fn screen_until(
    gw: &mut daemons::ChildGuard,
    port: u16,
    dir: &std::path::Path,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_warroom"))
            .args([
                "snapshot",
                "--gateway",
                &format!("http://127.0.0.1:{port}"),
                "--width",
                "120",
                "--height",
                "30",
            ])
            .env("XDG_CONFIG_HOME", dir)
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        if done(&s) {
            return s;
        }
        gw.assert_running();
        assert!(
            Instant::now() < deadline,
            "never {what}:\n{s}\n{}",
            gw.log_tail()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// What a screen must never claim about a figure nothing measured (a
/// rate of 0/min is checked where nothing measured one).
fn claims_nothing_unmeasured(screen: &str) {
    for claim in ["0ms", "none lost"] {
        assert!(!screen.contains(claim), "{claim:?} on screen:\n{screen}");
    }
}

/// The screen before any backend answered, and after Prometheus (the only
/// queue source here) is killed: no 0/min before any answer, no 0ms, no
/// "none lost"; the queue says it is unknown, then stale, and Prometheus is
/// down. In between, the queue's rates come from Postfix's log counters
/// (0/min: the mail was sent before the exporter watched the log), said to
/// count every message. A scrape target that is down counts against its
/// own job (dovecot → imap), not smtp-in.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Dovecot, Postfix, Prometheus and root: ./scripts/test runs it"
)]
#[test]
fn the_screen_says_unknown_before_the_first_poll_and_stale_when_prometheus_dies() {
    let pf = daemons::Postfix::start();
    for i in 0..3 {
        pf.sendmail("s@example.test", &["alice@acme.test"], &format!("q{i}"));
    }
    let dead = daemons::free_port();
    let stack = daemons::PromStack::start(&pf, &[("dovecot", dead)]);
    let dir = pf.dir.path().join("gw");
    std::fs::create_dir_all(&dir).unwrap();
    // A Prometheus that accepts and never answers: nothing is known yet.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = |url: &str| {
        format!(
            "[platform]\nname = \"Test platform\"\npoll_ms = 300\n\
             [[platform.tenants]]\nid = \"acme\"\nname = \"Acme Title\"\ndomains = [\"acme.test\"]\n\
             [platform.prometheus]\nurl = \"{url}\"\n"
        )
    };
    std::fs::write(
        dir.join("gateway.toml"),
        config(&format!("http://{}", hung.local_addr().unwrap())),
    )
    .unwrap();
    let (mut gw, port) = spawn_gateway(&dir, &[]);
    let screen = screen_until(&mut gw, port, &dir, "showed the first picture", |s| {
        s.contains("Test platform")
    });
    assert!(screen.contains("waiting for the first"), "{screen}");
    assert!(screen.contains("? queued"), "{screen}");
    assert!(!screen.contains("0/min"), "{screen}");
    claims_nothing_unmeasured(&screen);
    drop(gw);

    // The real Prometheus: the queue from it, then Prometheus killed.
    std::fs::write(dir.join("gateway.toml"), config(&stack.url())).unwrap();
    let (mut gw, port) = spawn_gateway(&dir, &[]);
    let screen = screen_until(
        &mut gw,
        port,
        &dir,
        "showed the queue from Prometheus",
        |s| {
            s.contains("3 queued")
                && s.contains("job dovecot: 0 of 1 targets up")
                && s.contains("in 0/min · out 0/min")
        },
    );
    assert!(
        !screen.contains("(partial)") && !screen.contains("counting only"),
        "the log counters count every message:\n{screen}"
    );
    claims_nothing_unmeasured(&screen);
    let line = |s: &str, role: &str| -> String {
        s.lines()
            .find(|l| l.trim_start_matches('│').starts_with(role))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line(&screen, "smtp-in").contains("● ok"), "{screen}");
    assert!(line(&screen, "imap").contains("degr"), "{screen}");
    let daemons::PromStack {
        prometheus,
        exporter,
        ..
    } = stack;
    drop(prometheus);
    let screen = screen_until(&mut gw, port, &dir, "showed Prometheus down", |s| {
        s.contains("prometheus ✖ down") && s.contains("STALE")
    });
    claims_nothing_unmeasured(&screen);
    assert!(
        screen.contains("3 queued"),
        "the last figures are kept:\n{screen}"
    );
    drop(exporter);
}

/// The real binaries, with the simulator unused: `warroom gateway --source
/// platform` on a real Dovecot and Postfix, and the console's own picture
/// of it (`warroom snapshot`, drawn by the console's code) shows their
/// figures and no SIMULATED badge.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Dovecot, Postfix, Prometheus and root: ./scripts/test runs it"
)]
#[test]
fn the_console_shows_real_figures_from_the_platform() {
    let dc = dovecot_fixture::Dovecot::new("e2e");
    dc.start();
    dc.seed_all();
    let pf = daemons::Postfix::start();
    for i in 0..3 {
        pf.sendmail("s@example.test", &["alice@acme.test"], &format!("q{i}"));
    }
    pf.sendmail("s@example.test", &["erin@globex.test"], "q");
    let dir = std::env::temp_dir().join(format!("wr-platform-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let command: Vec<String> = pf
        .postqueue_command()
        .iter()
        .map(|a| format!("{a:?}"))
        .collect();
    std::fs::write(
        dir.join("gateway.toml"),
        format!(
            "[platform]\nname = \"Test platform\"\npoll_ms = 300\n\
             [[platform.tenants]]\nid = \"acme\"\nname = \"Acme Title\"\ndomains = [\"acme.test\"]\n\
             [[platform.tenants]]\nid = \"globex\"\nname = \"Globex Corp\"\ndomains = [\"globex.test\"]\n\
             [platform.dovecot]\nurl = \"http://127.0.0.1:{}\"\napi_key_env = \"DOVEADM_KEY\"\n\
             [platform.postfix]\ncommand = [{}]\n",
            dc.http_port,
            command.join(", ")
        ),
    )
    .unwrap();
    let (mut gw, port) = spawn_gateway(&dir, &[("DOVEADM_KEY", dovecot_fixture::API_KEY)]);
    // Acme: 4 mailboxes, 3 queued; Globex: 3 mailboxes, 1 queued. No claim
    // about losses that nothing measured.
    let screen = screen_until(&mut gw, port, &dir, "showed the platform", |s| {
        s.contains("4 queued (losses not measured)")
            && s.contains("dovecot ● ok")
            && s.contains("7 mailboxes listed")
    });
    assert!(screen.contains("Test platform"), "{screen}");
    assert!(
        screen.contains("Acme Title") && screen.contains("Globex Corp"),
        "{screen}"
    );
    assert!(
        !screen.contains("SIMULATED"),
        "a real platform is not a drill:\n{screen}"
    );
    // The tenants table: mailboxes from Dovecot's userdb, queued mail from
    // Postfix's queue, per tenant.
    let row = |name: &str| -> Vec<String> {
        let l = screen.lines().find(|l| l.contains(name)).unwrap();
        l.split_whitespace().map(str::to_string).collect()
    };
    let acme = row("Acme Title");
    let globex = row("Globex Corp");
    // … mailboxes affected % restored queued …
    let nums = |r: &[String]| -> Vec<String> {
        r.iter()
            .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
            .cloned()
            .collect()
    };
    assert_eq!(nums(&acme), ["4", "0", "0", "3"], "{acme:?}");
    assert_eq!(nums(&globex), ["3", "0", "0", "1"], "{globex:?}");
}

/// With a load query, the platform reads its users' load now and a week
/// of it (its traffic, from which the repair ETA draws the hours not seen
/// yet), and says so beside Prometheus; a history too short to serve is
/// said too, and nothing else breaks. A Prometheus without the Postfix
/// exporter leaves the queue unknown, with the reason.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Prometheus and promtool: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_query_gives_the_platform_its_weeks_traffic() {
    let dir = daemons::TempDir::new("platform-traffic");
    let now = chrono::Utc::now();
    let (_prometheus, url) = daemons::prometheus_with_history(&dir, now);
    let said = |query: &str, what: &'static str, want: &'static [&'static str]| {
        let url = url.clone();
        let query = query.to_string();
        async move {
            let source = PlatformSource::start(
                PlatformConfig {
                    prometheus: Some(Prometheus::new(&url, Duration::from_secs(10)).unwrap()),
                    load_query: Some(query),
                    poll: Duration::from_millis(200),
                    ..base()
                },
                &tokio::runtime::Handle::current(),
            )
            .unwrap();
            let hub = Hub::new(Box::new(source), 1.0, 1.0);
            let snap = until(&hub, what, |u| {
                u.sources
                    .iter()
                    .any(|s| s.name == "prometheus" && want.iter().all(|w| s.message.contains(w)))
            })
            .await;
            let prom = snap
                .sources
                .iter()
                .find(|s| s.name == "prometheus")
                .unwrap();
            assert_eq!(prom.health, pb::HealthStatus::Ok as i32, "{prom:?}");
            // This Prometheus scrapes no Postfix exporter and no Dovecot is
            // configured: the queue is not measured (not "0 queued, empty")
            // and no damage was looked for (not "none found").
            let cluster = &snap.clusters[0];
            // Nothing measures a service role here: its health is unknown.
            assert_eq!(
                cluster.health,
                pb::HealthStatus::Unknown as i32,
                "{cluster:?}"
            );
            let queue = cluster.queue.as_ref().unwrap();
            assert_eq!(
                (queue.active, queue.deferred, queue.hold),
                (None, None, None)
            );
            assert!(
                queue.unknown_reason.contains("no Postfix queue series"),
                "{queue:?}"
            );
            let eta = cluster
                .reindex
                .as_ref()
                .and_then(|r| r.eta.as_ref())
                .unwrap();
            assert_eq!(eta.reason, "damage not measured: no Dovecot configured");
            prom.message.clone()
        }
    };
    // The load now is the history's last point (at most 5 minutes old).
    let message = said(
        "last_over_time(platform_load[1h])",
        "read the load and the week's traffic",
        &["the week's traffic read"],
    )
    .await;
    let load: f64 = message
        .split("; load ")
        .nth(1)
        .and_then(|l| l.split(',').next())
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("no load in {message:?}"));
    assert!((0.2..=1.2).contains(&load), "{message:?}");
    said(
        "last_over_time(short_load[1h])",
        "said the short history",
        &[
            "no traffic history: the load history covers 4",
            "of the day's 96",
        ],
    )
    .await;
}

/// A gateway that follows (another replica leads) asks its backends
/// nothing; once it leads it polls, and the moment it stops leading its
/// polling stops (fencing). The backend here is a stand-in for Prometheus
/// that counts the requests it gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_polls_no_backend_and_a_leader_that_loses_the_lead_stops_polling() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (lead, leading) = tokio::sync::watch::channel(false);
    let source = PlatformSource::start_gated(
        PlatformConfig {
            prometheus: Some(Prometheus::new(&url, Duration::from_secs(2)).unwrap()),
            poll: Duration::from_millis(100),
            ..base()
        },
        &tokio::runtime::Handle::current(),
        Some(leading),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(asked.load(Ordering::SeqCst), 0, "a follower polled");
    lead.send_replace(true);
    let deadline = Instant::now() + Duration::from_secs(5);
    while asked.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the leader never polled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lead.send_replace(false);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let then = asked.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        asked.load(Ordering::SeqCst),
        then,
        "polled after losing the lead"
    );
    drop(source);
    server.abort();
}

/// Two gateways on one store, as replicas: the follower read the journal
/// when it started, with four mailboxes waiting for repair; the leader
/// then repaired them. When the follower leads, it reads the journal back
/// before it starts work: it repairs none of them again (each is in the
/// journal as repaired once), and counts the four as restored.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Dovecot and root: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_leads_after_following_does_not_repair_again_what_the_leader_repaired() {
    use warroom::domain::incident::{Entry, Event};
    let dc = dovecot_fixture::Dovecot::new("takeover");
    dc.start();
    dc.seed_all();
    let users = [
        "alice@acme.test",
        "bob@acme.test",
        "erin@globex.test",
        "grace@globex.test",
    ];
    for u in users {
        dc.corrupt_log(u);
    }
    let state = dc.dir.join("state.sqlite");
    // The previous leader found the four.
    let mut journal = warroom::store::open(&state).unwrap();
    journal
        .journal_append(&users.map(|u| Event {
            at: chrono::Utc::now(),
            entry: Entry::Found {
                mailbox: u.into(),
                kind: "corrupt_log".into(),
                detail: "found by the previous leader".into(),
            },
        }))
        .unwrap();
    let repaired_in_journal = |store: &dyn warroom::store::Store| {
        let mut r: Vec<String> = store
            .journal()
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.entry {
                Entry::Repaired { mailbox } => Some(mailbox),
                _ => None,
            })
            .collect();
        r.sort();
        r
    };
    let config = || repairing(&dc, &state);
    let rt = tokio::runtime::Handle::current();
    let (lead_b, gate_b) = tokio::sync::watch::channel(false);
    let follower = PlatformSource::start_gated(config(), &rt, Some(gate_b)).unwrap();
    let rb = follower.reindexer().unwrap();
    assert_eq!(
        rb.progress().queued.len(),
        4,
        "the follower read four waiting"
    );
    let (lead_a, gate_a) = tokio::sync::watch::channel(true);
    let leader = PlatformSource::start_gated(config(), &rt, Some(gate_a)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while repaired_in_journal(&*journal).len() < 4 {
        assert!(
            Instant::now() < deadline,
            "the leader never repaired the four"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lead_a.send_replace(false);
    lead_b.send_replace(true);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = rb.progress();
        if p.queued.is_empty() && p.active.is_empty() && p.done.len() == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never caught up: {p:?}; journal: {:?}",
            journal
                .journal()
                .unwrap()
                .into_iter()
                .filter(|e| matches!(e.entry, Entry::Repaired { .. } | Entry::Found { .. }))
                .map(|e| format!("{} {:?}", e.at.format("%S%.3f"), e.entry)
                    .chars()
                    .take(90)
                    .collect::<String>())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Some polls later (sweeps, the reindexer's turns), still once each.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut want: Vec<String> = users.map(String::from).to_vec();
    want.sort();
    assert_eq!(
        repaired_in_journal(&*journal),
        want,
        "a mailbox repaired twice"
    );
    let mut done = rb.progress().done;
    done.sort();
    assert_eq!(done, want);
    drop((leader, follower));
}
