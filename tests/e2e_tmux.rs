//! The real binary in a real terminal (tmux): the demo starts, fills every
//! panel from its embedded gateway, opens a tenant, shows help, and quits
//! with exit code 0, leaving the terminal restored.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::tmux::Session as Tmux;

fn start(width: u16, height: u16, tag: &str) -> (Tmux, PathBuf) {
    start_with(width, height, tag, None, "", "")
}

/// Starts the demo in tmux with its own XDG dirs (so the developer's own
/// config never leaks in), an optional user keymap, and extra arguments.
fn start_with(
    width: u16,
    height: u16,
    tag: &str,
    keymap: Option<&str>,
    args: &str,
    env: &str,
) -> (Tmux, PathBuf) {
    let dir = std::env::temp_dir().join(format!("wr-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("warroom")).unwrap();
    if let Some(k) = keymap {
        std::fs::write(dir.join("warroom/keymap.toml"), k).unwrap();
    }
    let exit_file = dir.join("exit");
    let _ = std::fs::remove_file(&exit_file);
    let cmd = format!(
        "{env} XDG_STATE_HOME={d} XDG_CONFIG_HOME={d} {} {args}; echo $? > {}",
        env!("CARGO_BIN_EXE_warroom"),
        exit_file.display(),
        d = dir.display(),
    );
    let t = Tmux::start(
        &format!("warroom-e2e-{tag}-{}", std::process::id()),
        &dir,
        width,
        height,
        &format!("{cmd}; sleep 30"),
    );
    (t, exit_file)
}

/// Waits for the console's exit code; on a time-out, shows the screen it
/// was stuck on.
fn wait_exit(t: &Tmux, exit_file: &PathBuf) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = std::fs::read_to_string(exit_file) {
            return s.trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "warroom did not exit; screen:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux: ./scripts/test runs it"
)]
#[test]
fn demo_fills_every_panel_navigates_and_quits_cleanly() {
    let (t, exit_file) = start(120, 40, "wide");
    let s = t.wait_for(&[
        "SIMULATED",
        "LIVE",
        "Service health",
        "Inbound queue",
        "Reindex",
        "Tenants 2,000",
    ]);
    assert!(s.contains("imap") && s.contains("Cluster B"), "{s}");
    t.keys(&["Enter"]);
    t.wait_for(&["Mailboxes ·", "@"]);
    t.keys(&["Escape"]);
    t.wait_for(&["Service health"]);
    t.keys(&["?"]);
    t.wait_for(&["any key closes", "quit"]);
    t.keys(&["Escape"]);
    // An Esc and a q in one read are Alt-q to the terminal: the q only
    // once the help is gone.
    t.wait(
        |s| !s.contains("any key closes"),
        "the help closed",
        Duration::from_secs(10),
    );
    t.keys(&["q"]);
    assert_eq!(wait_exit(&t, &exit_file), "0");
    // The alternate screen is gone: the shell's screen is back.
    let s = t.screen();
    assert!(!s.contains("Service health"), "terminal not restored:\n{s}");
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux: ./scripts/test runs it"
)]
#[test]
fn demo_is_readable_at_80x24() {
    let (t, exit_file) = start(80, 24, "small");
    t.wait_for(&[
        "SIMULATED",
        "LIVE",
        "Service health",
        "Inbound queue",
        "Reindex",
        "Tenants",
    ]);
    t.keys(&["q"]);
    assert_eq!(wait_exit(&t, &exit_file), "0");
}

/// Every shipped drill runs interactively: the demo of each scenario fills
/// its panels, opens a tenant and quits cleanly.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux: ./scripts/test runs it"
)]
#[test]
fn the_demo_runs_each_shipped_scenario() {
    for (name, title, tenants) in [
        ("cluster-a-2008", "Cluster A: mailbox", "Tenants 2,000"),
        (
            "small-fast-fault",
            "Cluster A: storage went read-only",
            "Tenants 600",
        ),
        (
            "slow-second-fault",
            "Cluster C: index corruption",
            "Tenants 3,000",
        ),
    ] {
        let args = format!("--scenario {name} --skip 2");
        let (t, exit_file) = start_with(120, 40, &format!("sc-{name}"), None, &args, "");
        t.wait_for(&["SIMULATED", "LIVE", title, "Reindex", tenants]);
        t.keys(&["Enter"]);
        t.wait_for(&["Mailboxes ·"]);
        t.keys(&["Escape"]);
        t.wait_for(&["Service health"]);
        t.keys(&["q"]);
        assert_eq!(wait_exit(&t, &exit_file), "0", "{name}");
    }
}

/// The warroom process running in the tmux pane (a child of the pane's sh).
fn warroom_pid(t: &Tmux) -> String {
    let sh = t.run(&["display", "-p", "-t", "w", "#{pane_pid}"]);
    let out = Command::new("pgrep")
        .args(["-P", sh.trim(), "warroom"])
        .output()
        .expect("pgrep");
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!pid.is_empty(), "warroom is running under sh {sh}");
    pid
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux: ./scripts/test runs it"
)]
#[test]
fn sigterm_and_sighup_restore_the_terminal() {
    for (sig, tag) in [("-TERM", "term"), ("-HUP", "hup")] {
        let (t, exit_file) = start(100, 30, tag);
        t.wait_for(&["SIMULATED", "Tenants"]);
        let pid = warroom_pid(&t);
        let ok = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(ok.success());
        assert_eq!(wait_exit(&t, &exit_file), "0", "{sig}");
        let s = t.screen();
        assert!(
            !s.contains("Service health"),
            "{sig}: terminal not restored:\n{s}"
        );
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux: ./scripts/test runs it"
)]
#[test]
fn a_user_keymap_rebinds_quit_and_help_shows_it() {
    let (t, exit_file) = start_with(
        120,
        40,
        "keymap",
        Some("[global]\nquit = [\"ctrl-q\"]\n"),
        "",
        "",
    );
    t.wait_for(&["SIMULATED", "Tenants", "ctrl-q quit"]);
    t.keys(&["?"]);
    let s = t.wait_for(&["any key closes"]);
    assert!(s.contains("ctrl-q"), "help shows the remapped key:\n{s}");
    t.keys(&["Escape"]);
    t.wait(
        |s| !s.contains("any key closes"),
        "the help closed",
        Duration::from_secs(10),
    );
    t.keys(&["q"]); // no longer quits
    std::thread::sleep(Duration::from_millis(500));
    assert!(!exit_file.exists(), "q should not quit any more");
    t.keys(&["C-q"]);
    assert_eq!(wait_exit(&t, &exit_file), "0");
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux: ./scripts/test runs it"
)]
#[test]
fn an_invalid_user_keymap_is_reported_with_its_location_and_the_console_still_runs() {
    let (t, exit_file) = start_with(
        120,
        40,
        "badkeymap",
        Some("[overview]\ndown = [\"j\"]\nfly = [\"x\"]\n"),
        "",
        "",
    );
    t.wait_for(&[
        "SIMULATED",
        "Tenants",
        "using the default keymap:",
        "keymap.toml:3:1: unknown action",
    ]);
    t.keys(&["q"]);
    assert_eq!(wait_exit(&t, &exit_file), "0");
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux: ./scripts/test runs it"
)]
#[test]
fn palette_opens_a_tenant_by_domain() {
    let (t, exit_file) = start_with(120, 40, "palette", None, "", "");
    // The tenant list has arrived (its title comes first).
    t.wait_for(&["SIMULATED", "acme-title.com"]);
    t.keys(&[":"]);
    t.keys(&["-l", "ope"]);
    t.keys(&["Tab"]);
    t.keys(&["-l", "acme-title.com"]);
    t.keys(&["Enter"]);
    t.wait_for(&["Acme Title & Escrow (t00000)", "Mailboxes ·"]);
    t.keys(&[":"]);
    t.keys(&["-l", "nonsense"]);
    t.keys(&["Enter"]);
    t.wait_for(&["unknown command \"nonsense\""]);
    t.keys(&["q"]);
    assert_eq!(wait_exit(&t, &exit_file), "0");
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux: ./scripts/test runs it"
)]
#[test]
fn no_color_at_80x24_is_readable_and_writes_no_colour() {
    let (t, exit_file) = start_with(80, 24, "nocolor", None, "--skip 10", "NO_COLOR=1");
    t.wait_for(&[
        "SIMULATED",
        "LIVE",
        "Service health",
        "Inbound queue",
        "Reindex",
        "Tenants",
        "ETA",
    ]);
    // -e keeps the attributes tmux recorded: colours would show as 3x/4x/9x SGR.
    let styled = t.run(&["capture-pane", "-p", "-e", "-t", "w"]);
    let colours = common::colour_codes(&styled);
    assert!(
        colours.is_empty(),
        "colours {colours:?} on screen with NO_COLOR"
    );
    // The trends, drilled ten hours in: the gateway recorded them from the
    // start, and the key says which mark is which without colour.
    t.keys(&["C"]);
    t.wait_for(&[
        "Trends",
        "• p50",
        "▄ p90",
        "mailboxes without service",
        "-10h",
    ]);
    let styled = t.run(&["capture-pane", "-p", "-e", "-t", "w"]);
    let colours = common::colour_codes(&styled);
    assert!(colours.is_empty(), "colours {colours:?} on the trends");
    t.keys(&["Escape"]);
    t.wait_for(&["Tenants"]);
    t.keys(&["q"]);
    assert_eq!(wait_exit(&t, &exit_file), "0");
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux: ./scripts/test runs it"
)]
#[test]
fn lookup_updates_per_keystroke_opens_a_tenant_goes_back_and_copies() {
    let (t, exit_file) = start_with(120, 40, "lookup", None, "--skip 8", "");
    t.run(&["set", "-g", "set-clipboard", "on"]);
    t.wait_for(&["SIMULATED", "Tenants"]);
    t.keys(&["L"]);
    t.wait_for(&["Lookup: mailbox, domain or tenant"]);
    t.keys(&["-l", "acme-ti"]);
    // The title counts the matches once the search for what was typed
    // has answered (while it runs it says "searching…" over the last list).
    t.wait_for(&["acme-title.com", "Acme Title & Escrow", " matches"]);
    // One more keystroke narrows the answer.
    t.keys(&["-l", "tle.com"]);
    t.wait_for(&["acme-title.com▏", "say: \"Your"]);
    t.keys(&["C-y"]);
    t.wait_for(&["copied the answer"]);
    let clip = t.run(&["show-buffer"]);
    assert!(
        clip.starts_with("Your ") && clip.contains("expected back"),
        "{clip:?}"
    );
    t.keys(&["Enter"]);
    t.wait_for(&["Acme Title & Escrow (t00000)", "Mailboxes ·"]);
    t.keys(&["Escape"]);
    t.wait_for(&["Lookup: mailbox, domain or tenant", "acme-title.com▏"]);
    t.keys(&["Escape"]);
    t.wait_for(&["Service health", "Tenants"]);
    t.keys(&["q"]);
    assert_eq!(wait_exit(&t, &exit_file), "0");
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux: ./scripts/test runs it"
)]
#[test]
fn export_from_the_drill_down_writes_a_csv_with_every_affected_mailbox() {
    let (t, exit_file) = start_with(120, 40, "export", None, "--skip 8", "");
    // The tenant list has arrived (its title comes first).
    t.wait_for(&["SIMULATED", "acme-title.com"]);
    t.keys(&[":"]);
    t.keys(&["-l", "open acme-title.com"]);
    t.keys(&["Enter"]);
    let s = t.wait_for(&["Acme Title & Escrow (t00000)", "Mailboxes ·", "x export"]);
    let affected: u64 = s
        .lines()
        .find_map(|l| l.trim().split(" of ").next()?.replace(',', "").parse().ok())
        .expect("the summary says how many are affected");
    t.keys(&["x"]);
    let s = t.wait_for(&["exported", "affected now (not the restored) to"]);
    let dir = exit_file.parent().unwrap();
    let file = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".csv"))
        .unwrap_or_else(|| panic!("no CSV in {}:\n{s}", dir.display()));
    let csv = std::fs::read_to_string(&file).unwrap();
    let rows = csv.split("\r\n").filter(|l| !l.is_empty()).count() as u64 - 1;
    // The export is taken a moment after the screen: a mailbox or two may
    // have been restored in between (one simulated minute per second).
    assert!(
        rows <= affected && rows + 20 >= affected,
        "{rows} rows, {affected} affected"
    );
    t.keys(&["q"]);
    assert_eq!(wait_exit(&t, &exit_file), "0");
}

/// GET `url` (http://127.0.0.1:PORT/PATH) with a plain socket: the body.
fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(host).expect("status page reachable");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The acceptance run of the composer in the demo: an impossible time is
/// refused in the form and nothing is published; +2h previews, publishes
/// after a confirm, the header counts down, and the built-in page shows it.
/// A draft left in the composer is offered back by the next start.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux: ./scripts/test runs it"
)]
#[test]
fn compose_preview_publish_and_the_page_shows_it() {
    let (t, exit_file) = start_with(140, 40, "compose", None, "--skip 6", "");
    t.wait_for(&["SIMULATED", "● LIVE", "local user (admin)"]);
    t.keys(&["U"]);
    t.wait_for(&["Status update", "next update"]);
    t.keys(&["-l", "Mailbox access failing on Cluster A"]);
    t.keys(&["Tab"]);
    t.keys(&[
        "-l",
        "{affected_mailboxes} mailboxes cannot be opened; {restored_pct} are back.",
    ]);
    t.keys(&["Tab", "Tab"]);
    // The next-update field: "+1h" by default; make it impossible.
    t.keys(&["BSpace", "BSpace", "BSpace"]);
    t.keys(&["-l", "25:30"]);
    t.wait_for(&["25:30 is not a time of day"]);
    t.keys(&["C-p"]);
    std::thread::sleep(Duration::from_millis(500));
    let s = t.screen();
    assert!(
        !s.contains("── page"),
        "no preview for an impossible time:\n{s}"
    );
    for _ in 0..5 {
        t.keys(&["BSpace"]);
    }
    t.keys(&["-l", "+2h"]);
    t.wait_for(&["(in 2h 00m)"]);
    t.keys(&["C-p"]);
    let s = t.wait_for(&[
        "── page (the status page's words",
        "Next update by",
        "mailboxes cannot be opened",
    ]);
    // The preview (right half) has the figures where the form has placeholders.
    let filled = s.lines().filter_map(|l| l.split("││").nth(1)).any(|r| {
        r.split_whitespace()
            .next()
            .is_some_and(|w| w.replace(',', "").parse::<u64>().is_ok())
            && r.contains("mailboxes cannot be opened")
    });
    assert!(filled, "placeholders filled in the preview:\n{s}");
    let page_url = s
        .lines()
        .find_map(|l| l.split("status page: ").nth(1))
        .map(|u| {
            u.split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('│')
                .to_string()
        })
        .expect("the composer shows the status page's address");
    t.keys(&["Enter"]);
    t.wait_for(&["Publish to page now?"]);
    t.keys(&["y"]);
    t.wait_for(&["published su-000001", "next update in 1h 5"]);
    let html = http_get(&page_url);
    assert!(html.contains("200 OK"), "{html}");
    assert!(
        html.contains("Mailbox access failing on Cluster A"),
        "{html}"
    );
    assert!(html.contains("mailboxes cannot be opened"), "{html}");
    let feed = http_get(&format!("{page_url}feed.atom"));
    assert!(
        feed.contains("<entry>") && feed.contains("identified: Mailbox access"),
        "{feed}"
    );

    // A draft left open survives the console.
    t.keys(&["U"]);
    t.wait_for(&["Status update"]);
    t.keys(&["-l", "Queue draining"]);
    t.keys(&["Escape"]);
    t.wait_for(&["draft kept: U (or :publish) opens it again"]);
    t.keys(&["q"]);
    assert_eq!(wait_exit(&t, &exit_file), "0");
    let draft = std::fs::read_to_string(exit_file.parent().unwrap().join("warroom/draft.json"))
        .expect("draft saved in the XDG state dir");
    assert!(draft.contains("Queue draining"), "{draft}");
}

/// A panic in the console gives the terminal back: the alternate screen is
/// left, the shell's screen is readable, and the panic says what happened.
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux: ./scripts/test runs it"
)]
#[test]
fn a_panic_restores_the_terminal_and_says_why() {
    let (t, exit_file) = start_with(
        100,
        30,
        "panic",
        None,
        "",
        "RUST_BACKTRACE=0 WARROOM_DRILL_PANIC=1",
    );
    assert_eq!(wait_exit(&t, &exit_file), "101", "the panic exit code");
    let s = t.screen();
    assert!(
        s.contains("panicking on purpose after the first frame"),
        "{s}"
    );
    assert!(
        !s.contains("Service health") && !s.contains("SIMULATED"),
        "alternate screen left:\n{s}"
    );
    // Raw mode is off: typed text is echoed by the shell's terminal again.
    t.keys(&["-l", "echo typed-back"]);
    t.keys(&["Enter"]);
    t.wait_for(&["typed-back"]);
}
