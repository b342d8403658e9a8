//! The console: a ratatui TUI that holds no business logic of its own. It
//! reads everything from a gateway over gRPC — in the demo too, where the
//! gateway runs in-process on a loopback port.
//!
//! Data flow: `client` (tokio tasks: Watch with reconnect, unary queries) →
//! `mpsc` → the UI loop (`run`), which owns `App` alone — no shared mutex —
//! and draws only when input arrived, data changed, or the clock's second
//! changed.

pub mod app;
pub mod client;
pub mod model;
pub mod terminal;
pub mod theme;
pub mod ui;

use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use ratatui::crossterm::event::{Event, EventStream, KeyEventKind};
use tokio::sync::mpsc;

use app::{App, Command};
use client::{ClientEvent, GatewayClient};

/// Runs the console against `url` until the user quits or the terminal goes
/// away. Returns the process exit code.
pub async fn run(url: String, simulated_hint: bool) -> anyhow::Result<i32> {
    let client = GatewayClient::new(&url)?;
    let (tx, mut rx) = mpsc::channel::<ClientEvent>(64);
    let watch = tokio::spawn(client::watch_forever(client.clone(), tx.clone()));

    let mut app = App::new(url, theme::Theme::from_env());
    app.simulated_hint = simulated_hint;
    let mut term = terminal::enter()?;
    let mut signals = terminal::Signals::new()?;
    let mut events = EventStream::new();
    let mut clock = tokio::time::interval(Duration::from_millis(250));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut shown_second = String::new();

    let code = loop {
        app.clock = Utc::now();
        if dirty {
            app.prepare();
            term.draw(|f| ui::render(f, &mut app))?;
            dirty = false;
        }
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    match app.on_key(k) {
                        Command::Quit => break 0,
                        Command::FetchMailboxes(req) => client::spawn_mailboxes(client.clone(), req, tx.clone()),
                        Command::None => {}
                    }
                    dirty = true;
                }
                Some(Ok(Event::Resize(..))) => dirty = true,
                Some(Ok(_)) => {}
                // The terminal is gone (a dropped SSH session): leave cleanly.
                Some(Err(_)) | None => break 0,
            },
            Some(msg) = rx.recv() => {
                app.on_client(msg);
                // Coalesce a burst of updates into one frame.
                while let Ok(more) = rx.try_recv() {
                    app.on_client(more);
                }
                dirty = true;
            }
            _ = clock.tick() => {
                let now = Utc::now();
                let second = app.clock_key(now);
                if second != shown_second {
                    shown_second = second;
                    dirty = true;
                }
            }
            _ = signals.recv() => break 0,
        }
    };
    watch.abort();
    terminal::leave(&mut term)?;
    Ok(code)
}
