//! The priority form, over the screen: the priority and rank chosen, the
//! reason typed, and the confirmation before it is sent.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::frame::safe;
use crate::console::app::App;

pub fn render(f: &mut Frame, area: Rect, app: &App, form: &crate::console::app::PrioForm) {
    let th = &app.theme;
    let w = 76.min(area.width.saturating_sub(2));
    let inner_w = w.saturating_sub(2) as usize;
    let mut lines = vec![
        Line::from(vec![
            Span::styled(safe(&form.tenant_name), th.title()),
            Span::raw(format!(" ({})", safe(&form.tenant_id))),
        ]),
        Line::from(format!(
            "now: {}",
            form.current.as_ref().map_or_else(
                || format!("{} (default; nobody has set it)", form.default.as_str()),
                |d| safe(&crate::console::app::decision_text(d))
            )
        )),
        Line::from(""),
    ];
    let mut choice = vec![Span::raw("priority: ")];
    for p in crate::domain::Priority::ALL {
        let style = if p == form.priority {
            th.selected()
        } else {
            th.dim()
        };
        choice.push(Span::styled(format!(" {} ", p.as_str()), style));
        choice.push(Span::raw(" "));
    }
    choice.push(Span::styled("(←→; P0 goes first)", th.dim()));
    lines.push(Line::from(choice));
    lines.push(Line::from(vec![
        Span::raw("rank:     "),
        Span::raw(match form.rank {
            0 => "fair order among its priority".to_string(),
            r => format!("#{r} within {}", form.priority.as_str()),
        }),
        Span::styled("  (↑↓; #1 goes first)", th.dim()),
    ]));
    let count = form.reason.chars().count();
    let reason = format!("reason: {}▏", safe(&form.reason));
    // Show the end of a long reason: that is where the typing happens.
    let shown: String = {
        let chars: Vec<char> = reason.chars().collect();
        let keep = inner_w.saturating_sub(1).max(10);
        if chars.len() > keep {
            std::iter::once('…')
                .chain(chars[chars.len() - keep + 1..].iter().copied())
                .collect()
        } else {
            reason
        }
    };
    lines.push(Line::from(shown));
    lines.push(Line::from(Span::styled(
        format!(
            "{count}/{} characters",
            crate::domain::priority::MAX_REASON_CHARS
        ),
        if count > crate::domain::priority::MAX_REASON_CHARS {
            th.alert()
        } else {
            th.dim()
        },
    )));
    lines.push(Line::from(""));
    if let Some(e) = &form.error {
        lines.push(Line::from(Span::styled(
            format!("✖ {}", safe(e)),
            th.alert(),
        )));
    }
    if form.sending {
        lines.push(Line::from("sending…"));
    } else if form.confirming {
        lines.push(Line::from(Span::styled(
            format!(
                "Set {} from {} to {}? enter/y: yes · other key: no",
                safe(&form.tenant_name),
                form.current_label(),
                crate::domain::priority::label(form.priority, form.rank)
            ),
            th.alert(),
        )));
    } else {
        lines.push(Line::from(Span::styled(
            "enter: review · esc: cancel",
            th.dim(),
        )));
    }
    let h = (lines.len() as u16 + 4).min(area.height.saturating_sub(2));
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" Set reindex priority ", th.title())),
        ),
        r,
    );
}
