//! The gateway's bounds (#17): connection caps, time-outs, the Watch stream
//! caps, and one encoding per update shared by every watcher. Each test
//! starts its own gateway on 127.0.0.1 with small, explicit limits.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use warroom::api::pb;
use warroom::gateway::{Access, Gateway, Limits};

async fn gateway_with(limits: Limits) -> Gateway {
    gateway_of(common::small(), limits).await
}

async fn gateway_of(sim: warroom::sources::simulator::SimConfig, limits: Limits) -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    Gateway::serve_limited(
        listener,
        common::hub(sim),
        None,
        Access::open_read_only(),
        limits,
    )
    .await
    .expect("gateway starts")
}

/// A TCP connection to `to` from the loopback address `from`.
async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(format!("{from}:0").parse().expect("address"))?;
    s.connect(to).await
}

/// True when the gateway closed `s` (EOF or reset) within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false, // still open
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {} // data (a response, a SETTINGS frame): read on
        }
    }
}

/// Waits up to 5 s for `cond`: the server frees a place just after the
/// client sees its connection close.
async fn eventually(cond: impl Fn() -> bool) -> bool {
    for _ in 0..100 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

async fn next(s: &mut tonic::Streaming<pb::WatchUpdate>) -> pb::WatchUpdate {
    tokio::time::timeout(Duration::from_secs(30), s.message())
        .await
        .expect("an update within 30 s")
        .expect("stream ok")
        .expect("stream open")
}

#[tokio::test]
async fn a_flood_beyond_the_per_peer_cap_leaves_consoles_their_updates_and_health_checks_answering()
{
    let gw = gateway_with(Limits {
        max_connections: 1_000,
        max_connections_per_peer: 20,
        ..Limits::default()
    })
    .await;
    let mut console = common::client(&gw)
        .await
        .watch(pb::WatchRequest {})
        .await
        .expect("watch")
        .into_inner();
    let first = next(&mut console).await;
    assert!(first.snapshot);

    // 200 idle connections from one address (127.0.0.2): 20 are held, the
    // rest closed at once.
    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.push(connect_from("127.0.0.2", gw.addr).await.expect("connect"));
    }
    let mut closed = 0;
    for s in &mut flood {
        if closed_within(s, Duration::from_millis(200)).await {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 180,
        "every connection beyond the per-peer cap is closed"
    );
    assert_eq!(gw.connections.refused(), 180);

    // The console already connected still gets every version...
    gw.hub.tick();
    let u = next(&mut console).await;
    assert_eq!(u.version, first.version + 1);
    assert!(!u.snapshot);
    // ...and a health check on a new connection from another address answers.
    let channel = tonic::transport::Endpoint::from_shared(gw.url())
        .expect("url")
        .connect()
        .await
        .expect("a new connection from 127.0.0.1 is accepted");
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "warroom.v1.WarRoom".into(),
        })
        .await
        .expect("health answers")
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // The flood's own held connections are still the cap, not more.
    drop(flood);
    gw.stop().await;
}

#[tokio::test]
async fn watch_streams_beyond_the_caps_get_resource_exhausted_saying_which_limit() {
    let gw = gateway_with(Limits {
        max_watch_streams: 3,
        max_watch_streams_per_connection: 2,
        ..Limits::default()
    })
    .await;
    let a = common::client(&gw).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(
            a.clone()
                .watch(pb::WatchRequest {})
                .await
                .expect("within the caps"),
        );
    }
    let e = a
        .clone()
        .watch(pb::WatchRequest {})
        .await
        .expect_err("a third on one connection");
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    assert_eq!(
        e.message(),
        "this connection already has 2 Watch streams open, the limit per connection (server.max_watch_streams_per_connection); one Watch per console is enough"
    );

    let b = common::client(&gw).await;
    let third = b
        .clone()
        .watch(pb::WatchRequest {})
        .await
        .expect("the third in total");
    let e = b
        .clone()
        .watch(pb::WatchRequest {})
        .await
        .expect_err("a fourth in total");
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    assert_eq!(
        e.message(),
        "this gateway already serves 3 Watch streams, its limit (server.max_watch_streams); try again later"
    );
    // The refused calls took no place; a stream that ends frees its own.
    assert_eq!(gw.watchers.count(), 3);
    drop(third);
    let mut again = None;
    for _ in 0..100 {
        match b.clone().watch(pb::WatchRequest {}).await {
            Ok(s) => {
                again = Some(s.into_inner());
                break;
            }
            Err(e) => assert_eq!(e.code(), tonic::Code::ResourceExhausted),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut again = again.expect("a place freed by a closed stream is taken again");
    assert!(next(&mut again).await.snapshot);
    gw.stop().await;
}

#[tokio::test]
async fn a_half_sent_request_to_the_status_page_is_closed_after_the_time_out() {
    let mut gw = gateway_with(Limits {
        page_request_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let url = gw
        .serve_page(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .unwrap();
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: status\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut half, Duration::from_secs(10)).await,
        "a request whose headers never end is closed"
    );
    // A whole request is still answered.
    let mut whole = TcpStream::connect(addr).await.unwrap();
    whole
        .write_all(b"GET /index.json HTTP/1.1\r\nHost: status\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    whole.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    gw.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_to_the_status_page_is_closed_after_the_time_out() {
    let mut gw = gateway_with(Limits {
        page_request_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let url = gw
        .serve_page(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .unwrap();
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /index.json HTTP/1.1\r\nHost: status\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    kept.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    // Answered, then kept open for a next request that never comes.
    assert!(closed_within(&mut kept, Duration::from_secs(10)).await);
    let page = gw.page_connections.clone().unwrap();
    assert!(
        eventually(|| page.open() == 0).await,
        "its place is free again"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_handshake_time_out() {
    let gw = gateway_with(Limits {
        handshake_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let mut silent = TcpStream::connect(gw.addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(10)).await);
    assert_eq!(gw.connections.timed_out(), 1);
    assert!(
        eventually(|| gw.connections.open() == 0).await,
        "its place is free again"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_watcher_that_takes_nothing_is_dropped_after_the_stall_time_out() {
    let sim = warroom::sources::simulator::SimConfig {
        tenants: 3_000,
        mailboxes: 30_000,
        ..Default::default()
    };
    let gw = gateway_of(
        sim,
        Limits {
            watch_stall_timeout: Duration::from_secs(1),
            ..Limits::default()
        },
    )
    .await;
    // A snapshot larger than the client's 64 KiB stream window, never read:
    // the gateway cannot hand it over.
    let channel = tonic::transport::Endpoint::from_shared(gw.url())
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let mut stalled = pb::war_room_client::WarRoomClient::new(channel)
        .max_decoding_message_size(warroom::api::MAX_MESSAGE_BYTES)
        .watch(pb::WatchRequest {})
        .await
        .expect("watch")
        .into_inner();
    assert!(gw.hub.snapshot_encoded().frame.len() > 65_535);
    // The gateway goes on ticking: updates wait for the watcher.
    let mut waited = Duration::ZERO;
    while gw.watchers.count() > 0 && waited < Duration::from_secs(30) {
        gw.hub.tick();
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
    assert_eq!(gw.watchers.count(), 0, "the stalled watcher was dropped");
    assert!(
        eventually(|| gw.connections.open() == 0).await,
        "with its connection"
    );
    // What the client had buffered was not a whole update; the stream ends
    // in an error.
    let r = tokio::time::timeout(Duration::from_secs(10), stalled.message())
        .await
        .expect("the stream ends");
    assert!(r.is_err(), "{r:?}");
    gw.stop().await;
}

#[tokio::test]
async fn every_watcher_sends_the_same_encoded_bytes_for_a_version() {
    let hub = common::hub(common::small());
    hub.tick();
    let a = hub.snapshot_encoded();
    let b = hub.snapshot_encoded();
    assert_eq!(a.frame.as_ptr(), b.frame.as_ptr(), "one snapshot encoding");
    assert_eq!(a.decode().unwrap(), hub.snapshot());
    let mut r1 = hub.subscribe();
    let mut r2 = hub.subscribe();
    hub.tick();
    let (d1, d2) = (r1.try_recv().unwrap(), r2.try_recv().unwrap());
    assert_eq!(d1.frame.as_ptr(), d2.frame.as_ptr(), "one delta encoding");
    let delta = d1.decode().unwrap();
    assert_eq!(delta.version, a.version + 1);
    assert!(!delta.snapshot);
    // A new version is a new snapshot.
    assert_eq!(hub.snapshot_encoded().version, delta.version);
}
