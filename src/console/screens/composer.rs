//! The status-update composer's drawing: the form, and beside it (or in its
//! place on a narrow screen) the lint's findings, the ETAs that slipped and
//! exactly what each channel will receive. (The composer's state and keys
//! are `console::composer`.)

use ratatui::Frame;
use ratatui::crossterm::event::KeyEvent;

use crate::console::keymap::{Action, Context};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::frame::{block, safe};
use crate::client::PreviewAnswer;
use crate::console::app::{App, Command};
use crate::console::composer::{
    Ask, Composer, DraftFile, Field, Finding, Stage, preview_label, slip_lines,
};

impl App {
    /// Opens the composer: the saved draft if there is one, else a new
    /// draft that starts from the last published state.
    pub(in crate::console) fn open_composer(&mut self) -> Command {
        if !self.role().can_publish() {
            let why = if self.read_only {
                "read-only console (--read-only): status updates cannot be published here"
                    .to_string()
            } else {
                format!(
                    "you are {}: publishing status updates needs the comms role",
                    self.role().with_article()
                )
            };
            self.say(why, true);
            return Command::None;
        }
        if self.composer.is_none() {
            let now = self.source_now();
            let draft = self.saved_draft.take().unwrap_or_else(|| {
                let state = self
                    .model
                    .board
                    .latest
                    .as_ref()
                    .map_or(self.model.overview.incident.state, |u| u.state);
                DraftFile::new(state, now)
            });
            self.composer = Some(Composer::new(draft));
        }
        Command::None
    }

    pub(in crate::console) fn composer_key(
        &mut self,
        action: Option<Action>,
        k: &KeyEvent,
    ) -> Command {
        self.serial += 1;
        let serial = self.serial;
        let now = self.source_now();
        let Some(c) = self.composer.as_mut() else {
            return Command::None;
        };
        match c.key(action, k, now) {
            Ask::None => Command::None,
            Ask::Close => {
                let d = self.composer.take().map(|c| c.draft);
                if d.as_ref()
                    .is_some_and(|d| !d.title.is_empty() || !d.body.is_empty())
                {
                    self.say("draft kept: U (or :publish) opens it again", false);
                    self.saved_draft = d;
                }
                Command::None
            }
            Ask::Save => Command::SaveDraft(Some(Box::new(c.draft.clone()))),
            Ask::Preview(draft) => {
                c.serial = serial;
                Command::PreviewStatus { serial, draft }
            }
            Ask::Publish {
                draft,
                operation_id,
                confirm_warnings,
            } => {
                c.serial = serial;
                Command::PublishStatus {
                    serial,
                    draft,
                    operation_id,
                    confirm_warnings,
                }
            }
        }
    }
}

impl App {
    /// The previews asked for as `serial`, or back to the form with why not.
    pub(in crate::console) fn preview_answered(
        &mut self,
        serial: u64,
        result: Result<PreviewAnswer, String>,
    ) {
        if let Some(c) = self.composer.as_mut().filter(|c| c.serial == serial) {
            match result {
                Ok((findings, previews)) => {
                    c.findings = findings;
                    c.previews = previews;
                    c.stage = Stage::Previewed;
                }
                Err(e) => {
                    c.error = Some(e);
                    c.stage = Stage::Editing;
                }
            }
        }
    }

    /// The publish sent as `serial`: closed and said (the saved draft is
    /// deleted), or back to the form with everything typed.
    pub(in crate::console) fn publish_answered(
        &mut self,
        serial: u64,
        result: Result<(String, usize), (String, Vec<Finding>)>,
    ) -> Command {
        let mine = self.composer.as_ref().is_some_and(|c| c.serial == serial);
        match result {
            Ok((id, deliveries)) => {
                if mine {
                    self.composer = None;
                }
                self.say(
                    format!("published {id}: {deliveries} deliveries queued"),
                    false,
                );
                return Command::SaveDraft(None);
            }
            Err((e, findings)) => match self.composer.as_mut().filter(|_| mine) {
                // Back to the form, with everything typed.
                Some(c) => {
                    c.stage = Stage::Editing;
                    c.error = Some(e);
                    if !findings.is_empty() {
                        c.findings = findings;
                    }
                }
                None => self.say(format!("not published: {e}"), true),
            },
        }
        Command::None
    }
}

pub(crate) fn render(f: &mut Frame, area: Rect, app: &App, c: &Composer) {
    let th = &app.theme;
    let wide = area.width >= 110;
    let showing_preview = matches!(
        c.stage,
        Stage::Previewed | Stage::Confirm | Stage::Publishing
    );
    // Side by side when there is room; otherwise the preview replaces the
    // form while it is shown.
    let (form, side) = if wide {
        let [a, b] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(area);
        (a, b)
    } else if showing_preview {
        (Rect::default(), area)
    } else {
        (area, Rect::default())
    };
    let label = |fld: Field, name: &str| {
        let style = if c.field == fld && c.stage == Stage::Editing {
            th.selected()
        } else {
            th.title()
        };
        Span::styled(format!("{name:<12}"), style)
    };
    let cursor = |fld: Field| if c.field == fld { "▏" } else { "" };
    let pad = " ".repeat(12);
    let mut lines: Vec<Line> = Vec::new();
    let mut states = vec![label(Field::State, "state")];
    for st in crate::domain::IncidentState::ALL {
        let style = if st.as_str() == c.draft.state {
            th.selected()
        } else {
            th.dim()
        };
        states.push(Span::styled(format!(" {} ", st.as_str()), style));
    }
    lines.push(Line::from(states));
    lines.push(Line::from(vec![
        label(Field::Title, "title"),
        Span::raw(safe(&c.draft.title)),
        Span::raw(cursor(Field::Title)),
    ]));
    lines.push(Line::from(Span::styled(
        format!(
            "{pad}{}/{} characters",
            c.draft.title.chars().count(),
            crate::domain::status::MAX_TITLE_CHARS
        ),
        th.dim(),
    )));
    lines.push(Line::from(label(Field::Body, "body")));
    let body_lines: Vec<&str> = c.draft.body.split('\n').collect();
    let room = (form.height as usize).saturating_sub(14).max(3);
    let skip = body_lines.len().saturating_sub(room);
    for (i, l) in body_lines.iter().enumerate().skip(skip) {
        let at_end = i + 1 == body_lines.len();
        lines.push(Line::from(format!(
            "  {}{}",
            safe(l),
            if at_end { cursor(Field::Body) } else { "" }
        )));
    }
    lines.push(Line::from(Span::styled(
        format!(
            "{pad}{}/{} characters · {}",
            c.draft.body.chars().count(),
            crate::domain::status::MAX_BODY_CHARS,
            crate::domain::status::PLACEHOLDERS
                .map(|(p, _)| format!("{{{p}}}"))
                .join(" ")
        ),
        th.dim(),
    )));
    lines.push(Line::from(vec![
        label(Field::Components, "components"),
        Span::raw(safe(&c.draft.components)),
        Span::raw(cursor(Field::Components)),
    ]));
    let known: Vec<&str> = app
        .model
        .board
        .components
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    lines.push(Line::from(Span::styled(
        format!(
            "{pad}ID=STATUS, comma separated; ids: {}",
            safe(&known.join(" "))
        ),
        th.dim(),
    )));
    lines.push(Line::from(vec![
        label(Field::Next, "next update"),
        Span::raw(safe(&c.draft.next)),
        Span::raw(cursor(Field::Next)),
    ]));
    lines.push(match c.next_hint(app.source_now()) {
        Ok(hint) => Line::from(Span::styled(format!("{pad}→ {hint}"), th.dim())),
        Err(e) => Line::from(Span::styled(format!("{pad}✖ {}", safe(&e)), th.alert())),
    });
    if let Some(e) = &c.error {
        lines.push(Line::from(Span::styled(
            format!("✖ {}", safe(e)),
            th.alert(),
        )));
    }
    if !app.model.board.page_url.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("status page: {}", safe(&app.model.board.page_url)),
            th.dim(),
        )));
    }
    // The ETAs that moved later since the last update (as the gateway
    // marks them), so this update can say so: in the preview panel, or
    // under the form while a narrow screen shows no preview.
    let source_now = app.model.overview.incident.now.unwrap_or(app.clock);
    let slips: Vec<Line> = slip_lines(
        &app.model.slipped(),
        app.model.board.latest.is_some(),
        source_now,
        8,
    )
    .into_iter()
    .enumerate()
    .map(|(i, l)| {
        Line::from(Span::styled(
            if i == 0 { format!("↗ {l}") } else { l },
            th.alert(),
        ))
    })
    .collect();
    if side.height == 0 {
        lines.extend(slips.iter().cloned());
    }
    if form.height > 0 {
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block(app, "Status update · the draft is saved as you type")),
            form,
        );
    }
    if side.height == 0 {
        return;
    }
    let mut out: Vec<Line> = Vec::new();
    if c.stage == Stage::Confirm {
        let mut channels: Vec<&str> = c.previews.iter().map(|p| p.0.as_str()).collect();
        channels.dedup();
        out.push(Line::from(Span::styled(
            format!(
                "Publish to {} now? {}: yes · any other key: no",
                safe(&channels.join(", ")),
                app.keymap.label(Context::ConfirmPublish, Action::Confirm)
            ),
            th.badge(),
        )));
    }
    for fd in &c.findings {
        let (mark, style) = if fd.error {
            ("✖", th.alert())
        } else {
            ("⚠", th.badge())
        };
        out.push(Line::from(Span::styled(
            format!("{mark} {}: {}", safe(&fd.field), safe(&fd.message)),
            style,
        )));
    }
    out.extend(slips);
    match c.stage {
        Stage::Editing if c.previews.is_empty() => {
            out.push(Line::from(format!(
                "{} shows exactly what each channel will receive.",
                app.keymap.label(Context::Composer, Action::Preview)
            )));
        }
        Stage::Previewing => out.push(Line::from("asking the gateway…")),
        _ => {}
    }
    for (channel, ctype, content) in &c.previews {
        out.push(Line::from(Span::styled(
            format!("── {}", safe(&preview_label(channel, ctype))),
            th.title(),
        )));
        out.extend(content.lines().map(|l| Line::from(safe(l))));
    }
    f.render_widget(
        Paragraph::new(out)
            .wrap(Wrap { trim: false })
            .scroll((c.scroll, 0))
            .block(block(app, "Preview: exactly what each channel receives")),
        side,
    );
}
