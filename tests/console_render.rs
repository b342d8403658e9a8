//! The console drawn from a real in-process gateway over loopback gRPC, on
//! ratatui's TestBackend. The simulator is ticked by the test, so every
//! figure is deterministic; the two volatile values — the wall clock and the
//! data age — are injected (fixed clock, data received "now").

#![allow(clippy::unwrap_used)] // test, bench and example code: a failed unwrap is a failed run
#![allow(unused_must_use)] // it drives the console by hand; the commands it does not check are not the point

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use tokio::sync::mpsc;
use warroom::api::pb;
use warroom::client::{self, ClientEvent, GatewayClient, Update};
use warroom::console::app::{App, Command, Conn, View};
use warroom::console::theme::Theme;
use warroom::console::ui;
use warroom::console::wire::WireBackend;

fn fixed_clock() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0)
        .single()
        .unwrap()
}

fn screen(app: &mut App, w: u16, h: u16) -> String {
    app.prepare();
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| ui::render(f, app)).unwrap();
    warroom::console::snapshot::buffer_text(t.backend().buffer())
}

/// Collects what the backend writes.
#[derive(Clone, Default)]
struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The bytes a real terminal would receive for one frame, through the
/// console's own backend.
fn bytes(app: &mut App, w: u16, h: u16) -> String {
    app.prepare();
    let sink = Sink::default();
    let backend = WireBackend::new(sink.clone());
    let mut t = Terminal::with_options(
        backend,
        ratatui::TerminalOptions {
            viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, w, h)),
        },
    )
    .unwrap();
    t.draw(|f| ui::render(f, app)).unwrap();
    drop(t);
    let out = sink.0.lock().unwrap().clone();
    String::from_utf8_lossy(&out).into_owned()
}

/// An App holding the gateway's first Watch snapshot after `ticks` ticks.
async fn app_after(ticks: usize, theme: Theme) -> (App, warroom::gateway::Gateway) {
    let gw = common::gateway(warroom::sources::simulator::SimConfig::default()).await;
    for _ in 0..ticks {
        gw.hub.tick();
    }
    let client = GatewayClient::new(&gw.url()).unwrap();
    let mut stream = client
        .raw()
        .watch(pb::WatchRequest {})
        .await
        .unwrap()
        .into_inner();
    let snap = tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(snap.snapshot);
    let mut app = App::new(gw.url(), theme);
    app.on_client(ClientEvent::Update(Box::new(Update::from_pb(&snap))));
    app.clock = fixed_clock();
    app.last_update = Some(fixed_clock());
    (app, gw)
}

#[tokio::test]
async fn main_screen_120x40_mid_incident() {
    // 10 simulated hours: scan done, reindex running into the EU morning.
    let (mut app, gw) = app_after(600, Theme::from_env()).await;
    let s = screen(&mut app, 120, 40);
    for panel in [
        "SIMULATED",
        "Service health",
        "Inbound queue",
        "Reindex",
        "Tenants",
    ] {
        assert!(s.contains(panel), "{panel} missing:\n{s}");
    }
    insta::assert_snapshot!("main_120x40", s);
    gw.stop().await;
}

#[tokio::test]
async fn main_screen_80x24_mid_incident() {
    let (mut app, gw) = app_after(600, Theme::from_env()).await;
    let s = screen(&mut app, 80, 24);
    for panel in [
        "SIMULATED",
        "LIVE",
        "Service health",
        "Inbound queue",
        "Reindex",
        "Tenants",
    ] {
        assert!(s.contains(panel), "{panel} missing:\n{s}");
    }
    insta::assert_snapshot!("main_80x24", s);
    gw.stop().await;
}

/// T+20h: only Cluster A's biggest tenant is still affected, and the
/// narrow header counts it as one tenant ("1 tenants" before).
#[tokio::test]
async fn a_single_affected_tenant_is_counted_in_the_singular() {
    let (mut app, gw) = app_after(20 * 60, Theme::mono()).await;
    assert_eq!(app.model.overview.totals.affected_tenants, 1);
    let s = screen(&mut app, 80, 24);
    let counts = s.lines().nth(1).unwrap_or_default();
    assert!(counts.contains(" · 1 tenant · "), "{counts}");
    assert!(!counts.contains("tenants"), "{counts}");
    gw.stop().await;
}

/// One timeline in a drill: the header's clock is the simulated time the
/// ETAs on screen are relative to, not the wall clock (which read 12:00
/// beside ETAs of a 2008 evening).
#[tokio::test]
async fn in_a_drill_the_header_shows_the_incidents_clock_even_at_80x24() {
    let (mut app, gw) = app_after(600, Theme::mono()).await;
    let sim_now = app.model.overview.incident.now.expect("the drill's clock");
    let s = screen(&mut app, 80, 24);
    let header = s.lines().next().unwrap_or_default();
    let shown = sim_now.format("%H:%M").to_string();
    assert!(
        header.contains(&format!("{shown} UTC")),
        "{shown} in: {header}"
    );
    assert!(!header.contains("12:00"), "the wall clock in: {header}");
    gw.stop().await;
}

#[tokio::test]
async fn too_small_terminal_says_so() {
    let (mut app, gw) = app_after(1, Theme::mono()).await;
    let s = screen(&mut app, 50, 12);
    assert!(s.contains("terminal too small"), "{s}");
    gw.stop().await;
}

#[tokio::test]
async fn enter_opens_the_tenants_mailboxes_and_esc_goes_back() {
    let (mut app, gw) = app_after(300, Theme::mono()).await;
    app.prepare();
    let top = app.model.ordered_at(0).unwrap().name.to_string();
    let Command::FetchMailboxes(req) = app.on_key(KeyEvent::from(KeyCode::Enter)) else {
        panic!("enter should fetch the mailboxes");
    };
    let (tx, mut rx) = mpsc::channel(4);
    client::spawn_mailboxes(GatewayClient::new(&gw.url()).unwrap(), req, tx);
    let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .unwrap()
        .unwrap();
    app.on_client(ev);
    let s = screen(&mut app, 120, 40);
    assert!(s.contains(&top), "tenant name in the drill-down:\n{s}");
    assert!(
        s.contains("Mailboxes · ") && s.contains(" not ok (affected now or restored)"),
        "{s}"
    );
    let View::Tenant(tv) = &app.view else {
        panic!("in the drill-down");
    };
    assert!(tv.total > 0 && !tv.rows.is_empty());
    let first: String = tv.rows[0].address.chars().take(30).collect();
    assert!(s.contains(&first), "first mailbox listed:\n{s}");
    assert!(matches!(
        app.on_key(KeyEvent::from(KeyCode::Esc)),
        Command::None
    ));
    let s = screen(&mut app, 120, 40);
    assert!(s.contains("Service health"), "back on the overview:\n{s}");
    assert!(matches!(
        app.on_key(KeyEvent::from(KeyCode::Char('?'))),
        Command::None
    ));
    assert!(screen(&mut app, 120, 40).contains("Keys"), "help shows");
    assert!(matches!(
        app.on_key(KeyEvent::from(KeyCode::Char('q'))),
        Command::Quit
    ));
    gw.stop().await;
}

#[tokio::test]
async fn no_color_writes_no_colour_codes() {
    let (mut app, gw) = app_after(600, Theme::mono()).await;
    let out = bytes(&mut app, 80, 24);
    assert!(
        out.contains("SIMULATED") && out.contains("Reindex"),
        "{out:?}"
    );
    let colours = common::colour_codes(&out);
    assert!(
        colours.is_empty(),
        "colour codes {colours:?} written with NO_COLOR"
    );
    gw.stop().await;
}

#[tokio::test]
async fn escape_sequences_in_backend_data_stay_inert() {
    let mut app = App::new("http://127.0.0.1:1".into(), Theme::from_env());
    let evil = |id: &str, name: &str| pb::TenantSummary {
        id: id.into(),
        name: name.into(),
        primary_domain: "\x1b[31mevil.example".into(),
        mailboxes: 10,
        states: Some(pb::MailboxStateCounts {
            locked_out: 10,
            ..Default::default()
        }),
        ..Default::default()
    };
    app.on_client(ClientEvent::Update(Box::new(Update::from_pb(
        &pb::WatchUpdate {
            version: 1,
            snapshot: true,
            incident: Some(pb::Incident {
                title: "outage\x1b]0;pwned\x07".into(),
                ..Default::default()
            }),
            tenants: vec![evil("t1", "\x1b]52;c;aGVsbG8=\x07"), evil("t2", "\x1b[2J")],
            ..Default::default()
        },
    ))));
    app.clock = fixed_clock();
    let s = screen(&mut app, 120, 40);
    assert!(s.contains("␛]52;c;aGVsbG8=␇"), "{s}");
    assert!(s.contains("␛[2J"), "{s}");
    let out = bytes(&mut app, 120, 40);
    for seq in ["\x1b]52", "\x1b[2J", "\x1b]0;", "\x07", "\x1b[31mevil"] {
        assert!(!out.contains(seq), "{seq:?} reached the terminal");
    }
}

#[tokio::test]
async fn unreachable_gateway_shows_disconnected_and_retrying() {
    // Nothing listens on port 1 of loopback.
    let client = GatewayClient::new("http://127.0.0.1:1").unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    let task = tokio::spawn(client::watch_forever(client, tx, Default::default()));
    let mut app = App::new("http://127.0.0.1:1".into(), Theme::mono());
    while !matches!(app.conn, Conn::Down { .. }) {
        let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap()
            .unwrap();
        app.on_client(ev);
    }
    app.clock = fixed_clock();
    let s = screen(&mut app, 80, 24);
    assert!(s.contains("DISCONNECTED, retrying"), "{s}");
    assert!(s.contains("unreachable"), "{s}");
    // It keeps trying: the next event is another attempt.
    let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(ev, ClientEvent::Connecting { attempt: 2 }),
        "{ev:?}"
    );
    task.abort();
}

/// Types `query` on the lookup screen (`L`) and applies the gateway's
/// answer to the newest keystroke, as the UI loop does.
async fn look_up(app: &mut App, gw: &warroom::gateway::Gateway, query: &str) {
    assert!(matches!(
        app.on_key(KeyEvent::from(KeyCode::Char('L'))),
        Command::None
    ));
    let mut last = None;
    for c in query.chars() {
        if let Command::Lookup { serial, query } = app.on_key(KeyEvent::from(KeyCode::Char(c))) {
            last = Some((serial, query));
        }
    }
    let (serial, query) = last.expect("typing asks the gateway");
    let (tx, mut rx) = mpsc::channel(4);
    client::spawn_lookup(GatewayClient::new(&gw.url()).unwrap(), serial, query, tx);
    let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .unwrap()
        .unwrap();
    app.on_client(ev);
}

/// Issue #15: the lookup screen said "20 matches" for `acme` and showed
/// neither Acme tenant with affected mailboxes (14th and 54th of 78).
#[tokio::test]
async fn lookup_screen_says_how_many_matched_and_lists_the_affected_first() {
    let (mut app, gw) = app_after(600, Theme::mono()).await;
    look_up(&mut app, &gw, "acme").await;
    let View::Lookup(lv) = &app.view else {
        panic!("on the lookup screen");
    };
    assert_eq!(lv.found.total, Some(78));
    let affected: Vec<bool> = lv
        .found
        .matches
        .iter()
        .map(|m| m.affected_mailboxes.unwrap_or(0) > 0)
        .collect();
    let n = affected.iter().filter(|a| **a).count();
    assert!(n >= 2, "{affected:?}");
    assert!(
        affected[..n].iter().all(|a| *a),
        "affected first: {affected:?}"
    );
    let s = screen(&mut app, 120, 40);
    assert!(s.contains("20 of 78 matches"), "{s}");
    assert!(s.contains("Acme Title & Escrow"), "{s}");
    assert!(!s.contains("did you mean"), "{s}");
    insta::assert_snapshot!("lookup_acme_120x40", s);
    let s = screen(&mut app, 80, 24);
    assert!(s.contains("20 of 78 matches"), "{s}");
    insta::assert_snapshot!("lookup_acme_80x24", s);
    gw.stop().await;
}

/// Issue #15: a misspelling was answered as if it had been typed.
#[tokio::test]
async fn lookup_screen_asks_did_you_mean_for_a_misspelling() {
    let (mut app, gw) = app_after(600, Theme::mono()).await;
    look_up(&mut app, &gw, "acme-titel.com").await;
    let s = screen(&mut app, 120, 40);
    assert!(s.contains("did you mean acme-title.com?"), "{s}");
    assert!(s.contains("≈ acme-title.com"), "the row is marked: {s}");
    assert!(s.contains("approximate match"), "{s}");
    assert!(
        s.contains("say: \"If you meant acme-title.com: your "),
        "{s}"
    );
    insta::assert_snapshot!("lookup_misspelt_120x40", s);
    let s = screen(&mut app, 80, 24);
    assert!(s.contains("did you mean acme-title.com?"), "{s}");
    insta::assert_snapshot!("lookup_misspelt_80x24", s);
    gw.stop().await;
}

/// Issue #13 item 4, "slips are shown, not hidden": four hours in, the
/// scan has found far more than the first estimates assumed and many
/// tenants' ETAs are hours later than first shown. The gateway marks them;
/// the table, the drill-down and the lookup show the mark as it came, with
/// the arrow (NO_COLOR: no colour, the same words), and the composer lists
/// them for the next update.
#[tokio::test]
async fn eta_slips_are_marked_on_the_table_the_drill_down_the_lookup_and_the_composer() {
    use warroom::domain::format::{slip_marker, slip_short};
    let (mut app, gw) = app_after(240, Theme::mono()).await;
    app.prepare();
    let now = app.model.overview.incident.now.unwrap();
    let slipped: Vec<(String, String, String)> = app
        .model
        .ordered()
        .take(20)
        .filter_map(|t| {
            let s = t.eta_slip.as_ref()?;
            Some((t.id.to_string(), slip_short(s), slip_marker(s, now)))
        })
        .collect();
    assert!(
        slipped.len() >= 3,
        "tenants on screen whose ETA slipped: {slipped:?}"
    );
    let s = screen(&mut app, 120, 40);
    assert!(s.contains(" slip "), "the column: {s}");
    for (_, short, _) in &slipped {
        assert!(s.contains(short.as_str()), "{short} on the table:\n{s}");
    }
    insta::assert_snapshot!("slips_120x40", s);
    let s = screen(&mut app, 80, 24);
    assert!(s.contains(slipped[0].1.as_str()), "{s}");
    insta::assert_snapshot!("slips_80x24", s);
    // Without colour the arrow says it.
    let out = bytes(&mut app, 80, 24);
    assert!(out.contains("↗+"), "{out:?}");
    assert!(common::colour_codes(&out).is_empty());

    // The drill-down of the first slipped tenant on screen.
    let (id, _, marker) = slipped[0].clone();
    while app.model.ordered_at(app.selected).map(|t| t.id.to_string()) != Some(id.clone()) {
        app.on_key(KeyEvent::from(KeyCode::Down));
    }
    app.on_key(KeyEvent::from(KeyCode::Enter));
    let s = screen(&mut app, 120, 40);
    assert!(
        s.contains(&format!(" {marker}: the p90 was ")) && s.contains("when first shown"),
        "{marker} in the drill-down:\n{s}"
    );
    app.on_key(KeyEvent::from(KeyCode::Esc));

    // The lookup answers with it, and the sentence for the customer says so.
    look_up(&mut app, &gw, &id).await;
    let s = screen(&mut app, 120, 40);
    assert!(s.contains(&format!("  {marker} (the p90 was ")), "{s}");
    assert!(s.contains("later than estimated at"), "{s}");
    insta::assert_snapshot!("slips_lookup_120x40", s);
    app.on_key(KeyEvent::from(KeyCode::Esc));

    // The composer lists them for the update.
    app.me = Some(warroom::console::app::Me {
        name: "cy".into(),
        role: warroom::domain::priority::Role::Comms,
        authenticated: true,
    });
    app.on_key(KeyEvent::from(KeyCode::Char('U')));
    let s = screen(&mut app, 120, 40);
    let all = app.model.ordered().filter(|t| t.eta_slip.is_some()).count();
    assert!(all >= slipped.len());
    assert!(
        s.contains(&format!(
            "↗ ETA moved later for {all} tenants since first shown;"
        )),
        "{all}: {s}"
    );
    assert!(s.contains(&marker), "{s}");
    insta::assert_snapshot!("slips_composer_120x40", s);
    gw.stop().await;
}
