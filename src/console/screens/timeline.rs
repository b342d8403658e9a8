//! The timeline: where status updates went (the page, each channel's
//! deliveries) and the war room's record of priority changes and
//! publishes, newest at the bottom; enter shows one event whole.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Table};

use super::frame::{block, overlay, render_selectable, safe};
use crate::console::app::{App, Command, View};
use crate::console::fit::{self, Col, Fit};
use crate::console::keymap::{Action, Context};
use crate::domain::format::{clip, counted, thousands};
use crate::domain::priority::AuditEvent;
use chrono::{DateTime, Utc};

/// The timeline: every priority change and publish, oldest first.
#[derive(Debug, Clone)]
pub struct TimelineView {
    pub events: Vec<AuditEvent>,
    pub loading: bool,
    pub error: Option<String>,
    pub selected: usize,
    /// The selected event shown whole (enter), over the list.
    pub detail: bool,
    pub fetched_at: Option<DateTime<Utc>>,
    pub back: Box<View>,
    serial: u64,
}

impl TimelineView {
    /// The events after `after_id` fetched for `serial`: the log only
    /// grows, so what is new goes at the end.
    pub(in crate::console) fn answered(
        &mut self,
        serial: u64,
        after_id: u64,
        result: Result<Vec<AuditEvent>, String>,
    ) {
        if self.serial != serial {
            return;
        }
        self.loading = false;
        match result {
            Ok(events) => {
                self.events.retain(|e| e.id <= after_id);
                self.events.extend(events);
                self.error = None;
            }
            Err(e) => self.error = Some(e),
        }
    }
}

impl App {
    pub(in crate::console) fn open_timeline(&mut self) -> Command {
        self.filter_editing = false;
        let back = match std::mem::replace(&mut self.view, View::Overview) {
            View::Timeline(tv) => tv.back,
            other => Box::new(other),
        };
        self.view = View::Timeline(TimelineView {
            events: Vec::new(),
            loading: true,
            error: None,
            selected: usize::MAX,
            detail: false,
            fetched_at: None,
            back,
            serial: 0,
        });
        self.fetch_audit()
    }

    pub(in crate::console) fn fetch_audit(&mut self) -> Command {
        self.serial += 1;
        let serial = self.serial;
        let View::Timeline(tv) = &mut self.view else {
            return Command::None;
        };
        tv.serial = serial;
        tv.loading = true;
        tv.fetched_at = Some(self.clock);
        let after_id = tv.events.last().map_or(0, |e| e.id);
        Command::FetchAudit { serial, after_id }
    }

    pub(in crate::console) fn timeline_action(&mut self, action: Action) -> Command {
        let View::Timeline(tv) = &mut self.view else {
            return Command::None;
        };
        let last = tv.events.len().saturating_sub(1);
        let at = tv.selected.min(last);
        match action {
            // Esc closes the event's detail first, then the timeline.
            Action::Back if tv.detail => tv.detail = false,
            Action::Back => {
                let back = std::mem::replace(&mut tv.back, Box::new(View::Overview));
                self.view = *back;
            }
            Action::Open => tv.detail = !tv.detail && !tv.events.is_empty(),
            Action::Down => tv.selected = (at + 1).min(last),
            Action::Up => tv.selected = at.saturating_sub(1),
            Action::PageDown => tv.selected = (at + 10).min(last),
            Action::PageUp => tv.selected = at.saturating_sub(10),
            Action::Top => tv.selected = 0,
            Action::Bottom => tv.selected = last,
            Action::Timeline => return self.fetch_audit(),
            _ => {}
        }
        Command::None
    }
}

pub(crate) fn render(f: &mut Frame, area: Rect, app: &App, tv: &TimelineView) {
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
        format!(" {}", counted(n, "event", "events"))
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
    let r = overlay(f, area, w, h);
    f.render_widget(
        para.block(Block::default().borders(Borders::ALL).title(Span::styled(
            format!(
                " Event {} · {} closes ",
                e.id,
                app.keymap.label(Context::Timeline, Action::Back)
            ),
            th.title(),
        ))),
        r,
    );
}

#[cfg(test)]
// Tests drive the state by hand: the commands they do not look at are
// the point of other tests.
#[allow(unused_must_use)]
mod tests {
    use super::*;
    use crate::client::ClientEvent;
    use crate::console::theme::Theme;

    /// The timeline fetches the whole log once, then only what is newer,
    /// and appends it.
    #[test]
    fn the_timeline_fetches_only_new_events_and_appends_them() {
        let mut app = App::new("http://x".into(), Theme::mono());
        let event = |id| AuditEvent {
            id,
            at: Utc::now(),
            actor: "ana".into(),
            action: "set_priority".into(),
            target: "t00001".into(),
            reason: "why".into(),
            detail: "P2 → P0".into(),
        };
        let fetched = |cmd| match cmd {
            Command::FetchAudit { serial, after_id } => (serial, after_id),
            other => panic!("expected FetchAudit, got {other:?}"),
        };
        let cmd = app.open_timeline();
        let (serial, after_id) = fetched(cmd);
        assert_eq!(after_id, 0, "first the whole log");
        app.on_client(ClientEvent::Audit {
            serial,
            after_id,
            result: Ok(vec![event(1), event(2)]),
        });
        let cmd = app.fetch_audit();
        let (serial, after_id) = fetched(cmd);
        assert_eq!(after_id, 2, "then only what is newer");
        app.on_client(ClientEvent::Audit {
            serial,
            after_id,
            result: Ok(vec![event(3)]),
        });
        let View::Timeline(tv) = &app.view else {
            panic!("timeline open")
        };
        let ids: Vec<u64> = tv.events.iter().map(|e| e.id).collect();
        assert_eq!(ids, [1, 2, 3]);
    }
}
