//! The non-interactive commands as a script or a person runs them.

use std::path::PathBuf;
use std::process::{Command, Output};

fn home(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wr-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("warroom")).unwrap();
    d
}

fn warroom(home: &PathBuf, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warroom"))
        .args(args)
        .env("XDG_CONFIG_HOME", home)
        .env("XDG_STATE_HOME", home)
        .env_remove("WARROOM_GATEWAY")
        .env_remove("WARROOM_CONFIG")
        .env_remove("NO_COLOR")
        .output()
        .expect("warroom runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn snapshot_prints_the_screen_as_plain_text() {
    let h = home("snap");
    let out = warroom(
        &h,
        &[
            "snapshot", "--skip", "10", "--width", "120", "--height", "40",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for panel in [
        "SIMULATED",
        "Service health",
        "Inbound queue",
        "Reindex",
        "Tenants 2,000",
        "T+10h",
    ] {
        assert!(s.contains(panel), "{panel} missing:\n{s}");
    }
    assert!(!s.contains('\x1b'), "no escape codes in a snapshot");
    assert_eq!(s.lines().count(), 40);
    assert!(s.lines().all(|l| l.chars().count() <= 120));
}

#[test]
fn snapshot_of_an_unreachable_gateway_fails_clearly() {
    let h = home("snapdown");
    let out = warroom(&h, &["snapshot", "--gateway", "http://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("gateway unreachable"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn info_prints_every_path_in_use() {
    let h = home("info");
    std::fs::write(h.join("warroom/config.toml"), "keymap = \"emacs\"\n").unwrap();
    let out = warroom(&h, &["info"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let cfg = h.join("warroom/config.toml");
    assert!(
        s.contains(&format!("config file:  {}", cfg.display())),
        "{s}"
    );
    assert!(
        s.contains("keymap file:") && s.contains("(not present)"),
        "{s}"
    );
    assert!(s.contains("keymap:       emacs"), "{s}");
    assert!(s.contains("log file:") && s.contains("state dir:"), "{s}");
    assert!(s.contains("embedded demo"), "{s}");
}

#[test]
fn invalid_config_is_refused_with_its_location() {
    let h = home("badcfg");
    std::fs::write(
        h.join("warroom/config.toml"),
        "theme = \"dark\"\nthemes = 1\n",
    )
    .unwrap();
    let out = warroom(&h, &["info"]);
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out.stderr);
    assert!(e.contains("config.toml:2:1: unknown field `themes`"), "{e}");
}

#[test]
fn keymap_check_accepts_good_files_and_locates_errors() {
    let h = home("kcheck");
    let good = h.join("good.toml");
    std::fs::write(&good, "[global]\nquit = [\"ctrl-q\"]\n").unwrap();
    let out = warroom(&h, &["keymap", "check", good.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(text(&out.stdout).ends_with(": ok\n"));

    let bad = h.join("bad.toml");
    std::fs::write(&bad, "[global]\nquit = [\"ctrl-q\"]\nhelp = [\"ctrl-q\"]\n").unwrap();
    let out = warroom(&h, &["keymap", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(
        e.contains("bad.toml:3:9: key ctrl-q is bound to both"),
        "{e}"
    );

    let out = warroom(&h, &["keymap", "show", "vim"]);
    assert!(text(&out.stdout).contains("[overview]"));
}

#[test]
fn bad_flags_get_a_clear_error() {
    let h = home("flags");
    for args in [
        &["--speed", "-3"][..],
        &["--tick-ms", "5"],
        &["--bogus"],
        &["--tenants", "lots"],
    ] {
        let out = warroom(&h, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let e = text(&out.stderr);
        assert!(
            e.contains("error:") || e.contains("warroom:"),
            "{args:?}: {e}"
        );
    }
    let out = warroom(&h, &["--seed", "7", "gateway"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("put options after the command name"));
    let out = warroom(&h, &["snapshot", "--speed", "100000", "--tick-ms", "60000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("at most one day"),
        "{}",
        text(&out.stderr)
    );
    let out = warroom(&h, &["snapshot", "--gateway", "https://example.invalid:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no TLS"),
        "{}",
        text(&out.stderr)
    );
    let out = warroom(&h, &["snapshot", "--tenants", "10", "--mailboxes", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--mailboxes (5) must be at least --tenants (10)"));
}
