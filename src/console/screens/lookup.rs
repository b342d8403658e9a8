//! The lookup screen's drawing: the query as typed, the gateway's matches
//! best first, and the answer to read out for the one selected. (The
//! queries themselves are `client::lookup`.)

use ratatui::Frame;
use ratatui::crossterm::event::KeyEvent;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Table, Wrap};

use super::frame::{render_selectable, safe, state_fit};
use crate::client::lookup::{MAX_QUERY_BYTES, Matches, check_query, describe_match};
use crate::console::app::{App, Command, View};
use crate::console::fit::{self, Col, Fit};
use crate::console::input::{Input, Typed};
use crate::console::keymap::Action;
use crate::domain::format::thousands;

/// The lookup screen: a query typed live, the gateway's matches.
#[derive(Debug, Clone)]
pub struct LookupView {
    pub query: String,
    /// The gateway's answer: `found.matches` best first, and the total.
    pub found: Matches,
    pub selected: usize,
    pub loading: bool,
    pub error: Option<String>,
    serial: u64,
    /// Where Esc goes back to.
    pub back: Box<View>,
}

impl LookupView {
    /// The gateway's matches for query `serial`: only the answer to the
    /// newest query counts.
    pub(in crate::console) fn answered(&mut self, serial: u64, result: Result<Matches, String>) {
        if self.serial != serial {
            return;
        }
        self.loading = false;
        match result {
            Ok(r) => {
                self.found = r;
                self.error = None;
                self.selected = self
                    .selected
                    .min(self.found.matches.len().saturating_sub(1));
            }
            Err(e) => self.error = Some(e),
        }
    }
}

impl App {
    /// Opens the lookup screen over the current view (Esc comes back).
    pub(in crate::console) fn open_lookup(&mut self, query: String) -> Command {
        self.filter_editing = false;
        let back = std::mem::replace(&mut self.view, View::Overview);
        // Lookup over lookup: keep the original way back.
        let back = match back {
            View::Lookup(lv) => lv.back,
            other => Box::new(other),
        };
        self.view = View::Lookup(LookupView {
            query,
            found: Default::default(),
            selected: 0,
            loading: false,
            error: None,
            serial: 0,
            back,
        });
        self.ask_lookup()
    }

    fn ask_lookup(&mut self) -> Command {
        self.serial += 1;
        let serial = self.serial;
        let View::Lookup(lv) = &mut self.view else {
            return Command::None;
        };
        lv.serial = serial;
        if let Err(e) = check_query(&lv.query) {
            lv.found = Default::default();
            lv.loading = false;
            lv.error = (!lv.query.trim().is_empty()).then_some(e);
            return Command::None;
        }
        lv.loading = true;
        Command::Lookup {
            serial,
            query: lv.query.clone(),
        }
    }

    /// Keys on the lookup screen (`Context::Lookup`): typing edits the
    /// query (and asks again); the keymap's keys choose, open a tenant,
    /// copy the answer and go back.
    pub(in crate::console) fn lookup_key(
        &mut self,
        action: Option<Action>,
        k: &KeyEvent,
    ) -> Command {
        let now = self.model.overview.incident.now.unwrap_or(self.clock);
        let View::Lookup(lv) = &mut self.view else {
            return Command::None;
        };
        match Input::bytes(MAX_QUERY_BYTES).key(&mut lv.query, k) {
            Typed::Changed => {
                lv.selected = 0;
                return self.ask_lookup();
            }
            Typed::Full | Typed::Empty => return Command::None,
            Typed::Pass => {}
        }
        let last = lv.found.matches.len().saturating_sub(1);
        match action {
            Some(Action::Back) => {
                let back = std::mem::replace(&mut lv.back, Box::new(View::Overview));
                self.view = *back;
            }
            Some(Action::Down) => lv.selected = (lv.selected + 1).min(last),
            Some(Action::Up) => lv.selected = lv.selected.saturating_sub(1),
            Some(Action::Copy) => {
                if let Some(m) = lv.found.matches.get(lv.selected) {
                    let next = self.model.board.promised_update();
                    let (_, say) = describe_match(m, now, next);
                    self.say("copied the answer to the clipboard (OSC 52)", false);
                    return Command::Copy(say);
                }
            }
            Some(Action::Open) => {
                if let Some(m) = lv.found.matches.get(lv.selected) {
                    let id = m.tenant_id.clone();
                    let here = std::mem::replace(&mut self.view, View::Overview);
                    let cmd = self.open_tenant(id);
                    if let View::Tenant(tv) = &mut self.view {
                        tv.back = Some(Box::new(here));
                    }
                    return cmd;
                }
            }
            _ => {}
        }
        Command::None
    }
}

pub(crate) fn render(f: &mut Frame, area: Rect, app: &App, lv: &LookupView) {
    let th = &app.theme;
    let now = app.model.overview.incident.now.unwrap_or(app.clock);
    let [input, list, detail] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(3),
        Constraint::Length(7),
    ])
    .areas(area);
    let found = &lv.found;
    let status = if lv.loading {
        " searching…".to_string()
    } else {
        format!(" {}", found.count())
    };
    f.render_widget(
        Paragraph::new(Line::from(vec![Span::raw(safe(&lv.query)), Span::raw("▏")])).block(
            Block::default().borders(Borders::ALL).title(Span::styled(
                format!(" Lookup: mailbox, domain or tenant ·{status} "),
                th.title(),
            )),
        ),
        input,
    );
    // The best match only a misspelling: ask, rather than answer as if
    // it were what was typed.
    let b = match found.did_you_mean().filter(|_| lv.error.is_none()) {
        Some(meant) => Block::default().borders(Borders::ALL).title(Span::styled(
            format!(" no exact match: did you mean {}? ", safe(&meant)),
            th.alert(),
        )),
        None => Block::default().borders(Borders::ALL),
    };
    if let Some(e) = &lv.error {
        let inner = b.inner(list);
        f.render_widget(b, list);
        f.render_widget(
            Paragraph::new(Span::styled(format!("✖ {}", safe(e)), th.alert())),
            inner,
        );
    } else {
        let inner = b.inner(list);
        let visible = inner.height as usize;
        let start = lv.selected.saturating_sub(visible.saturating_sub(1));
        let plain = Style::default();
        let rows: Vec<Vec<(Fit, Style)>> = found
            .matches
            .iter()
            .skip(start)
            .take(visible.max(1))
            .map(|m| {
                // A misspelling of the query, marked on its row.
                let mark = if m.is_approximate() { "≈ " } else { "" };
                let what = match (&m.address, &m.domain, &m.tenant_name) {
                    (Some(a), _, _) => Fit::Address(format!("{mark}{a}")),
                    (None, Some(d), _) => Fit::Middle(format!("{mark}{d}")),
                    (None, None, Some(n)) => Fit::End(format!("{mark}{n}")),
                    _ => Fit::Whole(mark.to_string()),
                };
                let affected = m
                    .affected_mailboxes
                    .map(|a| format!("{} affected", thousands(a)))
                    .unwrap_or_default();
                vec![
                    (Fit::Whole(m.kind.to_string()), plain),
                    (what, plain),
                    (
                        match m.state {
                            Some(st) => crate::domain::MailboxState::parse(st)
                                .map_or_else(|| Fit::Whole(st.to_string()), state_fit),
                            None => Fit::Whole(String::new()),
                        },
                        plain,
                    ),
                    (Fit::Whole(m.tenant_id.clone()), plain),
                    (Fit::Whole(affected), plain),
                ]
            })
            .collect();
        let cols = [
            Col::new(""),
            Col::new(""),
            Col::new(""),
            Col::new(""),
            Col::new(""),
        ];
        let laid = fit::lay_out(&cols, rows, inner.width, 1, th.title());
        let table = Table::new(laid.rows, laid.widths).block(b);
        render_selectable(
            f,
            list,
            table,
            th,
            (!found.matches.is_empty()).then(|| lv.selected - start),
        );
    }
    let mut lines: Vec<Line> = Vec::new();
    if let Some(m) = found.matches.get(lv.selected) {
        let next = app.model.board.promised_update();
        let (detail_lines, say) = describe_match(m, now, next);
        lines.extend(detail_lines.into_iter().map(Line::from));
        lines.push(Line::from(Span::styled(
            format!("say: \"{say}\""),
            th.title(),
        )));
    } else if lv.query.trim().is_empty() {
        lines.push(Line::from(
            "Type an address, a domain or a tenant name; matches update as you type.",
        ));
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" Answer ")),
        detail,
    );
}
