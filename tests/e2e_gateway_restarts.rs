//! The gateway is killed and restarted 20 times under one console session
//! (the real binaries, the console in tmux): the console never exits, shows
//! the last data marked stale while the gateway is down, and is live again
//! soon after each return. Reconnect times are printed; the target
//! is 2 s, the assertion is looser (10 s) because CI machines are shared.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

mod common;

use std::time::Duration;

use common::tmux::{Session, free_port, spawn_gateway, wait_listening};

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux: ./scripts/test runs it"
)]
#[test]
fn console_survives_twenty_gateway_restarts() {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("wr-restarts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gateway = |port| spawn_gateway(port, &dir, &[], &[]);
    let mut gw = gateway(port);
    wait_listening(port);
    let cmd = format!(
        "XDG_STATE_HOME={d} XDG_CONFIG_HOME={d} {} --gateway http://127.0.0.1:{port}; echo EXITED; sleep 30",
        env!("CARGO_BIN_EXE_warroom"),
        d = dir.display()
    );
    let s = Session::start(
        &format!("wr-restarts-{}", std::process::id()),
        &dir,
        120,
        40,
        &cmd,
    );
    let ten = Duration::from_secs(10);
    let live = |x: &str| x.contains("● LIVE") && x.contains("Tenants 200");
    s.wait(live, "live at start", ten);
    let mut worst = Duration::ZERO;
    for round in 1..=20 {
        gw.kill().unwrap();
        gw.wait().unwrap();
        // A frame reaches tmux in more than one read: wait for the whole
        // of it (the header and the stale panels), not its first bytes.
        let down = s.wait(
            |x| x.contains("DISCONNECTED") && x.contains("(STALE)"),
            &format!("round {round}: disconnected, panels marked stale"),
            ten,
        );
        assert!(
            down.contains("Tenants 200"),
            "round {round}: last data kept:\n{down}"
        );
        assert!(
            !down.contains("EXITED"),
            "round {round}: the console exited"
        );
        gw = gateway(port);
        let back = wait_listening(port);
        s.wait(
            |x| live(x) && !x.contains("DISCONNECTED"),
            "live again",
            ten,
        );
        let took = back.elapsed();
        worst = worst.max(took);
        eprintln!("round {round}: live again {took:?} after the gateway listened");
        assert!(took < Duration::from_secs(10), "round {round}: {took:?}");
    }
    eprintln!("worst reconnect after a gateway restart: {worst:?}");
    gw.kill().unwrap();
    let _ = gw.wait();
}
