//! Gateway replicas on one PostgreSQL database (issue #14): exactly one of
//! them leads (runs the sources), each says which it is on the health
//! service (`warroom.v1.Leader`) and on its Watch's `store` source line,
//! and when the leader is killed with `kill -9` another takes over within
//! 5 s. (Deliveries across replicas: tests/status_updates.rs.)

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::postgres::{PASSWORD, PgCluster};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use warroom::api::pb;

/// A gateway process on `port`, its state in the database at `url`.
fn replica(port: u16, dir: &std::path::Path, url: &str) -> Child {
    std::fs::create_dir_all(dir).unwrap();
    let page = format!("127.0.0.1:{}", common::tmux::free_port());
    let gw = common::tmux::spawn_gateway(port, dir, &["--store", url, "--page-listen", &page], &[]);
    common::tmux::wait_listening(port);
    gw
}

/// Whether the gateway on `port` says it leads (`warroom.v1.Leader`
/// SERVING); None when it does not answer.
async fn leads(port: u16) -> Option<bool> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
        .ok()?;
    let r = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "warroom.v1.Leader".into(),
        })
        .await
        .ok()?
        .into_inner();
    Some(r.status == ServingStatus::Serving as i32)
}

/// The `store` source line of the gateway on `port`'s Watch snapshot.
async fn store_line(port: u16) -> pb::SourceStatus {
    try_store_line(port)
        .await
        .expect("a Watch snapshot with a store line")
}

/// `store_line`, or None when the gateway does not stream (a follower that
/// has not reached its leader yet).
async fn try_store_line(port: u16) -> Option<pb::SourceStatus> {
    let mut c =
        warroom::client::GatewayClient::with_token(&format!("http://127.0.0.1:{port}"), None)
            .unwrap()
            .raw();
    let mut w = c.watch(pb::WatchRequest {}).await.ok()?.into_inner();
    let snap = w.message().await.ok()??;
    snap.sources.into_iter().find(|s| s.name == "store")
}

/// What `warroom info --gateway` says of the gateway on `port`'s role.
fn info_role(port: u16, dir: &std::path::Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warroom"))
        .args(["info", "--gateway", &format!("http://127.0.0.1:{port}")])
        .env("XDG_CONFIG_HOME", dir)
        .env("XDG_STATE_HOME", dir)
        .env("XDG_DATA_HOME", dir)
        .env_remove("WARROOM_STORE")
        .env_remove("WARROOM_STATE")
        .env_remove("WARROOM_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("gateway role: "))
        .unwrap_or("(no role line)")
        .to_string()
}

/// Until `f` holds (10 s at most); how long it took.
async fn until<F: std::future::Future<Output = bool>>(what: &str, f: impl Fn() -> F) -> Duration {
    let t0 = Instant::now();
    while !f().await {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "not {what} within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t0.elapsed()
}

/// Two gateways on one database: one leads and the other follows, each
/// saying so on the health service and on its store line; the leader is
/// killed with `kill -9`: the follower leads within 5 s (the figure is
/// printed: docs/performance.md). Then PostgreSQL stops for 20 s: the
/// gateway says so, stops leading, refuses what needs the database with
/// UNAVAILABLE naming it, keeps serving its last picture, and leads again
/// by itself when the database is back.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_with_kill_9_is_replaced_by_the_follower_within_5_s() {
    let pg = PgCluster::start("replicas");
    let url = pg.create_db("warroom");
    let base = std::env::temp_dir().join(format!("wr-replicas-{}", std::process::id()));
    let (pa, pb_) = (common::tmux::free_port(), common::tmux::free_port());
    let a = replica(pa, &base.join("a"), &url);
    let b = replica(pb_, &base.join("b"), &url);

    until("one leader", || async {
        matches!(
            (leads(pa).await, leads(pb_).await),
            (Some(true), Some(false)) | (Some(false), Some(true))
        )
    })
    .await;
    // Still one, a few campaign rounds later.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (la, lb) = (leads(pa).await.unwrap(), leads(pb_).await.unwrap());
    assert!(la != lb, "exactly one leader: a {la}, b {lb}");
    let (leader, follower, mut leader_proc, mut follower_proc) =
        if la { (pa, pb_, a, b) } else { (pb_, pa, b, a) };
    let endpoint = format!("PostgreSQL at 127.0.0.1:{}", pg.port);
    let l = store_line(leader).await;
    assert_eq!(l.health, pb::HealthStatus::Ok as i32);
    assert!(
        l.message
            .starts_with(&format!("{endpoint} · leader since "))
            && l.message.ends_with(" UTC"),
        "{}",
        l.message
    );
    let f = store_line(follower).await;
    let leading_since = l.message.rsplit(" · leader since ").next().unwrap();
    assert_eq!(
        f.message,
        format!(
            "{endpoint} · follower of the leader at http://127.0.0.1:{leader} (leading since {leading_since})"
        )
    );
    assert!(!f.message.contains(PASSWORD) && !l.message.contains(PASSWORD));
    let said = info_role(leader, &base);
    assert!(
        said.starts_with(&format!(
            "leader (it runs the sources); store ok: {endpoint} · leader since "
        )),
        "{said}"
    );
    assert_eq!(
        info_role(follower, &base),
        format!(
            "follower (another gateway runs the sources); store ok: {endpoint} · follower of the leader at http://127.0.0.1:{leader} (leading since {leading_since})"
        )
    );

    leader_proc.kill().unwrap(); // SIGKILL
    let killed = Instant::now();
    leader_proc.wait().unwrap();
    until("the follower leading", || async {
        leads(follower).await == Some(true)
    })
    .await;
    let failover = killed.elapsed();
    eprintln!("failover after kill -9: {} ms", failover.as_millis());
    assert!(failover < Duration::from_secs(5), "{failover:?}");
    // Its store line says so by its next tick.
    until("the store line saying leader", || async {
        store_line(follower)
            .await
            .message
            .starts_with(&format!("{endpoint} · leader since "))
    })
    .await;

    // The database stops: the leader says so (down, since when) and stops
    // leading.
    pg.stop();
    until("the outage shown", || async {
        let l = store_line(follower).await;
        l.health == pb::HealthStatus::Down as i32
            && l.message
                .starts_with(&format!("{endpoint} unreachable since "))
    })
    .await;
    assert_eq!(leads(follower).await, Some(false));
    // Writes are refused, saying why; reads go on from the last picture.
    let refused =
        warroom::client::GatewayClient::with_token(&format!("http://127.0.0.1:{follower}"), None)
            .unwrap()
            .raw()
            .list_audit_events(pb::ListAuditEventsRequest::default())
            .await;
    let tenants =
        warroom::client::GatewayClient::with_token(&format!("http://127.0.0.1:{follower}"), None)
            .unwrap()
            .raw()
            .list_tenants(pb::ListTenantsRequest::default())
            .await
            .unwrap()
            .into_inner();
    assert!(!tenants.tenants.is_empty(), "the last picture is served");
    let e = refused.expect_err("the record cannot be read without the database");
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert!(
        e.message().contains("PostgreSQL at 127.0.0.1:"),
        "{}",
        e.message()
    );
    assert!(!e.message().contains(PASSWORD), "{}", e.message());
    // The database back after 20 s: the gateway leads again by itself.
    tokio::time::sleep(Duration::from_secs(20)).await;
    pg.start_again();
    let back = Instant::now();
    until("leading again", || async {
        leads(follower).await == Some(true)
    })
    .await;
    eprintln!(
        "PostgreSQL back after 20 s: leading again in {} ms",
        back.elapsed().as_millis()
    );
    follower_proc.kill().unwrap();
    let _ = follower_proc.wait();
    let _ = std::fs::remove_dir_all(&base);
    drop(pg);
}

/// A gateway whose database cannot be reached does not lead: its ticks do
/// not move the incident, `warroom.v1.Leader` is NOT_SERVING, and its
/// store line says since when the database has been out of reach, without
/// the password. No PostgreSQL needed: nothing listens on the port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_cannot_reach_its_database_does_not_lead_and_says_so() {
    let port = common::tmux::free_port();
    let url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:{port}/warroom");
    let hub = common::hub(common::small());
    hub.set_leadership(warroom::store::Leadership::campaign(&url).unwrap());
    let gw = common::serve(hub.clone(), warroom::gateway::Access::open_read_only()).await;
    let gw_port = gw.addr.port();
    let line = |snap: &pb::WatchUpdate| {
        snap.sources
            .iter()
            .find(|s| s.name == "store")
            .cloned()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        hub.tick();
        let l = line(&hub.snapshot());
        if l.health == pb::HealthStatus::Down as i32 {
            let want = format!("PostgreSQL at 127.0.0.1:{port} unreachable since ");
            assert!(l.message.starts_with(&want), "{}", l.message);
            assert!(!l.message.contains(PASSWORD), "{}", l.message);
            break;
        }
        assert!(Instant::now() < deadline, "never said down: {l:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let clock = |snap: &pb::WatchUpdate| snap.incident.as_ref().unwrap().now;
    let before = clock(&hub.snapshot());
    for _ in 0..5 {
        hub.tick();
    }
    assert_eq!(
        clock(&hub.snapshot()),
        before,
        "a follower moved its source"
    );
    assert_eq!(leads(gw_port).await, Some(false));
    gw.stop().await;
}

/// A gateway alone on its SQLite file leads (it runs its sources) and adds
/// no store line to the sources.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_a_sqlite_file_leads_alone() {
    let gw = common::gateway(common::small()).await;
    assert_eq!(leads(gw.addr.port()).await, Some(true));
    let dir = std::env::temp_dir().join(format!("wr-single-{}", std::process::id()));
    let said = tokio::task::spawn_blocking({
        let (port, dir) = (gw.addr.port(), dir.clone());
        move || info_role(port, &dir)
    })
    .await
    .unwrap();
    assert_eq!(
        said,
        "single (alone on its state file; it runs the sources)"
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !gw.hub.snapshot().sources.iter().any(|s| s.name == "store"),
        "no store line"
    );
    let before = gw.hub.snapshot().incident.unwrap().now;
    gw.hub.tick();
    assert_ne!(gw.hub.snapshot().incident.unwrap().now, before);
    gw.stop().await;
}

/// Waits until one of the gateways on `ports` leads and every other relays
/// it; returns the leader's index.
async fn one_leader_relayed_by_the_others(ports: &[u16]) -> usize {
    until("one leader, relayed by the others", || async {
        let mut leaders = 0;
        for &p in ports {
            match leads(p).await {
                Some(true) => leaders += 1,
                Some(false)
                    if try_store_line(p)
                        .await
                        .is_some_and(|l| l.message.contains("follower of the leader")) => {}
                _ => return false,
            }
        }
        leaders == 1
    })
    .await;
    let mut leader = 0;
    for (i, &p) in ports.iter().enumerate() {
        if leads(p).await == Some(true) {
            leader = i;
        }
    }
    leader
}

/// Tokens every replica's config knows (replicas share their tokens).
const OPERATORS: &str = "[server]\n[[server.tokens]]\nname = \"ana\"\nrole = \"operator\"\ntoken = \"ana-replica-token\"\n[[server.tokens]]\nname = \"bo\"\nrole = \"operator\"\ntoken = \"bo-replica-token\"\n";

/// A replica whose config knows the operators ana and bo.
fn replica_with_operators(port: u16, dir: &std::path::Path, url: &str) -> Child {
    std::fs::create_dir_all(dir.join("warroom")).unwrap();
    std::fs::write(dir.join("warroom/config.toml"), OPERATORS).unwrap();
    replica(port, dir, url)
}

/// A raw client of the gateway on `port` presenting `token`.
fn raw(port: u16, token: &str) -> warroom::client::Client {
    warroom::client::GatewayClient::with_token(&format!("http://127.0.0.1:{port}"), Some(token))
        .unwrap()
        .raw()
}

/// A console's view of one replica: its Watch, applied as a console does.
struct Screen {
    model: warroom::console::model::Model,
    run: String,
    updates: tonic::Streaming<pb::WatchUpdate>,
    /// The tenants of the first snapshot, in the gateway's order.
    ids: Vec<String>,
}

impl Screen {
    async fn open(port: u16, token: &str) -> Screen {
        let mut updates = raw(port, token)
            .watch(pb::WatchRequest {})
            .await
            .unwrap()
            .into_inner();
        let first = updates.message().await.unwrap().unwrap();
        let mut model = warroom::console::model::Model::default();
        model.apply(warroom::client::Update::from_pb(&first));
        Screen {
            model,
            ids: first.tenants.iter().map(|t| t.id.clone()).collect(),
            run: first.run.map(|r| r.id).unwrap_or_default(),
            updates,
        }
    }

    /// Applies updates until `tenant`'s priority is at `version`.
    async fn until_version(&mut self, tenant: &str, version: u64) {
        loop {
            let v = self
                .model
                .tenant(tenant)
                .and_then(|t| t.priority_set.as_ref().map(|d| d.version));
            if v == Some(version) {
                return;
            }
            let u = tokio::time::timeout(Duration::from_secs(10), self.updates.message())
                .await
                .expect("an update within 10 s")
                .unwrap()
                .unwrap();
            if let Some(r) = &u.run {
                self.run.clone_from(&r.id);
            }
            let applied = self.model.apply(warroom::client::Update::from_pb(&u));
            assert_ne!(
                applied,
                warroom::console::model::Applied::Gap,
                "a replica's versions broke"
            );
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Three replicas on one database serve one picture (the leader's run, on
/// every replica's Watch); 100 priority decisions made through the three
/// in turn, by two operators, each reach the consoles on the other two
/// replicas (the latency, p50 and p99, is printed: docs/performance.md);
/// every decision is on the record on every replica. Then the leader is
/// killed with `kill -9`: the consoles on the other replicas keep their
/// stream, every decision is still there, and the incident's clock
/// continues from where the old leader had it, not from the start.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_show_one_picture_and_every_decision_reaches_every_console() {
    let pg = PgCluster::start("three");
    let url = pg.create_db("warroom");
    let base = std::env::temp_dir().join(format!("wr-three-{}", std::process::id()));
    let ports: Vec<u16> = (0..3).map(|_| common::tmux::free_port()).collect();
    let mut procs: Vec<Child> = ports
        .iter()
        .enumerate()
        .map(|(i, &p)| replica_with_operators(p, &base.join(format!("r{i}")), &url))
        .collect();
    let leader = one_leader_relayed_by_the_others(&ports).await;
    let mut screens = Vec::new();
    for &p in &ports {
        screens.push(Screen::open(p, "ana-replica-token").await);
    }
    assert!(
        screens.iter().all(|s| s.run == screens[leader].run),
        "every replica shows the leader's run"
    );
    let tenants: Vec<String> = screens[0].ids.iter().take(10).cloned().collect();

    let mut versions = std::collections::HashMap::<String, u64>::new();
    let mut latencies = Vec::new();
    for i in 0..100 {
        let on = i % 3;
        let tenant = &tenants[i % tenants.len()];
        let token = if i % 2 == 0 {
            "ana-replica-token"
        } else {
            "bo-replica-token"
        };
        let seen = versions.get(tenant).copied().unwrap_or(0);
        let sent = Instant::now();
        let r = raw(ports[on], token)
            .set_tenant_priority(pb::SetTenantPriorityRequest {
                tenant_id: tenant.clone(),
                priority: if i % 4 < 2 {
                    pb::Priority::P0
                } else {
                    pb::Priority::P1
                } as i32,
                rank: 0,
                reason: format!("decision {i} through replica {on}"),
                expected_version: seen,
            })
            .await
            .unwrap()
            .into_inner();
        let version = r.priority.unwrap().version;
        assert_eq!(version, seen + 1);
        versions.insert(tenant.clone(), version);
        let mut slowest = Duration::ZERO;
        for (j, s) in screens.iter_mut().enumerate() {
            s.until_version(tenant, version).await;
            if j != on {
                slowest = slowest.max(sent.elapsed());
            }
        }
        latencies.push(slowest);
    }
    latencies.sort();
    eprintln!(
        "a decision on one replica on the consoles of the other two: p50 {} ms, p99 {} ms, max {} ms (100 decisions)",
        percentile(&latencies, 0.5).as_millis(),
        percentile(&latencies, 0.99).as_millis(),
        latencies[latencies.len() - 1].as_millis()
    );
    // A bulk lookup (a stream each way) through every replica answers
    // the same, in order.
    for &p in &ports {
        let batch = pb::LookupManyRequest {
            queries: tenants.iter().take(3).cloned().collect(),
            limit: 1,
        };
        let mut answers = raw(p, "ana-replica-token")
            .lookup_many(tokio_stream::iter(vec![batch.clone(), batch]))
            .await
            .unwrap()
            .into_inner();
        for _ in 0..2 {
            let r = answers
                .message()
                .await
                .unwrap()
                .expect("one answer per batch");
            let ids: Vec<String> = r
                .results
                .iter()
                .map(|x| {
                    x.answer.as_ref().unwrap().matches[0]
                        .tenant
                        .as_ref()
                        .unwrap()
                        .id
                        .clone()
                })
                .collect();
            assert_eq!(ids, tenants[..3], "replica on {p}");
        }
        assert!(answers.message().await.unwrap().is_none());
    }
    // On the record once each, whichever replica is asked.
    for &p in &ports {
        let events = raw(p, "ana-replica-token")
            .list_audit_events(pb::ListAuditEventsRequest {
                after_id: 0,
                page_size: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .events;
        assert_eq!(events.len(), 100, "replica on {p}");
        assert_eq!(events.iter().filter(|e| e.actor == "bo").count(), 50);
    }

    // The leader killed: the consoles on the others keep their streams.
    let clock = |s: &Screen| s.model.overview.incident.now.unwrap();
    let before = clock(&screens[(leader + 1) % 3]);
    procs[leader].kill().unwrap();
    procs[leader].wait().unwrap();
    let killed = Instant::now();
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let new_run = loop {
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "no new leader's picture"
        );
        let s = &mut screens[survivors[0]];
        let u = tokio::time::timeout(Duration::from_secs(10), s.updates.message())
            .await
            .expect("the stream goes on")
            .unwrap()
            .unwrap();
        s.model.apply(warroom::client::Update::from_pb(&u));
        if let Some(r) = u.run
            && r.id != s.run
        {
            break r;
        }
    };
    eprintln!(
        "after kill -9 of the leader, a console on a follower had the new leader's picture in {} ms",
        killed.elapsed().as_millis()
    );
    let s = &screens[survivors[0]];
    assert!(
        clock(s) >= before,
        "the incident went back from {before} to {}",
        clock(s)
    );
    for (tenant, version) in &versions {
        assert_eq!(
            s.model
                .tenant(tenant)
                .and_then(|t| t.priority_set.as_ref().map(|d| d.version)),
            Some(*version),
            "{tenant}'s decision is still there"
        );
    }
    assert!(
        new_run.took_over_at.is_some(),
        "the new leader's run says it took over: {new_run:?}"
    );
    for i in survivors {
        procs[i].kill().unwrap();
        let _ = procs[i].wait();
    }
    let _ = std::fs::remove_dir_all(&base);
    drop(pg);
}

/// Three replicas whose webhook fails, then recovers: updates published
/// through a follower are attempted by the leader, which is killed with
/// `kill -9` between attempts; the replica that takes over delivers each
/// update once the webhook answers (one accepted POST per update), and
/// every delivery ends sent.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs PostgreSQL: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_in_flight_when_the_leader_is_killed_is_delivered_once_by_the_next() {
    let pg = PgCluster::start("publish-kill");
    let url = pg.create_db("warroom");
    let hook = common::hook::Hook::start(503).await;
    let base = std::env::temp_dir().join(format!("wr-publish-kill-{}", std::process::id()));
    let config = format!(
        "[server]\ndelivery_lease_ms = 2000\n[[server.tokens]]\nname = \"cy\"\nrole = \"comms\"\ntoken = \"cy-replica-token\"\n[server.webhook]\nurl = \"{}\"\n",
        hook.url
    );
    let ports: Vec<u16> = (0..3).map(|_| common::tmux::free_port()).collect();
    let mut procs: Vec<Child> = Vec::new();
    for (i, &p) in ports.iter().enumerate() {
        let dir = base.join(format!("r{i}"));
        std::fs::create_dir_all(dir.join("warroom")).unwrap();
        std::fs::write(dir.join("warroom/config.toml"), &config).unwrap();
        procs.push(replica(p, &dir, &url));
    }
    let leader = one_leader_relayed_by_the_others(&ports).await;
    let follower = (leader + 1) % 3;
    let now = Screen::open(ports[follower], "cy-replica-token")
        .await
        .model
        .overview
        .incident
        .now
        .unwrap();
    for i in 0..3 {
        raw(ports[follower], "cy-replica-token")
            .publish_status_update(pb::PublishStatusUpdateRequest {
                draft: Some(pb::StatusUpdateDraft {
                    state: pb::IncidentState::Investigating as i32,
                    title: format!("Update {i}"),
                    body: "Mailboxes on cluster A are being reindexed.".into(),
                    next_update_at: Some(warroom::api::ts(now + chrono::Duration::minutes(90))),
                    ..Default::default()
                }),
                operation_id: format!("op-{i}"),
                confirm_warnings: true,
            })
            .await
            .unwrap();
    }
    // The leader has tried each once (and failed): kill it between tries.
    until("a first attempt at each update", || async {
        hook.ids().len() >= 3
    })
    .await;
    procs[leader].kill().unwrap();
    procs[leader].wait().unwrap();
    hook.answer(200);
    let survivor = ports[follower];
    until_long("every delivery sent by the next leader", || async {
        raw(survivor, "cy-replica-token")
            .list_status_updates(pb::ListStatusUpdatesRequest::default())
            .await
            .is_ok_and(|r| {
                let u = r.into_inner().updates;
                u.len() == 3
                    && u.iter()
                        .all(|u| u.deliveries.iter().all(|d| d.state == "sent"))
            })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let accepted = hook.accepted_ids();
    let mut want: Vec<String> = (1..=3).map(|n| format!("su-{n:06}")).collect();
    want.sort();
    let mut got = accepted.clone();
    got.sort();
    assert_eq!(got, want, "one accepted POST per update: {accepted:?}");
    for (i, p) in procs.iter_mut().enumerate() {
        if i != leader {
            p.kill().unwrap();
            let _ = p.wait();
        }
    }
    let _ = std::fs::remove_dir_all(&base);
    drop(pg);
}

/// Until `f` holds (30 s at most: retries back off).
async fn until_long<F: std::future::Future<Output = bool>>(what: &str, f: impl Fn() -> F) {
    let t0 = Instant::now();
    while !f().await {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "not {what} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
