//! The help over the screen: the keys that work here, from the active
//! keymap, minus what this console's role cannot do.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::frame::{first_keys, hidden, overlay, safe};
use crate::console::app::{App, Command};
use crate::console::fit;
use crate::console::keymap::{Action, Context};

impl App {
    /// Keys while the help is open (`Context::Help`, with `[global]`):
    /// they scroll a help taller than the terminal; any other key closes
    /// it; quit still quits.
    pub(in crate::console) fn help_key(&mut self, action: Option<Action>) -> Command {
        let max = self.help_max_scroll.get();
        let at = self.help_scroll.min(max);
        let scrolled = match action {
            Some(Action::Down) => Some(at.saturating_add(1).min(max)),
            Some(Action::Up) => Some(at.saturating_sub(1)),
            Some(Action::PageDown) => Some(at.saturating_add(10).min(max)),
            Some(Action::PageUp) => Some(at.saturating_sub(10)),
            Some(Action::Top) => Some(0),
            Some(Action::Bottom) => Some(max),
            _ => None,
        };
        if let Some(to) = scrolled {
            self.help_scroll = to;
            return Command::None;
        }
        self.help = false;
        self.help_scroll = 0;
        if action == Some(Action::Quit) {
            Command::Quit
        } else {
            Command::None
        }
    }
}

/// The contexts the help lists over `here`: `[global]` where it applies,
/// `here`, and the stages a form goes on to (the form's confirmation, the
/// composer's preview), so every key of what is open is in one place.
fn help_contexts(here: Context) -> Vec<Context> {
    let mut out = Vec::new();
    if here.takes_global() {
        out.push(Context::Global);
    }
    out.push(here);
    out.extend_from_slice(match here {
        Context::Priority => &[Context::ConfirmPriority][..],
        Context::Composer => &[Context::Preview, Context::ConfirmPublish],
        Context::Preview => &[Context::ConfirmPublish],
        _ => &[],
    });
    out
}

/// The keys that work here, from the active keymap, one section per
/// context (`help_contexts`), each description wrapped under its own
/// column in `width` cells so none is cut.
fn help_lines(app: &App, here: Context, width: usize) -> Vec<Line<'static>> {
    let (km, th) = (&app.keymap, &app.theme);
    let sections: Vec<(Context, Vec<(String, &'static str)>)> = help_contexts(here)
        .into_iter()
        .map(|ctx| {
            let mut keys: Vec<(String, &'static str)> = ctx
                .actions()
                .iter()
                .filter(|a| !hidden(app, **a))
                .map(|a| (safe(&km.label(ctx, *a)), a.describe(ctx)))
                .collect();
            if ctx.types() {
                keys.insert(0, ("typing".into(), "edits the text (backspace erases)"));
            }
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
            format!("{} · [{}]", ctx.title(), ctx.name()),
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
pub(crate) fn render(f: &mut Frame, area: Rect, app: &App) {
    let th = &app.theme;
    let here = app.beneath_help();
    let w = (help_width(app, here) as u16 + 2).min(area.width);
    let lines = help_lines(app, here, w.saturating_sub(2) as usize);
    let h = (lines.len() as u16 + 2).min(area.height);
    let inner_h = h.saturating_sub(2) as usize;
    let max_scroll = lines.len().saturating_sub(inner_h);
    app.help_max_scroll.set(max_scroll as u16);
    let scroll = (app.help_scroll as usize).min(max_scroll);
    let title = if max_scroll > 0 {
        format!(
            " Keys ({}) {}–{} of {} · {} scroll, other keys close ",
            safe(app.keymap.name()),
            scroll + 1,
            scroll + inner_h,
            lines.len(),
            first_keys(app, Context::Help, &[Action::Up, Action::Down])
                .unwrap_or_else(|| "unbound".into())
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
