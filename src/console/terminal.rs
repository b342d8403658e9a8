//! Terminal lifecycle: raw mode and the alternate screen on entry, restored
//! on every exit path — normal quit, panic (ratatui's hook), SIGTERM and
//! SIGHUP (a dropped SSH session). The mouse is never captured, so copy and
//! paste keep working over SSH and in tmux.

use std::io::Stdout;

use ratatui::Terminal;
use ratatui::crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{EnterAlternateScreen, enable_raw_mode};

use super::wire::WireBackend;

/// The console's terminal: ratatui over the byte-saving backend.
pub type Term = Terminal<WireBackend<Stdout>>;

pub fn enter(mouse: bool) -> anyhow::Result<Term> {
    // As `ratatui::try_init`, with our backend: a panic hook that restores
    // the terminal before the message is printed, raw mode, the alternate
    // screen.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = ratatui::try_restore();
        hook(info);
    }));
    enable_raw_mode()?;
    execute!(std::io::stdout(), EnterAlternateScreen)?;
    let mut term = Terminal::new(WireBackend::new(std::io::stdout()))?;
    // A known blank screen: what ratatui's first diff assumes, and what
    // lets the backend rewrite short gaps instead of moving over them.
    // (Not `Terminal::clear`, which first asks the terminal where the
    // cursor is and waits for the answer.)
    ratatui::backend::Backend::clear(term.backend_mut())?;
    if mouse {
        execute!(std::io::stdout(), EnableMouseCapture)?;
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = execute!(std::io::stdout(), DisableMouseCapture);
            hook(info);
        }));
    }
    Ok(term)
}

pub fn leave(_term: &mut Term, mouse: bool) -> anyhow::Result<()> {
    if mouse {
        execute!(std::io::stdout(), DisableMouseCapture)?;
    }
    ratatui::try_restore()?;
    Ok(())
}

/// SIGTERM, SIGHUP and SIGINT as one stream of "please stop" (SIGHUP left
/// out where it means something else).
pub struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> anyhow::Result<Self> {
        Self::new_without_hangup(false)
    }

    /// As `new`, but SIGHUP is not "please stop" when `without_hangup`
    /// (someone else listens for it: the gateway reloads its TLS files).
    pub fn new_without_hangup(without_hangup: bool) -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                hup: if without_hangup {
                    None
                } else {
                    Some(signal(SignalKind::hangup())?)
                },
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            let _ = without_hangup;
            Ok(Signals {})
        }
    }

    pub async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            Some(_) = async {
                match self.hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => futures::future::pending().await,
                }
            } => {}
            _ = self.int.recv() => {}
        }
        #[cfg(not(unix))]
        futures::future::pending::<()>().await
    }
}

/// Puts `text` on the clipboard of the terminal the user sits at, through
/// OSC 52: it travels over SSH and through tmux (with `set-clipboard on`).
/// The text is base64, so nothing in it can act as an escape sequence.
pub fn copy_osc52(text: &str) {
    use std::io::Write;
    let seq = format!(
        "\x1b]52;c;{}\x07",
        crate::domain::format::base64(text.as_bytes())
    );
    let mut out = std::io::stdout();
    let _ = out.write_all(seq.as_bytes());
    let _ = out.flush();
}

/// Rings the terminal bell.
pub fn bell() {
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = out.write_all(b"\x07");
    let _ = out.flush();
}
