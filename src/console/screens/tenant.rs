//! A tenant's drill-down: its figures and ETA over its mailboxes, a page at
//! a time, in the state filter and order chosen.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Table, Wrap};

use super::frame::{eta_fit, eta_forms, render_selectable, safe, state_fit};
use super::prio::decision_text;
use crate::client::{MailboxQuery, MailboxRequest};
use crate::console::app::{App, Command, View};
use crate::console::fit::{self, Col, Fit};
use crate::console::keymap::Action;
use crate::domain::format::{
    compact_or_unknown, percent, queued_claim, slip_basis, slip_marker, thousands,
    thousands_or_unknown,
};
use crate::domain::{MailboxRow, MailboxState};
use chrono::{DateTime, Utc};

/// Which states a drill-down shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    /// Everything not ok: affected now, or restored during the incident.
    NotOk,
    /// Without service now.
    Affected,
    Only(MailboxState),
}

impl StateFilter {
    const CYCLE: [StateFilter; 7] = [
        StateFilter::NotOk,
        StateFilter::Affected,
        StateFilter::Only(MailboxState::LockedOut),
        StateFilter::Only(MailboxState::ReindexPending),
        StateFilter::Only(MailboxState::Reindexing),
        StateFilter::Only(MailboxState::Failed),
        StateFilter::Only(MailboxState::Restored),
    ];

    pub fn next(self) -> Self {
        let i = Self::CYCLE.iter().position(|f| *f == self).unwrap_or(0);
        Self::CYCLE[(i + 1) % Self::CYCLE.len()]
    }

    pub fn label(self) -> &'static str {
        match self {
            StateFilter::NotOk => "all not ok",
            StateFilter::Affected => "affected now",
            StateFilter::Only(s) => s.as_str(),
        }
    }

    fn states(self) -> Vec<MailboxState> {
        match self {
            StateFilter::NotOk => Vec::new(),
            StateFilter::Affected => MailboxState::AFFECTED.to_vec(),
            StateFilter::Only(s) => vec![s],
        }
    }
}

#[derive(Debug, Clone)]
pub struct TenantView {
    pub tenant_id: String,
    pub rows: Vec<MailboxRow>,
    pub total: u64,
    /// Token of each page visited so far; `tokens[page]` fetched `rows`.
    pub tokens: Vec<String>,
    pub page: usize,
    pub next_token: String,
    pub loading: bool,
    pub error: Option<String>,
    pub filter: StateFilter,
    pub sort_by_eta: bool,
    pub selected: usize,
    /// Client-side filter of the rows on this page (by address).
    pub filter_text: String,
    /// When the rows on screen were asked for.
    pub fetched_at: Option<DateTime<Utc>>,
    /// Where Back goes (the lookup it was opened from), else the overview.
    pub back: Option<Box<View>>,
    serial: u64,
}

impl TenantView {
    /// A page of mailboxes fetched for `serial` (an older answer is one
    /// nobody cares about any more).
    pub(in crate::console) fn answered(
        &mut self,
        serial: u64,
        result: Result<(Vec<MailboxRow>, String, u64), String>,
    ) {
        if self.serial != serial {
            return;
        }
        self.loading = false;
        match result {
            Ok((rows, next, total)) => {
                self.rows = rows;
                self.next_token = next;
                self.total = total;
                self.error = None;
                self.selected = self.selected.min(self.visible().len().saturating_sub(1));
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Rows on this page that match the filter.
    pub fn visible(&self) -> Vec<&MailboxRow> {
        let needle = self.filter_text.to_lowercase();
        self.rows
            .iter()
            .filter(|m| needle.is_empty() || m.address.to_lowercase().contains(&needle))
            .collect()
    }
}

pub const MAILBOX_PAGE: u32 = 200;

impl App {
    pub(in crate::console) fn open_tenant(&mut self, tenant_id: String) -> Command {
        self.filter_editing = false;
        self.view = View::Tenant(TenantView {
            tenant_id,
            rows: Vec::new(),
            total: 0,
            tokens: vec![String::new()],
            page: 0,
            next_token: String::new(),
            loading: true,
            error: None,
            filter: StateFilter::NotOk,
            sort_by_eta: true,
            selected: 0,
            filter_text: String::new(),
            fetched_at: None,
            back: None,
            serial: 0,
        });
        self.fetch()
    }

    pub(in crate::console) fn tenant_action(&mut self, action: Action) -> Command {
        let View::Tenant(tv) = &mut self.view else {
            return Command::None;
        };
        let last = tv.visible().len().saturating_sub(1);
        match action {
            Action::Back => {
                if !tv.filter_text.is_empty() {
                    tv.filter_text.clear();
                } else {
                    self.view = tv.back.take().map_or(View::Overview, |b| *b);
                }
                return Command::None;
            }
            Action::Down => tv.selected = (tv.selected + 1).min(last),
            Action::Up => tv.selected = tv.selected.saturating_sub(1),
            Action::Top => tv.selected = 0,
            Action::Bottom => tv.selected = last,
            Action::NextPage => {
                if tv.next_token.is_empty() || tv.loading {
                    return Command::None;
                }
                tv.tokens.truncate(tv.page + 1);
                tv.tokens.push(tv.next_token.clone());
                tv.page += 1;
                tv.selected = 0;
                return self.fetch();
            }
            Action::PrevPage => {
                if tv.page == 0 || tv.loading {
                    return Command::None;
                }
                tv.page -= 1;
                tv.selected = 0;
                return self.fetch();
            }
            Action::StateFilter => {
                tv.filter = tv.filter.next();
                tv.tokens = vec![String::new()];
                tv.page = 0;
                tv.selected = 0;
                return self.fetch();
            }
            Action::ToggleOrder => {
                tv.sort_by_eta = !tv.sort_by_eta;
                tv.tokens = vec![String::new()];
                tv.page = 0;
                tv.selected = 0;
                return self.fetch();
            }
            Action::Reload => return self.fetch(),
            Action::Prioritize => {
                let id = tv.tenant_id.clone();
                return self.open_prio(&id);
            }
            Action::Export => {
                let id = tv.tenant_id.clone();
                self.say("exporting…", false);
                return Command::Export(id);
            }
            _ => {}
        }
        Command::None
    }

    pub(in crate::console) fn fetch(&mut self) -> Command {
        self.serial += 1;
        let serial = self.serial;
        let View::Tenant(tv) = &mut self.view else {
            return Command::None;
        };
        tv.serial = serial;
        tv.loading = true;
        tv.fetched_at = Some(self.clock);
        Command::FetchMailboxes(MailboxRequest {
            serial,
            query: MailboxQuery {
                tenant_id: tv.tenant_id.clone(),
                states: tv.filter.states(),
                sort_by_eta: tv.sort_by_eta,
                page_size: MAILBOX_PAGE,
                page_token: tv.tokens.get(tv.page).cloned().unwrap_or_default(),
            },
        })
    }
}

pub(crate) fn render(f: &mut Frame, area: Rect, app: &App, tv: &TenantView) {
    let th = &app.theme;
    let now = app.model.overview.incident.now.unwrap_or(app.clock);
    let tenant = app.model.tenant(&tv.tenant_id);
    let name = tenant.map_or_else(|| safe(&tv.tenant_id), |t| safe(&t.name));
    let decided = tenant.is_some_and(|t| t.priority_set.is_some());
    let slipped = tenant.is_some_and(|t| t.eta_slip.is_some());
    let [summary, list] = Layout::vertical([
        Constraint::Length(4 + u16::from(decided) + u16::from(slipped)),
        Constraint::Min(3),
    ])
    .areas(area);
    let mut lines = vec![Line::from(vec![
        Span::styled(format!(" {name}"), th.title()),
        Span::raw(format!(" ({})", safe(&tv.tenant_id))),
    ])];
    let room = summary.width as usize;
    if let Some(t) = tenant {
        // Shorter words before cut figures.
        // Mailboxes the sweep has not probed are said, not counted as fine.
        let unchecked = match t.unchecked() {
            0 => String::new(),
            n => format!(" · {} not checked yet", thousands(n)),
        };
        let counts = [
            format!(
                " {} of {} mailboxes affected ({}){unchecked} · {} restored · {} · {}",
                thousands(t.affected()),
                thousands(t.mailboxes),
                percent(t.affected_fraction()),
                thousands(t.restored()),
                queued_claim(t.queued_messages, app.model.overview.lost_messages()),
                t.priority.as_str(),
            ),
            format!(
                " {} of {} affected ({}){unchecked} · {} restored · {} queued · {}",
                thousands(t.affected()),
                thousands(t.mailboxes),
                percent(t.affected_fraction()),
                thousands(t.restored()),
                compact_or_unknown(t.queued_messages),
                t.priority.as_str(),
            ),
        ];
        lines.push(Line::from(fit::first_fit(&counts, room)));
        if let Some(d) = &t.priority_set {
            lines.push(Line::from(Span::styled(
                fit::end(&format!(" priority {}", safe(&decision_text(d))), room),
                th.dim(),
            )));
        }

        let etas = if t.affected() == 0 && t.unchecked() > 0 {
            vec![" none affected among those checked so far".to_string()]
        } else if t.affected() == 0 {
            vec![" nothing left to restore".to_string()]
        } else {
            eta_forms(" ETA", &t.eta, now, " ETA no estimate", " ETA ")
        };
        let ranks = if t.reindex_rank > 0 {
            vec![
                format!(
                    " · its last mailbox is {} in the reindex order",
                    thousands(t.reindex_rank)
                ),
                format!(" · last mailbox #{} in order", thousands(t.reindex_rank)),
                String::new(),
            ]
        } else {
            vec![String::new()]
        };
        // The ETA whole before the rank; the rank before the relative part.
        let (eta, rank) = etas
            .iter()
            .flat_map(|e| ranks.iter().map(move |r| (e, r)))
            .find(|(e, r)| fit::width(e) + fit::width(r) <= room)
            .map_or_else(
                || (fit::first_fit(&etas, room), String::new()),
                |(e, r)| (e.clone(), r.clone()),
            );
        lines.push(Line::from(vec![
            Span::styled(eta, th.title()),
            Span::raw(rank),
        ]));
        if let Some(slip) = &t.eta_slip {
            lines.push(Line::from(Span::styled(
                format!(" {}: {}", slip_marker(slip, now), slip_basis(slip, now)),
                th.alert(),
            )));
        }
    }
    f.render_widget(Paragraph::new(lines), summary);

    let pages = (tv.total as usize).div_ceil(MAILBOX_PAGE as usize).max(1);
    let title = mailboxes_title(
        tv,
        pages,
        app.filter_editing,
        list.width.saturating_sub(2) as usize,
    );
    let b = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, th.title()));
    if let Some(e) = &tv.error {
        let inner = b.inner(list);
        f.render_widget(b, list);
        f.render_widget(
            Paragraph::new(Span::styled(format!("✖ {}", safe(e)), th.alert()))
                .wrap(Wrap { trim: true }),
            inner,
        );
        return;
    }
    let wide = list.width >= 110;
    let inner = b.inner(list);
    let visible = inner.height.saturating_sub(1) as usize;
    let start = tv.selected.saturating_sub(visible.saturating_sub(1));
    let shown = tv.visible();
    let plain = Style::default();
    let rows: Vec<Vec<(Fit, Style)>> = shown
        .iter()
        .skip(start)
        .take(visible.max(1))
        .map(|m| {
            let pos = if m.reindex_position > 0 {
                thousands(m.reindex_position)
            } else {
                "–".into()
            };
            let state = match m.state {
                Some(s) => (state_fit(s), th.state(s)),
                None => (Fit::Whole("?".into()), plain),
            };
            let mut cells = vec![
                (Fit::Address(safe(&m.address)), plain),
                state,
                (eta_fit(&m.eta, now, "–"), plain),
                (Fit::Number(pos), plain),
                (Fit::Number(thousands_or_unknown(m.queued_messages)), plain),
            ];
            if wide {
                cells.push((Fit::Middle(safe(&m.volume)), plain));
                cells.push((Fit::End(safe(&m.last_error)), plain));
            }
            cells
        })
        .collect();
    let cols: &[Col] = if wide {
        &[
            Col::new("address"),
            Col::new("state"),
            Col::new("ETA p50–p90"),
            Col::right("pos"),
            Col::right("queued"),
            Col::new("volume"),
            Col::grow("last error"),
        ]
    } else {
        &[
            Col::new("address"),
            Col::new("state"),
            Col::new("ETA p50–p90"),
            Col::right("pos"),
            Col::right("queued"),
        ]
    };
    let laid = fit::lay_out(cols, rows, inner.width, 1, th.title());
    let table = Table::new(laid.rows, laid.widths)
        .header(laid.header)
        .block(b);
    render_selectable(
        f,
        list,
        table,
        th,
        (!shown.is_empty()).then(|| tv.selected.min(shown.len() - 1) - start.min(tv.selected)),
    );
}

/// The drill-down's title: how many mailboxes and which set they are
/// (the state filter says it: "not ok" counts the restored too, which the
/// export of the affected does not), the order, and the page, in `room`
/// cells. Words give way before the page number does.
fn mailboxes_title(tv: &TenantView, pages: usize, editing: bool, room: usize) -> String {
    let n = thousands(tv.total);
    let (long, short) = match tv.filter {
        StateFilter::NotOk => (
            format!("{n} not ok (affected now or restored)"),
            format!("{n} not ok"),
        ),
        StateFilter::Affected => (format!("{n} affected now"), format!("{n} affected")),
        StateFilter::Only(s) => (format!("{n} {}", s.as_str()), format!("{n} {}", s.as_str())),
    };
    let order = if tv.sort_by_eta {
        "reindex order"
    } else {
        "by address"
    };
    let page = format!("page {}/{pages}", tv.page + 1);
    let mut extra = String::new();
    if tv.loading {
        extra.push_str(" · loading…");
    }
    if !tv.filter_text.is_empty() || editing {
        extra.push_str(&format!(
            " · /{}{}",
            safe(&tv.filter_text),
            if editing { "▏" } else { "" }
        ));
    }
    let forms = [
        format!(" Mailboxes · {long} · {order} · {page}{extra} "),
        format!(" Mailboxes · {short} · {order} · {page}{extra} "),
        format!(" Mailboxes · {short} · {page}{extra} "),
        format!(" {short} · {page}{extra} "),
        format!(" {page}{extra} "),
    ];
    forms
        .iter()
        .find(|t| fit::width(t) <= room)
        .unwrap_or(&forms[4])
        .clone()
}
