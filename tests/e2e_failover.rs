//! Two gateway replicas (the real binary, each on its own state file) and
//! a console in tmux given both (`--gateway A,B`): the first is killed
//! with `kill -9`; the console moves to the second by itself, says which
//! replica it is on, and keeps the screen it was on. A one-shot command
//! given a dead gateway first answers from the next.
//!
//! The time the move takes is printed, not asserted to the second (shared
//! machines); `examples/failover.rs` measures it (docs/performance.md).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed run

mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::tmux::{Session, free_port, spawn_gateway, wait_listening};

/// A gateway replica on `port`, its state in a directory of its own.
fn replica(dir: &std::path::Path, port: u16) -> Child {
    let data = dir.join(format!("gw-{port}"));
    std::fs::create_dir_all(&data).unwrap();
    spawn_gateway(port, &data, &["--page-listen", "127.0.0.1:0"], &[])
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux: ./scripts/test runs it"
)]
#[test]
fn the_console_moves_to_the_next_replica_when_its_gateway_dies_and_keeps_its_screen() {
    let dir = std::env::temp_dir().join(format!("wr-failover-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (free_port(), free_port());
    let mut gw_a = replica(&dir, a);
    let mut gw_b = replica(&dir, b);
    wait_listening(a);
    wait_listening(b);
    let cmd = format!(
        "XDG_STATE_HOME={d} XDG_CONFIG_HOME={d} {} --gateway http://127.0.0.1:{a},http://127.0.0.1:{b}; echo EXITED; sleep 30",
        env!("CARGO_BIN_EXE_warroom"),
        d = dir.display()
    );
    let s = Session::start(
        &format!("wr-failover-{}", std::process::id()),
        &dir,
        120,
        40,
        &cmd,
    );
    let ten = Duration::from_secs(10);
    let on_a = format!("via 127.0.0.1:{a}");
    let on_b = format!("via 127.0.0.1:{b}");
    s.wait(
        |x| x.contains("● LIVE") && x.contains("Tenants 200") && x.contains(&on_a),
        "live on the first replica, saying so",
        ten,
    );
    // A tenant's drill-down open: the screen that must survive the move.
    s.run(&["send-keys", "-t", "w", "Enter"]);
    let before = s.wait(
        |x| x.contains("Mailboxes ·") && x.contains('@'),
        "the drill-down open",
        ten,
    );
    // The drill-down's title: "Acme Title & Escrow (t00000)".
    let title = before
        .lines()
        .find(|l| l.trim_end().ends_with(')') && l.contains("(t0"))
        .unwrap()
        .trim()
        .to_string();

    let killed = Instant::now();
    gw_a.kill().unwrap(); // SIGKILL: no goodbye on the stream
    gw_a.wait().unwrap();
    let after = s.wait(
        |x| x.contains(&on_b) && x.contains("● LIVE"),
        "live on the second replica, saying so",
        ten,
    );
    let took = killed.elapsed();
    eprintln!("the console showed the second replica live {took:?} after kill -9 of the first");
    assert!(!after.contains(&on_a), "{after}");
    assert!(
        after.contains(&format!("gateway 127.0.0.1:{a} lost: now on 127.0.0.1:{b}")),
        "the move is said, not called a restart:\n{after}"
    );
    assert!(!after.contains("restarted"), "{after}");
    assert!(
        after.contains(&title),
        "the drill-down stays open on the same tenant ({title}):\n{after}"
    );
    assert!(!after.contains("EXITED"), "{after}");
    // Its mailboxes come from the new replica now.
    s.wait(
        |x| x.contains(&title) && x.contains('@') && !x.contains("DISCONNECTED"),
        "the drill-down's mailboxes from the second replica",
        ten,
    );
    s.run(&["send-keys", "-t", "w", "q"]);
    s.wait(|x| x.contains("EXITED"), "the console quit", ten);
    gw_b.kill().unwrap();
    let _ = gw_b.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs the gateway binary: ./scripts/test runs it"
)]
#[test]
fn a_command_given_a_dead_gateway_first_answers_from_the_next() {
    let dir = std::env::temp_dir().join(format!("wr-failover-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (dead, live) = (free_port(), free_port());
    let mut gw = replica(&dir, live);
    wait_listening(live);
    let run = |args: &[&str], gateways: &str| {
        Command::new(env!("CARGO_BIN_EXE_warroom"))
            .args(args)
            .args(["--gateway", gateways])
            .env("XDG_CONFIG_HOME", &dir)
            .env("XDG_STATE_HOME", &dir)
            .env_remove("WARROOM_GATEWAY")
            .env_remove("WARROOM_CONFIG")
            .output()
            .unwrap()
    };
    let both = format!("http://127.0.0.1:{dead}, http://127.0.0.1:{live}");
    let lookup = |gateways: &str| run(&["lookup", "t00000"], gateways);
    let out = lookup(&both);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("t00000"), "{said}");
    // `info` lists both and asks the one that answers.
    let out = run(&["info"], &both);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "gateway:      http://127.0.0.1:{dead}, http://127.0.0.1:{live}"
        )),
        "{said}"
    );
    assert!(said.contains("gateway role: single"), "{said}");
    // The dead one alone: a clear failure, no answer made up.
    let out = lookup(&format!("http://127.0.0.1:{dead}"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unreachable"), "{err}");
    gw.kill().unwrap();
    let _ = gw.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
