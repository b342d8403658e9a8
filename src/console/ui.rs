//! Drawing. Everything on screen comes from the model the gateway sent;
//! every string from the gateway passes through `sanitize` (via `safe`)
//! before it reaches a cell. This lays the frame out (header, body,
//! footer, the forms and the help over it) and routes each part to its
//! screen's module under `screens/`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::widgets::{Paragraph, Wrap};

use super::app::{App, View};
use super::screens::{composer, frame, help, lookup, overview, prio, tenant, timeline, trends};

pub use super::screens::frame::footer_hints;

/// Smallest terminal the layout works in.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

pub fn render(f: &mut Frame, app: &App) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal too small: {}x{}, warroom needs at least {MIN_WIDTH}x{MIN_HEIGHT}. Enlarge it or press q to quit.",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let wide = area.width >= 110;
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(area);
    frame::render_header(f, header, app);
    match &app.view {
        _ if app.composer.is_some() => {
            if let Some(c) = &app.composer {
                composer::render(f, body, app, c);
            }
        }
        View::Overview => overview::render(f, body, app, wide),
        View::Tenant(tv) => tenant::render(f, body, app, tv),
        View::Lookup(lv) => lookup::render(f, body, app, lv),
        View::Timeline(tv) => timeline::render(f, body, app, tv),
        View::Trends(tv) => trends::render(f, body, app, tv),
    }
    frame::render_footer(f, footer, app);
    if let Some(form) = &app.prio {
        prio::render(f, area, app, form);
    }
    if app.help {
        help::render(f, area, app);
    }
}
