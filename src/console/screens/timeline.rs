//! The timeline: where status updates went (the page, each channel's
//! deliveries) and the war room's record of priority changes and
//! publishes, newest at the bottom; enter shows one event whole.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Table};

use super::frame::{block, render_selectable, safe};
use crate::console::app::App;
use crate::console::fit::{self, Col, Fit};
use crate::domain::format::{clip, thousands};

pub fn render(f: &mut Frame, area: Rect, app: &App, tv: &crate::console::app::TimelineView) {
    let th = &app.theme;
    // Where status updates went: the page, and each channel's deliveries.
    let board = &app.model.board;
    let [top, area] = Layout::vertical([Constraint::Length(2), Constraint::Min(3)]).areas(area);
    let mut lines = vec![Line::from(vec![
        Span::styled(" status page ", th.title()),
        Span::raw(if board.page_url.is_empty() {
            "none".to_string()
        } else {
            safe(&board.page_url)
        }),
        Span::raw(match &board.latest {
            Some(u) => format!(
                " · latest {} {} at {} UTC by {}",
                safe(&u.id),
                u.state.as_str(),
                u.published_at.format("%H:%M"),
                safe(&u.published_by)
            ),
            None => " · nothing published yet".into(),
        }),
    ])];
    let mut spans = vec![Span::styled(" deliveries ", th.title())];
    for c in &board.channels {
        let style = if c.failed > 0 {
            th.alert()
        } else if c.pending > 0 {
            th.badge()
        } else {
            th.ok()
        };
        let mut text = format!("{} {} sent", safe(&c.channel), thousands(c.sent));
        if c.pending > 0 {
            text.push_str(&format!(", {} pending", thousands(c.pending)));
        }
        if c.failed > 0 {
            text.push_str(&format!(", {} failed", thousands(c.failed)));
        }
        if (c.pending > 0 || c.failed > 0) && !c.last_problem.is_empty() {
            text.push_str(&format!(" ({})", clip(&safe(&c.last_problem), 40)));
        }
        spans.push(Span::styled(text, style));
        spans.push(Span::raw("  "));
    }
    if board.channels.is_empty() {
        spans.push(Span::raw("none yet"));
    }
    lines.push(Line::from(spans));
    f.render_widget(Paragraph::new(lines), top);
    let status = if tv.loading && tv.events.is_empty() {
        " loading…".to_string()
    } else {
        let n = tv.events.len() as u64;
        format!(
            " {} {}",
            thousands(n),
            if n == 1 { "event" } else { "events" }
        )
    };
    let b = block(
        app,
        &format!("Timeline: priority changes and publishes, UTC ·{status}"),
    );
    let inner = b.inner(area);
    if let Some(e) = &tv.error {
        f.render_widget(b, area);
        f.render_widget(
            Paragraph::new(Span::styled(format!("✖ {}", safe(e)), th.alert())),
            inner,
        );
        return;
    }
    if tv.events.is_empty() && !tv.loading {
        f.render_widget(b, area);
        f.render_widget(
            Paragraph::new(
                "Nothing on record yet: priority changes and status updates appear here.",
            ),
            inner,
        );
        return;
    }
    let visible = inner.height.saturating_sub(1).max(1) as usize;
    // Newest at the bottom, like a log; the selection starts there.
    let selected = tv.selected.min(tv.events.len().saturating_sub(1));
    let start = selected.saturating_sub(visible.saturating_sub(1));
    let plain = Style::default();
    let rows: Vec<Vec<(Fit, Style)>> = tv
        .events
        .iter()
        .skip(start)
        .take(visible)
        .map(|e| {
            vec![
                (
                    Fit::Choices(
                        ["%m-%d %H:%M:%S", "%H:%M:%S", "%H:%M"]
                            .map(|f| e.at.format(f).to_string())
                            .to_vec(),
                    ),
                    plain,
                ),
                (Fit::End(safe(&e.actor)), plain),
                (
                    Fit::Choices(vec![
                        safe(&e.action),
                        safe(e.action.strip_prefix("set_").unwrap_or(&e.action)),
                    ]),
                    plain,
                ),
                (Fit::End(event_target(app, e)), plain),
                (Fit::End(safe(&e.detail)), plain),
                (Fit::End(safe(&e.reason)), plain),
            ]
        })
        .collect();
    let cols = [
        Col::new("time"),
        Col::new("who"),
        Col::new("what"),
        Col::new("tenant"),
        Col::new("change"),
        Col::grow("reason"),
    ];
    let laid = fit::lay_out(&cols, rows, inner.width, 1, th.dim());
    let table = Table::new(laid.rows, laid.widths)
        .header(laid.header)
        .block(b);
    render_selectable(f, area, table, th, Some(selected - start));
    if tv.detail
        && let Some(e) = tv.events.get(selected)
    {
        render_event(f, area, app, e);
    }
}

/// "Acme Title & Escrow (t00001)": an event's target, named when it is a
/// tenant this console knows.
fn event_target(app: &App, e: &crate::domain::priority::AuditEvent) -> String {
    app.model.tenant(&e.target).map_or_else(
        || safe(&e.target),
        |t| format!("{} ({})", safe(&t.name), safe(&e.target)),
    )
}

/// One timeline event in full, over the list: nothing cut.
fn render_event(f: &mut Frame, area: Rect, app: &App, e: &crate::domain::priority::AuditEvent) {
    let th = &app.theme;
    let w = area.width.saturating_sub(4).min(100);
    // Each value wrapped under its own column, the name to its left.
    let room = (w as usize).saturating_sub(2 + 8);
    let mut lines: Vec<Line> = Vec::new();
    for (name, value) in [
        ("when", e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        ("who", safe(&e.actor)),
        ("what", safe(&e.action)),
        ("target", event_target(app, e)),
        ("change", safe(&e.detail)),
        ("reason", safe(&e.reason)),
    ] {
        for (i, l) in fit::wrap(&value, room).into_iter().enumerate() {
            let label = if i == 0 { name } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("{label:<8}"), th.title()),
                Span::raw(l),
            ]));
        }
    }
    let h = (lines.len() as u16 + 2).min(area.height);
    let para = Paragraph::new(lines);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    f.render_widget(
        para.block(Block::default().borders(Borders::ALL).title(Span::styled(
            format!(" Event {} · esc closes ", e.id),
            th.title(),
        ))),
        r,
    );
}
