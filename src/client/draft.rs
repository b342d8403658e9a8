//! A status update as its author writes it, apart from any screen: the
//! draft (also the file that keeps it between sessions), its fields, the
//! lint findings, and what a draft becomes for the gateway. The console's
//! composer edits it; `warroom publish` builds one from its flags.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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

    /// The field `by` places on, wrapping round.
    pub fn step(self, by: isize) -> Field {
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

/// One lint finding as the gateway or the local check said it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub error: bool,
    pub field: String,
    pub message: String,
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
    /// An empty draft in `state`, saved at `now`.
    pub fn new(state: IncidentState, now: DateTime<Utc>) -> Self {
        DraftFile {
            state: state.as_str().into(),
            title: String::new(),
            body: String::new(),
            components: String::new(),
            next: "+1h".into(),
            operation_id: operation_id(),
            saved_at: now,
        }
    }

    /// The draft as the gateway takes it, the next-update time resolved
    /// against `now`; the error is what the author must fix first.
    pub fn to_draft(&self, now: DateTime<Utc>) -> Result<status::Draft, (Field, String)> {
        let state = IncidentState::parse(&self.state).unwrap_or_default();
        let components = parse_components(&self.components).map_err(|e| (Field::Components, e))?;
        let next = if self.next.trim().is_empty() && state == IncidentState::Resolved {
            None
        } else {
            Some(status::parse_next_update(&self.next, now).map_err(|e| (Field::Next, e))?)
        };
        Ok(status::Draft {
            state,
            title: self.title.clone(),
            body: self.body.clone(),
            components,
            next_update: next,
        })
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

/// What the console says at start about a draft left from an earlier
/// session: when it was saved, its state and title, so nobody publishes an
/// old "monitoring" by mistake (the preview also warns when the draft
/// contradicts the sources).
pub fn draft_waiting(d: &DraftFile, now: DateTime<Utc>) -> String {
    let saved = crate::domain::format::clock(d.saved_at, now);
    let title = crate::domain::sanitize::sanitize(d.title.trim());
    let title = if title.is_empty() {
        "no title".to_string()
    } else {
        crate::domain::format::clip(&title, 40)
    };
    format!(
        "a draft from an earlier session (saved {saved} UTC, state {}, \"{title}\") is waiting: U or :publish opens it",
        crate::domain::sanitize::sanitize(d.state.trim())
    )
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

/// How a channel's preview is introduced: the channel and what its text
/// is. The built-in page is served as HTML; its preview is the same words
/// as text, which `page (text/plain)` did not say.
pub fn preview_label(channel: &str, content_type: &str) -> String {
    if channel == "page" && content_type == "text/plain" {
        "page (the status page's words, as text; it is served as HTML)".to_string()
    } else {
        format!("{channel} ({content_type})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

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

    #[test]
    fn a_draft_from_an_earlier_session_says_when_what_state_and_title() {
        let mut d = DraftFile::new(IncidentState::Monitoring, Utc::now());
        d.title = "All mail \u{1b}[2Jflowing again".into();
        d.saved_at = Utc::now() - Duration::days(2);
        let said = draft_waiting(&d, Utc::now());
        assert!(
            said.contains("a draft from an earlier session (saved "),
            "{said}"
        );
        assert!(said.contains("state monitoring"), "{said}");
        assert!(said.contains("All mail"), "{said}");
        assert!(!said.contains('\u{1b}'), "escapes inert: {said:?}");
        // Saved two days ago: the date is said, not only the time.
        let day = d.saved_at.format("%b %d").to_string();
        assert!(said.contains(&day), "{said}");
    }

    #[test]
    fn a_draft_survives_on_disk_and_goes_when_published() {
        let dir = std::env::temp_dir().join(format!("wr-draft-{}", std::process::id()));
        let path = dir.join("draft.json");
        let mut d = DraftFile::new(IncidentState::Monitoring, Utc::now());
        d.body = "queue draining: {queue_depth} left".into();
        save_draft(&path, Some(&d));
        assert_eq!(load_draft(&path).unwrap(), Some(d));
        save_draft(&path, None);
        assert_eq!(load_draft(&path).unwrap(), None);
        std::fs::write(&path, b"{not json").unwrap();
        assert!(load_draft(&path).unwrap_err().contains("damaged"));
    }
}
