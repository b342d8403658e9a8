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
    let mut c =
        warroom::client::GatewayClient::with_token(&format!("http://127.0.0.1:{port}"), None)
            .unwrap()
            .raw();
    let mut w = c.watch(pb::WatchRequest {}).await.unwrap().into_inner();
    let snap = w.message().await.unwrap().unwrap();
    snap.sources
        .into_iter()
        .find(|s| s.name == "store")
        .expect("a store line among the sources")
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
/// printed: docs/performance.md).
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
    assert_eq!(
        f.message,
        format!("{endpoint} · follower (another gateway runs the sources)")
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
            "follower (another gateway runs the sources); store ok: {endpoint} · follower (another gateway runs the sources)"
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
