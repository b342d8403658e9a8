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
use warroom::console::app::{App, Command, Conn, View};
use warroom::console::client::{self, ClientEvent, GatewayClient};
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
    app.on_client(ClientEvent::Update(Box::new(snap)));
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
    assert!(s.contains("Mailboxes · all not ok"), "{s}");
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
    app.on_client(ClientEvent::Update(Box::new(pb::WatchUpdate {
        version: 1,
        snapshot: true,
        incident: Some(pb::Incident {
            title: "outage\x1b]0;pwned\x07".into(),
            ..Default::default()
        }),
        tenants: vec![evil("t1", "\x1b]52;c;aGVsbG8=\x07"), evil("t2", "\x1b[2J")],
        ..Default::default()
    })));
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
