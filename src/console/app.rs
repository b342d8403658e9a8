//! Console state and what each key does. Pure state transitions: no I/O, no
//! drawing; network work is returned as a `Command` for the loop to start.

use chrono::{DateTime, Utc};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::time::Duration;

use super::client::{ClientEvent, MailboxRequest};
use super::model::{Applied, Model};
use super::theme::Theme;
use crate::api::{self, pb};
use crate::domain::tenants::TenantSort;
use crate::domain::{MailboxRow, MailboxState};

/// What the loop must do after a key.
#[derive(Debug)]
pub enum Command {
    None,
    Quit,
    FetchMailboxes(MailboxRequest),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Conn {
    Connecting { attempt: u32 },
    Live,
    Down { error: String, retry_in: Duration },
}

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

    fn states(self) -> Vec<i32> {
        let pick = |s: &[MailboxState]| {
            s.iter()
                .map(|&s| api::mailbox_state_to_pb(s) as i32)
                .collect()
        };
        match self {
            StateFilter::NotOk => Vec::new(),
            StateFilter::Affected => pick(&[
                MailboxState::LockedOut,
                MailboxState::ReindexPending,
                MailboxState::Reindexing,
                MailboxState::Failed,
            ]),
            StateFilter::Only(s) => pick(&[s]),
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
    serial: u64,
}

pub const MAILBOX_PAGE: u32 = 200;

#[derive(Debug, Clone)]
pub enum View {
    Overview,
    Tenant(TenantView),
}

pub struct App {
    pub url: String,
    pub theme: Theme,
    pub model: Model,
    pub conn: Conn,
    pub last_update: Option<DateTime<Utc>>,
    /// Wall clock for the header; set by the loop (and by tests).
    pub clock: DateTime<Utc>,
    pub view: View,
    pub help: bool,
    pub sort: TenantSort,
    pub reverse: bool,
    pub affected_only: bool,
    pub filter: String,
    pub filter_editing: bool,
    pub selected: usize,
    pub simulated_hint: bool,
    serial: u64,
}

impl App {
    pub fn new(url: String, theme: Theme) -> Self {
        App {
            url,
            theme,
            model: Model::default(),
            conn: Conn::Connecting { attempt: 1 },
            last_update: None,
            clock: Utc::now(),
            view: View::Overview,
            help: false,
            sort: TenantSort::Affected,
            reverse: false,
            affected_only: false,
            filter: String::new(),
            filter_editing: false,
            selected: 0,
            simulated_hint: false,
            serial: 0,
        }
    }

    /// The text the clock shows: when it changes, the screen is redrawn.
    pub fn clock_key(&self, now: DateTime<Utc>) -> String {
        now.format("%H:%M:%S").to_string()
    }

    /// Sorts the table if needed and keeps the selection in range.
    pub fn prepare(&mut self) {
        self.model
            .prepare_order(self.sort, self.reverse, &self.filter, self.affected_only);
        let n = self.model.ordered_len();
        self.selected = self.selected.min(n.saturating_sub(1));
    }

    pub fn on_client(&mut self, ev: ClientEvent) {
        match ev {
            ClientEvent::Update(u) => match self.model.apply(&u) {
                Applied::Snapshot | Applied::Delta => {
                    self.conn = Conn::Live;
                    self.last_update = Some(Utc::now());
                }
                Applied::Stale => {}
                Applied::Gap => {
                    // Cannot happen with a well-behaved gateway (it resends a
                    // snapshot); the next snapshot repairs it.
                    tracing::warn!(
                        version = u.version,
                        "update does not follow; waiting for a snapshot"
                    );
                }
            },
            ClientEvent::Connecting { attempt } => {
                // With data on screen, keep saying "disconnected, retrying"
                // (with the data's age) rather than a bare "connecting".
                if self.model.version == 0 {
                    self.conn = Conn::Connecting { attempt };
                }
            }
            ClientEvent::Disconnected { error, retry_in } => {
                self.conn = Conn::Down { error, retry_in };
            }
            ClientEvent::Mailboxes { serial, result } => {
                if let View::Tenant(tv) = &mut self.view {
                    if tv.serial != serial {
                        return; // an answer to a request we no longer care about
                    }
                    tv.loading = false;
                    match result {
                        Ok((rows, next, total)) => {
                            tv.rows = rows;
                            tv.next_token = next;
                            tv.total = total;
                            tv.error = None;
                            tv.selected = tv.selected.min(tv.rows.len().saturating_sub(1));
                        }
                        Err(e) => tv.error = Some(e),
                    }
                }
            }
        }
    }

    fn fetch(&mut self) -> Command {
        self.serial += 1;
        let serial = self.serial;
        let View::Tenant(tv) = &mut self.view else {
            return Command::None;
        };
        tv.serial = serial;
        tv.loading = true;
        Command::FetchMailboxes(MailboxRequest {
            serial,
            request: pb::ListMailboxesRequest {
                tenant_id: tv.tenant_id.clone(),
                states: tv.filter.states(),
                sort: if tv.sort_by_eta {
                    pb::MailboxSort::Eta
                } else {
                    pb::MailboxSort::Address
                } as i32,
                page_size: MAILBOX_PAGE,
                page_token: tv.tokens.get(tv.page).cloned().unwrap_or_default(),
            },
        })
    }

    pub fn on_key(&mut self, k: KeyEvent) -> Command {
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            return Command::Quit;
        }
        if self.filter_editing {
            match k.code {
                KeyCode::Enter => self.filter_editing = false,
                KeyCode::Esc => {
                    self.filter_editing = false;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) if !c.is_control() && self.filter.len() < 64 => {
                    self.filter.push(c);
                    self.selected = 0;
                }
                _ => {}
            }
            return Command::None;
        }
        if self.help {
            match k.code {
                KeyCode::Char('q') => return Command::Quit,
                _ => self.help = false,
            }
            return Command::None;
        }
        match k.code {
            KeyCode::Char('q') => return Command::Quit,
            KeyCode::Char('?') => {
                self.help = true;
                return Command::None;
            }
            _ => {}
        }
        match &mut self.view {
            View::Overview => self.overview_key(k),
            View::Tenant(_) => self.tenant_key(k),
        }
    }

    fn overview_key(&mut self, k: KeyEvent) -> Command {
        let n = self.model.ordered_len();
        let last = n.saturating_sub(1);
        match k.code {
            KeyCode::Down | KeyCode::Char('j') => self.selected = (self.selected + 1).min(last),
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::PageDown => self.selected = (self.selected + 10).min(last),
            KeyCode::PageUp => self.selected = self.selected.saturating_sub(10),
            KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
            KeyCode::End | KeyCode::Char('G') => self.selected = last,
            KeyCode::Char('s') => {
                self.sort = self.sort.next();
                self.selected = 0;
            }
            KeyCode::Char('r') => self.reverse = !self.reverse,
            KeyCode::Char('a') => {
                self.affected_only = !self.affected_only;
                self.selected = 0;
            }
            KeyCode::Char('/') => self.filter_editing = true,
            KeyCode::Esc => self.filter.clear(),
            KeyCode::Enter => {
                if let Some(t) = self.model.ordered_at(self.selected) {
                    self.view = View::Tenant(TenantView {
                        tenant_id: t.id.to_string(),
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
                        serial: 0,
                    });
                    return self.fetch();
                }
            }
            _ => {}
        }
        Command::None
    }

    fn tenant_key(&mut self, k: KeyEvent) -> Command {
        let View::Tenant(tv) = &mut self.view else {
            return Command::None;
        };
        let last = tv.rows.len().saturating_sub(1);
        match k.code {
            KeyCode::Esc | KeyCode::Backspace | KeyCode::Left => {
                self.view = View::Overview;
                return Command::None;
            }
            KeyCode::Down | KeyCode::Char('j') => tv.selected = (tv.selected + 1).min(last),
            KeyCode::Up | KeyCode::Char('k') => tv.selected = tv.selected.saturating_sub(1),
            KeyCode::Home | KeyCode::Char('g') => tv.selected = 0,
            KeyCode::End | KeyCode::Char('G') => tv.selected = last,
            KeyCode::PageDown | KeyCode::Char('n') => {
                if tv.next_token.is_empty() || tv.loading {
                    return Command::None;
                }
                tv.tokens.truncate(tv.page + 1);
                tv.tokens.push(tv.next_token.clone());
                tv.page += 1;
                tv.selected = 0;
                return self.fetch();
            }
            KeyCode::PageUp | KeyCode::Char('p') => {
                if tv.page == 0 || tv.loading {
                    return Command::None;
                }
                tv.page -= 1;
                tv.selected = 0;
                return self.fetch();
            }
            KeyCode::Char('f') => {
                tv.filter = tv.filter.next();
                tv.tokens = vec![String::new()];
                tv.page = 0;
                tv.selected = 0;
                return self.fetch();
            }
            KeyCode::Char('e') => {
                tv.sort_by_eta = !tv.sort_by_eta;
                tv.tokens = vec![String::new()];
                tv.page = 0;
                tv.selected = 0;
                return self.fetch();
            }
            KeyCode::Char('r') => return self.fetch(),
            _ => {}
        }
        Command::None
    }
}

/// Every key the console knows, for the help screen and footer.
pub const HELP: &[(&str, &str)] = &[
    ("q / ctrl-c", "quit"),
    ("?", "this help (any key closes it)"),
    ("↑↓ / j k", "move"),
    ("PgUp PgDn g G", "page, first, last"),
    ("enter", "open the tenant's affected mailboxes"),
    ("esc", "back / clear filter"),
    ("s", "cycle the tenants sort key"),
    ("r", "reverse the sort (overview) / reload (tenant)"),
    ("a", "affected tenants only"),
    ("/", "filter tenants by id, name or domain"),
    ("n p", "next / previous page of mailboxes"),
    ("f", "cycle the mailbox state filter"),
    ("e", "mailboxes by reindex order (ETA) or address"),
];
