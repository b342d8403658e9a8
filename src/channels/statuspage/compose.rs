//! The request body: an update as one Statuspage incident (its name, body,
//! components, drill marker), with what is left out and what cannot be sent.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Statuspage, Update, clip};
use crate::domain::sanitize::sanitize;
use crate::domain::status::{COMPONENT_STATUSES, MAX_BODY_CHARS, MAX_TITLE_CHARS};

const DRILL_TITLE: &str = "[SIMULATED] ";
const DRILL_BODY: &str = "[SIMULATED — a drill, not production]\n\n";

impl Statuspage {
    /// The request body for `u`, with what is left out and what is wrong.
    pub(super) fn compose(&self, u: &Update) -> Composed {
        let mut notes = Vec::new();
        let mut problems = Vec::new();

        let drill = if u.simulated {
            " (with the drill marker)"
        } else {
            ""
        };
        let name = if u.simulated {
            format!("{DRILL_TITLE}{}", u.title)
        } else {
            u.title.clone()
        };
        let mut body = String::new();
        if u.simulated {
            body.push_str(DRILL_BODY);
        }
        body.push_str(&u.body);
        if let Some(next) = u.next_update {
            if !body.is_empty() {
                body.push_str("\n\n");
            }
            body.push_str(&format!(
                "Next update by {} UTC.",
                next.format("%Y-%m-%d %H:%M")
            ));
        }
        let name_chars = name.chars().count();
        if name.trim().is_empty() {
            problems.push("the title is empty; Statuspage requires an incident name".to_string());
        } else if name_chars > MAX_TITLE_CHARS {
            problems.push(format!(
                "the title is {name_chars} characters{drill}; Statuspage's limit is {MAX_TITLE_CHARS}"
            ));
        }
        let body_chars = body.chars().count();
        if body_chars > MAX_BODY_CHARS {
            problems.push(format!(
                "the body is {body_chars} characters{drill}; Statuspage's limit is {MAX_BODY_CHARS}"
            ));
        }

        let mut component_ids: Vec<String> = Vec::new();
        let mut components: BTreeMap<String, &'static str> = BTreeMap::new();
        let mut unmapped: Vec<String> = Vec::new();
        for (ours, status) in &u.components {
            let Some(known) = COMPONENT_STATUSES.iter().copied().find(|s| *s == status) else {
                problems.push(format!(
                    "component {} has status {:?}, which Statuspage does not know ({})",
                    clip(ours, 80),
                    clip(status, 80),
                    COMPONENT_STATUSES.join(", ")
                ));
                continue;
            };
            let Some(theirs) = self.cfg.components.get(ours) else {
                if !unmapped.contains(ours) {
                    unmapped.push(ours.clone());
                }
                continue;
            };
            match components.get(theirs) {
                // Two warroom components on one Statuspage component: the
                // worse status shows.
                Some(&before) if severity(before) >= severity(known) => {}
                _ => {
                    components.insert(theirs.clone(), known);
                }
            }
            if !component_ids.contains(theirs) {
                component_ids.push(theirs.clone());
            }
        }
        if !unmapped.is_empty() {
            notes.push(format!(
                "left out (no Statuspage component is configured for them): {}",
                unmapped
                    .iter()
                    .map(|c| sanitize(c).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if u.simulated {
            notes.push("a drill: marked as simulated, subscribers are not notified".into());
        }

        let request = IncidentRequest {
            incident: IncidentFields {
                name,
                status: u.state.as_str(),
                body,
                component_ids,
                components,
                deliver_notifications: !u.simulated,
                metadata: Metadata {
                    warroom: WarroomMetadata {
                        operation_id: u.id.clone(),
                    },
                },
            },
        };
        // Serialising strings and maps cannot fail; an empty body would be
        // refused by the server rather than panic here.
        let json = serde_json::to_string_pretty(&request).unwrap_or_default();
        Composed {
            json,
            notes,
            problems,
        }
    }
}

#[derive(Serialize)]
pub(super) struct IncidentRequest {
    incident: IncidentFields,
}

#[derive(Serialize)]
pub(super) struct IncidentFields {
    name: String,
    status: &'static str,
    body: String,
    component_ids: Vec<String>,
    components: BTreeMap<String, &'static str>,
    deliver_notifications: bool,
    metadata: Metadata,
}

#[derive(Serialize)]
pub(super) struct Metadata {
    warroom: WarroomMetadata,
}

#[derive(Serialize)]
pub(super) struct WarroomMetadata {
    operation_id: String,
}

pub(super) struct Composed {
    /// Exactly the bytes sent.
    pub(super) json: String,
    /// For the preview: what is left out, drills.
    pub(super) notes: Vec<String>,
    /// Why it cannot be sent.
    pub(super) problems: Vec<String>,
}
/// Higher is worse.
pub(super) fn severity(status: &str) -> u8 {
    match status {
        "major_outage" => 4,
        "partial_outage" => 3,
        "degraded_performance" => 2,
        "under_maintenance" => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cfg, update};
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::Value;

    #[test]
    fn body_maps_components_and_leaves_out_unmapped_ones() {
        let s = Statuspage::new(cfg()).unwrap();
        let c = s.compose(&update());
        assert!(c.problems.is_empty());
        let v: Value = serde_json::from_str(&c.json).unwrap();
        let i = &v["incident"];
        assert_eq!(i["name"], "IMAP logins failing");
        assert_eq!(i["status"], "investigating");
        assert_eq!(i["component_ids"], serde_json::json!(["cmpimap"]));
        assert_eq!(
            i["components"],
            serde_json::json!({"cmpimap": "major_outage"})
        );
        assert_eq!(i["deliver_notifications"], true);
        assert_eq!(i["metadata"]["warroom"]["operation_id"], "su-000001");
        assert!(c.notes.iter().any(|n| n.contains("pop3")), "{:?}", c.notes);
    }

    #[test]
    fn two_components_on_one_statuspage_component_show_the_worse() {
        let s = Statuspage::new(cfg()).unwrap();
        let mut u = update();
        u.components = vec![
            ("smtp-in".into(), "degraded_performance".into()),
            ("smtp-out".into(), "major_outage".into()),
            ("smtp-in".into(), "operational".into()),
        ];
        let v: Value = serde_json::from_str(&s.compose(&u).json).unwrap();
        assert_eq!(
            v["incident"]["component_ids"],
            serde_json::json!(["cmpmail"])
        );
        assert_eq!(v["incident"]["components"]["cmpmail"], "major_outage");
    }

    #[test]
    fn limits_and_unknown_statuses_are_problems() {
        let s = Statuspage::new(cfg()).unwrap();
        let mut u = update();
        u.title = "x".repeat(255);
        assert!(s.compose(&u).problems.is_empty());
        u.title = "x".repeat(256);
        let p = s.compose(&u).problems;
        assert!(p[0].contains("256") && p[0].contains("255"), "{p:?}");
        u.title = "t".into();
        u.body = "é".repeat(MAX_BODY_CHARS);
        assert!(s.compose(&u).problems.is_empty(), "characters, not bytes");
        u.body.push('x');
        assert!(s.compose(&u).problems[0].contains("25000"));
        u.body = "b".into();
        u.components = vec![("imap".into(), "on_fire".into())];
        assert!(s.compose(&u).problems[0].contains("on_fire"));
        u.components.clear();
        u.title = " ".into();
        assert!(s.compose(&u).problems[0].contains("empty"));
    }

    #[test]
    fn drills_say_so_and_do_not_notify() {
        let s = Statuspage::new(cfg()).unwrap();
        let mut u = update();
        u.simulated = true;
        u.next_update = Some(Utc.with_ymd_and_hms(2026, 11, 30, 1, 30, 0).unwrap());
        let v: Value = serde_json::from_str(&s.compose(&u).json).unwrap();
        assert!(
            v["incident"]["name"]
                .as_str()
                .unwrap()
                .starts_with("[SIMULATED]")
        );
        let body = v["incident"]["body"].as_str().unwrap();
        assert!(body.starts_with("[SIMULATED"));
        assert!(body.ends_with("Next update by 2026-11-30 01:30 UTC."));
        assert_eq!(v["incident"]["deliver_notifications"], false);
        // The marker counts towards the limit.
        u.title = "x".repeat(250);
        assert!(s.compose(&u).problems[0].contains("drill marker"));
    }
}
