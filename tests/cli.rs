//! The non-interactive commands as a script or a person runs them.

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run

mod common;

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
        .env_remove("WARROOM_STORE")
        .env_remove("WARROOM_STATE")
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
    assert!(
        s.contains("gateway role: single (the embedded demo: its state is in memory)"),
        "{s}"
    );
    // The demo makes you its admin: not "anonymous: read only" while the
    // console's header says admin.
    assert!(
        s.contains("token:        not needed (the embedded demo makes you its admin)"),
        "{s}"
    );
    let out = warroom(&h, &["info", "--gateway", "http://127.0.0.1:1"]);
    assert!(
        text(&out.stdout).contains("token:        none (anonymous: read only)"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stdout).contains("gateway role: unknown (cannot ask the gateway: "),
        "{}",
        text(&out.stdout)
    );
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
    // Every mistake at once, each on its line.
    std::fs::write(
        &bad,
        "[overview]\nfly = [\"f\"]\ndown = [\"hyper-j\"]\n[sidebar]\n",
    )
    .unwrap();
    let out = warroom(&h, &["keymap", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    for at in [
        "bad.toml:2:1: unknown action",
        "bad.toml:3:9: ",
        "bad.toml:4:2: unknown context",
    ] {
        assert!(e.contains(at), "{at} in: {e}");
    }

    let out = warroom(&h, &["keymap", "show", "vim"]);
    assert!(text(&out.stdout).contains("[overview]"));
}

/// A command's --help lists what it takes: the screen's options (keymap,
/// theme, refresh, read-only) only where a screen is drawn.
#[test]
fn each_commands_help_lists_only_its_own_options() {
    let h = home("help");
    let screen = ["--keymap", "--theme", "--refresh-ms", "--read-only"];
    for cmd in ["lookup", "publish", "report"] {
        let help = text(&warroom(&h, &[cmd, "--help"]).stdout);
        assert!(help.contains("--gateway"), "{cmd}: {help}");
        for flag in screen {
            assert!(!help.contains(flag), "{cmd} --help lists {flag}: {help}");
        }
    }
    let help = text(&warroom(&h, &["export", "tenant", "--help"]).stdout);
    assert!(
        help.contains("--gateway") && !help.contains("--keymap"),
        "{help}"
    );
    let help = text(&warroom(&h, &["console", "--help"]).stdout);
    for flag in screen {
        assert!(help.contains(flag), "console --help lacks {flag}: {help}");
    }
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
    // The advice is the user's own command, reordered (it was always an
    // example about `--seed 7`, whatever was typed).
    for (args, says) in [
        (
            &["--seed", "7", "gateway"][..],
            "`warroom gateway --seed 7`",
        ),
        (
            &[
                "--gateway",
                "http://127.0.0.1:1",
                "snapshot",
                "--width",
                "80",
            ],
            "`warroom snapshot --gateway http://127.0.0.1:1 --width 80`",
        ),
        (
            &["--skip", "3", "export", "tenant", "t00001"],
            "`warroom export tenant --skip 3 t00001`",
        ),
        (
            &["--theme", "my theme", "info"],
            "`warroom info --theme 'my theme'`",
        ),
    ] {
        let out = warroom(&h, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let e = text(&out.stderr);
        assert!(
            e.contains(&format!("put options after the command name: {says}")),
            "{args:?}: {e}"
        );
    }
    let out = warroom(&h, &["snapshot", "--speed", "100000", "--tick-ms", "60000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("at most one day"),
        "{}",
        text(&out.stderr)
    );
    let out = warroom(&h, &["snapshot", "--gateway", "ftp://example.invalid:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("must start with https:// (TLS) or http://"),
        "{}",
        text(&out.stderr)
    );
    // Names that do not exist, and a picture smaller than the console can
    // draw, are refused (they were accepted and printed a "press q" screen).
    for (args, says) in [
        (
            &["snapshot", "--theme", "bogus"][..],
            "unknown theme \"bogus\"",
        ),
        (&["snapshot", "--keymap", "bogus"], "--keymap"),
        (&["info", "--theme", "bogus"], "unknown theme \"bogus\""),
        (&["snapshot", "--width", "30"], "60..=1000"),
        (&["snapshot", "--height", "10"], "16..=1000"),
    ] {
        let out = warroom(&h, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty() || args[0] == "info", "{args:?}");
    }
    let out = warroom(&h, &["snapshot", "--tenants", "10", "--mailboxes", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--mailboxes (5) must be at least --tenants (10)"));
}

/// An address that is still waiting for the reindex 8 simulated hours in:
/// the last one in Acme Title's queue (the CLI's demo runs the same seed).
fn waiting_address() -> String {
    use warroom::domain::MailboxState;
    use warroom::sources::simulator::{SimConfig, Simulator};
    use warroom::sources::{MailboxQuery, Source};
    let mut sim = Simulator::new(SimConfig::default()).unwrap();
    for _ in 0..8 * 60 {
        sim.advance(60.0);
    }
    let page = sim
        .mailboxes(&MailboxQuery {
            tenant_id: "t00000".into(),
            states: vec![MailboxState::ReindexPending],
            sort_by_eta: true,
            offset: 0,
            limit: 1000,
        })
        .unwrap();
    page.rows
        .last()
        .expect("acme has waiting mailboxes at +8h")
        .address
        .clone()
}

#[test]
fn lookup_of_an_affected_mailbox_prints_state_and_eta() {
    let h = home("lookup");
    let addr = waiting_address();
    let out = warroom(&h, &["lookup", &addr, "--skip", "8"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains(&format!("{addr}: reindex_pending")), "{s}");
    assert!(
        s.contains("back: ") && s.contains(" UTC (in "),
        "an ETA range: {s}"
    );
    assert!(s.contains("say: \"This mailbox is affected"), "{s}");
    assert!(s.contains("1 match for"), "{s}");
    assert!(
        !s.contains("Did you mean") && !s.contains("approximate"),
        "{s}"
    );
    assert!(!s.contains('\x1b'));

    let out = warroom(&h, &["lookup", &addr, "--skip", "8", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let m = &v["matches"][0];
    assert_eq!(m["address"], addr.as_str());
    assert_eq!(m["state"], "reindex_pending");
    assert_eq!(m["match"], "exact");
    assert!(m["eta_p50"].is_string() && m["eta_p90"].is_string(), "{m}");
    assert_eq!(v["simulated"], true);
    assert_eq!(
        (&v["total"], &v["total_is_lower_bound"]),
        (&1.into(), &false.into())
    );
}

fn lookup_json(h: &PathBuf, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut all = vec!["lookup"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = warroom(h, &all);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    (out.status.code(), v)
}

fn affected(m: &serde_json::Value) -> bool {
    m["affected_mailboxes"].as_u64().unwrap_or(0) > 0
}

/// Issue #15: `warroom lookup acme` 10 hours in listed five Acme tenants
/// with nothing affected; the two with affected mailboxes (Bath Acme
/// Design Group, Acme Title & Escrow) were 14th and 54th of 78, and
/// nothing said there were 78.
#[test]
fn lookup_ranks_affected_matches_first_and_says_how_many_matched() {
    let h = home("lookup-rank");
    let out = warroom(&h, &["lookup", "acme", "--skip", "10"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("5 of 78 matches for \"acme\""), "{s}");
    let heads: Vec<&str> = s
        .lines()
        .filter(|l| l.contains(" mailboxes affected"))
        .collect();
    assert_eq!(heads.len(), 5, "{s}");
    assert!(
        heads[0].starts_with("Bath Acme Design Group (t01247): 431 of 585"),
        "{s}"
    );
    assert!(
        heads[1].starts_with("Acme Title & Escrow (t00000): 114 of 250"),
        "{s}"
    );
    assert!(
        heads[2].starts_with("acme-title.com (Acme Title & Escrow, t00000)"),
        "{s}"
    );
    assert!(
        heads[3].contains(": 0 of ") && heads[4].contains(": 0 of "),
        "{s}"
    );

    let (code, v) = lookup_json(&h, &["acme", "--skip", "10"]);
    assert_eq!(code, Some(0));
    assert_eq!(v["total"], 78);
    assert_eq!(v["total_is_lower_bound"], false);
    let first = v["matches"].as_array().unwrap();
    assert_eq!(first.len(), 5);
    assert!(first.iter().all(|m| m["match"] == "prefix"), "{v}");

    // Every match: the affected ones first (and all of them within the
    // default five), then the rest.
    let (_, all) = lookup_json(&h, &["acme", "--skip", "10", "--limit", "100"]);
    let all = all["matches"].as_array().unwrap().clone();
    assert_eq!(all.len(), 78);
    let n = all.iter().filter(|m| affected(m)).count();
    assert_eq!(n, 3, "two tenants and acme-title.com");
    assert!(all[..n].iter().all(affected) && !all[n..].iter().any(affected));
    assert_eq!(first[..], all[..5]);
}

/// Issue #15: `warroom lookup acme-titel.com` answered for acme-title.com
/// as if it had been typed.
#[test]
fn lookup_of_a_misspelling_asks_did_you_mean_and_is_marked_approximate() {
    let h = home("lookup-typo");
    let out = warroom(&h, &["lookup", "acme-titel.com", "--skip", "10"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "an answer: {}",
        text(&out.stderr)
    );
    let s = text(&out.stdout);
    assert!(
        s.contains("No exact match for \"acme-titel.com\". Did you mean acme-title.com?"),
        "{s}"
    );
    assert!(s.contains("all approximate"), "{s}");
    assert!(
        s.contains("acme-title.com (Acme Title & Escrow, t00000): 114 of 250")
            && s.contains("[approximate match: not what was typed]"),
        "{s}"
    );
    // The sentence for the customer asks before it answers.
    assert!(
        s.contains("say: \"If you meant acme-title.com: your 114"),
        "{s}"
    );
    assert!(!s.contains("say: \"Your"), "{s}");

    let (code, v) = lookup_json(&h, &["acme-titel.com", "--skip", "10"]);
    assert_eq!(code, Some(0));
    let m = &v["matches"][0];
    assert_eq!(
        (&m["domain"], &m["match"]),
        (&"acme-title.com".into(), &"approximate".into())
    );
    assert!(v["total"].as_u64().unwrap() >= 1, "{v}");

    // The exact domain: no question, no mark.
    let out = warroom(&h, &["lookup", "acme-title.com", "--skip", "10"]);
    let s = text(&out.stdout);
    assert!(
        !s.contains("Did you mean") && !s.contains("approximate"),
        "{s}"
    );
    assert!(s.contains("say: \"Your 114"), "{s}");
}

/// Before the fault is identified there is no estimate, and the kind says
/// why for scripts; the customer's sentence follows the kind.
#[test]
fn lookup_without_an_estimate_says_why_as_a_kind_and_in_words() {
    let h = home("noeta");
    let (code, v) = lookup_json(&h, &["acme-title.com", "--skip", "1"]);
    assert_eq!(code, Some(0));
    let m = &v["matches"][0];
    assert_eq!(m["eta_p50"], serde_json::Value::Null, "{v}");
    assert_eq!(m["no_estimate"], "not_identified", "{v}");
    let out = warroom(&h, &["lookup", "acme-title.com", "--skip", "1"]);
    let said = text(&out.stdout);
    assert!(
        said.contains("we don't have an estimate yet: the cause is still being identified"),
        "{said}"
    );
}

#[test]
fn lookup_not_found_is_exit_1_and_bad_queries_exit_2() {
    let h = home("lookup-bad");
    let out = warroom(&h, &["lookup", "nobody@nowhere.invalid"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("nothing matches"),
        "{}",
        text(&out.stderr)
    );
    let (code, v) = lookup_json(&h, &["nobody@nowhere.invalid"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        (&v["total"], v["matches"].as_array().map(Vec::len)),
        (&0.into(), Some(0))
    );
    let long = "x".repeat(10_240);
    for q in ["", "  ", long.as_str(), "a\u{1b}]52;c;aGVsbG8=\u{7}"] {
        let out = warroom(&h, &["lookup", q]);
        assert_eq!(out.status.code(), Some(2), "{q:?}");
        let e = text(&out.stderr);
        assert!(e.starts_with("warroom: the query"), "{e}");
        assert!(!e.contains('\x1b'), "nothing raw reaches the terminal");
    }
    // Invalid UTF-8 in the argument: a clear error, no panic.
    use std::os::unix::ffi::OsStrExt;
    let out = Command::new(env!("CARGO_BIN_EXE_warroom"))
        .arg("lookup")
        .arg(std::ffi::OsStr::from_bytes(b"\xff\xfe@acme"))
        .env("XDG_CONFIG_HOME", &h)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("invalid UTF-8"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn export_of_a_tenant_lists_every_affected_mailbox() {
    let h = home("export");
    let out = warroom(&h, &["lookup", "t00000", "--skip", "8", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let affected = v["matches"][0]["affected_mailboxes"].as_u64().unwrap();
    assert!(affected > 0);

    let out = warroom(&h, &["export", "tenant", "t00000", "--skip", "8"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(&out.stdout);
    let mut lines = csv.split("\r\n").filter(|l| !l.is_empty());
    assert_eq!(
        lines.next(),
        Some("address,state,eta_p50,eta_p90,queued_messages")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len() as u64, affected, "one row per affected mailbox");
    assert!(
        rows.iter()
            .all(|r| r.split(',').count() == 5 && r.contains("@acme-title"))
    );

    let out = warroom(
        &h,
        &[
            "export", "tenant", "t00000", "--skip", "8", "--format", "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v.as_array().unwrap().len() as u64, affected);

    // A domain is what support has in hand: it names the tenant too.
    let out = warroom(&h, &["export", "tenant", "acme-title.com", "--skip", "8"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), csv, "the same rows as by id");
    // Not found is exit 1, as for lookup, and a misspelling is not guessed.
    for q in ["t99999", "acme-titel.com"] {
        let out = warroom(&h, &["export", "tenant", q]);
        assert_eq!(out.status.code(), Some(1), "{q}");
        assert!(text(&out.stderr).contains("no tenant matches"), "{q}");
        assert!(out.stdout.is_empty(), "{q}");
    }
}

/// Every shipped drill runs (the console's own drawing, through the embedded
/// gateway), and a scenario file with an error says where, exit 2.
#[test]
fn each_shipped_scenario_runs_and_a_bad_one_is_located() {
    let h = home("scenario");
    // (name, title, skip, a cluster this scenario does not have): the
    // panels name the clusters the title does.
    for (name, title, skip, absent) in [
        (
            "cluster-a-2008",
            "Cluster A: mailbox access",
            "5",
            "Cluster C",
        ),
        (
            "small-fast-fault",
            "Cluster A: storage went read-only",
            "1",
            "Cluster C",
        ),
        (
            "slow-second-fault",
            "Cluster C: index corruption",
            "20",
            "Cluster A",
        ),
    ] {
        let out = warroom(
            &h,
            &[
                "snapshot",
                "--scenario",
                name,
                "--skip",
                skip,
                "--width",
                "160",
            ],
        );
        let screen = text(&out.stdout);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        assert!(screen.contains(title), "{name}:\n{screen}");
        assert!(screen.contains("affected"), "{name}:\n{screen}");
        assert!(!screen.contains(absent), "{name}:\n{screen}");
    }
    let bad = h.join("bad.toml");
    let good = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/cluster-a-2008.toml"
    ))
    .unwrap();
    std::fs::write(&bad, good.replace("concurrency = 8", "concurrency = 0")).unwrap();
    let out = warroom(&h, &["snapshot", "--scenario", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let line = good
        .lines()
        .position(|l| l.starts_with("concurrency"))
        .unwrap()
        + 1;
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("bad.toml:{line}:1: concurrency: from 1 to 4096")),
        "{err}"
    );
}

/// After the recovery the panels stay on the cluster that had the fault and
/// say what the reindex did, not "not started: nothing to reindex" about
/// the healthy one.
#[test]
fn a_finished_reindex_says_what_it_did() {
    let h = home("done");
    let out = warroom(
        &h,
        &[
            "snapshot",
            "--scenario",
            "small-fast-fault",
            "--skip",
            "10",
            "--height",
            "30",
        ],
    );
    let screen = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(screen.contains("RESOLVED"), "{screen}");
    assert!(screen.contains("Reindex · Cluster A"), "{screen}");
    assert!(!screen.contains("not started"), "{screen}");
    let done = screen
        .lines()
        .find(|l| l.contains("done "))
        .unwrap_or_else(|| panic!("no done line:\n{screen}"));
    assert!(
        done.contains(" after ") && done.contains("mailboxes restored"),
        "{done}"
    );
}

/// An ETA that takes this hour's rate through hours it has not seen says
/// so under it: in the reindex's first minutes, before what the load does
/// to its rate could be learnt; an hour later, drawn from the traffic, it
/// says nothing more.
#[test]
fn an_eta_that_assumes_the_current_rate_says_so() {
    let h = home("assumes");
    let screen = |skip: &str| {
        let out = warroom(&h, &["snapshot", "--skip", skip, "--height", "30"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let first = screen("3");
    let eta = first
        .lines()
        .position(|l| l.contains("│ETA Oct"))
        .unwrap_or_else(|| panic!("no reindex ETA:\n{first}"));
    assert!(
        first.lines().nth(eta + 1).is_some_and(
            |l| l.contains("ETA assumes the current rate: load's effect not learnt yet")
        ),
        "{first}"
    );
    let later = screen("4");
    assert!(later.contains("│ETA Oct"), "{later}");
    assert!(!later.contains("ETA assumes"), "{later}");
    // At 80 columns: what is assumed, not why cut half-way.
    let out = warroom(
        &h,
        &["snapshot", "--skip", "3", "--width", "80", "--height", "24"],
    );
    let narrow = text(&out.stdout);
    let line = narrow
        .lines()
        .find(|l| l.contains("ETA assumes"))
        .unwrap_or_else(|| panic!("{narrow}"));
    assert!(line.contains("│ETA assumes the current rate  "), "{line}");
}

/// `warroom … | head -2`: the reader goes away before the command has
/// written everything. A Unix tool ends quietly; it used to panic ("failed
/// printing to stdout: Broken pipe", exit 101, a backtrace).
#[test]
fn a_reader_that_closes_the_pipe_ends_every_command_quietly() {
    let h = home("pipe");
    for args in [
        &["export", "tenant", "t00000", "--skip", "8"][..],
        &["lookup", "acme", "--skip", "8", "--json"],
        &["report", "--skip", "8"],
        &["keymap", "show", "default"],
        &["info"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warroom"))
            .args(args)
            .env("XDG_CONFIG_HOME", &h)
            .env("XDG_STATE_HOME", &h)
            .env_remove("WARROOM_GATEWAY")
            .env_remove("WARROOM_CONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the command writes a byte: every write fails.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
    }
}

/// The gateway's log going to a file or a pipe is plain text: colour codes
/// are for terminals only.
#[test]
fn the_gateway_log_to_a_pipe_has_no_colour_codes() {
    use std::io::BufRead;
    let h = home("gwlog");
    let mut child = Command::new(env!("CARGO_BIN_EXE_warroom"))
        .args([
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--page-listen",
            "127.0.0.1:0",
        ])
        .arg("--state")
        .arg(h.join("state.sqlite"))
        .env("XDG_CONFIG_HOME", &h)
        .env("XDG_STATE_HOME", &h)
        .env("XDG_DATA_HOME", &h)
        .env("WARROOM_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        log.push_str(&line);
        log.push('\n');
        if line.contains("serving warroom.v1") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(log.contains("INFO") && log.contains("listening"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a piped log: {log:?}"
    );
}

#[test]
fn the_gateway_refuses_a_damaged_state_file_and_a_weak_token_without_echoing_it() {
    let h = home("gwstate");
    let state = h.join("state.sqlite");
    std::fs::write(&state, b"not sqlite at all\n".repeat(300)).unwrap();
    let out = warroom(
        &h,
        &[
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--state",
            state.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out.stderr);
    assert!(
        e.contains("not a warroom state file") && e.contains("refusing to start"),
        "{e}"
    );
    assert!(
        std::fs::read(&state).unwrap().starts_with(b"not sqlite"),
        "left as it was"
    );

    std::fs::write(
        h.join("warroom/config.toml"),
        "[server]\n[[server.tokens]]\nname = \"ana\"\nrole = \"operator\"\ntoken = \"hunter2\"\n",
    )
    .unwrap();
    let out = warroom(
        &h,
        &[
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--state",
            h.join("s2").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out.stderr);
    assert!(e.contains("token of \"ana\" must be at least 16"), "{e}");
    assert!(!e.contains("hunter2"), "the secret is not echoed: {e}");

    std::fs::write(
        h.join("warroom/config.toml"),
        "[server]\n[[server.tokens]]\nname = \"ana\"\nrole = \"root\"\ntoken_env = \"X\"\n",
    )
    .unwrap();
    let out = warroom(&h, &["info"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown role \"root\""),
        "{}",
        text(&out.stderr)
    );
}

/// `[server] page_url`: the address the page's readers use (a proxy, a
/// name) is what every console is shown, not the address it listens on.
#[test]
fn consoles_are_shown_the_configured_page_url() {
    use std::io::BufRead;
    let h = home("page-url");
    std::fs::write(
        h.join("warroom/config.toml"),
        "[server]\npage_url = \"https://status.example.net/cluster-a/\"\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warroom"))
        .args([
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--page-listen",
            "127.0.0.1:0",
        ])
        .arg("--state")
        .arg(h.join("state.sqlite"))
        .env("XDG_CONFIG_HOME", &h)
        .env("XDG_STATE_HOME", &h)
        .env("XDG_DATA_HOME", &h)
        .env("WARROOM_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut url = None;
    let mut log = String::new();
    while let Some(Ok(line)) = lines.next() {
        log.push_str(&line);
        log.push('\n');
        if let Some(at) = line.find("serving warroom.v1 on ") {
            url = line[at + 22..]
                .split_whitespace()
                .next()
                .map(str::to_string);
            break;
        }
    }
    let url = url.unwrap_or_else(|| panic!("no address in:\n{log}"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let board = rt.block_on(async {
        let mut c = warroom::api::pb::war_room_client::WarRoomClient::connect(url)
            .await
            .unwrap()
            .max_decoding_message_size(warroom::api::MAX_MESSAGE_BYTES);
        let mut w = c
            .watch(warroom::api::pb::WatchRequest::default())
            .await
            .unwrap()
            .into_inner();
        w.message().await.unwrap().unwrap().status.unwrap()
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(board.page_url, "https://status.example.net/cluster-a/");
    assert!(log.contains("status page"), "{log}");
    assert!(
        !log.contains("beyond loopback"),
        "a page on loopback is nothing to warn about:\n{log}"
    );
}

/// An empty file (a `touch`, a truncation) and a file that lost a table
/// used to start: the first as a new war room, the second failing every
/// publish with "no such table". Both are refused, and left byte for byte.
#[test]
fn the_gateway_refuses_an_empty_state_file_or_one_missing_a_table_and_leaves_it_as_it_was() {
    let h = home("gwstate-tables");
    let empty = h.join("empty.sqlite");
    std::fs::write(&empty, b"").unwrap();
    let no_deliveries = h.join("no-deliveries.sqlite");
    drop(warroom::store::open(&no_deliveries).unwrap());
    rusqlite::Connection::open(&no_deliveries)
        .unwrap()
        .execute_batch("DROP TABLE deliveries; PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    for (state, want) in [
        (&empty, "the file is empty (0 bytes)"),
        (&no_deliveries, "needs the table deliveries"),
    ] {
        let before = std::fs::read(state).unwrap();
        let out = warroom(
            &h,
            &[
                "gateway",
                "--listen",
                "127.0.0.1:0",
                "--state",
                state.to_str().unwrap(),
            ],
        );
        let e = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{e}");
        assert!(e.contains(want) && e.contains("refusing to start"), "{e}");
        assert_eq!(
            std::fs::read(state).unwrap(),
            before,
            "{}: the refused file was changed",
            state.display()
        );
    }
}

#[test]
fn publish_dry_run_previews_and_lint_errors_name_the_bad_value() {
    let h = home("publish");
    let base = [
        "publish",
        "--state",
        "identified",
        "--title",
        "Mail access on Cluster A",
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        warroom(&h, &args)
    };
    let out = run(&[
        "--body",
        "{affected_mailboxes} affected",
        "--next",
        "25:30",
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("25:30 is not a time of day"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "nothing previewed or published");

    let out = run(&[
        "--body",
        "{affected_mailboxes} mailboxes affected, {restored_pct} restored",
        "--next",
        "+2h",
        "--component",
        "imap=major_outage",
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let o = text(&out.stdout);
    // On the drill's clock (it starts at 2008-10-06 17:30 UTC), as the
    // ETAs in the same preview, not on the wall clock.
    assert!(
        o.contains("next update: 2008-10-06 19:") && o.contains("(in 2h"),
        "absolute UTC time on the incident's clock shown:\n{o}"
    );
    assert!(
        o.contains("== page (the status page's words, as text; it is served as HTML)")
            && o.contains("- imap: major outage")
            && !o.contains(" UTC by "),
        "{o}"
    );
    assert!(
        o.contains("mailboxes affected,") && !o.contains("{affected_mailboxes}"),
        "{o}"
    );
    assert!(o.contains("(dry run: nothing published)"), "{o}");

    for (body, want) in [
        ("ETA {eta}".to_string(), "unknown placeholder {eta}"),
        (
            "x".repeat(25_001),
            "body is 25001 characters; the limit is 25000",
        ),
    ] {
        let out = run(&["--body", &body, "--next", "+1h", "--dry-run"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains(want),
            "{want}: {}",
            text(&out.stderr)
        );
    }
    let out = run(&[
        "--body",
        "x",
        "--next",
        "+1h",
        "--component",
        "pop3=down",
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unknown component \"pop3\""));
    // The demo starts investigating: "identified" contradicts the sources,
    // a warning to confirm before anything goes out.
    let out = run(&["--body", "all hands", "--next", "+1h"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(
            "warning state: the sources show the incident as investigating (10,101 mailboxes affected, 0 restored); this update says identified"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "nothing published");
    // Confirmed, the embedded demo publishes it.
    let out = run(&["--body", "all hands", "--next", "+1h", "--confirm-warnings"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("published su-000001"),
        "{}",
        text(&out.stdout)
    );
}

/// Issue #17 item 4: 50 findings in grpc-message and the details took the
/// trailers over 16 KiB and the CLI printed "h2 protocol error" and none of
/// them. Now: exit 1, a one-line summary, and every finding.
#[test]
fn a_publish_with_sixty_findings_exits_1_and_prints_every_finding() {
    let h = home("publish60");
    let body: String = (1..=60)
        .map(|i| format!("{{placeholder_that_does_not_exist_{i:02}}} "))
        .collect();
    let out = warroom(
        &h,
        &[
            "publish",
            "--state",
            "investigating",
            "--title",
            "Mail access on Cluster A",
            "--body",
            &body,
            "--next",
            "+1h",
        ],
    );
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.starts_with(
            "warroom: not published: refused: 60 errors; first: body: unknown placeholder \
             {placeholder_that_does_not_exist_01}"
        ),
        "{e}"
    );
    for i in 1..=60 {
        let want =
            format!("  error body: unknown placeholder {{placeholder_that_does_not_exist_{i:02}}}");
        assert!(e.contains(&want), "finding {i} missing:\n{e}");
    }
    assert_eq!(e.lines().count(), 61, "a summary and 60 findings:\n{e}");
    assert!(out.stdout.is_empty(), "nothing published");
}

/// A publish the role may not make is "not published", exit 1, as the user
/// guide says (it was 2); a warning names the flag, not the API's field.
#[test]
fn publish_refused_for_the_role_exits_1_and_a_warning_names_the_flag() {
    use warroom::domain::priority::Role;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    const OPERATOR: &str = "operator-ana-0123456789abcdef";
    const COMMS: &str = "comms-cy-0123456789abcdef";
    let access = warroom::gateway::Access::new(
        vec![
            (OPERATOR.into(), "ana".into(), Role::Operator),
            (COMMS.into(), "cy".into(), Role::Comms),
        ],
        true,
    )
    .unwrap();
    let gw = rt.block_on(common::serve(common::hub(common::small()), access));
    let h = home("publish-role");
    let url = gw.url();
    let publish = |token: &str| {
        Command::new(env!("CARGO_BIN_EXE_warroom"))
            .args([
                "publish",
                "--gateway",
                &url,
                "--state",
                "identified",
                "--title",
                "Mail access on Cluster A",
                "--body",
                "Logins fail on Cluster A.",
                "--next",
                "+1h",
            ])
            .env("XDG_CONFIG_HOME", &h)
            .env("XDG_STATE_HOME", &h)
            .env("WARROOM_TOKEN", token)
            .env_remove("WARROOM_GATEWAY")
            .env_remove("WARROOM_CONFIG")
            .output()
            .unwrap()
    };
    let out = publish(OPERATOR);
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains(
            "not published: ana is an operator; publishing status updates needs the comms role"
        ),
        "{e}"
    );
    // "identified" while the sources show investigating: a warning.
    let out = publish(COMMS);
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.starts_with(
            "warroom: not published: 1 warning to confirm; publish again with --confirm-warnings to go ahead"
        ),
        "{e}"
    );
    assert!(!e.contains("confirm_warnings"), "{e}");
    rt.block_on(gw.stop());
}

/// Issue #13 item 4, "slips are shown, not hidden": four hours into the
/// incident most tenants' ETAs are hours later than first shown. Against a
/// gateway that has watched them move, `warroom lookup` marks the slip and
/// its sentence for the customer says so, `--json` carries it, and
/// `warroom report` lists it under "Estimates over time" with the reindex
/// ETA's hourly history.
#[test]
fn lookup_and_report_show_an_eta_that_slipped() {
    use warroom::domain::format::slip_marker;
    use warroom::sources::simulator::SimConfig;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let gw = rt.block_on(common::gateway(SimConfig::default()));
    for _ in 0..4 * 60 {
        gw.hub.tick();
    }
    let (id, name, slip, now) = {
        let view = gw.hub.view();
        let now = view.source().overview().incident.now.unwrap();
        let t = view
            .source()
            .tenants()
            .into_iter()
            .filter(|t| t.eta_slip.as_ref().is_some_and(|s| !s.withdrawn()))
            .max_by_key(|t| t.affected())
            .expect("a tenant whose ETA slipped by T+4h");
        let slip = t.eta_slip.clone().unwrap();
        (t.id.to_string(), t.name.to_string(), slip, now)
    };
    let h = home("slips");
    let url = gw.url();
    let out = warroom(&h, &["lookup", &id, "--gateway", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let marker = slip_marker(&slip, now);
    assert!(marker.starts_with("↗ +"), "{marker}");
    assert!(
        s.contains(&format!("  {marker} (the p90 was ")),
        "{marker} in:\n{s}"
    );
    assert!(
        s.contains("later than estimated at ") && s.contains("say: \"Your "),
        "{s}"
    );
    let out = warroom(&h, &["lookup", &id, "--gateway", &url, "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let j = &v["matches"][0]["eta_slip"];
    assert_eq!(
        j["later_by_seconds"],
        slip.later_by.unwrap().num_seconds(),
        "{v}"
    );
    assert_eq!(
        (&j["withdrawn"], &j["basis"]),
        (&false.into(), &"first_shown".into())
    );

    let out = warroom(&h, &["report", "--gateway", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let md = text(&out.stdout);
    let section = md
        .split("## Estimates over time")
        .nth(1)
        .expect("the section")
        .to_string();
    assert!(
        section.contains("tenants with an ETA later than said"),
        "{md}"
    );
    assert!(
        section
            .lines()
            .any(|l| l.starts_with(&format!("| {name} ({id}) |")) && l.contains("| first shown |")),
        "{id} listed:\n{md}"
    );
    assert!(
        section.contains("### Reindex ETA, Cluster A, over time"),
        "{md}"
    );
    // One sample an hour since the reindex had work (identified at T+3h).
    let samples = section
        .lines()
        .filter(|l| l.starts_with("| 2008-10-06 "))
        .count();
    assert!(samples >= 1, "{md}");
    rt.block_on(gw.stop());
}

/// A reseller's list: 10,000 addresses of the demo (and two lines that are
/// not) looked up in one call, one CSV row per line in the input's order,
/// each naming the mailbox asked for; exit 1 because two lines found
/// nothing, and the control characters of one never reach the output.
#[test]
fn lookup_of_a_whole_list_prints_one_row_per_line_in_order() {
    use warroom::sources::simulator::{SimConfig, Simulator};
    use warroom::sources::{MailboxQuery, Source};
    let sim = Simulator::new(SimConfig::default()).unwrap();
    let mut addresses = Vec::new();
    for t in 0.. {
        let page = sim
            .mailboxes(&MailboxQuery {
                tenant_id: format!("t{t:05}"),
                states: warroom::domain::MailboxState::ALL.to_vec(),
                sort_by_eta: false,
                offset: 0,
                limit: 1000,
            })
            .unwrap();
        addresses.extend(page.rows.into_iter().map(|m| m.address));
        if addresses.len() >= 10_000 {
            break;
        }
    }
    addresses.truncate(10_000);
    let mut list: Vec<String> = addresses.clone();
    list.insert(5_000, "nobody@nowhere.invalid".into());
    list.insert(7_000, "evil\u{1b}]0;pwned\u{7}@example.com".into());
    let h = home("bulk");
    let file = h.join("list.txt");
    std::fs::write(&file, format!("# my customers\n{}\n", list.join("\n"))).unwrap();
    let out = warroom(&h, &["lookup", "--file", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("2 of 10002 lines matched nothing"),
        "{}",
        text(&out.stderr)
    );
    let csv = text(&out.stdout);
    assert!(!csv.contains('\u{1b}'), "an escape reached the output");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 1 + 10_002, "a header and one row per line");
    assert!(rows[0].starts_with("line,query,found,match,kind,name,tenant_id"));
    let mut n = 0;
    for (i, row) in rows[1..].iter().enumerate() {
        let f: Vec<&str> = row.split(',').collect();
        assert_eq!(f[0], (i + 2).to_string(), "line numbers of the file: {row}");
        if i == 5_000 || i == 7_000 {
            assert_eq!(f[2], "false", "{row}");
            continue;
        }
        assert_eq!(
            (f[1], f[2], f[3], f[5]),
            (
                addresses[n].as_str(),
                "true",
                "exact",
                addresses[n].as_str()
            ),
            "{row}"
        );
        n += 1;
    }
    assert_eq!(n, 10_000);
}

/// A PostgreSQL store in the config: `info` names it without its password,
/// and a gateway that cannot reach it stops with a clear error that does
/// not show the password either. `--store` takes the same URL.
#[test]
fn a_postgresql_store_is_shown_and_refused_without_its_password() {
    let h = home("pg-store");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://ana:PGSECRETPW99@127.0.0.1:{port}/warroom");
    std::fs::write(
        h.join("warroom/config.toml"),
        format!("[server]\nstore = \"{url}\"\n"),
    )
    .unwrap();
    let out = warroom(&h, &["info"]);
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!(
            "gateway state: postgres://***@127.0.0.1:{port}/warroom"
        )),
        "{said}"
    );
    assert!(!said.contains("PGSECRETPW99"), "{said}");
    for args in [
        vec!["gateway", "--listen", "127.0.0.1:0"],
        vec!["gateway", "--listen", "127.0.0.1:0", "--store", &url],
    ] {
        let out = warroom(&h, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let e = text(&out.stderr);
        assert!(
            e.contains(&format!("PostgreSQL at 127.0.0.1:{port} unreachable")),
            "{args:?}: {e}"
        );
        assert!(!e.contains("PGSECRETPW99"), "{args:?}: {e}");
    }
}

/// `drill calibrate` scores every ETA a drill served, and `--samples` writes
/// each of them with what then happened: one CSV line per ETA, as many as
/// the JSON rows count, every quote before its target's end or with none.
#[test]
fn drill_calibrate_writes_every_eta_it_scored() {
    let h = home("calibrate");
    let csv = h.join("samples.csv");
    let out = warroom(
        &h,
        &[
            "drill",
            "calibrate",
            "--scenario",
            "small-fast-fault",
            "--seeds",
            "1",
            "--json",
            "--samples",
            csv.to_str().unwrap(),
        ],
    );
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        text(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let scored: u64 = rows
        .iter()
        .filter(|r| r["forecaster"] == "warroom")
        .map(|r| r["n"].as_u64().unwrap() + r["no_estimate"].as_u64().unwrap())
        .sum();
    let written = std::fs::read_to_string(&csv).unwrap();
    let mut lines = written.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        header,
        [
            "scenario",
            "seed",
            "phase",
            "target",
            "key",
            "at",
            "affected",
            "p50",
            "p90",
            "naive",
            "episode_end",
            "final_end"
        ]
    );
    let samples: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(samples.len() as u64, scored);
    assert!(scored > 100, "{scored} samples");
    for s in &samples {
        assert_eq!((s[0], s[1]), ("small-fast-fault", "2008"), "{s:?}");
        // RFC 3339 times compare as text.
        assert!(
            s[10].is_empty() || s[10] > s[5],
            "ended before it was quoted: {s:?}"
        );
    }
    let bad = warroom(
        &h,
        &[
            "drill",
            "calibrate",
            "--seeds",
            "1",
            "--samples",
            "/nonexistent/dir/samples.csv",
        ],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(
        text(&bad.stderr).contains("cannot write /nonexistent/dir/samples.csv"),
        "{}",
        text(&bad.stderr)
    );
}
