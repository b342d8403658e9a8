//! A stock gRPC client (Python grpcio, reflection only — it has no copy of
//! the .proto) calls Watch and pages through tenants and mailboxes.
//! scripts/test installs grpcio, grpcio-reflection and protobuf.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

mod common;

use std::time::Duration;

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Python grpcio: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_with_reflection_only_can_watch_and_page() {
    let gw = common::gateway(common::small()).await;
    for _ in 0..240 {
        gw.hub.tick(); // four simulated hours
    }
    // Keep ticking so the client sees a change after its snapshot.
    let hub = gw.hub.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            hub.tick();
        }
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/stock_client.py");
    let addr = gw.addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .arg(addr)
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    ticker.abort();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stock client failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let get = |k: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} missing in:\n{stdout}"))
            .to_string()
    };
    let num = |k: &str| -> u64 {
        get(k)
            .parse()
            .unwrap_or_else(|_| panic!("{k} not a number"))
    };
    assert!(
        get("services").contains("\"warroom.v1.WarRoom\""),
        "{stdout}"
    );
    assert_eq!(get("first_snapshot"), "true");
    assert_eq!(get("second_snapshot"), "false");
    assert!(num("second_version") > num("first_version"));
    assert_eq!(num("snapshot_tenants"), 200);
    assert_eq!(num("listed_tenants"), 200);
    assert_eq!(num("unique_tenants"), 200);
    assert!(num("listed_mailboxes") > 0);
    assert_eq!(num("listed_mailboxes"), num("tenant_not_ok"));
    assert_eq!(num("unique_mailboxes"), num("listed_mailboxes"));
    gw.stop().await;
}

/// stock_client.py against `addr` with `args` after it (a CA, a client
/// certificate and key).
async fn stock_client(addr: String, args: Vec<std::path::PathBuf>) -> std::process::Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/stock_client.py");
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .arg(addr)
            .args(args)
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap()
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Python grpcio: ./scripts/test runs it"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_over_tls_with_the_test_ca_and_a_client_certificate_can_watch_and_page() {
    let pki = common::TestPki::new("grpcio");
    let gw = common::serve_tls(
        common::hub(common::small()),
        pki.server_tls(true),
        warroom::gateway::Limits::default(),
    )
    .await;
    for _ in 0..240 {
        gw.hub.tick();
    }
    let hub = gw.hub.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            hub.tick();
        }
    });
    // The name in the certificate: localhost (and 127.0.0.1).
    let addr = format!("localhost:{}", gw.addr.port());
    let out = stock_client(
        addr.clone(),
        vec![
            pki.ca.clone(),
            pki.client_cert.clone(),
            pki.client_key.clone(),
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "stock client over TLS failed: {stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("first_snapshot=true"), "{stdout}");
    assert!(stdout.contains("snapshot_tenants=200"), "{stdout}");

    // Without TLS: grpcio shows the gateway's words.
    let out = stock_client(gw.addr.to_string(), vec![]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("the gateway speaks TLS: use https://{}", gw.addr)),
        "{stderr}"
    );
    // Another CA: refused.
    let out = stock_client(addr, vec![pki.other_ca.clone()]).await;
    assert!(!out.status.success(), "a wrong CA must not connect");
    ticker.abort();
    gw.stop().await;
}
