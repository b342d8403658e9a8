//! Colours, used only to reinforce what text and symbols already say: state
//! is never shown by colour alone, and `NO_COLOR` turns colour off entirely.

use ratatui::style::{Color, Modifier, Style};

use crate::domain::{Health, MailboxState};

/// The palettes. All use the 16 ANSI colours only, so they work on any
/// colour terminal (no 256-colour or true-colour assumption).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Palette {
    #[default]
    Dark,
    Light,
    HighContrast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
    pub palette: Palette,
}

/// `NO_COLOR` set to anything non-empty (<https://no-color.org>).
pub fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

impl Theme {
    /// The dark theme, in colour unless `NO_COLOR` is set.
    pub fn from_env() -> Self {
        Theme {
            color: !no_color_env(),
            palette: Palette::Dark,
        }
    }

    /// A theme by name (dark, light, high-contrast); `NO_COLOR` wins.
    pub fn named(name: &str) -> Option<Self> {
        let palette = match name {
            "dark" => Palette::Dark,
            "light" => Palette::Light,
            "high-contrast" => Palette::HighContrast,
            _ => return None,
        };
        Some(Theme {
            color: !no_color_env(),
            palette,
        })
    }

    pub fn mono() -> Self {
        Theme {
            color: false,
            palette: Palette::Dark,
        }
    }

    fn fg(&self, c: Color) -> Style {
        if !self.color {
            return Style::default();
        }
        let c = match (self.palette, c) {
            (Palette::Light, Color::Yellow) => Color::Magenta,
            (Palette::Light, Color::Cyan) => Color::Blue,
            (Palette::Light, Color::Green) => Color::Green,
            (Palette::HighContrast, Color::Green) => Color::LightGreen,
            (Palette::HighContrast, Color::Yellow) => Color::LightYellow,
            (Palette::HighContrast, Color::Red) => Color::LightRed,
            (Palette::HighContrast, Color::Cyan) => Color::LightCyan,
            (_, c) => c,
        };
        let s = Style::default().fg(c);
        if self.palette == Palette::HighContrast {
            s.add_modifier(Modifier::BOLD)
        } else {
            s
        }
    }

    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    pub fn dim(&self) -> Style {
        match (self.color, self.palette) {
            (true, Palette::Dark) => Style::default().fg(Color::DarkGray),
            (true, Palette::Light) => Style::default().fg(Color::Gray),
            _ => Style::default(),
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
            MailboxState::ReindexPending | MailboxState::ResyncNeeded => self.fg(Color::Yellow),
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
        match (self.color, self.palette) {
            (false, _) => Style::default(),
            (true, Palette::Light) => Style::default().fg(Color::Blue),
            (true, _) => self.fg(Color::Cyan),
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
