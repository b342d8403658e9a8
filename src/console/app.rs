//! Console state and what each key does. Pure state transitions: no I/O, no
//! drawing; network work is returned as a `Command` for the loop to start.

use chrono::{DateTime, Utc};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::time::Duration;

use super::client::{ClientEvent, MailboxRequest};
use super::keymap::{Action, Context, Keymap};
use super::model::{Applied, Model};
use super::theme::Theme;
use crate::api::{self, pb};
use crate::domain::format::thousands;
use crate::domain::priority::{self, AuditEvent, PriorityDecision, Role};
use crate::domain::tenants::TenantSort;
use crate::domain::{MailboxRow, MailboxState, Priority};

/// What the loop must do after a key: ignoring one loses what the user
/// asked for.
#[derive(Debug)]
#[must_use]
pub enum Command {
    None,
    Quit,
    FetchMailboxes(MailboxRequest),
    /// Drop the Watch stream and subscribe again (a fresh snapshot).
    Resubscribe,
    /// Ask the gateway's Lookup.
    Lookup {
        serial: u64,
        query: String,
    },
    /// Put text on the clipboard of the terminal (OSC 52: works over SSH).
    Copy(String),
    /// Write a tenant's affected mailboxes to a CSV file.
    Export(String),
    /// Ask the gateway who we are.
    WhoAmI,
    SetPriority {
        serial: u64,
        request: pb::SetTenantPriorityRequest,
    },
    /// Fetch the war room's record for the timeline: the events after
    /// `after_id`, those the timeline does not hold yet.
    FetchAudit {
        serial: u64,
        after_id: u64,
    },
    /// Fetch the trends, with `tenant_id`'s series unless it is empty.
    FetchTrends {
        serial: u64,
        tenant_id: String,
    },
    /// Keep the composer's draft on disk (None: delete it, it is published).
    SaveDraft(Option<Box<super::composer::DraftFile>>),
    PreviewStatus {
        serial: u64,
        draft: pb::StatusUpdateDraft,
    },
    PublishStatus {
        serial: u64,
        draft: pb::StatusUpdateDraft,
        operation_id: String,
        confirm_warnings: bool,
    },
    /// Ring the terminal bell (the promised update is overdue).
    Bell,
}

/// The priority form: what the operator chose, kept through errors.
#[derive(Debug, Clone)]
pub struct PrioForm {
    pub tenant_id: String,
    pub tenant_name: String,
    /// The decision in force, if anyone made one; else the tenant is at
    /// `default`.
    pub current: Option<PriorityDecision>,
    pub default: Priority,
    pub priority: Priority,
    /// Explicit place within the priority (`:prio T P1#2 ...`); 0 = fair.
    pub rank: u32,
    pub reason: String,
    /// Enter pressed once: asks "are you sure".
    pub confirming: bool,
    pub sending: bool,
    pub error: Option<String>,
    serial: u64,
}

impl PrioForm {
    /// "P1 #2": the priority in force.
    pub fn current_label(&self) -> String {
        self.current
            .as_ref()
            .map_or_else(|| self.default.as_str().to_string(), |d| d.label())
    }

    fn request(&self) -> pb::SetTenantPriorityRequest {
        pb::SetTenantPriorityRequest {
            tenant_id: self.tenant_id.clone(),
            priority: api::priority_to_pb(self.priority) as i32,
            rank: self.rank,
            reason: self.reason.trim().to_string(),
            expected_version: self.current.as_ref().map_or(0, |d| d.version),
        }
    }
}

/// "P0 set by ana at 14:03 UTC: title company closing sales".
pub fn decision_text(d: &priority::PriorityDecision) -> String {
    format!(
        "{} set by {} at {} UTC: {}",
        d.label(),
        d.set_by,
        d.set_at.format("%Y-%m-%d %H:%M"),
        d.reason
    )
}

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

/// The trends view: the platform's queue depth and affected mailboxes over
/// time, or one tenant's, with the forecast drawn ahead.
#[derive(Debug, Clone)]
pub struct TrendsView {
    /// Empty: every tenant (the platform).
    pub tenant_id: String,
    pub history: Option<crate::domain::trends::History>,
    pub loading: bool,
    pub error: Option<String>,
    pub fetched_at: Option<DateTime<Utc>>,
    pub back: Box<View>,
    serial: u64,
}

/// Who the gateway says we are.
#[derive(Debug, Clone, PartialEq)]
pub struct Me {
    pub name: String,
    pub role: Role,
    pub authenticated: bool,
}

/// How often an open mailbox list is refetched while data flows.
pub const MAILBOX_REFRESH_SECONDS: i64 = 5;

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
            StateFilter::Affected => pick(&MailboxState::AFFECTED),
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
    /// Client-side filter of the rows on this page (by address).
    pub filter_text: String,
    /// When the rows on screen were asked for.
    pub fetched_at: Option<DateTime<Utc>>,
    /// Where Back goes (the lookup it was opened from), else the overview.
    pub back: Option<Box<View>>,
    serial: u64,
}

impl TenantView {
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

/// The lookup screen: a query typed live, the gateway's matches.
#[derive(Debug, Clone)]
pub struct LookupView {
    pub query: String,
    /// The gateway's answer: `found.matches` best first, and the total.
    pub found: super::lookup::Matches,
    pub selected: usize,
    pub loading: bool,
    pub error: Option<String>,
    serial: u64,
    /// Where Esc goes back to.
    pub back: Box<View>,
}

#[derive(Debug, Clone)]
pub enum View {
    Overview,
    Tenant(TenantView),
    Lookup(LookupView),
    Timeline(TimelineView),
    Trends(TrendsView),
}

pub struct App {
    pub url: String,
    pub theme: Theme,
    pub model: Model,
    pub conn: Conn,
    pub last_update: Option<DateTime<Utc>>,
    /// Time between the last two updates: how often this gateway ticks.
    pub update_interval: Option<chrono::Duration>,
    /// Wall clock for the header; set by the loop (and by tests).
    pub clock: DateTime<Utc>,
    pub view: View,
    pub help: bool,
    /// The help's first line shown (↑↓ scroll it).
    pub help_scroll: u16,
    /// The most the help can scroll at the size last drawn (set by the
    /// drawing, which alone knows the size).
    pub help_max_scroll: std::cell::Cell<u16>,
    pub sort: TenantSort,
    pub reverse: bool,
    pub affected_only: bool,
    pub filter: String,
    pub filter_editing: bool,
    pub selected: usize,
    /// The tenant on the selected row: a new sort or a cleared filter
    /// keeps it selected.
    selected_tenant: Option<String>,
    pub simulated_hint: bool,
    pub keymap: Keymap,
    /// The command palette's input while it is open.
    pub palette: Option<String>,
    /// A one-line answer to the last command or key (text, is_error).
    pub status: Option<(String, bool)>,
    /// Shortest time between frames drawn for data alone; above a second
    /// the clock shows minutes only, so it does not force frames either.
    pub refresh: Duration,
    /// `--read-only`: act as a viewer whatever the token allows.
    pub read_only: bool,
    pub me: Option<Me>,
    pub prio: Option<PrioForm>,
    /// The status-update composer, over the body while open.
    pub composer: Option<super::composer::Composer>,
    /// A draft saved by an earlier session, offered back.
    pub saved_draft: Option<super::composer::DraftFile>,
    /// Ring the bell once when the promised update becomes overdue.
    pub bell: bool,
    bell_rung_for: Option<String>,
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
            update_interval: None,
            clock: Utc::now(),
            view: View::Overview,
            help: false,
            help_scroll: 0,
            help_max_scroll: std::cell::Cell::new(0),
            sort: TenantSort::Affected,
            reverse: false,
            affected_only: false,
            filter: String::new(),
            filter_editing: false,
            selected: 0,
            selected_tenant: None,
            simulated_hint: false,
            keymap: Keymap::default_keymap(),
            palette: None,
            status: None,
            refresh: Duration::from_secs(1),
            read_only: false,
            me: None,
            prio: None,
            composer: None,
            saved_draft: None,
            bell: false,
            bell_rung_for: None,
            serial: 0,
        }
    }

    /// Opens the composer: the saved draft if there is one, else a new
    /// draft that starts from the last published state.
    fn open_composer(&mut self) -> Command {
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
            let draft = self.saved_draft.take().unwrap_or_else(|| {
                let state = self
                    .model
                    .board
                    .latest
                    .as_ref()
                    .map_or(self.model.overview.incident.state, |u| u.state);
                super::composer::DraftFile::new(state)
            });
            self.composer = Some(super::composer::Composer::new(draft));
        }
        Command::None
    }

    fn composer_key(&mut self, k: KeyEvent) -> Command {
        use super::composer::Ask;
        self.serial += 1;
        let serial = self.serial;
        let now = self.source_now();
        let Some(c) = self.composer.as_mut() else {
            return Command::None;
        };
        match c.key(k, now) {
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

    /// The promised next update: time left, or how long it is overdue.
    /// None when nothing is promised (no update yet, or resolved).
    pub fn next_update_due(&self) -> Option<chrono::Duration> {
        Some(self.model.board.promised_update()? - self.source_now())
    }

    /// The incident's clock: the header shows it, and times typed in the
    /// composer are read on it, so that in a drill the header, the ETAs
    /// and the update's times are on one timeline.
    pub fn source_now(&self) -> DateTime<Utc> {
        self.model.overview.clock(self.clock)
    }

    /// Once per promise, when it becomes overdue: the bell, if wanted.
    pub fn bell_due(&mut self) -> Command {
        let overdue = self
            .next_update_due()
            .is_some_and(|d| d <= chrono::Duration::zero());
        let id = self.model.board.latest.as_ref().map(|u| u.id.clone());
        if self.bell && overdue && self.bell_rung_for != id {
            self.bell_rung_for = id;
            return Command::Bell;
        }
        Command::None
    }

    /// What this console may do: the gateway's answer, capped by
    /// `--read-only`; a viewer until the gateway has answered.
    pub fn role(&self) -> Role {
        match &self.me {
            Some(me) if !self.read_only => me.role,
            _ => Role::Viewer,
        }
    }

    /// Opens the priority form for a tenant, or says why not.
    fn open_prio(&mut self, tenant_id: &str) -> Command {
        if !self.role().can_prioritize() {
            let why = if self.read_only {
                "read-only console (--read-only): priorities cannot be changed here".to_string()
            } else {
                format!(
                    "you are {}: setting priorities needs the operator role",
                    self.role().with_article()
                )
            };
            self.say(why, true);
            return Command::None;
        }
        let Some(t) = self.model.tenant(tenant_id) else {
            self.say(format!("no tenant {tenant_id:?}"), true);
            return Command::None;
        };
        let set = t.priority_set.as_deref();
        self.prio = Some(PrioForm {
            tenant_id: t.id.to_string(),
            tenant_name: t.name.to_string(),
            current: set.cloned(),
            default: t.priority,
            priority: t.priority,
            rank: set.map_or(0, |d| d.rank),
            reason: String::new(),
            confirming: false,
            sending: false,
            error: None,
            serial: 0,
        });
        Command::None
    }

    /// Keys while the priority form is open: ←→ choose the priority, ↑↓
    /// an explicit rank within it (0 = fair order), type the reason, enter asks to confirm, enter (or y) again sends; esc
    /// steps back (confirm → form → closed).
    fn prio_key(&mut self, k: KeyEvent) -> Command {
        self.serial += 1;
        let serial = self.serial;
        let Some(form) = self.prio.as_mut() else {
            return Command::None;
        };
        if form.sending {
            if k.code == KeyCode::Esc {
                // The answer still arrives and is reported in the footer.
                self.prio = None;
            }
            return Command::None;
        }
        if form.confirming {
            match k.code {
                KeyCode::Enter | KeyCode::Char('y') | KeyCode::Char('Y') => {
                    form.confirming = false;
                    form.sending = true;
                    form.serial = serial;
                    return Command::SetPriority {
                        serial,
                        request: form.request(),
                    };
                }
                _ => form.confirming = false,
            }
            return Command::None;
        }
        let i = Priority::ALL
            .iter()
            .position(|p| *p == form.priority)
            .unwrap_or(2);
        match k.code {
            KeyCode::Esc => self.prio = None,
            KeyCode::Left => form.priority = Priority::ALL[i.saturating_sub(1)],
            KeyCode::Right => form.priority = Priority::ALL[(i + 1).min(3)],
            // An explicit place within the priority: #1 goes first; below
            // #1 is the fair round-robin (rank 0).
            KeyCode::Up => form.rank = form.rank.saturating_sub(1),
            KeyCode::Down => form.rank = (form.rank + 1).min(priority::MAX_RANK),
            KeyCode::Backspace => {
                form.reason.pop();
            }
            KeyCode::Enter => {
                match priority::check_request(&form.tenant_id, form.rank, form.reason.trim()) {
                    Ok(()) => {
                        form.error = None;
                        form.confirming = true;
                    }
                    Err(e) => form.error = Some(e),
                }
            }
            // Up to the limit and one past it, so the form can say "too long".
            KeyCode::Char(c)
                if !c.is_control() && form.reason.chars().count() <= priority::MAX_REASON_CHARS =>
            {
                form.reason.push(c)
            }
            _ => {}
        }
        Command::None
    }

    fn open_timeline(&mut self) -> Command {
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

    fn fetch_audit(&mut self) -> Command {
        self.serial += 1;
        let serial = self.serial;
        let View::Timeline(tv) = &mut self.view else {
            return Command::None;
        };
        tv.serial = serial;
        tv.loading = true;
        tv.fetched_at = Some(Utc::now());
        let after_id = tv.events.last().map_or(0, |e| e.id);
        Command::FetchAudit { serial, after_id }
    }

    /// Opens the trends of `tenant_id` (empty: the platform's).
    fn open_trends(&mut self, tenant_id: String) -> Command {
        self.filter_editing = false;
        let back = match std::mem::replace(&mut self.view, View::Overview) {
            View::Trends(tv) => tv.back,
            other => Box::new(other),
        };
        self.view = View::Trends(TrendsView {
            tenant_id,
            history: None,
            loading: true,
            error: None,
            fetched_at: None,
            back,
            serial: 0,
        });
        self.fetch_trends()
    }

    fn fetch_trends(&mut self) -> Command {
        self.serial += 1;
        let serial = self.serial;
        let View::Trends(tv) = &mut self.view else {
            return Command::None;
        };
        tv.serial = serial;
        tv.loading = true;
        tv.fetched_at = Some(Utc::now());
        Command::FetchTrends {
            serial,
            tenant_id: tv.tenant_id.clone(),
        }
    }

    /// ↑↓ pick the tenant before or after (in the tenants table's order),
    /// home goes back to every tenant, esc back where it was opened.
    fn trends_action(&mut self, action: Action) -> Command {
        let View::Trends(tv) = &mut self.view else {
            return Command::None;
        };
        let step = match action {
            Action::Back => {
                let back = std::mem::replace(&mut tv.back, Box::new(View::Overview));
                self.view = *back;
                return Command::None;
            }
            Action::Top if !tv.tenant_id.is_empty() => {
                tv.tenant_id.clear();
                tv.history = None;
                return self.fetch_trends();
            }
            Action::Trends => return self.fetch_trends(),
            Action::Down => 1,
            Action::Up => -1,
            _ => return Command::None,
        };
        let len = self.model.ordered_len();
        if len == 0 {
            return Command::None;
        }
        let now = self.model.ordered().position(|t| *t.id == *tv.tenant_id);
        let at = match (now, step) {
            (Some(i), 1) => (i + 1).min(len - 1),
            (Some(i), _) => i.saturating_sub(1),
            // From every tenant: the one selected in the table.
            (None, _) => self.selected.min(len - 1),
        };
        if let Some(t) = self.model.ordered_at(at) {
            tv.tenant_id = t.id.to_string();
            tv.history = None;
            self.selected = at;
            self.selected_tenant = Some(t.id.to_string());
        }
        self.fetch_trends()
    }

    fn timeline_action(&mut self, action: Action) -> Command {
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

    /// The context whose bindings apply now.
    pub fn context(&self) -> Context {
        match self.view {
            View::Overview | View::Lookup(_) | View::Timeline(_) | View::Trends(_) => {
                Context::Overview
            }
            View::Tenant(_) => Context::Tenant,
        }
    }

    /// The text the clock shows: when it changes, the screen is redrawn.
    pub fn clock_key(&self, now: DateTime<Utc>) -> String {
        now.format(self.clock_format()).to_string()
    }

    /// The header clock's format: seconds only when frames come every
    /// second, and not in a drill (its clock moves by simulated minutes).
    pub fn clock_format(&self) -> &'static str {
        if self.refresh > Duration::from_secs(1) || self.model.overview.simulated() {
            "%H:%M UTC"
        } else {
            "%H:%M:%S UTC"
        }
    }

    /// Sorts the table if needed and keeps the selection on the tenant
    /// that was selected, wherever a new sort, a cleared filter or new
    /// figures put it (row 1 when it is no longer listed).
    pub fn prepare(&mut self) {
        let reordered =
            self.model
                .prepare_order(self.sort, self.reverse, &self.filter, self.affected_only);
        if reordered && let Some(id) = &self.selected_tenant {
            self.selected = self.model.position(id).unwrap_or(0);
        }
        let n = self.model.ordered_len();
        self.selected = self.selected.min(n.saturating_sub(1));
        self.remember_selection();
    }

    /// The selected row's tenant, as shown: what a new order keeps
    /// selected.
    fn remember_selection(&mut self) {
        let id = self.model.ordered_at(self.selected).map(|t| &t.id);
        if self.selected_tenant.as_deref() != id.map(|i| &**i) {
            self.selected_tenant = id.map(|i| i.to_string());
        }
    }

    /// Whether `ev` must be drawn at once rather than at the next refresh:
    /// anything but a data update, and an update carrying a priority
    /// decision (the room must see a decision when it is made).
    pub fn is_urgent(&self, ev: &ClientEvent) -> bool {
        let ClientEvent::Update(u) = ev else {
            return true;
        };
        u.tenants.iter().any(|t| {
            let new = t.priority_set.as_ref().map(|d| d.version);
            let old = self
                .model
                .tenant(&t.id)
                .and_then(|r| r.priority_set.as_ref().map(|d| d.version));
            new != old
        })
    }

    /// Applies what the client task reported; may ask the loop for network
    /// work (refresh an open mailbox list, resubscribe after a gap).
    pub fn on_client(&mut self, ev: ClientEvent) -> Command {
        match ev {
            ClientEvent::Update(u) => match self.model.apply_run(&u) {
                (applied @ (Applied::Snapshot | Applied::Delta), restarted) => {
                    if restarted {
                        self.say_restarted();
                    }
                    let was_live = self.conn == Conn::Live;
                    self.conn = Conn::Live;
                    let now = Utc::now();
                    if let Some(prev) = self.last_update {
                        self.update_interval = Some(now - prev);
                    }
                    self.last_update = Some(now);
                    // A (re)connected gateway may know us differently.
                    if applied == Applied::Snapshot && (!was_live || self.me.is_none()) {
                        return Command::WhoAmI;
                    }
                    return self.refresh_due(now);
                }
                (Applied::Stale, _) => {}
                (Applied::Gap, _) => {
                    tracing::warn!(version = u.version, "update does not follow; resubscribing");
                    return Command::Resubscribe;
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
            ClientEvent::Lookup { serial, result } => {
                // Only the answer to the newest query counts.
                if let View::Lookup(lv) = &mut self.view
                    && lv.serial == serial
                {
                    lv.loading = false;
                    match result {
                        Ok(r) => {
                            lv.found = r;
                            lv.error = None;
                            lv.selected = lv.selected.min(lv.found.matches.len().saturating_sub(1));
                        }
                        Err(e) => lv.error = Some(e),
                    }
                }
            }
            ClientEvent::Identity(result) => match result {
                Ok(me) => self.me = Some(me),
                Err(e) => self.say(format!("cannot tell who you are: {e}"), true),
            },
            ClientEvent::Priority { serial, result } => {
                let form = self.prio.as_mut().filter(|f| f.serial == serial);
                match (result, form) {
                    (Ok(d), _) => {
                        let tenant = self
                            .model
                            .tenant(&d.tenant_id)
                            .map_or(d.tenant_id.clone(), |t| t.name.to_string());
                        self.prio = None;
                        self.say(
                            format!("{tenant} is now {} (version {})", d.label(), d.version),
                            false,
                        );
                    }
                    (Err(e), Some(form)) => {
                        // Keep what was typed; show what is true now.
                        form.sending = false;
                        if e.current.is_some() {
                            form.current = e.current;
                        }
                        form.error = Some(e.message);
                    }
                    (Err(e), None) => self.say(format!("priority not set: {}", e.message), true),
                }
            }
            ClientEvent::StatusPreview { serial, result } => {
                if let Some(c) = self.composer.as_mut().filter(|c| c.serial == serial) {
                    match result {
                        Ok((findings, previews)) => {
                            c.findings = findings;
                            c.previews = previews;
                            c.stage = super::composer::Stage::Previewed;
                        }
                        Err(e) => {
                            c.error = Some(e);
                            c.stage = super::composer::Stage::Editing;
                        }
                    }
                }
            }
            ClientEvent::Published { serial, result } => {
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
                            c.stage = super::composer::Stage::Editing;
                            c.error = Some(e);
                            if !findings.is_empty() {
                                c.findings = findings;
                            }
                        }
                        None => self.say(format!("not published: {e}"), true),
                    },
                }
            }
            ClientEvent::Audit {
                serial,
                after_id,
                result,
            } => {
                if let View::Timeline(tv) = &mut self.view
                    && tv.serial == serial
                {
                    tv.loading = false;
                    match result {
                        // The log only grows: what is new goes at the end.
                        Ok(events) => {
                            tv.events.retain(|e| e.id <= after_id);
                            tv.events.extend(events);
                            tv.error = None;
                        }
                        Err(e) => tv.error = Some(e),
                    }
                }
            }
            ClientEvent::Trends { serial, result } => {
                if let View::Trends(tv) = &mut self.view
                    && tv.serial == serial
                {
                    tv.loading = false;
                    match result {
                        Ok(h) => {
                            tv.history = Some(h);
                            tv.error = None;
                        }
                        // The last curve stays, marked with the error.
                        Err(e) => tv.error = Some(e),
                    }
                }
            }
            ClientEvent::Exported(result) => match result {
                Ok((path, rows)) => self.say(
                    format!(
                        "exported {} mailboxes affected now (not the restored) to {}",
                        thousands(rows as u64),
                        path.display()
                    ),
                    false,
                ),
                Err(e) => self.say(e, true),
            },
            ClientEvent::Mailboxes { serial, result } => {
                let View::Tenant(tv) = &mut self.view else {
                    return Command::None;
                };
                if tv.serial != serial {
                    return Command::None; // an answer we no longer care about
                }
                tv.loading = false;
                match result {
                    Ok((rows, next, total)) => {
                        tv.rows = rows;
                        tv.next_token = next;
                        tv.total = total;
                        tv.error = None;
                        tv.selected = tv.selected.min(tv.visible().len().saturating_sub(1));
                    }
                    Err(e) => tv.error = Some(e),
                }
            }
        }
        Command::None
    }

    /// An open mailbox list is refetched every few seconds while data flows,
    /// so its states and ETAs do not go stale under a live header.
    fn refresh_due(&mut self, now: DateTime<Utc>) -> Command {
        let due = |loading: bool, fetched_at: Option<DateTime<Utc>>| {
            !loading
                && fetched_at.is_none_or(|t| (now - t).num_seconds() >= MAILBOX_REFRESH_SECONDS)
        };
        match &self.view {
            View::Timeline(tv) if due(tv.loading, tv.fetched_at) => self.fetch_audit(),
            View::Trends(tv) if due(tv.loading, tv.fetched_at) => self.fetch_trends(),
            View::Tenant(tv) if due(tv.loading, tv.fetched_at) => self.fetch(),
            _ => Command::None,
        }
    }

    /// True when a live stream has been quiet for much longer than this
    /// gateway's own tick (5 s at least, 3 ticks for slow gateways).
    pub fn quiet(&self) -> Option<chrono::Duration> {
        let age = self.clock - self.last_update?;
        let limit = self
            .update_interval
            .map_or(chrono::Duration::seconds(5), |i| {
                (i * 3).max(chrono::Duration::seconds(5))
            });
        (age >= limit).then_some(age)
    }

    fn fetch(&mut self) -> Command {
        self.serial += 1;
        let serial = self.serial;
        let View::Tenant(tv) = &mut self.view else {
            return Command::None;
        };
        tv.serial = serial;
        tv.loading = true;
        tv.fetched_at = Some(Utc::now());
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
        self.status = None;
        let ctrl_c = k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c');
        // While typing, ctrl-c still means "get me out", never the letter c.
        if ctrl_c && (self.palette.is_some() || self.filter_editing) {
            return Command::Quit;
        }
        if self.prio.is_some() {
            if ctrl_c {
                return Command::Quit;
            }
            return self.prio_key(k);
        }
        if self.composer.is_some() {
            if ctrl_c {
                return Command::Quit;
            }
            return self.composer_key(k);
        }
        if let Some(input) = self.palette.as_mut() {
            match k.code {
                KeyCode::Esc => self.palette = None,
                KeyCode::Enter => {
                    let line = input.clone();
                    self.palette = None;
                    return self.run_command(&line);
                }
                KeyCode::Tab => {
                    let done = complete(input);
                    *input = done;
                }
                // Backspace on an empty line closes the palette.
                KeyCode::Backspace if input.pop().is_none() => self.palette = None,
                KeyCode::Char(c) if !c.is_control() && input.len() < 256 => input.push(c),
                _ => {}
            }
            return Command::None;
        }
        if matches!(self.view, View::Lookup(_)) {
            if ctrl_c {
                return Command::Quit;
            }
            return self.lookup_key(k);
        }
        if self.filter_editing {
            let filter = match &mut self.view {
                View::Tenant(tv) => &mut tv.filter_text,
                View::Overview | View::Lookup(_) | View::Timeline(_) | View::Trends(_) => {
                    &mut self.filter
                }
            };
            match k.code {
                KeyCode::Enter => self.filter_editing = false,
                KeyCode::Esc => {
                    self.filter_editing = false;
                    filter.clear();
                }
                KeyCode::Backspace => {
                    filter.pop();
                }
                KeyCode::Char(c) if !c.is_control() && filter.len() < 64 => {
                    filter.push(c);
                    // Typing a filter goes to its first match.
                    self.selected = 0;
                    self.selected_tenant = None;
                    if let View::Tenant(tv) = &mut self.view {
                        tv.selected = 0;
                    }
                }
                _ => {}
            }
            return Command::None;
        }
        let action = self.keymap.action(self.context(), &k);
        if self.help {
            // ↑↓ (and pages, home, end) scroll a help taller than the
            // terminal; any other key closes it; quit still quits.
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
            return if action == Some(Action::Quit) || (action.is_none() && ctrl_c) {
                Command::Quit
            } else {
                Command::None
            };
        }
        match action {
            Some(a) => self.perform(a),
            // ctrl-c always quits unless the keymap gave it another job.
            None if ctrl_c => Command::Quit,
            None => Command::None,
        }
    }

    /// Does what `action` means in the current view.
    pub fn perform(&mut self, action: Action) -> Command {
        match action {
            Action::Quit => return Command::Quit,
            Action::Help => self.help = true,
            Action::Palette => self.palette = Some(String::new()),
            Action::Lookup => return self.open_lookup(String::new()),
            Action::Compose => return self.open_composer(),
            Action::Timeline if !matches!(self.view, View::Timeline(_)) => {
                return self.open_timeline();
            }
            Action::Trends if !matches!(self.view, View::Trends(_)) => {
                // From a tenant's mailboxes, that tenant's trends.
                let tenant = match &self.view {
                    View::Tenant(tv) => tv.tenant_id.clone(),
                    _ => String::new(),
                };
                return self.open_trends(tenant);
            }
            Action::Filter if !matches!(self.view, View::Timeline(_) | View::Trends(_)) => {
                self.filter_editing = true
            }
            _ => {}
        }
        match &mut self.view {
            View::Overview => self.overview_action(action),
            View::Tenant(_) => self.tenant_action(action),
            View::Lookup(_) => Command::None,
            View::Timeline(_) => self.timeline_action(action),
            View::Trends(_) => self.trends_action(action),
        }
    }

    fn overview_action(&mut self, action: Action) -> Command {
        let cmd = self.overview_move(action);
        // A move picks the tenant now on that row, as shown.
        if matches!(
            action,
            Action::Down
                | Action::Up
                | Action::PageDown
                | Action::PageUp
                | Action::Top
                | Action::Bottom
        ) {
            self.remember_selection();
        }
        cmd
    }

    fn overview_move(&mut self, action: Action) -> Command {
        let n = self.model.ordered_len();
        let last = n.saturating_sub(1);
        match action {
            Action::Down => self.selected = (self.selected + 1).min(last),
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::PageDown => self.selected = (self.selected + 10).min(last),
            Action::PageUp => self.selected = self.selected.saturating_sub(10),
            Action::Top => self.selected = 0,
            Action::Bottom => self.selected = last,
            // The selected tenant stays selected (see `prepare`).
            Action::SortNext => self.sort = self.sort.next(),
            Action::SortReverse => self.reverse = !self.reverse,
            Action::AffectedOnly => self.affected_only = !self.affected_only,
            Action::Back => self.filter.clear(),
            Action::Open => {
                if let Some(t) = self.model.ordered_at(self.selected) {
                    let id = t.id.to_string();
                    return self.open_tenant(id);
                }
            }
            Action::Prioritize => {
                if let Some(t) = self.model.ordered_at(self.selected) {
                    let id = t.id.to_string();
                    return self.open_prio(&id);
                }
            }
            _ => {}
        }
        Command::None
    }

    fn open_tenant(&mut self, tenant_id: String) -> Command {
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

    fn tenant_action(&mut self, action: Action) -> Command {
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

    /// Opens the lookup screen over the current view (Esc comes back).
    fn open_lookup(&mut self, query: String) -> Command {
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
        if let Err(e) = super::lookup::check_query(&lv.query) {
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

    /// Keys on the lookup screen: typing edits the query (and asks again),
    /// ↑↓ choose, enter opens a tenant, ctrl-y copies the answer, esc goes
    /// back.
    fn lookup_key(&mut self, k: KeyEvent) -> Command {
        let now = self.model.overview.incident.now.unwrap_or(self.clock);
        let View::Lookup(lv) = &mut self.view else {
            return Command::None;
        };
        let last = lv.found.matches.len().saturating_sub(1);
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Esc => {
                let back = std::mem::replace(&mut lv.back, Box::new(View::Overview));
                self.view = *back;
            }
            KeyCode::Down => lv.selected = (lv.selected + 1).min(last),
            KeyCode::Up => lv.selected = lv.selected.saturating_sub(1),
            KeyCode::Char('y') if ctrl => {
                if let Some(m) = lv.found.matches.get(lv.selected) {
                    let next = self.model.board.promised_update();
                    let (_, say) = super::lookup::describe_match(m, now, next);
                    self.say("copied the answer to the clipboard (OSC 52)", false);
                    return Command::Copy(say);
                }
            }
            KeyCode::Enter => {
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
            KeyCode::Backspace => {
                lv.query.pop();
                lv.selected = 0;
                return self.ask_lookup();
            }
            KeyCode::Char(c)
                if !c.is_control() && !ctrl && lv.query.len() < super::lookup::MAX_QUERY_BYTES =>
            {
                lv.query.push(c);
                lv.selected = 0;
                return self.ask_lookup();
            }
            _ => {}
        }
        Command::None
    }

    /// `:prio TENANT P0 reason...`: the form, filled in and asking to
    /// confirm; what is missing or wrong is said in the form.
    fn prio_command(&mut self, arg: &str) -> Command {
        let mut words = arg.splitn(3, ' ');
        let (who, level, reason) = (
            words.next().unwrap_or("").trim(),
            words.next().unwrap_or("").trim(),
            words.next().unwrap_or("").trim(),
        );
        if who.is_empty() {
            self.say(
                "usage: :prio TENANT P0..P3 REASON (TENANT: id, name or domain)",
                true,
            );
            return Command::None;
        }
        let id = match self.model.find_tenant(who) {
            Ok(id) => id,
            Err(why) => {
                self.say(why, true);
                return Command::None;
            }
        };
        let cmd = self.open_prio(&id);
        if let Some(form) = self.prio.as_mut() {
            match parse_level(level) {
                Some((p, rank)) => (form.priority, form.rank) = (p, rank),
                None => {
                    form.error = Some(format!(
                        "{level:?} is not a priority: P0, P1, P2 or P3, optionally with a rank (P1#2)"
                    ));
                    return cmd;
                }
            }
            form.reason = reason
                .chars()
                .take(priority::MAX_REASON_CHARS + 1)
                .collect();
            match priority::check_request(&form.tenant_id, form.rank, &form.reason) {
                Ok(()) => form.confirming = true,
                Err(e) => form.error = Some(e),
            }
        }
        cmd
    }

    fn say(&mut self, text: impl Into<String>, error: bool) {
        self.status = Some((text.into(), error));
    }

    /// The gateway came back as a new run: say so, since everything on
    /// screen now comes from it (a simulated incident started again).
    fn say_restarted(&mut self) {
        let o = &self.model.overview;
        let when = match self.model.run.as_ref().and_then(|r| r.1) {
            Some(t) => format!(" at {} UTC", t.format("%H:%M")),
            None => String::new(),
        };
        let what = if o.simulated() {
            let at = match (o.incident.started_at, o.incident.now) {
                (Some(s), Some(n)) => {
                    format!(" (now T+{})", crate::domain::format::duration(n - s))
                }
                _ => String::new(),
            };
            format!("; its simulated incident started again{at}")
        } else {
            "; figures are from its first polls again".to_string()
        };
        self.say(format!("the gateway restarted{when}{what}"), true);
    }

    /// Runs a palette command line such as `open acme-title.com`.
    pub fn run_command(&mut self, line: &str) -> Command {
        let line = line.trim();
        let (cmd, arg) = line
            .split_once(' ')
            .map_or((line, ""), |(c, a)| (c, a.trim()));
        match cmd {
            "" => Command::None,
            "q" | "quit" => Command::Quit,
            "help" => {
                self.help = true;
                Command::None
            }
            "tenants" => {
                self.view = View::Overview;
                self.filter = arg.to_string();
                self.selected = 0;
                self.selected_tenant = None;
                Command::None
            }
            "filter" => {
                match &mut self.view {
                    View::Tenant(tv) => tv.filter_text = arg.to_string(),
                    View::Overview | View::Lookup(_) | View::Timeline(_) | View::Trends(_) => {
                        self.filter = arg.to_string()
                    }
                }
                Command::None
            }
            "affected" => {
                self.affected_only = !self.affected_only;
                Command::None
            }
            "sort" => {
                match TenantSort::ALL.iter().find(|s| s.as_str() == arg) {
                    Some(s) => {
                        self.sort = *s;
                        self.view = View::Overview;
                    }
                    None => self.say(
                        format!(
                            "sort by what? one of: {}",
                            TenantSort::ALL.map(|s| s.as_str()).join(", ")
                        ),
                        true,
                    ),
                }
                Command::None
            }
            "open" => {
                if arg.is_empty() {
                    self.say("open which tenant? :open ID, name or domain", true);
                    return Command::None;
                }
                match self.model.find_tenant(arg) {
                    Ok(id) => self.open_tenant(id),
                    Err(why) => {
                        self.say(why, true);
                        Command::None
                    }
                }
            }
            "lookup" => self.open_lookup(arg.to_string()),
            "prio" => self.prio_command(arg),
            "timeline" => self.open_timeline(),
            "trends" if arg.is_empty() => self.open_trends(String::new()),
            "trends" => match self.model.find_tenant(arg) {
                Ok(id) => self.open_trends(id),
                Err(why) => {
                    self.say(why, true);
                    Command::None
                }
            },
            "publish" => self.open_composer(),
            other => {
                self.say(
                    format!(
                        "unknown command {other:?}; commands: {}",
                        COMMANDS.join(", ")
                    ),
                    true,
                );
                Command::None
            }
        }
    }
}

/// "P1" or "P1#2" (an explicit rank within P1).
fn parse_level(s: &str) -> Option<(Priority, u32)> {
    match s.split_once('#') {
        None => Some((Priority::parse(s)?, 0)),
        Some((p, r)) => Some((Priority::parse(p)?, r.parse().ok().filter(|r| *r > 0)?)),
    }
}

/// Palette commands, for completion and the error message.
pub const COMMANDS: [&str; 13] = [
    "quit", "help", "tenants", "open", "filter", "sort", "affected", "lookup", "prio", "publish",
    "timeline", "trends", "q",
];

/// Completes the command word (or a sort key after `sort `) when exactly one
/// candidate fits; otherwise extends to the longest common prefix.
pub fn complete(input: &str) -> String {
    let (prefix, word, candidates): (&str, &str, Vec<&str>) = match input.split_once(' ') {
        None => ("", input, COMMANDS.to_vec()),
        Some(("sort", w)) => (
            "sort ",
            w,
            TenantSort::ALL.iter().map(|s| s.as_str()).collect(),
        ),
        Some(_) => return input.to_string(),
    };
    let fits: Vec<&str> = candidates
        .into_iter()
        .filter(|c| c.starts_with(word))
        .collect();
    match fits.as_slice() {
        [] => input.to_string(),
        [one] => format!("{prefix}{one} "),
        many => {
            let first = many[0];
            let common = (word.len()..=first.len())
                .rev()
                .find(|&n| many.iter().all(|c| c.starts_with(&first[..n])))
                .unwrap_or(word.len());
            format!("{prefix}{}", &first[..common])
        }
    }
}

#[cfg(test)]
// Tests drive the state by hand: the commands they do not look at are
// the point of other tests.
#[allow(unused_must_use)]
mod tests {
    use super::*;

    #[test]
    fn completion_finishes_commands_and_sort_keys() {
        assert_eq!(complete("op"), "open ");
        assert_eq!(complete("sort m"), "sort mailboxes ");
        assert_eq!(complete("sort "), "sort ");
        assert_eq!(complete("zz"), "zz");
        assert_eq!(complete("p"), "p", "prio and publish share only 'p'");
        assert_eq!(complete("pr"), "prio ");
    }

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

    /// A console that sees a new gateway run says the gateway restarted;
    /// a reconnect to the same run says nothing.
    #[test]
    fn a_gateway_restart_is_said_not_silent() {
        use crate::api::pb;
        let snap = |version, run: &str| {
            Box::new(pb::WatchUpdate {
                version,
                snapshot: true,
                run: Some(pb::GatewayRun {
                    id: run.into(),
                    started_at: Some(crate::api::ts(
                        chrono::DateTime::from_timestamp(1_764_943_320, 0).unwrap(),
                    )),
                }),
                ..Default::default()
            })
        };
        let mut app = App::new("http://x".into(), Theme::mono());
        app.on_client(ClientEvent::Update(snap(14, "run-a")));
        assert_eq!(app.status, None, "the first run is not news");
        app.on_client(ClientEvent::Update(snap(20, "run-a")));
        assert_eq!(app.status, None, "a reconnect to the same run is not news");
        app.on_client(ClientEvent::Update(snap(3, "run-b")));
        let (said, alarm) = app.status.clone().expect("said");
        assert!(alarm);
        assert!(
            said.starts_with("the gateway restarted at 14:02 UTC"),
            "{said}"
        );
        assert_eq!(app.model.version, 3, "the new run's data is shown");
    }

    /// An App for operator "ana" holding one tenant.
    fn operator_app(tenant: crate::api::pb::TenantSummary) -> App {
        let mut app = App::new("http://x".into(), Theme::mono());
        app.me = Some(Me {
            name: "ana".into(),
            role: Role::Operator,
            authenticated: true,
        });
        app.model.apply(&crate::api::pb::WatchUpdate {
            version: 1,
            snapshot: true,
            tenants: vec![tenant],
            ..Default::default()
        });
        app
    }

    /// The confirmation names the priority in force with its rank.
    #[test]
    fn the_priority_form_confirms_from_the_current_rank() {
        use crate::api::pb;
        let mut app = operator_app(pb::TenantSummary {
            id: "t00001".into(),
            name: "Acme".into(),
            priority: pb::Priority::P1 as i32,
            priority_set: Some(pb::TenantPriority {
                tenant_id: "t00001".into(),
                priority: pb::Priority::P1 as i32,
                rank: 2,
                version: 4,
                set_by: "bo".into(),
                set_at: Some(prost_types::Timestamp::default()),
                reason: "hospital".into(),
            }),
            ..Default::default()
        });
        app.open_prio("t00001");
        let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
        app.on_key(key(KeyCode::Down));
        for c in "later".chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        app.on_key(key(KeyCode::Enter));
        let form = app.prio.as_ref().unwrap();
        assert_eq!(form.request().expected_version, 4);
        let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(100, 30)).unwrap();
        t.draw(|f| super::super::ui::render(f, &app)).unwrap();
        let text = super::super::snapshot::buffer_text(t.backend().buffer());
        assert!(text.contains("Set Acme from P1 #2 to P1 #3?"), "{text}");
    }

    #[test]
    fn the_priority_form_sets_priority_rank_and_reason_then_confirms() {
        use crate::api::pb;
        let mut app = operator_app(pb::TenantSummary {
            id: "t00001".into(),
            name: "Acme".into(),
            priority: pb::Priority::P2 as i32,
            ..Default::default()
        });
        app.open_prio("t00001");
        let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
        for k in [KeyCode::Left, KeyCode::Left, KeyCode::Down, KeyCode::Down] {
            app.on_key(key(k));
        }
        for c in "closing".chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        app.on_key(key(KeyCode::Enter));
        assert!(app.prio.as_ref().unwrap().confirming, "asks to confirm");
        match app.on_key(key(KeyCode::Enter)) {
            Command::SetPriority { request, .. } => {
                assert_eq!(request.priority, pb::Priority::P0 as i32);
                assert_eq!(request.rank, 2);
                assert_eq!(request.reason, "closing");
                assert_eq!(request.expected_version, 0);
            }
            other => panic!("expected SetPriority, got {other:?}"),
        }
        // A viewer is told why not, and gets no form.
        app.prio = None;
        app.read_only = true;
        app.open_prio("t00001");
        assert!(app.prio.is_none());
        assert!(
            app.status
                .as_ref()
                .is_some_and(|(m, e)| *e && m.contains("read-only"))
        );
    }

    #[test]
    fn priority_levels_parse_with_an_optional_rank() {
        assert_eq!(parse_level("p0"), Some((Priority::P0, 0)));
        assert_eq!(parse_level("P1#2"), Some((Priority::P1, 2)));
        assert_eq!(parse_level("P1#0"), None);
        assert_eq!(parse_level("P4"), None);
        assert_eq!(parse_level("P1#x"), None);
    }

    #[test]
    fn palette_commands_change_the_view_or_say_why_not() {
        let mut app = App::new("http://x".into(), Theme::mono());
        assert!(matches!(app.run_command("quit"), Command::Quit));
        app.run_command("sort queued");
        assert_eq!(app.sort, TenantSort::Queued);
        app.run_command("sort sideways");
        assert!(
            app.status
                .as_ref()
                .is_some_and(|(m, e)| *e && m.contains("one of"))
        );
        app.run_command("filter acme");
        assert_eq!(app.filter, "acme");
        app.run_command("open nobody");
        assert!(
            app.status
                .as_ref()
                .is_some_and(|(m, _)| m.contains("no tenant"))
        );
        app.run_command("fly");
        assert!(
            app.status
                .as_ref()
                .is_some_and(|(m, _)| m.contains("unknown command"))
        );
    }
}
