//! Colours, used only to reinforce what text and symbols already say: state
//! is never shown by colour alone, and `NO_COLOR` turns colour off entirely.

use ratatui::style::{Color, Modifier, Style};

use crate::domain::{Health, MailboxState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set to anything non-empty
    /// (<https://no-color.org>).
    pub fn from_env() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme { color: !no_color }
    }

    pub fn mono() -> Self {
        Theme { color: false }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    pub fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    pub fn health(&self, h: Health) -> Style {
        match h {
            Health::Ok => self.fg(Color::Green),
            Health::Degraded => self.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            Health::Down => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Health::Unknown => self.fg(Color::Magenta),
        }
    }

    pub fn state(&self, s: MailboxState) -> Style {
        match s {
            MailboxState::Ok | MailboxState::Restored => self.fg(Color::Green),
            MailboxState::Reindexing => self.fg(Color::Cyan),
            MailboxState::ReindexPending => self.fg(Color::Yellow),
            MailboxState::LockedOut | MailboxState::Failed => {
                self.fg(Color::Red).add_modifier(Modifier::BOLD)
            }
        }
    }

    /// The SIMULATED badge: reverse video, so it stands out without colour.
    pub fn badge(&self) -> Style {
        let s = Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD);
        if self.color { s.fg(Color::Yellow) } else { s }
    }

    pub fn alert(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }

    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    pub fn gauge(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Cyan).bg(Color::Black)
        } else {
            Style::default()
        }
    }
}

/// Symbol and word for a health state, readable without colour.
pub fn health_label(h: Health) -> &'static str {
    match h {
        Health::Ok => "● ok",
        Health::Degraded => "▲ degraded",
        Health::Down => "✖ down",
        Health::Unknown => "? unknown",
    }
}

pub fn health_short(h: Health) -> &'static str {
    match h {
        Health::Ok => "● ok",
        Health::Degraded => "▲ degr",
        Health::Down => "✖ DOWN",
        Health::Unknown => "? unkn",
    }
}
