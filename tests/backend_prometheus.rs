//! The Prometheus adapter against REAL daemons: a private Postfix 3.7, the
//! prometheus-postfix-exporter reading its showq socket and maillog, and a
//! Prometheus 2.42 scraping the exporter every second, all on 127.0.0.1
//! under one temp dir. Needs root (for Postfix) and the Debian packages
//! `postfix`, `prometheus-postfix-exporter` and `prometheus`.
//!
//! The error cases that need no daemon (closed port, a listener that never
//! answers, a server that answers nonsense) run as separate tests.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

#[path = "fixtures/backends/daemons.rs"]
mod daemons;
#[path = "fixtures/ports.rs"]
mod ports;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use chrono::Utc;
use daemons::{ChildGuard, Postfix, TempDir, daily_load, free_port, prometheus_with_history};
use warroom::sources::postfix::{Postqueue, counts};
use warroom::sources::prometheus::{PromError, Prometheus, Sample, queries};

/// Messages seeded into the queue.
const N: u64 = 7;

fn by_queue(samples: &[Sample]) -> BTreeMap<String, f64> {
    samples
        .iter()
        .filter_map(|s| s.labels.get("queue").map(|q| (q.clone(), s.value)))
        .collect()
}

/// Polls QUEUE_DEPTH_BY_QUEUE until `done` holds, or panics after `limit`
/// with the last answer and the daemons' logs.
async fn wait_for_depth(
    prom: &Prometheus,
    limit: Duration,
    what: &str,
    daemons: &mut [&mut ChildGuard],
    done: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + limit;
    loop {
        for d in daemons.iter_mut() {
            d.assert_running();
        }
        let last = prom.query(queries::QUEUE_DEPTH_BY_QUEUE).await;
        if let Ok(samples) = &last {
            let depth = by_queue(samples);
            if done(&depth) {
                return depth;
            }
        }
        if Instant::now() >= deadline {
            let logs: Vec<String> = daemons
                .iter()
                .map(|d| format!("--- {} log:\n{}", d.name, d.log_tail()))
                .collect();
            panic!(
                "waited {limit:?} for {what}; last answer: {last:?}\n{}",
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Postfix, its exporter and Prometheus: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_reports_the_postfix_queue() {
    // Postfix with N deferred messages. Guards are declared in start order, so
    // they drop (stop) in reverse: Prometheus, the exporter, then Postfix.
    let pf = Postfix::start();
    for i in 0..N {
        let domain = ["acme.test", "globex.test", "initech.test"][(i % 3) as usize];
        pf.sendmail(
            "ops@warroom.test",
            &[&format!("user{i}@{domain}")],
            "queued",
        );
    }
    let pq =
        Postqueue::new(pf.postqueue_command(), Duration::from_secs(10)).expect("valid command");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = pq.poll().await.map(|m| counts(&m));
        if matches!(&c, Ok(c) if c.deferred == N) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Postfix did not defer {N} messages in 20 s: {c:?}\n{}",
            daemons::tail(&pf.maillog, 4000)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The exporter, and Prometheus scraping it every second.
    let mut stack = daemons::PromStack::start(&pf, &[]);
    let prom = Prometheus::new(&stack.url(), Duration::from_secs(5)).expect("valid URL");

    // The first sample arrives ~6 s after start.
    let depth = wait_for_depth(
        &prom,
        Duration::from_secs(30),
        "the deferred queue to reach N",
        &mut [&mut stack.exporter, &mut stack.prometheus],
        |d| d.get("deferred") == Some(&(N as f64)),
    )
    .await;
    for q in ["active", "hold", "incoming", "maildrop"] {
        assert_eq!(depth.get(q), Some(&0.0), "queue {q} in {depth:?}");
    }

    // One-value queries.
    assert_eq!(prom.scalar(queries::DEFERRED_DEPTH).await, Ok(N as f64));
    assert_eq!(prom.scalar(queries::QUEUE_DEPTH_TOTAL).await, Ok(N as f64));
    assert_eq!(prom.scalar(queries::POSTFIX_UP).await, Ok(1.0));
    let up = prom.query(queries::TARGETS_UP).await.expect("up");
    assert!(
        up.iter()
            .any(|s| s.labels.get("job").map(String::as_str) == Some("postfix") && s.value == 1.0),
        "the exporter target is up: {up:?}"
    );
    assert_eq!(prom.query(queries::TARGETS_DOWN).await, Ok(vec![]));

    // Every default query is valid PromQL for this Prometheus.
    for (name, q) in queries::ALL {
        let answer = prom.query(q).await;
        assert!(answer.is_ok(), "{name} = {q}: {answer:?}");
    }

    // A range query: the deferred series ends at N, points in time order.
    let end = Utc::now();
    let series = prom
        .query_range(
            queries::QUEUE_DEPTH_BY_QUEUE,
            end - chrono::Duration::seconds(20),
            end,
            Duration::from_secs(1),
        )
        .await
        .expect("range query");
    let (_, points) = series
        .iter()
        .find(|(l, _)| l.get("queue").map(String::as_str) == Some("deferred"))
        .unwrap_or_else(|| panic!("no deferred series in {series:?}"));
    assert!(!points.is_empty());
    assert!(points.windows(2).all(|w| w[0].0 < w[1].0), "{points:?}");
    assert_eq!(points.last().map(|p| p.1), Some(N as f64), "{points:?}");
    let zero_step = prom
        .query_range(
            queries::TARGETS_UP,
            end - chrono::Duration::seconds(10),
            end,
            Duration::ZERO,
        )
        .await;
    assert!(
        matches!(zero_step, Err(PromError::BadData(_))),
        "{zero_step:?}"
    );

    // Errors and odd values, from the real server.
    match prom.query("this is not promql").await {
        Err(PromError::BadData(m)) => assert!(m.contains("parse error"), "{m}"),
        other => panic!("expected BadData, got {other:?}"),
    }
    assert_eq!(
        prom.scalar("postfix_showq_message_age_seconds_count{queue=\"no-such-queue\"}")
            .await,
        Err(PromError::Empty)
    );
    assert_eq!(prom.scalar("1/0").await, Ok(f64::INFINITY));
    assert_eq!(prom.scalar("-1/0").await, Ok(f64::NEG_INFINITY));
    assert!(prom.scalar("0/0").await.is_ok_and(f64::is_nan));
    assert!(
        matches!(prom.scalar(queries::QUEUE_DEPTH_BY_QUEUE).await, Err(PromError::Garbage(ref m)) if m.contains("5 samples")),
        "several samples are not one value"
    );
    assert!(matches!(
        prom.query("postfix_up[1m]").await,
        Err(PromError::Garbage(_))
    ));

    // The numbers follow the queue: put everything on hold.
    pf.postsuper(&["-h", "ALL"]);
    wait_for_depth(
        &prom,
        Duration::from_secs(15),
        "the held queue to reach N",
        &mut [&mut stack.exporter, &mut stack.prometheus],
        |d| d.get("hold") == Some(&(N as f64)) && d.get("deferred") == Some(&0.0),
    )
    .await;
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Prometheus and promtool: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_gives_a_weeks_traffic_by_quarter_hour() {
    let dir = TempDir::new("prom-traffic");
    let now = Utc::now();
    let (mut prometheus, url) = prometheus_with_history(&dir, now);
    let prom = Prometheus::new(&url, Duration::from_secs(10)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let typical = loop {
        prometheus.assert_running();
        match prom.traffic("platform_load", now).await {
            Ok(t) => break t,
            Err(e) if Instant::now() >= deadline => {
                panic!("no traffic after 30 s: {e}\n{}", prometheus.log_tail())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    // Each quarter hour of the day is that quarter's load, the 09:00 peak
    // where it is and the night quiet.
    let midnight = now.date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    for (q, load) in typical.iter().enumerate() {
        let mid = midnight + chrono::Duration::seconds(q as i64 * 900 + 450);
        assert!(
            (load - daily_load(mid)).abs() < 0.03,
            "quarter {q}: {load} where the history says {}",
            daily_load(mid)
        );
    }
    assert!(typical[36] > 1.1 && typical[8] < 0.3, "{typical:?}");
    // One load is wanted: two series say so, less than a day says how much
    // there is, and a query with no data is empty.
    let two = prom.traffic("disk_load", now).await.unwrap_err();
    assert!(
        matches!(&two, PromError::Garbage(m) if m.contains("2 series")),
        "{two:?}"
    );
    let short = prom.traffic("short_load", now).await.unwrap_err();
    assert!(
        matches!(&short, PromError::History(m) if m.contains("covers 4") && m.contains("of the day's 96")),
        "{short:?}"
    );
    assert_eq!(
        prom.traffic("no_such_load", now).await,
        Err(PromError::Empty)
    );
}

#[tokio::test]
async fn closed_port_is_unreachable() {
    let port = free_port();
    let prom = Prometheus::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5))
        .expect("valid URL");
    match prom.query(queries::TARGETS_UP).await {
        Err(PromError::Unreachable(m)) => assert!(!m.is_empty()),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(matches!(
        prom.scalar(queries::TARGETS_UP).await,
        Err(PromError::Unreachable(_))
    ));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // The kernel completes the handshake; nobody ever reads or writes.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let prom =
        Prometheus::new(&format!("http://{addr}"), Duration::from_millis(300)).expect("valid URL");
    assert_eq!(
        prom.query(queries::TARGETS_UP).await,
        Err(PromError::Timeout)
    );
    let end = Utc::now();
    assert_eq!(
        prom.query_range(
            queries::TARGETS_UP,
            end - chrono::Duration::seconds(60),
            end,
            Duration::from_secs(15)
        )
        .await,
        Err(PromError::Timeout)
    );
    drop(listener);
}

/// Serves each canned HTTP response to one connection, in order.
fn canned_server(responses: Vec<String>) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let handle = std::thread::spawn(move || {
        for response in responses {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            // Read the request head.
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (format!("http://{addr}"), handle)
}

fn http(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn nonsense_answers_are_errors_not_panics() {
    let (url, server) = canned_server(vec![
        http("200 OK", "text/html", "<html>Please log in</html>"),
        http("502 Bad Gateway", "text/plain", "upstream unavailable"),
        http(
            "503 Service Unavailable",
            "application/json",
            r#"{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}"#,
        ),
        http(
            "200 OK",
            "application/json",
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"lots"]}]}}"#,
        ),
        http(
            "200 OK",
            "application/json",
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"q":"x"},"value":[1795985925.885,"NaN"]}]}}"#,
        ),
        // A connection closed without any answer.
        String::new(),
    ]);
    let prom = Prometheus::new(&url, Duration::from_secs(5)).expect("valid URL");
    assert!(
        matches!(prom.query("up").await, Err(PromError::Garbage(m)) if m.contains("Please log in"))
    );
    assert_eq!(
        prom.query("up").await,
        Err(PromError::Http(502, "upstream unavailable".into()))
    );
    assert_eq!(
        prom.query("up").await,
        Err(PromError::Http(
            503,
            "timeout: query timed out in expression evaluation".into()
        ))
    );
    assert!(matches!(prom.query("up").await, Err(PromError::Garbage(m)) if m.contains("lots")));
    assert!(prom.scalar("up").await.is_ok_and(f64::is_nan));
    assert!(matches!(
        prom.query("up").await,
        Err(PromError::Unreachable(_))
    ));
    let _ = server.join();
}
