//! The status-update composer: state, title, body (with placeholders),
//! components and the next-update time; a preview of exactly what each
//! channel receives; publishing after an explicit confirm. Every edit is
//! saved as a local draft, so a dropped SSH session loses nothing.
//!
//! Pure state transitions, like `app`: network and file work is returned as
//! a `Command`.

use chrono::{DateTime, Utc};
use ratatui::crossterm::event::KeyEvent;

use super::input::{Input, Typed};
use super::keymap::{Action, Context};

use crate::domain::format::{counted, slip_marker, thousands};
use crate::domain::sanitize::sanitize;
use crate::domain::slip::SlipBasis;
use crate::domain::status::{self, Draft};
use crate::domain::{IncidentState, TenantRow};

// The draft, its file and the lint findings are the client's (the command
// line publishes them too); the composer edits them.
pub(crate) use crate::client::draft::{
    DraftFile, Field, Finding, draft_waiting, load_draft, preview_label, save_draft,
};

#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    Editing,
    /// Waiting for the gateway's preview.
    Previewing,
    /// The preview is on screen; enter asks to confirm.
    Previewed,
    /// "Publish to N channels?"
    Confirm,
    Publishing,
}

#[derive(Debug, Clone)]
pub struct Composer {
    pub draft: DraftFile,
    pub field: Field,
    pub stage: Stage,
    pub findings: Vec<Finding>,
    /// (channel, content type, content) from the gateway's preview.
    pub previews: Vec<(String, String, String)>,
    pub error: Option<String>,
    /// Preview scroll offset in lines.
    pub scroll: u16,
    pub serial: u64,
}

/// What the composer asks of the loop.
#[derive(Debug)]
pub enum Ask {
    None,
    Close,
    Save,
    Preview(Draft),
    Publish {
        draft: Draft,
        operation_id: String,
        confirm_warnings: bool,
    },
}

/// What the composer says about ETAs that moved later, so the update can
/// say so too: a heading, then one line per tenant (as `Model::slipped`
/// orders them), at most `max` of them. Empty when nothing slipped.
/// `published`: an update was published before this one.
pub(crate) fn slip_lines(
    slipped: &[&TenantRow],
    published: bool,
    now: DateTime<Utc>,
    max: usize,
) -> Vec<String> {
    if slipped.is_empty() {
        return Vec::new();
    }
    let by_publish = slipped
        .iter()
        .filter(|t| {
            t.eta_slip
                .as_ref()
                .is_some_and(|s| s.basis == SlipBasis::Published)
        })
        .count();
    let since = if !published || by_publish == 0 {
        "since first shown"
    } else if by_publish == slipped.len() {
        "since the last update"
    } else {
        "since the last update or since first shown"
    };
    let n = slipped.len();
    let mut out = vec![format!(
        "ETA moved later for {} {since}; say so in this update:",
        counted(n as u64, "tenant", "tenants")
    )];
    for t in slipped.iter().take(max) {
        if let Some(slip) = &t.eta_slip {
            out.push(format!(
                "  {} {}",
                sanitize(&t.name),
                slip_marker(slip, now)
            ));
        }
    }
    if n > max {
        out.push(format!("  … and {} more", thousands((n - max) as u64)));
    }
    out
}

/// Longest text a field takes while typing (one past the lint's limit, so
/// the lint can say "too long" rather than the keyboard going dead).
fn limit(f: Field) -> usize {
    match f {
        Field::Title => status::MAX_TITLE_CHARS + 1,
        Field::Body => status::MAX_BODY_CHARS + 1,
        _ => 512,
    }
}

impl Composer {
    pub fn new(draft: DraftFile) -> Self {
        Composer {
            draft,
            field: Field::Title,
            stage: Stage::Editing,
            findings: Vec::new(),
            previews: Vec::new(),
            error: None,
            scroll: 0,
            serial: 0,
        }
    }

    fn text(&mut self) -> Option<&mut String> {
        match self.field {
            Field::State => None,
            Field::Title => Some(&mut self.draft.title),
            Field::Body => Some(&mut self.draft.body),
            Field::Components => Some(&mut self.draft.components),
            Field::Next => Some(&mut self.draft.next),
        }
    }

    fn cycle_state(&mut self, by: isize) {
        let i = IncidentState::ALL
            .iter()
            .position(|s| s.as_str() == self.draft.state)
            .unwrap_or(0) as isize;
        self.draft.state = IncidentState::ALL[(i + by).rem_euclid(4) as usize]
            .as_str()
            .into();
    }

    /// The next-update time as the author will see it: absolute and
    /// relative, or what is wrong with it.
    pub fn next_hint(&self, now: DateTime<Utc>) -> Result<String, String> {
        if self.draft.next.trim().is_empty() && self.draft.state == "resolved" {
            return Ok("none (resolved)".into());
        }
        status::parse_next_update(&self.draft.next, now).map(|t| {
            format!(
                "{} UTC (in {})",
                t.format("%Y-%m-%d %H:%M"),
                crate::domain::format::duration(t - now)
            )
        })
    }

    fn request(&mut self, now: DateTime<Utc>) -> Option<Draft> {
        match self.draft.to_draft(now) {
            Ok(d) => Some(d),
            Err((field, e)) => {
                self.field = field;
                self.error = Some(e);
                self.stage = Stage::Editing;
                None
            }
        }
    }

    /// The keymap's context for the stage the composer is in.
    pub fn context(&self) -> Context {
        match self.stage {
            Stage::Editing => Context::Composer,
            Stage::Previewing | Stage::Previewed | Stage::Publishing => Context::Preview,
            Stage::Confirm => Context::ConfirmPublish,
        }
    }

    /// A key, with the action the keymap gives it in `self.context()`.
    pub fn key(&mut self, action: Option<Action>, k: &KeyEvent, now: DateTime<Utc>) -> Ask {
        match self.stage {
            Stage::Previewing | Stage::Publishing => {
                if action == Some(Action::Back) {
                    self.stage = Stage::Editing;
                }
                return Ask::None;
            }
            Stage::Previewed => {
                match action {
                    Some(Action::Back) => self.stage = Stage::Editing,
                    Some(Action::Submit) if self.findings.iter().any(|f| f.error) => {
                        self.error = Some("fix the errors first (back to the form)".into())
                    }
                    Some(Action::Submit) => self.stage = Stage::Confirm,
                    Some(Action::Down) => self.scroll = self.scroll.saturating_add(1),
                    Some(Action::Up) => self.scroll = self.scroll.saturating_sub(1),
                    Some(Action::PageDown) => self.scroll = self.scroll.saturating_add(10),
                    Some(Action::PageUp) => self.scroll = self.scroll.saturating_sub(10),
                    _ => {}
                }
                return Ask::None;
            }
            Stage::Confirm => {
                if action == Some(Action::Confirm) {
                    let Some(draft) = self.request(now) else {
                        return Ask::None;
                    };
                    self.stage = Stage::Publishing;
                    return Ask::Publish {
                        draft,
                        operation_id: self.draft.operation_id.clone(),
                        // The warnings were on screen when the author said yes.
                        confirm_warnings: true,
                    };
                }
                self.stage = Stage::Previewed;
                return Ask::None;
            }
            Stage::Editing => {}
        }
        let before = self.draft.clone();
        let input = match self.field {
            Field::Body => Input::chars(limit(Field::Body)).lines(),
            f => Input::chars(limit(f)),
        };
        let typed = match self.text() {
            Some(t) => input.key(t, k),
            None => Typed::Pass,
        };
        if typed == Typed::Pass {
            match action {
                Some(Action::Back) => return Ask::Close,
                Some(Action::NextField) => self.field = self.field.step(1),
                Some(Action::PrevField) => self.field = self.field.step(-1),
                Some(Action::Preview) => {
                    self.error = None;
                    let Some(draft) = self.request(now) else {
                        return Ask::None;
                    };
                    self.stage = Stage::Previewing;
                    self.scroll = 0;
                    return Ask::Preview(draft);
                }
                Some(Action::StatePrev) if self.field == Field::State => self.cycle_state(-1),
                Some(Action::StateNext) if self.field == Field::State => self.cycle_state(1),
                _ => return Ask::None,
            }
        }
        self.error = None;
        // Moving between fields changes nothing worth a write.
        if self.draft == before {
            return Ask::None;
        }
        self.draft.saved_at = now;
        Ask::Save
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::keymap::Keymap;
    use chrono::Duration;
    use ratatui::crossterm::event::{KeyCode, KeyModifiers};

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    /// A key press as the console routes it: through the default keymap.
    fn press(c: &mut Composer, k: KeyEvent, now: DateTime<Utc>) -> Ask {
        let action = Keymap::default_keymap().action(c.context(), &k);
        c.key(action, &k, now)
    }

    fn type_text(c: &mut Composer, s: &str) {
        for ch in s.chars() {
            press(c, key(KeyCode::Char(ch)), Utc::now());
        }
    }

    #[test]
    fn the_composer_lists_the_tenants_whose_eta_moved_later() {
        use crate::domain::slip::EtaSlip;
        let now = DateTime::from_timestamp(1_223_330_400, 0).unwrap(); // Oct 06 22:00
        let row = |id: &str, name: &str, basis, later: Option<i64>| TenantRow {
            id: id.into(),
            name: name.into(),
            eta_slip: Some(EtaSlip {
                basis,
                since: now - Duration::hours(1),
                baseline_p90: now + Duration::hours(2),
                later_by: later.map(Duration::minutes),
            }),
            ..Default::default()
        };
        let a = row(
            "t00000",
            "Acme Title & Escrow",
            SlipBasis::Published,
            Some(125),
        );
        let b = row("t00001", "Relief\x1b[2J", SlipBasis::Published, None);
        let c = row("t00002", "Granite Title", SlipBasis::FirstShown, Some(20));
        assert!(slip_lines(&[], true, now, 8).is_empty());
        let lines = slip_lines(&[&b, &a], true, now, 8);
        assert_eq!(
            lines,
            [
                "ETA moved later for 2 tenants since the last update; say so in this update:",
                "  Relief␛[2J ↗ estimate withdrawn since 21:00",
                "  Acme Title & Escrow ↗ +2h 05m since 21:00",
            ]
        );
        let lines = slip_lines(&[&b, &a, &c], true, now, 2);
        assert!(
            lines[0].ends_with(
                "3 tenants since the last update or since first shown; say so in this update:"
            ),
            "{lines:?}"
        );
        assert_eq!(lines.last().unwrap(), "  … and 1 more");
        // Nothing published yet: measured from what was first shown.
        assert!(
            slip_lines(&[&c], false, now, 8)[0]
                .starts_with("ETA moved later for 1 tenant since first shown")
        );
    }

    /// Every change is written to disk; moving between fields is not one.
    #[test]
    fn only_keys_that_change_the_draft_save_it() {
        let now = Utc::now();
        let mut c = Composer::new(DraftFile::new(IncidentState::Identified, Utc::now()));
        assert!(matches!(
            press(&mut c, key(KeyCode::Char('M')), now),
            Ask::Save
        ));
        assert!(matches!(press(&mut c, key(KeyCode::Tab), now), Ask::None));
        assert!(matches!(
            press(&mut c, key(KeyCode::BackTab), now),
            Ask::None
        ));
        assert!(matches!(
            press(&mut c, key(KeyCode::Backspace), now),
            Ask::Save
        ));
        assert!(
            matches!(press(&mut c, key(KeyCode::Backspace), now), Ask::None),
            "nothing left"
        );
    }

    #[test]
    fn an_impossible_time_stops_the_preview_and_keeps_the_text() {
        let now = Utc::now();
        let mut c = Composer::new(DraftFile::new(IncidentState::Identified, Utc::now()));
        type_text(&mut c, "Mail access");
        c.field = Field::Next;
        c.draft.next.clear();
        type_text(&mut c, "25:30");
        assert!(matches!(press(&mut c, ctrl('p'), now), Ask::None));
        assert_eq!(c.stage, Stage::Editing);
        assert_eq!(c.field, Field::Next);
        assert!(c.error.as_deref().unwrap().contains("25:30"));
        assert_eq!(c.draft.title, "Mail access", "nothing typed is lost");
    }

    #[test]
    fn preview_then_confirm_then_publish_with_the_same_operation_id() {
        let now = Utc::now();
        let mut d = DraftFile::new(IncidentState::Identified, Utc::now());
        d.title = "Mail access".into();
        d.body = "{affected_mailboxes} affected".into();
        d.next = "+2h".into();
        let op = d.operation_id.clone();
        let mut c = Composer::new(d);
        let Ask::Preview(p) = press(&mut c, ctrl('p'), now) else {
            panic!("preview asked")
        };
        let next = p.next_update.unwrap();
        assert_eq!(next - now, Duration::hours(2));
        c.stage = Stage::Previewed;
        assert!(matches!(press(&mut c, key(KeyCode::Enter), now), Ask::None));
        assert_eq!(c.stage, Stage::Confirm);
        match press(&mut c, key(KeyCode::Char('y')), now) {
            Ask::Publish { operation_id, .. } => assert_eq!(operation_id, op),
            other => panic!("expected publish, got {other:?}"),
        }
    }

    #[test]
    fn typing_stops_one_past_the_limit() {
        let mut c = Composer::new(DraftFile::new(IncidentState::Identified, Utc::now()));
        c.draft.title = "t".repeat(status::MAX_TITLE_CHARS + 1);
        press(&mut c, key(KeyCode::Char('x')), Utc::now());
        assert_eq!(c.draft.title.chars().count(), status::MAX_TITLE_CHARS + 1);
    }
}
