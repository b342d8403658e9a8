//! Console state and what each key does. Pure state transitions: no I/O, no
//! drawing; network work is returned as a `Command` for the loop to start.
//! Here: the shared state, the routing of keys and of the client's events
//! to the screen in front, the command palette, the header's countdown and
//! the bell. Each screen's view state and keys are in its module under
//! `screens/` (as `impl App` blocks), beside its drawing.

use chrono::{DateTime, Utc};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::time::Duration;

use super::input::{Input, Typed};

/// The palette's line: a command and its argument.
const PALETTE_INPUT: Input = Input::bytes(256);
/// A filter: a tenant's id, name or domain, or a mailbox's address.
const FILTER_INPUT: Input = Input::bytes(64);
use super::keymap::{Action, Context, Keymap};
use super::model::{Applied, Model};
use super::theme::Theme;
use crate::client::{ClientEvent, MailboxRequest, PriorityRequest};
use crate::domain::format::counted;
use crate::domain::priority::Role;
use crate::domain::status::Draft;
use crate::domain::tenants::TenantSort;

pub use super::screens::lookup::LookupView;
pub use super::screens::prio::{PrioForm, decision_text};
pub use super::screens::tenant::{MAILBOX_PAGE, StateFilter, TenantView};
pub use super::screens::timeline::TimelineView;
pub use super::screens::trends::TrendsView;

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
        request: PriorityRequest,
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
        draft: Draft,
    },
    PublishStatus {
        serial: u64,
        draft: Draft,
        operation_id: String,
        confirm_warnings: bool,
    },
    /// Ring the terminal bell (the promised update is overdue).
    Bell,
}

/// Who the gateway says we are (the client asks it).
pub use crate::client::Me;

/// How often an open mailbox list is refetched while data flows.
pub const MAILBOX_REFRESH_SECONDS: i64 = 5;

#[derive(Debug, Clone, PartialEq)]
pub enum Conn {
    Connecting { attempt: u32 },
    Live,
    Down { error: String, retry_in: Duration },
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
    pub(super) selected_tenant: Option<String>,
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
    /// With several gateway replicas: the one the Watch is on
    /// (`host:port`), shown in the header. None with a single gateway.
    pub via: Option<String>,
    /// The replica lost, until the new one's snapshot arrives: its other
    /// run is then a move, not a restart.
    moved_from: Option<String>,
    pub(super) serial: u64,
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
            via: None,
            moved_from: None,
            serial: 0,
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

    /// The context whose bindings apply now: the help over everything,
    /// else what is in front (`App::beneath_help`).
    pub fn context(&self) -> Context {
        if self.help {
            Context::Help
        } else {
            self.beneath_help()
        }
    }

    /// What is in front under the help: a form, then the palette or a
    /// filter being typed, then the screen. The help lists its keys.
    pub fn beneath_help(&self) -> Context {
        if let Some(form) = &self.prio {
            return if form.confirming {
                Context::ConfirmPriority
            } else {
                Context::Priority
            };
        }
        if let Some(c) = &self.composer {
            return c.context();
        }
        if self.palette.is_some() {
            return Context::Palette;
        }
        match self.view {
            View::Lookup(_) => Context::Lookup,
            _ if self.filter_editing => Context::Filter,
            View::Overview => Context::Overview,
            View::Tenant(_) => Context::Tenant,
            View::Timeline(_) => Context::Timeline,
            View::Trends(_) => Context::Trends,
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
    pub(super) fn remember_selection(&mut self) {
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
            ClientEvent::Update(u) => {
                let version = u.version;
                match self.model.apply_run(*u) {
                    (applied @ (Applied::Snapshot | Applied::Delta), restarted) => {
                        let moved = self.moved_from.take_if(|_| applied == Applied::Snapshot);
                        match (restarted, moved) {
                            // Another replica runs on its own: not a restart.
                            (_, Some(from)) => self.say(
                                format!(
                                    "gateway {} lost: now on {}",
                                    from,
                                    self.via.as_deref().unwrap_or("another replica")
                                ),
                                false,
                            ),
                            (true, None) => self.say_restarted(),
                            (false, None) => {}
                        }
                        let was_live = self.conn == Conn::Live;
                        self.conn = Conn::Live;
                        let now = self.clock;
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
                        tracing::warn!(version, "update does not follow; resubscribing");
                        return Command::Resubscribe;
                    }
                }
            }
            ClientEvent::Connecting { attempt } => {
                // With data on screen, keep saying "disconnected, retrying"
                // (with the data's age) rather than a bare "connecting".
                if self.model.version == 0 {
                    self.conn = Conn::Connecting { attempt };
                }
            }
            ClientEvent::Via(replica) => {
                if let Some(old) = self.via.replace(replica)
                    && self.via.as_ref() != Some(&old)
                {
                    self.moved_from = Some(old);
                }
            }
            ClientEvent::Disconnected { error, retry_in } => {
                self.conn = Conn::Down { error, retry_in };
            }
            ClientEvent::Lookup { serial, result } => {
                if let View::Lookup(lv) = &mut self.view {
                    lv.answered(serial, result);
                }
            }
            ClientEvent::Identity(result) => match result {
                Ok(me) => self.me = Some(me),
                Err(e) => self.say(format!("cannot tell who you are: {e}"), true),
            },
            ClientEvent::Priority { serial, result } => self.priority_answered(serial, result),
            ClientEvent::StatusPreview { serial, result } => self.preview_answered(serial, result),
            ClientEvent::Published { serial, result } => {
                return self.publish_answered(serial, result);
            }
            ClientEvent::Audit {
                serial,
                after_id,
                result,
            } => {
                if let View::Timeline(tv) = &mut self.view {
                    tv.answered(serial, after_id, result);
                }
            }
            ClientEvent::Trends { serial, result } => {
                if let View::Trends(tv) = &mut self.view {
                    tv.answered(serial, result);
                }
            }
            ClientEvent::Exported(result) => match result {
                Ok((path, rows)) => self.say(
                    format!(
                        "exported {} affected now (not the restored) to {}",
                        counted(rows as u64, "mailbox", "mailboxes"),
                        path.display()
                    ),
                    false,
                ),
                Err(e) => self.say(e, true),
            },
            ClientEvent::Mailboxes { serial, result } => {
                if let View::Tenant(tv) = &mut self.view {
                    tv.answered(serial, result);
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

    /// A key press: looked up in the keymap for the context in front
    /// (`App::context`); where text is typed the text input has it first.
    /// ctrl-c quits wherever the keymap gives it no other job.
    pub fn on_key(&mut self, k: KeyEvent) -> Command {
        self.status = None;
        let ctx = self.context();
        let action = self.keymap.action(ctx, &k);
        let ctrl_c = k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c');
        if action.is_none() && ctrl_c {
            return Command::Quit;
        }
        if action == Some(Action::Help) && ctx != Context::Help {
            self.help = true;
            return Command::None;
        }
        match ctx {
            Context::Help => self.help_key(action),
            Context::Priority | Context::ConfirmPriority => self.prio_key(action, &k),
            Context::Composer | Context::Preview | Context::ConfirmPublish => {
                self.composer_key(action, &k)
            }
            Context::Palette => self.palette_key(action, &k),
            Context::Filter => self.filter_key(action, &k),
            Context::Lookup => self.lookup_key(action, &k),
            Context::Global
            | Context::Overview
            | Context::Tenant
            | Context::Timeline
            | Context::Trends => action.map_or(Command::None, |a| self.perform(a)),
        }
    }

    /// Keys while the command palette is open: typing, complete, run,
    /// cancel (backspace on an empty line cancels too).
    fn palette_key(&mut self, action: Option<Action>, k: &KeyEvent) -> Command {
        let Some(input) = self.palette.as_mut() else {
            return Command::None;
        };
        match PALETTE_INPUT.key(input, k) {
            Typed::Empty => self.palette = None,
            Typed::Changed | Typed::Full => {}
            Typed::Pass => match action {
                Some(Action::Back) => self.palette = None,
                Some(Action::Submit) => {
                    let line = input.clone();
                    self.palette = None;
                    return self.run_command(&line);
                }
                Some(Action::Complete) => *input = complete(input),
                _ => {}
            },
        }
        Command::None
    }

    /// Keys while a filter is typed: typing goes to the first match, submit
    /// keeps the filter, back clears it.
    fn filter_key(&mut self, action: Option<Action>, k: &KeyEvent) -> Command {
        let filter = match &mut self.view {
            View::Tenant(tv) => &mut tv.filter_text,
            View::Overview | View::Lookup(_) | View::Timeline(_) | View::Trends(_) => {
                &mut self.filter
            }
        };
        match FILTER_INPUT.key(filter, k) {
            Typed::Changed => {
                // Typing a filter goes to its first match.
                self.selected = 0;
                self.selected_tenant = None;
                if let View::Tenant(tv) = &mut self.view {
                    tv.selected = 0;
                }
            }
            Typed::Full | Typed::Empty => {}
            Typed::Pass => match action {
                Some(Action::Submit) => self.filter_editing = false,
                Some(Action::Back) => {
                    self.filter_editing = false;
                    filter.clear();
                }
                _ => {}
            },
        }
        Command::None
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

    pub(super) fn say(&mut self, text: impl Into<String>, error: bool) {
        self.status = Some((text.into(), error));
    }

    /// The gateway came back as a new run: say so, since everything on
    /// screen now comes from it (a simulated incident started again).
    fn say_restarted(&mut self) {
        let o = &self.model.overview;
        let when = match self.model.run.as_ref().and_then(|r| r.started_at) {
            Some(t) => format!(" at {} UTC", t.format("%H:%M")),
            None => String::new(),
        };
        // Among replicas, a run that took over from another: the incident
        // goes on (the store line says where and since when).
        if self
            .model
            .run
            .as_ref()
            .is_some_and(|r| r.took_over_at.is_some())
        {
            let store = o.sources.iter().find(|s| s.name == "store");
            let said = format!(
                "another gateway took over{}: it runs the sources now; decisions and updates are kept",
                store.map_or_else(String::new, |s| format!(" ({})", s.message))
            );
            self.say(said, true);
            return;
        }
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

    /// A console that sees a new gateway run says the gateway restarted;
    /// a reconnect to the same run says nothing.
    #[test]
    fn a_gateway_restart_is_said_not_silent() {
        use crate::api::pb;
        let snap = |version, run: &str| {
            Box::new(crate::client::Update::from_pb(&pb::WatchUpdate {
                version,
                snapshot: true,
                run: Some(pb::GatewayRun {
                    id: run.into(),
                    started_at: Some(crate::api::ts(
                        chrono::DateTime::from_timestamp(1_764_943_320, 0).unwrap(),
                    )),
                    took_over_at: None,
                }),
                ..Default::default()
            }))
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

        // Among replicas, a run that took over is a takeover, not a restart.
        let mut takeover = snap(9, "run-c");
        if let Some(r) = takeover.run.as_mut() {
            r.took_over_at = r.started_at;
        }
        takeover.overview.sources.push(crate::domain::SourceStatus {
            name: "store".into(),
            simulated: false,
            health: crate::domain::Health::Ok,
            message: "PostgreSQL at db:5432 · leader since 14:05 UTC".into(),
            last_success: None,
        });
        app.on_client(ClientEvent::Update(takeover));
        let (said, _) = app.status.clone().expect("said");
        assert_eq!(
            said,
            "another gateway took over (PostgreSQL at db:5432 · leader since 14:05 UTC): it runs the sources now; decisions and updates are kept"
        );
    }

    /// Given several replicas, a move to another is said as a move (its
    /// other run is no restart) and keeps the screen the user was on.
    #[test]
    fn a_move_to_another_replica_is_said_and_keeps_the_screen() {
        use crate::api::pb;
        let snap = |version, run: &str| {
            Box::new(crate::client::Update::from_pb(&pb::WatchUpdate {
                version,
                snapshot: true,
                run: Some(pb::GatewayRun {
                    id: run.into(),
                    started_at: None,
                    took_over_at: None,
                }),
                tenants: vec![pb::TenantSummary {
                    id: "t00001".into(),
                    name: "Acme".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }))
        };
        let mut app = App::new("http://gw1:7000".into(), Theme::mono());
        app.on_client(ClientEvent::Via("gw1:7000".into()));
        app.on_client(ClientEvent::Update(snap(14, "run-a")));
        let _ = app.open_tenant("t00001".into());
        app.on_client(ClientEvent::Disconnected {
            error: "gateway unreachable".into(),
            retry_in: Duration::from_millis(250),
        });
        app.on_client(ClientEvent::Via("gw2:7000".into()));
        app.on_client(ClientEvent::Update(snap(3, "run-b")));
        assert_eq!(app.via.as_deref(), Some("gw2:7000"));
        assert_eq!(
            app.status,
            Some(("gateway gw1:7000 lost: now on gw2:7000".into(), false))
        );
        assert!(matches!(&app.view, View::Tenant(tv) if tv.tenant_id == "t00001"));
        assert_eq!(app.conn, Conn::Live);
        // A later restart of that same replica is a restart again.
        app.on_client(ClientEvent::Update(snap(1, "run-c")));
        let (said, alarm) = app.status.clone().unwrap();
        assert!(alarm && said.starts_with("the gateway restarted"), "{said}");
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
        // No picture from the gateway yet: it says so.
        app.run_command("open nobody");
        assert!(
            app.status
                .as_ref()
                .is_some_and(|(m, _)| m.contains("has not arrived"))
        );
        app.run_command("fly");
        assert!(
            app.status
                .as_ref()
                .is_some_and(|(m, _)| m.contains("unknown command"))
        );
    }
}
