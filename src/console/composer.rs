//! The status-update composer: state, title, body (with placeholders),
//! components and the next-update time; a preview of exactly what each
//! channel receives; publishing after an explicit confirm. Every edit is
//! saved as a local draft, so a dropped SSH session loses nothing.
//!
//! Pure state transitions, like `app`: network and file work is returned as
//! a `Command`.

use chrono::{DateTime, Utc};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::{Deserialize, Serialize};

use crate::api::{self, pb};
use crate::domain::IncidentState;
use crate::domain::status::{self, COMPONENT_STATUSES};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    State,
    Title,
    Body,
    Components,
    Next,
}

impl Field {
    const ORDER: [Field; 5] = [
        Field::State,
        Field::Title,
        Field::Body,
        Field::Components,
        Field::Next,
    ];

    fn step(self, by: isize) -> Field {
        let i = Self::ORDER.iter().position(|f| *f == self).unwrap_or(0) as isize;
        Self::ORDER[(i + by).rem_euclid(Self::ORDER.len() as isize) as usize]
    }
}

/// What the author has written: also the draft file's contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DraftFile {
    pub state: String,
    pub title: String,
    pub body: String,
    /// "imap=major_outage, smtp-in=degraded_performance"
    pub components: String,
    /// "+2h", "23:30"...
    pub next: String,
    /// Kept with the draft: publishing it after a reconnect publishes once.
    pub operation_id: String,
    pub saved_at: DateTime<Utc>,
}

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

/// One lint finding as the gateway or the local check said it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub error: bool,
    pub field: String,
    pub message: String,
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
    Preview(pb::StatusUpdateDraft),
    Publish {
        draft: pb::StatusUpdateDraft,
        operation_id: String,
        confirm_warnings: bool,
    },
}

/// "imap=major_outage, smtp-in=operational" → pairs; the error names the
/// entry that is not ID=STATUS.
pub fn parse_components(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split([',', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.split_once('=')
                .map(|(id, st)| (id.trim().to_string(), st.trim().to_string()))
                .filter(|(id, st)| !id.is_empty() && !st.is_empty())
                .ok_or_else(|| {
                    format!(
                        "component entry {e:?} must be ID=STATUS, e.g. imap=major_outage (statuses: {})",
                        COMPONENT_STATUSES.join(", ")
                    )
                })
        })
        .collect()
}

/// A random operation id (so that publishing twice publishes once).
pub fn operation_id() -> String {
    let hex = crate::random::random_hex(12).unwrap_or_else(|_| {
        // No /dev/urandom: the clock, which is unique enough for one author.
        let n = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        format!("{n:024x}")
    });
    format!("op-{hex}")
}

impl DraftFile {
    pub fn new(state: IncidentState) -> Self {
        DraftFile {
            state: state.as_str().into(),
            title: String::new(),
            body: String::new(),
            components: String::new(),
            next: "+1h".into(),
            operation_id: operation_id(),
            saved_at: Utc::now(),
        }
    }

    /// The draft as the gateway takes it, the next-update time resolved
    /// against `now`; the error is what the author must fix first.
    pub fn to_pb(&self, now: DateTime<Utc>) -> Result<pb::StatusUpdateDraft, (Field, String)> {
        let state = IncidentState::parse(&self.state).unwrap_or_default();
        let components = parse_components(&self.components).map_err(|e| (Field::Components, e))?;
        let next = if self.next.trim().is_empty() && state == IncidentState::Resolved {
            None
        } else {
            Some(status::parse_next_update(&self.next, now).map_err(|e| (Field::Next, e))?)
        };
        Ok(pb::StatusUpdateDraft {
            state: api::incident_state_to_pb(state) as i32,
            title: self.title.clone(),
            body: self.body.clone(),
            components: components
                .into_iter()
                .map(|(component_id, status)| pb::ComponentStatus {
                    component_id,
                    status,
                })
                .collect(),
            next_update_at: next.map(api::ts),
            audience_tenant_id: String::new(),
            channels: Vec::new(),
        })
    }
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

    fn request(&mut self, now: DateTime<Utc>) -> Option<pb::StatusUpdateDraft> {
        match self.draft.to_pb(now) {
            Ok(d) => Some(d),
            Err((field, e)) => {
                self.field = field;
                self.error = Some(e);
                self.stage = Stage::Editing;
                None
            }
        }
    }

    pub fn key(&mut self, k: KeyEvent, now: DateTime<Utc>) -> Ask {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match self.stage {
            Stage::Previewing | Stage::Publishing => {
                if k.code == KeyCode::Esc {
                    self.stage = Stage::Editing;
                }
                return Ask::None;
            }
            Stage::Previewed => {
                match k.code {
                    KeyCode::Esc => self.stage = Stage::Editing,
                    KeyCode::Enter if self.findings.iter().any(|f| f.error) => {
                        self.error = Some("fix the errors first (esc: back to the form)".into())
                    }
                    KeyCode::Enter => self.stage = Stage::Confirm,
                    KeyCode::Down | KeyCode::Char('j') => {
                        self.scroll = self.scroll.saturating_add(1)
                    }
                    KeyCode::Up | KeyCode::Char('k') => self.scroll = self.scroll.saturating_sub(1),
                    KeyCode::PageDown => self.scroll = self.scroll.saturating_add(10),
                    KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(10),
                    _ => {}
                }
                return Ask::None;
            }
            Stage::Confirm => {
                if matches!(k.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
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
        match k.code {
            KeyCode::Esc => return Ask::Close,
            KeyCode::Tab => self.field = self.field.step(1),
            KeyCode::BackTab => self.field = self.field.step(-1),
            KeyCode::Char('p') if ctrl => {
                self.error = None;
                let Some(draft) = self.request(now) else {
                    return Ask::None;
                };
                self.stage = Stage::Previewing;
                self.scroll = 0;
                return Ask::Preview(draft);
            }
            KeyCode::Left if self.field == Field::State => self.cycle_state(-1),
            KeyCode::Right | KeyCode::Char(' ') if self.field == Field::State => {
                self.cycle_state(1)
            }
            KeyCode::Enter if self.field == Field::Body => {
                if self.draft.body.chars().count() < limit(Field::Body) {
                    self.draft.body.push('\n');
                }
            }
            KeyCode::Enter => self.field = self.field.step(1),
            KeyCode::Backspace => {
                if let Some(t) = self.text() {
                    t.pop();
                }
            }
            KeyCode::Char(c) if !c.is_control() && !ctrl => {
                let max = limit(self.field);
                if let Some(t) = self.text()
                    && t.chars().count() < max
                {
                    t.push(c);
                }
            }
            _ => return Ask::None,
        }
        self.error = None;
        // Moving between fields changes nothing worth a write.
        if self.draft == before {
            return Ask::None;
        }
        self.draft.saved_at = Utc::now();
        Ask::Save
    }
}

/// Writes the draft (or removes it once published). A draft that cannot
/// be saved is logged: the composer still holds it.
pub fn save_draft(path: &std::path::Path, draft: Option<&DraftFile>) {
    let result = match draft {
        None => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
        Some(d) => (|| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // Write then rename: a crash mid-write leaves the old draft.
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(d).unwrap_or_default())?;
            std::fs::rename(&tmp, path)
        })(),
    };
    if let Err(e) = result {
        tracing::warn!(path = %path.display(), "cannot save the status update draft: {e}");
    }
}

/// The saved draft, if any; a damaged file is reported, not fatal.
pub fn load_draft(path: &std::path::Path) -> Result<Option<DraftFile>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            format!(
                "the saved status update draft {} is damaged ({e}); it was left as it is",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!(
            "cannot read the saved draft {}: {e}",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn type_text(c: &mut Composer, s: &str) {
        for ch in s.chars() {
            c.key(key(KeyCode::Char(ch)), Utc::now());
        }
    }

    #[test]
    fn components_parse_or_name_the_bad_entry() {
        assert_eq!(
            parse_components("imap=major_outage, smtp-in=operational").unwrap(),
            [
                ("imap".to_string(), "major_outage".to_string()),
                ("smtp-in".to_string(), "operational".to_string())
            ]
        );
        assert!(parse_components("").unwrap().is_empty());
        assert!(
            parse_components("imap")
                .unwrap_err()
                .contains("\"imap\" must be ID=STATUS")
        );
    }

    /// Every change is written to disk; moving between fields is not one.
    #[test]
    fn only_keys_that_change_the_draft_save_it() {
        let now = Utc::now();
        let mut c = Composer::new(DraftFile::new(IncidentState::Identified));
        assert!(matches!(c.key(key(KeyCode::Char('M')), now), Ask::Save));
        assert!(matches!(c.key(key(KeyCode::Tab), now), Ask::None));
        assert!(matches!(c.key(key(KeyCode::BackTab), now), Ask::None));
        assert!(matches!(c.key(key(KeyCode::Backspace), now), Ask::Save));
        assert!(
            matches!(c.key(key(KeyCode::Backspace), now), Ask::None),
            "nothing left"
        );
    }

    #[test]
    fn an_impossible_time_stops_the_preview_and_keeps_the_text() {
        let now = Utc::now();
        let mut c = Composer::new(DraftFile::new(IncidentState::Identified));
        type_text(&mut c, "Mail access");
        c.field = Field::Next;
        c.draft.next.clear();
        type_text(&mut c, "25:30");
        assert!(matches!(c.key(ctrl('p'), now), Ask::None));
        assert_eq!(c.stage, Stage::Editing);
        assert_eq!(c.field, Field::Next);
        assert!(c.error.as_deref().unwrap().contains("25:30"));
        assert_eq!(c.draft.title, "Mail access", "nothing typed is lost");
    }

    #[test]
    fn preview_then_confirm_then_publish_with_the_same_operation_id() {
        let now = Utc::now();
        let mut d = DraftFile::new(IncidentState::Identified);
        d.title = "Mail access".into();
        d.body = "{affected_mailboxes} affected".into();
        d.next = "+2h".into();
        let op = d.operation_id.clone();
        let mut c = Composer::new(d);
        let Ask::Preview(p) = c.key(ctrl('p'), now) else {
            panic!("preview asked")
        };
        let next = api::from_ts(p.next_update_at.as_ref()).unwrap();
        assert_eq!(next - now, Duration::hours(2));
        c.stage = Stage::Previewed;
        assert!(matches!(c.key(key(KeyCode::Enter), now), Ask::None));
        assert_eq!(c.stage, Stage::Confirm);
        match c.key(key(KeyCode::Char('y')), now) {
            Ask::Publish { operation_id, .. } => assert_eq!(operation_id, op),
            other => panic!("expected publish, got {other:?}"),
        }
    }

    #[test]
    fn a_draft_survives_on_disk_and_goes_when_published() {
        let dir = std::env::temp_dir().join(format!("wr-draft-{}", std::process::id()));
        let path = dir.join("draft.json");
        let mut d = DraftFile::new(IncidentState::Monitoring);
        d.body = "queue draining: {queue_depth} left".into();
        save_draft(&path, Some(&d));
        assert_eq!(load_draft(&path).unwrap(), Some(d));
        save_draft(&path, None);
        assert_eq!(load_draft(&path).unwrap(), None);
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load_draft(&path).unwrap_err().contains("damaged"));
    }

    #[test]
    fn typing_stops_one_past_the_limit() {
        let mut c = Composer::new(DraftFile::new(IncidentState::Identified));
        c.draft.title = "t".repeat(status::MAX_TITLE_CHARS + 1);
        c.key(key(KeyCode::Char('x')), Utc::now());
        assert_eq!(c.draft.title.chars().count(), status::MAX_TITLE_CHARS + 1);
    }
}
