//! The console: a ratatui TUI that holds no business logic of its own. It
//! reads everything from a gateway over gRPC — in the demo too, where the
//! gateway runs in-process on a loopback port.
//!
//! Data flow: `crate::client` (tokio tasks: Watch with reconnect, unary queries) →
//! `mpsc` → the UI loop (`run`), which owns `App` alone — no shared mutex —
//! and draws only when input arrived, data changed, or the clock's second
//! changed.

pub mod app;
pub(crate) mod composer;
pub(crate) mod fit;
mod input;
pub mod keymap;
pub mod model;
mod screens;
pub mod snapshot;
pub mod terminal;
pub mod theme;
pub mod ui;
pub mod wire;

use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use ratatui::crossterm::event::{Event, EventStream, KeyEventKind};
use tokio::sync::mpsc;

use crate::client::{self, ClientEvent, GatewayClient};
use app::{App, Command};

/// Starts the network work a key or an update asked for.
fn run_command(
    cmd: Command,
    draft_path: &std::path::Path,
    client: &GatewayClient,
    tx: &mpsc::Sender<ClientEvent>,
    resubscribe: &tokio::sync::Notify,
) {
    match cmd {
        Command::FetchMailboxes(req) => client::spawn_mailboxes(client.clone(), req, tx.clone()),
        Command::Resubscribe => resubscribe.notify_one(),
        Command::Lookup { serial, query } => {
            client::spawn_lookup(client.clone(), serial, query, tx.clone())
        }
        Command::Copy(text) => terminal::copy_osc52(&text),
        Command::Export(tenant) => client::spawn_export(client.clone(), tenant, tx.clone()),
        Command::WhoAmI => client::spawn_whoami(client.clone(), tx.clone()),
        Command::SetPriority { serial, request } => {
            client::spawn_set_priority(client.clone(), serial, request, tx.clone())
        }
        Command::FetchAudit { serial, after_id } => {
            client::spawn_audit(client.clone(), serial, after_id, tx.clone())
        }
        Command::FetchTrends { serial, tenant_id } => {
            client::spawn_trends(client.clone(), serial, tenant_id, tx.clone())
        }
        Command::SaveDraft(draft) => composer::save_draft(draft_path, draft.as_deref()),
        Command::PreviewStatus { serial, draft } => {
            client::spawn_preview(client.clone(), serial, draft, tx.clone())
        }
        Command::PublishStatus {
            serial,
            draft,
            operation_id,
            confirm_warnings,
        } => client::spawn_publish(
            client.clone(),
            serial,
            draft,
            operation_id,
            confirm_warnings,
            tx.clone(),
        ),
        Command::Bell => terminal::bell(),
        Command::None | Command::Quit => {}
    }
}

/// How to run the console.
pub struct Options {
    pub client: GatewayClient,
    /// Act as a viewer whatever the token allows.
    pub read_only: bool,
    /// The gateway is the embedded demo: say SIMULATED before data arrives.
    pub simulated_hint: bool,
    pub keymap: keymap::Keymap,
    pub theme: theme::Theme,
    /// Capture the mouse for the scroll wheel (off by default: capture
    /// breaks copy and paste over SSH).
    pub mouse: bool,
    /// Shown in the footer at start, e.g. why a user keymap was not used.
    pub startup_warning: Option<String>,
    /// Shortest time between two frames drawn for data alone.
    pub refresh: Duration,
    /// Where the composer keeps its draft (XDG state dir).
    pub draft_path: std::path::PathBuf,
    /// Ring the bell when a promised status update is overdue.
    pub bell: bool,
}

/// Runs the console until the user quits or the terminal goes away.
/// Returns the process exit code.
pub async fn run(opts: Options) -> anyhow::Result<i32> {
    let client = opts.client;
    let (tx, mut rx) = mpsc::channel::<ClientEvent>(64);
    let resubscribe = std::sync::Arc::new(tokio::sync::Notify::new());
    let watch = tokio::spawn(client::watch_forever(
        client.clone(),
        tx.clone(),
        resubscribe.clone(),
    ));

    let mut app = App::new(client.url().to_string(), opts.theme);
    app.read_only = opts.read_only;
    app.bell = opts.bell;
    app.simulated_hint = opts.simulated_hint;
    app.keymap = opts.keymap;
    app.status = opts.startup_warning.map(|w| (w, true));
    match composer::load_draft(&opts.draft_path) {
        Ok(Some(d)) => {
            app.status = app.status.take().or(Some((
                composer::draft_waiting(&d, chrono::Utc::now()),
                false,
            )));
            app.saved_draft = Some(d);
        }
        Ok(None) => {}
        Err(e) => app.status = Some((e, true)),
    }
    app.refresh = opts.refresh;
    let panic_drill = std::env::var_os("WARROOM_DRILL_PANIC").is_some();
    let mut term = terminal::enter(opts.mouse)?;
    let mut signals = terminal::Signals::new()?;
    let mut events = EventStream::new();
    let mut clock = tokio::time::interval(Duration::from_millis(250));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut shown_second = String::new();
    // Data arriving faster than `refresh` waits for the next frame: on a slow
    // link, fewer frames are fewer bytes. Keys always draw at once.
    let mut data_pending = false;
    let mut last_draw = std::time::Instant::now();

    let code = loop {
        app.clock = Utc::now();
        if data_pending && last_draw.elapsed() >= app.refresh {
            dirty = true;
        }
        if dirty {
            app.prepare();
            term.draw(|f| ui::render(f, &app))?;
            // A drill for the panic path (tests/e2e_tmux.rs): the hook that
            // `terminal::enter` installed must give the terminal back.
            if panic_drill {
                panic!("WARROOM_DRILL_PANIC is set: panicking on purpose after the first frame");
            }
            dirty = false;
            data_pending = false;
            last_draw = std::time::Instant::now();
        }
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    match app.on_key(k) {
                        Command::Quit => break 0,
                        cmd => run_command(cmd, &opts.draft_path, &client, &tx, &resubscribe),
                    }
                    dirty = true;
                }
                Some(Ok(Event::Resize(..))) => dirty = true,
                Some(Ok(Event::Mouse(m))) => {
                    use ratatui::crossterm::event::MouseEventKind;
                    let action = match m.kind {
                        MouseEventKind::ScrollDown => Some(keymap::Action::Down),
                        MouseEventKind::ScrollUp => Some(keymap::Action::Up),
                        _ => None,
                    };
                    if let Some(a) = action {
                        // Scrolling past a page asks for the next one.
                        let cmd = app.perform(a);
                        run_command(cmd, &opts.draft_path, &client, &tx, &resubscribe);
                        dirty = true;
                    }
                }
                Some(Ok(_)) => {}
                // The terminal is gone (a dropped SSH session): leave cleanly.
                Some(Err(_)) | None => break 0,
            },
            Some(msg) = rx.recv() => {
                // Coalesce a burst of updates into one frame; anything but a
                // data update (connection lost, a list arrived) and a
                // priority decision draws at once.
                let mut urgent = false;
                // When it arrived: the update interval is measured on it.
                app.clock = Utc::now();
                let mut next = Some(msg);
                while let Some(msg) = next {
                    urgent |= app.is_urgent(&msg);
                    let cmd = app.on_client(msg);
                    run_command(cmd, &opts.draft_path, &client, &tx, &resubscribe);
                    next = rx.try_recv().ok();
                }
                data_pending = true;
                dirty |= urgent;
            }
            _ = clock.tick() => {
                let now = Utc::now();
                let second = app.clock_key(now);
                if second != shown_second {
                    shown_second = second;
                    dirty = true;
                }
                let cmd = app.bell_due();
                run_command(cmd, &opts.draft_path, &client, &tx, &resubscribe);
            }
            _ = signals.recv() => break 0,
        }
    };
    watch.abort();
    terminal::leave(&mut term, opts.mouse)?;
    Ok(code)
}
