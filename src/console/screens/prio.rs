//! The priority form, over the screen: the priority and rank chosen, the
//! reason typed, and the confirmation before it is sent.

use ratatui::Frame;
use ratatui::crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::frame::{first_keys, overlay, safe};
use crate::client::{PriorityRefused, PriorityRequest};
use crate::console::app::{App, Command};
use crate::console::input::{Input, Typed};
use crate::console::keymap::{Action, Context};
use crate::domain::Priority;
use crate::domain::priority::{self, PriorityDecision};

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

    fn request(&self) -> PriorityRequest {
        PriorityRequest {
            tenant_id: self.tenant_id.clone(),
            priority: self.priority,
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

impl App {
    /// Opens the priority form for a tenant, or says why not.
    pub(in crate::console) fn open_prio(&mut self, tenant_id: &str) -> Command {
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

    /// Keys while the priority form is open (`Context::Priority`, then
    /// `Context::ConfirmPriority`): choose the priority and an explicit rank
    /// within it (0 = fair order), type the reason, submit asks to confirm,
    /// confirm sends; back steps back (confirm → form → closed).
    pub(in crate::console) fn prio_key(&mut self, action: Option<Action>, k: &KeyEvent) -> Command {
        self.serial += 1;
        let serial = self.serial;
        let Some(form) = self.prio.as_mut() else {
            return Command::None;
        };
        if form.sending {
            if action == Some(Action::Back) {
                // The answer still arrives and is reported in the footer.
                self.prio = None;
            }
            return Command::None;
        }
        if form.confirming {
            form.confirming = false;
            if action == Some(Action::Confirm) {
                form.sending = true;
                form.serial = serial;
                return Command::SetPriority {
                    serial,
                    request: form.request(),
                };
            }
            return Command::None;
        }
        // Up to the limit and one past it, so the form can say "too long".
        let reason = Input::chars(priority::MAX_REASON_CHARS + 1);
        if reason.key(&mut form.reason, k) != Typed::Pass {
            return Command::None;
        }
        let i = Priority::ALL
            .iter()
            .position(|p| *p == form.priority)
            .unwrap_or(2);
        match action {
            Some(Action::Back) => self.prio = None,
            Some(Action::PriorityUp) => form.priority = Priority::ALL[i.saturating_sub(1)],
            Some(Action::PriorityDown) => form.priority = Priority::ALL[(i + 1).min(3)],
            // An explicit place within the priority: #1 goes first; below
            // #1 is the fair round-robin (rank 0).
            Some(Action::RankUp) => form.rank = form.rank.saturating_sub(1),
            Some(Action::RankDown) => form.rank = (form.rank + 1).min(priority::MAX_RANK),
            Some(Action::Submit) => {
                match priority::check_request(&form.tenant_id, form.rank, form.reason.trim()) {
                    Ok(()) => {
                        form.error = None;
                        form.confirming = true;
                    }
                    Err(e) => form.error = Some(e),
                }
            }
            _ => {}
        }
        Command::None
    }

    /// `:prio TENANT P0 reason...`: the form, filled in and asking to
    /// confirm; what is missing or wrong is said in the form.
    pub(in crate::console) fn prio_command(&mut self, arg: &str) -> Command {
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
}

impl App {
    /// The gateway's answer to the form sent as `serial`: said in the
    /// footer when set; on a refusal the form keeps what was typed and
    /// shows what is true now.
    pub(in crate::console) fn priority_answered(
        &mut self,
        serial: u64,
        result: Result<PriorityDecision, PriorityRefused>,
    ) {
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
}

/// "P1" or "P1#2" (an explicit rank within P1).
fn parse_level(s: &str) -> Option<(Priority, u32)> {
    match s.split_once('#') {
        None => Some((Priority::parse(s)?, 0)),
        Some((p, r)) => Some((Priority::parse(p)?, r.parse().ok().filter(|r| *r > 0)?)),
    }
}

pub(crate) fn render(f: &mut Frame, area: Rect, app: &App, form: &PrioForm) {
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
                |d| safe(&decision_text(d))
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
    let keys = |actions: &[Action]| {
        first_keys(app, Context::Priority, actions).unwrap_or_else(|| "unbound".into())
    };
    choice.push(Span::styled(
        format!(
            "({}; P0 goes first)",
            keys(&[Action::PriorityUp, Action::PriorityDown])
        ),
        th.dim(),
    ));
    lines.push(Line::from(choice));
    lines.push(Line::from(vec![
        Span::raw("rank:     "),
        Span::raw(match form.rank {
            0 => "fair order among its priority".to_string(),
            r => format!("#{r} within {}", form.priority.as_str()),
        }),
        Span::styled(
            format!(
                "  ({}; #1 goes first)",
                keys(&[Action::RankUp, Action::RankDown])
            ),
            th.dim(),
        ),
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
                "Set {} from {} to {}? {}: yes · other key: no",
                safe(&form.tenant_name),
                form.current_label(),
                crate::domain::priority::label(form.priority, form.rank),
                app.keymap.label(Context::ConfirmPriority, Action::Confirm)
            ),
            th.alert(),
        )));
    } else {
        lines.push(Line::from(Span::styled(
            format!(
                "{}: review · {}: cancel",
                app.keymap.label(Context::Priority, Action::Submit),
                app.keymap.label(Context::Priority, Action::Back)
            ),
            th.dim(),
        )));
    }
    let h = (lines.len() as u16 + 4).min(area.height.saturating_sub(2));
    let r = overlay(f, area, w, h);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" Set reindex priority ", th.title())),
        ),
        r,
    );
}

#[cfg(test)]
// Tests drive the state by hand: the commands they do not look at are
// the point of other tests.
#[allow(unused_must_use)]
mod tests {
    use super::*;
    use crate::console::app::Me;
    use crate::console::theme::Theme;
    use crate::domain::priority::Role;
    use ratatui::crossterm::event::{KeyCode, KeyModifiers};

    /// An App for operator "ana" holding one tenant.
    fn operator_app(tenant: crate::api::pb::TenantSummary) -> App {
        let mut app = App::new("http://x".into(), Theme::mono());
        app.me = Some(Me {
            name: "ana".into(),
            role: Role::Operator,
            authenticated: true,
        });
        app.model.apply(crate::client::Update::from_pb(
            &crate::api::pb::WatchUpdate {
                version: 1,
                snapshot: true,
                tenants: vec![tenant],
                ..Default::default()
            },
        ));
        app
    }

    /// An operator's App holding tenant Acme (t00001), at P2 by default.
    fn acme_at_p2() -> App {
        operator_app(crate::api::pb::TenantSummary {
            id: "t00001".into(),
            name: "Acme".into(),
            priority: crate::api::pb::Priority::P2 as i32,
            ..Default::default()
        })
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
        t.draw(|f| crate::console::ui::render(f, &app)).unwrap();
        let text = crate::console::snapshot::buffer_text(t.backend().buffer());
        assert!(text.contains("Set Acme from P1 #2 to P1 #3?"), "{text}");
    }

    #[test]
    fn the_priority_form_sets_priority_rank_and_reason_then_confirms() {
        let mut app = acme_at_p2();
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
                assert_eq!(request.priority, Priority::P0);
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

    /// A refusal keeps the form open with what was typed and the decision
    /// now in force; the next send is made against it, and a success
    /// closes the form and says what the tenant is now.
    #[test]
    fn a_refused_priority_keeps_what_was_typed_and_shows_what_is_true_now() {
        use crate::client::{ClientEvent, PriorityRefused};
        let mut app = acme_at_p2();
        app.run_command("prio t00001 P0 title company closing");
        let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
        let Command::SetPriority { serial, .. } = app.on_key(key(KeyCode::Enter)) else {
            panic!("the confirmed form is sent");
        };
        let now_in_force = PriorityDecision {
            tenant_id: "t00001".into(),
            priority: Priority::P1,
            rank: 0,
            version: 5,
            set_by: "bo".into(),
            set_at: chrono::Utc::now(),
            reason: "hospital".into(),
        };
        app.on_client(ClientEvent::Priority {
            serial,
            result: Err(PriorityRefused {
                message: "someone else changed it first".into(),
                current: Some(now_in_force.clone()),
            }),
        });
        let form = app.prio.as_ref().expect("the form stays open");
        assert!(!form.sending);
        assert_eq!(form.reason, "title company closing");
        assert_eq!(form.priority, Priority::P0);
        assert_eq!(form.error.as_deref(), Some("someone else changed it first"));
        assert_eq!(form.current_label(), "P1");
        app.on_key(key(KeyCode::Enter));
        let Command::SetPriority { serial, request } = app.on_key(key(KeyCode::Enter)) else {
            panic!("sent again");
        };
        assert_eq!(
            request.expected_version, 5,
            "against the decision now in force"
        );
        app.on_client(ClientEvent::Priority {
            serial,
            result: Ok(PriorityDecision {
                priority: Priority::P0,
                version: 6,
                ..now_in_force
            }),
        });
        assert!(app.prio.is_none(), "the form closes");
        assert_eq!(
            app.status,
            Some(("Acme is now P0 (version 6)".to_string(), false))
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
}
