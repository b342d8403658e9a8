//! How long a console takes to move to another gateway replica when its
//! own dies: two `warroom gateway` processes on loopback (each on its own
//! state file), the console's client (`GatewayClient` with both URLs and
//! the console's own Watch task, `client::watch_forever`), and R rounds of
//! `kill -9` of the replica it is on. Each round times from the kill to the
//! first Watch update from the other replica reaching the console's event
//! channel (the UI loop draws it at once: a replica change is urgent), then
//! starts the killed replica again for the next round. Figures:
//! docs/performance.md.
//!
//!     cargo build --release && cargo run --release --example failover -- \
//!         [--rounds 20] [--bin target/release/warroom]
//!
//! Loopback only; the gateways run a small simulation (200 tenants).

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use warroom::client::{ClientEvent, GatewayClient, watch_forever};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(bin: &str, port: u16, dir: &std::path::Path) -> Child {
    let data = dir.join(format!("gw-{port}"));
    std::fs::create_dir_all(&data).unwrap();
    let child = Command::new(bin)
        .args(["gateway", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--page-listen", "127.0.0.1:0"])
        .args(["--tenants", "200", "--mailboxes", "5000"])
        .env("WARROOM_LOG", "error")
        .env("XDG_DATA_HOME", &data)
        .env("XDG_CONFIG_HOME", &data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e} (build it first, or give --bin)"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "gateway on {port} never listened"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let rounds: usize = arg("--rounds").map_or(20, |r| r.parse().unwrap());
    let bin = arg("--bin").unwrap_or_else(|| {
        if std::path::Path::new("target/release/warroom").exists() {
            "target/release/warroom".into()
        } else {
            "target/debug/warroom".into()
        }
    });
    let dir = std::env::temp_dir().join(format!("wr-failover-bench-{}", std::process::id()));
    let ports = [free_port(), free_port()];
    let mut gateways = [spawn(&bin, ports[0], &dir), spawn(&bin, ports[1], &dir)];
    let urls = format!(
        "http://127.0.0.1:{},http://127.0.0.1:{}",
        ports[0], ports[1]
    );
    let client = GatewayClient::new(&urls).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let watch = tokio::spawn(watch_forever(client.clone(), tx, Default::default()));
    // Until the first update: the console is live on the first replica.
    while !matches!(rx.recv().await, Some(ClientEvent::Update(_))) {}
    let mut took = Vec::new();
    for round in 1..=rounds {
        let on = client.current();
        let killed = Instant::now();
        gateways[on].kill().unwrap(); // SIGKILL
        gateways[on].wait().unwrap();
        let other = format!("127.0.0.1:{}", ports[1 - on]);
        let mut moved = false;
        let t = loop {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some(ClientEvent::Via(v))) => moved = v == other,
                Ok(Some(ClientEvent::Update(_))) if moved => break killed.elapsed(),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => panic!("round {round}: no update from {other} within 30 s"),
            }
        };
        println!(
            "round {round}: on {other} {:.0} ms after kill -9",
            t.as_secs_f64() * 1e3
        );
        took.push(t);
        gateways[on] = spawn(&bin, ports[on], &dir);
    }
    watch.abort();
    for g in &mut gateways {
        let _ = g.kill();
        let _ = g.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "failover over {} rounds: p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms (goal: under 2,000 ms)",
        took.len(),
        ms(percentile(&took, 0.5)),
        ms(percentile(&took, 0.9)),
        ms(*took.last().unwrap())
    );
}
