//! The help over the screen: the keys that work here, from the active
//! keymap, minus what this console's role cannot do.

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::frame::{hidden, overlay, safe};
use crate::console::app::{App, Command};
use crate::console::fit;
use crate::console::keymap::{Action, Context};

impl App {
    /// Keys while the help is open: ↑↓ (and pages, home, end) scroll a help
    /// taller than the terminal; any other key closes it; quit still quits.
    pub(in crate::console) fn help_key(
        &mut self,
        k: KeyEvent,
        action: Option<Action>,
        ctrl_c: bool,
    ) -> Command {
        let max = self.help_max_scroll.get();
        let at = self.help_scroll.min(max);
        let scrolled = match (k.code, action) {
            (KeyCode::Down, _) | (_, Some(Action::Down)) => Some(at.saturating_add(1).min(max)),
            (KeyCode::Up, _) | (_, Some(Action::Up)) => Some(at.saturating_sub(1)),
            (KeyCode::PageDown, _) => Some(at.saturating_add(10).min(max)),
            (KeyCode::PageUp, _) => Some(at.saturating_sub(10)),
            (KeyCode::Home, _) => Some(0),
            (KeyCode::End, _) => Some(max),
            _ => None,
        };
        if let Some(to) = scrolled {
            self.help_scroll = to;
            return Command::None;
        }
        self.help = false;
        self.help_scroll = 0;
        if action == Some(Action::Quit) || (action.is_none() && ctrl_c) {
            Command::Quit
        } else {
            Command::None
        }
    }
}

/// The keys that work here, from the active keymap: global ones and the
/// current view's, each description wrapped under its own column in
/// `width` cells so none is cut.
fn help_lines(app: &App, here: Context, width: usize) -> Vec<Line<'static>> {
    let (km, th) = (&app.keymap, &app.theme);
    let sections: Vec<(Context, Vec<(String, &'static str)>)> = [Context::Global, here]
        .into_iter()
        .map(|ctx| {
            let keys = ctx
                .actions()
                .iter()
                .filter(|a| !hidden(app, **a))
                .map(|a| (safe(&km.label(ctx, *a)), a.describe()))
                .collect();
            (ctx, keys)
        })
        .collect();
    let key_w = sections
        .iter()
        .flat_map(|(_, k)| k.iter().map(|(label, _)| fit::width(label)))
        .max()
        .unwrap_or(0)
        .min(20);
    let text_w = width.saturating_sub(key_w + 2).max(10);
    let mut lines = Vec::new();
    for (ctx, keys) in sections {
        lines.push(Line::from(Span::styled(
            format!("{} keys", ctx.name()),
            th.title()
                .add_modifier(ratatui::style::Modifier::UNDERLINED),
        )));
        for (label, what) in keys {
            for (i, part) in fit::wrap(what, text_w).into_iter().enumerate() {
                let key = if i == 0 {
                    fit::middle(&label, key_w)
                } else {
                    String::new()
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("{key:>key_w$}  "), th.title()),
                    Span::raw(part),
                ]));
            }
        }
    }
    lines
}

/// The widest the help wants: keys and descriptions on one line each.
fn help_width(app: &App, here: Context) -> usize {
    help_lines(app, here, usize::MAX / 2)
        .iter()
        .map(|l| l.width())
        .max()
        .unwrap_or(0)
}

/// The help over the screen: as wide as its lines want (up to the
/// terminal), as tall as the terminal; ↑↓ scroll it when it does not fit.
pub fn render(f: &mut Frame, area: Rect, app: &App) {
    let th = &app.theme;
    let here = app.context();
    let w = (help_width(app, here) as u16 + 2).min(area.width);
    let lines = help_lines(app, here, w.saturating_sub(2) as usize);
    let h = (lines.len() as u16 + 2).min(area.height);
    let inner_h = h.saturating_sub(2) as usize;
    let max_scroll = lines.len().saturating_sub(inner_h);
    app.help_max_scroll.set(max_scroll as u16);
    let scroll = (app.help_scroll as usize).min(max_scroll);
    let title = if max_scroll > 0 {
        format!(
            " Keys ({}) {}–{} of {} · ↑↓ scroll, other keys close ",
            safe(app.keymap.name()),
            scroll + 1,
            scroll + inner_h,
            lines.len()
        )
    } else {
        format!(
            " Keys ({} keymap) · any key closes ",
            safe(app.keymap.name())
        )
    };
    let r = overlay(f, area, w, h);
    f.render_widget(
        Paragraph::new(lines).scroll((scroll as u16, 0)).block(
            Block::default().borders(Borders::ALL).title(Span::styled(
                fit::end(&title, w.saturating_sub(2) as usize),
                th.title(),
            )),
        ),
        r,
    );
}
